//! OpenAI chat format: `{"messages": [...], "tools": [...]}`, one record per line or a JSON array.
//! Read by [`parse`]; written by [`to_openai_json`] (every label and the metadata, so a written
//! trajectory reads back the same) and [`training_line`] (what chat fine-tuning accepts).

use std::fmt::Write;

use serde_json::{Map, Value, json};

use super::fields::{Obj, RecordResult, arguments_text};
use super::{LABEL_KEYS, ParseContext, base, parts, take_labels, take_system, tool_schema};
use crate::model::{Message, ToolCall, Trajectory, id_text};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("messages[0] role system / developer", "system"),
    (
        "messages[].content (text or text / input_text / output_text / refusal parts)",
        "messages[].content (joined)",
    ),
    (
        "messages[].content image_url / input_audio / file parts",
        "metadata.message_fields.<i>.content_parts",
    ),
    (
        "messages[].reasoning_content / reasoning",
        "messages[].reasoning",
    ),
    (
        "messages[].tool_calls / function_call",
        "messages[].tool_calls",
    ),
    ("messages[] role tool + tool_call_id", "tool messages"),
    (
        "messages[].tool_calls[] other fields (a `type` other than function included)",
        "metadata.message_fields.<i>.call_fields.<k>",
    ),
    ("messages[] other fields", "metadata.message_fields.<i>"),
    ("tools", "tools"),
    ("id", "traj_id"),
    ("other keys", "metadata"),
];

const MESSAGE_KEYS: &[&str] = &[
    "role",
    "content",
    "reasoning",
    "reasoning_content",
    "thinking",
    "tool_calls",
    "function_call",
    "tool_call_id",
    "name",
    "error",
    "is_error",
    "isError",
];

/// One call at `path`, and its fields no column holds (`type` only when it is not `function`,
/// which every column-held call is; other keys of the call and of its `function` object).
/// `scratch` holds the path of its `function` object: the paths of every message and call are
/// only read when a record is rejected, so they are written into buffers reused across a record
/// rather than allocated each time.
fn tool_call(
    v: &Value,
    path: &str,
    scratch: &mut String,
) -> RecordResult<(ToolCall, Map<String, Value>)> {
    let o = Obj::of(v, path)?;
    scratch.clear();
    scratch.push_str(path);
    scratch.push_str(".function");
    let f = match o.get("function") {
        Some(f) => Obj::of(f, scratch)?,
        None => o,
    };
    let arguments_key = if f.get("arguments").is_some() {
        "arguments"
    } else {
        "parameters"
    };
    let arguments = match f.get(arguments_key) {
        // The usual case, which needs no path.
        Some(Value::String(s)) => s.clone(),
        other => arguments_text(other, &format!("{}.{arguments_key}", f.path))?,
    };
    let call = ToolCall {
        id: o.str("id")?.map(str::to_string),
        name: f.req_str("name")?.to_string(),
        arguments,
    };
    let mut rest = if std::ptr::eq(f.map, o.map) {
        o.rest(&["id", "type", "name", arguments_key])
    } else {
        let mut rest = o.rest(&["id", "type", "function"]);
        let inner = f.rest(&["name", arguments_key]);
        if !inner.is_empty() {
            rest.insert("function".into(), Value::Object(inner));
        }
        rest
    };
    if let Some(t) = o.get("type").filter(|t| t.as_str() != Some("function")) {
        rest.insert("type".into(), t.clone());
    }
    Ok((call, rest))
}

