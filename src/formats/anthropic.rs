//! Anthropic Messages API records: `{"system": str | [text blocks], "tools": [{name,
//! description, input_schema}], "messages": [{"role": "user" | "assistant", "content": str |
//! [blocks]}]}`.
//!
//! Assistant blocks: `text` (content), `thinking` (reasoning; its signature is kept with the
//! message), `redacted_thinking` (kept), `tool_use` (a call; `input` must be an object). A user
//! message's `tool_result` blocks become one `tool` message each, in order and before the user's
//! own text (`is_error` → the result's error flag; images inside a result are kept with it).
//! Images and documents are kept verbatim with their position. A block of another type
//! carrying text rejects the record.

use serde_json::{Map, Value};

use super::conv::Conv;
use super::fields::{Obj, RecordResult, kind};
use super::parts::{self, Content, Dialect};
use super::{LABEL_KEYS, ParseContext, base, take_labels, tool_schema};
use crate::model::{Trajectory, id_text};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("system (text or text blocks)", "system"),
    ("tools[] (input_schema)", "tools"),
    (
        "messages[].content text blocks",
        "messages[].content (joined)",
    ),
    (
        "messages[].content thinking",
        "messages[].reasoning (signature → metadata)",
    ),
    ("messages[].content tool_use", "messages[].tool_calls"),
    (
        "messages[].content tool_result",
        "tool messages (is_error → error)",
    ),
    (
        "image / document / redacted_thinking blocks",
        "metadata.message_fields.<i>.content_parts",
    ),
    ("id", "traj_id"),
    ("model, stop_reason, other keys", "metadata"),
];

/// Stores what an assistant content value holds in message `a`.
pub(crate) fn fill_assistant(
    conv: &mut Conv,
    a: usize,
    c: Content,
    path: &str,
) -> RecordResult<()> {
    if let Some(text) = &c.text {
        conv.add_text(a, text);
    }
    for r in &c.reasoning {
        conv.add_reasoning(a, r);
    }
    for call in c.calls {
        conv.add_call(a, call);
    }
    parts::keep_on(conv, a, c.kept, c.part_fields);
    if let Some((p, _)) = c.results.first() {
        return Err(format!(
            "{path}[{p}]: a tool_result block in an assistant message"
        ));
    }
    Ok(())
}

/// Stores a user content value: its `tool_result` blocks as tool messages, then the rest as a
/// user message when there is any. Returns the index of the first message stored.
pub(crate) fn fill_user(conv: &mut Conv, c: Content, path: &str) -> RecordResult<Option<usize>> {
    let mut first = None;
    for (p, block) in &c.results {
        let bpath = format!("{path}[{p}]");
        let bo = Obj::of(block, &bpath)?;
        let rc = parts::tool_result_content(block, &bpath)?;
        let error = match bo.get("is_error") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "{bpath}.is_error: expected a boolean, found {}",
                    kind(other)
                ));
            }
        };
        let id = bo.str("tool_use_id")?.map(str::to_string);
        let r = conv.result(id, rc.text, error);
        first.get_or_insert(r);
        parts::keep_on(conv, r, rc.kept, rc.part_fields);
        if !rc.calls.is_empty() || !rc.reasoning.is_empty() || !rc.results.is_empty() {
            return Err(format!(
                "{bpath}.content: calls or reasoning inside a tool result"
            ));
        }
        let rest = bo.rest(&["type", "tool_use_id", "content", "is_error"]);
        if !rest.is_empty() {
            conv.fields(r, rest);
        }
    }
    let has_rest = c.text.is_some() || !c.kept.is_empty();
    if has_rest {
        let u = conv.user(c.text);
        first.get_or_insert(u);
        parts::keep_on(conv, u, c.kept, c.part_fields);
    } else if !c.part_fields.is_empty() {
        let at = first.unwrap_or(conv.len().saturating_sub(1));
        for f in c.part_fields {
            conv.push_field(at, "part_fields", f);
        }
    }
    if !c.calls.is_empty() || !c.reasoning.is_empty() {
        return Err(format!(
            "{path}: a user message makes tool calls or reasons"
        ));
    }
    Ok(first)
}

/// The system prompt: a string or a list of text blocks (their other fields are kept).
fn system(conv: &mut Conv, v: &Value) -> RecordResult<()> {
    let c = parts::read(Dialect::Anthropic, Some(v), "system")?;
    if !c.calls.is_empty() || !c.reasoning.is_empty() || !c.results.is_empty() {
        return Err("system: only text blocks are expected".into());
    }
    conv.system(c.text.unwrap_or_default());
    let mut kept = Map::new();
    parts::keep_in(&mut kept, c.kept, c.part_fields);
    for (k, v) in kept {
        conv.system_field(&k, v);
    }
    Ok(())
}

/// Parses one Anthropic Messages record.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    take_labels(&mut t, &o)?;
    let msgs = o
        .arr("messages")?
        .ok_or("messages: required list is missing")?;
    let mut conv = Conv::new();
    if let Some(s) = o.get("system") {
        system(&mut conv, s)?;
    }
    for (i, m) in msgs.iter().enumerate() {
        let mpath = format!("messages[{i}]");
        let mo = Obj::of(m, &mpath)?;
        let role = mo.req_str("role")?;
        let cpath = format!("{mpath}.content");
        let c = parts::read(Dialect::Anthropic, mo.get("content"), &cpath)?;
        let rest: Map<String, Value> = mo.rest(&["role", "content"]);
        let at = match role {
            "assistant" => {
                let a = conv.assistant();
                fill_assistant(&mut conv, a, c, &cpath)?;
                Some(a)
            }
            "user" => fill_user(&mut conv, c, &cpath)?,
            "system" => conv.system(c.text.unwrap_or_default()),
            other => return Err(format!("{mpath}.role: unknown role `{other}`")),
        };
        if !rest.is_empty() {
            match at {
                Some(a) => conv.fields(a, rest),
                None => conv.system_field(&mpath, Value::Object(rest)),
            }
        }
    }
    conv.finish_into(&mut t);
    tool_schema::fill_tools(&mut t, o.get("tools"), "tools")?;
    let mut known: Vec<&str> = vec!["messages", "tools", "system", "id"];
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    o.assign_id(&mut t, o.get("id").and_then(id_text))?;
    Ok(t)
}
