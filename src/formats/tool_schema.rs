//! Tool definitions from every dialect, normalised to JSON Schema.
//!
//! BFCL writes `dict`, `float`, `tuple`, `any` and Java/JavaScript type names; xLAM writes a
//! flat map of parameters with Python type strings such as `List[str], optional`. Both become
//! plain JSON Schema (`object`, `number`, `array`, …) so one validator serves every source.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::fields::{Obj, RecordResult, kind};
use crate::model::{ToolDef, ToolList};

/// Maps one type name of the BFCL / xLAM / Java dialects to a JSON Schema type, or `None` for
/// "any type".
fn json_type(t: &str) -> Option<&'static str> {
    let t = t.trim().to_ascii_lowercase();
    let base = t.split([',', '[', '(']).next().unwrap_or("").trim();
    Some(match base {
        "string" | "str" | "char" | "character" | "text" | "date" | "datetime" => "string",
        "integer" | "int" | "long" | "short" | "byte" | "bigint" => "integer",
        "number" | "float" | "double" | "decimal" | "bigdecimal" => "number",
        "boolean" | "bool" => "boolean",
        "array" | "list" | "tuple" | "arraylist" | "set" | "sequence" | "iterable" => "array",
        "object" | "dict" | "hashmap" | "map" | "mapping" => "object",
        "null" | "none" => "null",
        _ => return None,
    })
}

/// Normalises a (possibly dialect) schema to JSON Schema, recursively.
/// The type a JSON Schema names: its `type`, the first non-null one of a type list, or `string`.
///
/// ```
/// use tdscale::formats::tool_schema::primary_type;
/// assert_eq!(primary_type(&serde_json::json!({"type": ["null", "integer"]})), "integer");
/// assert_eq!(primary_type(&serde_json::json!({})), "string");
/// ```
pub fn primary_type(schema: &Value) -> &str {
    match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ => "string",
    }
}

pub fn normalize_schema(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, val) in m {
        match (k.as_str(), val) {
            ("type", Value::String(t)) => {
                if let Some(jt) = json_type(t) {
                    out.insert("type".into(), Value::String(jt.into()));
                }
                if jt_differs(t) {
                    out.insert("x-source-type".into(), Value::String(t.clone()));
                }
            }
            ("properties", Value::Object(props)) => {
                let props: Map<String, Value> = props
                    .iter()
                    .map(|(n, s)| (n.clone(), normalize_schema(s)))
                    .collect();
                out.insert("properties".into(), Value::Object(props));
            }
            ("items" | "additionalProperties" | "not", s @ Value::Object(_)) => {
                out.insert(k.clone(), normalize_schema(s));
            }
            ("items" | "anyOf" | "oneOf" | "allOf", Value::Array(a)) => {
                out.insert(
                    k.clone(),
                    Value::Array(a.iter().map(normalize_schema).collect()),
                );
            }
            _ => {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    Value::Object(out)
}

/// True when the source type name is not already a JSON Schema type, so the original is kept.
fn jt_differs(t: &str) -> bool {
    !matches!(
        t,
        "string" | "integer" | "number" | "boolean" | "array" | "object" | "null"
    )
}

/// True for a flat xLAM-style parameter map: `{"p": {"type": "str", "description": ..}}`
/// with no `type`/`properties` at the top.
fn is_flat_parameter_map(m: &Map<String, Value>) -> bool {
    !m.contains_key("type")
        && !m.contains_key("properties")
        && !m.is_empty()
        && m.values().all(|p| matches!(p, Value::Object(o) if o.contains_key("type") || o.contains_key("description")))
}

/// Normalises the `parameters` of a tool to an object JSON Schema.
pub fn normalize_parameters(v: Option<&Value>, path: &str) -> RecordResult<Value> {
    match v {
        None | Some(Value::Null) => Ok(json!({"type": "object", "properties": {}})),
        Some(Value::String(s)) => {
            let parsed: Value = serde_json::from_str(s)
                .map_err(|e| format!("{path}: invalid JSON Schema text: {e}"))?;
            normalize_parameters(Some(&parsed), path)
        }
        Some(Value::Object(m)) if is_flat_parameter_map(m) => {
            let mut props = Map::new();
            let mut required = vec![];
            for (name, p) in m {
                let mut schema = normalize_schema(p);
                let optional = p
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.to_ascii_lowercase().contains("optional"));
                if let (Some(Value::String(t)), Value::Object(s)) = (p.get("type"), &mut schema)
                    && let Some(items) = list_item_type(t)
                {
                    s.insert("items".into(), json!({"type": items}));
                }
                if !optional && p.get("default").is_none() {
                    required.push(Value::String(name.clone()));
                }
                props.insert(name.clone(), schema);
            }
            Ok(json!({"type": "object", "properties": props, "required": required}))
        }
        Some(o @ Value::Object(_)) => {
            let mut s = normalize_schema(o);
            if let Value::Object(m) = &mut s {
                m.entry("type")
                    .or_insert_with(|| Value::String("object".into()));
            }
            Ok(s)
        }
        Some(other) => Err(format!(
            "{path}: expected a parameters schema object, found {}",
            kind(other)
        )),
    }
}

/// `List[str]` → `string`.
fn list_item_type(t: &str) -> Option<&'static str> {
    let lower = t.to_ascii_lowercase();
    let inner = lower.strip_prefix("list[")?.split(']').next()?;
    json_type(inner)
}

