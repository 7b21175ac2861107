//! The `rounds` table: after each round, the corpus's counts, DE, RME and CAC percentiles, and the
//! batch's acceptance — one row per round, so a user sees whether diversity grows or collapses.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::query::params;
use crate::query::session::CorpusSession;
use crate::store::{rows, tables};
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
    /// Why the batch's other requests produced nothing: a JSON object of rejection or failure
    /// kind → count, most frequent first (see [`crate::synth::verify::reason_kind`]).
    #[serde(default)]
    pub rejection_reasons: Option<String>,
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
    session: &CorpusSession,
    round: i32,
    strategy: &str,
    batch: Option<&BatchSummary>,
) -> Result<RoundRow> {
    let sql = params::substitute(
        ROUND_METRICS_SQL,
        &HashMap::from([("round".to_string(), round.to_string())]),
    )?;
    let batches = session.collect(&sql).await?;
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
        rejection_reasons: batch.map(|b| reasons_json(&b.reasons)),
    };
    let files = rows::append(
        session.corpus(),
        &tables::ROUNDS,
        std::slice::from_ref(&row),
    )
    .await?;
    session.add_files(&tables::ROUNDS, &files).await?;
    Ok(row)
}

/// Kind → count as a JSON object, most frequent first (ties by kind).
fn reasons_json(reasons: &std::collections::BTreeMap<String, i64>) -> String {
    let mut v: Vec<(&String, &i64)> = reasons.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let m: serde_json::Map<String, serde_json::Value> = v
        .into_iter()
        .map(|(k, n)| (k.clone(), serde_json::json!(n)))
        .collect();
    serde_json::Value::Object(m).to_string()
}

/// How many rejection kinds `tdscale rounds` shows per round.
const TOP_REASONS: usize = 3;

/// Every row of `rounds`, in order.
pub async fn list(session: &CorpusSession) -> Result<Vec<RoundRow>> {
    let batches = session
        .collect("SELECT * FROM rounds ORDER BY \"round\", finished_at")
        .await?;
    rows::from_batches(&batches)
}

/// The rounds as a text table.
pub fn to_text(rows: &[RoundRow]) -> String {
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    let mut out = format!(
        "{:>5} {:<9} {:>8} {:>6} {:>7} {:>7} {:>6} {:>8} {:>8} {:>9}\n",
        "round", "strategy", "trajs", "new", "DE", "RME", "modes", "CAC p50", "CAC p90", "accepted"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>5} {:<9} {:>8} {:>6} {:>7} {:>7} {:>6} {:>8} {:>8} {:>9}\n",
            r.round,
            r.strategy,
            r.trajectories,
            r.new_trajectories,
            f(r.de_bits),
            f(r.rme_bits),
            r.modes,
            f(r.cac_p50),
            f(r.cac_p90),
            r.acceptance_rate
                .map(|x| format!("{:.0}%", 100.0 * x))
                .unwrap_or_else(|| "-".into())
        ));
    }
    let mut why = String::new();
    for r in rows {
        let reasons: serde_json::Map<String, serde_json::Value> = r
            .rejection_reasons
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        if reasons.is_empty() {
            continue;
        }
        let top: Vec<String> = reasons
            .iter()
            .take(TOP_REASONS)
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        let more = reasons.len().saturating_sub(TOP_REASONS);
        why.push_str(&format!(
            "  round {}: {}{}\n",
            r.round,
            top.join("; "),
            if more > 0 {
                format!("; and {more} more kinds")
            } else {
                String::new()
            }
        ));
    }
    if !why.is_empty() {
        out.push_str("top rejection reasons:\n");
        out.push_str(&why);
    }
    out
}
