//! OpenAI Responses API records: `{"id", "model", "instructions", "tools": [...], "input": str |
//! [items], "output": [items]}`; the conversation is the input items, then the output items.
//! [`ItemReader`] also reads Codex CLI rollouts, whose lines carry the same items.
//!
//! Items: `message` (also without `type`: `{role, content}`), `reasoning` (summary and reasoning
//! texts → `reasoning` of the assistant message it leads to; an item with only encrypted content
//! is kept in metadata), `function_call` / `custom_tool_call` / `local_shell_call` /
//! `shell_call` / `apply_patch_call` (calls; consecutive ones are one assistant message), their
//! `*_output` items (tool results, paired by `call_id`), and the built-in tool items
//! (`web_search_call`, `file_search_call`, `code_interpreter_call`, `mcp_call`, …) kept in
//! metadata with the next message. Naming: `local_shell_call` → call `local_shell` with the
//! action as arguments, `shell_call` → `shell`, `apply_patch_call` → `apply_patch`; a custom
//! tool's free-text `input` is stored as the arguments `{"input": <text>}`.

use serde_json::{Map, Value, json};

use super::conv::Conv;
use super::fields::{Obj, RecordResult, kind};
use super::parts::{self, Dialect};
use super::{LABEL_KEYS, ParseContext, base, take_labels, tool_schema};
use crate::model::{ToolCall, Trajectory, id_text};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("instructions", "system"),
    ("input (text)", "a user message"),
    (
        "input[] / output[] message items",
        "messages (developer → system)",
    ),
    (
        "reasoning items",
        "messages[].reasoning (encrypted-only → metadata)",
    ),
    (
        "function_call / custom_tool_call / local_shell_call / shell_call",
        "messages[].tool_calls",
    ),
    ("*_output items", "tool messages, paired by call_id"),
    (
        "web_search_call and other built-in items",
        "metadata.message_fields.<i>.content_parts",
    ),
    (
        "input_image / input_file parts",
        "metadata.message_fields.<i>.content_parts",
    ),
    ("tools[] (function, custom, built-in)", "tools"),
    ("id", "traj_id"),
    ("model, usage, other keys", "metadata"),
];

const BUILTIN_ITEMS: &[&str] = &[
    "web_search_call",
    "file_search_call",
    "image_generation_call",
    "code_interpreter_call",
    "computer_call",
    "computer_call_output",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "item_reference",
    "compaction",
    "compaction_summary",
    "ghost_snapshot",
    "tool_search_call",
    "tool_search_output",
];

/// Reads a sequence of items into a conversation.
#[derive(Debug, Default)]
pub struct ItemReader {
    /// The assistant message being built, and whether it has text or calls yet.
    open: Option<(usize, bool)>,
}

impl ItemReader {
    fn assistant(&mut self, conv: &mut Conv) -> usize {
        match self.open {
            Some((a, _)) => a,
            None => {
                let a = conv.assistant();
                self.open = Some((a, false));
                a
            }
        }
    }

    fn used(&mut self) {
        if let Some((_, used)) = &mut self.open {
            *used = true;
        }
    }

