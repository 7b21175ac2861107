//! Where an export goes: a local folder or an `s3://bucket/prefix` (any S3-compatible endpoint
//! from `AWS_*`), written so that a failed export leaves nothing behind.
//!
//! Every file is staged first: on S3 as a multipart upload (parts of [`PART_BYTES`]), which is
//! invisible until completed; in a folder as `<file>#<owner tag>` (a name object-store listings
//! skip; the tag is the writing process's pid and start time, [`Owner`]). Only when every file is
//! staged does the commit begin: the old `manifest.json` (if any) is removed, a commit journal
//! [`JOURNAL`] listing the files is written, the files are made visible (uploads completed,
//! staging files renamed) one by one, the manifest (paths, rows, bytes, SHA-256) is written, and
//! the journal is removed. So a manifest always describes a complete export.
//!
//! A process killed mid-commit leaves the journal, some visible files and no manifest. The next
//! export to the same place finds the journal first and removes every file it lists (or, when
//! the manifest had been written, only the journal), and removes the staging files of owners that
//! are gone, before staging its own; a journal whose owner is still running is an error, not
//! something to clean. Transient faults (5xx, dropped connections, timeouts) are retried by the
//! object store with backoff. If a request still fails while staging, the staged files are
//! discarded and nothing is visible; if one fails while committing, the files already made
//! visible are deleted again. Either way the error says what had been written. (On S3, uploads
//! of a killed process stay incomplete and invisible; a bucket lifecycle rule reclaims them.)

use std::sync::Arc;
use std::time::Duration;

use std::path::PathBuf;

use object_store::path::Path;
use object_store::{BackoffConfig, MultipartUpload, ObjectStore, ObjectStoreExt, RetryConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::location::Location;
use crate::store::owner::Owner;

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

/// The commit journal: present only while files are being made visible.
pub const JOURNAL: &str = ".tdscale-commit.json";

/// What the journal records.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    /// The committing process ([`Owner::tag`]).
    owner: String,
    /// The files being made visible, relative to the export root (the manifest last).
    files: Vec<String>,
}

/// A file staged and not yet visible.
enum Staged {
    /// A multipart upload (S3).
    Upload(Box<dyn MultipartUpload>),
    /// A staging file next to its final path (a folder).
    Local { staging: PathBuf, dest: PathBuf },
}

/// The export root and what has been written to it.
pub struct ExportTarget {
    display: String,
    store: Arc<dyn ObjectStore>,
    location: Location,
    /// The folder, for a local target.
    local: Option<PathBuf>,
    owner: Owner,
    /// Whether leftovers of an interrupted export were looked for.
    recovered: bool,
    /// Files staged and not yet completed.
    staged: Vec<(WrittenFile, Staged)>,
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
            local: location.local_dir(),
            location,
            owner: Owner::current(),
            recovered: false,
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

    fn storage(&self, rel: &str, e: impl std::fmt::Display) -> Error {
        Error::Storage {
            url: self.url_of(rel),
            message: e.to_string(),
        }
    }

