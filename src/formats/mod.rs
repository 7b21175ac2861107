//! Input formats. Each turns one JSON record into canonical trajectories or catalog tools;
//! session logs ([`Format::is_session`]) turn the lines of a whole file into one record.
//! [`conv`] and [`parts`] are the helpers the dialects share: a conversation builder with one
//! metadata layout, and content parts in every dialect's spelling.

pub mod adp;
pub mod anthropic;
pub mod bfcl;
pub mod catalog;
pub mod claude_code;
pub mod codex;
pub mod conv;
pub mod fields;
pub mod hermes;
pub mod llamafactory;
pub mod mcp_collection;
pub mod openai;
pub mod openai_typed;
pub mod openhands;
pub mod parts;
pub mod pylit;
pub mod responses;
pub mod sharegpt;
pub mod swe_agent;
pub mod tau2;
pub mod tau_bench;
pub mod tool_schema;
pub mod xlam;

use std::collections::HashMap;
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
    /// LLaMA-Factory's typed parts: `messages[].content` as `[{"type", "value"}]`.
    Llamafactory,
    /// Anthropic Messages records: content blocks `text`, `thinking`, `tool_use`, `tool_result`.
    Anthropic,
    /// OpenAI Responses API records: `input` / `output` item lists.
    OpenaiResponses,
    /// SWE-agent trajectories (`*.traj`): `history`, `trajectory`, `info`.
    SweAgent,
    /// OpenHands runs: event lists, evaluation output lines and their usual wrappers.
    Openhands,
    /// Claude Code session logs: a JSON-lines file of typed events is one session.
    ClaudeCode,
    /// Codex CLI rollouts: a JSON-lines file of session items is one session.
    Codex,
    /// Agent Data Protocol trajectories: `content` items with `class_`.
    Adp,
    /// MCP server collections: labeled server files, registry entries, server bundles.
    McpCollection,
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
        Format::Llamafactory,
        Format::Anthropic,
        Format::OpenaiResponses,
        Format::SweAgent,
        Format::Openhands,
        Format::ClaudeCode,
        Format::Codex,
        Format::Adp,
        Format::McpCollection,
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
            Format::Llamafactory => "llamafactory",
            Format::Anthropic => "anthropic",
            Format::OpenaiResponses => "openai-responses",
            Format::SweAgent => "swe-agent",
            Format::Openhands => "openhands",
            Format::ClaudeCode => "claude-code",
            Format::Codex => "codex",
            Format::Adp => "adp",
            Format::McpCollection => "mcp-collection",
        }
    }

    /// True for the dialects whose file is one session written line by line: the lines of the
    /// whole file are read as one record ([`parse_session`]).
    pub fn is_session(self) -> bool {
        matches!(self, Format::ClaudeCode | Format::Codex)
    }

    /// True for the formats that fill the `tools` table.
    pub fn is_catalog(self) -> bool {
        matches!(self, Format::Catalog | Format::McpCollection)
    }

    /// True for the formats whose one file is one run, named inside the file: their default
    /// `source` is the format's name instead of the file name (which is the run's id).
    pub fn names_its_runs(self) -> bool {
        matches!(self, Format::ClaudeCode | Format::Codex | Format::SweAgent)
    }

    /// The chat dialects that differ only in their content parts: a file detected as one of
    /// them is read record by record in whichever the record uses.
    fn is_chat(self) -> bool {
        matches!(
            self,
            Format::Openai | Format::Anthropic | Format::Llamafactory
        )
    }

    /// Where each source field goes, for `ingest --explain`.
    pub fn mapping(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Format::Openai => openai::MAPPING,
            Format::Llamafactory => llamafactory::MAPPING,
            Format::Anthropic => anthropic::MAPPING,
            Format::OpenaiResponses => responses::MAPPING,
            Format::SweAgent => swe_agent::MAPPING,
            Format::Openhands => openhands::MAPPING,
            Format::ClaudeCode => claude_code::MAPPING,
            Format::Codex => codex::MAPPING,
            Format::Adp => adp::MAPPING,
            Format::McpCollection => mcp_collection::MAPPING,
            Format::Sharegpt => &[
                (
                    "conversations[].from human/gpt/system",
                    "messages[].role user/assistant/system",
                ),
                (
                    "conversations[].from function_call",
                    "messages[].tool_calls",
                ),
                (
                    "conversations[].from observation",
                    "tool messages, paired by order",
                ),
                ("system", "system"),
                ("tools (JSON text)", "tools"),
            ],
            Format::Hermes => &[
                ("<tool_call> in assistant text", "messages[].tool_calls"),
                ("<tool_response> in tool/user text", "tool messages"),
                ("<tools> in the system text", "tools"),
                ("<think>", "messages[].reasoning"),
            ],
            Format::Xlam => &[
                ("query", "a user message"),
                ("answers (JSON text)", "one assistant message's tool_calls"),
                ("tools (JSON text)", "tools"),
                ("id", "traj_id"),
            ],
            Format::TauBench => &[
                ("traj", "messages"),
                ("reward", "reward"),
                ("task_id, trial", "traj_id"),
            ],
            Format::Bfcl => &[
                ("question", "messages"),
                ("function", "tools"),
                ("possible_answer/ sibling file", "assistant tool_calls"),
                ("id", "traj_id"),
            ],
            Format::Tau2 => &[
                ("user_scenario", "the user message"),
                ("evaluation_criteria.actions", "assistant tool_calls"),
                ("policy.md / tools.json siblings", "system / tools"),
                ("id", "traj_id"),
            ],
            Format::Catalog => &[
                ("tools[] / result.tools[]", "rows of the tools table"),
                ("name, description", "name, description"),
                ("parameters / inputSchema / input_schema", "parameters"),
                ("outputSchema / output_schema / response", "output_schema"),
            ],
        }
    }
}

