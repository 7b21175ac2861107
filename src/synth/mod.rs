//! Synthesis batches: for each request, the planner writes a blueprint, the agents play it out,
//! the verifier keeps it or rejects it with reasons. Accepted trajectories land in
//! `trajectories` at the request's round with their lineage; blueprints, rejections and the
//! batch's counts land in `blueprints`, `synthesis_rejects` and `batches` (DESIGN.md,
//! "Synthesis").
//!
//! A batch is idempotent: trajectory ids derive from the batch and the seed, the trajectories
//! are written once at the end, and the `batches` row is written last. A batch that was
//! interrupted is run again from its stored requests; with the response cache, no model call
//! that was answered before is sent again.

pub mod agents;
pub mod backend;
pub mod blueprint;
pub mod verify;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::model::Trajectory;
use crate::query::session::CorpusSession;
use crate::sandbox::python::PythonOptions;
use crate::store::trajectory_metrics::TrajectoryWriter;
use crate::store::{Corpus, convert, rows, tables};
use agents::{Agents, ItemFailure};
use backend::ChatModel;
use blueprint::{Blueprint, Mutation, PlanInput};

/// What to synthesize from one seed: a row of `seeds_next_round` (and of `synthesis_requests`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SynthRequest {
    pub seed_id: String,
    pub round: i32,
    pub mutation: String,
    pub score: f64,
    pub domain: Option<String>,
    pub reasoning_mode: Option<String>,
    pub cac: Option<f64>,
    pub cluster_id: Option<String>,
    pub target_domain: Option<String>,
    pub donor_id: Option<String>,
}

/// One row of `batches`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct BatchSummary {
    pub batch_id: String,
    pub round: i32,
    pub requested: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub failed: i64,
    /// Accepted trajectories already in the corpus (a batch run again after a crash).
    pub already_present: i64,
    pub backend: String,
    pub seconds: f64,
    pub finished_at: String,
    #[serde(skip)]
    pub stats: Option<backend::StatsSummary>,
}

/// One row of `blueprints`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BlueprintRow {
    blueprint_id: String,
    batch_id: String,
    seed_id: String,
    round: i32,
    mutation: String,
    domain: Option<String>,
    cluster_id: Option<String>,
    goal: String,
    persona: String,
    expected_outcome: String,
    target_mode: String,
    target_complexity: f64,
    /// The steps, JSON.
    steps: String,
    /// The tools offered, JSON.
    tools: String,
}

/// One row of `synthesis_rejects`: a trajectory the verifier refused, or a request that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectRow {
    pub batch_id: String,
    pub seed_id: String,
    pub round: i32,
    /// `verifier`, or the agent that failed (`planner`, `assistant`, `tool simulator`, …).
    pub stage: String,
    pub reasons: String,
    /// The rejected trajectory as OpenAI JSON, when there is one.
    pub trajectory: Option<String>,
}

/// Which model the agents talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Plays every agent deterministically from its task, with no model.
    Offline,
    /// An OpenAI-compatible chat-completions server.
    Openai,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Offline => "offline",
            Backend::Openai => "openai",
        }
    }
}

crate::choice::impl_choice!(Backend, [Backend::Offline, Backend::Openai]);

/// How synthesis reaches its model and runs code: what `--backend` and its companions set.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub backend: Backend,
    /// The server, model and request limits of the `openai` backend (its `concurrency` is
    /// also the number of seeds worked on at once).
    pub openai: backend::openai::OpenAiOptions,
    /// Read and write the response cache (`cache/llm/` in the corpus).
    pub cache: bool,
    /// Seed of every deterministic choice (mutations, offline answers, request seeds).
    pub seed: u64,
    /// Wall-clock limit of each code-tool run in the sandbox.
    pub code_timeout: std::time::Duration,
    pub progress: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Offline,
            openai: Default::default(),
            cache: true,
            seed: 0,
            code_timeout: std::time::Duration::from_secs(10),
            progress: false,
        }
    }
}

/// How a batch runs: the model and the sandbox, ready to use.
pub struct SynthConfig {
    pub model: Arc<dyn ChatModel>,
    pub model_name: String,
    /// Requests worked on at once.
    pub concurrency: usize,
    pub seed: u64,
    pub sandbox: PythonOptions,
    pub progress: bool,
}

