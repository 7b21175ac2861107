//! Input formats. Each turns one JSON record into canonical trajectories or catalog tools.

pub mod bfcl;
pub mod catalog;
pub mod fields;
pub mod hermes;
pub mod openai;
pub mod pylit;
pub mod sharegpt;
pub mod tau2;
pub mod tau_bench;
pub mod tool_schema;
pub mod xlam;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::{Message, Trajectory};
use fields::RecordResult;

/// Every input format tdscale reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// OpenAI chat: `messages` with `tool_calls` and `tool` results, plus `tools`.
    Openai,
    /// ShareGPT / LLaMA-Factory: `conversations` with human/gpt/function_call/observation.
    Sharegpt,
    /// Hermes / Qwen tags: `<tool_call>` and `<tool_response>` inside message text.
    Hermes,
    /// xLAM: `query`, `answers` and `tools` as JSON strings.
    Xlam,
    /// tau-bench result files: `traj`, `reward`, `info.task`.
    TauBench,
    /// BFCL question files, with reference calls from the sibling `possible_answer/` file.
    Bfcl,
    /// tau² tasks (`tasks.json`), with the sibling `policy.md` and `tools.json` when present.
    Tau2,
    /// A tool catalog: MCP `tools/list`, an OpenAI `tools` array, or BFCL function docs.
    Catalog,
}

crate::choice::impl_choice!(
    Format,
    [
        Format::Openai,
        Format::Sharegpt,
        Format::Hermes,
        Format::Xlam,
        Format::TauBench,
        Format::Bfcl,
        Format::Tau2,
        Format::Catalog,
    ]
);

impl Format {
    /// The name stored in the `format` column.
    pub fn name(self) -> &'static str {
        match self {
            Format::Openai => "openai",
            Format::Sharegpt => "sharegpt",
            Format::Hermes => "hermes",
            Format::Xlam => "xlam",
            Format::TauBench => "tau-bench",
            Format::Bfcl => "bfcl",
            Format::Tau2 => "tau2",
            Format::Catalog => "catalog",
        }
    }
}

/// What a parser knows about the file a record comes from.
#[derive(Debug, Clone, Default)]
pub struct ParseContext {
    /// Dataset name: `--source`, else the file name without extensions.
    pub source: String,
    /// Evolution round of ingested data (0 unless told).
    pub round: i32,
    /// Domain label for every record of the file (`--domain`, else guessed from the name).
    pub domain: Option<String>,
    /// BFCL ground truth by question id, from the `possible_answer/` file.
    pub bfcl_answers: Option<Arc<HashMap<String, Value>>>,
    /// BFCL multi-turn function docs by class name, for positional arguments.
    pub bfcl_docs: Option<Arc<bfcl::FunctionDocs>>,
    /// tau²: the domain's `policy.md`, next to `tasks.json`.
    pub tau2_policy: Option<Arc<String>>,
    /// tau²: the domain's `tools.json`, next to `tasks.json`.
    pub tau2_tools: Option<Arc<Vec<crate::model::ToolDef>>>,
}

/// What one record yields.
#[derive(Debug)]
pub enum Parsed {
    Trajectory(Box<Trajectory>),
    Tools(Vec<catalog::ToolResult>),
}

/// Parses one record of a known format.
pub fn parse(format: Format, ctx: &ParseContext, v: Value) -> RecordResult<Parsed> {
    let mut t = match format {
        Format::Openai => openai::parse(ctx, v)?,
        Format::Sharegpt => sharegpt::parse(ctx, v)?,
        Format::Hermes => hermes::parse(ctx, v)?,
        Format::Xlam => xlam::parse(ctx, v)?,
        Format::TauBench => tau_bench::parse(ctx, v)?,
        Format::Bfcl => bfcl::parse(ctx, v)?,
        Format::Tau2 => tau2::parse(ctx, v)?,
        Format::Catalog => return catalog::parse(ctx, &v).map(Parsed::Tools),
    };
    t.format = format.name().to_string();
    finish(&mut t);
    Ok(Parsed::Trajectory(Box::new(t)))
}

/// Parses one record's text. For the formats whose records carry a `tools` list, the list
/// stays JSON text until [`tool_schema::tool_defs`] parses it, once per distinct list.
///
/// ```
/// use tdscale::formats::{self, Format, ParseContext, Parsed};
/// let ctx = ParseContext { source: "demo".into(), ..Default::default() };
/// let line = r#"{"id": "a", "messages": [{"role": "user", "content": "hi"}],
///                "tools": [{"type": "function", "function": {"name": "f"}}]}"#;
/// let Ok(Parsed::Trajectory(t)) = formats::parse_text(Format::Openai, &ctx, line) else { panic!() };
/// assert_eq!(t.tools[0].name, "f");
/// assert!(formats::parse_text(Format::Openai, &ctx, "[1]").unwrap_err().contains("expected an object"));
/// ```
pub fn parse_text(format: Format, ctx: &ParseContext, text: &str) -> RecordResult<Parsed> {
    let with_tools = matches!(
        format,
        Format::Openai | Format::Sharegpt | Format::Hermes | Format::Xlam
    );
    let v = match with_tools.then(|| tool_schema::record_with_tools_as_text(text)) {
        Some(Ok(m)) => Value::Object(m),
        // Anything unusual takes the plain path, which words the errors.
        _ => serde_json::from_str::<Value>(text).map_err(|e| format!("malformed JSON: {e}"))?,
    };
    parse(format, ctx, v)
}

