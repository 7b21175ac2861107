//! `tdscale budget`: for every (budget, strategy, seed), the subset's manifest, metrics and
//! training files, and a summary table of all subsets.
//!
//! Output layout under `--out` (a folder or an s3:// prefix):
//! ```text
//! summary.parquet, summary.csv      one row per subset
//! dataset_info.json                 LLaMA-Factory entries for every subset
//! <strategy>-b<budget>-s<seed>/
//!     manifest.parquet              traj_id, pick, cost, used
//!     train_openai.jsonl            OpenAI chat fine-tuning lines
//!     train_sharegpt.json           LLaMA-Factory ShareGPT records
//!     dataset_info.json             the entry for this subset alone
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::{Strategy, Unit};
use crate::error::{Error, Result};
use crate::query::cells::{f64_at, i64_at};
use crate::query::session::CorpusSession;
use crate::query::{params, run_sql};
use crate::store::location::Location;
use crate::store::{convert, rows};

/// What to run.
#[derive(Debug, Clone)]
pub struct BudgetOptions {
    pub budgets: Vec<i64>,
    pub unit: Unit,
    pub strategies: Vec<Strategy>,
    /// Seeds 0..seeds.
    pub seeds: u32,
    /// Output folder or s3:// prefix.
    pub out: String,
    /// Similarity threshold of `deita`.
    pub threshold: f64,
    /// Write the training files (the manifest and metrics are always written).
    pub training_files: bool,
    pub progress: bool,
}

/// One subset's row of the summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubsetSummary {
    pub name: String,
    pub strategy: String,
    pub budget: i64,
    pub unit: String,
    pub seed: i64,
    pub trajectories: i64,
    pub tokens: i64,
    /// Budget used, in the unit.
    pub used: i64,
    pub de_bits: f64,
    pub rme_bits: f64,
    pub cac_p50: f64,
    pub cac_p90: f64,
    pub domains: i64,
    pub modes: i64,
    pub clusters: i64,
    pub tools: i64,
    /// The strategy found fewer trajectories than the budget allows (only `deita` can, when
    /// near-duplicates are excluded).
    pub short: bool,
}

/// The subset name of a run.
pub fn subset_name(strategy: Strategy, budget: i64, seed: i64) -> String {
    format!("{}-b{budget}-s{seed}", strategy.name())
}

/// The value of an aggregate query's single row (0 when it is NULL).
fn first_f64(b: &[RecordBatch], name: &str) -> Result<f64> {
    b.first()
        .map_or(Ok(0.0), |b| Ok(f64_at(b, name, 0)?.unwrap_or(0.0)))
}

fn first_i64(b: &[RecordBatch], name: &str) -> Result<i64> {
    b.first().map_or(Ok(0), |b| i64_at(b, name, 0))
}

/// Materialises `trajectory_metrics` once when the session computes it from `messages` (a
/// corpus whose metrics are not stored), so the many plans of a run do not recompute the
/// metrics of every trajectory.
async fn cache_metrics(ctx: &SessionContext) -> Result<()> {
    let df = ctx.sql("SELECT * FROM trajectory_metrics").await?;
    let schema: SchemaRef = df.schema().inner().clone();
    let batches = df.collect().await?;
    ctx.deregister_table("trajectory_metrics")?;
    ctx.register_table(
        "trajectory_metrics",
        Arc::new(MemTable::try_new(schema, vec![batches])?),
    )?;
    Ok(())
}

/// Runs the experiment grid and writes everything under `opts.out`.
///
/// The run works in a scope of `session`: the cached metrics and the `selection` table it
/// registers are not seen by the caller's session. An `opts.out` inside the corpus's folder is
/// written under the corpus's writer lock.
pub async fn run(session: &CorpusSession, opts: &BudgetOptions) -> Result<Vec<SubsetSummary>> {
    // Only an output inside the corpus's folder is a write into the corpus.
    if !session.corpus().contains(&opts.out) {
        return run_grid(session, opts).await;
    }
    let lock = session.lock_writer("budget").await?;
    let result = run_grid(session, opts).await;
    lock.release().await;
    result
}

