//! The corpus store: Parquet tables under one root URL (a local folder or `s3://bucket/prefix`).
//!
//! Every write goes through [`writer::PartWriter`], which makes a file visible only when it is
//! complete: a single PUT, or a multipart upload that is completed last (on a local root the
//! object store stages the bytes under a `#n` name that listings skip, then renames).

pub mod convert;
pub mod owner;
pub mod registry;
pub mod rows;
pub mod schema;
pub mod writer;

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use url::Url;

use crate::error::{Error, Result};

/// The tables of a corpus, each a directory under the root (DESIGN.md, "Storage").
pub mod tables {
    pub const TRAJECTORIES: &str = "trajectories";
    pub const TOOLS: &str = "tools";
    pub const REJECTS: &str = "rejects";
    /// Every Parquet table a corpus may hold, in the order they are registered.
    pub const PARQUET: &[&str] = &[
        TRAJECTORIES,
        TOOLS,
        "clusters",
        "cluster_edges",
        "blueprints",
        "batches",
        "rounds",
        "synthesis_rejects",
        "evals",
        "splits",
        "contamination",
    ];
}

/// A corpus: a root URL and the object store that holds it.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The root as given by the user, for messages.
    display: String,
    /// `file:///abs/path/` or `s3://bucket/prefix/` (always with a trailing slash).
    root_url: Url,
    store_url: ObjectStoreUrl,
    store: Arc<dyn ObjectStore>,
    /// The root inside the store.
    prefix: Path,
}

/// Builds an S3 store for `bucket` from the usual `AWS_*` variables. An `http://` endpoint
/// turns on plain HTTP, so a local S3-compatible server works with no extra setting.
pub fn s3_store_from_env(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    s3_store_with_retry(bucket, None)
}

/// [`s3_store_from_env`] with a retry policy for transient faults (the object store's default
/// when `None`: 10 retries within 3 minutes).
pub fn s3_store_with_retry(
    bucket: &str,
    retry: Option<object_store::RetryConfig>,
) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(r) = retry {
        builder = builder.with_retry(r);
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .unwrap_or_default();
    if endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true);
    }
    // Without keys the S3 client would ask the EC2 instance metadata service for credentials.
    // That only makes sense on AWS itself: not with a custom endpoint, nor when the standard
    // AWS_EC2_METADATA_DISABLED says so. Fail with what to set instead of probing the network.
    let has_keys = std::env::var("AWS_ACCESS_KEY_ID").is_ok()
        || std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").is_ok()
        || std::env::var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_ok()
        || std::env::var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_ok();
    let imds_disabled =
        std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if !has_keys && (!endpoint.is_empty() || imds_disabled) {
        return Err(Error::Storage {
            url: format!("s3://{bucket}"),
            message: "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
        });
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        builder = builder.with_region("us-east-1");
    }
    let store = builder.build().map_err(|e| Error::Storage {
        url: format!("s3://{bucket}"),
        message: format!(
            "{e}. Set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for an S3-compatible server, AWS_ENDPOINT_URL"
        ),
    })?;
    Ok(Arc::new(store))
}

/// The bucket and the key (or prefix) of an `s3://bucket/key` URL; `None` when `url` is not an
/// `s3://` URL, an error when it names no bucket.
///
/// ```
/// use tdscale::store::s3_parts;
/// assert_eq!(s3_parts("s3://b/runs/x.parquet").unwrap().unwrap(), ("b", "runs/x.parquet"));
/// assert_eq!(s3_parts("s3://b").unwrap().unwrap(), ("b", ""));
/// assert!(s3_parts("s3:///x").unwrap().is_err());
/// assert!(s3_parts("./corpus").is_none());
/// ```
pub fn s3_parts(url: &str) -> Option<Result<(&str, &str)>> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    Some(if bucket.is_empty() {
        Err(Error::Usage(format!(
            "`{url}` names no bucket: use s3://bucket/prefix"
        )))
    } else {
        Ok((bucket, key))
    })
}