/// A tool definition in any of the usual shapes: OpenAI `{"type":"function","function":{..}}`,
/// plain `{name, description, parameters}`, MCP `{name, description, inputSchema}`, BFCL docs.
/// Returns the definition and the output schema when the source has one.
pub fn tool_def(
    v: &Value,
    path: &str,
) -> RecordResult<(ToolDef, Option<Value>, Map<String, Value>)> {
    let outer = Obj::of(v, path)?;
    let fpath = format!("{path}.function");
    let inner = match outer.get("function") {
        Some(f @ Value::Object(_)) => Obj::of(f, &fpath)?,
        _ => outer,
    };
    let name = inner.req_str("name")?;
    if name.trim().is_empty() {
        return Err(format!("{}: tool name is empty", inner.path));
    }
    let description = inner.str("description")?.map(str::to_string);
    let params_raw = inner
        .get("parameters")
        .or_else(|| inner.get("inputSchema"))
        .or_else(|| inner.get("input_schema"));
    let parameters = normalize_parameters(params_raw, &format!("{}.parameters", inner.path))?;
    let output = inner
        .get("outputSchema")
        .or_else(|| inner.get("output_schema"))
        .or_else(|| inner.get("response"))
        .map(normalize_schema);
    let known = [
        "name",
        "description",
        "parameters",
        "inputSchema",
        "input_schema",
        "outputSchema",
        "output_schema",
        "response",
        "type",
        "function",
    ];
    let mut extra = inner.rest(&known);
    if !std::ptr::eq(outer.map, inner.map) {
        extra.extend(outer.rest(&["type", "function"]));
    }
    if params_raw.is_some_and(|p| normalize_schema(p) != parameters) {
        extra.insert(
            "source_parameters".into(),
            params_raw.cloned().unwrap_or(Value::Null),
        );
    }
    Ok((
        ToolDef {
            name: name.to_string(),
            description,
            parameters: Some(parameters.to_string()),
        },
        output,
        extra,
    ))
}

/// Sets the tools of `t` from a tools field; what the definitions carried beyond name,
/// description and parameters goes to `metadata.tool_fields`.
pub fn fill_tools(
    t: &mut crate::model::Trajectory,
    v: Option<&Value>,
    path: &str,
) -> RecordResult<()> {
    set_tools(t, tool_defs(v, path)?);
    Ok(())
}

/// Sets the tools of `t` to parsed definitions, their extra fields to `metadata.tool_fields`.
pub fn set_tools(t: &mut crate::model::Trajectory, (tools, extra): ToolDefs) {
    t.tools = tools;
    if !extra.is_empty() {
        t.metadata.insert(
            "tool_fields".into(),
            Value::Array(extra.into_iter().map(Value::Object).collect()),
        );
    }
}

/// Tool definitions and, per tool, the fields they carried beyond the canonical ones.
pub type ToolDefs = (ToolList, Vec<Map<String, Value>>);

/// Parses a list of tool definitions (an array, or JSON text holding one).
///
/// A list given as JSON text is parsed once per thread and reused while the same text comes
/// again: agent datasets repeat one catalog on every record of a domain, and it is often most
/// of a record's bytes (see [`record_with_tools_as_text`]).
pub fn tool_defs(v: Option<&Value>, path: &str) -> RecordResult<ToolDefs> {
    let Some(v) = v else {
        return Ok(Default::default());
    };
    if let Value::String(text) = v {
        return tool_defs_of_text(text, path);
    }
    parse_tool_defs(v, path)
}

/// [`tool_defs`] of a list given as JSON text: parsed once per thread while the same text
/// comes again, and shared by the records that carry it.
pub fn tool_defs_of_text(text: &str, path: &str) -> RecordResult<ToolDefs> {
    PARSED_TOOL_LISTS.with_borrow_mut(|cache| cache.get_or_parse(text, path))
}

fn parse_tool_defs(v: &Value, path: &str) -> RecordResult<ToolDefs> {
    let v = super::fields::json_or_string(v, path)?;
    let items: &[Value] = match v.as_ref() {
        Value::Array(a) => a,
        Value::Null => &[],
        o @ Value::Object(_) => std::slice::from_ref(o),
        other => {
            return Err(format!(
                "{path}: expected a list of tools, found {}",
                kind(other)
            ));
        }
    };
    let mut defs = Vec::with_capacity(items.len());
    let mut extras = vec![];
    for (i, item) in items.iter().enumerate() {
        let (d, _, extra) = tool_def(item, &format!("{path}[{i}]"))?;
        if !extra.is_empty() {
            let mut e = extra;
            e.insert("tool".into(), Value::String(d.name.clone()));
            extras.push(e);
        }
        defs.push(d);
    }
    Ok((defs.into(), extras))
}

