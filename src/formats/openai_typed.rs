//! OpenAI records of the usual shape read straight into the model, without a JSON tree.
//!
//! Most records of an OpenAI chat file hold plain messages: text or null content, calls with
//! their arguments as text, no field the model has no column for. [`read`] deserialises the
//! messages of such a record directly into [`Message`]s, which is most of the work of reading
//! it, and its tool list from the text of the list (parsed once per distinct list); it declines
//! any record with something else (content parts, other spellings, fields to
//! keep in metadata, repeated keys, invalid JSON), and [`super::openai::parse`] reads that one
//! from a `Value`, wording the errors and keeping every extra field. For every record it
//! accepts, both give the same trajectory (the tests compare them).

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::tool_schema::{ToolDefs, known_tool_list_at, tool_defs_of_text};
use crate::model::{Message, ToolCall, role_name};

/// A record of the usual shape, read.
#[derive(Debug)]
pub struct PlainRecord {
    /// Its top-level fields but `messages`, a `tools` list and the labels.
    pub fields: Map<String, Value>,
    /// Its label fields ([`super::LABEL_KEYS`]: the id, source, domain, reward …), kept apart
    /// from `fields`: they are most of a record's other fields, and a map would copy each key.
    pub labels: Vec<(&'static str, Value)>,
    pub messages: Vec<Message>,
    /// Its `tools` when they are a list (or one tool) of definitions.
    pub tools: Option<ToolDefs>,
}

/// A record of the usual shape, or `None` when the record is not of that shape.
///
/// ```
/// use tdscale::formats::openai_typed::read;
/// let r = read(r#"{"id": 7, "messages": [{"role": "user", "content": "hi"}],
///                  "tools": [{"name": "f"}]}"#).unwrap();
/// assert_eq!(r.fields["id"], 7);
/// assert_eq!(r.messages[0].content.as_deref(), Some("hi"));
/// assert_eq!(r.tools.unwrap().0[0].name, "f");
/// // Content parts are read by the general path.
/// assert!(read(r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}"#).is_none());
/// ```
pub fn read(text: &str) -> Option<PlainRecord> {
    read_with_known_tools(text).or_else(|| read_text(text, None))
}

/// Reads `text`; `known` is a list cut out of it and where its stand-in is.
fn read_text(text: &str, known: Option<(ToolDefs, usize)>) -> Option<PlainRecord> {
    let mut de = serde_json::Deserializer::from_str(text);
    let known = known.map(|(defs, at)| (defs, text[at..].as_ptr()));
    let record = de.deserialize_map(Record { known }).ok()?;
    de.end().ok()?;
    Some(record)
}

/// Stands in a record's text for a tool list matched byte for byte against one read before.
const KNOWN_LIST: &str = r#""\u0000tdscale: a known tool list""#;

/// Reads a record whose `tools` list is, byte for byte, one this thread read before: the list
/// is cut out of the text (a valid JSON value that prefixes the rest of the text ends exactly
/// there) and its parse reused, so its kilobytes are compared instead of scanned as JSON
/// (agent datasets repeat a domain's catalog on each of its records). `None` when no list
/// matched or the match was not the record's own `tools` (a nested key): the caller then reads
/// the text as it is.
pub fn read_with_known_tools(text: &str) -> Option<PlainRecord> {
    let bytes = text.as_bytes();
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    for key in TOOLS_KEY.find_iter(bytes) {
        let mut at = key + TOOLS_KEY.needle().len();
        at += bytes[at..].iter().take_while(|b| is_space(b)).count();
        if bytes.get(at) != Some(&b':') {
            continue;
        }
        at += 1;
        at += bytes[at..].iter().take_while(|b| is_space(b)).count();
        let Some((len, defs)) = known_tool_list_at(&text[at..], "tools") else {
            continue;
        };
        let mut cut = String::with_capacity(text.len() - len + KNOWN_LIST.len());
        cut.push_str(&text[..at]);
        cut.push_str(KNOWN_LIST);
        cut.push_str(&text[at + len..]);
        return read_text(&cut, Some((defs, at)));
    }
    None
}

/// The searches of every record, built once (building one costs as much as running it).
static TOOLS_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"tools\""));

/// Why the typed path stepped aside: never shown, the general path words its own errors.
fn declined<E: de::Error>() -> E {
    E::custom("not a record of the usual shape")
}

/// The visitor of a record; `known` is the list cut out of its text and where its stand-in
/// ([`KNOWN_LIST`]) begins: only the stand-in at that place is the cut one, the same text
/// elsewhere is the record's own.
struct Record {
    known: Option<(ToolDefs, *const u8)>,
}

