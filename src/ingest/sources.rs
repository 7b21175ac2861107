//! What to read: the inputs of an ingest expanded to files — local files, folders (read
//! recursively), glob patterns, and `s3://` objects, prefixes and patterns, through the same
//! object-store configuration as the corpus ([`crate::store::location`]) — and blocking readers of
//! them for the worker thread.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use super::local_file::{FileReader, FileReads};
use crate::error::{Error, Result};
use crate::store::location::{Location, s3_parts};

/// The extensions read from folders and prefixes (each also `.gz`, `.zst` or `.zstd`).
pub const INPUT_EXTENSIONS: &[&str] = &["json", "jsonl", "ndjson", "traj", "parquet"];

/// One file to ingest.
#[derive(Debug, Clone)]
pub struct Input {
    /// The path or URL, for messages.
    pub display: String,
    pub size: u64,
    pub kind: InputKind,
}

/// Where an input lives.
#[derive(Debug, Clone)]
pub enum InputKind {
    Local(PathBuf),
    Object {
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
    },
    /// Rows handed over in memory ([`super::ingest_batches`]): no file behind them.
    Rows,
}

impl Input {
    /// Rows handed over in memory, named `name` in summaries and rejects.
    pub fn rows(name: &str) -> Self {
        Input {
            display: name.to_string(),
            size: 0,
            kind: InputKind::Rows,
        }
    }

    /// The file name (last path segment).
    pub fn name(&self) -> &str {
        self.display.rsplit('/').next().unwrap_or(&self.display)
    }

    /// The local path, for a local input.
    pub fn local_path(&self) -> Option<&Path> {
        match &self.kind {
            InputKind::Local(p) => Some(p),
            InputKind::Object { .. } | InputKind::Rows => None,
        }
    }

    /// True for a Parquet file (by name).
    pub fn is_parquet(&self) -> bool {
        let n = self.name();
        n.ends_with(".parquet") || n.ends_with(".parq")
    }
}

/// True when a file name has one of [`INPUT_EXTENSIONS`], compressed or not.
pub fn is_input_name(name: &str) -> bool {
    let mut n = name;
    for c in [".gz", ".zst", ".zstd"] {
        if let Some(s) = n.strip_suffix(c) {
            n = s;
        }
    }
    INPUT_EXTENSIONS
        .iter()
        .any(|e| n.len() > e.len() && n.ends_with(e) && n.as_bytes()[n.len() - e.len() - 1] == b'.')
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn pattern(p: &str) -> Result<glob::Pattern> {
    glob::Pattern::new(p).map_err(|e| Error::Usage(format!("bad glob pattern `{p}`: {e}")))
}

fn options() -> glob::MatchOptions {
    glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    }
}

/// Whether a file found under a folder or prefix is read: it matches `--glob` (against its path
/// relative to the folder) or, without one, has an input extension.
fn wanted(rel: &str, glob: Option<&glob::Pattern>) -> bool {
    match glob {
        Some(g) => g.matches_with(rel, options()),
        None => is_input_name(rel.rsplit('/').next().unwrap_or(rel)),
    }
}

fn walk(dir: &Path, glob: Option<&glob::Pattern>, out: &mut Vec<Input>) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    let mut found = vec![];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for e in entries {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let ft = e.file_type().map_err(|e| Error::io(&p, e))?;
            if ft.is_dir() || (ft.is_symlink() && p.is_dir()) {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                if wanted(&rel, glob) {
                    found.push(p);
                }
            }
        }
    }
    found.sort();
    for p in found {
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        out.push(Input {
            display: p.display().to_string(),
            size,
            kind: InputKind::Local(p),
        });
    }
    Ok(())
}

