//! Agent Data Protocol trajectories: `{"id", "schema_version", "content": [items], "details",
//! "available_custom_tools"?, "available_code_languages"?}`, items told apart by `class_`.
//!
//! A run of consecutive actions is one assistant message: `message_action` gives its text,
//! `api_action` a call (`function`, `kwargs` as the arguments, which must be an object),
//! `code_action` a call named `code_action` with arguments `{"language", "code"}` (our naming);
//! `description` and `reasoning_content` are reasoning. An observation right after a tool action,
//! one naming a call by `tool_call_id`, or one from the environment while a call waits, is that
//! call's result (data older than schema 1.3 marks such results as coming from the user); other
//! text observations are user messages (`system` ones the system prompt). A web observation's
//! result text is its accessibility tree (HTML, URL and viewport are kept with it); image
//! observations are kept in metadata. `details` and the other record fields go to metadata.

use serde_json::{Map, Value, json};

use super::conv::Conv;
use super::fields::{Obj, RecordResult, kind};
use super::parts::carries_text;
use super::{LABEL_KEYS, ParseContext, base, take_labels};
use crate::model::{ToolCall, Trajectory, id_text};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("content[] message_action", "assistant messages[].content"),
    (
        "content[] api_action (function, kwargs)",
        "messages[].tool_calls",
    ),
    (
        "content[] code_action (language, content)",
        "tool_calls `code_action` {language, code}",
    ),
    ("description, reasoning_content", "messages[].reasoning"),
    (
        "text_observation after an action / with tool_call_id",
        "tool messages",
    ),
    (
        "text_observation source user / system",
        "user messages / system",
    ),
    (
        "web_observation axtree (html, url → metadata)",
        "tool messages",
    ),
    (
        "image_observation",
        "metadata.message_fields.<i>.content_parts",
    ),
    ("id", "traj_id"),
    ("schema_version, details, available_*", "metadata"),
];

const ACTIONS: &[&str] = &["api_action", "code_action", "message_action"];
const OBSERVATIONS: &[&str] = &["text_observation", "image_observation", "web_observation"];

/// True for an ADP record: `content` items with `class_`.
pub fn looks_like(m: &Map<String, Value>) -> bool {
    m.get("content")
        .and_then(Value::as_array)
        .is_some_and(|a| a.first().is_some_and(|i| i.get("class_").is_some()))
}