thread_local! {
    static PARSED_TOOL_LISTS: std::cell::RefCell<ToolListCache> = Default::default();
}

/// Lists shorter than this are not looked up by [`known_tool_list_at`]: matching them would
/// save little.
const KNOWN_PREFIX: usize = 128;

/// The tool list this thread parsed before (from its JSON text, under `path`) that `rest`
/// starts with byte for byte: the length of its text and its definitions. Lets a reader skip
/// scanning a list it has seen (a valid JSON value that prefixes the rest of a text ends
/// exactly there). Lists under 128 bytes and lists spelled Anthropic's way (`input_schema`)
/// are never found.
pub fn known_tool_list_at(rest: &str, path: &str) -> Option<(usize, ToolDefs)> {
    PARSED_TOOL_LISTS.with_borrow(|cache| cache.known_at(rest, path))
}

/// Tool lists parsed from JSON text, by text, and the texts of the lists that parsed by their
/// first [`KNOWN_PREFIX`] bytes. Cleared when it holds too much, so records that each carry a
/// different list (xLAM) cost one lookup, not memory.
#[derive(Default)]
struct ToolListCache {
    by_text: datafusion::common::HashMap<Arc<str>, (String, RecordResult<ToolDefs>)>,
    by_prefix: datafusion::common::HashMap<Box<[u8]>, Vec<Arc<str>>>,
    bytes: usize,
}

impl ToolListCache {
    const MAX_ENTRIES: usize = 256;
    const MAX_BYTES: usize = 16 << 20;

    fn get_or_parse(&mut self, text: &str, path: &str) -> RecordResult<ToolDefs> {
        if let Some((p, parsed)) = self.by_text.get(text)
            && p == path
        {
            return parsed.clone();
        }
        let parsed = parse_tool_defs(&Value::String(text.to_string()), path);
        if self.by_text.len() >= Self::MAX_ENTRIES || self.bytes + text.len() > Self::MAX_BYTES {
            *self = Self::default();
        }
        self.bytes += text.len();
        let key: Arc<str> = text.into();
        let new = self
            .by_text
            .insert(key.clone(), (path.to_string(), parsed.clone()))
            .is_none();
        // A list spelled Anthropic's way is never offered as known: its records are read by the
        // general path, which the typed reader (the only caller of `known_at`) leaves them to.
        if new
            && !super::tools_text_tells_anthropic(text)
            && let Some(prefix) = text.as_bytes().get(..KNOWN_PREFIX)
        {
            self.by_prefix.entry(prefix.into()).or_default().push(key);
        }
        parsed
    }

    fn known_at(&self, rest: &str, path: &str) -> Option<(usize, ToolDefs)> {
        let prefix = rest.as_bytes().get(..KNOWN_PREFIX)?;
        self.by_prefix
            .get(prefix)?
            .iter()
            .filter(|text| rest.starts_with(&***text))
            .find_map(|text| match self.by_text.get(text)? {
                (p, Ok(defs)) if p == path => Some((text.len(), defs.clone())),
                _ => None,
            })
    }
}

/// The value kept for a record's `tools`: its JSON text when it is a list or an object, else
/// the value itself.
fn tools_as_text<E: serde::de::Error>(raw: &serde_json::value::RawValue) -> Result<Value, E> {
    let text = raw.get();
    if text.starts_with(['[', '{']) {
        Ok(Value::String(text.to_string()))
    } else {
        serde_json::from_str(text).map_err(E::custom)
    }
}

/// Reads a record whose top level is an object, keeping the value of `tools` as its JSON text
/// (a string) when it is a list or an object, for [`tool_defs`] to parse once per distinct
/// list. Fails on anything that is not a JSON object; callers fall back to a plain parse for
/// the usual error message.
///
/// ```
/// use tdscale::formats::tool_schema::record_with_tools_as_text;
/// let m = record_with_tools_as_text(r#"{"id": 1, "tools": [{"name": "f"}]}"#).unwrap();
/// assert_eq!(m["tools"], serde_json::json!(r#"[{"name": "f"}]"#));
/// assert_eq!(m["id"], serde_json::json!(1));
/// ```
pub fn record_with_tools_as_text(text: &str) -> serde_json::Result<Map<String, Value>> {
    use serde::de::{Deserializer, MapAccess, Visitor};
    struct TopLevel;
    impl<'de> Visitor<'de> for TopLevel {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut m = Map::new();
            while let Some(key) = a.next_key::<String>()? {
                let value = if key == "tools" {
                    tools_as_text(a.next_value()?)?
                } else {
                    a.next_value()?
                };
                m.insert(key, value);
            }
            Ok(m)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let m = (&mut de).deserialize_map(TopLevel)?;
    de.end()?;
    Ok(m)
}
