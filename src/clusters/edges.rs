//! Dependency edges between the tools of one service: an output field of one tool matches an
//! input parameter of another by normalised name and compatible type, or both name the same
//! entity (a tool `create_ticket` returning `id` feeds `close_ticket(ticket_id)`; an
//! `account_id` output feeds a `from_account_id` input).

use serde_json::Value;

/// A tool as the edge finder sees it.
#[derive(Debug, Clone)]
pub struct ToolShape {
    pub tool_id: String,
    pub name: String,
    pub description: String,
    /// Input parameters: (name, JSON Schema type if any).
    pub inputs: Vec<(String, Option<String>)>,
    /// Output fields: (name, JSON Schema type if any).
    pub outputs: Vec<(String, Option<String>)>,
}

/// A found edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// The input parameter of `to` that receives the value.
    pub field: String,
    pub evidence: String,
    pub score: f64,
}

/// Normalises a field name: lower case, camelCase split, separators dropped, plural `s` of each
/// word removed (`OrderIDs` → `order_id`).
pub fn normalize(name: &str) -> String {
    let mut words: Vec<String> = vec![];
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = c.is_uppercase()
            && i > 0
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if !c.is_alphanumeric() || boundary {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            if !c.is_alphanumeric() {
                continue;
            }
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
        .into_iter()
        .map(|w| {
            if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
                w[..w.len() - 1].to_string()
            } else if w == "ids" {
                "id".into()
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// Fields (name, type) of an object schema's properties, one level deep plus the items of a
/// list of objects.
pub fn fields(schema: &Value) -> Vec<(String, Option<String>)> {
    let mut out = vec![];
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (k, v) in props {
        out.push((
            k.clone(),
            v.get("type").and_then(Value::as_str).map(str::to_string),
        ));
        if let Some(inner) = v
            .get("items")
            .and_then(|i| i.get("properties"))
            .and_then(Value::as_object)
        {
            for (k2, v2) in inner {
                out.push((
                    k2.clone(),
                    v2.get("type").and_then(Value::as_str).map(str::to_string),
                ));
            }
        }
    }
    out
}

fn compatible(a: &Option<String>, b: &Option<String>) -> bool {
    match (a.as_deref(), b.as_deref()) {
        (Some(x), Some(y)) => {
            x == y || matches!((x, y), ("integer", "number") | ("number", "integer"))
        }
        _ => true,
    }
}

/// The entity a tool acts on: the last word of its name (`create_ticket` → `ticket`,
/// `getOrderDetails` → `order` is not guessed: only the last word counts).
fn entity(tool_name: &str) -> String {
    let n = normalize(tool_name.rsplit('.').next().unwrap_or(tool_name));
    n.rsplit('_').next().unwrap_or(&n).to_string()
}

/// Generic outputs that name nothing in particular: they never make an edge by name alone.
const GENERIC: &[&str] = &[
    "status", "result", "message", "success", "value", "data", "type", "count", "name",
];

/// The edges between `tools` (all of one service).
pub fn find_edges(tools: &[ToolShape]) -> Vec<Edge> {
    let mut edges = vec![];
    for (i, a) in tools.iter().enumerate() {
        let ent = entity(&a.name);
        for (j, b) in tools.iter().enumerate() {
            if i == j {
                continue;
            }
            for (input, in_ty) in &b.inputs {
                let ni = normalize(input);
                if GENERIC.contains(&ni.as_str()) {
                    continue;
                }
                let by_schema = a
                    .outputs
                    .iter()
                    .find(|(o, ot)| normalize(o) == ni && compatible(ot, in_ty));
                let by_entity = a.outputs.iter().find(|(o, ot)| {
                    normalize(o) == "id" && ni == format!("{ent}_id") && compatible(ot, in_ty)
                });
                // `from_account_id` takes an `account_id`: a qualified input of an id output.
                let by_suffix = a.outputs.iter().find(|(o, ot)| {
                    let no = normalize(o);
                    no.ends_with("_id") && ni.ends_with(&format!("_{no}")) && compatible(ot, in_ty)
                });
                let described = a.outputs.is_empty()
                    && a.description.to_lowercase().contains("return")
                    && a.description
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|w| w == input.as_str());
                let edge = if let Some((o, _)) = by_schema {
                    Some((
                        format!("output `{o}` of {} matches input `{input}`", a.name),
                        1.0,
                    ))
                } else if let Some((o, _)) = by_entity {
                    Some((
                        format!(
                            "output `{o}` of {} is the {ent} id that `{input}` takes",
                            a.name
                        ),
                        0.8,
                    ))
                } else if let Some((o, _)) = by_suffix {
                    Some((
                        format!(
                            "output `{o}` of {} is the kind of id `{input}` takes",
                            a.name
                        ),
                        0.7,
                    ))
                } else if described {
                    Some((
                        format!("the description of {} says it returns `{input}`", a.name),
                        0.6,
                    ))
                } else {
                    None
                };
                if let Some((evidence, score)) = edge {
                    edges.push(Edge {
                        from: i,
                        to: j,
                        field: input.clone(),
                        evidence,
                        score,
                    });
                }
            }
        }
    }
    edges
}
