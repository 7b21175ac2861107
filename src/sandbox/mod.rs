//! The sandboxed code tool: runs untrusted Python (and SQL) from trajectories.
//!
//! Python runs as the system `python3` in a child process that gets, on Linux:
//! - new network, mount, PID, IPC and UTS namespaces (as root directly; as another user inside a
//!   new user namespace): no network at all, a private `/tmp`, `/var/tmp` and `/dev/shm`
//!   and `/run/lock` (fresh tmpfs, gone afterwards), its own `/proc` so no host process is visible, and every
//!   process it starts dies with it because the namespace's init exits when the snippet does;
//! - a fresh working directory that is a size-capped tmpfs of the namespace (nothing the snippet
//!   writes reaches a host disk; it vanishes with the namespace), and a cleared environment;
//! - an init (PID 1) that is a fresh `exec` with a clean argv and no environment, so that
//!   `/proc/1` shows nothing of tdscale (its command line may hold `--api-key`);
//! - limits on CPU time, address space, file size, open files, processes and output, and a
//!   wall-clock timeout that kills the whole tree;
//! - the unprivileged uid 65534 (`nobody`) when started as root, and `no_new_privs`.
//!
//! Writes are confined to the working directory: as `nobody` the snippet can write only to
//! world-writable places, and those are the private tmpfs mounts; where the kernel has Landlock,
//! a ruleset also allows writes only beneath the working directory, the private tmpfs mounts and
//! `/dev/null`, whatever the uid may do ([`Isolation::landlock`] says whether it applied). Where
//! namespaces cannot be created, the run is refused unless the caller opts in with
//! [`PythonOptions::allow_no_isolation`], and the result says what protection was in force.
//!
//! SQL runs in [`sql`]: a fresh DataFusion session that sees only the tables it is given,
//! read-only, with a memory limit and a timeout.

pub mod python;
pub mod sql;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Resource limits of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Wall-clock time before the whole process tree is killed.
    pub timeout: Duration,
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Address space in bytes (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Largest file the snippet may write (RLIMIT_FSIZE).
    pub file_size_bytes: u64,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Processes of the sandbox user (RLIMIT_NPROC).
    pub processes: u64,
    /// Bytes of stdout and of stderr kept; more output kills the run.
    pub output_bytes: usize,
    /// Size of each private tmpfs (`/tmp`, `/var/tmp`, `/dev/shm`).
    pub tmpfs_bytes: u64,
    /// Size of the working directory, a tmpfs inside the sandbox: writing past it fails with
    /// ENOSPC (not enforced without namespaces, where the directory is on the host).
    pub disk_bytes: u64,
}

impl Limits {
    /// The default limits with a wall-clock `timeout`, and as many CPU seconds (at least one).
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            cpu_seconds: timeout.as_secs().max(1),
            ..Default::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_bytes: 512 << 20,
            file_size_bytes: 16 << 20,
            open_files: 64,
            processes: 32,
            output_bytes: 1 << 20,
            tmpfs_bytes: 64 << 20,
            disk_bytes: 256 << 20,
        }
    }
}

/// Why a run was stopped by the sandbox rather than ending by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillReason {
    /// The wall-clock timeout passed.
    WallTimeout,
    /// The CPU-time limit was reached (SIGXCPU / SIGKILL from RLIMIT_CPU).
    CpuLimit,
    /// The snippet wrote more than the output cap.
    OutputLimit,
    /// A file grew past the file-size limit (SIGXFSZ).
    FileSizeLimit,
    /// A query needed more memory than its limit.
    MemoryLimit,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// It exited with this status (0 is success).
    Exited { code: i32 },
    /// A signal ended it (e.g. 11 for a segfault from runaway recursion).
    Signaled { signal: i32 },
    /// The sandbox killed it.
    Killed { reason: KillReason },
    /// The query failed with an error (SQL only).
    Failed,
}

/// What protection was in force for a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Isolation {
    /// The snippet had no network (a new, empty network namespace).
    pub network_isolated: bool,
    /// Its processes lived in their own PID namespace and died with it.
    pub pid_namespace: bool,
    /// `/tmp`, `/var/tmp` and `/dev/shm` were private tmpfs mounts.
    pub private_tmp: bool,
    /// The uid the snippet ran as.
    pub uid: u32,
    /// A Landlock ruleset limited writes to the working directory, the private tmpfs mounts and
    /// `/dev/null` (when the kernel has Landlock).
    pub landlock: bool,
    /// Human-readable notes on what was not available.
    pub notes: Vec<String>,
}

/// The typed result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub stdout: String,
    pub stderr: String,
    pub outcome: Outcome,
    /// Convenience: the exit code when it exited.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub killed_reason: Option<KillReason>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub wall_ms: u64,
    pub cpu_ms: u64,
    pub isolation: Isolation,
}

impl RunResult {
    /// True when the snippet exited with status 0.
    pub fn success(&self) -> bool {
        self.outcome == (Outcome::Exited { code: 0 })
    }

    /// How the run ended, in one line: outcome, times, truncation and the protection in force.
    pub fn status_line(&self) -> String {
        format!(
            "[sandbox] {:?} in {} ms wall, {} ms cpu{}{}",
            self.outcome,
            self.wall_ms,
            self.cpu_ms,
            if self.stdout_truncated || self.stderr_truncated {
                ", output truncated"
            } else {
                ""
            },
            if self.isolation.notes.is_empty() {
                String::new()
            } else {
                format!("; {}", self.isolation.notes.join("; "))
            }
        )
    }
}

/// Errors that prevent a run from starting.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "network isolation is not available here ({0}); refusing to run untrusted code. Pass --allow-no-isolation to run it anyway, at your own risk"
    )]
    NoIsolation(String),
    #[error("cannot start the sandbox: {0}")]
    Start(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads a pipe, keeping at most `cap` bytes; sets `over` when more arrived.
pub(crate) fn drain(
    mut r: impl Read + Send + 'static,
    cap: usize,
    over: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        over.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        kept
    })
}
