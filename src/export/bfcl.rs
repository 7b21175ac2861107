//! `tdscale export bfcl`: trajectories as BFCL question files with their ground truth.
//!
//! Each trajectory's shape picks its category: one user turn answered by one assistant message
//! with one call is `simple` (one tool offered) or `multiple` (several); with several calls in that
//! message, `parallel` or `parallel_multiple`; one user turn answered without any call while tools
//! are offered is `irrelevance`. Everything else (several user turns, or calls spread over several
//! assistant messages) becomes a BFCL-style `multi_turn` entry: one question list per user turn,
//! the function docs inline under `function`, and per turn the ground-truth calls as Python call
//! strings (`name(a='x', b=1)`) in `possible_answer/` — the shape of BFCL's multi-turn files, but
//! checked by comparing calls, since there is no executable backend class behind them. Every
//! string parses as Python: an argument named like a Python keyword is written
//! `name(**{'from': 'USD'})`, and a trajectory calling a function whose name is not a Python name
//! is skipped with that reason.
//!
//! Files: `BFCL_v4_<category>.json` (one JSON object per line, ids `<category>_<n>`) and, except
//! for irrelevance, `possible_answer/BFCL_v4_<category>.json` with the ground truth in BFCL's form
//! `{"func": {"param": [acceptable values]}}` (an optional parameter the call left out is `[""]`).
//! Function docs use BFCL's dialect (`dict`, `float`, `integer`, `array` with `items`, …); a
//! parameter's type follows the value in the reference call so that the reference passes BFCL's
//! type checks. Trajectories whose calls do not fit (arguments that are not a JSON object,
//! unknown tools, mixed number types in one array) are skipped and reported.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::target::{ExportTarget, WrittenFile, jsonl};
use crate::error::Result;
use crate::model::{ToolCall, ToolDef, Trajectory};

/// The categories, in file order.
pub const CATEGORIES: &[&str] = &[
    "simple",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "multi_turn",
];

/// What an export wrote.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BfclSummary {
    pub entries: BTreeMap<String, usize>,
    /// (traj_id, why) of trajectories left out.
    pub skipped: Vec<(String, String)>,
    pub files: Vec<WrittenFile>,
}

impl BfclSummary {
    /// The trajectories left out, a line each (the terminal's standard error).
    pub fn skipped_lines(&self) -> String {
        let mut out = String::new();
        for (id, why) in self.skipped.iter().take(10) {
            out.push_str(&format!("skipped {id}: {why}\n"));
        }
        if self.skipped.len() > 10 {
            out.push_str(&format!(
                "… and {} more skipped (see --json)\n",
                self.skipped.len() - 10
            ));
        }
        out
    }

    /// Entries per category and the files written to `to`.
    pub fn to_text(&self, to: &str) -> String {
        let mut out = String::new();
        for (cat, n) in &self.entries {
            out.push_str(&format!("{cat:<18} {n:>7} entries\n"));
        }
        out + &super::target::files_text(&self.files, to)
    }
}

fn bfcl_type_of_value(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        Value::Array(_) => "array",
        Value::Object(_) => "dict",
        _ => "string",
    }
}

fn bfcl_type_of_schema(s: &Value) -> &'static str {
    let t = crate::formats::tool_schema::primary_type(s);
    match t {
        "object" => "dict",
        "number" => "float",
        "integer" => "integer",
        "boolean" => "boolean",
        "array" => "array",
        _ => "string",
    }
}

/// The type of an array's items: from the values when there are any (all integers, or floats
/// mixed with integers that BFCL would reject), else from the schema.
fn items_type(
    values: Option<&Vec<Value>>,
    schema: &Value,
) -> std::result::Result<&'static str, String> {
    if let Some(vs) = values.filter(|v| !v.is_empty()) {
        let types: std::collections::BTreeSet<&str> = vs.iter().map(bfcl_type_of_value).collect();
        return match types.len() {
            1 => Ok(types.into_iter().next().expect("one")),
            _ => Err(format!("an array mixes {types:?}")),
        };
    }
    Ok(schema
        .get("items")
        .map(bfcl_type_of_schema)
        .unwrap_or("string"))
}

/// BFCL's doc of one parameter, typed by the value the reference calls pass when they pass one.
fn param_doc(schema: &Value, value: Option<&Value>) -> std::result::Result<Value, String> {
    let ty = match value {
        // A float parameter may take an integer value in BFCL's checker; keep the schema's word.
        Some(Value::Number(_)) if bfcl_type_of_schema(schema) == "float" => "float",
        Some(v) => bfcl_type_of_value(v),
        None => bfcl_type_of_schema(schema),
    };
    let mut o = Map::new();
    o.insert("type".into(), json!(ty));
    if let Some(d) = schema.get("description") {
        o.insert("description".into(), d.clone());
    }
    if let Some(e) = schema.get("enum") {
        o.insert("enum".into(), e.clone());
    }
    if ty == "array" {
        let it = items_type(value.and_then(Value::as_array), schema)?;
        o.insert("items".into(), json!({"type": it}));
    }
    Ok(Value::Object(o))
}