impl Corpus {
    /// Opens (and for a local folder, creates) the corpus at `root`: a path, a `file://` URL or
    /// an `s3://bucket/prefix` URL.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let corpus = tdscale::store::Corpus::open(dir.path().to_str().unwrap()).unwrap();
    /// assert!(corpus.table_url("trajectories").ends_with("/trajectories/"));
    /// ```
    pub fn open(root: &str) -> Result<Self> {
        if let Some(parts) = s3_parts(root) {
            let (bucket, prefix) = parts?;
            let prefix = prefix.trim_end_matches('/');
            let root_url = Url::parse(&format!(
                "s3://{bucket}/{prefix}{}",
                if prefix.is_empty() { "" } else { "/" }
            ))
            .map_err(|e| Error::Usage(format!("`{root}` is not a valid URL: {e}")))?;
            return Ok(Self {
                display: root.to_string(),
                store_url: ObjectStoreUrl::parse(format!("s3://{bucket}"))?,
                store: s3_store_from_env(bucket)?,
                prefix: Path::from(prefix),
                root_url,
            });
        }
        if root.contains("://") && !root.starts_with("file://") {
            return Err(Error::Usage(format!(
                "unsupported corpus URL `{root}`: use a local path or s3://bucket/prefix"
            )));
        }
        let local = root.strip_prefix("file://").unwrap_or(root);
        std::fs::create_dir_all(local).map_err(|e| Error::io(local, e))?;
        let abs = std::fs::canonicalize(local).map_err(|e| Error::io(local, e))?;
        let root_url = Url::from_directory_path(&abs)
            .map_err(|_| Error::Usage(format!("`{root}` is not a usable directory")))?;
        let prefix = Path::from_filesystem_path(&abs).map_err(|e| Error::Storage {
            url: root.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            display: root.to_string(),
            store_url: ObjectStoreUrl::local_filesystem(),
            store: Arc::new(LocalFileSystem::new()),
            prefix,
            root_url,
        })
    }

    /// The root as the user gave it.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// True when the corpus lives in a local folder.
    pub fn is_local(&self) -> bool {
        self.root_url.scheme() == "file"
    }

    /// The local folder of a local corpus.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        self.is_local()
            .then(|| self.root_url.to_file_path().ok())
            .flatten()
    }

    /// The object store holding the corpus.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The location of `rel` (a path relative to the root) inside the store.
    pub fn path(&self, rel: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    /// The URL of a table directory, as DataFusion's listing tables take it.
    pub fn table_url(&self, table: &str) -> String {
        format!("{}{table}/", self.root_url)
    }

    /// Makes the corpus's object store known to a DataFusion session.
    pub fn register_store(&self, ctx: &SessionContext) {
        ctx.register_object_store(self.store_url.as_ref(), self.store.clone());
    }

    /// Lists the files of a table (recursively, so hive partitions are included).
    pub async fn list_table(&self, table: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = self.path(table);
        let listed: Vec<ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.storage_error(e))?;
        Ok(listed)
    }

    /// Deletes files (e.g. a table's previous files after its new ones are written).
    pub async fn remove_files(&self, files: Vec<ObjectMeta>) -> Result<()> {
        use object_store::ObjectStoreExt;
        for m in files {
            self.store
                .delete(&m.location)
                .await
                .map_err(|e| self.storage_error(e))?;
        }
        Ok(())
    }

    /// Removes staging files left by a process that was killed mid-write (local roots only;
    /// on S3 an unfinished multipart upload is never visible and expires by bucket policy).
    pub fn remove_stale_staging(&self, table: &str) -> usize {
        let Some(dir) = self.local_dir().map(|d| d.join(table)) else {
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
        Error::Storage {
            url: self.display.clone(),
            message: e.to_string(),
        }
    }
}