impl SynthConfig {
    /// Builds the backend `opts` names (the response cache lives in `corpus`).
    pub fn new(opts: &SynthOptions, corpus: &Corpus) -> Result<Self> {
        let model: Arc<dyn ChatModel> = match opts.backend {
            Backend::Offline => Arc::new(backend::offline::OfflineModel { seed: opts.seed }),
            Backend::Openai => {
                let cache = opts
                    .cache
                    .then(|| backend::cache::ResponseCache::new(corpus));
                Arc::new(backend::openai::OpenAiModel::new(
                    opts.openai.clone(),
                    cache,
                )?)
            }
        };
        Ok(Self {
            model,
            model_name: opts.openai.model.clone(),
            concurrency: opts.openai.concurrency,
            seed: opts.seed,
            sandbox: PythonOptions {
                limits: crate::sandbox::Limits::with_timeout(opts.code_timeout),
                ..Default::default()
            },
            progress: opts.progress,
        })
    }
}

/// The id of a batch: a hash of its round and seeds, so the same requests get the same id.
pub fn batch_id(requests: &[SynthRequest]) -> String {
    let mut ids: Vec<String> = requests
        .iter()
        .map(|r| format!("{}|{}", r.seed_id, r.mutation))
        .collect();
    ids.sort();
    let round = requests.first().map(|r| r.round).unwrap_or(0);
    let d = Sha256::digest(ids.join("\n").as_bytes());
    format!("r{round}-{}", &hex::encode(d)[..12])
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn sql_list(ids: &HashSet<&str>) -> String {
    let mut v: Vec<String> = ids
        .iter()
        .map(|s| crate::query::params::string_literal(s))
        .collect();
    v.sort();
    v.join(", ")
}

async fn load_trajectories(
    ctx: &datafusion::prelude::SessionContext,
    ids: &HashSet<&str>,
) -> Result<HashMap<String, Trajectory>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let batches = ctx
        .sql(&format!(
            "SELECT * FROM {} WHERE traj_id IN ({})",
            tables::TRAJECTORIES.name,
            sql_list(ids)
        ))
        .await?
        .collect()
        .await?;
    let mut out = HashMap::new();
    for b in &batches {
        for t in convert::batch_to_trajectories(b)? {
            out.insert(t.traj_id.clone(), t);
        }
    }
    Ok(out)
}

async fn output_schemas(
    ctx: &datafusion::prelude::SessionContext,
) -> Result<HashMap<String, Value>> {
    let batches = ctx
        .sql("SELECT name, output_schema FROM tools WHERE output_schema IS NOT NULL")
        .await?
        .collect()
        .await?;
    let mut out = HashMap::new();
    for b in &batches {
        let names = crate::query::cells::strs(b, "name")?;
        let schemas = crate::query::cells::strs(b, "output_schema")?;
        for (n, s) in names.into_iter().zip(schemas) {
            if let Ok(v) = serde_json::from_str(&s) {
                out.insert(n, v);
            }
        }
    }
    Ok(out)
}

enum Outcome {
    Accepted(Box<Trajectory>, Box<Blueprint>),
    Rejected(Box<Trajectory>, Box<Blueprint>, Vec<String>),
    Failed(Option<Box<Blueprint>>, ItemFailure),
}

