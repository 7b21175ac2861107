//! Adaptive evolution (DESIGN.md, "Adaptive evolution"): each round measures the corpus, picks
//! long-tail seeds with `queries/seeds_next_round.sql`, inserts them into `synthesis_requests`
//! (which runs a synthesis batch), and appends the corpus's new diversity to `rounds`.
//!
//! A batch interrupted by a crash is found from its stored requests and finished first, so
//! re-running the same command completes it without duplicates.

pub mod requests;
pub mod rounds;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::query::params;
use crate::query::session::CorpusSession;
use crate::synth::{self, BatchSummary, SynthOptions};
use requests::{Shared, SynthesisRequests};
use rounds::RoundRow;

/// The seed plan.
pub const SEEDS_SQL: &str = include_str!("../../queries/seeds_next_round.sql");

/// How seeds are picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedStrategy {
    /// The long tail: surprisal of the (domain, mode) cell, CAC and unused clusters.
    Steered,
    /// The control: uniformly at random (the same plan with every weight 0).
    Random,
}

impl SeedStrategy {
    pub fn name(self) -> &'static str {
        match self {
            Self::Steered => "steered",
            Self::Random => "random",
        }
    }

    /// Parameters the strategy fixes in the seed plan.
    fn params(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Self::Steered => vec![],
            Self::Random => vec![
                ("w_surprisal", "0"),
                ("w_cac", "0"),
                ("w_cluster", "0"),
                ("w_rare_domain", "0"),
            ],
        }
    }
}

crate::choice::impl_choice!(SeedStrategy, [SeedStrategy::Steered, SeedStrategy::Random]);

/// What `tdscale evolve` does.
#[derive(Debug, Clone)]
pub struct EvolveOptions {
    pub rounds: usize,
    pub per_round: usize,
    pub strategy: SeedStrategy,
    /// More parameters of the seed plan (`w_surprisal`, `w_cac`, `w_cluster`, `w_rare_domain`).
    pub params: HashMap<String, String>,
    pub seed: u64,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct EvolveSummary {
    pub resumed_batches: usize,
    pub batches: Vec<BatchSummary>,
    pub rounds: Vec<RoundRow>,
    /// Backend statistics of the last batch (HTTP backends).
    pub backend: Option<crate::llm::StatsSummary>,
}

impl EvolveSummary {
    /// The first batch in which every request failed (the model server refused or never
    /// answered: a wrong key, URL or model). Evolution stops after such a batch, and the command
    /// exits with an error.
    pub fn all_failed_batch(&self) -> Option<&BatchSummary> {
        self.batches.iter().find(|b| all_failed(b))
    }