/// Runs the grid and writes its outputs.
async fn run_grid(session: &CorpusSession, opts: &BudgetOptions) -> Result<Vec<SubsetSummary>> {
    if opts.budgets.is_empty() || opts.strategies.is_empty() || opts.seeds == 0 {
        return Err(Error::Usage(
            "give at least one budget, one strategy and one seed".into(),
        ));
    }
    let scope = session.scoped().await?;
    let ctx = scope.ctx();
    if !scope.stored_metrics() {
        cache_metrics(ctx).await?;
    }
    let totals = run_sql(
        ctx,
        "SELECT count(*) AS n, sum(num_tokens) AS tokens FROM trajectory_metrics",
    )
    .await?;
    let totals = &totals[0].1;
    let available = match opts.unit {
        Unit::Trajectories => first_i64(totals, "n")?,
        Unit::Tokens => first_i64(totals, "tokens")?,
    };
    if let Some(b) = opts.budgets.iter().find(|&&b| b > available || b <= 0) {
        return Err(Error::Usage(format!(
            "budget {b} {} is not possible: the corpus holds {available} {}; choose budgets between 1 and {available}",
            opts.unit.name(),
            opts.unit.name()
        )));
    }
    let out = Location::open(&opts.out)?;
    // Every plan walks an order that does not depend on the budget and stops at it, so each
    // (strategy, seed) runs once at the largest budget and smaller budgets are its prefixes.
    let largest = *opts.budgets.iter().max().expect("checked non-empty");
    let total = opts.budgets.len() * opts.strategies.len() * opts.seeds as usize;
    let pb = crate::progress::bar(
        opts.progress,
        Some(total as u64),
        "budget",
        crate::progress::Units::Items,
    );
    let mut summaries = vec![];
    let mut info = serde_json::Map::new();
    for &strategy in &opts.strategies {
        for seed in 0..opts.seeds as i64 {
            let p = HashMap::from([
                ("budget".to_string(), largest.to_string()),
                ("seed".to_string(), seed.to_string()),
                ("unit".to_string(), opts.unit.name().to_string()),
                ("threshold".to_string(), opts.threshold.to_string()),
            ]);
            let sql = params::substitute(strategy.plan(), &p)?;
            let mut result = run_sql(ctx, &sql).await?;
            let (schema, walk) = result.pop().ok_or_else(|| {
                Error::Other(format!("plan {} returned nothing", strategy.name()))
            })?;
            for &budget in &opts.budgets {
                let name = subset_name(strategy, budget, seed);
                pb.set_message(name.clone());
                let batches = prefix(&walk, budget)?;
                let summary = describe(
                    ctx,
                    &name,
                    strategy,
                    budget,
                    seed,
                    opts.unit,
                    schema.clone(),
                    batches.clone(),
                )
                .await?;
                out.put(
                    &format!("{name}/manifest.parquet"),
                    rows::parquet_bytes(&batches, schema.clone())?,
                )
                .await?;
                if opts.training_files {
                    write_training(ctx, &out, &name).await?;
                    let entry = crate::formats::sharegpt::dataset_info_entry("train_sharegpt.json");
                    out.put(
                        &format!("{name}/dataset_info.json"),
                        serde_json::to_vec_pretty(&serde_json::json!({ &name: entry }))
                            .unwrap_or_default(),
                    )
                    .await?;
                    info.insert(
                        name.clone(),
                        crate::formats::sharegpt::dataset_info_entry(&format!(
                            "{name}/train_sharegpt.json"
                        )),
                    );
                }
                if summary.short {
                    tracing::warn!(
                        "{name}: {budget} trajectories fit the budget but the strategy found only {}",
                        summary.trajectories
                    );
                }
                summaries.push(summary);
                pb.inc(1);
            }
        }
    }
    summaries.sort_by(|a, b| {
        (
            a.budget,
            Strategy::ALL.iter().position(|s| s.name() == a.strategy),
            a.seed,
        )
            .cmp(&(
                b.budget,
                Strategy::ALL.iter().position(|s| s.name() == b.strategy),
                b.seed,
            ))
    });
    pb.finish_and_clear();
    if opts.training_files {
        out.put(
            "dataset_info.json",
            serde_json::to_vec_pretty(&info).unwrap_or_default(),
        )
        .await?;
    }
    let batch = rows::to_batch(summary_schema(), &summaries)?;
    out.put(
        "summary.parquet",
        rows::parquet_bytes(std::slice::from_ref(&batch), batch.schema())?,
    )
    .await?;
    let mut csv = Vec::new();
    datafusion::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(&mut csv)
        .write(&batch)?;
    out.put("summary.csv", csv).await?;
    Ok(summaries)
}