/// What a parser knows about the file a record comes from.
#[derive(Debug, Clone, Default)]
pub struct ParseContext {
    /// Dataset name: `--source`, else the file name without extensions.
    pub source: String,
    /// The input file's name without extensions (the run id of one-run-per-file formats).
    pub file_stem: String,
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
    pub tau2_tools: Option<crate::model::ToolList>,
}

/// What one record yields.
#[derive(Debug)]
pub enum Parsed {
    Trajectory(Box<Trajectory>),
    /// A session holding several runs (a Claude Code session with its sub-agents).
    Trajectories(Vec<Trajectory>),
    Tools(Vec<catalog::ToolResult>),
}

/// Parses one record of a known format.
pub fn parse(format: Format, ctx: &ParseContext, v: Value) -> RecordResult<Parsed> {
    let format = if format.is_chat() {
        refine(format, &v)
    } else {
        format
    };
    let t = match format {
        Format::Openai => openai::parse(ctx, v)?,
        Format::Sharegpt => sharegpt::parse(ctx, v)?,
        Format::Hermes => hermes::parse(ctx, v)?,
        Format::Xlam => xlam::parse(ctx, v)?,
        Format::TauBench => tau_bench::parse(ctx, v)?,
        Format::Bfcl => bfcl::parse(ctx, v)?,
        Format::Tau2 => tau2::parse(ctx, v)?,
        Format::Llamafactory => llamafactory::parse(ctx, v)?,
        Format::Anthropic => anthropic::parse(ctx, v)?,
        Format::OpenaiResponses => responses::parse(ctx, v)?,
        Format::SweAgent => swe_agent::parse(ctx, v)?,
        Format::Openhands => openhands::parse(ctx, v)?,
        Format::Adp => adp::parse(ctx, v)?,
        Format::ClaudeCode | Format::Codex => {
            // A session given as one value: its lines as a JSON array.
            let Value::Array(lines) = v else {
                return Err(format!(
                    "a {} session is read from its whole file; pass the .jsonl file",
                    format.name()
                ));
            };
            let texts: Vec<(usize, String)> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| (i + 1, l.to_string()))
                .collect();
            let refs: Vec<(usize, &str)> = texts.iter().map(|(n, s)| (*n, s.as_str())).collect();
            return parse_session(format, ctx, &refs);
        }
        Format::Catalog => return catalog::parse(ctx, &v).map(Parsed::Tools),
        Format::McpCollection => return mcp_collection::parse(ctx, &v).map(Parsed::Tools),
    };
    Ok(finished(format, t))
}

/// A trajectory read in `format`, with its call ids made unique and its results paired.
fn finished(format: Format, mut t: Trajectory) -> Parsed {
    t.format = format.name().to_string();
    finish(&mut t);
    Parsed::Trajectory(Box::new(t))
}

