//! Hermes / Qwen tags: tool calls as `<tool_call>{..}</tool_call>` inside assistant text, results
//! as `<tool_response>..</tool_response>`, tools as `<tools>..</tools>` in the system prompt,
//! thinking as `<think>..</think>`. Parsed leniently: JSON or Python-dict calls, a missing
//! closing tag runs to the end of the text, and a block that cannot be read is kept as text and
//! noted in `metadata.unparsed_tool_calls`.

use serde_json::Value;

use super::fields::{Obj, RecordResult, arguments_text, kind};
use super::{LABEL_KEYS, ParseContext, base, pylit, take_labels, take_system, tool_schema};
use crate::model::{Message, ToolCall, ToolDef, Trajectory, id_text};

/// True when a record's text uses Hermes tags.
pub fn looks_like(v: &Value) -> bool {
    let turns = v.get("conversations").or_else(|| v.get("messages"));
    let Some(Value::Array(turns)) = turns else {
        return false;
    };
    turns.iter().any(|t| {
        let text = t
            .get("value")
            .or_else(|| t.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        text.contains("<tool_call>") || text.contains("<tools>") || text.contains("<tool_response>")
    })
}

/// The blocks between `<tag>` and `</tag>` and the text outside them.
fn blocks<'a>(text: &'a str, tag: &str) -> (Vec<&'a str>, String) {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut inner = vec![];
    let mut outside = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        outside.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        match after.find(&close) {
            Some(end) => {
                inner.push(&after[..end]);
                rest = &after[end + close.len()..];
            }
            None => {
                inner.push(after);
                rest = "";
            }
        }
    }
    outside.push_str(rest);
    (inner, outside)
}

fn tools_from_system(system: &str) -> RecordResult<Vec<ToolDef>> {
    let (blocks, _) = blocks(system, "tools");
    let mut defs = vec![];
    for b in blocks {
        let b = b.trim();
        let values: Vec<Value> = match pylit::lenient_json(b) {
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            // Qwen writes one JSON object per line.
            Err(_) => b
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| pylit::lenient_json(l).map_err(|e| format!("system <tools>: {e}")))
                .collect::<RecordResult<_>>()?,
        };
        for (i, v) in values.iter().enumerate() {
            defs.push(tool_schema::tool_def(v, &format!("system.tools[{i}]"))?.0);
        }
    }
    Ok(defs)
}

/// Parses one Hermes / Qwen record.
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
    let mut unparsed = vec![];
    for (i, turn) in turns.iter().enumerate() {
        let tp = format!("{key}[{i}]");
        let to = Obj::of(turn, &tp)?;
        let from = to
            .str("from")?
            .or(to.str("role")?)
            .ok_or(format!("{tp}.from: required string is missing"))?;
        let text = match to.get("value").or(to.get("content")) {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(format!(
                    "{tp}.value: expected a string, found {}",
                    kind(other)
                ));
            }
        };
        let role = match from {
            "human" | "user" => "user",
            "gpt" | "assistant" => "assistant",
            "system" => "system",
            "tool" | "observation" | "function" | "ipython" => "tool",
            other => return Err(format!("{tp}.from: unknown role `{other}`")),
        };
        let (responses, outside) = blocks(&text, "tool_response");
        if !responses.is_empty() && role != "assistant" {
            if role == "user" && !outside.trim().is_empty() {
                messages.push(Message {
                    role: "user".into(),
                    content: Some(outside.trim().to_string()),
                    ..Default::default()
                });
            }
            for r in responses {
                messages.push(Message {
                    role: "tool".into(),
                    content: Some(r.trim().to_string()),
                    ..Default::default()
                });
            }
            continue;
        }
        if role != "assistant" {
            messages.push(Message {
                role: role.into(),
                content: Some(text),
                ..Default::default()
            });
            continue;
        }
        let (thinking, text) = blocks(&text, "think");
        let (calls, outside) = blocks(&text, "tool_call");
        let mut tool_calls = vec![];
        let mut kept = outside.trim().to_string();
        for (k, c) in calls.iter().enumerate() {
            let parsed = pylit::lenient_json(c).and_then(|v| {
                let cp = format!("{tp}.tool_call[{k}]");
                let co = Obj::of(&v, &cp)?;
                Ok(ToolCall {
                    id: co.str("id")?.map(str::to_string),
                    name: co.req_str("name")?.to_string(),
                    arguments: arguments_text(co.get("arguments").or(co.get("parameters")), &cp)?,
                })
            });
            match parsed {
                Ok(call) => tool_calls.push(call),
                Err(e) => {
                    unparsed.push(
                        serde_json::json!({"message": messages.len(), "text": c, "error": e}),
                    );
                    kept = format!("{kept}<tool_call>{c}</tool_call>");
                }
            }
        }
        let reasoning = (!thinking.is_empty()).then(|| {
            thinking
                .iter()
                .map(|s| s.trim())
                .collect::<Vec<_>>()
                .join("\n")
        });
        messages.push(Message {
            role: "assistant".into(),
            content: (!kept.is_empty()).then_some(kept),
            reasoning,
            tool_calls,
            ..Default::default()
        });
    }
    t.system = take_system(&mut messages);
    let mut tools = match &t.system {
        Some(s) => tools_from_system(s)?,
        None => vec![],
    };
    let (listed, _) = tool_schema::tool_defs(o.get("tools"), "tools")?;
    tools.extend(listed.iter().cloned());
    t.tools = tools.into();
    t.messages = messages;
    if !unparsed.is_empty() {
        t.metadata
            .insert("unparsed_tool_calls".into(), Value::Array(unparsed));
    }
    let mut known: Vec<&str> = vec!["conversations", "messages", "tools", "id"];
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    o.assign_id(&mut t, o.get("id").and_then(id_text))?;
    Ok(t)
}
