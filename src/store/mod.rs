//! The corpus store: Parquet tables under one root (a local folder or `s3://bucket/prefix`).
//!
//! [`tables`] names every table with its layout and schema; [`location`] resolves local and S3
//! URLs for the corpus and for everything tdscale writes elsewhere. Every write goes through
//! [`writer::PartWriter`], which makes a file visible only when it is complete: a single PUT, or
//! a multipart upload that is completed last (on a local root the object store stages the bytes
//! under a `#n` name that listings skip, then renames). [`read`] streams stored rows back without
//! a SQL session.

pub mod convert;
pub mod location;
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

use crate::error::{Error, Result};
use location::Location;
use tables::Table;

/// A corpus: the location of its root.
#[derive(Debug, Clone)]
pub struct Corpus {
    location: Location,
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
            .map(|location| Self { location })
            .map_err(|e| match e {
                Error::Usage(m) if m.starts_with("unsupported URL") => {
                    Error::Usage(format!("corpus: {m}"))
                }
                other => other,
            })
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

    /// Removes staging files left by a process that was killed mid-write (local roots only;
    /// on S3 an unfinished multipart upload is never visible and expires by bucket policy).
    pub fn remove_stale_staging(&self, table: &Table) -> usize {
        let Some(dir) = self.local_dir().map(|d| d.join(table.dir)) else {
            return 0;
        };
        let mut removed = 0;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once('#'))
                    .is_some_and(|(_, s)| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
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
