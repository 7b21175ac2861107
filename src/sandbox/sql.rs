//! Running an untrusted SQL query: a fresh DataFusion session that sees only the tables it is
//! given (registered read-only by file), cannot create, write or copy anything (DDL, DML and
//! `SET`-style statements are refused), cannot read files by path (no URL tables), and runs under
//! a memory limit and a timeout.
//!
//! # How the limits hold
//!
//! DataFusion's memory pool only sees the operators that ask it (sorts, joins, aggregates); a
//! scalar function (`repeat('x', 1500000000)`, `lpad`, array functions…) or a projection
//! allocates its output without asking, and a function call that runs for seconds never returns
//! to the async runtime, so neither a pool nor a `tokio` timeout can stop it. The only mechanism
//! that stops *any* work is the operating system, so [`run_isolated`] (what `tdscale sandbox run
//! --lang sql` uses) runs the query in a child process, `tdscale sandbox sql-worker`, and:
//!
//! - kills it (SIGKILL) when the wall-clock timeout passes: the plan is gone with the process,
//!   whatever it was doing;
//! - watches its anonymous resident memory (`RssAnon`, every few milliseconds) and kills it when
//!   that passes the memory limit plus [`WORKER_BASE_BYTES`] (the runtime and session themselves);
//!   the overshoot is what the query can allocate and touch between two looks;
//! - caps the worker's address space (RLIMIT_AS) at its size once started plus the limit plus
//!   [`ADDRESS_SPACE_SLACK`] (thread stacks, the allocator's arena reservations), so that no
//!   single allocation can be far larger than the limit even if the watcher is not scheduled:
//!   such an allocation fails and the worker aborts.
//!
//! Inside the worker the query also runs under a DataFusion memory pool of the limit (operators
//! fail cleanly with "Resources exhausted"), the result's batches are counted against that pool
//! as they arrive, and only as many rows are kept as fill the output cap: the stream is dropped
//! (cancelling the plan) once the text would be longer, so a huge result is never materialised.
//!
//! [`run`] runs the query in the calling process with the pool, the result accounting and a
//! timeout that aborts the query's task; it cannot stop a single runaway function call.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, SQLOptions, SessionContext};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Isolation, KillReason, Limits, Outcome, RunResult, SandboxError, drain};

/// Anonymous memory the worker may use beyond the query's limit: the async runtime, the
/// session, the plan and the result's text.
pub const WORKER_BASE_BYTES: u64 = 64 << 20;

/// Address space the worker may map beyond its size at start and the limit: thread stacks and the
/// allocator's arena reservations (address space, not memory).
pub const ADDRESS_SPACE_SLACK: u64 = 2 << 30;

/// How often the parent looks at the worker.
const WATCH_EVERY: Duration = Duration::from_millis(2);

/// How deeply a query's expressions may nest (see [`check_depth`]).
pub const MAX_EXPRESSION_DEPTH: usize = 256;

/// The table name of a file: its stem, with anything but letters, digits and `_` replaced.
pub fn table_name(path: &std::path::Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("t");
    let stem = stem.split('.').next().unwrap_or(stem);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

async fn session(tables: &[PathBuf], limits: &Limits) -> Result<SessionContext, SandboxError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(GreedyMemoryPool::new(
            limits.memory_bytes as usize,
        )))
        // No spilling: a query over its memory limit fails instead of writing temporary files.
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| SandboxError::Start(e.to_string()))?;
    let config = crate::query::session::session_config()
        .with_information_schema(false)
        .with_target_partitions(2);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for t in tables {
        let name = table_name(t);
        let path = t
            .to_str()
            .ok_or_else(|| SandboxError::Start(format!("{} is not a UTF-8 path", t.display())))?;
        if !t.is_file() {
            return Err(SandboxError::Start(format!(
                "table file {} does not exist",
                t.display()
            )));
        }
        let lower = path.to_ascii_lowercase();
        let r = if lower.ends_with(".parquet") {
            ctx.register_parquet(&name, path, Default::default()).await
        } else if lower.ends_with(".csv") {
            ctx.register_csv(&name, path, CsvReadOptions::new()).await
        } else if lower.ends_with(".json")
            || lower.ends_with(".jsonl")
            || lower.ends_with(".ndjson")
        {
            let ext = &path[path.rfind('.').unwrap_or(0)..];
            ctx.register_json(
                &name,
                path,
                JsonReadOptions {
                    file_extension: ext,
                    ..Default::default()
                },
            )
            .await
        } else {
            return Err(SandboxError::Start(format!(
                "{}: tables are Parquet, CSV or JSON lines files",
                t.display()
            )));
        };
        r.map_err(|e| SandboxError::Start(format!("{}: {e}", t.display())))?;
    }
    Ok(ctx)
}

