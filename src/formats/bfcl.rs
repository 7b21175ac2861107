//! BFCL question files (`BFCL_v4_<category>.json`, one JSON object per line) with their ground
//! truth from the sibling `possible_answer/` file.
//!
//! - single-turn entries: the user turn(s), then one assistant message whose calls are the
//!   ground truth (several calls = a parallel call), each argument taking its first accepted
//!   value (`""` in BFCL means "may be omitted");
//! - multi-turn entries: per turn, the user message(s) then one assistant message per
//!   ground-truth call string (`cd(folder='document')`), positional arguments named from the
//!   class's function docs in `multi_turn_func_doc/`;
//! - answer-only entries (memory, web search): the expected answer as assistant text.
//!
//! The raw ground truth is kept in `metadata.possible_answer`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::fields::{Obj, RecordResult, kind};
use super::{ParseContext, base, openai, pylit, tool_schema};
use crate::model::{Message, ToolCall, ToolDef, Trajectory, id_text};

/// BFCL's multi-turn API classes and the function-doc file of each.
pub const CLASS_FILES: &[(&str, &str)] = &[
    ("GorillaFileSystem", "gorilla_file_system.json"),
    ("MathAPI", "math_api.json"),
    ("MessageAPI", "message_api.json"),
    ("TwitterAPI", "posting_api.json"),
    ("TicketAPI", "ticket_api.json"),
    ("TradingBot", "trading_bot.json"),
    ("TravelAPI", "travel_booking.json"),
    ("VehicleControlAPI", "vehicle_control.json"),
    ("WebSearchAPI", "web_search.json"),
    ("MemoryAPI", "memory_kv.json"),
];

/// Function docs of the multi-turn classes: class → its functions (raw BFCL docs).
#[derive(Debug, Default)]
pub struct FunctionDocs {
    pub by_class: HashMap<String, Vec<Value>>,
}

impl FunctionDocs {
    /// Loads `multi_turn_func_doc/` next to a question file, if it is there.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let mut by_class = HashMap::new();
        for (class, file) in CLASS_FILES {
            let p = dir.join(file);
            if !p.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&p)?;
            let docs: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            by_class.insert(class.to_string(), docs);
        }
        Ok(Self { by_class })
    }

    fn param_order(&self, classes: &[String], func: &str) -> Vec<String> {
        for c in classes {
            for d in self.by_class.get(c).into_iter().flatten() {
                if d.get("name").and_then(Value::as_str) == Some(func)
                    && let Some(Value::Object(p)) = d.pointer("/parameters/properties")
                {
                    return p.keys().cloned().collect();
                }
            }
        }
        vec![]
    }
}

/// Reads a `possible_answer` file into id → ground truth.
pub fn load_answers(path: &Path) -> std::io::Result<HashMap<String, Value>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line)
            && let (Some(id), Some(gt)) =
                (v.get("id").and_then(Value::as_str), v.get("ground_truth"))
        {
            out.insert(id.to_string(), gt.clone());
        }
    }
    Ok(out)
}