    /// Reads one item found at `position` (its index, or its line in a session file). Fields of
    /// the item beyond what the columns hold are kept with the message as `items` entries.
    pub fn item(
        &mut self,
        conv: &mut Conv,
        it: &Value,
        position: usize,
        extra: Option<(&str, &Value)>,
        path: &str,
    ) -> RecordResult<()> {
        let o = Obj::of(it, path)?;
        let t = match o.str("type")? {
            Some(t) => t,
            None if o.get("role").is_some() => "message",
            None => return Err(format!("{path}: an item without `type`")),
        };
        let keep = |conv: &mut Conv, at: usize, consumed: &[&str]| {
            let mut entry = Map::new();
            entry.insert("position".into(), json!(position));
            entry.insert("type".into(), json!(t));
            if let Some((k, v)) = extra {
                entry.insert(k.to_string(), v.clone());
            }
            let rest = o.rest(consumed);
            let had_rest = !rest.is_empty();
            entry.extend(rest);
            if had_rest || extra.is_some() {
                conv.push_field(at, "items", Value::Object(entry));
            }
        };
        match t {
            "message" => {
                let role = o.req_str("role")?;
                let c = parts::read(
                    Dialect::Responses,
                    o.get("content"),
                    &format!("{path}.content"),
                )?;
                let at = match role {
                    "assistant" => {
                        let a = match self.open {
                            Some((a, false)) => a,
                            _ => {
                                let a = conv.assistant();
                                self.open = Some((a, true));
                                a
                            }
                        };
                        self.used();
                        if let Some(text) = &c.text {
                            conv.add_text(a, text);
                        }
                        Some(a)
                    }
                    "user" => {
                        self.open = None;
                        Some(conv.user(c.text.clone()))
                    }
                    "system" | "developer" => {
                        self.open = None;
                        conv.system(c.text.clone().unwrap_or_default())
                    }
                    other => return Err(format!("{path}.role: unknown role `{other}`")),
                };
                match at {
                    Some(a) => {
                        parts::keep_on(conv, a, c.kept, c.part_fields);
                        if c.refusal {
                            conv.field(a, "refusal", Value::Bool(true));
                        }
                        keep(conv, a, &["type", "role", "content"]);
                    }
                    None => {
                        let mut entry = o.rest(&["content"]);
                        parts::keep_in(&mut entry, c.kept, c.part_fields);
                        if let Some((k, v)) = extra {
                            entry.insert(k.to_string(), v.clone());
                        }
                        conv.system_field(&format!("item {position}"), Value::Object(entry));
                    }
                }
            }
            "reasoning" => {
                if matches!(self.open, Some((_, true))) {
                    self.open = None;
                }
                let mut texts = vec![];
                // Parts holding nothing but their text: the texts are in `reasoning`.
                let mut plain = true;
                for key in ["summary", "content"] {
                    match o.get(key) {
                        None => {}
                        Some(Value::Array(list)) => {
                            for (k, s) in list.iter().enumerate() {
                                match s.get("text") {
                                    Some(Value::String(x)) if !x.is_empty() => {
                                        texts.push(x.clone())
                                    }
                                    Some(Value::String(_)) | None => {}
                                    Some(other) => {
                                        return Err(format!(
                                            "{path}.{key}[{k}].text: expected a string, found {}",
                                            kind(other)
                                        ));
                                    }
                                }
                                if let Some(so) = s.as_object()
                                    && so.keys().any(|k| k != "type" && k != "text")
                                {
                                    plain = false;
                                }
                            }
                        }
                        Some(other) => {
                            return Err(format!(
                                "{path}.{key}: expected a list, found {}",
                                kind(other)
                            ));
                        }
                    }
                }
                if texts.is_empty() {
                    // Only encrypted content: kept whole, with the message it leads to.
                    let a = self.assistant(conv);
                    let mut item = it.clone();
                    if let (Some((k, v)), Value::Object(m)) = (extra, &mut item) {
                        m.insert(k.to_string(), v.clone());
                    }
                    conv.part(a, position, item);
                } else {
                    let a = self.assistant(conv);
                    for x in &texts {
                        conv.add_reasoning(a, x);
                    }
                    // Plain text parts are in `reasoning`; anything more is kept whole.
                    if plain {
                        keep(conv, a, &["type", "summary", "content"]);
                    } else {
                        keep(conv, a, &["type"]);
                    }
                }
            }
            "function_call" | "custom_tool_call" | "local_shell_call" | "shell_call"
            | "apply_patch_call" => {
                let a = self.assistant(conv);
                self.used();
                let (name, arguments, consumed): (String, String, &[&str]) = match t {
                    "function_call" => {
                        let name = o
                            .str("name")?
                            .filter(|n| !n.is_empty())
                            .ok_or_else(|| format!("{path}: a tool call has no function name"))?;
                        let args = match o.get("arguments") {
                            None => "{}".to_string(),
                            Some(Value::String(s)) => s.clone(),
                            Some(v @ Value::Object(_)) => v.to_string(),
                            Some(other) => {
                                return Err(format!(
                                    "{path}.arguments: expected JSON text, found {}",
                                    kind(other)
                                ));
                            }
                        };
                        (
                            name.to_string(),
                            args,
                            &["type", "name", "arguments", "call_id"],
                        )
                    }
                    "custom_tool_call" => {
                        let name = o
                            .str("name")?
                            .filter(|n| !n.is_empty())
                            .ok_or_else(|| format!("{path}: a tool call has no function name"))?;
                        let input = o.get("input").cloned().unwrap_or(Value::Null);
                        (
                            name.to_string(),
                            json!({ "input": input }).to_string(),
                            &["type", "name", "input", "call_id"],
                        )
                    }
                    "local_shell_call" => (
                        "local_shell".into(),
                        o.get("action").cloned().unwrap_or(json!({})).to_string(),
                        &["type", "action", "call_id"],
                    ),
                    "shell_call" => (
                        "shell".into(),
                        o.get("action").cloned().unwrap_or(json!({})).to_string(),
                        &["type", "action", "call_id"],
                    ),
                    _ => (
                        "apply_patch".into(),
                        o.get("operation").cloned().unwrap_or(json!({})).to_string(),
                        &["type", "operation", "call_id"],
                    ),
                };
                conv.add_call(
                    a,
                    ToolCall {
                        id: o.str("call_id")?.map(str::to_string),
                        name,
                        arguments,
                    },
                );
                keep(conv, a, consumed);
            }
            "function_call_output"
            | "custom_tool_call_output"
            | "local_shell_call_output"
            | "shell_call_output"
            | "apply_patch_call_output" => {
                self.open = None;
                // A local shell call's output names the call by its `id` (the call's call_id).
                let (id, id_key) = match o.str("call_id")? {
                    Some(id) => (Some(id.to_string()), "call_id"),
                    None if t == "local_shell_call_output" => {
                        (o.str("id")?.map(str::to_string), "id")
                    }
                    None => (None, "call_id"),
                };
                let mut error = false;
                let mut out_fields = Map::new();
                let (content, kept) = match o.get("output") {
                    None | Some(Value::Null) => (None, vec![]),
                    Some(Value::String(s)) => (Some(s.clone()), vec![]),
                    Some(Value::Array(list)) if list.iter().all(|p| p.get("type").is_some()) => {
                        let c = parts::read(
                            Dialect::Responses,
                            o.get("output"),
                            &format!("{path}.output"),
                        )?;
                        if !c.part_fields.is_empty() {
                            out_fields.insert("part_fields".into(), Value::Array(c.part_fields));
                        }
                        (c.text, c.kept)
                    }
                    Some(Value::Object(m)) if m.get("content").is_some_and(Value::is_string) => {
                        error = m.get("success") == Some(&Value::Bool(false));
                        let rest: Map<String, Value> = m
                            .iter()
                            .filter(|(k, _)| k.as_str() != "content")
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        if !rest.is_empty() {
                            out_fields.insert("output_fields".into(), Value::Object(rest));
                        }
                        (m["content"].as_str().map(str::to_string), vec![])
                    }
                    // Shell outputs and other structured outputs: their JSON text.
                    Some(other) => (Some(other.to_string()), vec![]),
                };
                let r = conv.result(id, content, error);
                for (p, part) in kept {
                    conv.part(r, p, part);
                }
                conv.fields(r, out_fields);
                keep(conv, r, &["type", "output", id_key]);
            }
            t if BUILTIN_ITEMS.contains(&t) => {
                let mut item = it.clone();
                if let (Some((k, v)), Value::Object(m)) = (extra, &mut item) {
                    m.insert(k.to_string(), v.clone());
                }
                match self.open {
                    Some((a, _)) => conv.part(a, position, item),
                    None => conv.defer_part(position, item),
                }
            }
            other => return Err(format!("{path}: unknown item type `{other}`")),
        }
        Ok(())
    }
}