fn is_memory_error(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}

/// Refuses a query whose expressions nest deeper than [`MAX_EXPRESSION_DEPTH`]: planning and
/// optimising walk expression trees recursively, so a long chain such as `1 + 1 + … + 1` (which
/// the parser reads without recursing) would otherwise reach them. Counted on the tokens, so the
/// check itself cannot overflow: a binary operator chain is as deep as it is long, and each
/// parenthesis adds a level.
pub fn check_depth(sql: &str) -> Result<(), String> {
    crate::query::check_expression_depth(sql, MAX_EXPRESSION_DEPTH)
}

/// What the query produced.
struct Produced {
    stdout: String,
    truncated: bool,
}

/// Plans and runs `query`, keeping the result's rows while their text fits the output cap.
async fn execute(
    ctx: SessionContext,
    query: String,
    limits: Limits,
) -> Result<Produced, DataFusionError> {
    check_depth(&query).map_err(DataFusionError::Plan)?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx.sql_with_options(&query, options).await?;
    let mut stream = df.execute_stream().await?;
    // The result counts against the same pool as the operators.
    let reservation =
        MemoryConsumer::new("sandbox result").register(&ctx.runtime_env().memory_pool);
    let text_len = |b: &RecordBatch| -> Result<usize, DataFusionError> {
        Ok(pretty_format_batches(std::slice::from_ref(b))?
            .to_string()
            .len())
    };
    let mut kept: Vec<RecordBatch> = vec![];
    let mut text_bytes = 0usize;
    let mut truncated = false;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        reservation.try_grow(batch.get_array_memory_size())?;
        // Rows are kept while their text fits the cap; a batch past it is cut to the rows that
        // fit (at least one), and the stream is dropped, which cancels the rest of the plan.
        let room = limits.output_bytes.saturating_sub(text_bytes);
        let mut rows = batch.num_rows();
        let mut size = text_len(&batch)?;
        while size > room && rows > 1 {
            truncated = true;
            rows /= 2;
            size = text_len(&batch.slice(0, rows))?;
        }
        truncated |= size > room;
        text_bytes += size;
        kept.push(batch.slice(0, rows));
        if truncated {
            break;
        }
    }
    drop(stream);
    let mut stdout = pretty_format_batches(&kept)?.to_string() + "\n";
    if stdout.len() > limits.output_bytes {
        let mut cut = limits.output_bytes;
        while !stdout.is_char_boundary(cut) {
            cut -= 1;
        }
        stdout.truncate(cut);
        truncated = true;
    }
    Ok(Produced { stdout, truncated })
}

