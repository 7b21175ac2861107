//! Blueprints: what a synthesized trajectory must do, written before any conversation happens.
//!
//! A blueprint starts from the seed's own structure (its steps, arguments and the results that
//! later calls consume) and applies one mutation: **deepen** adds a step that consumes an
//! earlier result, **broaden** carries the pattern to another domain's tools, **shift** changes
//! the reasoning pattern (a clarifying question, calls in parallel, a retry after an error, or a
//! code step). The target reasoning mode and complexity are computed by the real metric
//! functions over the blueprint's skeleton, so the verifier can hold the rollout to them.
//!
//! The plan is grounded in the corpus ([`Grounding`]): a new call takes the arguments of a real
//! call of its tool (when one validates against the tool's schema), a new dependency consumes a
//! value the source call's result really holds (when one fits the argument), the seed's own calls
//! that fail their tool's schema are given valid arguments, and the skeleton's results are the
//! ones the grounded tool simulator will return.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::grounding::{Grounding, RETRY_ERROR};
use crate::metrics::calls::{CodeTools, Weights, call_facts};
use crate::metrics::messages::{MessagesView, is_code_tool};
use crate::metrics::reasoning_mode::mode_of_calls;
use crate::model::{Message, ToolCall, ToolDef, Trajectory};
use crate::rng::Rng;

/// How the seed is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mutation {
    /// Add a dependent step.
    Deepen,
    /// Another domain of the cluster.
    Broaden,
    /// Another reasoning mode.
    Shift,
}

impl Mutation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deepen" => Some(Self::Deepen),
            "broaden" => Some(Self::Broaden),
            "shift" => Some(Self::Shift),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Deepen => "deepen",
            Self::Broaden => "broaden",
            Self::Shift => "shift",
        }
    }
}

/// An argument whose value comes from an earlier call's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// The argument of this call.
    pub argument: String,
    /// The earlier call, numbered over the blueprint's calls in order (retries not counted).
    pub call: usize,
    /// The field of that call's result that holds the value.
    pub field: String,
}

/// One planned tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCall {
    pub tool: String,
    pub arguments: Map<String, Value>,
    /// Fields the result must contain, because later calls consume them.
    #[serde(default)]
    pub produces: Map<String, Value>,
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// The tool answers this call with an error the first time; the assistant retries it.
    #[serde(default)]
    pub fails_first: bool,
}

/// One move of the assistant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    /// A clarifying question; the user simulator answers it.
    Ask { question: String, answer: String },
    /// One assistant message making these calls (two or more run in parallel).
    Calls { calls: Vec<PlannedCall> },
    /// The final answer.
    Answer { text: String },
}

/// A blueprint (one row of `blueprints`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blueprint {
    pub blueprint_id: String,
    pub seed_id: String,
    pub mutation: Mutation,
    pub domain: Option<String>,
    pub cluster_id: Option<String>,
    pub goal: String,
    pub persona: String,
    pub expected_outcome: String,
    pub system: Option<String>,
    pub tools: Vec<ToolDef>,
    pub steps: Vec<Step>,
    pub target_mode: String,
    pub target_complexity: f64,
}

/// What the planner is asked to write a blueprint for.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub seed: &'a Trajectory,
    pub mutation: Mutation,
    /// For `broaden`: a trajectory of the target domain whose tools the blueprint uses.
    pub donor: Option<&'a Trajectory>,
    pub target_domain: Option<String>,
    pub cluster_id: Option<String>,
    /// Deterministic choices derive from this.
    pub rng_seed: u64,
    /// The observed calls and output schemas the plan is grounded in.
    pub grounding: &'a Grounding,
}

impl Blueprint {
    /// The planned calls in order, a retried call twice: the sequence the rollout must make.
    pub fn call_sequence(&self) -> Vec<(usize, &PlannedCall)> {
        let mut out = vec![];
        let mut n = 0;
        for s in &self.steps {
            if let Step::Calls { calls } = s {
                for c in calls {
                    if c.fails_first {
                        out.push((n, c));
                    }
                    out.push((n, c));
                    n += 1;
                }
            }
        }
        out
    }

    /// The planned calls, numbered as dependencies number them.
    pub fn calls(&self) -> Vec<&PlannedCall> {
        planned_calls(&self.steps)
    }

