//! LLaMA-Factory's typed parts (its v1 data format): `{"messages": [{"role", "content":
//! [{"type", "value"}], "loss_weight"}], "tools": "<JSON text>", "extra_info": "<JSON text>"}`.
//!
//! Part types: `text` (content), `reasoning`, `tool_call` (value: JSON text `{"name",
//! "arguments"}`, one call per part), `image_url` / `video_url` / `audio_url` (kept in
//! metadata). The first v1 layout is read too: a `tools` part in the system message and a
//! `tool_calls` part holding a list. Tool results are `tool` messages without ids, paired with
//! the calls by order. A part of another type carrying text, or a call that cannot be read,
//! rejects the record. Preference pairs (`chosen_messages` / `rejected_messages`) are rejected
//! with a reason: they are two answers to one prompt, not one trajectory.

use serde_json::{Map, Value};

use super::conv::Conv;
use super::fields::{Obj, RecordResult};
use super::parts::{self, Dialect};
use super::{LABEL_KEYS, ParseContext, base, take_labels, tool_schema};
use crate::model::{Trajectory, id_text};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("messages[].content[] text", "messages[].content (joined)"),
    ("messages[].content[] reasoning", "messages[].reasoning"),
    (
        "messages[].content[] tool_call / tool_calls",
        "messages[].tool_calls",
    ),
    ("messages[] role tool", "tool results, paired by order"),
    ("messages[0] role system", "system"),
    (
        "messages[].content[] image_url / video_url / audio_url",
        "metadata.message_fields.<i>.content_parts",
    ),
    (
        "messages[].loss_weight",
        "metadata.message_fields.<i>.loss_weight",
    ),
    ("tools (JSON text) / a `tools` part", "tools"),
    ("extra_info, _dataset_name, other keys", "metadata"),
];

/// Parses one LLaMA-Factory v1 record.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    if o.get("messages").is_none()
        && (o.get("chosen_messages").is_some() || o.get("rejected_messages").is_some())
    {
        return Err(
            "chosen_messages / rejected_messages: preference pairs are not trajectories; split them into two `messages` records"
                .into(),
        );
    }
    let mut t = base(ctx);
    take_labels(&mut t, &o)?;
    let msgs = o
        .arr("messages")?
        .ok_or("messages: required list is missing")?;
    let mut conv = Conv::new();
    let mut tool_lists: Vec<Value> = vec![];
    for (i, m) in msgs.iter().enumerate() {
        let mpath = format!("messages[{i}]");
        let mo = Obj::of(m, &mpath)?;
        let role = mo.req_str("role")?;
        let c = parts::read(
            Dialect::LlamaFactory,
            mo.get("content"),
            &format!("{mpath}.content"),
        )?;
        tool_lists.extend(c.tools);
        let rest = mo.rest(&["role", "content"]);
        let at = match role {
            "system" | "developer" => conv.system(c.text.clone().unwrap_or_default()),
            "user" | "human" => Some(conv.user(c.text.clone())),
            "assistant" | "gpt" => {
                let a = conv.assistant();
                conv.msg(a).content = c.text.clone();
                Some(a)
            }
            "tool" | "observation" | "function" => Some(conv.result(None, c.text.clone(), false)),
            other => return Err(format!("{mpath}.role: unknown role `{other}`")),
        };
        match at {
            Some(a) => {
                for r in &c.reasoning {
                    conv.add_reasoning(a, r);
                }
                if !c.calls.is_empty() && conv.msg(a).role != "assistant" {
                    return Err(format!("{mpath}: a `{role}` message makes tool calls"));
                }
                for call in c.calls {
                    conv.add_call(a, call);
                }
                parts::keep_on(&mut conv, a, c.kept, c.part_fields);
                conv.fields(a, rest);
            }
            None => {
                if !c.calls.is_empty() || !c.reasoning.is_empty() {
                    return Err(format!(
                        "{mpath}: a system message makes tool calls or reasons"
                    ));
                }
                let mut sys = Map::new();
                sys.extend(rest);
                parts::keep_in(&mut sys, c.kept, c.part_fields);
                if !sys.is_empty() {
                    conv.system_field(&format!("messages[{i}]"), Value::Object(sys));
                }
            }
        }
    }
    conv.finish_into(&mut t);
    // Tools: the record's `tools` (JSON text, "" for none) and any `tools` parts.
    let mut defs = vec![];
    let mut extras = vec![];
    if let Some(tools) = o.get("tools") {
        let (d, e) = tool_schema::tool_defs(Some(tools), "tools")?;
        defs.extend(d.iter().cloned());
        extras.extend(e);
    }
    for (k, list) in tool_lists.iter().enumerate() {
        let (d, e) = tool_schema::tool_defs(Some(list), &format!("tools part {k}"))?;
        defs.extend(d.iter().cloned());
        extras.extend(e);
    }
    t.tools = defs.into();
    if !extras.is_empty() {
        t.metadata.insert(
            "tool_fields".into(),
            Value::Array(extras.into_iter().map(Value::Object).collect()),
        );
    }
    let mut known: Vec<&str> = vec!["messages", "tools", "id"];
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    o.assign_id(&mut t, o.get("id").and_then(id_text))?;
    Ok(t)
}
