//! One writer at a time per corpus.
//!
//! Every command that writes into a corpus takes its writer lock first and keeps it until it is
//! done: on a local folder an OS file lock on `<root>/writer.lock` (released by the kernel when the
//! process ends, however it ends); on S3 a lease object `<root>/writer.lease` with an expiry,
//! created with a conditional PUT (`If-None-Match: *`), renewed while the writer works with a PUT
//! conditional on the lease's e-tag, and released at the end. A lease that is not renewed (its
//! holder was killed) expires, and the next writer takes it over with a PUT conditional on the
//! e-tag it read, so two writers can never both take it.
//!
//! A second writer waits, saying who holds the corpus (pid, host, command, start time), for up to
//! the corpus's lock timeout, then fails with [`Error::Locked`]. The lock is re-entrant within a
//! process (an evolution round runs synthesis batches, each of which also takes it). Taking it
//! removes the staging files that writers which are gone left in the table folders, and only
//! those: each staging name carries its owner's pid and start time ([`super::owner`]).
//!
//! Writers that commit rows unique by id also serialise their commits within the process
//! ([`commit_section`]) and, on S3, renew the lease right before each commit: a writer whose
//! lease was taken over stops with [`Error::LockLost`] instead of making its part visible.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::Corpus;
use super::owner::Owner;
use crate::error::{Error, Result};

/// The lock file of a local corpus, in its root.
pub const LOCK_FILE: &str = "writer.lock";
/// The lease object of an S3 corpus, in its root.
pub const LEASE_OBJECT: &str = "writer.lease";
/// How long a second writer waits by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long an S3 lease lasts without renewal (renewed every third of it). Set
/// `TDSCALE_LEASE_SECONDS` to change it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How often a waiting writer tries again.
const POLL: Duration = Duration::from_millis(200);
/// How often a waiting writer says it is still waiting.
const REMIND: Duration = Duration::from_secs(30);

/// Who holds a corpus's writer lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// What it is doing: `ingest`, `evolve`, …
    pub command: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl Holder {
    fn current(command: &str) -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
            command: command.to_string(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on host {}, since {})",
            self.command, self.pid, self.host, self.since
        )
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL either way.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The lease object's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    holder: Holder,
    /// Milliseconds since the Unix epoch after which the lease is free.
    expires_at_ms: i64,
    /// Set when the holder let it go.
    #[serde(default)]
    released: bool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms_to_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// How long a lease lasts: `TDSCALE_LEASE_SECONDS`, else [`DEFAULT_LEASE`].