    /// The assistant's moves in order: a step whose call fails first is played twice.
    pub fn script(&self) -> Vec<&Step> {
        let mut out = vec![];
        for s in &self.steps {
            out.push(s);
            if let Step::Calls { calls } = s
                && calls.iter().any(|c| c.fails_first)
            {
                out.push(s);
            }
        }
        out
    }

    /// The conversation the blueprint describes, with the results the grounded simulator gives
    /// (each holding what later calls consume): what the metrics of the target are computed
    /// from. A code tool's result is not known before it runs: it stands as `status: ok`.
    pub fn skeleton(&self, grounding: &Grounding) -> Vec<Message> {
        let mut msgs = vec![Message::text("user", self.goal.clone())];
        let mut n = 0;
        for s in &self.steps {
            match s {
                Step::Ask { question, answer } => {
                    msgs.push(Message::text("assistant", question.clone()));
                    msgs.push(Message::text("user", answer.clone()));
                }
                Step::Calls { calls } => {
                    let make = |k: usize, c: &PlannedCall| ToolCall {
                        id: Some(format!("call_{k}")),
                        name: c.tool.clone(),
                        arguments: Value::Object(c.arguments.clone()).to_string(),
                    };
                    let tc: Vec<ToolCall> = calls
                        .iter()
                        .enumerate()
                        .map(|(i, c)| make(n + i, c))
                        .collect();
                    if calls.iter().any(|c| c.fails_first) {
                        msgs.push(Message::calls(tc.clone()));
                        for c in calls {
                            let mut m =
                                Message::tool_result(json!({ "error": RETRY_ERROR }).to_string());
                            m.name = Some(c.tool.clone());
                            m.error = Some(true);
                            msgs.push(m);
                        }
                    }
                    msgs.push(Message::calls(tc));
                    for c in calls {
                        let text = if is_code_tool(&c.tool) {
                            let mut result = c.produces.clone();
                            result.insert("status".into(), "ok".into());
                            Value::Object(result).to_string()
                        } else {
                            grounding.result(&c.tool, &c.arguments, &c.produces)
                        };
                        let mut m = Message::tool_result(text);
                        m.error = Some(crate::metrics::messages::is_error_text(
                            m.content.as_deref().unwrap_or_default(),
                        ));
                        m.name = Some(c.tool.clone());
                        msgs.push(m);
                    }
                    n += calls.len();
                }
                Step::Answer { text } => msgs.push(Message::text("assistant", text.clone())),
            }
        }
        msgs
    }

    /// Makes the dependencies consistent: each dependent argument carries the value its source
    /// call produces (the source is told to produce the argument's value when it names none).
    /// A dependency on a code-tool call is dropped: its output is whatever the code prints, so
    /// no value can be planned for it.
    pub fn settle_dependencies(&mut self) {
        let calls: Vec<PlannedCall> = self.calls().into_iter().cloned().collect();
        let mut produced: Vec<Map<String, Value>> =
            calls.iter().map(|c| c.produces.clone()).collect();
        let mut resolved: Vec<Vec<(String, Value)>> = vec![vec![]; calls.len()];
        for (k, c) in calls.iter().enumerate() {
            for d in &c.depends_on {
                let usable = d.call < k && !is_code_tool(&calls[d.call].tool);
                let Some(arg) = c.arguments.get(&d.argument).filter(|_| usable) else {
                    continue;
                };
                let v = produced[d.call]
                    .entry(d.field.clone())
                    .or_insert_with(|| arg.clone())
                    .clone();
                resolved[k].push((d.argument.clone(), v));
            }
        }
        let mut k = 0;
        for s in self.steps.iter_mut() {
            if let Step::Calls { calls } = s {
                for c in calls.iter_mut() {
                    c.produces = std::mem::take(&mut produced[k]);
                    let keep: Vec<String> = resolved[k].iter().map(|(a, _)| a.clone()).collect();
                    c.depends_on.retain(|d| keep.contains(&d.argument));
                    for (a, v) in std::mem::take(&mut resolved[k]) {
                        c.arguments.insert(a, v);
                    }
                    k += 1;
                }
            }
        }
    }

