//! An object-store registry that creates S3 stores on first use, so any `s3://bucket/...` URL in
//! SQL (a table location, a COPY target, a file queried by path) works with the `AWS_*` settings
//! and no registration step.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use url::Url;

/// The registry.
#[derive(Debug, Default)]
pub struct S3FromEnvRegistry {
    inner: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for S3FromEnvRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match self.inner.get_store(url) {
            Ok(s) => Ok(s),
            Err(_) if url.scheme() == "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                let store = super::location::s3_store(bucket, None)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                self.inner.register_store(url, store.clone());
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }
}
