//! Output objects: a local path or an `s3://` URL, written so that the object appears only when
//! complete.

use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Resolves `target` to a store and a path inside it. Local parents are created.
pub fn resolve(target: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
    if let Some(parts) = crate::store::s3_parts(target) {
        let (bucket, key) = parts?;
        if key.is_empty() {
            return Err(Error::Usage(format!(
                "`{target}` names no object: use s3://bucket/key"
            )));
        }
        return Ok((crate::store::s3_store_from_env(bucket)?, Path::from(key)));
    }
    let p = std::path::Path::new(target);
    if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
    let path = Path::from_absolute_path(&abs)
        .map_err(|e| Error::Usage(format!("bad output path {target}: {e}")))?;
    Ok((Arc::new(LocalFileSystem::new()), path))
}

/// A buffered writer to `target` (multipart for large objects).
pub fn writer(target: &str) -> Result<BufWriter> {
    let (store, path) = resolve(target)?;
    Ok(BufWriter::new(store, path))
}