    /// Settles the dependencies and sets the target mode and complexity from the skeleton.
    pub fn compute_targets(&mut self, grounding: &Grounding) {
        self.settle_dependencies();
        let (mode, cac) = measure(&self.skeleton(grounding));
        self.target_mode = mode;
        self.target_complexity = cac;
    }
}

/// The reasoning mode and CAC of a conversation, by the same code as the SQL functions.
pub fn measure(messages: &[Message]) -> (String, f64) {
    let arr = crate::store::convert::messages_array(std::iter::once(messages));
    let v = MessagesView::try_new(&arr).expect("messages_array builds the messages type");
    let code = CodeTools::default();
    let w = Weights::default();
    let facts = call_facts(&v, 0, &code);
    let cac = facts.iter().map(|f| w.step(f)).sum();
    (mode_of_calls(&v, 0, &facts), cac)
}

fn args_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The seed's own structure as steps: its calls with their arguments, and for every argument
/// that repeats a value of an earlier result, the dependency. Consecutive calls with no result
/// between them (benchmark ground truth often has none) become one step of parallel calls: none
/// of them could use another's result.
pub fn steps_of(seed: &Trajectory) -> Vec<Step> {
    let mut steps = vec![];
    // (call number, parsed result) of the results seen so far
    let mut results: Vec<(usize, Map<String, Value>, String)> = vec![];
    let mut n = 0;
    let mut pending: Vec<usize> = vec![];
    let mut planned: Vec<PlannedCall> = vec![];
    // The last step's calls have had no result yet: calls made before any result came back
    // could not use one, so they join that step and run in parallel.
    let mut unanswered = false;
    for m in &seed.messages {
        match m.role.as_ref() {
            "assistant" if !m.tool_calls.is_empty() => {
                if !unanswered {
                    pending.clear();
                }
                let mut calls = vec![];
                for c in &m.tool_calls {
                    let arguments = args_object(&c.arguments);
                    let mut depends_on = vec![];
                    for (arg, v) in &arguments {
                        let text = match v {
                            Value::String(s) if s.len() >= 3 => s.clone(),
                            Value::Number(x) if x.to_string() != "0" && x.to_string() != "1" => {
                                x.to_string()
                            }
                            _ => continue,
                        };
                        if let Some((j, obj, _)) =
                            results.iter().rev().find(|(_, _, raw)| raw.contains(&text))
                        {
                            let field = obj
                                .iter()
                                .find(|(_, fv)| fv == &v)
                                .map(|(k, _)| k.clone())
                                .unwrap_or_else(|| arg.clone());
                            depends_on.push(Dependency {
                                argument: arg.clone(),
                                call: *j,
                                field,
                            });
                        }
                    }
                    pending.push(n);
                    calls.push(PlannedCall {
                        tool: c.name.clone(),
                        arguments,
                        produces: Map::new(),
                        depends_on,
                        fails_first: false,
                    });
                    n += 1;
                }
                planned.extend(calls.iter().cloned());
                match steps.last_mut() {
                    Some(Step::Calls { calls: open }) if unanswered => open.extend(calls),
                    _ => steps.push(Step::Calls { calls }),
                }
                unanswered = true;
            }
            "assistant" => {
                unanswered = false;
                let text = m.content.clone().unwrap_or_default();
                if text.trim_end().ends_with('?') {
                    steps.push(Step::Ask {
                        question: text,
                        answer: "Yes, please go ahead.".into(),
                    });
                }
            }
            "tool" => {
                unanswered = false;
                if !pending.is_empty() {
                    let j = pending.remove(0);
                    let raw = m.content.clone().unwrap_or_default();
                    results.push((j, args_object(&raw), raw));
                }
            }
            _ => {
                unanswered = false;
                pending.clear();
            }
        }
    }
    // Every dependency's value must be produced by the call it comes from.
    let deps: Vec<(usize, String, Value)> = planned
        .iter()
        .flat_map(|c| {
            c.depends_on
                .iter()
                .map(|d| (d.call, d.field.clone(), c.arguments[&d.argument].clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut k = 0;
    for s in steps.iter_mut() {
        if let Step::Calls { calls } = s {
            for c in calls.iter_mut() {
                for (j, field, value) in &deps {
                    if *j == k {
                        c.produces.insert(field.clone(), value.clone());
                    }
                }
                k += 1;
            }
        }
    }
    steps
}

/// A value for a JSON Schema, chosen by the generator.
pub fn value_for(schema: &Value, name: &str, rng: &mut Rng) -> Value {
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.is_empty()
    {
        return e[rng.below(e.len())].clone();
    }
    let ty = crate::formats::tool_schema::primary_type(schema);
    match ty {
        "integer" => json!(2 + rng.below(98)),
        "number" => json!((200 + rng.below(99_800)) as f64 / 100.0),
        "boolean" => json!(rng.below(2) == 1),
        "array" => {
            let item = schema.get("items").cloned().unwrap_or(json!({}));
            json!([value_for(&item, name, rng)])
        }
        "object" => Value::Object(arguments_for(schema, rng)),
        _ => {
            if let Some(v) = formatted_string(schema, rng) {
                return json!(v);
            }
            let stem: String = name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(8)
                .collect();
            json!(format!("{}-{:05}", stem.to_lowercase(), rng.below(100_000)))
        }
    }
}

/// A string in the schema's `format`, or matching its `pattern` (the shapes `tools infer`
/// writes), when it has one.
fn formatted_string(schema: &Value, rng: &mut Rng) -> Option<String> {
    let day = 1 + rng.below(28);
    let month = 1 + rng.below(12);
    match schema.get("format").and_then(Value::as_str) {
        Some("date") => return Some(format!("2024-{month:02}-{day:02}")),
        Some("date-time") => {
            return Some(format!(
                "2024-{month:02}-{day:02}T{:02}:{:02}:00Z",
                rng.below(24),
                rng.below(60)
            ));
        }
        Some("email") => return Some(format!("user{}@example.com", rng.below(100_000))),
        Some("uuid") => {
            let h = |n: usize, rng: &mut Rng| -> String {
                (0..n)
                    .map(|_| char::from_digit(rng.below(16) as u32, 16).expect("a hex digit"))
                    .collect()
            };
            return Some(format!(
                "{}-{}-4{}-a{}-{}",
                h(8, rng),
                h(4, rng),
                h(3, rng),
                h(3, rng),
                h(12, rng)
            ));
        }
        Some("uri") => return Some(format!("https://example.com/item/{}", rng.below(100_000))),
        _ => {}
    }
    let pattern = schema.get("pattern").and_then(Value::as_str)?;
    crate::labels::shape::sample_pattern(pattern, &mut |n| rng.below(n))
}

/// Arguments for an object schema: every required property and the first optional one.
pub fn arguments_for(schema: &Value, rng: &mut Rng) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut optional_taken = false;
    for (k, s) in props {
        let take = required.contains(&k.as_str()) || (!optional_taken && required.is_empty());
        if take {
            optional_taken |= !required.contains(&k.as_str());
            out.insert(k.clone(), value_for(s, k, rng));
        }
    }
    out
}

fn schema_of(tool: &ToolDef) -> Value {
    tool.parameters
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(json!({"type": "object", "properties": {}}))
}

/// The calls of `steps` in order.
pub fn planned_calls(steps: &[Step]) -> Vec<&PlannedCall> {
    steps
        .iter()
        .flat_map(|s| match s {
            Step::Calls { calls } => calls.iter().collect(),
            _ => vec![],
        })
        .collect()
}

fn call_count(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Calls { calls } => calls.len(),
            _ => 0,
        })
        .sum()
}

fn used_tools(steps: &[Step]) -> Vec<String> {
    planned_calls(steps)
        .iter()
        .map(|c| c.tool.clone())
        .collect()
}

fn non_code_tools(tools: &[ToolDef]) -> Vec<&ToolDef> {
    tools.iter().filter(|t| !is_code_tool(&t.name)).collect()
}

/// The observed argument objects of a tool that validate against its schema.
fn valid_examples<'g>(tool: &ToolDef, grounding: &'g Grounding) -> Vec<&'g Map<String, Value>> {
    let validator = jsonschema::validator_for(&schema_of(tool)).ok();
    grounding
        .examples(&tool.name)
        .iter()
        .map(|e| &e.arguments)
        .filter(|a| {
            validator
                .as_ref()
                .is_none_or(|v| v.is_valid(&Value::Object((*a).clone())))
        })
        .collect()
}