/// Parses the lines of a whole session file (`format.is_session()`): `(line number, text)`.
/// A line that is not JSON rejects the session: storing it without that line would lose text.
pub fn parse_session(
    format: Format,
    ctx: &ParseContext,
    lines: &[(usize, &str)],
) -> RecordResult<Parsed> {
    let mut values = Vec::with_capacity(lines.len());
    for (n, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) => values.push((*n, v)),
            Err(e) => {
                return Err(format!(
                    "line {n} is not complete JSON (cut off?); the session it belongs to is rejected ({e})"
                ));
            }
        }
    }
    let mut ts = match format {
        Format::ClaudeCode => claude_code::parse(ctx, values)?,
        Format::Codex => vec![codex::parse(ctx, values)?],
        other => {
            return Err(format!("{} is not a session format", other.name()));
        }
    };
    for t in &mut ts {
        t.format = format.name().to_string();
        finish(t);
    }
    Ok(if ts.len() == 1 {
        Parsed::Trajectory(Box::new(ts.pop().expect("one")))
    } else {
        Parsed::Trajectories(ts)
    })
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
    // The usual OpenAI record, read without a JSON tree of its messages.
    if format == Format::Openai
        && let Some(plain) = openai_typed::read(text)
    {
        let v = Value::Object(plain.fields);
        // Plain messages have no content parts: only the record's own fields can tell another
        // dialect.
        if refine_by_record(format, &v, false) == format {
            return Ok(finished(
                format,
                openai::parse_with_messages(ctx, &v, &plain.labels, plain.messages, plain.tools)?,
            ));
        }
    }
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
            } else if codex::looks_like(m) {
                Some(Format::Codex)
            } else if claude_code::looks_like(m) {
                Some(Format::ClaudeCode)
            } else if swe_agent::looks_like(m) {
                Some(Format::SweAgent)
            } else if openhands::looks_like(v) {
                Some(Format::Openhands)
            } else if adp::looks_like(m) {
                Some(Format::Adp)
            } else if responses::looks_like(m) {
                Some(Format::OpenaiResponses)
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
                    Some(refine(Format::Openai, v))
                }
            } else if mcp_collection::looks_like(m) {
                Some(Format::McpCollection)
            } else if catalog::looks_like(v) {
                Some(Format::Catalog)
            } else {
                None
            }
        }
        Value::Array(a) if a.first().is_some_and(catalog::looks_like) => Some(Format::Catalog),
        Value::Array(a) if a.first().is_some_and(openhands::is_event) => Some(Format::Openhands),
        _ => None,
    }
}

/// Which chat dialect a record with `messages` uses, judged from its content parts: typed
/// `{type, value}` parts are LLaMA-Factory's, `tool_use` / `tool_result` / `thinking` blocks,
/// `input_schema` tools or a system prompt in blocks are Anthropic's; a record that shows
/// neither is read in `file_format`.
fn refine(file_format: Format, v: &Value) -> Format {
    let Some(Value::Array(msgs)) = v.get("messages") else {
        return file_format;
    };
    let parts = msgs
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten();
    let mut anthropic = false;
    for p in parts {
        if p.get("value").is_some() && p.get("type").is_some() {
            return Format::Llamafactory;
        }
        if let Some(t) = p.get("type").and_then(Value::as_str)
            && matches!(
                t,
                "tool_use" | "tool_result" | "thinking" | "redacted_thinking" | "server_tool_use"
            )
        {
            anthropic = true;
        }
    }
    refine_by_record(file_format, v, anthropic)
}

/// The end of [`refine`]: whether the record's own fields (`tools` with an `input_schema`, a
/// `system` prompt in blocks) or its content parts (`anthropic_parts`) tell Anthropic's dialect.
fn refine_by_record(file_format: Format, v: &Value, anthropic_parts: bool) -> Format {
    let tools_say = match v.get("tools") {
        Some(Value::Array(ts)) => ts.iter().any(|t| t.get("input_schema").is_some()),
        Some(Value::String(s)) => tools_text_tells_anthropic(s),
        _ => false,
    };
    if anthropic_parts || tools_say || v.get("system").is_some_and(Value::is_array) {
        Format::Anthropic
    } else {
        // Nothing tells: the record follows its file.
        file_format
    }
}

/// True when the JSON text of a record's `tools` spells a definition Anthropic's way
/// (`input_schema`), which tells that dialect.
fn tools_text_tells_anthropic(text: &str) -> bool {
    static INPUT_SCHEMA: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"input_schema\""));
    INPUT_SCHEMA.find(text.as_bytes()).is_some()
}

