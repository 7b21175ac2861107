//! xLAM (APIGen) records: `{"id", "query", "answers": "<JSON text>", "tools": "<JSON text>"}`.
//! Tool parameters are a flat map with Python type strings (`str, optional`), normalised to
//! JSON Schema. A record becomes a user turn and one assistant turn with the answer calls.

use serde_json::Value;

use super::fields::{Obj, RecordResult, arguments_text, json_or_string, kind};
use super::{LABEL_KEYS, ParseContext, base, take_labels, tool_schema};
use crate::model::{Message, ToolCall, Trajectory, id_text};

/// Parses one xLAM record.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    take_labels(&mut t, &o)?;
    let query = o.req_str("query")?;
    let answers = json_or_string(
        o.get("answers")
            .ok_or("answers: required field is missing")?,
        "answers",
    )?;
    let Value::Array(answers) = answers.as_ref() else {
        return Err(format!(
            "answers: expected a list of calls, found {}",
            kind(&answers)
        ));
    };
    let mut calls = vec![];
    for (k, a) in answers.iter().enumerate() {
        let p = format!("answers[{k}]");
        let ao = Obj::of(a, &p)?;
        calls.push(ToolCall {
            id: None,
            name: ao.req_str("name")?.to_string(),
            arguments: arguments_text(ao.get("arguments"), &format!("{p}.arguments"))?,
        });
    }
    t.messages.push(Message {
        role: "user".into(),
        content: Some(query.to_string()),
        ..Default::default()
    });
    if !calls.is_empty() {
        t.messages.push(Message {
            role: "assistant".into(),
            tool_calls: calls,
            ..Default::default()
        });
    }
    tool_schema::fill_tools(&mut t, o.get("tools"), "tools")?;
    let mut known: Vec<&str> = vec!["query", "answers", "tools", "id"];
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    if let Some(id) = o.get("id").and_then(id_text) {
        t.assign_id(Some(id));
    }
    Ok(t)
}
