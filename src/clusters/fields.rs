//! The fields of a tool's JSON Schema, flattened: every property at any depth, through nested
//! objects, arrays of objects and `anyOf` / `oneOf` / `allOf` branches, with the JSON types it
//! may take (`anyOf [T, null]` is a nullable `T`), its description and its enumeration.

use serde_json::Value;

/// One property of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The top-level parameter it sits under (`tasks` for `tasks[].projectId`).
    pub top: String,
    /// Where it sits: `parent.page_id`, `tasks[].projectId`.
    pub path: String,
    /// Its own name (`projectId`).
    pub name: String,
    /// The JSON types it may take, `null` left out; empty when the schema says none.
    pub types: Vec<String>,
    /// The property holding it (`tasks` for `tasks[].projectId`), if nested.
    pub parent: Option<String>,
    pub description: String,
    /// It takes one of a closed list of values (`enum` or `const`).
    pub enumerated: bool,
    /// The values of a sibling `type` / `kind` property (`delete_object(type, id)`: the kinds
    /// of thing `id` may name).
    pub sibling_kinds: Vec<String>,
}

impl Field {
    /// Whether it can carry a scalar identifier: a string, a number, or a list of them.
    pub fn can_hold_identifier(&self) -> bool {
        self.types.is_empty()
            || self
                .types
                .iter()
                .any(|t| matches!(t.as_str(), "string" | "integer" | "number" | "array"))
    }

    pub fn has_type(&self, t: &str) -> bool {
        self.types.iter().any(|x| x == t)
    }
}

const MAX_DEPTH: usize = 8;

/// A schema and every schema of its `anyOf` / `oneOf` / `allOf` branches, recursively.
fn branches(schema: &Value) -> Vec<&Value> {
    let mut out = vec![schema];
    let mut k = 0;
    while k < out.len() {
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(list) = out[k].get(key).and_then(Value::as_array) {
                out.extend(list.iter().filter(|b| b.is_object()));
            }
        }
        k += 1;
    }
    out
}

/// The JSON types of a schema, over its branches, `null` left out.
fn types_of(schema: &Value) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for b in branches(schema) {
        match b.get("type") {
            Some(Value::String(t)) => out.push(t.clone()),
            Some(Value::Array(ts)) => {
                out.extend(ts.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => {}
        }
    }
    out.retain(|t| t != "null");
    out.sort();
    out.dedup();
    out
}

fn description_of(schema: &Value) -> String {
    branches(schema)
        .iter()
        .find_map(|b| b.get("description").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

fn enum_values(schema: &Value) -> (bool, Vec<String>) {
    let mut closed = false;
    let mut values = vec![];
    for b in branches(schema) {
        if let Some(list) = b.get("enum").and_then(Value::as_array) {
            closed = true;
            values.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
        }
        if let Some(c) = b.get("const") {
            closed = true;
            values.extend(c.as_str().map(str::to_string));
        }
    }
    (closed, values)
}

/// Every property of an object schema, nested ones included.
///
/// ```
/// use tdscale::clusters::fields::fields;
/// let schema = serde_json::json!({"type": "object", "properties": {
///     "tasks": {"type": "array", "items": {"type": "object", "properties": {"projectId": {"type": "string"}}}},
///     "page_id": {"anyOf": [{"type": "string"}, {"type": "null"}]}}});
/// let f = fields(&schema);
/// assert_eq!(f.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["tasks", "tasks[].projectId", "page_id"]);
/// assert_eq!(f[1].top, "tasks");
/// assert_eq!(f[2].types, ["string"]);
/// ```
pub fn fields(schema: &Value) -> Vec<Field> {
    let mut out = vec![];
    if schema.is_object() {
        for b in branches(schema) {
            if let Some(props) = b.get("properties").and_then(Value::as_object) {
                walk(props, "", None, None, 0, &mut out);
            }
        }
    }
    out
}

/// The properties of one object, then what nests under each.
fn walk(
    props: &serde_json::Map<String, Value>,
    path: &str,
    top: Option<&str>,
    parent: Option<&str>,
    depth: usize,
    out: &mut Vec<Field>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let kinds: Vec<String> = props
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "type" | "kind" | "object_type"))
        .flat_map(|(_, v)| enum_values(v).1)
        .collect();
    for (k, v) in props {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        let t = top.unwrap_or(k);
        out.push(Field {
            top: t.to_string(),
            path: p.clone(),
            name: k.clone(),
            types: types_of(v),
            parent: parent.map(str::to_string),
            description: description_of(v),
            enumerated: enum_values(v).0,
            sibling_kinds: kinds.clone(),
        });
        if !v.is_object() {
            continue;
        }
        for vb in branches(v) {
            if let Some(inner) = vb.get("properties").and_then(Value::as_object) {
                walk(inner, &p, Some(t), Some(k), depth + 1, out);
            }
            if let Some(items) = vb.get("items").filter(|i| i.is_object()) {
                for ib in branches(items) {
                    if let Some(inner) = ib.get("properties").and_then(Value::as_object) {
                        walk(inner, &format!("{p}[]"), Some(t), Some(k), depth + 1, out);
                    }
                }
            }
        }
    }
}