/// BFCL's function doc of a tool, given every argument object the reference passes to it.
pub fn function_doc(
    tool: &ToolDef,
    examples: &[&Map<String, Value>],
) -> std::result::Result<Value, String> {
    let schema: Value = tool
        .parameters
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(json!({"type": "object", "properties": {}}));
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Map::new();
    for (k, s) in &props {
        let v = examples.iter().find_map(|e| e.get(k));
        out.insert(k.clone(), param_doc(s, v)?);
    }
    for e in examples {
        if let Some(k) = e.keys().find(|k| !props.contains_key(*k)) {
            return Err(format!(
                "`{}` is called with `{k}`, which its schema does not declare",
                tool.name
            ));
        }
    }
    Ok(json!({
        "name": tool.name,
        "description": tool.description.clone().unwrap_or_default(),
        "parameters": {
            "type": "dict",
            "properties": out,
            "required": schema.get("required").cloned().unwrap_or(json!([])),
        },
    }))
}

/// The acceptable values of one argument, in BFCL's possible-answer form.
pub fn possible_values(v: &Value) -> Value {
    let dict = |m: &Map<String, Value>| {
        Value::Object(m.iter().map(|(k, x)| (k.clone(), json!([x]))).collect())
    };
    match v {
        Value::Object(m) => json!([dict(m)]),
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
            json!([a
                .iter()
                .map(|x| dict(x.as_object().expect("checked")))
                .collect::<Vec<_>>()])
        }
        other => json!([other]),
    }
}

/// One call's ground truth: every argument it passes, and `[""]` for parameters it leaves out.
pub fn ground_truth(call: &Map<String, Value>, name: &str, doc: &Value) -> Value {
    let mut params = Map::new();
    if let Some(props) = doc
        .pointer("/parameters/properties")
        .and_then(Value::as_object)
    {
        for k in props.keys() {
            params.insert(
                k.clone(),
                call.get(k).map(possible_values).unwrap_or(json!([""])),
            );
        }
    }
    json!({ name: params })
}

/// A string as a single-quoted Python literal: backslashes, quotes and every control character
/// escaped (a raw carriage return or NUL would end or break the literal).
fn py_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A JSON value as a Python literal.
///
/// ```
/// use tdscale::export::bfcl::py_literal;
/// assert_eq!(py_literal(&serde_json::json!({"a": [1, true, null, "it's"]})), r#"{'a': [1, True, None, 'it\'s']}"#);
/// assert_eq!(py_literal(&serde_json::json!("a\rb\u{0}")), r#"'a\rb\x00'"#);
/// ```
pub fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_string(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(py_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{}: {}", py_literal(&json!(k)), py_literal(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's keywords: names that cannot be a keyword argument or a function's name.
const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Whether `name` can be written as a Python name (ASCII identifier, not a keyword).
fn py_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !PY_KEYWORDS.contains(&name)
}

/// A call as a Python call string: `name(a='x', b=1)`. Arguments whose names cannot be Python
/// keyword arguments (`from`, `class`, `max-results`) are passed as `**{'from': 'USD'}`, which
/// Python parses and evaluates to the same call, so BFCL's checker (which parses and executes
/// ground-truth calls) accepts it. A function name that is not a Python name (dotted names are
/// fine) cannot be written at all: that is an error.
///
/// ```
/// use tdscale::export::bfcl::python_call;
/// let args = serde_json::json!({"amount": 500, "from": "USD", "to": "EUR"});
/// assert_eq!(
///     python_call("convert_currency", args.as_object().unwrap()).unwrap(),
///     "convert_currency(amount=500, to='EUR', **{'from': 'USD'})"
/// );
/// assert!(python_call("get-rate", args.as_object().unwrap()).is_err());
/// ```
pub fn python_call(name: &str, args: &Map<String, Value>) -> std::result::Result<String, String> {
    if !name.split('.').all(py_name) {
        return Err(format!(
            "`{name}` is not a Python function name, so its ground truth cannot be a Python call"
        ));
    }
    let mut parts: Vec<String> = vec![];
    let mut spread: Vec<String> = vec![];
    for (k, v) in args {
        if py_name(k) {
            parts.push(format!("{k}={}", py_literal(v)));
        } else {
            spread.push(format!("{}: {}", py_string(k), py_literal(v)));
        }
    }
    if !spread.is_empty() {
        parts.push(format!("**{{{}}}", spread.join(", ")));
    }
    Ok(format!("{name}({})", parts.join(", ")))
}

fn args_of(c: &ToolCall) -> std::result::Result<Map<String, Value>, String> {
    match serde_json::from_str(&c.arguments) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!(
            "the arguments of `{}` are not a JSON object",
            c.name
        )),
    }
}

/// One entry and its ground truth (`None` for irrelevance).
struct Entry {
    category: &'static str,
    question: Value,
    answer: Option<Value>,
}

