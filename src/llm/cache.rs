//! The content-addressed response cache: a reply is stored under the SHA-256 of the exact
//! request body, in the corpus (`cache/llm/<2 hex>/<key>.json`), so a batch that was interrupted
//! resumes without sending any request whose answer it already has.

use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

use super::{ChatReply, ChatRequest};
use crate::store::Corpus;

/// The cache key of a request: SHA-256 of its JSON body.
///
/// ```
/// # use tdscale::llm::{ChatRequest, cache::key};
/// let r = ChatRequest { model: "m".into(), messages: vec![], tools: vec![], temperature: 0.0, seed: 1, max_tokens: 10, response_format: None };
/// assert_eq!(key(&r).len(), 64);
/// assert_eq!(key(&r), key(&r.clone()));
/// ```
pub fn key(request: &ChatRequest) -> String {
    let body = serde_json::to_vec(request).expect("a request serializes");
    hex::encode(Sha256::digest(&body))
}

/// The cache in a corpus.
#[derive(Debug, Clone)]
pub struct ResponseCache {
    corpus: Corpus,
}

impl ResponseCache {
    pub fn new(corpus: &Corpus) -> Self {
        Self {
            corpus: corpus.clone(),
        }
    }

    fn rel(key: &str) -> String {
        format!("cache/llm/{}/{key}.json", &key[..2])
    }

    /// The stored reply, if any. A damaged entry counts as missing.
    pub async fn get(&self, key: &str) -> Option<ChatReply> {
        let got = self
            .corpus
            .store()
            .get(&self.corpus.path(&Self::rel(key)))
            .await
            .ok()?;
        let bytes = got.bytes().await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores a reply (one atomic PUT).
    pub async fn put(&self, key: &str, reply: &ChatReply) -> crate::error::Result<()> {
        let bytes = serde_json::to_vec(reply).expect("a reply serializes");
        self.corpus.location().put(&Self::rel(key), bytes).await
    }
}