async fn synthesize_one(
    a: &Agents<'_>,
    batch_id: &str,
    req: &SynthRequest,
    seed: Option<&Trajectory>,
    donor: Option<&Trajectory>,
    out_schemas: &HashMap<String, Value>,
) -> Outcome {
    let Some(seed) = seed else {
        return Outcome::Failed(
            None,
            ItemFailure {
                stage: "request",
                reason: format!("seed `{}` is not in the corpus", req.seed_id),
            },
        );
    };
    let Some(mutation) = Mutation::parse(&req.mutation) else {
        return Outcome::Failed(
            None,
            ItemFailure {
                stage: "request",
                reason: format!(
                    "unknown mutation `{}` (deepen, broaden or shift)",
                    req.mutation
                ),
            },
        );
    };
    let key = format!("{batch_id}|{}|{}", req.seed_id, req.mutation);
    let input = PlanInput {
        seed,
        mutation,
        donor,
        target_domain: req.target_domain.clone(),
        cluster_id: req.cluster_id.clone(),
        rng_seed: u64::from_str_radix(&short_hash(&key), 16).unwrap_or(0) ^ a.seed,
    };
    let mut bp = match agents::plan(a, &input).await {
        Ok(bp) => bp,
        Err(f) => return Outcome::Failed(None, f),
    };
    bp.blueprint_id = format!("bp-{}", short_hash(&key));
    let messages = match agents::rollout(a, &bp, out_schemas).await {
        Ok(m) => m,
        Err(f) => return Outcome::Failed(Some(Box::new(bp)), f),
    };
    let (mode, _) = blueprint::measure(&messages);
    let mut metadata = serde_json::Map::new();
    metadata.insert("blueprint_id".into(), json!(bp.blueprint_id));
    metadata.insert("mutation".into(), json!(bp.mutation.name()));
    metadata.insert("backend".into(), json!(a.model.describe()));
    let t = Trajectory {
        traj_id: format!("syn/{batch_id}/{}", short_hash(&key)),
        source: "tdscale-synth".into(),
        format: "synth".into(),
        round: req.round,
        parent_id: Some(seed.traj_id.clone()),
        batch_id: Some(batch_id.to_string()),
        cluster_id: bp.cluster_id.clone(),
        domain: bp.domain.clone(),
        reasoning_mode: Some(mode),
        system: bp.system.clone(),
        tools: bp.tools.clone(),
        messages,
        reward: None,
        metadata,
    };
    let reasons = verify::verify(&t, &bp);
    if reasons.is_empty() {
        Outcome::Accepted(Box::new(t), Box::new(bp))
    } else {
        Outcome::Rejected(Box::new(t), Box::new(bp), reasons)
    }
}

async fn has_batch_rows(
    ctx: &datafusion::prelude::SessionContext,
    table: &str,
    batch_id: &str,
) -> Result<bool> {
    let n = ctx
        .sql(&format!(
            "SELECT count(*) AS n FROM {table} WHERE batch_id = {}",
            crate::query::params::string_literal(batch_id)
        ))
        .await?
        .collect()
        .await?;
    Ok(n.first()
        .and_then(|b| crate::query::cells::i64_at(b, "n", 0).ok())
        .unwrap_or(0)
        > 0)
}

fn blueprint_row(bp: &Blueprint, batch_id: &str, round: i32) -> BlueprintRow {
    BlueprintRow {
        blueprint_id: bp.blueprint_id.clone(),
        batch_id: batch_id.to_string(),
        seed_id: bp.seed_id.clone(),
        round,
        mutation: bp.mutation.name().into(),
        domain: bp.domain.clone(),
        cluster_id: bp.cluster_id.clone(),
        goal: bp.goal.clone(),
        persona: bp.persona.clone(),
        expected_outcome: bp.expected_outcome.clone(),
        target_mode: bp.target_mode.clone(),
        target_complexity: bp.target_complexity,
        steps: serde_json::to_string(&bp.steps).expect("steps serialize"),
        tools: serde_json::to_string(&bp.tools).expect("tools serialize"),
    }
}

