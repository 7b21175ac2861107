//! `tdscale export tau2`: trajectories as a tau²-bench domain folder.
//!
//! `<domain>/tasks.json` holds one task per trajectory in tau²'s Task shape (`id`, `description`,
//! `user_scenario.instructions` with `domain`, `reason_for_call` — the first user turn —,
//! `known_info` — the later ones —, `evaluation_criteria` with the reference `actions` (every
//! tool call in order), `communicate_info`, `nl_assertions` and `reward_basis`);
//! `<domain>/split_tasks.json` lists the ids under `base` (and `test`, as the export is an
//! evaluation split); `<domain>/tools.json` has the tools as OpenAI function schemas; and
//! `<domain>/policy.md` is the most common system prompt. `description.notes` keeps the source
//! trajectory's id, which `tdscale ingest` reads back.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::target::{ExportTarget, WrittenFile};
use crate::error::{Error, Result};
use crate::formats::tau2::TRAJ_ID_NOTE;
use crate::model::{ToolDef, Trajectory};

/// What an export wrote.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Tau2Summary {
    pub tasks: usize,
    pub actions: usize,
    pub tools: usize,
    pub files: Vec<WrittenFile>,
}

impl Tau2Summary {
    /// The counts and the files written to `to`.
    pub fn to_text(&self, to: &str) -> String {
        format!(
            "{} tasks with {} reference actions over {} tools\n",
            self.tasks, self.actions, self.tools
        ) + &super::target::files_text(&self.files, to)
    }
}

fn task(n: usize, t: &Trajectory, domain: &str) -> Value {
    let users: Vec<String> = t
        .messages
        .iter()
        .filter(|m| m.role == "user")
        .map(|m| m.content.clone().unwrap_or_default())
        .collect();
    let mut actions = vec![];
    for c in t.messages.iter().flat_map(|m| m.tool_calls.iter()) {
        let arguments = match serde_json::from_str::<Value>(&c.arguments) {
            Ok(Value::Object(m)) => Value::Object(m),
            _ => json!({"arguments": c.arguments}),
        };
        // tau² compares these arguments of the agent's call with the reference: all of them.
        let compare_args: Vec<String> = arguments
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        actions.push(json!({
            "action_id": format!("{n}_{}", actions.len()),
            "name": c.name,
            "arguments": arguments,
            "info": null,
            "compare_args": compare_args,
        }));
    }
    let answer = t
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "assistant" && m.tool_calls.is_empty())
        .and_then(|m| m.content.clone());
    let (nl_assertions, reward_basis) = if actions.is_empty() {
        (
            json!([format!(
                "Agent should answer as the reference did: {}",
                answer.as_deref().unwrap_or("(no answer)")
            )]),
            json!(["NL_ASSERTION"]),
        )
    } else {
        (Value::Null, json!(["DB", "COMMUNICATE"]))
    };
    let known = users.get(1..).map(|u| u.join("\n")).unwrap_or_default();
    // A task read from tau² files kept what of its scenario made no user turn (the simulator's
    // instructions, persona, unknown info) in `metadata.user_scenario`: it goes back in place.
    let kept = t.metadata.get("user_scenario").and_then(Value::as_object);
    let mut instructions = json!({
        "task_instructions": GENERIC_TASK_INSTRUCTIONS,
        "domain": domain,
        "reason_for_call": users.first().cloned().unwrap_or_default(),
        "known_info": known,
        "unknown_info": null,
    });
    let mut scenario = Map::new();
    scenario.insert("persona".into(), Value::Null);
    if let Some(kept) = kept {
        for (k, v) in kept {
            match (k.as_str(), v) {
                ("instructions", Value::Object(i)) => {
                    for (k, v) in i {
                        instructions[k] = v.clone();
                    }
                }
                _ => {
                    scenario.insert(k.clone(), v.clone());
                }
            }
        }
    }
    scenario.insert("instructions".into(), instructions);
    json!({
        "id": n.to_string(),
        "description": {
            "purpose": format!(
                "Reproduce the reference {} trajectory{}",
                t.domain.as_deref().unwrap_or(domain),
                t.reasoning_mode.as_deref().map(|m| format!(" (reasoning mode {m})")).unwrap_or_default()
            ),
            "relevant_policies": null,
            "notes": format!("{TRAJ_ID_NOTE}{}", t.traj_id),
        },
        "user_scenario": scenario,
        "initial_state": null,
        "evaluation_criteria": {
            "actions": actions,
            "communicate_info": [],
            "nl_assertions": nl_assertions,
            "reward_basis": reward_basis,
        },
        "annotations": null,
    })
}

/// What the simulated user is told when the source had no instructions of its own.
const GENERIC_TASK_INSTRUCTIONS: &str = "Ask for what the reason for your call describes; give the known information when the agent asks for it.";

fn openai_tool(d: &ToolDef) -> Value {
    let params = d
        .parameters
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .unwrap_or(json!({"type": "object", "properties": {}}));
    json!({"type": "function", "function": {"name": d.name, "description": d.description, "parameters": params}})
}

/// Writes the domain folder `domain/` of `trajectories` to `target` (manifest last).
pub async fn export(
    trajectories: &[Trajectory],
    domain: &str,
    mut target: ExportTarget,
) -> Result<Tau2Summary> {
    if domain.is_empty() || domain.contains('/') {
        return Err(Error::Usage(format!(
            "--domain-name `{domain}` must be a non-empty folder name"
        )));
    }
    let tasks: Vec<Value> = trajectories
        .iter()
        .enumerate()
        .map(|(n, t)| task(n, t, domain))
        .collect();
    let ids: Vec<Value> = tasks.iter().map(|t| t["id"].clone()).collect();
    let mut tools: BTreeMap<&str, &ToolDef> = BTreeMap::new();
    let mut prompts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in trajectories {
        for d in &t.tools {
            tools.entry(d.name.as_str()).or_insert(d);
        }
        if let Some(s) = &t.system {
            *prompts.entry(s.as_str()).or_default() += 1;
        }
    }
    let policy = prompts
        .iter()
        .max_by_key(|(p, n)| (**n, std::cmp::Reverse(*p)))
        .map(|(p, _)| p.to_string())
        .unwrap_or_else(|| {
            format!("You are a helpful {domain} agent. Use the tools to help the user.")
        });
    let policy = if policy.trim_start().starts_with('#') {
        policy
    } else {
        format!("# {domain} agent policy\n\n{policy}\n")
    };
    let actions = tasks
        .iter()
        .map(|t| {
            t["evaluation_criteria"]["actions"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    let tool_list: Vec<Value> = tools.values().map(|d| openai_tool(d)).collect();
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).expect("JSON serializes");
    let mut split = Map::new();
    split.insert("test".into(), Value::Array(ids.clone()));
    split.insert("base".into(), Value::Array(ids));
    target
        .write(
            &format!("{domain}/tasks.json"),
            pretty(&Value::Array(tasks.clone())),
            tasks.len(),
        )
        .await?;
    target
        .write(
            &format!("{domain}/split_tasks.json"),
            pretty(&Value::Object(split)),
            tasks.len(),
        )
        .await?;
    target
        .write(
            &format!("{domain}/tools.json"),
            pretty(&Value::Array(tool_list.clone())),
            tool_list.len(),
        )
        .await?;
    target
        .write(&format!("{domain}/policy.md"), policy.into_bytes(), 1)
        .await?;
    let files = target
        .finish("tau2", json!({"domain": domain, "tasks": tasks.len()}))
        .await?;
    Ok(Tau2Summary {
        tasks: tasks.len(),
        actions,
        tools: tool_list.len(),
        files,
    })
}