/// The first accepted value of a BFCL answer option list, recursively for nested dicts.
/// `None` when the only option is `""` (omit the argument).
fn first_option(options: &Value) -> Option<Value> {
    let pick = |v: &Value| -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter_map(|(k, o)| first_option(o).map(|x| (k.clone(), x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    };
    match options {
        Value::Array(opts) => opts.iter().find(|o| o.as_str() != Some("")).map(pick),
        other => Some(pick(other)),
    }
}

fn single_turn_calls(gt: &[Value], path: &str) -> RecordResult<Vec<ToolCall>> {
    let mut calls = vec![];
    for (k, c) in gt.iter().enumerate() {
        let o = Obj::of(c, path)?;
        for (name, params) in o.map {
            let Value::Object(params) = params else {
                return Err(format!(
                    "{path}[{k}].{name}: expected an argument map, found {}",
                    kind(params)
                ));
            };
            let args: Map<String, Value> = params
                .iter()
                .filter_map(|(p, opts)| first_option(opts).map(|v| (p.clone(), v)))
                .collect();
            calls.push(ToolCall {
                id: None,
                name: name.clone(),
                arguments: Value::Object(args).to_string(),
            });
        }
    }
    Ok(calls)
}

fn call_from_string(
    s: &str,
    classes: &[String],
    docs: Option<&FunctionDocs>,
) -> RecordResult<ToolCall> {
    let c = pylit::call(s).map_err(|e| format!("ground truth `{s}`: {e}"))?;
    let mut args = Map::new();
    let order = docs
        .map(|d| d.param_order(classes, &c.name))
        .unwrap_or_default();
    for (i, v) in c.positional.into_iter().enumerate() {
        let name = order.get(i).cloned().unwrap_or_else(|| format!("arg{i}"));
        args.insert(name, v);
    }
    args.extend(c.keywords);
    Ok(ToolCall {
        id: None,
        name: c.name,
        arguments: Value::Object(args).to_string(),
    })
}

fn catalog_tools(classes: &[String], docs: &FunctionDocs) -> RecordResult<Vec<ToolDef>> {
    let mut tools = vec![];
    for c in classes {
        for (i, d) in docs.by_class.get(c).into_iter().flatten().enumerate() {
            tools.push(tool_schema::tool_def(d, &format!("{c}[{i}]"))?.0);
        }
    }
    Ok(tools)
}

/// Parses one BFCL question.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    let id = o
        .get("id")
        .and_then(id_text)
        .ok_or("id: required id is missing")?;
    let turns = o
        .arr("question")?
        .ok_or("question: required list is missing")?;
    let classes: Vec<String> = o
        .arr("involved_classes")?
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let gt = ctx.bfcl_answers.as_ref().and_then(|a| a.get(&id)).cloned();
    let mut messages = vec![];
    let multi_turn = matches!(&gt, Some(Value::Array(a)) if a.first().is_some_and(Value::is_array));
    for (i, turn) in turns.iter().enumerate() {
        let tp = format!("question[{i}]");
        let Value::Array(turn_msgs) = turn else {
            return Err(format!(
                "{tp}: expected a list of messages, found {}",
                kind(turn)
            ));
        };
        let (msgs, _) = openai::parse_messages(turn_msgs, &tp)?;
        messages.extend(msgs);
        if multi_turn {
            let calls = gt
                .as_ref()
                .and_then(|g| g.get(i))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in calls {
                let s = c
                    .as_str()
                    .ok_or(format!("ground truth of turn {i}: expected a call string"))?;
                let call = call_from_string(s, &classes, ctx.bfcl_docs.as_deref())?;
                messages.push(Message {
                    role: "assistant".into(),
                    tool_calls: vec![call],
                    ..Default::default()
                });
            }
        }
    }
    match &gt {
        Some(Value::Array(a)) if !multi_turn && a.iter().all(Value::is_object) && !a.is_empty() => {
            let calls = single_turn_calls(a, "possible_answer")?;
            messages.push(Message {
                role: "assistant".into(),
                tool_calls: calls,
                ..Default::default()
            });
        }
        Some(Value::Array(a)) if !multi_turn && a.first().is_some_and(Value::is_string) => {
            messages.push(Message {
                role: "assistant".into(),
                content: a[0].as_str().map(str::to_string),
                ..Default::default()
            });
        }
        _ => {}
    }
    t.system = super::take_system(&mut messages);
    t.messages = messages;
    tool_schema::fill_tools(&mut t, o.get("function"), "function")?;
    if t.tools.is_empty()
        && let Some(docs) = &ctx.bfcl_docs
    {
        t.tools = catalog_tools(&classes, docs)?.into();
    }
    let category = id
        .rsplit_once('_')
        .map(|(c, _)| c.to_string())
        .unwrap_or_default();
    t.metadata
        .insert("bfcl_id".into(), Value::String(id.clone()));
    t.metadata
        .insert("bfcl_category".into(), Value::String(category));
    if let Some(g) = gt {
        t.metadata.insert("possible_answer".into(), g);
    }
    t.metadata.extend(o.rest(&["id", "question", "function"]));
    t.assign_id(Some(id));
    Ok(t)
}