/// Arguments for a new call: those of a real call of the tool when one validates, else
/// generated from its schema.
fn grounded_arguments(tool: &ToolDef, rng: &mut Rng, grounding: &Grounding) -> Map<String, Value> {
    let real = valid_examples(tool, grounding);
    if real.is_empty() {
        arguments_for(&schema_of(tool), rng)
    } else {
        real[rng.below(real.len())].clone()
    }
}

/// A new call to a tool.
fn new_call(tool: &ToolDef, rng: &mut Rng, grounding: &Grounding) -> PlannedCall {
    PlannedCall {
        tool: tool.name.clone(),
        arguments: grounded_arguments(tool, rng, grounding),
        produces: Map::new(),
        depends_on: vec![],
        fails_first: false,
    }
}

/// The schema of one argument of a tool (`{}` when unknown).
fn argument_schema(tools: &[ToolDef], tool: &str, argument: &str) -> Value {
    tools
        .iter()
        .find(|t| t.name == tool)
        .map(schema_of)
        .and_then(|s| s.get("properties")?.get(argument).cloned())
        .unwrap_or(json!({}))
}

/// A name reduced to its entity: lower case, `_id`/`_ids` and a plural `s` dropped
/// (`reservation_id`, `reservations` and `Reservation` all give `reservation`).
fn entity_of(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    let n = n
        .strip_suffix("_ids")
        .or_else(|| n.strip_suffix("_id"))
        .unwrap_or(&n);
    n.strip_suffix('s').unwrap_or(n).to_string()
}

