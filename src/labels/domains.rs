//! `tdscale label`: a domain for every trajectory, so that domain entropy (DE) — one of the
//! three steering signals — is defined on any corpus.
//!
//! Two ways to find a trajectory's domain:
//! - `clusters`: the tools it calls vote (`queries/domains_from_clusters.sql`): each call for its
//!   tool's domain — the catalog's own label first, else the domain of the tool's business
//!   cluster (the keyword taxonomy, or the overrides of `clusters build`). Clusters are built
//!   first when the corpus has none.
//! - `llm`: a model names the domain of each trajectory, from the tools it calls and what the
//!   user says, in requests of `batch_size` trajectories sent through the `openai` backend (with
//!   its concurrency, retries and response cache: a run that is interrupted or whose requests
//!   failed is run again with the same command, and every answered request comes from the cache).
//!
//! The label goes into `trajectories.domain`, and `domain_source` says where it comes from:
//! `catalog`, `cluster` or `llm`. A domain the data gave (`source`, or a NULL `domain_source` in
//! files written before the column existed) or that synthesis set (`synthesis`) is never
//! replaced; a label tdscale derived earlier is replaced by the new run's (a trajectory the new
//! run cannot label keeps it).
//!
//! The `trajectories` files that hold a changed label are rewritten in place, each atomically
//! (the new file replaces the old one whole: a rename on a local folder, the completion of a
//! multipart upload on S3), with every other column as it was; files with nothing to change are
//! not touched, so a second run with the same result rewrites nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::datatypes::DataType;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::llm::{AgentCall, ChatModel, ChatRequest, Role, StatsSummary};
use crate::query::session::CorpusSession;
use crate::store::read::id_key;
use crate::store::{Corpus, read, tables, writer};

/// The plan of `--domains clusters`.
pub const DOMAINS_FROM_CLUSTERS_SQL: &str = include_str!("../../queries/domains_from_clusters.sql");

/// `domain_source` values tdscale derives, which a later labelling may replace.
pub const DERIVED_SOURCES: &[&str] = &["catalog", "cluster", "llm"];

/// The `domain_source` of a label a model gave.
pub const FROM_LLM: &str = "llm";

const LABEL_PROMPT: &str = "You label conversations between a user and a tool-using assistant \
with their domain: the area of life or business the conversation serves (such as travel, finance, \
retail, files, messaging). You get numbered conversations, each with the tools the assistant \
called and what the user said, and a list of known domains. Reply with one JSON object only: \
{\"labels\": {\"<n>\": \"<domain>\"}}, giving every conversation one short lower-case domain name, \
a known one when it fits.";

/// Characters of user text a model sees per trajectory.
const USER_TEXT_CHARS: usize = 600;

/// How domains are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// From the clusters (and catalog labels) of the tools a trajectory calls.
    Clusters,
    /// Asked of a model through the `openai` backend.
    Llm,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Self::Clusters => "clusters",
            Self::Llm => "llm",
        }
    }
}

crate::choice::impl_choice!(Method, [Method::Clusters, Method::Llm]);

/// The model `--domains llm` asks.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    pub openai: crate::llm::openai::OpenAiOptions,
    /// Read and write the response cache (`cache/llm/` in the corpus).
    pub cache: bool,
    /// Sent as each request's `seed`.
    pub seed: u64,
}

/// What `tdscale label` does.
#[derive(Debug, Clone)]
pub struct LabelOptions {
    pub method: Method,
    /// The model, for [`Method::Llm`]; `None` when no model was configured.
    pub model: Option<ModelOptions>,
    /// Trajectories per model request.
    pub batch_size: usize,
    pub progress: bool,
}

impl Default for LabelOptions {
    fn default() -> Self {
        Self {
            method: Method::Clusters,
            model: None,
            batch_size: 20,
            progress: false,
        }
    }
}