#[allow(clippy::too_many_arguments)]
async fn describe(
    ctx: &SessionContext,
    name: &str,
    strategy: Strategy,
    budget: i64,
    seed: i64,
    unit: Unit,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<SubsetSummary> {
    ctx.deregister_table("selection")?;
    ctx.register_table(
        "selection",
        Arc::new(MemTable::try_new(schema, vec![batches])?),
    )?;
    let stats = run_sql(ctx, include_str!("../../queries/subset_metrics.sql")).await?;
    let b = &stats[0].1;
    let tools = run_sql(ctx, "SELECT count(DISTINCT c.tool_name) AS tools FROM tool_calls c JOIN selection s ON c.traj_id = s.traj_id").await?;
    let trajectories = first_i64(b, "trajectories")?;
    let used = first_i64(b, "used")?;
    Ok(SubsetSummary {
        name: name.to_string(),
        strategy: strategy.name().to_string(),
        budget,
        unit: unit.name().to_string(),
        seed,
        trajectories,
        tokens: first_i64(b, "tokens")?,
        used,
        de_bits: first_f64(b, "de_bits")?,
        rme_bits: first_f64(b, "rme_bits")?,
        cac_p50: first_f64(b, "cac_p50")?,
        cac_p90: first_f64(b, "cac_p90")?,
        domains: first_i64(b, "domains")?,
        modes: first_i64(b, "modes")?,
        clusters: first_i64(b, "clusters")?,
        tools: first_i64(&tools[0].1, "tools")?,
        // A subset is short when the next trajectory would still have fit: only possible when
        // the strategy ran out of admissible candidates.
        short: unit == Unit::Trajectories && used < budget && strategy == Strategy::Deita,
    })
}

async fn write_training(ctx: &SessionContext, out: &Location, name: &str) -> Result<()> {
    let df = ctx.sql("SELECT t.* FROM trajectories t JOIN selection s ON t.traj_id = s.traj_id ORDER BY s.pick").await?;
    let batches = df.collect().await?;
    let mut jsonl = Vec::new();
    let mut records = vec![];
    for b in &batches {
        for t in convert::batch_to_trajectories(b)? {
            serde_json::to_writer(&mut jsonl, &crate::formats::openai::training_line(&t))
                .map_err(|e| Error::Other(e.to_string()))?;
            jsonl.push(b'\n');
            records.push(crate::formats::sharegpt::to_record(&t));
        }
    }
    out.put(&format!("{name}/train_openai.jsonl"), jsonl)
        .await?;
    out.put(
        &format!("{name}/train_sharegpt.json"),
        serde_json::to_vec(&records).unwrap_or_default(),
    )
    .await
}

/// The rows of a walk whose running budget `used` stays within `budget`.
fn prefix(walk: &[RecordBatch], budget: i64) -> Result<Vec<RecordBatch>> {
    walk.iter()
        .map(|b| {
            let used = b
                .column_by_name("used")
                .ok_or_else(|| Error::Other("a budget plan must return `used`".into()))?;
            let used = datafusion::arrow::compute::cast(used, &DataType::Int64)?;
            let keep: datafusion::arrow::array::BooleanArray = used
                .as_primitive::<Int64Type>()
                .iter()
                .map(|u| Some(u.is_some_and(|u| u <= budget)))
                .collect();
            Ok(datafusion::arrow::compute::filter_record_batch(b, &keep)?)
        })
        .collect()
}

/// The schema of `summary.parquet`: the fields of [`SubsetSummary`].
fn summary_schema() -> SchemaRef {
    let fields = [
        ("name", DataType::Utf8),
        ("strategy", DataType::Utf8),
        ("budget", DataType::Int64),
        ("unit", DataType::Utf8),
        ("seed", DataType::Int64),
        ("trajectories", DataType::Int64),
        ("tokens", DataType::Int64),
        ("used", DataType::Int64),
        ("de_bits", DataType::Float64),
        ("rme_bits", DataType::Float64),
        ("cac_p50", DataType::Float64),
        ("cac_p90", DataType::Float64),
        ("domains", DataType::Int64),
        ("modes", DataType::Int64),
        ("clusters", DataType::Int64),
        ("tools", DataType::Int64),
        ("short", DataType::Boolean),
    ];
    Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, false))
            .collect::<Vec<_>>(),
    ))
}

/// The subsets as a text table, and where they were written.
pub fn to_text(rows: &[SubsetSummary], out: &str) -> String {
    let mut text = format!(
        "{:<28} {:>8} {:>10} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6}\n",
        "subset", "trajs", "tokens", "DE", "RME", "CAC p50", "CAC p90", "tools", "short"
    );
    for r in rows {
        text.push_str(&format!(
            "{:<28} {:>8} {:>10} {:>7.3} {:>7.3} {:>8.2} {:>8.2} {:>6} {:>6}\n",
            r.name,
            r.trajectories,
            r.tokens,
            r.de_bits,
            r.rme_bits,
            r.cac_p50,
            r.cac_p90,
            r.tools,
            if r.short { "yes" } else { "" }
        ));
    }
    text.push_str(&format!(
        "wrote {} subsets to {} (summary.parquet, summary.csv, dataset_info.json)\n",
        rows.len(),
        out
    ));
    text
}
