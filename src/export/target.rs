//! Where an export goes: a local folder or an `s3://bucket/prefix` (any S3-compatible endpoint
//! from `AWS_*`), written so that a failed export leaves nothing behind.
//!
//! Every file is staged as a multipart upload (parts of [`PART_BYTES`]); an upload that is not
//! completed is never visible. Only when every file is staged are the uploads completed, one
//! request each, and then the manifest (paths, rows, bytes, SHA-256) is written — last, so its
//! presence means the export is complete. Transient faults (5xx, dropped connections, timeouts)
//! are retried by the object store with backoff. If a request still fails while staging, the
//! staged uploads are aborted and nothing is visible; if one fails while completing, the files
//! already completed are deleted again. Either way the error says what had been written.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{BackoffConfig, MultipartUpload, ObjectStore, ObjectStoreExt, RetryConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::location::Location;

/// Size of the parts of a staged upload.
pub const PART_BYTES: usize = 8 << 20;

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
    location: Location,
    /// Files staged and not yet completed, with their uploads.
    staged: Vec<(WrittenFile, Box<dyn MultipartUpload>)>,
}

impl ExportTarget {
    /// Opens `url` (a folder, created if missing, or `s3://bucket/prefix`).
    pub fn open(url: &str, retry: RetryPolicy) -> Result<Self> {
        let config = crate::store::location::s3_parts(url)
            .is_some()
            .then(|| RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: retry.max_retries,
                retry_timeout: retry.timeout,
            });
        let location = Location::open_with_retry(url, config)?;
        Ok(Self {
            display: location.display().to_string(),
            store: location.store(),
            location,
            staged: vec![],
        })
    }

    fn path(&self, rel: &str) -> Path {
        self.location.path(rel)
    }

    /// The URL of a file of the export.
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.display)
    }

    fn failure(&self, rel: &str, e: impl std::fmt::Display, what: String) -> Error {
        Error::Storage {
            url: self.url_of(rel),
            message: format!(
                "{e}. The export is incomplete and no manifest was written: {what}. Run the same command again when the store is reachable"
            ),
        }
    }

    async fn abort_staged(&mut self) -> usize {
        let staged = std::mem::take(&mut self.staged);
        let n = staged.len();
        for (_, mut upload) in staged {
            upload.abort().await.ok();
        }
        n
    }

    /// Stages one file; nothing is visible until [`ExportTarget::finish`]. On failure every
    /// staged upload is aborted.
    pub async fn write(&mut self, rel: &str, bytes: Vec<u8>, rows: usize) -> Result<()> {
        let staged = async {
            let mut upload = self.store.put_multipart(&self.path(rel)).await?;
            for part in bytes.chunks(PART_BYTES.max(1)) {
                if let Err(e) = upload.put_part(part.to_vec().into()).await {
                    upload.abort().await.ok();
                    return Err(e);
                }
            }
            Ok(upload)
        }
        .await;
        match staged {
            Ok(upload) => {
                let file = WrittenFile {
                    path: rel.to_string(),
                    rows,
                    bytes: bytes.len(),
                    sha256: hex::encode(Sha256::digest(&bytes)),
                };
                self.staged.push((file, upload));
                Ok(())
            }
            Err(e) => {
                let n = self.abort_staged().await;
                Err(self.failure(
                    rel,
                    e,
                    format!("nothing was written ({n} staged file(s) discarded)"),
                ))
            }
        }
    }

    /// Completes every staged file, then writes `manifest.json`; returns the files written.
    pub async fn finish(
        mut self,
        kind: &str,
        extra: serde_json::Value,
    ) -> Result<Vec<WrittenFile>> {
        let files: Vec<WrittenFile> = self.staged.iter().map(|(f, _)| f.clone()).collect();
        let manifest = serde_json::json!({
            "kind": kind,
            "created_at": chrono::Utc::now().to_rfc3339(),
            "files": files,
            "details": extra,
        });
        let manifest = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        let (manifest_bytes, manifest_sha) =
            (manifest.len(), hex::encode(Sha256::digest(&manifest)));
        let mut done: Vec<String> = vec![];
        let mut failed: Option<(String, String)> = None;
        for (f, mut upload) in std::mem::take(&mut self.staged) {
            if failed.is_some() {
                upload.abort().await.ok();
                continue;
            }
            match upload.complete().await {
                Ok(_) => done.push(f.path.clone()),
                Err(e) => {
                    upload.abort().await.ok();
                    failed = Some((f.path.clone(), e.to_string()));
                }
            }
        }
        if failed.is_none()
            && let Err(e) = self
                .store
                .put(&self.path("manifest.json"), manifest.into())
                .await
        {
            failed = Some(("manifest.json".into(), e.to_string()));
        }
        if let Some((rel, e)) = failed {
            let mut kept = vec![];
            for p in &done {
                if self.store.delete(&self.path(p)).await.is_err() {
                    kept.push(p.clone());
                }
            }
            let what = if kept.is_empty() {
                format!("{} completed file(s) were removed again", done.len())
            } else {
                format!(
                    "these files could not be removed and are left at {}: {}",
                    self.display,
                    kept.join(", ")
                )
            };
            return Err(self.failure(&rel, e, what));
        }
        let mut all = files;
        all.push(WrittenFile {
            path: "manifest.json".into(),
            rows: all.len(),
            bytes: manifest_bytes,
            sha256: manifest_sha,
        });
        Ok(all)
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

/// The files of an export, a line each, then where they went.
pub fn files_text(files: &[WrittenFile], to: &str) -> String {
    let mut out = String::new();
    for f in files {
        out.push_str(&format!(
            "  {:<48} {:>7} rows {:>10} bytes\n",
            f.path, f.rows, f.bytes
        ));
    }
    out.push_str(&format!(
        "wrote {} files to {} (manifest.json last)\n",
        files.len(),
        to
    ));
    out
}