fn entry(t: &Trajectory) -> std::result::Result<Entry, String> {
    let users: Vec<usize> = (0..t.messages.len())
        .filter(|&i| t.messages[i].role == "user")
        .collect();
    let call_msgs: Vec<usize> = (0..t.messages.len())
        .filter(|&i| !t.messages[i].tool_calls.is_empty())
        .collect();
    if users.is_empty() {
        return Err("no user message".into());
    }
    if t.tools.is_empty() {
        return Err("no tools offered: BFCL entries need function docs".into());
    }
    let all_calls: Vec<&ToolCall> = call_msgs
        .iter()
        .flat_map(|&i| t.messages[i].tool_calls.iter())
        .collect();
    let mut examples: BTreeMap<&str, Vec<Map<String, Value>>> = BTreeMap::new();
    for c in &all_calls {
        let Some(def) = t.tools.iter().find(|d| d.name == c.name) else {
            return Err(format!("calls `{}`, which is not among its tools", c.name));
        };
        if let Some(e) =
            crate::metrics::args_valid::argument_error(&c.arguments, def.parameters.as_deref())
        {
            return Err(format!(
                "the arguments of `{}` fail its schema: {e}",
                c.name
            ));
        }
        examples
            .entry(c.name.as_str())
            .or_default()
            .push(args_of(c)?);
    }
    let docs: Vec<Value> = t
        .tools
        .iter()
        .map(|d| {
            let ex: Vec<&Map<String, Value>> = examples
                .get(d.name.as_str())
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            function_doc(d, &ex)
        })
        .collect::<std::result::Result<_, _>>()?;
    let doc_of = |name: &str| {
        docs.iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or(json!({}))
    };
    let text = |i: usize| t.messages[i].content.clone().unwrap_or_default();
    let single_turn = users.len() == 1 && call_msgs.len() <= 1;
    if single_turn {
        let question = json!([[{"role": "user", "content": text(users[0])}]]);
        if all_calls.is_empty() {
            return Ok(Entry {
                category: "irrelevance",
                question: json!({"question": question, "function": docs}),
                answer: None,
            });
        }
        let truth: Vec<Value> = all_calls
            .iter()
            .map(|c| Ok(ground_truth(&args_of(c)?, &c.name, &doc_of(&c.name))))
            .collect::<std::result::Result<_, String>>()?;
        let category = match (all_calls.len() > 1, t.tools.len() > 1) {
            (false, false) => "simple",
            (false, true) => "multiple",
            (true, false) => "parallel",
            (true, true) => "parallel_multiple",
        };
        return Ok(Entry {
            category,
            question: json!({"question": question, "function": docs}),
            answer: Some(json!({"ground_truth": truth})),
        });
    }
    // Multi-turn: the messages from one user message to the next form a turn.
    let mut turns: Vec<Value> = vec![];
    let mut truth: Vec<Vec<String>> = vec![];
    for (k, &u) in users.iter().enumerate() {
        let end = users.get(k + 1).copied().unwrap_or(t.messages.len());
        turns.push(json!([{"role": "user", "content": text(u)}]));
        let mut calls = vec![];
        for m in &t.messages[u..end] {
            for c in &m.tool_calls {
                calls.push(python_call(&c.name, &args_of(c)?)?);
            }
        }
        truth.push(calls);
    }
    Ok(Entry {
        category: "multi_turn",
        question: json!({"question": turns, "function": docs, "initial_config": {}, "path": [], "involved_classes": []}),
        answer: Some(json!({"ground_truth": truth})),
    })
}

/// Writes the BFCL files of `trajectories` to `target` (manifest last).
pub async fn export(trajectories: &[Trajectory], mut target: ExportTarget) -> Result<BfclSummary> {
    let mut by_cat: BTreeMap<&str, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    let mut summary = BfclSummary::default();
    for t in trajectories {
        match entry(t) {
            Ok(e) => {
                let (qs, ans) = by_cat.entry(e.category).or_default();
                let id = format!("{}_{}", e.category, qs.len());
                let mut q = Map::new();
                q.insert("id".into(), json!(id));
                q.extend(e.question.as_object().expect("an object").clone());
                q.insert("traj_id".into(), json!(t.traj_id));
                qs.push(Value::Object(q));
                if let Some(a) = e.answer {
                    let mut o = Map::new();
                    o.insert("id".into(), json!(id));
                    o.extend(a.as_object().expect("an object").clone());
                    ans.push(Value::Object(o));
                }
            }
            Err(why) => summary.skipped.push((t.traj_id.clone(), why)),
        }
    }
    for cat in CATEGORIES {
        let Some((qs, ans)) = by_cat.get(cat) else {
            continue;
        };
        let name = format!("BFCL_v4_{cat}.json");
        target.write(&name, jsonl(qs), qs.len()).await?;
        if !ans.is_empty() {
            target
                .write(&format!("possible_answer/{name}"), jsonl(ans), ans.len())
                .await?;
        }
        summary.entries.insert(cat.to_string(), qs.len());
    }
    summary.files = target
        .finish(
            "bfcl",
            json!({"entries": summary.entries, "skipped": summary.skipped.len()}),
        )
        .await?;
    Ok(summary)
}