    /// Deletes a file of the export; a file that is not there is no error.
    async fn delete(&self, rel: &str) -> std::result::Result<(), object_store::Error> {
        match self.store.delete(&self.path(rel)).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// Cleans up after an export that was killed: the files of an interrupted commit (named by
    /// its journal) and, in a folder, the staging files of processes that are gone.
    async fn recover(&mut self) -> Result<()> {
        if self.recovered {
            return Ok(());
        }
        self.recovered = true;
        match self.store.get(&self.path(JOURNAL)).await {
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.storage(JOURNAL, e)),
            Ok(got) => {
                let bytes = got.bytes().await.map_err(|e| self.storage(JOURNAL, e))?;
                let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::Storage {
                        url: self.url_of(JOURNAL),
                        message: format!("unreadable commit journal ({e}); remove it and the files of the interrupted export, then run again"),
                    }
                })?;
                if let Some(owner) = Owner::parse(&journal.owner)
                    && owner.is_alive()
                    && owner != self.owner
                {
                    return Err(Error::Storage {
                        url: self.display.clone(),
                        message: format!(
                            "another export (process {}) is committing files here; wait for it to finish",
                            owner.pid
                        ),
                    });
                }
                // Killed after the manifest was written: the export is complete.
                let complete = journal.files.last().map(String::as_str) == Some(MANIFEST)
                    && self.store.head(&self.path(MANIFEST)).await.is_ok();
                if !complete {
                    tracing::info!(
                        "removing {} file(s) of an interrupted export at {}",
                        journal.files.len(),
                        self.display
                    );
                    for rel in &journal.files {
                        self.delete(rel).await.map_err(|e| self.storage(rel, e))?;
                    }
                }
                self.delete(JOURNAL)
                    .await
                    .map_err(|e| self.storage(JOURNAL, e))?;
            }
        }
        if let Some(dir) = &self.local {
            remove_orphan_staging(dir);
        }
        Ok(())
    }

    async fn discard_staged(&mut self) -> usize {
        let staged = std::mem::take(&mut self.staged);
        let n = staged.len();
        for (_, s) in staged {
            match s {
                Staged::Upload(mut upload) => {
                    upload.abort().await.ok();
                }
                Staged::Local { staging, .. } => {
                    let _ = tokio::fs::remove_file(&staging).await;
                }
            }
        }
        n
    }

    async fn stage(&self, rel: &str, bytes: &[u8]) -> std::result::Result<Staged, String> {
        if let Some(dir) = &self.local {
            let dest = rel
                .split('/')
                .filter(|s| !s.is_empty())
                .fold(dir.clone(), |p, part| p.join(part));
            let mut name = dest.file_name().unwrap_or_default().to_os_string();
            name.push(format!("#{}", self.owner.tag()));
            let staging = dest.with_file_name(name);
            if let Some(parent) = staging.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            tokio::fs::write(&staging, bytes)
                .await
                .map_err(|e| format!("{}: {e}", staging.display()))?;
            return Ok(Staged::Local { staging, dest });
        }
        let mut upload = self
            .store
            .put_multipart(&self.path(rel))
            .await
            .map_err(|e| e.to_string())?;
        for part in bytes.chunks(PART_BYTES.max(1)) {
            if let Err(e) = upload.put_part(part.to_vec().into()).await {
                upload.abort().await.ok();
                return Err(e.to_string());
            }
        }
        Ok(Staged::Upload(upload))
    }

    /// Stages one file; nothing is visible until [`ExportTarget::finish`]. On failure every
    /// staged file is discarded.
    pub async fn write(&mut self, rel: &str, bytes: Vec<u8>, rows: usize) -> Result<()> {
        self.recover().await?;
        match self.stage(rel, &bytes).await {
            Ok(staged) => {
                let file = WrittenFile {
                    path: rel.to_string(),
                    rows,
                    bytes: bytes.len(),
                    sha256: hex::encode(Sha256::digest(&bytes)),
                };
                self.staged.push((file, staged));
                Ok(())
            }
            Err(e) => {
                let n = self.discard_staged().await;
                Err(self.failure(
                    rel,
                    e,
                    format!("nothing was written ({n} staged file(s) discarded)"),
                ))
            }
        }
    }

    /// Makes one staged file visible.
    async fn commit_one(staged: Staged) -> std::result::Result<(), String> {
        match staged {
            Staged::Upload(mut upload) => match upload.complete().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    upload.abort().await.ok();
                    Err(e.to_string())
                }
            },
            Staged::Local { staging, dest } => {
                tokio::fs::rename(&staging, &dest).await.map_err(|e| {
                    let _ = std::fs::remove_file(&staging);
                    format!("{}: {e}", dest.display())
                })
            }
        }
    }

    /// Commits every staged file, then writes `manifest.json` (see the module documentation);
    /// returns the files written.
    pub async fn finish(
        mut self,
        kind: &str,
        extra: serde_json::Value,
    ) -> Result<Vec<WrittenFile>> {
        self.recover().await?;
        let files: Vec<WrittenFile> = self.staged.iter().map(|(f, _)| f.clone()).collect();
        let manifest = serde_json::json!({
            "kind": kind,
            // Fixed width (microseconds, `Z`): the manifest's size does not vary with the clock.
            "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "files": files,
            "details": extra,
        });
        let manifest = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        let (manifest_bytes, manifest_sha) =
            (manifest.len(), hex::encode(Sha256::digest(&manifest)));
        let journal = Journal {
            owner: self.owner.tag(),
            files: files
                .iter()
                .map(|f| f.path.clone())
                .chain([MANIFEST.to_string()])
                .collect(),
        };
        let journal = serde_json::to_vec_pretty(&journal).expect("a journal serializes");
        // A manifest from an earlier export must not describe the files this one replaces.
        let begun = async {
            self.delete(MANIFEST)
                .await
                .map_err(|e| (MANIFEST.to_string(), e.to_string()))?;
            self.store
                .put(&self.path(JOURNAL), journal.into())
                .await
                .map_err(|e| (JOURNAL.to_string(), e.to_string()))
        }
        .await;
        if let Err((rel, e)) = begun {
            let n = self.discard_staged().await;
            return Err(self.failure(
                &rel,
                e,
                format!("nothing was written ({n} staged file(s) discarded)"),
            ));
        }
        let mut done: Vec<String> = vec![];
        let mut failed: Option<(String, String)> = None;
        let mut first = true;
        for (f, staged) in std::mem::take(&mut self.staged) {
            if failed.is_some() {
                if let Staged::Upload(mut upload) = staged {
                    upload.abort().await.ok();
                } else if let Staged::Local { staging, .. } = staged {
                    let _ = tokio::fs::remove_file(&staging).await;
                }
                continue;
            }
            match Self::commit_one(staged).await {
                Ok(()) => done.push(f.path.clone()),
                Err(e) => failed = Some((f.path.clone(), e)),
            }
            if std::mem::take(&mut first) {
                pause_point("export-commit");
            }
        }
        if failed.is_none()
            && let Err(e) = self.store.put(&self.path(MANIFEST), manifest.into()).await
        {
            failed = Some((MANIFEST.into(), e.to_string()));
        }
        if let Some((rel, e)) = failed {
            let mut kept = vec![];
            for p in &done {
                if self.delete(p).await.is_err() {
                    kept.push(p.clone());
                }
            }
            let what = if kept.is_empty() {
                // Nothing left to clean: the journal can go.
                self.delete(JOURNAL).await.ok();
                format!("{} completed file(s) were removed again", done.len())
            } else {
                format!(
                    "these files could not be removed and are left at {} (the next export there removes them): {}",
                    self.display,
                    kept.join(", ")
                )
            };
            return Err(self.failure(&rel, e, what));
        }
        self.delete(JOURNAL)
            .await
            .map_err(|e| self.storage(JOURNAL, e))?;
        let mut all = files;
        all.push(WrittenFile {
            path: MANIFEST.into(),
            rows: all.len(),
            bytes: manifest_bytes,
            sha256: manifest_sha,
        });
        Ok(all)
    }
}

/// The manifest's name.
const MANIFEST: &str = "manifest.json";

/// Removes, under `dir`, the staging files (`<name>#<owner tag>`) whose owner process is gone.
/// Staging files of a live process, and `#n` names that carry no owner tag, are left alone.
fn remove_orphan_staging(dir: &std::path::Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
                continue;
            }
            let name = e.file_name();
            let Some((_, tag)) = name.to_str().and_then(|n| n.rsplit_once('#')) else {
                continue;
            };
            if Owner::parse(tag).is_some_and(|o| !o.is_alive()) {
                tracing::info!("removing {}, staged by a process that is gone", p.display());
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// For crash tests: when `TDSCALE_PAUSE_AT` names this point, the process stops itself
/// (SIGSTOP) here, so that a test can kill it at exactly this step. Unset, it does nothing.
fn pause_point(name: &str) {
    if std::env::var_os("TDSCALE_PAUSE_AT").is_some_and(|v| v == name) {
        unsafe { libc::raise(libc::SIGSTOP) };
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