/// A value of a result that `argument` (with schema `schema`) can consume: a leaf that validates
/// against the schema and counts as a consumed value (a string of three characters or more, a
/// number other than 0 and 1), under a key named like the argument; for an argument with an
/// `enum`, `pattern` or `format`, any leaf that fits. Returns the field that names it in the
/// result (the key when it is a top-level field, else the argument) and the value.
fn find_value(result: &str, argument: &str, schema: &Value) -> Option<(String, Value)> {
    let v: Value = serde_json::from_str(result).ok()?;
    let validator = jsonschema::validator_for(schema).ok()?;
    let constrained = ["enum", "pattern", "format"]
        .iter()
        .any(|k| schema.get(k).is_some());
    let want = entity_of(argument);
    let mut best: Option<(u8, bool, String, Value)> = None;
    let mut visit = |key: &str, top: bool, leaf: &Value| {
        let usable = match leaf {
            Value::String(s) => s.chars().count() >= 3,
            Value::Number(n) => !matches!(n.to_string().as_str(), "0" | "1"),
            _ => false,
        };
        if !usable || !validator.is_valid(leaf) {
            return;
        }
        let score = if key == argument {
            3
        } else if !key.is_empty() && entity_of(key) == want {
            2
        } else if constrained {
            1
        } else {
            0
        };
        if score > best.as_ref().map_or(0, |b| b.0) {
            best = Some((score, top, key.to_string(), leaf.clone()));
        }
    };
    fn walk(v: &Value, key: &str, top: bool, f: &mut dyn FnMut(&str, bool, &Value)) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(
                        x,
                        k,
                        top && !matches!(x, Value::Object(_) | Value::Array(_)),
                        f,
                    );
                }
            }
            Value::Array(a) => {
                for x in a {
                    walk(x, key, false, f);
                }
            }
            leaf => f(key, top, leaf),
        }
    }
    walk(&v, "", matches!(v, Value::Object(_)), &mut visit);
    best.map(|(_, top, key, value)| (if top { key } else { argument.to_string() }, value))
}

/// The result the source call of a dependency is expected to give (empty for code runs).
fn expected_result(call: &PlannedCall, grounding: &Grounding) -> String {
    if is_code_tool(&call.tool) {
        String::new()
    } else {
        grounding.result(&call.tool, &call.arguments, &call.produces)
    }
}

