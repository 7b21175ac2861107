//! Content given as a list of typed parts, in each dialect that has them: OpenAI chat parts
//! (`{type: text|input_text|output_text|refusal|image_url|…, text}`), LLaMA-Factory's typed parts
//! (`{type, value}` with `text`, `reasoning`, `tool_call`), Anthropic content blocks (`text`,
//! `thinking`, `tool_use`, `tool_result`, `image`…) and the Responses API's message content.
//!
//! Text parts are joined in order with no separator (what the dialects' own renderers do);
//! reasoning parts go to `reasoning`, calls to `tool_calls`; media and other parts without
//! text are kept verbatim with their position. A part of a type this module does not know that
//! carries text or a call is an error: storing the record without it would lose text silently.

use serde_json::{Map, Value, json};

use super::conv::Conv;
use super::fields::{RecordResult, kind};
use crate::model::ToolCall;

/// The dialect of a part list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    LlamaFactory,
    Anthropic,
    Responses,
}

/// What a list of parts holds.
#[derive(Debug, Default)]
pub struct Content {
    /// The text parts joined; `None` when there is none.
    pub text: Option<String>,
    pub reasoning: Vec<String>,
    pub calls: Vec<ToolCall>,
    /// Parts kept verbatim: (position, part).
    pub kept: Vec<(usize, Value)>,
    /// Fields of consumed parts beyond their text (signatures, annotations, cache control…),
    /// each `{"position", …fields}`.
    pub part_fields: Vec<Value>,
    /// A refusal part was part of the text.
    pub refusal: bool,
    /// LLaMA-Factory's first layout: tool lists given as a `tools` part.
    pub tools: Vec<Value>,
    /// Anthropic `tool_result` blocks, with their positions, for the caller to turn into results.
    pub results: Vec<(usize, Value)>,
}

impl Content {
    fn push_text(&mut self, s: &str) {
        match &mut self.text {
            Some(t) => t.push_str(s),
            None => self.text = Some(s.to_string()),
        }
    }

    fn keep_fields(&mut self, position: usize, part: &Map<String, Value>, consumed: &[&str]) {
        let rest: Map<String, Value> = part
            .iter()
            .filter(|(k, _)| !consumed.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            let mut entry = Map::new();
            entry.insert("position".into(), json!(position));
            entry.extend(rest);
            self.part_fields.push(Value::Object(entry));
        }
    }
}

/// Keeps what of a part list made no column on message `i`: the parts kept verbatim
/// (`content_parts`) and the other fields of the consumed parts (`part_fields`).
pub fn keep_on(conv: &mut Conv, i: usize, kept: Vec<(usize, Value)>, part_fields: Vec<Value>) {
    for (p, part) in kept {
        conv.part(i, p, part);
    }
    for f in part_fields {
        conv.push_field(i, "part_fields", f);
    }
}

/// The same as entries of `entry`, for a part list that makes no message.
pub fn keep_in(entry: &mut Map<String, Value>, kept: Vec<(usize, Value)>, part_fields: Vec<Value>) {
    if !kept.is_empty() {
        let parts = kept
            .into_iter()
            .map(|(p, part)| json!({"position": p, "part": part}))
            .collect();
        entry.insert("content_parts".into(), Value::Array(parts));
    }
    if !part_fields.is_empty() {
        entry.insert("part_fields".into(), Value::Array(part_fields));
    }
}

/// True when a part of an unknown type carries text (or a call) that a reader would lose.
pub fn carries_text(part: &Map<String, Value>) -> bool {
    ["text", "value", "refusal", "content", "thinking"]
        .iter()
        .any(|k| matches!(part.get(*k), Some(Value::String(s)) if !s.is_empty()))
        || (part.contains_key("name")
            && (part.contains_key("input") || part.contains_key("arguments")))
}

const MEDIA: &[&str] = &[
    "image_url",
    "input_image",
    "input_audio",
    "input_file",
    "file",
    "image",
    "audio",
    "video",
    "video_url",
    "audio_url",
    "document",
];

fn unknown(
    c: &mut Content,
    d: Dialect,
    i: usize,
    part: &Value,
    o: &Map<String, Value>,
    t: &str,
    path: &str,
) -> RecordResult<()> {
    if carries_text(o) {
        let what = match d {
            Dialect::Anthropic => "content block",
            _ => "content part",
        };
        return Err(format!(
            "{path}[{i}]: {what} of unknown type `{t}` carries text"
        ));
    }
    c.kept.push((i, part.clone()));
    Ok(())
}

fn text_of<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    t: &str,
    i: usize,
    path: &str,
) -> RecordResult<&'a str> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(format!(
            "{path}[{i}]: {} `{t}` part has no text",
            if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            }
        )),
    }
}