/// Parses one ADP trajectory.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    take_labels(&mut t, &o)?;
    let items = o
        .arr("content")?
        .ok_or("content: required list is missing")?;
    let mut conv = Conv::new();
    let mut run: Option<usize> = None;
    let mut pending = 0usize;
    let mut prev_tool_action = false;
    for (i, it) in items.iter().enumerate() {
        let ip = format!("content[{i}]");
        let io = Obj::of(it, &ip)?;
        let class = io.str("class_")?.unwrap_or("");
        if ACTIONS.contains(&class) {
            let a = match run {
                Some(a) => a,
                None => {
                    let a = conv.assistant();
                    run = Some(a);
                    pending = 0;
                    a
                }
            };
            let mut consumed = vec!["class_"];
            for key in ["reasoning_content", "description"] {
                if let Some(s) = io.str(key)? {
                    conv.add_reasoning(a, s);
                    consumed.push(key);
                }
            }
            match class {
                "api_action" => {
                    let name = io
                        .str("function")?
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| format!("{ip}: a tool call has no function name"))?;
                    let kwargs = match io.get("kwargs") {
                        None => json!({}),
                        Some(k @ Value::Object(_)) => k.clone(),
                        Some(_) => {
                            return Err(format!(
                                "{ip}.kwargs: api_action kwargs is not a JSON object"
                            ));
                        }
                    };
                    conv.add_call(
                        a,
                        ToolCall {
                            id: io.str("tool_call_id")?.map(str::to_string),
                            name: name.to_string(),
                            arguments: kwargs.to_string(),
                        },
                    );
                    pending += 1;
                    consumed.extend(["function", "kwargs", "tool_call_id"]);
                    prev_tool_action = true;
                }
                "code_action" => {
                    let code = io.str("content")?.unwrap_or("");
                    let language = io.get("language").cloned().unwrap_or(Value::Null);
                    conv.add_call(
                        a,
                        ToolCall {
                            id: io.str("tool_call_id")?.map(str::to_string),
                            name: "code_action".into(),
                            arguments: json!({"language": language, "code": code}).to_string(),
                        },
                    );
                    pending += 1;
                    consumed.extend(["language", "content", "tool_call_id"]);
                    prev_tool_action = true;
                }
                _ => {
                    if let Some(text) = io.str("content")? {
                        conv.add_text(a, text);
                    }
                    consumed.push("content");
                    prev_tool_action = false;
                }
            }
            let mut entry = io.rest(&consumed);
            if !entry.is_empty() {
                entry.insert("position".into(), json!(i));
                entry.insert("class_".into(), json!(class));
                conv.push_field(a, "items", Value::Object(entry));
            }
            continue;
        }
        if !OBSERVATIONS.contains(&class) {
            return Err(
                if let Value::Object(m) = it
                    && carries_text(m)
                {
                    format!("{ip}: content item of unknown class `{class}` carries text")
                } else {
                    format!("{ip}: content item of unknown class `{class}`")
                },
            );
        }
        let after_action = prev_tool_action;
        prev_tool_action = false;
        run = None;
        let source = io.str("source")?;
        let (text, mut consumed): (Option<String>, Vec<&str>) = match class {
            "web_observation" => (
                io.str("axtree")?.map(str::to_string),
                vec!["class_", "axtree", "image_observation"],
            ),
            "image_observation" => (None, vec!["class_"]),
            _ => match io.get("content") {
                None | Some(Value::Null) => (None, vec!["class_", "content"]),
                Some(Value::String(s)) => (Some(s.clone()), vec!["class_", "content"]),
                Some(other) => {
                    return Err(format!(
                        "{ip}.content: expected text, found {}",
                        kind(other)
                    ));
                }
            },
        };
        let tool_call_id = io.str("tool_call_id")?.map(str::to_string);
        let is_result = pending > 0
            && (after_action
                || tool_call_id.is_some()
                || source == Some("environment")
                || class == "web_observation");
        let at = if is_result {
            pending -= 1;
            consumed.push("tool_call_id");
            Some(conv.result(tool_call_id, text, false))
        } else {
            pending = 0;
            match source {
                Some("system") => conv.system(text.unwrap_or_default()),
                Some("agent" | "assistant") => {
                    let a = conv.assistant();
                    conv.msg(a).content = text;
                    Some(a)
                }
                _ => Some(conv.user(text)),
            }
        };
        // The image of a web observation, or an image observation itself, is kept verbatim.
        let image = match class {
            "image_observation" => Some(it.clone()),
            "web_observation" => io.get("image_observation").cloned(),
            _ => None,
        };
        let rest = io.rest(&consumed);
        match at {
            Some(a) => {
                if let Some(img) = image {
                    conv.part(a, i, img);
                }
                if !rest.is_empty() {
                    let mut entry = rest;
                    entry.insert("position".into(), json!(i));
                    entry.insert("class_".into(), json!(class));
                    conv.push_field(a, "items", Value::Object(entry));
                }
            }
            None => {
                let mut entry = rest;
                if let Some(img) = image {
                    entry.insert("image".into(), img);
                }
                if !entry.is_empty() {
                    conv.system_field(&ip, Value::Object(entry));
                }
            }
        }
    }
    conv.finish_into(&mut t);
    let mut known: Vec<&str> = vec!["content", "id"];
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    o.assign_id(&mut t, o.get("id").and_then(id_text))?;
    Ok(t)
}
