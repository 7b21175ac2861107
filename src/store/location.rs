//! Where data lives: a local folder or an `s3://bucket/prefix` (any S3-compatible endpoint from
//! the usual `AWS_*` variables), as one object store and a root inside it. The corpus, the
//! evaluation exports, budget outputs and single output files all resolve their URLs here.

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// Builds an S3 store for `bucket` from the usual `AWS_*` variables, with the object store's
/// default retries (10 within 3 minutes) unless `retry` says otherwise. An `http://` endpoint
/// turns on plain HTTP, so a local S3-compatible server works with no extra setting.
pub fn s3_store(bucket: &str, retry: Option<RetryConfig>) -> Result<Arc<dyn ObjectStore>> {
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
/// use tdscale::store::location::s3_parts;
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

/// A root folder in an object store.
#[derive(Debug, Clone)]
pub struct Location {
    /// The URL as the user gave it, for messages.
    display: String,
    /// `file:///abs/path/` or `s3://bucket/prefix/` (always with a trailing slash).
    url: Url,
    store_url: ObjectStoreUrl,
    store: Arc<dyn ObjectStore>,
    /// The root inside the store.
    root: Path,
}

impl Location {
    /// Opens `url` — a path, a `file://` URL or `s3://bucket/prefix` — with the object store's
    /// default retries. A local folder is created if missing.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let loc = tdscale::store::location::Location::open(dir.path().to_str().unwrap()).unwrap();
    /// assert!(loc.url_of("t/").ends_with("/t/"));
    /// assert!(loc.is_local());
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with_retry(url, None)
    }

    /// [`Location::open`] with a retry policy for an S3 store.
    pub fn open_with_retry(url: &str, retry: Option<RetryConfig>) -> Result<Self> {
        if let Some(parts) = s3_parts(url) {
            let (bucket, prefix) = parts?;
            let prefix = prefix.trim_matches('/');
            let root_url = Url::parse(&format!(
                "s3://{bucket}/{prefix}{}",
                if prefix.is_empty() { "" } else { "/" }
            ))
            .map_err(|e| Error::Usage(format!("`{url}` is not a valid URL: {e}")))?;
            return Ok(Self {
                display: url.trim_end_matches('/').to_string(),
                store_url: ObjectStoreUrl::parse(format!("s3://{bucket}"))?,
                store: s3_store(bucket, retry)?,
                root: Path::from(prefix),
                url: root_url,
            });
        }
        if url.contains("://") && !url.starts_with("file://") {
            return Err(Error::Usage(format!(
                "unsupported URL `{url}`: use a local path or s3://bucket/prefix"
            )));
        }
        let local = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(local).map_err(|e| Error::io(local, e))?;
        let abs = std::fs::canonicalize(local).map_err(|e| Error::io(local, e))?;
        let root_url = Url::from_directory_path(&abs)
            .map_err(|_| Error::Usage(format!("`{url}` is not a usable directory")))?;
        let root = Path::from_filesystem_path(&abs).map_err(|e| Error::Storage {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            display: url.trim_end_matches('/').to_string(),
            store_url: ObjectStoreUrl::local_filesystem(),
            store: Arc::new(LocalFileSystem::new()),
            root,
            url: root_url,
        })
    }

    /// The folder of a single output object and the object's name: `out/x.jsonl` or
    /// `s3://bucket/out/x.jsonl` (local parents are created).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let target = dir.path().join("a/b.jsonl");
    /// let (loc, name) = tdscale::store::location::Location::of_object(target.to_str().unwrap()).unwrap();
    /// assert_eq!(name, "b.jsonl");
    /// assert!(dir.path().join("a").is_dir());
    /// assert!(tdscale::store::location::Location::of_object("s3://bucket").is_err());
    /// ```
    pub fn of_object(url: &str) -> Result<(Self, String)> {
        let (parent, name) = match url.trim_end_matches('/').rsplit_once('/') {
            Some((p, n)) if !n.is_empty() => (p.to_string(), n.to_string()),
            _ => (".".to_string(), url.to_string()),
        };
        if let Some(parts) = s3_parts(url) {
            let (_, key) = parts?;
            if key.trim_matches('/').is_empty() {
                return Err(Error::Usage(format!(
                    "`{url}` names no object: use s3://bucket/key"
                )));
            }
        }
        Ok((
            Self::open(if parent.is_empty() { "/" } else { &parent })?,
            name,
        ))
    }

    /// The URL as the user gave it (without a trailing slash).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// True for a local folder.
    pub fn is_local(&self) -> bool {
        self.url.scheme() == "file"
    }

    /// The local folder, for a local location.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        self.is_local()
            .then(|| self.url.to_file_path().ok())
            .flatten()
    }

    /// The object store.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The location of `rel` (a path relative to the root) inside the store.
    pub fn path(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|s| !s.is_empty())
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// The full URL of `rel`, as DataFusion takes it (`rel` ending in `/` names a folder).
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}{}", self.url, rel.trim_start_matches('/'))
    }

    /// Makes the store known to a DataFusion session.
    pub fn register_store(&self, ctx: &SessionContext) {
        ctx.register_object_store(self.store_url.as_ref(), self.store.clone());
    }

    /// Every object under `rel`, recursively.
    pub async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(&self.path(rel)))
            .try_collect()
            .await
            .map_err(|e| self.storage_error(e))
    }

    /// Deletes objects.
    pub async fn delete(&self, objects: Vec<ObjectMeta>) -> Result<()> {
        for m in objects {
            self.store
                .delete(&m.location)
                .await
                .map_err(|e| self.storage_error(e))?;
        }
        Ok(())
    }

    /// Writes one complete object atomically: a single PUT, or for a large object a multipart
    /// upload that is completed last.
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut w = self.writer(rel);
        let written = async {
            w.write_all(&bytes).await?;
            w.shutdown().await
        }
        .await;
        written.map_err(|e| Error::Storage {
            url: self.url_of(rel),
            message: e.to_string(),
        })
    }

    /// A buffered writer of `rel` (multipart for large objects) that makes the object visible
    /// only when shut down.
    pub fn writer(&self, rel: &str) -> BufWriter {
        BufWriter::new(self.store.clone(), self.path(rel))
    }

    /// Checks that the store answers (one HEAD request; a missing object is an answer), so a
    /// wrong endpoint or refused credentials are reported before any work starts.
    pub async fn check_reachable(&self) -> Result<()> {
        match self.store.head(&self.path("_tdscale_probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.storage_error(e)),
        }
    }

    /// Wraps an object-store error with the location's URL.
    pub fn storage_error(&self, e: object_store::Error) -> Error {
        Error::Storage {
            url: self.display.clone(),
            message: e.to_string(),
        }
    }
}
