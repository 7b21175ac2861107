//! `tdscale gen`: a deterministic generator of realistic trajectory corpora for tests and
//! benchmarks.
//!
//! Domains follow a Zipf law; each domain has its own tools and its own mix of actions, so the
//! reasoning modes have a long tail; tool-call counts, argument sizes and dependency chains (a call
//! that passes on an id returned by an earlier result) are in the ranges of the real files in
//! `../shared/data/`. Trajectory `i` depends only on the seed and `i`, so corpora are generated in
//! parallel and a larger corpus extends a smaller one with the same seed.

use crate::rng::Rng;
use serde_json::{Value, json};

use crate::model::{Message, ToolCall, ToolDef, ToolList, Trajectory};

/// The domains, most frequent first.
pub const DOMAINS: &[&str] = &[
    "airline",
    "retail",
    "banking",
    "telecom",
    "travel",
    "ecommerce",
    "healthcare",
    "insurance",
    "calendar",
    "email",
    "file_system",
    "trading",
    "real_estate",
    "logistics",
    "restaurant",
    "hotel",
    "car_rental",
    "education",
    "hr",
    "crm",
    "music",
    "video",
    "news",
    "sports",
    "gaming",
    "maps",
    "ride_hailing",
    "food_delivery",
    "fitness",
    "legal",
    "tax",
    "payroll",
    "support_ticket",
    "devops",
    "database",
    "analytics",
    "iot",
    "smart_home",
    "social_media",
    "weather",
];

const VERBS: &[&str] = &[
    "lookup", "search", "create", "update", "cancel", "list", "status", "quote",
];

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub seed: u64,
    /// Number of domains used (at most [`DOMAINS`]).
    pub domains: usize,
    /// Zipf exponent of the domain distribution.
    pub zipf: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            domains: DOMAINS.len(),
            zipf: 1.1,
        }
    }
}

/// A generator with its precomputed domain distribution.
pub struct Generator {
    opts: GenOptions,
    cdf: Vec<f64>,
    /// Each domain's tool list, shared by its trajectories.
    tools: Vec<ToolList>,
}

/// Kinds of action, in the order of the per-domain weights.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    Ask,
    Answer,
    Single,
    Chain,
    Parallel,
    Code,
    ErrorRetry,
}
const ACTS: [Act; 7] = [
    Act::Ask,
    Act::Answer,
    Act::Single,
    Act::Chain,
    Act::Parallel,
    Act::Code,
    Act::ErrorRetry,
];

impl Generator {
    pub fn new(opts: GenOptions) -> Self {
        let k = opts.domains.clamp(1, DOMAINS.len());
        let w: Vec<f64> = (1..=k).map(|r| 1.0 / (r as f64).powf(opts.zipf)).collect();
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let cdf = w
            .iter()
            .map(|x| {
                acc += x / total;
                acc
            })
            .collect();
        let tools = (0..DOMAINS.len()).map(Self::tools).collect();
        Self { opts, cdf, tools }
    }

    fn domain(&self, rng: &mut Rng) -> usize {
        let u = rng.f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }

    /// Each domain mixes actions differently (fixed by the domain's index), so modes differ by
    /// domain and rare combinations form a long tail.
    fn act_weights(d: usize) -> [f64; 7] {
        let mut r = Rng::new(0xD0_u64 + d as u64 * 7919);
        let mut w = [0.0; 7];
        for (i, x) in w.iter_mut().enumerate() {
            let base = [0.8, 1.0, 1.6, 1.4, 0.5, 0.25, 0.3][i];
            *x = base * (0.3 + 1.4 * r.f64());
        }
        w
    }