/// Makes call `to` (global number) consume a value produced by call `from`: one its grounded
/// result really holds when one fits the argument, else a fresh value of the argument's schema
/// that the result is then made to hold.
fn link(steps: &mut [Step], from: usize, to: usize, argument: &str, ctx: &mut Ctx) {
    let calls = planned_calls(steps);
    let (Some(src), Some(dst)) = (calls.get(from), calls.get(to)) else {
        return;
    };
    let schema = argument_schema(ctx.tools, &dst.tool, argument);
    let (field, value) = match find_value(&expected_result(src, ctx.grounding), argument, &schema) {
        Some(found) => found,
        None => {
            // A value the source already produces for another dependent call is shared.
            let value = src
                .produces
                .get(argument)
                .cloned()
                .unwrap_or_else(|| value_for(&schema, argument, ctx.rng));
            (argument.to_string(), value)
        }
    };
    let mut k = 0;
    for s in steps.iter_mut() {
        if let Step::Calls { calls } = s {
            for c in calls.iter_mut() {
                if k == from {
                    c.produces.insert(field.clone(), value.clone());
                }
                if k == to {
                    c.arguments.insert(argument.to_string(), value.clone());
                    c.depends_on.retain(|d| d.argument != argument);
                    c.depends_on.push(Dependency {
                        argument: argument.to_string(),
                        call: from,
                        field: field.clone(),
                    });
                }
                k += 1;
            }
        }
    }
}

/// What the mutations draw on: the tools on offer, the grounding, the generator.
struct Ctx<'a> {
    tools: &'a [ToolDef],
    grounding: &'a Grounding,
    rng: &'a mut Rng,
}

/// The string parameters of a tool that can carry an earlier result's value (no `enum`).
fn string_params(tool: &ToolDef) -> Vec<(String, Value)> {
    let schema = schema_of(tool);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return vec![];
    };
    props
        .iter()
        .filter(|(_, s)| {
            s.get("type").and_then(Value::as_str) == Some("string") && s.get("enum").is_none()
        })
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect()
}

/// Deepen: one more single-call step that consumes the last call's result. The new call's
/// tool and argument are chosen, in this order of preference, so that the source's result really
/// holds a value the argument takes and the tool is not used yet; so that the value is real; so
/// that the tool is new; anything. Without a usable tool, a code step consumes it.
fn deepen(steps: &mut Vec<Step>, ctx: &mut Ctx) {
    let used = used_tools(steps);
    let n = call_count(steps);
    // The new step consumes the last result that is not a code run's output.
    let (source, result) = {
        let calls = planned_calls(steps);
        let source = calls
            .iter()
            .enumerate()
            .rfind(|(_, c)| !is_code_tool(&c.tool))
            .map(|(k, _)| k);
        let result = source
            .map(|k| expected_result(calls[k], ctx.grounding))
            .unwrap_or_default();
        (source, result)
    };
    let tools = ctx.tools;
    // (tool, argument, not used yet, the source's result holds a value it takes)
    let mut options: Vec<(&ToolDef, String, bool, bool)> = vec![];
    for t in non_code_tools(tools) {
        for (arg, schema) in string_params(t) {
            let fits = find_value(&result, &arg, &schema).is_some();
            options.push((t, arg, !used.contains(&t.name), fits));
        }
    }
    let mut pick = None;
    for (fresh, fits) in [(true, true), (false, true), (true, false), (false, false)] {
        let tier: Vec<&(&ToolDef, String, bool, bool)> = options
            .iter()
            .filter(|o| (!fresh || o.2) && (!fits || o.3))
            .collect();
        if !tier.is_empty() {
            pick = Some(tier[ctx.rng.below(tier.len())].clone());
            break;
        }
    }
    match pick {
        Some((tool, arg, _, _)) => {
            let call = new_call(tool, ctx.rng, ctx.grounding);
            steps.push(Step::Calls { calls: vec![call] });
            if let Some(from) = source {
                link(steps, from, n, &arg, ctx);
            }
        }
        None => add_code_step(steps, ctx.rng),
    }
}

/// A code step: Python that computes over values of earlier results.
fn add_code_step(steps: &mut Vec<Step>, rng: &mut Rng) {
    let a = 10 + rng.below(990);
    let b = 2 + rng.below(20);
    let code = format!(
        "values = [{a}, {b}, {}]\nprint(sum(values) / len(values))",
        a + b
    );
    steps.push(Step::Calls {
        calls: vec![PlannedCall {
            tool: "python".into(),
            arguments: Map::from_iter([("code".to_string(), Value::String(code))]),
            produces: Map::new(),
            depends_on: vec![],
            fails_first: false,
        }],
    });
}

