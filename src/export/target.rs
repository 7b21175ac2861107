//! Where an export goes: a local folder or an `s3://bucket/prefix` (any S3-compatible endpoint
//! from `AWS_*`), written so that a failed export leaves nothing behind.
//!
//! Each file is one atomic object: a single PUT, or above [`MULTIPART_BYTES`] a multipart upload
//! that is completed last (aborted on failure). Transient faults (5xx, dropped connections,
//! timeouts) are retried by the object store with backoff. If a file still fails, the files this
//! export already wrote are deleted again and the error says what had been written. The manifest
//! (paths, rows, bytes, SHA-256) is written last, so its presence means the export is complete.

use std::sync::Arc;
use std::time::Duration;

use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, RetryConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Files larger than this go up as multipart uploads.
pub const MULTIPART_BYTES: usize = 8 << 20;

/// How hard to retry transient faults.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: usize,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 10,
            timeout: Duration::from_secs(120),
        }
    }
}

/// One file of the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenFile {
    /// Relative to the export root.
    pub path: String,
    pub rows: usize,
    pub bytes: usize,
    pub sha256: String,
}

/// The export root and what has been written to it.
pub struct ExportTarget {
    display: String,
    store: Arc<dyn ObjectStore>,
    root: Path,
    written: Vec<WrittenFile>,
}

impl ExportTarget {
    /// Opens `url` (a folder, created if missing, or `s3://bucket/prefix`).
    pub fn open(url: &str, retry: RetryPolicy) -> Result<Self> {
        let display = url.trim_end_matches('/').to_string();
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Usage(format!("`{url}` names no bucket")));
            }
            let config = RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: retry.max_retries,
                retry_timeout: retry.timeout,
            };
            return Ok(Self {
                display,
                store: crate::store::s3_store_with_retry(bucket, Some(config))?,
                root: Path::from(prefix.trim_end_matches('/')),
                written: vec![],
            });
        }
        let local = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(local).map_err(|e| Error::io(local, e))?;
        let abs = std::fs::canonicalize(local).map_err(|e| Error::io(local, e))?;
        Ok(Self {
            display,
            store: Arc::new(object_store::local::LocalFileSystem::new()),
            root: Path::from_absolute_path(&abs)
                .map_err(|e| Error::Usage(format!("bad export path {url}: {e}")))?,
            written: vec![],
        })
    }

    fn path(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|s| !s.is_empty())
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// The URL of a file of the export.
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.display)
    }

    async fn put(&self, rel: &str, bytes: &[u8]) -> std::result::Result<(), String> {
        let path = self.path(rel);
        if bytes.len() <= MULTIPART_BYTES {
            return self
                .store
                .put(&path, bytes.to_vec().into())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
        }
        let mut w = BufWriter::with_capacity(self.store.clone(), path, MULTIPART_BYTES);
        let r = async {
            w.write_all(bytes).await?;
            w.shutdown().await
        }
        .await;
        if let Err(e) = r {
            w.abort().await.ok();
            return Err(e.to_string());
        }
        Ok(())
    }

    /// Writes one file; on failure removes everything this export wrote and says what.
    pub async fn write(&mut self, rel: &str, bytes: Vec<u8>, rows: usize) -> Result<()> {
        if let Err(e) = self.put(rel, &bytes).await {
            let removed = self.roll_back().await;
            return Err(Error::Storage {
                url: self.url_of(rel),
                message: format!(
                    "{e}. The export is incomplete: {} file(s) had been written and were removed again ({}); no manifest was written. Run the same command again when the store is reachable",
                    removed.len(),
                    if removed.is_empty() { "none".to_string() } else { removed.join(", ") }
                ),
            });
        }
        self.written.push(WrittenFile {
            path: rel.to_string(),
            rows,
            bytes: bytes.len(),
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
        Ok(())
    }

    async fn roll_back(&mut self) -> Vec<String> {
        let mut removed = vec![];
        for f in std::mem::take(&mut self.written) {
            let p = self.path(&f.path);
            if self.store.delete(&p).await.is_ok() {
                removed.push(f.path);
            } else {
                tracing::warn!("could not remove {} after a failed export", f.path);
            }
        }
        removed
    }

    /// Writes `manifest.json` (last) and returns the files written.
    pub async fn finish(mut self, kind: &str, extra: serde_json::Value) -> Result<Vec<WrittenFile>> {
        let files = self.written.clone();
        let manifest = serde_json::json!({
            "kind": kind,
            "created_at": chrono::Utc::now().to_rfc3339(),
            "files": files,
            "details": extra,
        });
        let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        self.write("manifest.json", bytes, files.len()).await?;
        Ok(files)
    }
}

/// JSON lines of `values`.
pub fn jsonl(values: &[serde_json::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}
