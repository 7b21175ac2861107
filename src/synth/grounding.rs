//! Grounded tool simulation: a synthesized tool result is built from a result the tool really
//! returned in the corpus, so it looks like the service's own answers and the values a blueprint
//! plans to flow from one call to the next are in it by construction.
//!
//! For a call, the simulator takes the observed call of the same tool whose arguments are
//! nearest (most arguments equal, then most shared names; the first observed wins a tie), and
//! adapts its result:
//! - **echo**: where the observed result repeats one of the observed call's string arguments
//!   (three characters or more) as a whole value, the new call's argument takes its place;
//! - **required values**: each field the blueprint needs the result to produce is set: an
//!   existing top-level field of that name takes the value; a result that already holds the value
//!   is left as it is; else the first nested field of that name takes it; else the field is
//!   added (a result that is not a JSON object is wrapped as `{"result": …, field: value}`).
//!
//! A result that needed no change is returned byte for byte as observed. A tool never observed
//! answers `{"status": "ok"}` with the fields of its output schema filled by the generator and the
//! required values. The planner computes its targets from these same results, so a rollout by
//! the offline backend reaches exactly the planned reasoning mode and complexity.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::blueprint::value_for;
use crate::model::Trajectory;
use crate::rng::Rng;

/// The error a call planned to fail first answers with.
pub const RETRY_ERROR: &str = "temporarily unavailable, please retry";

/// Observed calls kept per tool.
pub const MAX_EXAMPLES: usize = 200;

/// One observed call: its arguments and what the tool returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub arguments: Map<String, Value>,
    pub result: String,
}

/// What the simulator knows of the tools: observed calls and output schemas, by tool name.
#[derive(Debug, Clone, Default)]
pub struct Grounding {
    examples: HashMap<String, Vec<Example>>,
    output_schemas: HashMap<String, Value>,
    /// Seed of the generated values of tools never observed (the offline backend's seed).
    pub seed: u64,
}

/// The text of a JSON value as it appears inside a result (strings without quotes).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn hash_seed(seed: u64, text: &str) -> u64 {
    let d = Sha256::digest(text.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes")) ^ seed
}

/// How alike two argument objects are: 4 per equal argument, 1 per argument both name with
/// different values, −1 per argument only one of them names.
fn similarity(a: &Map<String, Value>, b: &Map<String, Value>) -> i64 {
    let mut s = 0;
    for (k, v) in a {
        s += match b.get(k) {
            Some(w) if w == v => 4,
            Some(_) => 1,
            None => -1,
        };
    }
    s - b.keys().filter(|k| !a.contains_key(*k)).count() as i64
}

fn echoable(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.chars().count() >= 3)
}

/// Replaces every leaf equal to `old` by `new` (all of them: no short circuit); whether one was.
fn replace_leaves(v: &mut Value, old: &Value, new: &Value) -> bool {
    match v {
        x if x == old => {
            *x = new.clone();
            true
        }
        Value::Array(a) => {
            a.iter_mut()
                .map(|x| replace_leaves(x, old, new))
                .filter(|&replaced| replaced)
                .count()
                > 0
        }
        Value::Object(m) => {
            m.values_mut()
                .map(|x| replace_leaves(x, old, new))
                .filter(|&replaced| replaced)
                .count()
                > 0
        }
        _ => false,
    }
}

/// Sets the first field `field` below the top level (depth first, in order); whether there was one.
fn set_nested(v: &mut Value, field: &str, value: &Value, top: bool) -> bool {
    match v {
        Value::Object(m) => {
            if !top && let Some(slot) = m.get_mut(field) {
                *slot = value.clone();
                return true;
            }
            m.values_mut().any(|x| set_nested(x, field, value, false))
        }
        Value::Array(a) => a.iter_mut().any(|x| set_nested(x, field, value, false)),
        _ => false,
    }
}

/// An observed result adapted to a new call (see the module documentation).
///
/// ```
/// use tdscale::synth::grounding::ground;
/// use serde_json::json;
/// let seen = r#"{"reservation_id": "ZFA04Y", "user_id": "mia_li_3668", "cabin": "economy"}"#;
/// let was = json!({"reservation_id": "ZFA04Y"});
/// let now = json!({"reservation_id": "Q0ZF0J"});
/// let out = ground(seen, was.as_object().unwrap(), now.as_object().unwrap(), &json!({"user_id": "ana_ito_1234"}).as_object().unwrap());
/// assert_eq!(out, r#"{"reservation_id":"Q0ZF0J","user_id":"ana_ito_1234","cabin":"economy"}"#);
/// // Nothing to change: the observed text as it was.
/// assert_eq!(ground(seen, was.as_object().unwrap(), was.as_object().unwrap(), &Default::default()), seen);
/// ```
pub fn ground(
    result: &str,
    example_args: &Map<String, Value>,
    args: &Map<String, Value>,
    produces: &Map<String, Value>,
) -> String {
    let mut parsed: Option<Value> = serde_json::from_str(result).ok();
    let mut text = result.to_string();
    if let Some(v) = parsed.as_mut() {
        let mut changed = false;
        for (k, new) in args {
            if let Some(old) = example_args.get(k)
                && old != new
                && echoable(old)
                && echoable(new)
            {
                changed |= replace_leaves(v, old, new);
            }
        }
        if changed {
            text = v.to_string();
        }
    }
    for (field, value) in produces {
        if let Some(Value::Object(m)) = parsed.as_mut()
            && let Some(slot) = m.get_mut(field)
        {
            if slot != value {
                *slot = value.clone();
                text = parsed.as_ref().expect("an object").to_string();
            }
            continue;
        }
        let wanted = value_text(value);
        if !wanted.is_empty() && text.contains(&wanted) {
            continue;
        }
        match parsed.as_mut() {
            Some(v @ Value::Object(_)) => {
                if !set_nested(v, field, value, true)
                    && let Value::Object(m) = v
                {
                    m.insert(field.clone(), value.clone());
                }
            }
            _ => {
                let inner = parsed.take().unwrap_or_else(|| json!(text));
                let mut m = Map::new();
                m.insert("result".into(), inner);
                m.insert(field.clone(), value.clone());
                parsed = Some(Value::Object(m));
            }
        }
        text = parsed.as_ref().expect("set above").to_string();
    }
    text
}