pub fn lease_duration() -> Duration {
    std::env::var("TDSCALE_LEASE_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_LEASE)
}

/// An S3 lease this process holds.
struct LeaseState {
    store: Arc<dyn ObjectStore>,
    path: Path,
    holder: Holder,
    ttl: Duration,
    /// The version of the lease object we wrote last; renewals are conditional on it.
    version: tokio::sync::Mutex<Option<UpdateVersion>>,
    expires_at_ms: AtomicI64,
    /// Why the lease was lost, once it is.
    lost: Mutex<Option<String>>,
    display: String,
}

impl LeaseState {
    fn lease(&self, expires_at_ms: i64, released: bool) -> Vec<u8> {
        serde_json::to_vec(&Lease {
            holder: self.holder.clone(),
            expires_at_ms,
            released,
        })
        .expect("a lease serialises")
    }

    fn lost_reason(&self) -> Option<String> {
        if let Some(r) = self.lost.lock().expect("lease state").clone() {
            return Some(r);
        }
        let expires = self.expires_at_ms.load(Ordering::SeqCst);
        (now_ms() >= expires).then(|| {
            format!(
                "its lease expired at {} before it could be renewed",
                ms_to_text(expires)
            )
        })
    }

    fn set_lost(&self, reason: String) {
        self.lost.lock().expect("lease state").get_or_insert(reason);
    }

    /// Extends the lease (a PUT conditional on the version we wrote last). A lease someone else
    /// took over is lost for good; a failed request is retried by the next renewal, and the
    /// lease is lost only if it expires meanwhile.
    async fn renew(&self) -> Result<()> {
        if let Some(reason) = self.lost.lock().expect("lease state").clone() {
            return Err(self.lost_error(&reason));
        }
        let mut version = self.version.lock().await;
        let expires = now_ms() + self.ttl.as_millis() as i64;
        let put = self
            .store
            .put_opts(
                &self.path,
                self.lease(expires, false).into(),
                PutOptions::from(PutMode::Update(version.clone().unwrap_or(UpdateVersion {
                    e_tag: None,
                    version: None,
                }))),
            )
            .await;
        match put {
            Ok(r) => {
                *version = Some(r.into());
                self.expires_at_ms.store(expires, Ordering::SeqCst);
                Ok(())
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => {
                let reason = "another writer took over its lease".to_string();
                self.set_lost(reason.clone());
                Err(self.lost_error(&reason))
            }
            Err(e) => match self.lost_reason() {
                Some(reason) => {
                    self.set_lost(format!("{reason} ({e})"));
                    Err(self.lost_error(&reason))
                }
                None => {
                    tracing::warn!("renewing the writer lease of {} failed: {e}", self.display);
                    Ok(())
                }
            },
        }
    }

    fn lost_error(&self, reason: &str) -> Error {
        Error::LockLost(format!(
            "lost the writer lock of {}: {reason}. Nothing this command had not committed was \
             made visible; run it again",
            self.display
        ))
    }

    /// Marks the lease released (conditional on our version), so the next writer need not wait
    /// for it to expire.
    async fn release(&self) {
        if self.lost.lock().expect("lease state").is_some() {
            return;
        }
        let version = self.version.lock().await;
        let Some(v) = version.clone() else { return };
        let put = self
            .store
            .put_opts(
                &self.path,
                self.lease(now_ms(), true).into(),
                PutOptions::from(PutMode::Update(v)),
            )
            .await;
        if let Err(e) = put {
            tracing::warn!(
                "releasing the writer lease of {} failed ({e}); it expires by itself",
                self.display
            );
        }
        self.set_lost("it was released".into());
    }
}

enum Kind {
    /// The open lock file; closing it releases the OS lock.
    Local(std::fs::File),
    S3 {
        lease: Arc<LeaseState>,
        renewal: tokio::task::JoinHandle<()>,
    },
}

/// A held lock, shared by every writer of this process on the same corpus.
struct Held {
    key: String,
    kind: Kind,
}

impl Drop for Held {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Local(file) => {
                // Clear the holder's name before the lock goes with the file.
                let _ = file.set_len(0);
            }
            Kind::S3 { lease, renewal } => {
                renewal.abort();
                if lease.lost.lock().expect("lease state").is_none()
                    && let Ok(rt) = tokio::runtime::Handle::try_current()
                {
                    let lease = lease.clone();
                    rt.spawn(async move { lease.release().await });
                }
            }
        }
        let mut held = HELD.lock().expect("lock registry");
        if held.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            held.remove(&self.key);
        }
    }
}

/// The locks this process holds, by corpus.
static HELD: LazyLock<Mutex<HashMap<String, Weak<Held>>>> = LazyLock::new(Default::default);
/// Taking a lock is one attempt at a time per process, so that a second task of this process
/// finds the first one's lock instead of racing it.
static TAKING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(Default::default);
/// Commits of rows unique by id, one at a time per corpus within this process.
static COMMITS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

fn key_of(corpus: &Corpus) -> String {
    corpus.location().url_of("")
}

fn held(corpus: &Corpus) -> Option<Arc<Held>> {
    HELD.lock()
        .expect("lock registry")
        .get(&key_of(corpus))
        .and_then(Weak::upgrade)
}

/// A corpus's writer lock, held until the last clone is released or dropped.
#[derive(Clone)]
pub struct WriterLock {
    held: Arc<Held>,
    /// True when this acquisition took the lock (false: it joined one this process held).
    taken_now: bool,
}

impl std::fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriterLock({})", self.held.key)
    }
}

impl WriterLock {
    /// Lets the lock go. On S3 the lease is marked released before this returns (dropping the
    /// lock does it in the background), so the next writer can start at once.
    pub async fn release(self) {
        let Self { held, .. } = self;
        if let Ok(held) = Arc::try_unwrap(held)
            && let Kind::S3 { lease, renewal } = &held.kind
        {
            renewal.abort();
            lease.release().await;
        }
    }

    /// Whether this call took the lock, rather than joining one this process already held: what
    /// was read before it may predate another writer's work.
    pub fn taken_now(&self) -> bool {
        self.taken_now
    }

    /// An error if this writer no longer holds the lock (its S3 lease was lost or expired).
    pub fn check(&self) -> Result<()> {
        match &self.held.kind {
            Kind::Local(_) => Ok(()),
            Kind::S3 { lease, .. } => match lease.lost_reason() {
                Some(reason) => Err(lease.lost_error(&reason)),
                None => Ok(()),
            },
        }
    }
}

/// What one attempt at the lock found.
enum Attempt {
    Taken(Arc<Held>, Option<Holder>),
    /// Someone else holds it (`None`: a holder that has not written its name yet).
    Busy(Option<Holder>),
}