    /// The batches, the backend's numbers and the rounds so far (`all_rounds`) as text.
    pub fn to_text(&self, all_rounds: &[RoundRow]) -> String {
        let mut out = String::new();
        if self.resumed_batches > 0 {
            out.push_str(&format!(
                "finished {} interrupted batch(es)\n",
                self.resumed_batches
            ));
        }
        for b in &self.batches {
            out.push_str(&format!(
                "round {}: batch {} — {} requested, {} accepted, {} rejected, {} failed ({:.1} s)\n",
                b.round, b.batch_id, b.requested, b.accepted, b.rejected, b.failed, b.seconds
            ));
        }
        if let Some(st) = &self.backend {
            out.push_str(&st.line());
            out.push('\n');
        }
        out + &rounds::to_text(all_rounds)
    }
}

fn all_failed(b: &BatchSummary) -> bool {
    b.requested > 0 && b.failed == b.requested
}

/// The seed plan's SQL with parameters filled in.
pub fn seeds_sql(params: &HashMap<String, String>) -> Result<String> {
    params::substitute(SEEDS_SQL, params)
}

/// Adds evolution to a session: the `synthesis_requests` table (its inserts run batches with
/// `options`) and the `seeds_next_round` view (with `params`).
pub async fn register(
    session: &CorpusSession,
    options: SynthOptions,
    params: &HashMap<String, String>,
) -> Result<Arc<Shared>> {
    let shared = Arc::new(Shared::new(session.scoped().await?, options));
    let ctx = session.ctx();
    ctx.deregister_table(requests::TABLE)?;
    ctx.register_table(requests::TABLE, Arc::new(SynthesisRequests(shared.clone())))?;
    let view = format!(
        "CREATE OR REPLACE VIEW seeds_next_round AS {}",
        seeds_sql(params)?
    );
    session
        .sql(&view)
        .await
        .map_err(|e| Error::Other(format!("creating view seeds_next_round: {e}")))?
        .collect()
        .await?;
    Ok(shared)
}

/// Batches whose requests are stored but that never finished.
async fn unfinished_batches(
    session: &CorpusSession,
    shared: &Shared,
) -> Result<Vec<requests::StoredBatch>> {
    let stored = shared.stored_batches().await?;
    if stored.is_empty() {
        return Ok(vec![]);
    }
    let done: std::collections::HashSet<String> = session
        .collect("SELECT DISTINCT batch_id FROM batches")
        .await?
        .iter()
        .map(|b| crate::query::cells::strs(b, "batch_id"))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(stored
        .into_iter()
        .filter(|(id, _)| !done.contains(id))
        .collect())
}

/// Runs `opts.rounds` rounds of evolution (an unfinished batch found first counts as one), all
/// in `session`, holding the corpus's writer lock throughout.
pub async fn evolve(
    session: &CorpusSession,
    opts: &EvolveOptions,
    synth: SynthOptions,
) -> Result<EvolveSummary> {
    let lock = session.lock_writer("evolve").await?;
    let result = evolve_locked(session, opts, synth).await;
    lock.release().await;
    result
}

async fn evolve_locked(
    session: &CorpusSession,
    opts: &EvolveOptions,
    synth: SynthOptions,
) -> Result<EvolveSummary> {
    let mut summary = EvolveSummary {
        resumed_batches: 0,
        batches: vec![],
        rounds: vec![],
        backend: None,
    };
    let mut p: HashMap<String, String> = opts.params.clone();
    for (k, v) in opts.strategy.params() {
        p.insert(k.into(), v.into());
    }
    p.insert("n".into(), opts.per_round.to_string());
    p.insert("seed".into(), opts.seed.to_string());
    let shared = register(session, synth, &p).await?;
    let config = shared.config().await?;
    if rounds::list(session).await?.is_empty() {
        let last = session
            .collect("SELECT coalesce(max(\"round\"), 0) AS r FROM trajectories")
            .await?;
        let r = last
            .first()
            .map(|b| crate::query::cells::i64_at(b, "r", 0))
            .transpose()?
            .unwrap_or(0);
        summary
            .rounds
            .push(rounds::append(session, r as i32, "baseline", None).await?);
    }
    for (id, reqs) in unfinished_batches(session, &shared).await? {
        tracing::info!("finishing interrupted batch {id} ({} requests)", reqs.len());
        let b = synth::run_batch(session, &id, &reqs, &config).await?;
        summary.resumed_batches += 1;
        summary
            .rounds
            .push(rounds::append(session, b.round, opts.strategy.name(), Some(&b)).await?);
        let failed = all_failed(&b);
        summary.batches.push(b);
        if failed {
            summary.backend = config.model.stats();
            return Ok(summary);
        }
    }
    while summary.batches.len() < opts.rounds {
        session
            .collect("INSERT INTO synthesis_requests SELECT * FROM seeds_next_round")
            .await?;
        let Some(b) = shared.finished.lock().expect("lock").pop() else {
            return Err(Error::Usage(
                "no seeds: the corpus is empty, or every trajectory has been a seed already".into(),
            ));
        };
        summary
            .rounds
            .push(rounds::append(session, b.round, opts.strategy.name(), Some(&b)).await?);
        let failed = all_failed(&b);
        summary.batches.push(b);
        // Another round would fail the same way: stop and let the caller report it.
        if failed {
            break;
        }
    }
    summary.backend = config.model.stats();
    Ok(summary)
}