/// What a labelling did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LabelSummary {
    pub method: String,
    pub trajectories: i64,
    /// Trajectories that had no domain and got one.
    pub labelled: i64,
    /// Trajectories whose earlier derived label changed.
    pub relabelled: i64,
    /// Derived labels this run confirmed, or could not redo and kept.
    pub unchanged: i64,
    /// Trajectories whose domain the data (or synthesis) gave: never relabelled.
    pub kept: i64,
    /// Trajectories still without a domain.
    pub unlabelled: i64,
    pub files_rewritten: usize,
    /// Clusters built first because the corpus had none.
    pub clusters_built: Option<usize>,
    /// After the run: trajectories by `domain_source`, and by domain.
    pub by_source: BTreeMap<String, i64>,
    pub domains: BTreeMap<String, i64>,
    /// `llm`: requests made (one per batch of trajectories) and those that failed; the
    /// trajectories of a failed request keep the label they had.
    pub requests: usize,
    pub failed_requests: usize,
    pub failures: Vec<String>,
    pub backend: Option<StatsSummary>,
}

impl LabelSummary {
    /// The summary as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(n) = self.clusters_built {
            out.push_str(&format!(
                "built {n} business clusters of the tools table first\n"
            ));
        }
        out.push_str(&format!(
            "{} trajectories: {} labelled, {} relabelled, {} unchanged, {} kept their own domain, {} without a domain; {} files rewritten\n",
            self.trajectories,
            self.labelled,
            self.relabelled,
            self.unchanged,
            self.kept,
            self.unlabelled,
            self.files_rewritten
        ));
        if self.requests > 0 {
            out.push_str(&format!(
                "{} model requests, {} failed (run the same command again to retry them)\n",
                self.requests, self.failed_requests
            ));
            for f in self.failures.iter().take(5) {
                out.push_str(&format!("  {f}\n"));
            }
        }
        if let Some(b) = &self.backend {
            out.push_str(&b.line());
            out.push('\n');
        }
        let sources: Vec<String> = self
            .by_source
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!("domain_source: {}\n", sources.join(", ")));
        let mut domains: Vec<(&String, &i64)> = self.domains.iter().collect();
        domains.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = domains
            .iter()
            .take(12)
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        out.push_str(&format!(
            "{} domains: {}{}\n",
            domains.len(),
            shown.join(", "),
            if domains.len() > 12 { ", …" } else { "" }
        ));
        out
    }
}

/// A new label: the domain and its source.
type Label = (Arc<str>, &'static str);

/// Interns domain names: a corpus has few, trajectories many.
#[derive(Default)]
struct Labels {
    by_id: HashMap<u128, Label>,
    names: HashMap<String, Arc<str>>,
}

impl Labels {
    fn insert(&mut self, traj_id: &str, domain: &str, source: &'static str) {
        let name = self
            .names
            .entry(domain.to_string())
            .or_insert_with(|| Arc::from(domain))
            .clone();
        self.by_id.insert(id_key(traj_id), (name, source));
    }

    fn get(&self, traj_id: &str) -> Option<&Label> {
        self.by_id.get(&id_key(traj_id))
    }
}

fn source_name(s: &str) -> Option<&'static str> {
    DERIVED_SOURCES.iter().copied().find(|d| *d == s)
}

/// What becomes of one trajectory's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Kept,
    Unchanged,
    Unlabelled,
    Labelled,
    Relabelled,
}

/// The fate of a trajectory with this `domain` and `domain_source`, given the new label.
fn fate(domain: Option<&str>, source: Option<&str>, new: Option<&Label>) -> Fate {
    let derived = source.is_some_and(|s| DERIVED_SOURCES.contains(&s));
    if domain.is_some() && !derived {
        return Fate::Kept;
    }
    match (new, domain) {
        (None, None) => Fate::Unlabelled,
        (None, Some(_)) => Fate::Unchanged,
        (Some((d, s)), Some(old)) if old == d.as_ref() && source == Some(*s) => Fate::Unchanged,
        (Some(_), None) => Fate::Labelled,
        (Some(_), Some(_)) => Fate::Relabelled,
    }
}