/// Takes the writer lock of `corpus` for `command`, waiting up to the corpus's lock timeout
/// (see [`Corpus::with_lock_timeout`]) while another process holds it.
pub async fn acquire(corpus: &Corpus, command: &str) -> Result<WriterLock> {
    let timeout = corpus.lock_timeout();
    let started = std::time::Instant::now();
    let mut last_said: Option<std::time::Instant> = None;
    loop {
        let attempt = {
            let _taking = TAKING.lock().await;
            if let Some(h) = held(corpus) {
                return Ok(WriterLock {
                    held: h,
                    taken_now: false,
                });
            }
            let attempt = if corpus.is_local() {
                try_local(corpus, command)?
            } else {
                try_lease(corpus, command).await?
            };
            if let Attempt::Taken(h, _) = &attempt {
                HELD.lock()
                    .expect("lock registry")
                    .insert(h.key.clone(), Arc::downgrade(h));
            }
            attempt
        };
        match attempt {
            Attempt::Taken(held, expired) => {
                if let Some(old) = expired {
                    eprintln!(
                        "took over the writer lock of {}: the lease of {old} expired without being renewed (a writer that was killed)",
                        corpus.display()
                    );
                } else if last_said.is_some() {
                    eprintln!("took the writer lock of {}", corpus.display());
                }
                let removed = corpus.remove_stale_staging();
                if removed > 0 {
                    tracing::info!(
                        "removed {removed} staging file(s) left by writers that are gone"
                    );
                }
                return Ok(WriterLock {
                    held,
                    taken_now: true,
                });
            }
            Attempt::Busy(holder) => {
                let who = holder
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "another process".into());
                let waited = started.elapsed();
                if waited >= timeout {
                    return Err(Error::Locked(format!(
                        "the corpus {} is being written by {who}; gave up after waiting {} (--lock-timeout). Run again when it is done, or wait longer with --lock-timeout",
                        corpus.display(),
                        human(waited)
                    )));
                }
                if last_said.is_none_or(|t| t.elapsed() >= REMIND) {
                    eprintln!(
                        "waiting for the writer lock of {}: held by {who}; giving up in {} (--lock-timeout)",
                        corpus.display(),
                        human(timeout - waited)
                    );
                    last_said = Some(std::time::Instant::now());
                }
                tokio::time::sleep(POLL.min(timeout - waited)).await;
            }
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

/// One attempt at the OS lock of a local corpus.
fn try_local(corpus: &Corpus, command: &str) -> Result<Attempt> {
    use std::io::{Read, Seek, Write};
    let dir = corpus.local_dir().expect("a local corpus has a folder");
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {
            let holder = Holder::current(command);
            let text = serde_json::to_vec(&holder).expect("a holder serialises");
            let written = file
                .set_len(0)
                .and_then(|_| file.seek(std::io::SeekFrom::Start(0)))
                .and_then(|_| file.write_all(&text));
            written.map_err(|e| Error::io(&path, e))?;
            Ok(Attempt::Taken(
                Arc::new(Held {
                    key: key_of(corpus),
                    kind: Kind::Local(file),
                }),
                None,
            ))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Ok(Attempt::Busy(serde_json::from_str(&text).ok()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(
                e.kind(),
                format!("cannot take the corpus's writer lock: {e}"),
            ),
        }),
    }
}

/// One attempt at the lease of an S3 corpus: create it, or take over one that expired or was
/// released.
async fn try_lease(corpus: &Corpus, command: &str) -> Result<Attempt> {
    let store = corpus.store();
    let path = corpus.path(LEASE_OBJECT);
    let ttl = lease_duration();
    let state = LeaseState {
        store: store.clone(),
        path: path.clone(),
        holder: Holder::current(command),
        ttl,
        version: tokio::sync::Mutex::new(None),
        expires_at_ms: AtomicI64::new(0),
        lost: Mutex::new(None),
        display: corpus.display().to_string(),
    };
    let unsupported = |e: object_store::Error| Error::Storage {
        url: corpus.display().to_string(),
        message: format!(
            "the store refused a conditional write, which the corpus's writer lease needs ({e}); use an S3 endpoint that supports If-None-Match / If-Match on PUT"
        ),
    };
    let expires = now_ms() + ttl.as_millis() as i64;
    let created = store
        .put_opts(
            &path,
            state.lease(expires, false).into(),
            PutOptions::from(PutMode::Create),
        )
        .await;
    let mut took_over = None;
    let version = match created {
        Ok(r) => UpdateVersion::from(r),
        Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::Precondition { .. }) => {
            let current = match store.get(&path).await {
                Ok(g) => g,
                // Released and removed in between: try again at once.
                Err(object_store::Error::NotFound { .. }) => return Ok(Attempt::Busy(None)),
                Err(e) => return Err(corpus.storage_error(e)),
            };
            let meta = current.meta.clone();
            let bytes = current.bytes().await.map_err(|e| corpus.storage_error(e))?;
            let lease: Option<Lease> = serde_json::from_slice(&bytes).ok();
            // A lease we cannot read is free once it is older than a lease lasts.
            let free = match &lease {
                Some(l) => l.released || l.expires_at_ms <= now_ms(),
                None => {
                    meta.last_modified.timestamp_millis() + (ttl.as_millis() as i64) <= now_ms()
                }
            };
            if !free {
                return Ok(Attempt::Busy(lease.map(|l| l.holder)));
            }
            let expires = now_ms() + ttl.as_millis() as i64;
            let update = PutMode::Update(UpdateVersion {
                e_tag: meta.e_tag.clone(),
                version: meta.version.clone(),
            });
            match store
                .put_opts(
                    &path,
                    state.lease(expires, false).into(),
                    PutOptions::from(update),
                )
                .await
            {
                Ok(r) => {
                    took_over = lease.filter(|l| !l.released).map(|l| l.holder);
                    UpdateVersion::from(r)
                }
                // Another writer took it first.
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::NotFound { .. }) => return Ok(Attempt::Busy(None)),
                Err(e @ object_store::Error::NotImplemented { .. })
                | Err(e @ object_store::Error::NotSupported { .. }) => return Err(unsupported(e)),
                Err(e) => return Err(corpus.storage_error(e)),
            }
        }
        Err(e @ object_store::Error::NotImplemented { .. })
        | Err(e @ object_store::Error::NotSupported { .. }) => return Err(unsupported(e)),
        // S3 answers a write into a missing bucket with NoSuchBucket, which reads as "not found".
        Err(e @ object_store::Error::NotFound { .. }) => {
            return Err(Error::Storage {
                url: corpus.display().to_string(),
                message: format!(
                    "cannot write the writer lease: the bucket does not exist or cannot be written ({e})"
                ),
            });
        }
        Err(e) => return Err(corpus.storage_error(e)),
    };
    *state.version.lock().await = Some(version);
    state
        .expires_at_ms
        .store(now_ms() + ttl.as_millis() as i64, Ordering::SeqCst);
    let lease = Arc::new(state);
    let renewing = Arc::downgrade(&lease);
    let renewal = tokio::spawn(async move {
        loop {
            tokio::time::sleep(ttl / 3).await;
            let Some(lease) = renewing.upgrade() else {
                return;
            };
            if lease.renew().await.is_err() {
                return;
            }
        }
    });
    Ok(Attempt::Taken(
        Arc::new(Held {
            key: key_of(corpus),
            kind: Kind::S3 { lease, renewal },
        }),
        took_over,
    ))
}