/// Runs one query over the given table files in this process and returns the result as a text
/// table. The timeout aborts the query's task; a single function call that does not return (or
/// allocates past the limit) cannot be stopped here: use [`run_isolated`] for untrusted queries.
pub async fn run(
    query: &str,
    tables: &[PathBuf],
    limits: &Limits,
) -> Result<RunResult, SandboxError> {
    let started = Instant::now();
    let ctx = session(tables, limits).await?;
    let task = tokio::spawn(execute(ctx, query.to_string(), limits.clone()));
    let abort = task.abort_handle();
    let (stdout, stdout_truncated, stderr, outcome) =
        match tokio::time::timeout(limits.timeout, task).await {
            Err(_) => {
                abort.abort();
                (
                    String::new(),
                    false,
                    format!("query stopped after {:?}", limits.timeout),
                    Outcome::Killed {
                        reason: KillReason::WallTimeout,
                    },
                )
            }
            Ok(Ok(Ok(p))) => (
                p.stdout,
                p.truncated,
                String::new(),
                Outcome::Exited { code: 0 },
            ),
            Ok(Ok(Err(e))) if is_memory_error(&e) => (
                String::new(),
                false,
                e.to_string(),
                Outcome::Killed {
                    reason: KillReason::MemoryLimit,
                },
            ),
            Ok(Ok(Err(e))) => (String::new(), false, e.to_string(), Outcome::Failed),
            Ok(Err(e)) => (
                String::new(),
                false,
                format!("the query failed: {e}"),
                Outcome::Failed,
            ),
        };
    Ok(result(
        stdout,
        stdout_truncated,
        stderr,
        outcome,
        started.elapsed(),
        0,
        "in-process DataFusion session: only the given tables, read-only",
    ))
}

fn result(
    stdout: String,
    stdout_truncated: bool,
    stderr: String,
    outcome: Outcome,
    wall: Duration,
    cpu_ms: u64,
    note: &str,
) -> RunResult {
    let killed_reason = match outcome {
        Outcome::Killed { reason } => Some(reason),
        _ => None,
    };
    RunResult {
        stdout,
        stderr,
        exit_code: match outcome {
            Outcome::Exited { code } => Some(code),
            _ => None,
        },
        timed_out: killed_reason == Some(KillReason::WallTimeout),
        killed_reason,
        outcome,
        stdout_truncated,
        stderr_truncated: false,
        wall_ms: wall.as_millis() as u64,
        cpu_ms,
        isolation: Isolation {
            notes: vec![note.to_string()],
            ..Default::default()
        },
    }
}

/// What the parent sends the worker on its standard input.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerRequest {
    query: String,
    tables: Vec<PathBuf>,
    memory_bytes: u64,
    output_bytes: usize,
    timeout_ms: u64,
}

/// What the worker prints on its standard output.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerReply {
    stdout: String,
    stdout_truncated: bool,
    stderr: String,
    /// `ok`, `failed` or `memory`.
    status: String,
}

/// A resource of `/proc/<pid>/status` in bytes (`RssAnon`, `VmSize`…), if the process exists.
fn status_bytes(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The worker: `tdscale sandbox sql-worker`. Reads a request on standard input, runs it with
/// [`run`] under an address-space cap, and prints the reply as JSON on standard output.
pub async fn worker_main() -> Result<(), SandboxError> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let req: WorkerRequest = serde_json::from_str(&input)
        .map_err(|e| SandboxError::Start(format!("bad worker request: {e}")))?;
    let limits = Limits {
        timeout: Duration::from_millis(req.timeout_ms),
        memory_bytes: req.memory_bytes,
        output_bytes: req.output_bytes,
        ..Default::default()
    };
    let ctx_tables = req.tables.clone();
    if let Some(now) = status_bytes("self", "VmSize") {
        let cap = now + req.memory_bytes + ADDRESS_SPACE_SLACK;
        let l = libc::rlimit {
            rlim_cur: cap,
            rlim_max: cap,
        };
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &l) };
    }
    let r = run(&req.query, &ctx_tables, &limits).await?;
    let reply = WorkerReply {
        stdout: r.stdout,
        stdout_truncated: r.stdout_truncated,
        stderr: r.stderr,
        status: match r.outcome {
            Outcome::Exited { .. } => "ok",
            Outcome::Killed {
                reason: KillReason::MemoryLimit,
            } => "memory",
            _ => "failed",
        }
        .into(),
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &reply).map_err(|e| SandboxError::Start(e.to_string()))?;
    out.flush()?;
    Ok(())
}