/// The result of a tool nobody observed: `status: ok`, the output schema's fields, the required
/// values.
fn generated(
    tool: &str,
    args: &Map<String, Value>,
    produces: &Map<String, Value>,
    output_schema: Option<&Value>,
    seed: u64,
) -> String {
    let mut rng = Rng::new(hash_seed(
        seed,
        &format!("{tool}{}", Value::Object(args.clone())),
    ));
    let mut out = Map::new();
    out.insert("status".into(), "ok".into());
    if let Some(props) = output_schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for (k, s) in props {
            out.insert(k.clone(), value_for(s, k, &mut rng));
        }
    }
    for (k, v) in produces {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out).to_string()
}

/// What the simulator answers: from the nearest example when there is one, else generated.
pub fn simulate(
    tool: &str,
    args: &Map<String, Value>,
    produces: &Map<String, Value>,
    nearest: Option<&Example>,
    output_schema: Option<&Value>,
    seed: u64,
) -> String {
    match nearest {
        Some(e) => ground(&e.result, &e.arguments, args, produces),
        None => generated(tool, args, produces, output_schema, seed),
    }
}

impl Grounding {
    /// An empty grounding: every tool answers with generated results.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            ..Default::default()
        }
    }

    /// Records an observed call (arguments that are not a JSON object are left out).
    pub fn add(&mut self, tool: &str, arguments: &str, result: &str) {
        if let Ok(Value::Object(arguments)) = serde_json::from_str(arguments) {
            self.examples
                .entry(tool.to_string())
                .or_default()
                .push(Example {
                    arguments,
                    result: result.to_string(),
                });
        }
    }

    /// Records the calls of a trajectory that got a result that is not an error.
    pub fn add_trajectory(&mut self, t: &Trajectory) {
        let mut pending: Vec<(usize, Option<String>)> = vec![];
        let mut calls: Vec<(&str, &str)> = vec![];
        for m in &t.messages {
            match m.role.as_ref() {
                "assistant" => {
                    pending.clear();
                    for c in &m.tool_calls {
                        pending.push((calls.len(), c.id.clone()));
                        calls.push((c.name.as_str(), c.arguments.as_str()));
                    }
                }
                "tool" => {
                    let by_id = m
                        .tool_call_id
                        .as_ref()
                        .and_then(|id| pending.iter().position(|(_, p)| p.as_ref() == Some(id)));
                    let Some(i) = by_id.or((!pending.is_empty()).then_some(0)) else {
                        continue;
                    };
                    let (k, _) = pending.remove(i);
                    let content = m.content.as_deref().unwrap_or_default();
                    let error = m
                        .error
                        .unwrap_or_else(|| crate::metrics::messages::is_error_text(content));
                    if !error {
                        self.add(calls[k].0, calls[k].1, content);
                    }
                }
                _ => pending.clear(),
            }
        }
    }

    /// Sets a tool's output schema (the generator fills it for tools never observed).
    pub fn set_output_schema(&mut self, tool: &str, schema: Value) {
        self.output_schemas.insert(tool.to_string(), schema);
    }

    /// Drops repeated examples and keeps at most [`MAX_EXAMPLES`] per tool, in the order added.
    pub fn finish(&mut self) {
        for v in self.examples.values_mut() {
            let mut seen = std::collections::HashSet::new();
            v.retain(|e| {
                seen.insert((
                    Value::Object(e.arguments.clone()).to_string(),
                    e.result.clone(),
                ))
            });
            v.truncate(MAX_EXAMPLES);
        }
    }

    /// The observed calls of a tool.
    pub fn examples(&self, tool: &str) -> &[Example] {
        self.examples.get(tool).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The output schema of a tool, if known.
    pub fn output_schema(&self, tool: &str) -> Option<&Value> {
        self.output_schemas.get(tool)
    }

    /// The `k` observed calls of `tool` nearest to `args`, nearest first.
    pub fn nearest(&self, tool: &str, args: &Map<String, Value>, k: usize) -> Vec<&Example> {
        let mut scored: Vec<(i64, usize, &Example)> = self
            .examples(tool)
            .iter()
            .enumerate()
            .map(|(i, e)| (similarity(args, &e.arguments), i, e))
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, _, e)| e).collect()
    }

    /// The result the offline simulator gives `tool` called with `args`, holding `produces`.
    pub fn result(
        &self,
        tool: &str,
        args: &Map<String, Value>,
        produces: &Map<String, Value>,
    ) -> String {
        simulate(
            tool,
            args,
            produces,
            self.nearest(tool, args, 1).first().copied(),
            self.output_schema(tool),
            self.seed,
        )
    }
}