/// Parses an OpenAI message list. Unknown per-message fields are returned keyed by message
/// index so they can be kept in `metadata.message_fields`.
pub fn parse_messages(
    msgs: &[Value],
    path: &str,
) -> RecordResult<(Vec<Message>, Map<String, Value>)> {
    let mut out = Vec::with_capacity(msgs.len());
    let mut extra = Map::new();
    // Paths for error messages, reused (see `tool_call`).
    let (mut mpath, mut sub, mut scratch) = (String::new(), String::new(), String::new());
    for (i, v) in msgs.iter().enumerate() {
        mpath.clear();
        let _ = write!(mpath, "{path}[{i}]");
        let o = Obj::of(v, &mpath)?;
        let mut role = o.req_str("role")?.to_string();
        if role == "function" {
            role = "tool".into();
        }
        let raw_content = o.get("content");
        sub.clear();
        sub.push_str(&mpath);
        sub.push_str(".content");
        let c = parts::read(parts::Dialect::OpenAi, raw_content, &sub)?;
        // A list of parts with no text part still had content: an empty string, as before.
        let content = match (c.text, raw_content) {
            (None, Some(Value::Array(_))) => Some(String::new()),
            (t, _) => t,
        };
        let reasoning = o
            .str("reasoning_content")?
            .or(o.str("reasoning")?)
            .or(o.str("thinking")?)
            .map(str::to_string);
        let mut tool_calls = vec![];
        // The fields of each call no column holds, by the call's position in `tool_calls`.
        let mut call_fields = Map::new();
        let mut push_call = |(call, rest): (ToolCall, Map<String, Value>)| {
            if !rest.is_empty() {
                call_fields.insert(tool_calls.len().to_string(), Value::Object(rest));
            }
            tool_calls.push(call);
        };
        if let Some(calls) = o.arr("tool_calls")? {
            for (k, c) in calls.iter().enumerate() {
                sub.clear();
                let _ = write!(sub, "{mpath}.tool_calls[{k}]");
                push_call(tool_call(c, &sub, &mut scratch)?);
            }
        }
        if let Some(fc) = o.get("function_call") {
            sub.clear();
            sub.push_str(&mpath);
            sub.push_str(".function_call");
            push_call(tool_call(fc, &sub, &mut scratch)?);
        }
        let error = match o.get("error").or(o.get("is_error")).or(o.get("isError")) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Null) | None => None,
            Some(_) => Some(true),
        };
        let mut rest = o.rest(MESSAGE_KEYS);
        parts::keep_in(&mut rest, c.kept, c.part_fields);
        if c.refusal {
            rest.insert("refusal".into(), Value::Bool(true));
        }
        if let Some(e @ Value::String(_)) = o.get("error") {
            rest.insert("error".into(), e.clone());
        }
        if !call_fields.is_empty() {
            rest.insert("call_fields".into(), Value::Object(call_fields));
        }
        if !rest.is_empty() {
            extra.insert(i.to_string(), Value::Object(rest));
        }
        out.push(Message {
            role: role.into(),
            content,
            reasoning,
            tool_calls,
            tool_call_id: o.str("tool_call_id")?.map(str::to_string),
            name: o.str("name")?.map(str::to_string),
            error,
        });
    }
    Ok((out, extra))
}

/// Fills messages, system prompt and metadata of `t` from an OpenAI message list.
pub fn fill_messages(t: &mut Trajectory, msgs: &[Value], path: &str) -> RecordResult<()> {
    let (mut messages, extra) = parse_messages(msgs, path)?;
    let leading = messages
        .iter()
        .take_while(|m| m.role == "system" || m.role == "developer")
        .count();
    t.system = take_system(&mut messages);
    if !extra.is_empty() {
        // Re-key by position in the stored list so each entry still points at its message.
        let shifted: Map<String, Value> = extra
            .into_iter()
            .map(|(k, v)| match k.parse::<usize>() {
                Ok(i) if i >= leading => ((i - leading).to_string(), v),
                _ => (format!("system{k}"), v),
            })
            .collect();
        t.metadata
            .insert("message_fields".into(), Value::Object(shifted));
    }
    t.messages = messages;
    Ok(())
}

/// Parses one OpenAI chat record.
///
/// ```
/// use tdscale::formats::{openai, ParseContext};
/// let v = serde_json::json!({"id": "a1", "messages": [
///     {"role": "system", "content": "be brief"},
///     {"role": "user", "content": "hi"}]});
/// let ctx = ParseContext { source: "demo".into(), ..Default::default() };
/// let t = openai::parse(&ctx, v).unwrap();
/// assert_eq!(t.traj_id, "demo/a1");
/// assert_eq!(t.system.as_deref(), Some("be brief"));
/// assert_eq!(t.messages.len(), 1);
/// ```
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    record(ctx, Obj::of(&v, "")?, None, None)
}

