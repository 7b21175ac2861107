//! The verifier: a synthesized trajectory is kept only if it did what its blueprint says.
//!
//! It is rejected, with every reason found, when it calls a tool that is not offered, passes
//! arguments that are not JSON or fail the tool's JSON Schema, makes other calls than the
//! blueprint planned (in order, a retried call twice), passes a dependent argument that does
//! not come from the result it should come from, ends in another reasoning mode than the
//! target, or has no final answer.

use std::collections::HashMap;

use serde_json::Value;

use super::blueprint::{Blueprint, measure};
use crate::metrics::args_valid::argument_error;
use crate::model::Trajectory;

/// The text of a JSON value as it would appear inside a result (strings without quotes).
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every call of the trajectory in order: (tool name, arguments, result content).
fn calls_with_results(t: &Trajectory) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<(String, String, Option<String>)> = vec![];
    let mut pending: Vec<(usize, Option<String>)> = vec![];
    for m in &t.messages {
        match m.role.as_ref() {
            "assistant" => {
                pending.clear();
                for c in &m.tool_calls {
                    pending.push((out.len(), c.id.clone()));
                    out.push((c.name.clone(), c.arguments.clone(), None));
                }
            }
            "tool" => {
                let by_id = m
                    .tool_call_id
                    .as_ref()
                    .and_then(|id| pending.iter().position(|(_, p)| p.as_ref() == Some(id)));
                let idx = by_id.or((!pending.is_empty()).then_some(0));
                if let Some(i) = idx {
                    let (k, _) = pending.remove(i);
                    out[k].2 = m.content.clone();
                }
            }
            _ => pending.clear(),
        }
    }
    out
}

/// The kind of a rejection reason, without the call numbers and values that make each reason
/// unique: what `rounds` counts per round.
///
/// ```
/// use tdscale::synth::verify::reason_kind;
/// assert_eq!(reason_kind("unknown tool `transfer` (call 3)"), "unknown tool `transfer`");
/// assert_eq!(
///     reason_kind("broken dependency: argument `reservation_id` of call 1 (`get_reservation`) does not come from the result of call 0 (field `reservation_id`)"),
///     "broken dependency: `get_reservation`.`reservation_id`"
/// );
/// assert_eq!(reason_kind("strayed from the blueprint: reasoning mode `S1>A`, planned `S1>C1>A`"), "strayed from the blueprint: another reasoning mode");
/// ```
pub fn reason_kind(reason: &str) -> String {
    let quoted = |s: &str, after: &str| -> Option<String> {
        let rest = &s[s.find(after)? + after.len()..];
        let start = rest.find('`')? + 1;
        let end = start + rest[start..].find('`')?;
        Some(rest[start..end].to_string())
    };
    let before_call = |s: &str| s.split(" (call ").next().unwrap_or(s).to_string();
    if reason.starts_with("unknown tool ") || reason.starts_with("invalid arguments for ") {
        return before_call(reason);
    }
    if reason.starts_with("broken dependency: ")
        && let (Some(arg), Some(tool)) = (quoted(reason, "argument "), quoted(reason, " ("))
    {
        return format!("broken dependency: `{tool}`.`{arg}`");
    }
    if reason.starts_with("strayed from the blueprint: called ") {
        return "strayed from the blueprint: other calls than planned".into();
    }
    if reason.starts_with("strayed from the blueprint: reasoning mode ") {
        return "strayed from the blueprint: another reasoning mode".into();
    }
    reason.chars().take(160).collect()
}

/// The reasons to reject `t`; empty when it passes.
pub fn verify(t: &Trajectory, bp: &Blueprint) -> Vec<String> {
    let mut reasons = vec![];
    let schemas: HashMap<&str, Option<&str>> = t
        .tools
        .iter()
        .map(|d| (d.name.as_str(), d.parameters.as_deref()))
        .collect();
    let actual = calls_with_results(t);
    for (k, (name, args, _)) in actual.iter().enumerate() {
        match schemas.get(name.as_str()) {
            None => reasons.push(format!("unknown tool `{name}` (call {k})")),
            Some(schema) => {
                if let Some(e) = argument_error(args, *schema) {
                    reasons.push(format!("invalid arguments for `{name}` (call {k}): {e}"));
                }
            }
        }
    }
    let planned = bp.call_sequence();
    let planned_names: Vec<&str> = planned.iter().map(|(_, c)| c.tool.as_str()).collect();
    let actual_names: Vec<&str> = actual.iter().map(|(n, _, _)| n.as_str()).collect();
    if planned_names != actual_names {
        reasons.push(format!(
            "strayed from the blueprint: called [{}] but planned [{}]",
            actual_names.join(", "),
            planned_names.join(", ")
        ));
    } else {
        // The last occurrence of each planned call is the one that counts (a retry replaces
        // the failed attempt).
        let mut last: HashMap<usize, usize> = HashMap::new();
        for (pos, (n, _)) in planned.iter().enumerate() {
            last.insert(*n, pos);
        }
        for (&n, &pos) in &last {
            let call = planned[pos].1;
            let args: Value = serde_json::from_str(&actual[pos].1).unwrap_or(Value::Null);
            for d in &call.depends_on {
                let source = last.get(&d.call).and_then(|&p| actual[p].2.as_deref());
                let ok = match (args.get(&d.argument), source) {
                    (Some(v), Some(result)) => {
                        let text = value_text(v);
                        !text.is_empty() && result.contains(&text)
                    }
                    _ => false,
                };
                if !ok {
                    reasons.push(format!(
                        "broken dependency: argument `{}` of call {n} (`{}`) does not come from the result of call {} (field `{}`)",
                        d.argument, call.tool, d.call, d.field
                    ));
                }
            }
        }
    }
    let (mode, _) = measure(&t.messages);
    if mode != bp.target_mode {
        reasons.push(format!(
            "strayed from the blueprint: reasoning mode `{mode}`, planned `{}`",
            bp.target_mode
        ));
    }
    let ends_with_answer = t.messages.last().is_some_and(|m| {
        m.role == "assistant"
            && m.tool_calls.is_empty()
            && m.content.as_deref().is_some_and(|c| !c.trim().is_empty())
    });
    if !ends_with_answer {
        reasons.push("no final answer from the assistant".into());
    }
    reasons.sort();
    reasons
}
