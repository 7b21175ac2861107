//! tau² task files (`tasks.json` of a domain folder): each task becomes a trajectory whose user
//! turns are the scenario's instructions and whose assistant turns are the reference actions of
//! `evaluation_criteria` (no tool results: a task records what should be done, not a run).
//!
//! The domain's `policy.md` becomes the system prompt and its `tools.json` (OpenAI tool schemas,
//! as `tdscale export tau2` writes them) the tools, when they sit next to `tasks.json`. A task
//! that `tdscale export tau2` wrote carries its trajectory's id in `description.notes`, and gets
//! it back here, so an export round-trips.

use serde_json::Value;

use super::fields::{Obj, RecordResult};
use super::{ParseContext, base};
use crate::model::{Message, ToolCall, Trajectory, id_text};

/// The note `tdscale export tau2` leaves in `description.notes`.
pub const TRAJ_ID_NOTE: &str = "tdscale traj_id: ";

/// True for a tau² task record.
pub fn looks_like(m: &serde_json::Map<String, Value>) -> bool {
    m.contains_key("user_scenario") && m.contains_key("evaluation_criteria")
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Object(_)) | Some(Value::Array(_)) => Some(v?.to_string()),
        _ => None,
    }
}

/// Parses one task.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    let id = o
        .get("id")
        .and_then(id_text)
        .ok_or("id: required id is missing")?;
    let scenario = Obj::of(
        o.get("user_scenario").unwrap_or(&Value::Null),
        "user_scenario",
    )?;
    let instructions = match scenario.get("instructions") {
        Some(i @ Value::Object(_)) => Some(Obj::of(i, "user_scenario.instructions")?),
        Some(Value::String(_)) | None => None,
        Some(other) => {
            return Err(format!(
                "user_scenario.instructions: expected an object or a string, found {}",
                super::fields::kind(other)
            ));
        }
    };
    // What of the scenario makes no user turn (the user simulator's task instructions, persona,
    // unknown info…) is kept as `metadata.user_scenario`.
    let mut scenario_rest = scenario.rest(&["instructions"]);
    if let Some(i) = &instructions {
        let rest = i.rest(&["reason_for_call", "known_info", "domain"]);
        if !rest.is_empty() {
            scenario_rest.insert("instructions".into(), Value::Object(rest));
        }
    }
    let mut user_texts: Vec<String> = vec![];
    match instructions {
        Some(i) => {
            if let Some(d) = i.str("domain")? {
                t.domain = Some(d.to_string());
            }
            user_texts.extend(text(i.get("reason_for_call")));
            user_texts.extend(text(i.get("known_info")));
        }
        None => user_texts.extend(text(scenario.get("instructions"))),
    }
    if user_texts.is_empty() {
        return Err(
            "user_scenario.instructions: no reason_for_call or known_info to start from".into(),
        );
    }
    t.messages = user_texts
        .into_iter()
        .map(|s| Message::text("user", s))
        .collect();
    let criteria = Obj::of(
        o.get("evaluation_criteria").unwrap_or(&Value::Null),
        "evaluation_criteria",
    )?;
    for (k, a) in criteria.arr("actions")?.into_iter().flatten().enumerate() {
        let path = format!("evaluation_criteria.actions[{k}]");
        let a = Obj::of(a, &path)?;
        let name = a.req_str("name")?;
        let arguments = match a.get("arguments") {
            None => "{}".to_string(),
            Some(v @ Value::Object(_)) => v.to_string(),
            Some(other) => {
                return Err(format!(
                    "{path}.arguments: expected an object, found {}",
                    super::fields::kind(other)
                ));
            }
        };
        t.messages.push(Message::calls(vec![ToolCall {
            id: Some(
                a.get("action_id")
                    .and_then(id_text)
                    .unwrap_or_else(|| format!("{id}_{k}")),
            ),
            name: name.to_string(),
            arguments,
        }]));
    }
    let description = o.get("description");
    let note = description
        .and_then(|d| d.get("notes"))
        .and_then(Value::as_str)
        .and_then(|n| n.strip_prefix(TRAJ_ID_NOTE));
    t.system = ctx.tau2_policy.as_deref().cloned();
    if let Some(tools) = &ctx.tau2_tools {
        t.tools = tools.clone();
    }
    t.metadata.extend(o.rest(&["user_scenario"]));
    if !scenario_rest.is_empty() {
        t.metadata
            .insert("user_scenario".into(), Value::Object(scenario_rest));
    }
    t.metadata
        .insert("task_id".into(), Value::String(id.clone()));
    match note {
        Some(traj_id) => t.traj_id = traj_id.to_string(),
        None => t.assign_id(Some(id)),
    }
    Ok(t)
}
