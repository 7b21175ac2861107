//! What a command that writes into a corpus needs from the command line: the lock timeout, letting
//! a lock go, and noticing SIGINT / SIGTERM.

use crate::error::Result;
use crate::store::Corpus;
use crate::store::lock::WriterLock;

/// How long writers wait for one another (`--lock-timeout`), set once from the command line.
static LOCK_TIMEOUT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// Opens the corpus at `root` with the command line's `--lock-timeout`.
pub(super) fn corpus(root: &str) -> Result<Corpus> {
    let c = Corpus::open(root)?;
    Ok(match LOCK_TIMEOUT.get() {
        Some(t) => c.with_lock_timeout(*t),
        None => c,
    })
}

/// Sets the lock timeout of every corpus the command opens (once, from `--lock-timeout`).
pub(super) fn set_lock_timeout(timeout: std::time::Duration) {
    let _ = LOCK_TIMEOUT.set(timeout);
}

/// Waits for SIGINT or SIGTERM and returns its number and name. The handlers are installed when
/// this is called, not when the future is first polled, so a signal that arrives while the
/// command starts is not missed (it would otherwise kill the process outright).
pub(super) fn interrupted() -> impl std::future::Future<Output = (i32, &'static str)> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match handlers {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => (libc::SIGINT, "SIGINT"),
                _ = term.recv() => (libc::SIGTERM, "SIGTERM"),
            },
            _ => std::future::pending().await,
        }
    }
}

/// Lets a writer lock go, if there is one.
pub(super) async fn release(lock: Option<WriterLock>) {
    if let Some(l) = lock {
        l.release().await;
    }
}
