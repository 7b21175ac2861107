//! The corpus store: Parquet tables under one root (a local folder or `s3://bucket/prefix`).
//!
//! [`tables`] names every table with its layout and schema; [`location`] resolves local and S3
//! URLs for the corpus and for everything tdscale writes elsewhere. Every write goes through
//! [`writer::PartWriter`], which makes a file visible only when it is complete: a single PUT, or
//! a multipart upload that is completed last (on a local root the object store stages the bytes
//! under a `#n` name that listings skip, then renames). [`read`] streams stored rows back without
//! a SQL session. [`lock`] keeps to one writer at a time per corpus.

pub mod convert;
pub mod location;
pub mod lock;
pub mod owner;
pub mod read;
pub mod registry;
pub mod rows;
pub mod schema;
pub mod tables;
pub mod trajectory_metrics;
pub mod writer;

use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use location::Location;
use tables::Table;

/// A corpus: the location of its root, and how long its writers wait for one another.
#[derive(Debug, Clone)]
pub struct Corpus {
    location: Location,
    lock_timeout: Duration,
}

impl Corpus {
    /// Opens (and for a local folder, creates) the corpus at `root`: a path, a `file://` URL or
    /// an `s3://bucket/prefix` URL.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let corpus = tdscale::store::Corpus::open(dir.path().to_str().unwrap()).unwrap();
    /// assert!(corpus.table_url(&tdscale::store::tables::TRAJECTORIES).ends_with("/trajectories/"));
    /// ```
    pub fn open(root: &str) -> Result<Self> {
        Location::open(root)
            .map(|location| Self {
                location,
                lock_timeout: lock::DEFAULT_TIMEOUT,
            })
            .map_err(|e| match e {
                Error::Usage(m) if m.starts_with("unsupported URL") => {
                    Error::Usage(format!("corpus: {m}"))
                }
                other => other,
            })
    }

    /// How long a writer waits for another one that holds the corpus (default 10 minutes;
    /// zero: one attempt).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long a writer waits for another one.
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// Takes the corpus's writer lock for `command` (waiting for another writer up to the lock
    /// timeout); every command that writes into the corpus holds it while it writes.
    pub async fn lock_writer(&self, command: &str) -> Result<lock::WriterLock> {
        lock::acquire(self, command).await
    }

    /// Whether `url` (a folder or object given by the user) lies inside the corpus's root, so
    /// that writing it is writing into the corpus.
    pub fn contains(&self, url: &str) -> bool {
        let root = self.location.url_of("");
        let target = match location::s3_parts(url) {
            Some(Ok((bucket, key))) => format!("s3://{bucket}/{}", key.trim_start_matches('/')),
            Some(Err(_)) => return false,
            None => {
                let local = url.strip_prefix("file://").unwrap_or(url);
                let path = std::path::Path::new(local);
                // The path may not exist yet: resolve its nearest existing ancestor.
                let mut existing = path;
                let mut rest = vec![];
                while !existing.exists() {
                    match (existing.parent(), existing.file_name()) {
                        (Some(p), Some(n)) => {
                            rest.push(n.to_os_string());
                            existing = if p.as_os_str().is_empty() {
                                std::path::Path::new(".")
                            } else {
                                p
                            };
                        }
                        _ => return false,
                    }
                }
                let Ok(mut abs) = std::fs::canonicalize(existing) else {
                    return false;
                };
                abs.extend(rest.iter().rev());
                match url::Url::from_file_path(&abs) {
                    Ok(u) => u.to_string(),
                    Err(_) => return false,
                }
            }
        };
        format!("{}/", target.trim_end_matches('/')).starts_with(&root)
    }

    /// The root's location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The root as the user gave it.
    pub fn display(&self) -> &str {
        self.location.display()
    }

    /// True when the corpus lives in a local folder.
    pub fn is_local(&self) -> bool {
        self.location.is_local()
    }

    /// The local folder of a local corpus.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        self.location.local_dir()
    }

    /// The object store holding the corpus.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.location.store()
    }

    /// The location of `rel` (a path relative to the root) inside the store.
    pub fn path(&self, rel: &str) -> Path {
        self.location.path(rel)
    }

    /// The URL of a table's folder, as DataFusion's listing tables take it.
    pub fn table_url(&self, table: &Table) -> String {
        self.location.url_of(&format!("{}/", table.dir))
    }

    /// Makes the corpus's object store known to a DataFusion session.
    pub fn register_store(&self, ctx: &SessionContext) {
        self.location.register_store(ctx);
    }

    /// Lists the objects under `rel` (a table's folder or a part of it), recursively.
    pub async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        self.location.list(rel).await
    }

    /// Lists the data files of a table (hive partitions included; staging files excluded).
    pub async fn list_table(&self, table: &Table) -> Result<Vec<ObjectMeta>> {
        Ok(self
            .list(table.dir)
            .await?
            .into_iter()
            .filter(|m| m.location.as_ref().ends_with(table.extension()))
            .collect())
    }

    /// Deletes files (e.g. a table's previous files after its new ones are written).
    pub async fn remove_files(&self, files: Vec<ObjectMeta>) -> Result<()> {
        self.location.delete(files).await
    }

    /// Removes, from every table folder of a local corpus, the staging files (`…#n`) and
    /// uncommitted parts (`….pending`) of writers that are gone — each name carries its owner's
    /// pid and start time — and returns how many. Files of live processes are left alone. Run by
    /// the writer that takes the corpus's lock. On S3 an unfinished multipart upload is never
    /// visible; uncommitted parts left there are removed by the next commit into their table.
    pub fn remove_stale_staging(&self) -> usize {
        let Some(root) = self.local_dir() else {
            return 0;
        };
        let mut removed = 0;
        let mut stack: Vec<std::path::PathBuf> =
            tables::ALL.iter().map(|t| root.join(t.name)).collect();
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if (is_staging_name(name) || is_pending_name(name))
                    && lock::owner_gone(name)
                    && std::fs::remove_file(&p).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Wraps an object-store error with the corpus URL.
    pub fn storage_error(&self, e: object_store::Error) -> Error {
        self.location.storage_error(e)
    }
}

/// A local object store's staging name: `<final name>#<digits>`.
pub fn is_staging_name(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, s)| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

/// The suffix of a part written but not yet committed.
pub const PENDING_SUFFIX: &str = ".pending";

/// A part written but not committed: `<final name>.pending` (or its staging file).
pub fn is_pending_name(name: &str) -> bool {
    name.split('#')
        .next()
        .is_some_and(|n| n.ends_with(PENDING_SUFFIX))
}