/// Runs one batch and records it. Returns the counts (accepted + rejected + failed = requested).
///
/// Every table it writes is added to `session`, so the caller's next query sees the batch.
pub async fn run_batch(
    session: &CorpusSession,
    batch_id: &str,
    requests: &[SynthRequest],
    cfg: &SynthConfig,
) -> Result<BatchSummary> {
    let started = Instant::now();
    let round = requests.first().map(|r| r.round).unwrap_or(0);
    let (ctx, corpus) = (session.ctx(), session.corpus());
    let ids: HashSet<&str> = requests
        .iter()
        .flat_map(|r| std::iter::once(r.seed_id.as_str()).chain(r.donor_id.as_deref()))
        .collect();
    let known = load_trajectories(ctx, &ids).await?;
    let out_schemas = output_schemas(ctx).await?;
    let agents = Agents {
        model: cfg.model.as_ref(),
        model_name: &cfg.model_name,
        seed: cfg.seed,
        sandbox: &cfg.sandbox,
    };
    let bar = if cfg.progress {
        indicatif::ProgressBar::new(requests.len() as u64).with_message(format!("batch {batch_id}"))
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut outcomes: Vec<(usize, Outcome)> = futures::stream::iter(0..requests.len())
        .map(|i| {
            let r = &requests[i];
            let seed = known.get(&r.seed_id);
            let donor = r
                .donor_id
                .as_ref()
                .filter(|_| r.mutation == "broaden")
                .and_then(|d| known.get(d));
            let agents = &agents;
            let out_schemas = &out_schemas;
            let bar = &bar;
            async move {
                let o = synthesize_one(agents, batch_id, r, seed, donor, out_schemas).await;
                bar.inc(1);
                (i, o)
            }
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    outcomes.sort_by_key(|(i, _)| *i);

    let existing: HashSet<String> = {
        let b = ctx
            .sql(&format!(
                "SELECT traj_id FROM trajectories WHERE batch_id = {}",
                crate::query::params::string_literal(batch_id)
            ))
            .await?
            .collect()
            .await?;
        b.iter()
            .map(|b| crate::query::cells::strs(b, "traj_id"))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect()
    };
    let mut summary = BatchSummary {
        batch_id: batch_id.to_string(),
        round,
        requested: requests.len() as i64,
        backend: cfg.model.describe(),
        ..Default::default()
    };
    let mut accepted: Vec<Trajectory> = vec![];
    let mut bps: Vec<BlueprintRow> = vec![];
    let mut rejects: Vec<RejectRow> = vec![];
    for (i, o) in outcomes {
        let req = &requests[i];
        match o {
            Outcome::Accepted(t, bp) => {
                summary.accepted += 1;
                bps.push(blueprint_row(&bp, batch_id, round));
                if existing.contains(&t.traj_id) {
                    summary.already_present += 1;
                } else {
                    accepted.push(*t);
                }
            }
            Outcome::Rejected(t, bp, reasons) => {
                summary.rejected += 1;
                bps.push(blueprint_row(&bp, batch_id, round));
                rejects.push(RejectRow {
                    batch_id: batch_id.into(),
                    seed_id: req.seed_id.clone(),
                    round,
                    stage: "verifier".into(),
                    reasons: reasons.join("; "),
                    trajectory: Some(crate::formats::openai::to_openai_json(&t).to_string()),
                });
            }
            Outcome::Failed(bp, f) => {
                summary.failed += 1;
                if let Some(bp) = bp {
                    bps.push(blueprint_row(&bp, batch_id, round));
                }
                rejects.push(RejectRow {
                    batch_id: batch_id.into(),
                    seed_id: req.seed_id.clone(),
                    round,
                    stage: f.stage.into(),
                    reasons: f.reason,
                    trajectory: None,
                });
            }
        }
    }
    // A run of this batch that was killed after writing some tables must not double them.
    if !accepted.is_empty() {
        let batch = convert::trajectories_to_batch(&accepted)?;
        let mut w = TrajectoryWriter::new(corpus, round);
        w.write(&batch).await?;
        let written = w.finish().await?;
        for (table, files) in [
            (&tables::TRAJECTORIES, written.trajectories),
            (&tables::TRAJECTORY_METRICS, written.metrics),
        ] {
            let files: Vec<_> = files.into_iter().map(|(p, _)| p).collect();
            session.add_files(table, &files).await?;
        }
    }
    if !has_batch_rows(ctx, tables::BLUEPRINTS.name, batch_id).await? {
        let files = rows::append(corpus, &tables::BLUEPRINTS, &bps).await?;
        session.add_files(&tables::BLUEPRINTS, &files).await?;
    }
    if !has_batch_rows(ctx, tables::SYNTHESIS_REJECTS.name, batch_id).await? {
        let files = rows::append(corpus, &tables::SYNTHESIS_REJECTS, &rejects).await?;
        session
            .add_files(&tables::SYNTHESIS_REJECTS, &files)
            .await?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.finished_at = chrono::Utc::now().to_rfc3339();
    summary.stats = cfg.model.stats();
    let files = rows::append(corpus, &tables::BATCHES, std::slice::from_ref(&summary)).await?;
    session.add_files(&tables::BATCHES, &files).await?;
    Ok(summary)
}