/// Detects a file's format from its first records: the first one detected, except that a chat
/// file read as OpenAI is upgraded to the dialect any later record shows (typed parts,
/// Anthropic blocks), so records that do not tell follow the file.
pub fn detect_file<'a>(records: impl IntoIterator<Item = &'a Value>) -> Option<Format> {
    let mut found = None;
    for v in records {
        found = detect_next(found, v);
        if settled(found) {
            break;
        }
    }
    found
}

/// One step of [`detect_file`]: what is known after one more record.
pub fn detect_next(found: Option<Format>, v: &Value) -> Option<Format> {
    match (found, detect(v)) {
        (None, d) => d,
        (Some(Format::Openai), Some(f @ (Format::Anthropic | Format::Llamafactory))) => Some(f),
        (f, _) => f,
    }
}

/// True once more records cannot change what [`detect_file`] says.
pub fn settled(found: Option<Format>) -> bool {
    found.is_some_and(|f| f != Format::Openai)
}

/// Reads the labels a record may carry for canonical columns (our own export writes them).
pub fn take_labels(t: &mut Trajectory, obj: &fields::Obj) -> RecordResult<()> {
    // Into the room of the context's defaults (`base`), which a short label fits.
    if let Some(s) = obj.str("source")? {
        s.clone_into(&mut t.source);
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
            match slot {
                Some(default) => s.clone_into(default),
                None => *slot = Some(s.to_string()),
            }
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
    let mut given = GivenIds::default();
    let mut renamed = Map::new();
    // The calls of the last assistant message still waiting for a result: (index of the call,
    // the id its source gave it when that is not the id it now has).
    let mut pending: Vec<(usize, Option<Option<String>>)> = vec![];
    let mut calls_at = 0;
    for mi in 0..t.messages.len() {
        let (before, rest) = t.messages.split_at_mut(mi);
        let m = &mut rest[0];
        match m.role.as_ref() {
            "assistant" => {
                pending.clear();
                calls_at = mi;
                for k in 0..m.tool_calls.len() {
                    let mut changed = None;
                    let mut id = match m.tool_calls[k].id.take() {
                        Some(id) => id,
                        None => {
                            changed = Some(None);
                            format!("call_{mi}_{k}")
                        }
                    };
                    let given_before = |id: &str| given.contains(before, &m.tool_calls[..k], id);
                    if given_before(&id) {
                        let mut n = 2;
                        while given_before(&format!("{id}#{n}")) {
                            n += 1;
                        }
                        let new = format!("{id}#{n}");
                        renamed.insert(new.clone(), Value::String(id.clone()));
                        changed.get_or_insert(Some(std::mem::replace(&mut id, new)));
                    }
                    given.insert(&id);
                    m.tool_calls[k].id = Some(id);
                    pending.push((k, changed));
                }
            }
            "tool" => {
                let calls = before.get(calls_at).map_or(&[][..], |a| &a.tool_calls);
                // The id the source gave a call: its id now, unless that was given here.
                let by_id = m.tool_call_id.as_deref().and_then(|tid| {
                    pending.iter().position(|(k, changed)| {
                        let source_id = match changed {
                            Some(original) => original.as_deref(),
                            None => calls[*k].id.as_deref(),
                        };
                        source_id == Some(tid)
                    })
                });
                let idx = by_id.or(if pending.is_empty() { None } else { Some(0) });
                if let Some(i) = idx {
                    let (k, _) = pending.remove(i);
                    // Most results already carry their call's id: no new copy of it then.
                    if m.tool_call_id != calls[k].id {
                        m.tool_call_id = calls[k].id.clone();
                    }
                    if m.name.is_none() {
                        m.name = Some(calls[k].name.clone());
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

/// The ids [`finish`] gave out so far, kept as hashes: nearly every id is new, and copying each
/// one into a set cost an allocation per call of every record. A hash seen before is confirmed
/// against the ids themselves, which are the calls already finished.
#[derive(Default)]
struct GivenIds {
    hashes: datafusion::common::HashSet<u64>,
}

impl GivenIds {
    fn hash(&self, id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(self.hashes.hasher(), id)
    }

    fn insert(&mut self, id: &str) {
        self.hashes.insert(self.hash(id));
    }

    /// Whether `id` was given to a call of the assistant messages `before` or to one of
    /// `current`, the calls of this message finished so far.
    fn contains(&self, before: &[Message], current: &[crate::model::ToolCall], id: &str) -> bool {
        self.hashes.contains(&self.hash(id))
            && before
                .iter()
                .filter(|m| m.role == "assistant")
                .flat_map(|m| &m.tool_calls)
                .chain(current)
                .any(|c| c.id.as_deref() == Some(id))
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
