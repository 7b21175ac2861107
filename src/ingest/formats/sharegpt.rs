//! ShareGPT / LLaMA-Factory: `{"conversations": [{"from": "human", "value": ..}, ..], "system": ..,
//! "tools": "<JSON text>"}`. Roles `human`, `gpt`, `function_call`, `observation`, `system`
//! (or `user`/`assistant`/… with `role`/`content` keys). A `function_call` turn holds one call
//! `{"name", "arguments"}` or a list of them (parallel calls); the `observation` turns that follow
//! are its results, paired by order.

use serde_json::Value;

use super::fields::{Obj, RecordResult, arguments_text, kind};
use super::{LABEL_KEYS, ParseContext, base, take_labels, take_system, tool_schema};
use crate::model::{Message, ToolCall, Trajectory, id_text};

const TAGS: &[&str] = &["function_call", "observation", "human", "gpt"];

/// True when an OpenAI-looking `messages` list uses ShareGPT roles.
pub fn looks_like_messages(msgs: &[Value]) -> bool {
    msgs.iter().any(|m| {
        m.get("from").is_some()
            || m.get("role")
                .and_then(Value::as_str)
                .is_some_and(|r| TAGS.contains(&r))
    })
}

fn calls_of(value: &str, path: &str) -> RecordResult<Vec<ToolCall>> {
    let v: Value = serde_json::from_str(value)
        .map_err(|e| format!("{path}: function_call is not JSON: {e}"))?;
    let items = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        other => {
            return Err(format!(
                "{path}: expected a call object, found {}",
                kind(&other)
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let cp = format!("{path}[{k}]");
            let o = Obj::of(c, &cp)?;
            Ok(ToolCall {
                id: o.str("id")?.map(str::to_string),
                name: o.req_str("name")?.to_string(),
                arguments: arguments_text(o.get("arguments").or(o.get("parameters")), &cp)?,
            })
        })
        .collect()
}

/// Parses one ShareGPT record.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    take_labels(&mut t, &o)?;
    let (key, turns) = match o.arr("conversations")? {
        Some(c) => ("conversations", c),
        None => (
            "messages",
            o.arr("messages")?
                .ok_or("conversations: required list is missing")?,
        ),
    };
    let mut messages: Vec<Message> = vec![];
    for (i, turn) in turns.iter().enumerate() {
        let tp = format!("{key}[{i}]");
        let to = Obj::of(turn, &tp)?;
        let from = to
            .str("from")?
            .or(to.str("role")?)
            .ok_or(format!("{tp}.from: required string is missing"))?;
        let value = match to.get("value").or(to.get("content")) {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(format!(
                    "{tp}.value: expected a string, found {}",
                    kind(other)
                ));
            }
        };
        match from {
            "human" | "user" => messages.push(Message {
                role: "user".into(),
                content: Some(value),
                ..Default::default()
            }),
            "gpt" | "assistant" => messages.push(Message {
                role: "assistant".into(),
                content: Some(value),
                ..Default::default()
            }),
            "system" => messages.push(Message {
                role: "system".into(),
                content: Some(value),
                ..Default::default()
            }),
            "function_call" => {
                let calls = calls_of(&value, &format!("{tp}.value"))?;
                // A call right after an assistant text turn belongs to that turn.
                match messages.last_mut() {
                    Some(m) if m.role == "assistant" && m.tool_calls.is_empty() => {
                        m.tool_calls = calls
                    }
                    _ => messages.push(Message {
                        role: "assistant".into(),
                        tool_calls: calls,
                        ..Default::default()
                    }),
                }
            }
            "observation" | "tool" | "function" => messages.push(Message {
                role: "tool".into(),
                content: Some(value),
                ..Default::default()
            }),
            other => return Err(format!("{tp}.from: unknown role `{other}`")),
        }
    }
    // Leading system turns, then the record's own `system` field first.
    let turn_system = take_system(&mut messages);
    t.system = match (o.str("system")?, turn_system) {
        (Some(a), Some(b)) => Some(format!("{a}\n\n{b}")),
        (Some(a), None) => Some(a.to_string()),
        (None, b) => b,
    };
    t.messages = messages;
    tool_schema::fill_tools(&mut t, o.get("tools"), "tools")?;
    let mut known: Vec<&str> = vec!["conversations", "messages", "system", "tools", "id"];
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    if let Some(id) = o.str("traj_id")? {
        t.traj_id = id.to_string();
    } else if let Some(id) = o.get("id").and_then(id_text) {
        t.assign_id(Some(id));
    }
    Ok(t)
}