async fn s3_inputs(url: &str, glob: Option<&glob::Pattern>, out: &mut Vec<Input>) -> Result<()> {
    let (bucket, key) = s3_parts(url).expect("an s3 URL")?;
    let location = Location::open(&format!("s3://{bucket}"))?;
    let store = location.store();
    // A pattern in the URL itself: list from the folder before its first wildcard.
    let (prefix, own_pattern) = if has_wildcard(key) {
        let cut = key[..key.find(['*', '?', '[']).unwrap_or(0)]
            .rfind('/')
            .map_or(0, |i| i + 1);
        (key[..cut].to_string(), Some(pattern(&key[cut..])?))
    } else {
        (key.to_string(), None)
    };
    if own_pattern.is_none() && !prefix.is_empty() && !prefix.ends_with('/') {
        // An object, unless it is a folder named without its slash.
        let path = ObjectPath::from(prefix.as_str());
        match store.head(&path).await {
            Ok(meta) => {
                out.push(Input {
                    display: url.to_string(),
                    size: meta.size,
                    kind: InputKind::Object { store, path },
                });
                return Ok(());
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(location.storage_error(e)),
        }
    }
    let folder = prefix.trim_end_matches('/').to_string();
    let list_path = (!folder.is_empty()).then(|| ObjectPath::from(folder.as_str()));
    let mut objects: Vec<_> = store
        .list(list_path.as_ref())
        .try_collect()
        .await
        .map_err(|e| location.storage_error(e))?;
    objects.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
    let before = out.len();
    for meta in objects {
        let full = meta.location.as_ref().to_string();
        let rel = if folder.is_empty() {
            full.clone()
        } else {
            full.strip_prefix(&format!("{folder}/"))
                .unwrap_or(&full)
                .to_string()
        };
        let keep = match (&own_pattern, glob) {
            (Some(p), g) => {
                p.matches_with(&rel, options()) && g.is_none_or(|g| g.matches_with(&rel, options()))
            }
            (None, g) => wanted(&rel, g),
        };
        if keep {
            out.push(Input {
                display: format!("s3://{bucket}/{full}"),
                size: meta.size,
                kind: InputKind::Object {
                    store: store.clone(),
                    path: meta.location,
                },
            });
        }
    }
    if out.len() == before {
        return Err(Error::Usage(format!(
            "`{url}` names no object and no input file under it"
        )));
    }
    Ok(())
}

/// Expands the inputs as given on the command line into the files to read, in order: a file is
/// itself, a folder every input file under it (recursively, hidden entries skipped; with
/// `glob`, the files whose relative path matches it), a pattern (`data/*.parquet`,
/// `s3://bucket/raw/*.jsonl.zst`) the files it matches, an `s3://` prefix every object under it.
pub async fn expand(inputs: &[String], glob: Option<&str>) -> Result<Vec<Input>> {
    let glob = glob.map(pattern).transpose()?;
    let mut out = vec![];
    for input in inputs {
        if s3_parts(input).is_some() {
            s3_inputs(input, glob.as_ref(), &mut out).await?;
            continue;
        }
        if input.contains("://") && !input.starts_with("file://") {
            return Err(Error::Usage(format!(
                "unsupported input URL `{input}`: use a local path or s3://bucket/key"
            )));
        }
        let local = input.strip_prefix("file://").unwrap_or(input);
        let path = PathBuf::from(local);
        if path.is_dir() {
            let before = out.len();
            walk(&path, glob.as_ref(), &mut out)?;
            if out.len() == before {
                return Err(Error::Usage(format!(
                    "`{input}` is a folder with no input file in it ({}, optionally .gz or .zst{})",
                    INPUT_EXTENSIONS
                        .iter()
                        .map(|e| format!(".{e}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    glob.as_ref()
                        .map(|g| format!(", matching --glob `{}`", g.as_str()))
                        .unwrap_or_default()
                )));
            }
        } else if path.exists() {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push(Input {
                display: path.display().to_string(),
                size,
                kind: InputKind::Local(path),
            });
        } else if has_wildcard(local) {
            let mut matched: Vec<PathBuf> = glob::glob(local)
                .map_err(|e| Error::Usage(format!("bad glob pattern `{input}`: {e}")))?
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect();
            matched.sort();
            if matched.is_empty() {
                return Err(Error::Usage(format!("`{input}` matches no file")));
            }
            for p in matched {
                let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                out.push(Input {
                    display: p.display().to_string(),
                    size,
                    kind: InputKind::Local(p),
                });
            }
        } else {
            return Err(Error::Usage(format!("input `{input}` does not exist")));
        }
    }
    Ok(out)
}

/// An object read front to back as one request, for the blocking worker.
pub struct ObjectStream {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
    rt: tokio::runtime::Handle,
}

impl Read for ObjectStream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = self.buf.len().min(out.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// The raw bytes of an input (compressed as stored), counting what is read into `count`.
/// Called on a blocking thread of the runtime (object reads wait on it).
pub fn open_raw(
    input: &Input,
    reads: FileReads,
    count: Arc<AtomicU64>,
) -> std::io::Result<Box<dyn BufRead + Send>> {
    Ok(match &input.kind {
        InputKind::Local(p) => Box::new(FileReader::open(p, reads, count)?),
        InputKind::Object { store, path } => {
            let rt = tokio::runtime::Handle::current();
            let got = rt
                .block_on(store.get(path))
                .map_err(std::io::Error::other)?;
            let stream = ObjectStream {
                stream: got.into_stream(),
                buf: Bytes::new(),
                rt,
            };
            Box::new(BufReader::with_capacity(
                1 << 20,
                super::input::Counting {
                    inner: stream,
                    count,
                },
            ))
        }
        InputKind::Rows => {
            return Err(std::io::Error::other(
                "rows handed over in memory have no bytes to read",
            ));
        }
    })
}

/// A Parquet file in an object store, for the blocking Parquet reader: page reads become range
/// requests.
pub struct ObjectChunks {
    pub store: Arc<dyn ObjectStore>,
    pub path: ObjectPath,
    pub size: u64,
    pub rt: tokio::runtime::Handle,
    pub count: Arc<AtomicU64>,
}

impl datafusion::parquet::file::reader::Length for ObjectChunks {
    fn len(&self) -> u64 {
        self.size
    }
}

impl datafusion::parquet::file::reader::ChunkReader for ObjectChunks {
    type T = ObjectStream;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        let opts = GetOptions {
            range: Some(GetRange::Offset(start)),
            ..Default::default()
        };
        let got = self
            .rt
            .block_on(self.store.get_opts(&self.path, opts))
            .map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))?;
        Ok(ObjectStream {
            stream: got.into_stream(),
            buf: Bytes::new(),
            rt: self.rt.clone(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> datafusion::parquet::errors::Result<Bytes> {
        let b = self
            .rt
            .block_on(
                self.store
                    .get_range(&self.path, start..start + length as u64),
            )
            .map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))?;
        self.count.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
}
