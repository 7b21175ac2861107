//! Errors that tell the user what went wrong and what to do, and the exit code of each kind.

use std::path::Path;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in tdscale.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or a parameter is wrong.
    #[error("{0}")]
    Usage(String),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The object store (local folder or S3) refused an operation.
    #[error("storage error at {url}: {message}")]
    Storage { url: String, message: String },
    /// A SQL statement failed to parse, plan or run.
    #[error("{0}")]
    Sql(#[from] datafusion::error::DataFusionError),
    /// Input data was rejected and the user asked for `--strict`.
    #[error("{0}")]
    Rejected(String),
    /// The model backend failed every request of a synthesis batch (unreachable server, wrong
    /// key, URL or model name): nothing was synthesized.
    #[error("{0}")]
    Backend(String),
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// The process exit code for this error: 2 for usage errors, 3 for rejected input under
    /// `--strict`, 4 for SQL errors, 5 for storage errors, 6 when the model backend failed every
    /// request of a batch, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Rejected(_) => 3,
            Error::Sql(_) => 4,
            Error::Storage { .. } => 5,
            Error::Backend(_) => 6,
            Error::Io { .. } | Error::Other(_) => 1,
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::Sql(e.into())
    }
}

impl From<datafusion::parquet::errors::ParquetError> for Error {
    fn from(e: datafusion::parquet::errors::ParquetError) -> Self {
        Error::Sql(e.into())
    }
}
