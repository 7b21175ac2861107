//! Running an untrusted SQL query: a fresh DataFusion session that sees only the tables it is
//! given (registered read-only by file), cannot create, write or copy anything (DDL, DML and
//! `SET`-style statements are refused), cannot read files by path (no URL tables), and runs under
//! a memory pool and a timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, SQLOptions, SessionConfig, SessionContext,
};

use super::{Isolation, KillReason, Limits, Outcome, RunResult, SandboxError};

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
    let config = SessionConfig::new().with_target_partitions(2);
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

/// Runs one query over the given table files and returns the result as a text table.
pub async fn run(
    query: &str,
    tables: &[PathBuf],
    limits: &Limits,
) -> Result<RunResult, SandboxError> {
    let started = Instant::now();
    let ctx = session(tables, limits).await?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let work = async {
        let df = ctx.sql_with_options(query, options).await?;
        let batches = df.collect().await?;
        Ok::<_, DataFusionError>(
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string(),
        )
    };
    let (stdout, stderr, outcome) = match tokio::time::timeout(limits.timeout, work).await {
        Err(_) => (
            String::new(),
            format!("query stopped after {:?}", limits.timeout),
            Outcome::Killed {
                reason: KillReason::WallTimeout,
            },
        ),
        Ok(Ok(table)) => (table + "\n", String::new(), Outcome::Exited { code: 0 }),
        Ok(Err(e)) if is_memory_error(&e) => (
            String::new(),
            e.to_string(),
            Outcome::Killed {
                reason: KillReason::MemoryLimit,
            },
        ),
        Ok(Err(e)) => (String::new(), e.to_string(), Outcome::Failed),
    };
    let cap = |mut s: String| -> (String, bool) {
        if s.len() > limits.output_bytes {
            let mut cut = limits.output_bytes;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            (s, true)
        } else {
            (s, false)
        }
    };
    let (stdout, stdout_truncated) = cap(stdout);
    let killed_reason = match outcome {
        Outcome::Killed { reason } => Some(reason),
        _ => None,
    };
    Ok(RunResult {
        stdout,
        stderr,
        exit_code: matches!(outcome, Outcome::Exited { .. }).then_some(0),
        timed_out: killed_reason == Some(KillReason::WallTimeout),
        killed_reason,
        outcome,
        stdout_truncated,
        stderr_truncated: false,
        wall_ms: started.elapsed().as_millis() as u64,
        cpu_ms: 0,
        isolation: Isolation {
            notes: vec!["in-process DataFusion session: only the given tables, read-only".into()],
            ..Default::default()
        },
    })
}