impl<'de> Visitor<'de> for Record {
    type Value = PlainRecord;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        let mut labels: Vec<(&'static str, Value)> = vec![];
        let (mut messages, mut tools) = (None, None);
        // Borrowed keys (one spelled with escapes is left to the general path): only those kept
        // in `fields` are copied.
        while let Some(key) = a.next_key::<&'de str>()? {
            if key == "messages" {
                if messages.is_some() {
                    return Err(declined());
                }
                messages = Some(a.next_value::<Messages>()?.0);
            } else if key == "tools" {
                if tools.is_some() || fields.contains_key("tools") {
                    return Err(declined());
                }
                let raw: &'de serde_json::value::RawValue = a.next_value()?;
                let text = raw.get();
                if let Some((defs, _)) = self
                    .known
                    .take_if(|(_, at)| std::ptr::eq(*at, text.as_ptr()))
                {
                    // The list cut out is this record's own (else the record is read whole).
                    tools = Some(defs);
                } else if !text.starts_with(['[', '{']) {
                    fields.insert(
                        key.to_string(),
                        serde_json::from_str(text).map_err(de::Error::custom)?,
                    );
                } else if super::tools_text_tells_anthropic(text) {
                    // The general path reads the record in Anthropic's dialect.
                    return Err(declined());
                } else {
                    tools = Some(tool_defs_of_text(text, "tools").map_err(|_| declined())?);
                }
            } else if let Some(label) = super::LABEL_KEYS.iter().find(|k| **k == key) {
                let value = a.next_value()?;
                // A repeated key keeps its last value, as in the general path's map.
                match labels.iter_mut().find(|(k, _)| k == label) {
                    Some((_, old)) => *old = value,
                    None => labels.push((label, value)),
                }
            } else {
                // A repeated key keeps its last value, as in the general path's map.
                fields.insert(key.to_string(), a.next_value()?);
            }
        }
        if self.known.is_some() {
            return Err(declined());
        }
        Ok(PlainRecord {
            fields,
            labels,
            messages: messages.ok_or_else(declined)?,
            tools,
        })
    }
}

struct Messages(Vec<Message>);

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Vec<Message>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of messages")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Self::Value, S::Error> {
                let mut out = Vec::with_capacity(s.size_hint().unwrap_or(8));
                while let Some(m) = s.next_element::<PlainMessage>()? {
                    out.push(m.0);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(List).map(Messages)
    }
}

/// Marks each field once: a field given twice is left to the general path.
fn first<E: de::Error>(seen: &mut u8, bit: u8) -> Result<(), E> {
    if *seen & bit != 0 {
        return Err(declined());
    }
    *seen |= bit;
    Ok(())
}

/// A message with only the fields the model has columns for, each of the type the general
/// path reads it as (`content` a string or null, `error` a boolean or null).
struct PlainMessage(Message);

impl<'de> Deserialize<'de> for PlainMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Message;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Message, A::Error> {
                let mut m = Message::default();
                let mut role = None;
                let mut seen = 0u8;
                while let Some(key) = a.next_key::<&'de str>()? {
                    match key {
                        "role" => {
                            first(&mut seen, 1)?;
                            // Borrowed: a role spelled with escapes is left to the general path.
                            role = a.next_value::<Option<&'de str>>()?;
                        }
                        "content" => {
                            first(&mut seen, 2)?;
                            m.content = a.next_value()?;
                        }
                        "reasoning_content" => {
                            first(&mut seen, 4)?;
                            m.reasoning = a.next_value()?;
                        }
                        "tool_calls" => {
                            first(&mut seen, 8)?;
                            let calls: Option<Vec<PlainCall>> = a.next_value()?;
                            m.tool_calls =
                                calls.unwrap_or_default().into_iter().map(|c| c.0).collect();
                        }
                        "tool_call_id" => {
                            first(&mut seen, 16)?;
                            m.tool_call_id = a.next_value()?;
                        }
                        "name" => {
                            first(&mut seen, 32)?;
                            m.name = a.next_value()?;
                        }
                        "error" => {
                            first(&mut seen, 64)?;
                            m.error = a.next_value()?;
                        }
                        _ => return Err(declined()),
                    }
                }
                m.role = match role {
                    Some("function") => "tool".into(),
                    Some(r) => role_name(r),
                    None => return Err(declined()),
                };
                Ok(m)
            }
        }
        d.deserialize_map(Fields).map(PlainMessage)
    }
}

/// A call `{"id", "type": "function", "function": {"name", "arguments": "<text>"}}`.
struct PlainCall(ToolCall);

impl<'de> Deserialize<'de> for PlainCall {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Call;
        impl<'de> Visitor<'de> for Call {
            type Value = ToolCall;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a tool call")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<ToolCall, A::Error> {
                let mut id = None;
                let mut function = None;
                let mut seen = 0u8;
                while let Some(key) = a.next_key::<&'de str>()? {
                    match key {
                        "id" => {
                            first(&mut seen, 1)?;
                            id = a.next_value::<Option<String>>()?;
                        }
                        "type" => {
                            first(&mut seen, 2)?;
                            if a.next_value::<&'de str>()? != "function" {
                                return Err(declined());
                            }
                        }
                        "function" => {
                            first(&mut seen, 4)?;
                            function = Some(a.next_value::<PlainFunction>()?);
                        }
                        _ => return Err(declined()),
                    }
                }
                let f = function.ok_or_else(declined)?;
                Ok(ToolCall {
                    id,
                    name: f.name,
                    arguments: f.arguments,
                })
            }
        }
        d.deserialize_map(Call).map(PlainCall)
    }
}

/// `{"name": "<text>", "arguments": "<text>"}`.
struct PlainFunction {
    name: String,
    arguments: String,
}

impl<'de> Deserialize<'de> for PlainFunction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Function;
        impl<'de> Visitor<'de> for Function {
            type Value = PlainFunction;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a function call")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<PlainFunction, A::Error> {
                let (mut name, mut arguments) = (None, None);
                let mut seen = 0u8;
                while let Some(key) = a.next_key::<&'de str>()? {
                    match key {
                        "name" => {
                            first(&mut seen, 1)?;
                            name = Some(a.next_value::<String>()?);
                        }
                        "arguments" => {
                            first(&mut seen, 2)?;
                            arguments = Some(a.next_value::<String>()?);
                        }
                        _ => return Err(declined()),
                    }
                }
                Ok(PlainFunction {
                    name: name.ok_or_else(declined)?,
                    arguments: arguments.ok_or_else(declined)?,
                })
            }
        }
        d.deserialize_map(Function)
    }
}