/// Detects the format of a record from its keys.
pub fn detect(v: &Value) -> Option<Format> {
    match v {
        Value::Object(m) => {
            let has = |k: &str| m.contains_key(k);
            if has("traj") && (has("task_id") || has("reward") || has("info")) {
                Some(Format::TauBench)
            } else if tau2::looks_like(m) {
                Some(Format::Tau2)
            } else if has("question") && has("id") && m["question"].is_array() {
                Some(Format::Bfcl)
            } else if has("query") && has("answers") {
                Some(Format::Xlam)
            } else if has("conversations") {
                Some(if hermes::looks_like(v) {
                    Format::Hermes
                } else {
                    Format::Sharegpt
                })
            } else if let Some(Value::Array(msgs)) = m.get("messages") {
                if sharegpt::looks_like_messages(msgs) {
                    Some(Format::Sharegpt)
                } else if hermes::looks_like(v) {
                    Some(Format::Hermes)
                } else {
                    Some(Format::Openai)
                }
            } else if catalog::looks_like(v) {
                Some(Format::Catalog)
            } else {
                None
            }
        }
        Value::Array(a) if a.first().is_some_and(catalog::looks_like) => Some(Format::Catalog),
        _ => None,
    }
}

/// Reads the labels a record may carry for canonical columns (our own export writes them).
pub fn take_labels(t: &mut Trajectory, obj: &fields::Obj) -> RecordResult<()> {
    if let Some(s) = obj.str("source")? {
        t.source = s.to_string();
    }
    for (key, slot) in [
        ("domain", &mut t.domain),
        ("domain_source", &mut t.domain_source),
        ("reasoning_mode", &mut t.reasoning_mode),
        ("cluster_id", &mut t.cluster_id),
        ("parent_id", &mut t.parent_id),
        ("batch_id", &mut t.batch_id),
    ] {
        if let Some(s) = obj.str(key)? {
            *slot = Some(s.to_string());
        }
    }
    if let Some(r) = obj.f64("reward")? {
        t.reward = Some(r);
    }
    Ok(())
}

/// Keys [`take_labels`] consumes.
pub const LABEL_KEYS: &[&str] = &[
    "traj_id",
    "source",
    "domain",
    "domain_source",
    "reasoning_mode",
    "cluster_id",
    "parent_id",
    "batch_id",
    "reward",
];

/// A trajectory with the context's defaults filled in.
pub fn base(ctx: &ParseContext) -> Trajectory {
    Trajectory {
        source: ctx.source.clone(),
        round: ctx.round,
        domain: ctx.domain.clone(),
        ..Default::default()
    }
}

/// Makes call ids unique within the trajectory and pairs every tool result with its call.
///
/// Results follow the assistant message that made the calls. A result names its call by
/// `tool_call_id` when it can; sources that reuse ids across turns (tau-bench does) or give no
/// ids (ShareGPT) are paired by order among the calls still waiting for a result. Ids that had to
/// be renamed are recorded in `metadata.renamed_call_ids` so nothing is lost.
pub fn finish(t: &mut Trajectory) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut renamed = Map::new();
    let mut pending: Vec<(Option<String>, String, String)> = vec![]; // (source id, unique id, name)
    for (mi, m) in t.messages.iter_mut().enumerate() {
        match m.role.as_str() {
            "assistant" => {
                pending.clear();
                for (k, c) in m.tool_calls.iter_mut().enumerate() {
                    let original = c.id.clone();
                    let mut id = original.clone().unwrap_or_else(|| format!("call_{mi}_{k}"));
                    if seen.contains(&id) {
                        let mut n = 2;
                        while seen.contains(&format!("{id}#{n}")) {
                            n += 1;
                        }
                        let new = format!("{id}#{n}");
                        renamed.insert(new.clone(), Value::String(id.clone()));
                        id = new;
                    }
                    seen.insert(id.clone());
                    c.id = Some(id.clone());
                    pending.push((original, id, c.name.clone()));
                }
            }
            "tool" => {
                let by_id = m.tool_call_id.as_ref().and_then(|tid| {
                    pending
                        .iter()
                        .position(|(orig, _, _)| orig.as_ref() == Some(tid))
                });
                let idx = by_id.or(if pending.is_empty() { None } else { Some(0) });
                if let Some(i) = idx {
                    let (_, id, name) = pending.remove(i);
                    m.tool_call_id = Some(id);
                    if m.name.is_none() {
                        m.name = Some(name);
                    }
                }
            }
            _ => pending.clear(),
        }
    }
    if !renamed.is_empty() {
        t.metadata
            .insert("renamed_call_ids".into(), Value::Object(renamed));
    }
    // Our own exports carry the id verbatim; everything else gets one here.
    if t.traj_id.is_empty() {
        t.assign_id(None);
    }
}

/// Splits leading system messages off into `system`.
pub fn take_system(messages: &mut Vec<Message>) -> Option<String> {
    let n = messages
        .iter()
        .take_while(|m| m.role == "system" || m.role == "developer")
        .count();
    if n == 0 {
        return None;
    }
    let parts: Vec<String> = messages.drain(..n).filter_map(|m| m.content).collect();
    Some(parts.join("\n\n"))
}