fn opt_str(a: Option<&ArrayRef>, i: usize) -> Option<String> {
    let a = a?;
    let a = a.as_string_opt::<i32>()?;
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

/// A batch of a `trajectories` file with its labels applied, in the current file schema.
fn relabel(batch: RecordBatch, labels: &Labels) -> Result<RecordBatch> {
    let schema = tables::TRAJECTORIES.file_schema();
    let ids = batch
        .column_by_name("traj_id")
        .ok_or_else(|| Error::Other("a trajectories file without traj_id".into()))?;
    let (domain, source) = (
        batch.column_by_name("domain"),
        batch.column_by_name("domain_source"),
    );
    let mut domains: Vec<Option<String>> = Vec::with_capacity(batch.num_rows());
    let mut sources: Vec<Option<String>> = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let id = opt_str(Some(ids), i).unwrap_or_default();
        let (d, s) = (opt_str(domain, i), opt_str(source, i));
        let new = labels.get(&id);
        match fate(d.as_deref(), s.as_deref(), new) {
            Fate::Labelled | Fate::Relabelled => {
                let (nd, ns) = new.expect("a new label");
                domains.push(Some(nd.to_string()));
                sources.push(Some(ns.to_string()));
            }
            _ => {
                // Files written before `domain_source` existed: their domains are the data's.
                let s = s.or_else(|| {
                    d.as_ref()
                        .map(|_| crate::store::convert::DOMAIN_FROM_SOURCE.to_string())
                });
                domains.push(d);
                sources.push(s);
            }
        }
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "domain" => Arc::new(StringArray::from(domains.clone())) as ArrayRef,
            "domain_source" => Arc::new(StringArray::from(sources.clone())) as ArrayRef,
            name => batch
                .column_by_name(name)
                .cloned()
                .unwrap_or_else(|| new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Applies the labels: counts every trajectory's fate and rewrites the files that change.
async fn apply(session: &CorpusSession, labels: &Labels, summary: &mut LabelSummary) -> Result<()> {
    let corpus = session.corpus();
    let files = corpus.list_table(&tables::TRAJECTORIES).await?;
    for file in &files {
        let mut changes = 0;
        read::for_each_batch(
            corpus,
            std::slice::from_ref(file),
            Some(&["traj_id", "domain", "domain_source"]),
            |b| {
                let ids = b.column_by_name("traj_id");
                let (d, s) = (
                    b.column_by_name("domain"),
                    b.column_by_name("domain_source"),
                );
                for i in 0..b.num_rows() {
                    let id = opt_str(ids, i).unwrap_or_default();
                    let f = fate(
                        opt_str(d, i).as_deref(),
                        opt_str(s, i).as_deref(),
                        labels.get(&id),
                    );
                    summary.trajectories += 1;
                    match f {
                        Fate::Kept => summary.kept += 1,
                        Fate::Unchanged => summary.unchanged += 1,
                        Fate::Unlabelled => summary.unlabelled += 1,
                        Fate::Labelled => summary.labelled += 1,
                        Fate::Relabelled => summary.relabelled += 1,
                    }
                    changes += usize::from(matches!(f, Fate::Labelled | Fate::Relabelled));
                }
                Ok(())
            },
        )
        .await?;
        if changes > 0 {
            writer::rewrite(corpus, file, tables::TRAJECTORIES.file_schema(), |b| {
                relabel(b, labels)
            })
            .await?;
            // The stored metrics carry the domain: recompute them from the rewritten part.
            crate::store::trajectory_metrics::recompute(corpus, &file.location).await?;
            summary.files_rewritten += 1;
        }
    }
    session.refresh(&tables::TRAJECTORIES)?;
    session.refresh(&tables::TRAJECTORY_METRICS)
}

/// Builds the clusters when the corpus has none; fails with what to do when it has no tools.
async fn ensure_clusters(session: &CorpusSession, summary: &mut LabelSummary) -> Result<()> {
    let count = |sql: &'static str| async move {
        let b = session.collect(sql).await?;
        b.first()
            .map(|b| crate::query::cells::i64_at(b, "n", 0))
            .transpose()
            .map(|n| n.unwrap_or(0))
    };
    if count("SELECT count(*) AS n FROM clusters").await? > 0 {
        return Ok(());
    }
    let corpus = session.corpus().display().to_string();
    if count("SELECT count(*) AS n FROM tools").await? == 0 {
        return Err(Error::Usage(format!(
            "`--domains clusters` needs the tools' clusters, and {corpus} has no tools: ingest a catalog (`tdscale ingest {corpus} FILES --table tools`) or learn the called tools' definitions (`tdscale tools infer {corpus}`) first"
        )));
    }
    let (built, _) = crate::clusters::build(session, &Default::default()).await?;
    summary.clusters_built = Some(built.clusters);
    Ok(())
}

async fn from_clusters(session: &CorpusSession) -> Result<Labels> {
    let mut labels = Labels::default();
    let batches = session.collect(DOMAINS_FROM_CLUSTERS_SQL).await?;
    for b in &batches {
        let ids = crate::query::cells::strs(b, "traj_id")?;
        let domains = crate::query::cells::opt_strs(b, "domain")?;
        let sources = crate::query::cells::strs(b, "domain_source")?;
        for i in 0..ids.len() {
            if let (Some(d), Some(s)) = (&domains[i], source_name(&sources[i])) {
                labels.insert(&ids[i], d, s);
            }
        }
    }
    Ok(labels)
}

/// A model's label, made a tidy domain name: lower case, words joined by `_`, at most 48
/// characters; `None` when nothing is left.
pub fn tidy_label(label: &str) -> Option<String> {
    let mut out = String::new();
    for c in label.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '&' {
            out.push(c);
        } else if (c.is_whitespace() || matches!(c, '_' | '-' | '/')) && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out: String = out.trim_matches('_').chars().take(48).collect();
    (!out.is_empty()).then_some(out)
}

/// One trajectory as a model sees it.
struct Conversation {
    traj_id: String,
    tools: Vec<String>,
    user: String,
}

async fn conversations(session: &CorpusSession) -> Result<Vec<Conversation>> {
    let sources: Vec<String> = DERIVED_SOURCES.iter().map(|s| format!("'{s}'")).collect();
    let batches = session
        .collect(&format!(
            "SELECT traj_id, tool_sequence(messages) AS tools, substr(user_text(messages), 1, {USER_TEXT_CHARS}) AS user_text
             FROM trajectories WHERE domain IS NULL OR domain_source IN ({})
             ORDER BY traj_id",
            sources.join(", ")
        ))
        .await?;
    let mut out = vec![];
    for b in &batches {
        let ids = crate::query::cells::strs(b, "traj_id")?;
        let texts = crate::query::cells::strs(b, "user_text")?;
        let tools = b
            .column_by_name("tools")
            .ok_or_else(|| Error::Other("no tools column".into()))?
            .as_list::<i32>();
        for i in 0..ids.len() {
            let mut names: Vec<String> = vec![];
            if !tools.is_null(i) {
                let v = datafusion::arrow::compute::cast(&tools.value(i), &DataType::Utf8)?;
                for n in v.as_string::<i32>().iter().flatten() {
                    if !names.iter().any(|x| x == n) {
                        names.push(n.to_string());
                    }
                }
            }
            out.push(Conversation {
                traj_id: ids[i].clone(),
                tools: names,
                user: texts[i].clone(),
            });
        }
    }
    Ok(out)
}

/// The domains a model is offered: the taxonomy's and those the data itself gives (not those a
/// labelling derived, so the requests — and the cache — stay the same from one run to the next).
async fn known_domains(session: &CorpusSession) -> Result<Vec<String>> {
    let b = session
        .collect(
            "SELECT DISTINCT domain FROM trajectories WHERE domain IS NOT NULL
             AND (domain_source IS NULL OR domain_source IN ('source', 'synthesis'))",
        )
        .await?;
    let mut out: Vec<String> = crate::clusters::taxonomy::TAXONOMY
        .iter()
        .map(|(d, _)| d.to_string())
        .collect();
    for b in &b {
        out.extend(crate::query::cells::strs(b, "domain")?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

async fn from_model(
    session: &CorpusSession,
    opts: &LabelOptions,
    summary: &mut LabelSummary,
) -> Result<Labels> {
    let corpus_name = session.corpus().display().to_string();
    let Some(m) = &opts.model else {
        return Err(Error::Usage(format!(
            "`--domains llm` asks a model: give `--backend openai --base-url URL --model NAME` (or label from the tools' clusters: `tdscale label {corpus_name} --domains clusters`)"
        )));
    };
    if opts.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    let corpus: &Corpus = session.corpus();
    let cache = m
        .cache
        .then(|| crate::llm::cache::ResponseCache::new(corpus));
    let model = crate::llm::openai::OpenAiModel::new(m.openai.clone(), cache)?;
    let known = known_domains(session).await?;
    let convs = conversations(session).await?;
    let chunks: Vec<&[Conversation]> = convs.chunks(opts.batch_size).collect();
    summary.requests = chunks.len();
    let bar = if opts.progress {
        indicatif::ProgressBar::new(chunks.len() as u64).with_message("labelling")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let calls: Vec<AgentCall> = chunks
        .iter()
        .map(|chunk| {
            let items: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(n, c)| json!({"n": n, "tools": c.tools, "user": c.user}))
                .collect();
            let task = json!({"known_domains": known, "conversations": items});
            AgentCall {
                role: Role::Labeler,
                request: ChatRequest {
                    model: m.openai.model.clone(),
                    messages: vec![
                        json!({"role": "system", "content": LABEL_PROMPT}),
                        json!({"role": "user", "content": task.to_string()}),
                    ],
                    tools: vec![],
                    temperature: 0.0,
                    seed: m.seed,
                    max_tokens: 256 + 24 * chunk.len() as u32,
                    response_format: Some(json!({"type": "json_object"})),
                },
                task,
            }
        })
        .collect();
    let model_ref: &dyn ChatModel = &model;
    let replies: Vec<(usize, std::result::Result<crate::llm::ChatReply, String>)> =
        futures::stream::iter(calls.iter().enumerate())
            .map(|(i, call)| {
                let bar = &bar;
                async move {
                    let r = model_ref.chat(call).await.map_err(|e| e.to_string());
                    bar.inc(1);
                    (i, r)
                }
            })
            .buffer_unordered(m.openai.concurrency.max(1))
            .collect()
            .await;
    bar.finish_and_clear();
    let mut labels = Labels::default();
    let mut replies = replies;
    replies.sort_by_key(|(i, _)| *i);
    for (i, reply) in replies {
        let chunk = chunks[i];
        let parsed = reply.and_then(|r| {
            let text = r.content.unwrap_or_default();
            let v: Value = serde_json::from_str(crate::llm::strip_fence(&text))
                .map_err(|e| format!("the reply is not JSON ({e})"))?;
            v.get("labels")
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| "the reply has no `labels` object".to_string())
        });
        match parsed {
            Ok(map) => {
                for (k, v) in map {
                    let Some(c) = k.parse::<usize>().ok().and_then(|n| chunk.get(n)) else {
                        continue;
                    };
                    if let Some(d) = v.as_str().and_then(tidy_label) {
                        labels.insert(&c.traj_id, &d, FROM_LLM);
                    }
                }
            }
            Err(why) => {
                summary.failed_requests += 1;
                summary.failures.push(format!(
                    "request {} ({} trajectories from {}): {why}",
                    i + 1,
                    chunk.len(),
                    chunk[0].traj_id
                ));
            }
        }
    }
    summary.backend = model.stats();
    Ok(labels)
}

/// Labels the corpus's trajectories with `opts.method` and stores the labels.
pub async fn label(session: &CorpusSession, opts: &LabelOptions) -> Result<LabelSummary> {
    let mut summary = LabelSummary {
        method: opts.method.name().into(),
        ..Default::default()
    };
    let labels = match opts.method {
        Method::Clusters => {
            ensure_clusters(session, &mut summary).await?;
            from_clusters(session).await?
        }
        Method::Llm => from_model(session, opts, &mut summary).await?,
    };
    let lock = session.lock_writer("label").await?;
    let applied = apply(session, &labels, &mut summary).await;
    lock.release().await;
    applied?;
    for b in &session
        .collect(
            "SELECT coalesce(domain_source, CASE WHEN domain IS NULL THEN 'none' ELSE 'source' END) AS s,
                    coalesce(domain, '(none)') AS d, count(*) AS n
             FROM trajectories GROUP BY 1, 2",
        )
        .await?
    {
        let (s, d, n) = (
            crate::query::cells::strs(b, "s")?,
            crate::query::cells::strs(b, "d")?,
            crate::query::cells::i64s(b, "n")?,
        );
        for i in 0..n.len() {
            *summary.by_source.entry(s[i].clone()).or_default() += n[i];
            if d[i] != "(none)" {
                *summary.domains.entry(d[i].clone()).or_default() += n[i];
            }
        }
    }
    Ok(summary)
}
