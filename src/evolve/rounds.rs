//! The `rounds` table: after each round, the corpus's counts, DE, RME and CAC percentiles, and the
//! batch's acceptance — one row per round, so a user sees whether diversity grows or collapses.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::query::{params, session::corpus_context};
use crate::store::{Corpus, rows, schema};
use crate::synth::BatchSummary;

/// The plan measuring the corpus after a round.
pub const ROUND_METRICS_SQL: &str = include_str!("../../queries/round_metrics.sql");
/// The plan listing the rounds (`tdscale rounds`).
pub const ROUNDS_SQL: &str = include_str!("../../queries/rounds.sql");

/// One row of `rounds`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoundRow {
    pub round: i32,
    /// `baseline` for the corpus before evolution, else the seed strategy.
    pub strategy: String,
    pub batch_id: Option<String>,
    pub trajectories: i64,
    pub new_trajectories: i64,
    pub de_bits: Option<f64>,
    pub rme_bits: Option<f64>,
    pub modes: i64,
    pub cac_p50: Option<f64>,
    pub cac_p90: Option<f64>,
    pub cac_p99: Option<f64>,
    pub requested: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub failed: i64,
    pub acceptance_rate: Option<f64>,
    pub finished_at: String,
}

#[derive(Deserialize)]
struct Measured {
    trajectories: i64,
    new_trajectories: i64,
    de_bits: Option<f64>,
    rme_bits: Option<f64>,
    modes: i64,
    cac_p50: Option<f64>,
    cac_p90: Option<f64>,
    cac_p99: Option<f64>,
}

/// Measures the corpus up to `round` and appends the row.
pub async fn append(
    corpus: &Corpus,
    round: i32,
    strategy: &str,
    batch: Option<&BatchSummary>,
) -> Result<RoundRow> {
    let ctx = corpus_context(corpus).await?;
    let sql = params::substitute(
        ROUND_METRICS_SQL,
        &HashMap::from([("round".to_string(), round.to_string())]),
    )?;
    let batches = ctx.sql(&sql).await?.collect().await?;
    let m: Measured = rows::from_batches(&batches)?
        .into_iter()
        .next()
        .ok_or_else(|| crate::error::Error::Other("the round metrics returned no row".into()))?;
    let (requested, accepted, rejected, failed) = batch
        .map(|b| (b.requested, b.accepted, b.rejected, b.failed))
        .unwrap_or_default();
    let row = RoundRow {
        round,
        strategy: strategy.to_string(),
        batch_id: batch.map(|b| b.batch_id.clone()),
        trajectories: m.trajectories,
        new_trajectories: m.new_trajectories,
        de_bits: m.de_bits,
        rme_bits: m.rme_bits,
        modes: m.modes,
        cac_p50: m.cac_p50,
        cac_p90: m.cac_p90,
        cac_p99: m.cac_p99,
        requested,
        accepted,
        rejected,
        failed,
        acceptance_rate: (requested > 0).then(|| accepted as f64 / requested as f64),
        finished_at: chrono::Utc::now().to_rfc3339(),
    };
    rows::append(
        corpus,
        "rounds",
        schema::rounds_schema(),
        std::slice::from_ref(&row),
    )
    .await?;
    Ok(row)
}

/// Every row of `rounds`, in order.
pub async fn list(corpus: &Corpus) -> Result<Vec<RoundRow>> {
    let ctx = corpus_context(corpus).await?;
    let batches = ctx
        .sql("SELECT * FROM rounds ORDER BY \"round\", finished_at")
        .await?
        .collect()
        .await?;
    rows::from_batches(&batches)
}
