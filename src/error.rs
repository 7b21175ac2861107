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
    Sql(datafusion::error::DataFusionError),
    /// Input data was rejected and the user asked for `--strict`.
    #[error("{0}")]
    Rejected(String),
    /// The model backend failed every request of a synthesis batch (unreachable server, wrong
    /// key, URL or model name): nothing was synthesized.
    #[error("{0}")]
    Backend(String),
    /// Another process holds the corpus's writer lock and did not release it in time
    /// (`--lock-timeout`); the message names the holder.
    #[error("{0}")]
    Locked(String),
    /// This writer lost the corpus's writer lock while it worked (its S3 lease expired or was
    /// taken over): what it had not committed was not made visible.
    #[error("{0}")]
    LockLost(String),
    /// A signal (SIGINT, SIGTERM) stopped the command; nothing half-written is visible.
    #[error("{message}")]
    Interrupted { signal: i32, message: String },
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
    /// request of a batch, 7 when another writer held the corpus past `--lock-timeout`, 8 when
    /// this writer lost its lock, 128 + the signal's number when interrupted (130 for SIGINT,
    /// 143 for SIGTERM), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Rejected(_) => 3,
            Error::Sql(_) => 4,
            Error::Storage { .. } => 5,
            Error::Backend(_) => 6,
            Error::Locked(_) => 7,
            Error::LockLost(_) => 8,
            Error::Interrupted { signal, .. } => 128 + signal,
            Error::Io { .. } | Error::Other(_) => 1,
        }
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    /// A tdscale error that travelled through DataFusion (from a table's sink, e.g. the
    /// synthesis batch an INSERT runs) comes back as itself, so its exit code survives.
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError;
        match e {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::Sql(DataFusionError::External(other)),
            },
            DataFusionError::Context(context, inner) if matches!(inner.as_ref(), DataFusionError::External(x) if x.is::<Error>()) => {
                match Error::from(*inner) {
                    Error::Sql(e) => Error::Sql(e.context(context)),
                    ours => ours,
                }
            }
            other => Error::Sql(other),
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