/// Shift: change the pattern of reasoning in a way the seed does not have yet.
fn shift(steps: &mut Vec<Step>, seed_mode: &str, ctx: &mut Ctx) {
    let tools = ctx.tools;
    let has = |m: &str| seed_mode.split('>').any(|x| x.starts_with(m));
    let mut options: Vec<u8> = vec![];
    if !has("Q") {
        options.push(b'Q');
    }
    if !has("P") && non_code_tools(tools).len() >= 2 {
        options.push(b'P');
    }
    if !has("R") && call_count(steps) > 0 {
        options.push(b'R');
    }
    if !has("X") && tools.iter().any(|t| is_code_tool(&t.name)) {
        options.push(b'X');
    }
    if options.is_empty() {
        return deepen(steps, ctx);
    }
    match options[ctx.rng.below(options.len())] {
        b'Q' => steps.insert(
            0,
            Step::Ask {
                question: "Before I start, can you confirm the details of your request?".into(),
                answer: "Yes, those are the details. Please go ahead.".into(),
            },
        ),
        b'P' => {
            let pool = non_code_tools(tools);
            let k = 2 + ctx.rng.below(2.min(pool.len() - 1));
            let start = ctx.rng.below(pool.len());
            let calls = (0..k)
                .map(|i| new_call(pool[(start + i) % pool.len()], ctx.rng, ctx.grounding))
                .collect();
            let at = steps
                .iter()
                .position(|s| matches!(s, Step::Answer { .. }))
                .unwrap_or(steps.len());
            steps.insert(at, Step::Calls { calls });
            renumber_after_insert(steps, at, k);
        }
        b'R' => {
            let singles: Vec<usize> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, Step::Calls { calls } if calls.len() == 1))
                .map(|(i, _)| i)
                .collect();
            if singles.is_empty() {
                return deepen(steps, ctx);
            }
            if let Step::Calls { calls } = &mut steps[singles[ctx.rng.below(singles.len())]] {
                calls[0].fails_first = true;
            }
        }
        _ => add_code_step(steps, ctx.rng),
    }
}

/// After inserting `k` calls at step `at`, dependencies on the calls after them move up by `k`.
fn renumber_after_insert(steps: &mut [Step], at: usize, k: usize) {
    let first_new = call_count(&steps[..at]);
    for (i, s) in steps.iter_mut().enumerate() {
        if i == at {
            continue;
        }
        if let Step::Calls { calls } = s {
            for d in calls.iter_mut().flat_map(|c| c.depends_on.iter_mut()) {
                if d.call >= first_new {
                    d.call += k;
                }
            }
        }
    }
}

/// Broaden: the seed's pattern on the donor domain's tools (calls mapped in order, arguments
/// grounded in the new tools' calls, dependencies kept on their string parameters).
fn broaden(steps: &mut [Step], ctx: &mut Ctx) -> bool {
    let pool = non_code_tools(ctx.tools);
    if pool.is_empty() {
        return false;
    }
    let mut k = 0;
    let mut links: Vec<(usize, usize, String)> = vec![];
    let start = ctx.rng.below(pool.len());
    for s in steps.iter_mut() {
        if let Step::Calls { calls } = s {
            for c in calls.iter_mut() {
                if is_code_tool(&c.tool) {
                    k += 1;
                    continue;
                }
                let tool = pool[(start + k) % pool.len()];
                let deps = std::mem::take(&mut c.depends_on);
                let fails = c.fails_first;
                *c = new_call(tool, ctx.rng, ctx.grounding);
                c.fails_first = fails;
                if let (Some(d), Some((arg, _))) = (deps.first(), string_params(tool).first()) {
                    links.push((d.call, k, arg.clone()));
                }
                k += 1;
            }
        }
    }
    for (from, to, arg) in links {
        link(steps, from, to, &arg, ctx);
    }
    true
}