    fn tools(d: usize) -> ToolList {
        let dom = DOMAINS[d];
        VERBS
            .iter()
            .map(|v| ToolDef {
                name: format!("{dom}_{v}"),
                description: Some(format!("{v} a {dom} record")),
                parameters: Some(json!({"type": "object", "properties": {"id": {"type": "string"}, "query": {"type": "string"}, "amount": {"type": "number"}, "options": {"type": "object"}}}).to_string()),
            })
            .chain(std::iter::once(ToolDef { name: "python".into(), description: Some("run Python code".into()), parameters: Some(json!({"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}).to_string()) }))
            .collect()
    }

    /// Trajectory number `i`.
    pub fn trajectory(&self, i: u64) -> Trajectory {
        let mut rng = Rng::new(
            self.opts.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
                ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let d = self.domain(&mut rng);
        let dom = DOMAINS[d];
        let weights = Self::act_weights(d);
        let total: f64 = weights.iter().sum();
        let mut messages = vec![Message::text(
            "user",
            format!("I need help with my {dom} request #{}.", rng.below(100_000)),
        )];
        let mut ids: Vec<String> = vec![];
        let mut call_no = 0usize;
        let steps = 1 + (0..11).take_while(|_| rng.f64() < 0.72).count();
        let fresh_args = |rng: &mut Rng, ids: &[String], chain: bool| -> String {
            let mut args = serde_json::Map::new();
            if chain && !ids.is_empty() {
                args.insert(
                    "id".into(),
                    Value::String(ids[rng.below(ids.len())].clone()),
                );
            } else {
                args.insert(
                    "query".into(),
                    Value::String(format!("q{}", rng.below(1_000_000))),
                );
            }
            for k in 0..rng.below(5) {
                match k {
                    0 => args.insert("amount".into(), json!(rng.below(5000) + 2)),
                    1 => args.insert("date".into(), json!(format!("2024-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)))),
                    2 => args.insert("options".into(), json!({"priority": rng.below(3) == 0, "note": format!("n{}", rng.below(999))})),
                    _ => {
                        let tags = ["a", "b", "c"][..1 + rng.below(3)].to_vec();
                        args.insert("tags".into(), json!(tags))
                    }
                };
            }
            Value::Object(args).to_string()
        };
        for _ in 0..steps {
            let mut u = rng.f64() * total;
            let act = ACTS
                .iter()
                .zip(weights.iter())
                .find(|(_, w)| {
                    u -= **w;
                    u < 0.0
                })
                .map(|(a, _)| *a)
                .unwrap_or(Act::Single);
            let call = |name: String, args: String, call_no: &mut usize| {
                *call_no += 1;
                ToolCall {
                    id: Some(format!("call_{call_no}")),
                    name,
                    arguments: args,
                }
            };
            let result = |rng: &mut Rng, ids: &mut Vec<String>| {
                let id = format!(
                    "{}_{}",
                    &dom[..3.min(dom.len())],
                    10_000 + rng.below(90_000)
                );
                ids.push(id.clone());
                let status = ["open", "done", "pending"][rng.below(3)];
                json!({"id": id, "status": status, "total": rng.below(10_000) + 2}).to_string()
            };
            match act {
                Act::Ask => {
                    messages.push(Message::text(
                        "assistant",
                        format!("Could you confirm the {dom} details?"),
                    ));
                    messages.push(Message::text("user", "Yes, that is right."));
                }
                Act::Answer => messages.push(Message::text(
                    "assistant",
                    format!("Here is the {dom} information you asked for."),
                )),
                Act::Single | Act::Chain => {
                    let name = format!("{dom}_{}", VERBS[rng.below(VERBS.len())]);
                    let args = fresh_args(&mut rng, &ids, act == Act::Chain);
                    let c = call(name, args, &mut call_no);
                    let r = result(&mut rng, &mut ids);
                    messages.push(Message::calls(vec![c]));
                    messages.push(Message::tool_result(r));
                }
                Act::Parallel => {
                    let k = 2 + rng.below(3);
                    let calls: Vec<ToolCall> = (0..k)
                        .map(|_| {
                            let name = format!("{dom}_{}", VERBS[rng.below(VERBS.len())]);
                            let args = fresh_args(&mut rng, &ids, false);
                            call(name, args, &mut call_no)
                        })
                        .collect();
                    messages.push(Message::calls(calls));
                    for _ in 0..k {
                        let r = result(&mut rng, &mut ids);
                        messages.push(Message::tool_result(r));
                    }
                }
                Act::Code => {
                    let n = rng.below(100);
                    let c = call(
                        "python".into(),
                        json!({"code": format!("print(sum(range({n})))")}).to_string(),
                        &mut call_no,
                    );
                    messages.push(Message::calls(vec![c]));
                    messages.push(Message::tool_result(format!(
                        "{}",
                        n * n.saturating_sub(1) / 2
                    )));
                }
                Act::ErrorRetry => {
                    let name = format!("{dom}_{}", VERBS[rng.below(VERBS.len())]);
                    let args = fresh_args(&mut rng, &ids, false);
                    let c = call(name.clone(), args.clone(), &mut call_no);
                    messages.push(Message::calls(vec![c]));
                    messages.push(Message::tool_result(
                        "Error: the service is temporarily unavailable",
                    ));
                    let c = call(name, args, &mut call_no);
                    let r = result(&mut rng, &mut ids);
                    messages.push(Message::calls(vec![c]));
                    messages.push(Message::tool_result(r));
                }
            }
        }
        messages.push(Message::text("assistant", "Done. Anything else?"));
        let mut t = Trajectory {
            traj_id: format!("gen-{}/{i}", self.opts.seed),
            source: format!("gen-{}", self.opts.seed),
            format: "openai".into(),
            domain: Some(dom.to_string()),
            system: Some(format!(
                "You are a {dom} assistant. Use the tools; confirm before changing anything."
            )),
            tools: self.tools[d].clone(),
            messages,
            reward: Some(if rng.f64() < 0.6 { 1.0 } else { 0.0 }),
            ..Default::default()
        };
        crate::formats::finish(&mut t);
        t
    }
}

/// What a generation run wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenSummary {
    pub trajectories: u64,
    pub parquet_files: usize,
    pub jsonl: Option<String>,
    pub seconds: f64,
}

impl GenSummary {
    /// The summary as one line.
    pub fn to_text(&self, corpus: &str) -> String {
        format!(
            "generated {} trajectories into {} in {:.1} s\n",
            self.trajectories, corpus, self.seconds
        )
    }
}

/// Writes trajectories `0..n` into the corpus (round 0) and, when asked, as OpenAI JSONL too,
/// holding the corpus's writer lock.
pub async fn generate(
    corpus: &crate::store::Corpus,
    n: u64,
    opts: GenOptions,
    jsonl: Option<&str>,
    progress: bool,
) -> crate::error::Result<GenSummary> {
    let lock = corpus.lock_writer("gen").await?;
    let result = write_generated(corpus, n, opts, jsonl, progress).await;
    lock.release().await;
    result
}

async fn write_generated(
    corpus: &crate::store::Corpus,
    n: u64,
    opts: GenOptions,
    jsonl: Option<&str>,
    progress: bool,
) -> crate::error::Result<GenSummary> {
    use rayon::prelude::*;
    use tokio::io::AsyncWriteExt;

    use crate::store::{convert, location::Location, trajectory_metrics};

    let started = std::time::Instant::now();
    let g = Generator::new(opts);
    let mut parts = trajectory_metrics::TrajectoryWriter::new(corpus, 0);
    let mut out = match jsonl {
        Some(url) => {
            let (folder, name) = Location::of_object(url)?;
            Some(folder.writer(&name))
        }
        None => None,
    };
    let pb = crate::progress::bar(progress, Some(n), "generate", crate::progress::Units::Items);
    const CHUNK: u64 = 16 * 1024;
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let (batches, text) = tokio::task::block_in_place(|| {
            let ts: Vec<Trajectory> = (start..end)
                .into_par_iter()
                .map(|i| g.trajectory(i))
                .collect();
            let text: Option<Vec<u8>> = jsonl.map(|_| {
                ts.par_iter()
                    .map(|t| {
                        let mut line =
                            serde_json::to_vec(&crate::formats::openai::to_openai_json(t))
                                .unwrap_or_default();
                        line.push(b'\n');
                        line
                    })
                    .flatten_iter()
                    .collect()
            });
            let batches = convert::trajectories_to_batch(&ts)
                .map_err(crate::error::Error::from)
                .and_then(|b| Ok((trajectory_metrics::compute(&b)?, b)));
            (batches, text)
        });
        let (metrics, batch) = batches?;
        parts.write_with_metrics(&batch, &metrics).await?;
        if let (Some(w), Some(text)) = (out.as_mut(), text) {
            w.write_all(&text)
                .await
                .map_err(|e| crate::error::Error::Storage {
                    url: jsonl.unwrap_or_default().into(),
                    message: e.to_string(),
                })?;
        }
        pb.set_position(end);
        start = end;
    }
    if let Some(mut w) = out {
        w.shutdown()
            .await
            .map_err(|e| crate::error::Error::Storage {
                url: jsonl.unwrap_or_default().into(),
                message: e.to_string(),
            })?;
    }
    let files = parts.finish().await?;
    pb.finish_and_clear();
    Ok(GenSummary {
        trajectories: n,
        parquet_files: files.trajectories.files.len(),
        jsonl: jsonl.map(str::to_string),
        seconds: started.elapsed().as_secs_f64(),
    })
}
