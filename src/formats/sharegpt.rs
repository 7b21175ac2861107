//! ShareGPT / LLaMA-Factory: `{"conversations": [{"from": "human", "value": ..}, ..], "system": ..,
//! "tools": "<JSON text>"}`. Roles `human`, `gpt`, `function_call`, `observation`, `system`
//! (or `user`/`assistant`/… with `role`/`content` keys). A `function_call` turn holds one call
//! `{"name", "arguments"}` or a list of them (parallel calls); the `observation` turns that follow
//! are its results, paired by order. Read by [`parse`]; written by [`to_record`] with the
//! `dataset_info.json` entry LLaMA-Factory needs ([`dataset_info_entry`]).

use serde_json::{Value, json};

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
    o.assign_id(&mut t, o.get("id").and_then(id_text))?;
    Ok(t)
}

// ---- Writing ----

fn turn(from: &str, value: String) -> (String, String) {
    (from.to_string(), value)
}

fn is_odd_slot(tag: &str) -> bool {
    // LLaMA-Factory's ShareGPT reader wants human/observation at even indexes and
    // gpt/function_call at odd ones, alternating.
    matches!(tag, "human" | "observation")
}

/// One LLaMA-Factory ShareGPT record: `conversations` alternating `human`/`observation` and
/// `gpt`/`function_call` turns, plus `system` and `tools` (JSON text).
///
/// Parallel calls are one `function_call` turn holding a JSON list, and their results one
/// `observation` turn holding a JSON list. Adjacent turns on the same side are merged (text
/// joined; calls concatenated), an assistant's text that accompanies calls is dropped (the format
/// has no place for it), leading assistant turns and a trailing user/observation turn are dropped
/// so the conversation starts with the user and ends with the assistant.
pub fn to_record(t: &Trajectory) -> Value {
    let mut turns: Vec<(String, String)> = vec![];
    let mut i = 0;
    let msgs = &t.messages;
    while i < msgs.len() {
        let m = &msgs[i];
        match m.role.as_ref() {
            "user" => turns.push(turn("human", m.content.clone().unwrap_or_default())),
            "assistant" if !m.tool_calls.is_empty() => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"name": c.name, "arguments": serde_json::from_str::<Value>(&c.arguments).unwrap_or(Value::String(c.arguments.clone()))}))
                    .collect();
                let v = if calls.len() == 1 {
                    calls[0].clone()
                } else {
                    Value::Array(calls)
                };
                turns.push(turn("function_call", v.to_string()));
            }
            "assistant" => turns.push(turn("gpt", m.content.clone().unwrap_or_default())),
            "tool" => {
                let mut results = vec![m.content.clone().unwrap_or_default()];
                while i + 1 < msgs.len() && msgs[i + 1].role == "tool" {
                    i += 1;
                    results.push(msgs[i].content.clone().unwrap_or_default());
                }
                let v = if results.len() == 1 {
                    results.pop().unwrap_or_default()
                } else {
                    Value::from(results).to_string()
                };
                turns.push(turn("observation", v));
            }
            _ => turns.push(turn("human", m.content.clone().unwrap_or_default())),
        }
        i += 1;
    }
    // Merge adjacent turns on the same side.
    let mut merged: Vec<(String, String)> = vec![];
    for (tag, value) in turns {
        match merged.last_mut() {
            Some((ptag, pval)) if is_odd_slot(ptag) == is_odd_slot(&tag) => {
                if ptag == "function_call" && tag == "function_call" {
                    let mut list: Vec<Value> = match serde_json::from_str::<Value>(pval) {
                        Ok(Value::Array(a)) => a,
                        Ok(v) => vec![v],
                        Err(_) => vec![],
                    };
                    match serde_json::from_str::<Value>(&value) {
                        Ok(Value::Array(a)) => list.extend(a),
                        Ok(v) => list.push(v),
                        Err(_) => {}
                    }
                    *pval = Value::Array(list).to_string();
                } else if tag == "function_call" {
                    // Text followed by a call: the call is what the next turn answers.
                    *ptag = tag;
                    *pval = value;
                } else if ptag != "function_call" {
                    pval.push('\n');
                    pval.push_str(&value);
                }
            }
            _ => merged.push((tag, value)),
        }
    }
    while merged.first().is_some_and(|(t, _)| !is_odd_slot(t)) {
        merged.remove(0);
    }
    while merged.last().is_some_and(|(t, _)| is_odd_slot(t)) {
        merged.pop();
    }
    let conversations: Vec<Value> = merged
        .into_iter()
        .map(|(from, value)| json!({"from": from, "value": value}))
        .collect();
    let tools: Vec<Value> = t
        .tools
        .iter()
        .map(|d| json!({"name": d.name, "description": d.description, "parameters": d.parameters.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()).unwrap_or(json!({"type": "object"}))}))
        .collect();
    json!({
        "conversations": conversations,
        "system": t.system.clone().unwrap_or_default(),
        "tools": Value::Array(tools).to_string(),
    })
}

/// The `dataset_info.json` entry LLaMA-Factory needs to read a ShareGPT file with tools.
pub fn dataset_info_entry(file_name: &str) -> Value {
    json!({
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt", "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
    })
}
