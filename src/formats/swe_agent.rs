//! SWE-agent trajectories (`<instance_id>.traj`): `{"history": [...], "trajectory": [...],
//! "info": {...}, "replay_config": "<JSON text>", "environment": ...}`, in the 1.x layout
//! (`message_type`, function calling with `tool_calls` and `tool` results) and the 0.x layout
//! (actions in the assistant text, observations as user turns).
//!
//! One file is one trajectory, named by the file (the instance id). An assistant item becomes
//! an assistant message with its `content`, its `thought` (after any thinking blocks) as
//! reasoning, and its `tool_calls`; without calls, a non-empty `action` becomes one call `bash`
//! `{"command": <action>}` (the action is a command line of the agent's shell). A user item right
//! after an action is that action's result; a `tool` item is the result of the call it names.
//! `trajectory` steps, `info` (exit status, submission, model stats), `replay_config` and the
//! environment are kept in metadata; the file has no pass / fail, so `reward` stays empty.

use serde_json::{Map, Value, json};

use super::conv::Conv;
use super::fields::{Obj, RecordResult, kind};
use super::parts::{self, Dialect};
use super::{ParseContext, base};
use crate::model::{ToolCall, Trajectory};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("history[0] role system", "system"),
    (
        "history[] role user",
        "user messages (right after an action: its tool result)",
    ),
    ("history[] role assistant content", "messages[].content"),
    ("history[] thought, thinking_blocks", "messages[].reasoning"),
    (
        "history[] tool_calls / action",
        "messages[].tool_calls (an action without calls → `bash`)",
    ),
    ("history[] role tool + tool_call_ids", "tool messages"),
    (
        "history[] agent, message_type, is_demo, …",
        "metadata.message_fields.<i>",
    ),
    ("file name", "traj_id"),
    ("trajectory, info, replay_config, environment", "metadata"),
];

/// True for a SWE-agent trajectory: `history` with `trajectory`, `info` or `replay_config`,
/// and a history (when it is a list) of role items.
pub fn looks_like(m: &Map<String, Value>) -> bool {
    let Some(h) = m.get("history") else {
        return false;
    };
    let marked = m.contains_key("trajectory")
        || m.contains_key("replay_config")
        || m.get("info")
            .is_some_and(|i| i.get("exit_status").is_some());
    match h {
        Value::Array(items) => marked && items.iter().all(|i| i.get("role").is_some()),
        _ => marked,
    }
}

fn calls_of(list: &[Value], path: &str) -> RecordResult<Vec<ToolCall>> {
    let mut out = vec![];
    for (k, c) in list.iter().enumerate() {
        let cp = format!("{path}[{k}]");
        let co = Obj::of(c, &cp)?;
        let f = match co.get("function") {
            Some(f) => Obj::of(f, &cp)?,
            None => co,
        };
        let name = match f.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(format!("{cp}: a tool call has no function name")),
        };
        let arguments = match f.get("arguments") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v @ Value::Object(_)) => v.to_string(),
            Some(other) => {
                return Err(format!(
                    "{cp}.arguments: expected JSON text, found {}",
                    kind(other)
                ));
            }
        };
        out.push(ToolCall {
            id: co.str("id")?.map(str::to_string),
            name,
            arguments,
        });
    }
    Ok(out)
}

/// Parses one `.traj` document.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    let history = match o.get("history") {
        Some(Value::Array(h)) => h,
        Some(other) => {
            return Err(format!(
                "history: `history` is not a list of messages (found {})",
                kind(other)
            ));
        }
        None => return Err("history: `history` is not a list of messages (missing)".into()),
    };
    let mut conv = Conv::new();
    let mut prev_action = false;
    for (i, h) in history.iter().enumerate() {
        let hp = format!("history[{i}]");
        let ho = Obj::of(h, &hp)?;
        let role = ho.req_str("role")?;
        let c = parts::read(Dialect::OpenAi, ho.get("content"), &format!("{hp}.content"))?;
        let mut consumed = vec!["role", "content"];
        let at = match role {
            "system" => conv.system(c.text.clone().unwrap_or_default()),
            "tool" => {
                let id = match ho.get("tool_call_ids") {
                    Some(Value::Array(ids)) if ids.len() == 1 => {
                        consumed.push("tool_call_ids");
                        ids[0].as_str().map(str::to_string)
                    }
                    _ => None,
                };
                Some(conv.result(id, c.text.clone(), false))
            }
            "user" if prev_action && ho.get("is_demo") != Some(&Value::Bool(true)) => {
                Some(conv.result(None, c.text.clone(), false))
            }
            "user" => Some(conv.user(c.text.clone())),
            "assistant" => {
                let a = conv.assistant();
                conv.msg(a).content = c.text.clone();
                if let Some(Value::Array(blocks)) = ho.get("thinking_blocks") {
                    let mut rest = vec![];
                    for b in blocks {
                        match b.get("thinking") {
                            Some(Value::String(s)) => {
                                conv.add_reasoning(a, s);
                                let mut b = b.clone();
                                if let Value::Object(m) = &mut b {
                                    m.remove("thinking");
                                }
                                rest.push(b);
                            }
                            _ => rest.push(b.clone()),
                        }
                    }
                    consumed.push("thinking_blocks");
                    conv.field(a, "thinking_blocks", Value::Array(rest));
                }
                if let Some(thought) = ho.str("thought")? {
                    conv.add_reasoning(a, thought);
                    consumed.push("thought");
                }
                match ho.arr("tool_calls")? {
                    Some(list) if !list.is_empty() => {
                        for call in calls_of(list, &format!("{hp}.tool_calls"))? {
                            conv.add_call(a, call);
                        }
                        // The call objects' own extra fields (type) are implied.
                        consumed.push("tool_calls");
                    }
                    _ => {
                        if let Some(action) = ho.str("action")?
                            && !action.trim().is_empty()
                        {
                            conv.add_call(
                                a,
                                ToolCall {
                                    id: None,
                                    name: "bash".into(),
                                    arguments: json!({ "command": action }).to_string(),
                                },
                            );
                            consumed.push("action");
                        }
                    }
                }
                Some(a)
            }
            other => return Err(format!("{hp}.role: unknown role `{other}`")),
        };
        prev_action = role == "assistant"
            && ho
                .get("action")
                .and_then(Value::as_str)
                .is_some_and(|a| !a.trim().is_empty());
        let rest = ho.rest(&consumed);
        match at {
            Some(a) => {
                parts::keep_on(&mut conv, a, c.kept, c.part_fields);
                conv.fields(a, rest);
            }
            None => {
                let mut entry = rest;
                parts::keep_in(&mut entry, c.kept, c.part_fields);
                if !entry.is_empty() {
                    conv.system_field(&hp, Value::Object(entry));
                }
            }
        }
    }
    conv.finish_into(&mut t);
    t.metadata.extend(o.rest(&["history"]));
    if !ctx.file_stem.is_empty() {
        t.assign_id(Some(ctx.file_stem.clone()));
    }
    Ok(t)
}