/// An error if this process holds the writer lock of `corpus` but lost it (an S3 lease that was
/// taken over or expired). Writers call it before making a file visible.
pub fn check(corpus: &Corpus) -> Result<()> {
    match held(corpus) {
        Some(h) => WriterLock {
            held: h,
            taken_now: false,
        }
        .check(),
        None => Ok(()),
    }
}

/// The right to commit rows unique by id into `corpus` now: commits are one at a time within
/// this process, and on S3 the lease is renewed first, so no other writer can have taken it
/// over when the commit's check of the ids runs. Hold the guard until the part is visible.
pub async fn commit_section(corpus: &Corpus) -> Result<tokio::sync::OwnedMutexGuard<()>> {
    let mutex = COMMITS
        .lock()
        .expect("commit registry")
        .entry(key_of(corpus))
        .or_default()
        .clone();
    let guard = mutex.lock_owned().await;
    if let Some(h) = held(corpus)
        && let Kind::S3 { lease, .. } = &h.kind
    {
        lease.renew().await?;
    }
    Ok(guard)
}

/// Releases every S3 lease this process holds (on SIGINT / SIGTERM, before exiting); local
/// locks go with the process.
pub async fn release_all() {
    let leases: Vec<Arc<LeaseState>> = HELD
        .lock()
        .expect("lock registry")
        .values()
        .filter_map(Weak::upgrade)
        .filter_map(|h| match &h.kind {
            Kind::S3 { lease, renewal } => {
                renewal.abort();
                Some(lease.clone())
            }
            Kind::Local(_) => None,
        })
        .collect();
    for lease in leases {
        lease.release().await;
    }
}

/// Whether a staging or pending file named `name` belongs to a writer that is gone: its name
/// carries an owner tag ([`Owner::tag`]) of a process that no longer runs. Files of this process,
/// of a live process, or without a tag are never considered stale.
pub fn owner_gone(name: &str) -> bool {
    name.split(['-', '#', '.'])
        .filter_map(Owner::parse)
        .next()
        .is_some_and(|o| o.pid != std::process::id() && !o.is_alive())
}
