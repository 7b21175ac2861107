//! Codex CLI rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`): one file is one
//! session. Each line is `{"timestamp", "type", "payload"}`: `session_meta` (the session id, the
//! base instructions → `system`, the rest → `metadata.session_meta`), `response_item` (Responses
//! API items, read as in [`super::responses`]), and `event_msg` / `turn_context` / `compacted`
//! lines, kept in `metadata.events` (`user_message`, `agent_message` and `agent_reasoning`
//! events repeat response items, so they make no messages). The older layout — a bare first line
//! `{id, timestamp, instructions}`, bare items and `{"record_type": "state"}` markers — is read
//! too (markers are kept in `metadata.markers`).
//!
//! Leading developer messages join the system prompt; the harness's `<environment_context>` user
//! messages stay user messages. Tool outputs are kept verbatim (JSON text or the newer plain
//! "Exit code: …" text).

use serde_json::{Map, Value, json};

use super::conv::Conv;
use super::responses::ItemReader;
use super::{ParseContext, base};
use crate::model::{Trajectory, id_text};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("session_meta.payload.id (legacy: first line id)", "traj_id"),
    (
        "base_instructions.text / instructions, leading developer messages",
        "system",
    ),
    ("response_item message user / assistant", "messages"),
    (
        "response_item reasoning",
        "messages[].reasoning (encrypted-only → metadata)",
    ),
    (
        "response_item function_call / custom_tool_call / local_shell_call",
        "messages[].tool_calls",
    ),
    ("response_item *_output", "tool messages, paired by call_id"),
    (
        "web_search_call, ghost_snapshot, compaction",
        "metadata.message_fields.<i>.content_parts",
    ),
    (
        "event_msg, turn_context, compacted lines",
        "metadata.events",
    ),
    (
        "session_meta payload (cwd, git, cli_version, …)",
        "metadata.session_meta",
    ),
];

/// True for a rollout line: a `session_meta` line, or the legacy first line.
pub fn looks_like(m: &Map<String, Value>) -> bool {
    let typed = m.get("type").and_then(Value::as_str);
    (typed == Some("session_meta") && m.contains_key("payload"))
        || (typed.is_none()
            && m.contains_key("id")
            && m.contains_key("timestamp")
            && m.contains_key("instructions")
            && !m.contains_key("messages"))
}

/// Parses the lines of one rollout file.
pub fn parse(ctx: &ParseContext, lines: Vec<(usize, Value)>) -> Result<Trajectory, String> {
    let mut t = base(ctx);
    let mut conv = Conv::new();
    let mut reader = ItemReader::default();
    let mut session_id: Option<String> = None;
    let mut markers = vec![];
    for (n, line) in lines {
        let path = format!("line {n}");
        let Value::Object(mut m) = line else {
            return Err(format!("{path}: expected an object"));
        };
        if m.contains_key("record_type") {
            markers.push(json!({"line": n, "at_message": conv.len(), "marker": Value::Object(m)}));
            continue;
        }
        let typed = m.get("type").and_then(Value::as_str).map(str::to_string);
        let Some(kind) = typed else {
            // The legacy first line: the session.
            if let Some(id) = m.get("id").and_then(id_text) {
                session_id = Some(id);
            }
            if let Some(Value::String(s)) = m.remove("instructions") {
                conv.system(s);
            } else {
                m.insert("instructions".into(), Value::Null);
            }
            t.metadata.insert("session_meta".into(), Value::Object(m));
            continue;
        };
        let Some(payload) = m.remove("payload") else {
            // A legacy bare item.
            reader.item(&mut conv, &Value::Object(m), n, None, &path)?;
            continue;
        };
        let stamp = m.remove("timestamp");
        match kind.as_str() {
            "session_meta" => {
                let Value::Object(mut p) = payload else {
                    return Err(format!("{path}.payload: expected an object"));
                };
                if let Some(id) = p.get("id").and_then(id_text) {
                    session_id = Some(id);
                }
                if let Some(Value::Object(bi)) = p.get_mut("base_instructions")
                    && let Some(Value::String(s)) = bi.remove("text")
                {
                    conv.system(s);
                }
                if let Some(Value::String(s)) = p.get("instructions").cloned() {
                    conv.system(s);
                    p.remove("instructions");
                }
                if let Some(ts) = stamp {
                    p.insert("line_timestamp".into(), ts);
                }
                p.extend(m.into_iter().filter(|(k, _)| k != "type"));
                t.metadata.insert("session_meta".into(), Value::Object(p));
            }
            "response_item" => {
                let extra = stamp.as_ref().map(|s| ("timestamp", s));
                reader.item(&mut conv, &payload, n, extra, &format!("{path}.payload"))?;
            }
            _ => {
                // event_msg, turn_context, compacted and lines of kinds not known yet.
                let mut e = Map::new();
                e.insert("line".into(), json!(n));
                e.insert("type".into(), Value::String(kind.clone()));
                if let Some(ts) = stamp {
                    e.insert("timestamp".into(), ts);
                }
                e.insert("payload".into(), payload);
                e.extend(m.into_iter().filter(|(k, _)| k != "type"));
                conv.event(Value::Object(e));
            }
        }
    }
    conv.finish_into(&mut t);
    if !markers.is_empty() {
        t.metadata.insert("markers".into(), Value::Array(markers));
    }
    if let Some(id) = session_id {
        t.assign_id(Some(id));
    }
    Ok(t)
}