/// Reads a `{"name", "arguments"}` call written as JSON text (LLaMA-Factory `tool_call`).
fn lf_calls(
    value: &Value,
    t: &str,
    i: usize,
    path: &str,
) -> RecordResult<Vec<(ToolCall, Map<String, Value>)>> {
    let parsed: Value = match value {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|e| format!("{path}[{i}]: `{t}` part value is not valid JSON ({e})"))?,
        other => other.clone(),
    };
    let items = match parsed {
        Value::Array(a) if t == "tool_calls" => a,
        other => vec![other],
    };
    let mut out = vec![];
    for item in items {
        let ok = matches!(&item, Value::Object(m) if m.contains_key("name") && m.contains_key("arguments"));
        let Value::Object(mut m) = item else {
            return Err(format!(
                "{path}[{i}]: `{t}` part value must be a JSON object with `name` and `arguments`"
            ));
        };
        if !ok {
            return Err(format!(
                "{path}[{i}]: `{t}` part value must be a JSON object with `name` and `arguments`"
            ));
        }
        let name = match m.remove("name") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(format!("{path}[{i}]: a tool call has no function name")),
        };
        let arguments = match m.remove("arguments") {
            Some(Value::String(s)) => s,
            Some(v @ (Value::Object(_) | Value::Null)) => {
                if v.is_null() {
                    "{}".into()
                } else {
                    v.to_string()
                }
            }
            Some(other) => {
                return Err(format!(
                    "{path}[{i}]: `{t}` arguments must be a JSON object, found {}",
                    kind(&other)
                ));
            }
            None => "{}".into(),
        };
        let id = match m.remove("id") {
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                m.insert("id".into(), other);
                None
            }
            None => None,
        };
        out.push((
            ToolCall {
                id,
                name,
                arguments,
            },
            m,
        ));
    }
    Ok(out)
}

/// Reads a content value: a string, null, or a list of parts of dialect `d`.
pub fn read(d: Dialect, content: Option<&Value>, path: &str) -> RecordResult<Content> {
    let mut c = Content::default();
    let parts = match content {
        None | Some(Value::Null) => return Ok(c),
        Some(Value::String(s)) => {
            c.text = Some(s.clone());
            return Ok(c);
        }
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(format!(
                "{path}: expected a string or a list of parts, found {}",
                kind(other)
            ));
        }
    };
    for (i, part) in parts.iter().enumerate() {
        let o = match part {
            Value::String(s) => {
                c.push_text(s);
                continue;
            }
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "{path}[{i}]: expected a content part, found {}",
                    kind(other)
                ));
            }
        };
        let t = o.get("type").and_then(Value::as_str).unwrap_or("");
        match (d, t) {
            // Text, in every dialect's spelling.
            (Dialect::LlamaFactory, "text") => {
                let s = text_of(o, "value", t, i, path)?;
                c.push_text(s);
                c.keep_fields(i, o, &["type", "value"]);
            }
            (_, "text" | "input_text" | "output_text") => {
                let s = text_of(o, "text", t, i, path)?;
                c.push_text(s);
                c.keep_fields(i, o, &["type", "text"]);
            }
            (Dialect::OpenAi | Dialect::Responses | Dialect::Anthropic, "refusal") => {
                let s = text_of(o, "refusal", t, i, path)?;
                c.push_text(s);
                c.refusal = true;
                c.keep_fields(i, o, &["type", "refusal"]);
            }
            // Reasoning.
            (Dialect::LlamaFactory, "reasoning") => {
                let s = text_of(o, "value", t, i, path)?;
                c.reasoning.push(s.to_string());
                c.keep_fields(i, o, &["type", "value"]);
            }
            (Dialect::Anthropic, "thinking") => {
                let s = text_of(o, "thinking", t, i, path)?;
                c.reasoning.push(s.to_string());
                c.keep_fields(i, o, &["type", "thinking"]);
            }
            (Dialect::Anthropic, "redacted_thinking") => c.kept.push((i, part.clone())),
            // Calls.
            (Dialect::LlamaFactory, "tool_call" | "tool_calls") => {
                for (call, rest) in lf_calls(o.get("value").unwrap_or(&Value::Null), t, i, path)? {
                    c.calls.push(call);
                    if !rest.is_empty() {
                        let mut entry = Map::new();
                        entry.insert("position".into(), json!(i));
                        entry.insert("call_fields".into(), Value::Object(rest));
                        c.part_fields.push(Value::Object(entry));
                    }
                }
                c.keep_fields(i, o, &["type", "value"]);
            }
            (Dialect::LlamaFactory, "tools") => {
                c.tools.push(o.get("value").cloned().unwrap_or(Value::Null));
                c.keep_fields(i, o, &["type", "value"]);
            }
            (Dialect::Anthropic, "tool_use" | "server_tool_use") => {
                let name = match o.get("name") {
                    Some(Value::String(s)) if !s.is_empty() => s.clone(),
                    _ => return Err(format!("{path}[{i}]: a tool call has no function name")),
                };
                let input = match o.get("input") {
                    Some(v @ Value::Object(_)) => v.to_string(),
                    _ => return Err(format!("{path}[{i}]: tool_use input is not a JSON object")),
                };
                c.calls.push(ToolCall {
                    id: o.get("id").and_then(Value::as_str).map(str::to_string),
                    name,
                    arguments: input,
                });
                let id_is_text = o.get("id").is_none_or(Value::is_string);
                let consumed: &[&str] = if id_is_text {
                    &["type", "name", "input", "id"]
                } else {
                    &["type", "name", "input"]
                };
                c.keep_fields(i, o, consumed);
                if t == "server_tool_use" {
                    c.part_fields
                        .push(json!({"position": i, "type": "server_tool_use"}));
                }
            }
            (Dialect::Anthropic, "tool_result") => c.results.push((i, part.clone())),
            // Media and other parts without text: kept verbatim.
            (_, t) if MEDIA.contains(&t) => c.kept.push((i, part.clone())),
            (_, t) => unknown(&mut c, d, i, part, o, t, path)?,
        }
    }
    Ok(c)
}

/// The content of an Anthropic `tool_result` block: a string, or text blocks joined (other
/// blocks kept verbatim with their positions).
pub fn tool_result_content(block: &Value, path: &str) -> RecordResult<Content> {
    read(
        Dialect::Anthropic,
        block.get("content"),
        &format!("{path}.content"),
    )
}