/// Runs one query in a child process, `worker sandbox sql-worker` (`worker` is the tdscale
/// executable), which is killed when it passes the timeout or the memory limit (see the module
/// documentation). Blocking: call it from a blocking thread.
pub fn run_isolated(
    query: &str,
    tables: &[PathBuf],
    limits: &Limits,
    worker: &Path,
) -> Result<RunResult, SandboxError> {
    let request = serde_json::to_vec(&WorkerRequest {
        query: query.to_string(),
        tables: tables.to_vec(),
        memory_bytes: limits.memory_bytes,
        output_bytes: limits.output_bytes,
        // The worker's own timeout is a backstop; the parent kills it on time.
        timeout_ms: limits.timeout.as_millis() as u64 + 1000,
    })
    .map_err(|e| SandboxError::Start(e.to_string()))?;
    let mut cmd = Command::new(worker);
    cmd.args(["sandbox", "sql-worker"])
        .env_clear()
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(|| {
            // Dies with tdscale; no core dump of a killed worker.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| SandboxError::Start(format!("{}: {e}", worker.display())))?;
    let pid = child.id().to_string();
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&request);
    });
    // The reply holds at most the output cap of text, escaped.
    // The worker's reply is kept up to these sizes; a longer one is cut, not an outcome of its own.
    let out_t = drain(
        child.stdout.take().expect("piped"),
        limits.output_bytes * 6 + (64 << 10),
        Arc::default(),
    );
    let err_t = drain(
        child.stderr.take().expect("piped"),
        64 << 10,
        Arc::default(),
    );
    let memory_cap = limits.memory_bytes + WORKER_BASE_BYTES;
    let mut reason = None;
    let mut killed = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > limits.timeout {
            reason = Some(KillReason::WallTimeout);
        } else if status_bytes(&pid, "RssAnon").is_some_and(|anon| anon > memory_cap) {
            reason = Some(KillReason::MemoryLimit);
        }
        if reason.is_some() && !killed {
            killed = true;
            let _ = child.kill();
        }
        std::thread::sleep(WATCH_EVERY);
    };
    let wall = started.elapsed();
    let _ = writer.join();
    let out = out_t.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    let cpu_ms = 0;
    let note = "DataFusion in a child process (killed at the timeout or past the memory limit): only the given tables, read-only";
    if let Some(reason) = reason {
        let what = match reason {
            KillReason::WallTimeout => format!("query stopped after {:?}", limits.timeout),
            _ => format!(
                "query stopped: it used more than {} bytes of memory (limit {} + {} for the session)",
                memory_cap, limits.memory_bytes, WORKER_BASE_BYTES
            ),
        };
        return Ok(result(
            String::new(),
            false,
            what,
            Outcome::Killed { reason },
            wall,
            cpu_ms,
            note,
        ));
    }
    if status.success()
        && let Ok(reply) = serde_json::from_slice::<WorkerReply>(&out)
    {
        let outcome = match reply.status.as_str() {
            "ok" => Outcome::Exited { code: 0 },
            "memory" => Outcome::Killed {
                reason: KillReason::MemoryLimit,
            },
            _ => Outcome::Failed,
        };
        return Ok(result(
            reply.stdout,
            reply.stdout_truncated,
            reply.stderr,
            outcome,
            wall,
            cpu_ms,
            note,
        ));
    }
    // The worker died: an allocation past its address-space cap aborts it.
    let outcome = if err.contains("memory allocation of") {
        Outcome::Killed {
            reason: KillReason::MemoryLimit,
        }
    } else if let Some(sig) = status.signal() {
        Outcome::Signaled { signal: sig }
    } else {
        Outcome::Failed
    };
    let stderr = if err.trim().is_empty() {
        format!("the query's worker ended with {status}")
    } else {
        err
    };
    Ok(result(
        String::new(),
        false,
        stderr,
        outcome,
        wall,
        cpu_ms,
        note,
    ))
}