/// True for a Responses record: `input` items or an `output` item list.
pub fn looks_like(m: &Map<String, Value>) -> bool {
    if m.contains_key("messages") {
        return false;
    }
    let items = |k: &str| {
        m.get(k).and_then(Value::as_array).is_some_and(|a| {
            a.iter()
                .all(|i| i.get("type").is_some() || i.get("role").is_some())
                && !a.is_empty()
        })
    };
    items("output") || items("input")
}

/// Tools: function tools are flat (`{type: function, name, parameters}`), custom tools have a
/// name and a format, built-in tools (`{type: web_search}`) are named by their type.
fn tools(t: &mut Trajectory, v: Option<&Value>) -> RecordResult<()> {
    let Some(Value::Array(list)) = v else {
        return tool_schema::fill_tools(t, v, "tools");
    };
    let named: Vec<Value> = list
        .iter()
        .map(|tool| match tool {
            Value::Object(m) if !m.contains_key("name") && !m.contains_key("function") => {
                let mut m = m.clone();
                if let Some(ty) = m.get("type").cloned() {
                    m.insert("name".into(), ty);
                }
                Value::Object(m)
            }
            other => other.clone(),
        })
        .collect();
    tool_schema::fill_tools(t, Some(&Value::Array(named)), "tools")
}

/// Parses one Responses record.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    take_labels(&mut t, &o)?;
    let mut conv = Conv::new();
    if let Some(s) = o.str("instructions")? {
        conv.system(s);
    }
    let mut reader = ItemReader::default();
    match o.get("input") {
        None => {}
        Some(Value::String(s)) => {
            conv.user(Some(s.clone()));
        }
        Some(Value::Array(items)) => {
            for (i, it) in items.iter().enumerate() {
                reader.item(&mut conv, it, i, None, &format!("input[{i}]"))?;
            }
        }
        Some(other) => {
            return Err(format!(
                "input: expected text or a list of items, found {}",
                kind(other)
            ));
        }
    }
    if let Some(items) = o.arr("output")? {
        let n = o.get("input").and_then(Value::as_array).map_or(1, Vec::len);
        for (i, it) in items.iter().enumerate() {
            reader.item(&mut conv, it, n + i, None, &format!("output[{i}]"))?;
        }
    }
    conv.finish_into(&mut t);
    tools(&mut t, o.get("tools"))?;
    let mut known: Vec<&str> = vec!["input", "output", "instructions", "tools", "id"];
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    o.assign_id(&mut t, o.get("id").and_then(id_text))?;
    Ok(t)
}