/// The seed's own calls whose arguments fail their tool's schema (agents make mistakes) get the
/// arguments of a real call that validates, or generated ones; their dependencies are dropped.
fn repair(steps: &mut [Step], ctx: &mut Ctx) {
    for s in steps.iter_mut() {
        let Step::Calls { calls } = s else { continue };
        for c in calls.iter_mut() {
            let Some(def) = ctx.tools.iter().find(|t| t.name == c.tool) else {
                continue;
            };
            let args = Value::Object(c.arguments.clone()).to_string();
            if is_code_tool(&c.tool)
                || crate::metrics::args_valid::argument_error(&args, def.parameters.as_deref())
                    .is_none()
            {
                continue;
            }
            c.arguments = grounded_arguments(def, ctx.rng, ctx.grounding);
            c.depends_on.clear();
        }
    }
}

const PERSONAS: &[&str] = &[
    "a busy professional who wants things done quickly",
    "a careful customer who double-checks every detail",
    "a first-time user unsure of the right terms",
    "an operations manager handling a request for a colleague",
];

/// The deterministic draft the planner starts from (and the offline planner returns as is).
pub fn draft(input: &PlanInput) -> Blueprint {
    let mut rng = Rng::new(input.rng_seed);
    let seed = input.seed;
    let seed_mode = measure(&seed.messages).0;
    let grounding = input.grounding;
    let mut steps: Vec<Step> = steps_of(seed);
    let mut tools = seed.tools.to_vec();
    repair(
        &mut steps,
        &mut Ctx {
            tools: &tools,
            grounding,
            rng: &mut rng,
        },
    );
    let mut domain = seed.domain.clone();
    let mut mutation = input.mutation;
    if mutation == Mutation::Broaden {
        let broadened = input.donor.filter(|d| {
            broaden(
                &mut steps,
                &mut Ctx {
                    tools: &d.tools,
                    grounding,
                    rng: &mut rng,
                },
            )
        });
        match broadened {
            Some(d) => {
                tools = d.tools.to_vec();
                domain = input.target_domain.clone().or(d.domain.clone());
            }
            None => mutation = Mutation::Deepen,
        }
    }
    let mut ctx = Ctx {
        tools: &tools,
        grounding,
        rng: &mut rng,
    };
    match mutation {
        Mutation::Deepen => deepen(&mut steps, &mut ctx),
        Mutation::Shift => shift(&mut steps, &seed_mode, &mut ctx),
        Mutation::Broaden => {}
    }
    // A code step needs a code tool on offer.
    if used_tools(&steps).iter().any(|t| is_code_tool(t))
        && !tools.iter().any(|t| is_code_tool(&t.name))
    {
        tools.push(ToolDef {
            name: "python".into(),
            description: Some("Run Python code and return what it prints.".into()),
            parameters: Some(json!({"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}).to_string()),
        });
    }
    let dom = domain.clone().unwrap_or_else(|| "general".into());
    let names: Vec<String> = used_tools(&steps);
    let mut uniq: Vec<String> = vec![];
    for n in names {
        if !uniq.contains(&n) {
            uniq.push(n);
        }
    }
    let goal = format!(
        "I need help with a {dom} request: please {} and tell me the outcome.",
        if uniq.is_empty() {
            "look into it".to_string()
        } else {
            uniq.iter()
                .map(|n| n.replace('_', " "))
                .collect::<Vec<_>>()
                .join(", then ")
        }
    );
    steps.retain(|s| !matches!(s, Step::Answer { .. }));
    steps.push(Step::Answer {
        text: format!("All done: your {dom} request has been handled."),
    });
    let mut bp = Blueprint {
        blueprint_id: String::new(),
        seed_id: seed.traj_id.clone(),
        mutation,
        domain,
        cluster_id: input.cluster_id.clone().or(seed.cluster_id.clone()),
        goal,
        persona: PERSONAS[rng.below(PERSONAS.len())].into(),
        expected_outcome: format!(
            "{} tool call(s) succeed and the assistant confirms the result.",
            call_count(&steps)
        ),
        system: seed.system.clone(),
        tools,
        steps,
        target_mode: String::new(),
        target_complexity: 0.0,
    };
    bp.compute_targets(grounding);
    bp
}

/// Tool names → parameter schemas of a blueprint's tools.
pub fn tool_schemas(tools: &[ToolDef]) -> BTreeMap<String, Option<String>> {
    tools
        .iter()
        .map(|t| (t.name.clone(), t.parameters.clone()))
        .collect()
}
