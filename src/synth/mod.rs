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
pub mod blueprint;
pub mod grounding;
pub mod offline;
pub mod verify;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::llm::{self, ChatModel};
use crate::model::{ToolDef, Trajectory};
use crate::query::session::CorpusSession;
use crate::sandbox::python::PythonOptions;
use crate::store::trajectory_metrics::TrajectoryWriter;
use crate::store::{Corpus, convert, rows, tables};
use agents::{Agents, ItemFailure};
use blueprint::{Blueprint, Mutation, PlanInput};
use grounding::Grounding;

/// The `domain_source` of a synthesized trajectory: its blueprint's domain (the seed's, or for
/// `broaden` the target domain's).
pub const DOMAIN_FROM_SYNTHESIS: &str = "synthesis";

/// Trajectories of the corpus (besides the batch's seeds) whose calls ground the simulator: a
/// deterministic sample of about this many.
const GROUNDING_SAMPLE: i64 = 2000;

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
    pub stats: Option<llm::StatsSummary>,
    /// Rejections and failures by kind ([`verify::reason_kind`]; a failure as `<stage> failed:
    /// <reason>`), each trajectory counted once per kind.
    #[serde(skip)]
    pub reasons: std::collections::BTreeMap<String, i64>,
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
    pub openai: llm::openai::OpenAiOptions,
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
            Backend::Offline => Arc::new(offline::OfflineModel { seed: opts.seed }),
            Backend::Openai => {
                let cache = opts.cache.then(|| llm::cache::ResponseCache::new(corpus));
                Arc::new(llm::openai::OpenAiModel::new(opts.openai.clone(), cache)?)
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

/// Tool definitions by name, for the tools a seed calls but does not offer, and output schemas:
/// from `tools` (a catalog's or a trajectory's definition before an inferred one).
#[derive(Default)]
struct Definitions {
    tools: HashMap<String, ToolDef>,
    outputs: HashMap<String, Value>,
}

async fn definitions(ctx: &datafusion::prelude::SessionContext) -> Result<Definitions> {
    let batches = ctx
        .sql(
            "SELECT name, description, parameters, output_schema FROM tools
             ORDER BY CASE WHEN provenance = 'inferred' THEN 1 ELSE 0 END, tool_id",
        )
        .await?
        .collect()
        .await?;
    let mut out = Definitions::default();
    for b in &batches {
        let names = crate::query::cells::strs(b, "name")?;
        let descriptions = crate::query::cells::opt_strs(b, "description")?;
        let parameters = crate::query::cells::opt_strs(b, "parameters")?;
        let outputs = crate::query::cells::opt_strs(b, "output_schema")?;
        for (i, n) in names.into_iter().enumerate() {
            if let Some(v) = outputs[i]
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
            {
                out.outputs.entry(n.clone()).or_insert(v);
            }
            if parameters[i].is_some() {
                out.tools.entry(n.clone()).or_insert(ToolDef {
                    name: n,
                    description: descriptions[i].clone(),
                    parameters: parameters[i].clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The names of the tools a trajectory calls, in order of first call.
fn called_tools(t: &Trajectory) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for c in t.messages.iter().flat_map(|m| m.tool_calls.iter()) {
        if !out.contains(&c.name) {
            out.push(c.name.clone());
        }
    }
    out
}

/// Definitions the trajectories offer for tools that `tools` does not define.
async fn offered_definitions(
    ctx: &datafusion::prelude::SessionContext,
    names: &BTreeSet<String>,
) -> Result<HashMap<String, ToolDef>> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = names
        .iter()
        .map(|n| crate::query::params::string_literal(n))
        .collect();
    let batches = ctx
        .sql(&format!(
            "SELECT DISTINCT o['name'] AS name, o['description'] AS description, o['parameters'] AS parameters
             FROM (SELECT unnest(tools) AS o FROM trajectories)
             WHERE o['parameters'] IS NOT NULL AND o['name'] IN ({})
             ORDER BY name, parameters, description",
            list.join(", ")
        ))
        .await?
        .collect()
        .await?;
    let mut out = HashMap::new();
    for b in &batches {
        let names = crate::query::cells::strs(b, "name")?;
        let descriptions = crate::query::cells::opt_strs(b, "description")?;
        let parameters = crate::query::cells::opt_strs(b, "parameters")?;
        for (i, n) in names.into_iter().enumerate() {
            out.entry(n.clone()).or_insert(ToolDef {
                name: n,
                description: descriptions[i].clone(),
                parameters: parameters[i].clone(),
            });
        }
    }
    Ok(out)
}

/// A trajectory with a definition for every tool it calls that one is known for.
fn with_definitions(t: &Trajectory, defs: &HashMap<String, ToolDef>) -> Trajectory {
    let mut t = t.clone();
    for name in called_tools(&t) {
        let Some(def) = defs.get(&name) else { continue };
        match t.tools.iter_mut().find(|d| d.name == name) {
            Some(d) if d.parameters.is_none() => {
                d.parameters = def.parameters.clone();
                if d.description.is_none() {
                    d.description = def.description.clone();
                }
            }
            Some(_) => {}
            None => t.tools.push(def.clone()),
        }
    }
    t
}

/// The grounding of a batch: the calls of its seeds and donors first, then those of a
/// deterministic sample of the corpus's own (not synthesized) trajectories, for the tools the
/// seeds and donors offer or call; and every known output schema.
async fn grounding_for(
    ctx: &datafusion::prelude::SessionContext,
    known: &HashMap<String, Trajectory>,
    outputs: &HashMap<String, Value>,
    seed: u64,
) -> Result<Grounding> {
    let mut g = Grounding::new(seed);
    for (name, schema) in outputs {
        g.set_output_schema(name, schema.clone());
    }
    let mut ids: Vec<&String> = known.keys().collect();
    ids.sort();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for id in ids {
        let t = &known[id];
        g.add_trajectory(t);
        names.extend(t.tools.iter().map(|d| d.name.clone()));
        names.extend(called_tools(t));
    }
    if !names.is_empty() {
        let total = ctx
            .sql("SELECT count(*) AS n FROM trajectories WHERE batch_id IS NULL")
            .await?
            .collect()
            .await?;
        let total = total
            .first()
            .map(|b| crate::query::cells::i64_at(b, "n", 0))
            .transpose()?
            .unwrap_or(0);
        let every = (total + GROUNDING_SAMPLE - 1) / GROUNDING_SAMPLE;
        let list: Vec<String> = names
            .iter()
            .map(|n| crate::query::params::string_literal(n))
            .collect();
        let batches = ctx
            .sql(&format!(
                "SELECT traj_id, c['msg_index'] AS m, c['call_index'] AS k, c['name'] AS tool,
                        c['arguments'] AS arguments, c['result'] AS result
                 FROM (SELECT traj_id, unnest(tool_calls_of(messages)) AS c FROM trajectories
                       WHERE batch_id IS NULL AND abs(seeded_hash(traj_id, 0)) % {} = 0)
                 WHERE NOT coalesce(c['is_error'], false) AND c['result'] IS NOT NULL
                   AND c['name'] IN ({})
                 ORDER BY traj_id, m, k",
                every.max(1),
                list.join(", ")
            ))
            .await?
            .collect()
            .await?;
        for b in &batches {
            let tools = crate::query::cells::strs(b, "tool")?;
            let args = crate::query::cells::strs(b, "arguments")?;
            let results = crate::query::cells::strs(b, "result")?;
            for i in 0..tools.len() {
                g.add(&tools[i], &args[i], &results[i]);
            }
        }
    }
    g.finish();
    Ok(g)
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
        grounding: a.grounding,
    };
    let mut bp = match agents::plan(a, &input).await {
        Ok(bp) => bp,
        Err(f) => return Outcome::Failed(None, f),
    };
    bp.blueprint_id = format!("bp-{}", short_hash(&key));
    if let Some(c) = bp
        .calls()
        .into_iter()
        .find(|c| !bp.tools.iter().any(|t| t.name == c.tool))
    {
        let reason = format!(
            "`{}` is called but has no definition (in `tools` or among the trajectories' tools): run `tdscale tools infer` on the corpus",
            c.tool
        );
        return Outcome::Failed(Some(Box::new(bp)), ItemFailure::new("planner", reason));
    }
    let messages = match agents::rollout(a, &bp).await {
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
        domain_source: bp
            .domain
            .as_ref()
            .map(|_| DOMAIN_FROM_SYNTHESIS.to_string()),
        reasoning_mode: Some(mode),
        system: bp.system.clone(),
        tools: bp.tools.clone().into(),
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

/// Runs one batch and records it, holding the corpus's writer lock. Returns the counts
/// (accepted + rejected + failed = requested).
///
/// Every table it writes is added to `session`, so the caller's next query sees the batch.
pub async fn run_batch(
    session: &CorpusSession,
    batch_id: &str,
    requests: &[SynthRequest],
    cfg: &SynthConfig,
) -> Result<BatchSummary> {
    let lock = session.lock_writer("synthesis batch").await?;
    let result = run_batch_locked(session, batch_id, requests, cfg).await;
    lock.release().await;
    result
}

async fn run_batch_locked(
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
    // Seeds and donors offer the definitions of every tool they call that one is known for.
    let mut defs = definitions(ctx).await?;
    let missing: BTreeSet<String> = known
        .values()
        .flat_map(called_tools)
        .filter(|n| !defs.tools.contains_key(n))
        .collect();
    for (n, d) in offered_definitions(ctx, &missing).await? {
        defs.tools.entry(n).or_insert(d);
    }
    let known: HashMap<String, Trajectory> = known
        .into_iter()
        .map(|(id, t)| (id, with_definitions(&t, &defs.tools)))
        .collect();
    let grounding = grounding_for(ctx, &known, &defs.outputs, cfg.seed).await?;
    let agents = Agents {
        model: cfg.model.as_ref(),
        model_name: &cfg.model_name,
        seed: cfg.seed,
        sandbox: &cfg.sandbox,
        grounding: &grounding,
    };
    let label = format!("batch {batch_id}");
    let bar = crate::progress::bar(
        cfg.progress,
        Some(requests.len() as u64),
        &label,
        crate::progress::Units::Items,
    )
    .with_message(label);
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
            let bar = &bar;
            async move {
                let o = synthesize_one(agents, batch_id, r, seed, donor).await;
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
    // The files that query read: the commit checks the ids of any other file that appears.
    let read_from: Vec<object_store::path::Path> = session
        .listed_files(&tables::TRAJECTORIES)?
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.location)
        .collect();
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
                let kinds: BTreeSet<String> =
                    reasons.iter().map(|r| verify::reason_kind(r)).collect();
                for k in kinds {
                    *summary.reasons.entry(k).or_default() += 1;
                }
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
                let kind = format!("{} failed: {}", f.stage, verify::reason_kind(&f.reason));
                *summary.reasons.entry(kind).or_default() += 1;
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
    // Its commit drops trajectories that another writer stored meanwhile (the same batch run
    // twice at once), so no id is ever stored twice.
    if !accepted.is_empty() {
        let batch = convert::trajectories_to_batch(&accepted)?;
        let mut w = TrajectoryWriter::new(corpus, round).unique_by(read_from);
        w.write(&batch).await?;
        let written = w.finish().await?;
        summary.already_present += written.trajectories.duplicates as i64;
        session
            .add_files(&tables::TRAJECTORIES, &written.trajectories.paths())
            .await?;
        session
            .add_files(&tables::TRAJECTORY_METRICS, &written.metrics)
            .await?;
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
