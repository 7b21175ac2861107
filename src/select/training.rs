//! Training files of a subset, in the layouts common fine-tuning frameworks read:
//! OpenAI chat JSONL (`{"messages", "tools"}` per line) and LLaMA-Factory's ShareGPT format with
//! its `dataset_info.json` entry.

use serde_json::{Value, json};

use crate::export::openai::{messages_json, tools_json};
use crate::model::Trajectory;

/// One line of the OpenAI chat fine-tuning file.
pub fn openai_line(t: &Trajectory) -> Value {
    let mut o = json!({"messages": messages_json(t, false)});
    let tools = tools_json(t);
    if !tools.is_empty() {
        o["tools"] = Value::Array(tools);
    }
    o
}

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
pub fn sharegpt_record(t: &Trajectory) -> Value {
    let mut turns: Vec<(String, String)> = vec![];
    let mut i = 0;
    let msgs = &t.messages;
    while i < msgs.len() {
        let m = &msgs[i];
        match m.role.as_str() {
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
