//! Adaptive evolution (DESIGN.md, "Adaptive evolution"): each round measures the corpus, picks
//! long-tail seeds with `queries/seeds_next_round.sql`, inserts them into `synthesis_requests`
//! (which runs a synthesis batch), and appends the corpus's new diversity to `rounds`.
//!
//! A batch interrupted by a crash is found from its stored requests and finished first, so
//! re-running the same command completes it without duplicates.

pub mod requests;
pub mod rounds;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::query::params;
use crate::query::session::{SessionOptions, corpus_context, corpus_context_with};
use crate::store::Corpus;
use crate::synth::{self, BatchSummary, SynthConfig};
use requests::{Shared, SynthesisRequests};
use rounds::RoundRow;

/// The seed plan.
pub const SEEDS_SQL: &str = include_str!("../../queries/seeds_next_round.sql");

/// How seeds are picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
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
    pub backend: Option<crate::synth::backend::openai::StatsSummary>,
}

impl EvolveSummary {
    /// The first batch in which every request failed (the model server refused or never
    /// answered: a wrong key, URL or model). Evolution stops after such a batch, and the command
    /// exits with an error.
    pub fn all_failed_batch(&self) -> Option<&BatchSummary> {
        self.batches.iter().find(|b| all_failed(b))
    }
}

fn all_failed(b: &BatchSummary) -> bool {
    b.requested > 0 && b.failed == b.requested
}

/// The seed plan's SQL with parameters filled in.
pub fn seeds_sql(params: &HashMap<String, String>) -> Result<String> {
    params::substitute(SEEDS_SQL, params)
}

/// A session over the corpus (built with `session`) with `synthesis_requests` (running batches
/// with `config`) and the `seeds_next_round` view (with `params`).
pub async fn evolution_context(
    corpus: &Corpus,
    config: Arc<SynthConfig>,
    params: &HashMap<String, String>,
    session: &SessionOptions,
) -> Result<(SessionContext, Arc<Shared>)> {
    let ctx = corpus_context_with(corpus, session).await?;
    let shared = Arc::new(Shared {
        corpus: corpus.clone(),
        config,
        finished: Mutex::new(vec![]),
    });
    ctx.register_table(requests::TABLE, Arc::new(SynthesisRequests(shared.clone())))?;
    let view = format!(
        "CREATE OR REPLACE VIEW seeds_next_round AS {}",
        seeds_sql(params)?
    );
    ctx.sql(&view)
        .await
        .map_err(|e| e.context("creating view seeds_next_round"))?
        .collect()
        .await?;
    Ok((ctx, shared))
}

/// Batches whose requests are stored but that never finished.
pub async fn unfinished_batches(
    corpus: &Corpus,
) -> Result<Vec<(String, Vec<synth::SynthRequest>)>> {
    let stored = requests::stored_batches(corpus).await?;
    if stored.is_empty() {
        return Ok(vec![]);
    }
    let ctx = corpus_context(corpus).await?;
    let done = ctx
        .sql("SELECT DISTINCT batch_id FROM batches")
        .await?
        .collect()
        .await?;
    let done: std::collections::HashSet<String> = done
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

/// Runs `opts.rounds` rounds of evolution (an unfinished batch found first counts as one).
pub async fn evolve(
    corpus: &Corpus,
    opts: &EvolveOptions,
    config: Arc<SynthConfig>,
) -> Result<EvolveSummary> {
    let mut summary = EvolveSummary {
        resumed_batches: 0,
        batches: vec![],
        rounds: vec![],
        backend: None,
    };
    if rounds::list(corpus).await?.is_empty() {
        let ctx = corpus_context(corpus).await?;
        let last = ctx
            .sql("SELECT coalesce(max(\"round\"), 0) AS r FROM trajectories")
            .await?
            .collect()
            .await?;
        let r = last
            .first()
            .map(|b| crate::query::cells::i64_at(b, "r", 0))
            .transpose()?
            .unwrap_or(0);
        summary
            .rounds
            .push(rounds::append(corpus, r as i32, "baseline", None).await?);
    }
    for (id, reqs) in unfinished_batches(corpus).await? {
        tracing::info!("finishing interrupted batch {id} ({} requests)", reqs.len());
        let b = synth::run_batch(corpus, &id, &reqs, &config).await?;
        summary.resumed_batches += 1;
        summary
            .rounds
            .push(rounds::append(corpus, b.round, opts.strategy.name(), Some(&b)).await?);
        let failed = all_failed(&b);
        summary.batches.push(b);
        if failed {
            summary.backend = config.model.stats();
            return Ok(summary);
        }
    }
    let mut p: HashMap<String, String> = opts.params.clone();
    for (k, v) in opts.strategy.params() {
        p.insert(k.into(), v.into());
    }
    p.insert("n".into(), opts.per_round.to_string());
    p.insert("seed".into(), opts.seed.to_string());
    while summary.batches.len() < opts.rounds {
        let (ctx, shared) =
            evolution_context(corpus, config.clone(), &p, &SessionOptions::default()).await?;
        ctx.sql("INSERT INTO synthesis_requests SELECT * FROM seeds_next_round")
            .await?
            .collect()
            .await?;
        let Some(b) = shared.finished.lock().expect("lock").pop() else {
            return Err(Error::Usage(
                "no seeds: the corpus is empty, or every trajectory has been a seed already".into(),
            ));
        };
        summary
            .rounds
            .push(rounds::append(corpus, b.round, opts.strategy.name(), Some(&b)).await?);
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