/// Parses a record whose messages (and tools, when a list) [`super::openai_typed`] has read:
/// `v` and `labels` hold its other fields.
pub fn parse_with_messages(
    ctx: &ParseContext,
    v: &Value,
    labels: &[(&'static str, Value)],
    messages: Vec<Message>,
    tools: Option<tool_schema::ToolDefs>,
) -> RecordResult<Trajectory> {
    record(
        ctx,
        Obj::of(v, "")?.with_front(labels),
        Some(messages),
        tools,
    )
}

/// The record fields [`record`] maps (the others are kept in `metadata`).
static MAPPED: std::sync::LazyLock<Vec<&str>> = std::sync::LazyLock::new(|| {
    let own = [
        "messages", "tools", "system", "id", "metadata", "format", "round",
    ];
    [&own[..], LABEL_KEYS].concat()
});

/// The trajectory of record `o`, its messages and tools read from `o` unless given.
fn record(
    ctx: &ParseContext,
    o: Obj,
    messages: Option<Vec<Message>>,
    tools: Option<tool_schema::ToolDefs>,
) -> RecordResult<Trajectory> {
    let mut t = base(ctx);
    take_labels(&mut t, &o)?;
    match messages {
        // Plain messages carry no field for `metadata.message_fields`.
        Some(mut messages) => {
            t.system = take_system(&mut messages);
            t.messages = messages;
        }
        None => {
            let msgs = o
                .arr("messages")?
                .ok_or("messages: required list is missing")?;
            fill_messages(&mut t, msgs, "messages")?;
        }
    }
    if let Some(s) = o.str("system")? {
        t.system = Some(match t.system.take() {
            Some(existing) => format!("{s}\n\n{existing}"),
            None => s.to_string(),
        });
    }
    match tools {
        Some(defs) => tool_schema::set_tools(&mut t, defs),
        None => tool_schema::fill_tools(&mut t, o.get("tools"), "tools")?,
    }
    t.metadata.extend(o.rest(&MAPPED));
    // Our own export writes `metadata` as an object and `format`/`round` as labels; an
    // unrelated `metadata` of another shape is kept under its name.
    match o.get("metadata") {
        Some(Value::Object(m)) => t.metadata.extend(m.clone()),
        Some(other) => {
            t.metadata.insert("metadata".into(), other.clone());
        }
        None => {}
    }
    for key in ["format", "round"] {
        if let Some(v) = o.get(key) {
            t.metadata.insert(format!("source_{key}"), v.clone());
        }
    }
    o.assign_id(&mut t, o.get("id").and_then(id_text))?;
    Ok(t)
}

// ---- Writing ----

/// The OpenAI chat messages of a trajectory, system prompt first. With `extras`, the fields
/// that only tdscale reads back (`reasoning_content`, `error`, the tool `name`) are included;
/// without, the messages are exactly what OpenAI-style fine-tuning accepts.
pub fn messages_json(t: &Trajectory, extras: bool) -> Vec<Value> {
    let mut messages = vec![];
    if let Some(s) = &t.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    for m in &t.messages {
        let mut o = Map::new();
        o.insert("role".into(), Value::String(m.role.to_string()));
        o.insert(
            "content".into(),
            m.content.clone().map(Value::String).unwrap_or(Value::Null),
        );
        if !m.tool_calls.is_empty() {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                .collect();
            o.insert("tool_calls".into(), Value::Array(calls));
        }
        if let Some(id) = &m.tool_call_id {
            o.insert("tool_call_id".into(), Value::String(id.clone()));
        }
        if extras {
            if let Some(r) = &m.reasoning {
                o.insert("reasoning_content".into(), Value::String(r.clone()));
            }
            if let Some(n) = &m.name {
                o.insert("name".into(), Value::String(n.clone()));
            }
            if let Some(e) = m.error {
                o.insert("error".into(), Value::Bool(e));
            }
        }
        messages.push(Value::Object(o));
    }
    messages
}

/// The tools of a trajectory as OpenAI function tools.
pub fn tools_json(t: &Trajectory) -> Vec<Value> {
    t.tools
        .iter()
        .map(|d| {
            let params = d.parameters.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()).unwrap_or(json!({"type": "object"}));
            json!({"type": "function", "function": {"name": d.name, "description": d.description, "parameters": params}})
        })
        .collect()
}

/// The OpenAI JSON of one trajectory, with every label and the metadata.
pub fn to_openai_json(t: &Trajectory) -> Value {
    let messages = messages_json(t, true);
    let tools = tools_json(t);
    let mut o = Map::new();
    o.insert("traj_id".into(), Value::String(t.traj_id.clone()));
    o.insert("source".into(), Value::String(t.source.clone()));
    for (k, v) in [
        ("domain", &t.domain),
        ("domain_source", &t.domain_source),
        ("reasoning_mode", &t.reasoning_mode),
        ("cluster_id", &t.cluster_id),
        ("parent_id", &t.parent_id),
        ("batch_id", &t.batch_id),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), Value::String(v.clone()));
        }
    }
    if let Some(r) = t.reward {
        o.insert("reward".into(), json!(r));
    }
    o.insert("messages".into(), Value::Array(messages));
    if !tools.is_empty() {
        o.insert("tools".into(), Value::Array(tools));
    }
    if !t.metadata.is_empty() {
        o.insert("metadata".into(), Value::Object(t.metadata.clone()));
    }
    Value::Object(o)
}

/// One line of the OpenAI chat fine-tuning file.
pub fn training_line(t: &Trajectory) -> Value {
    let mut o = json!({"messages": messages_json(t, false)});
    let tools = tools_json(t);
    if !tools.is_empty() {
        o["tools"] = Value::Array(tools);
    }
    o
}
