//! The agents of a synthesis: the planner writes the blueprint; the user simulator, the
//! assistant and the tool simulator play the conversation along it; calls to a code tool run
//! for real in the sandbox. Each agent turn is one [`AgentCall`] to the backend, so the same
//! loop runs against a model server or offline.

use serde_json::{Value, json};

use super::blueprint::{Blueprint, PlanInput, Step, draft};
use super::grounding::Grounding;
use crate::formats::openai::{messages_json, tools_json};
use crate::llm::{AgentCall, ChatModel, ChatReply, ChatRequest, Role};
use crate::metrics::messages::is_code_tool;
use crate::model::{Message, ToolCall, Trajectory};
use crate::sandbox::python::PythonOptions;

const PLANNER_PROMPT: &str = "You are the planner of a synthetic-data pipeline for tool-use agents. \
You get a seed trajectory's summary, a mutation and a draft blueprint. Return the blueprint as one JSON \
object with the same fields as the draft: keep `steps` executable with the given tools (argument values \
valid for each tool's JSON Schema, every `depends_on` value produced by the earlier call it names), and \
write a realistic `goal`, `persona` and `expected_outcome`. Reply with the JSON object only.";

const USER_PROMPT: &str = "You play a user talking to a support assistant. Stay in character, say \
only what the user would say, one message at a time.";

const TOOL_PROMPT: &str = "You simulate a tool. Given the tool's definition, its output schema, the \
call's arguments, the fields the result must contain (`produces`) and `examples` of what this tool \
really returned for similar arguments, reply with the tool's result only: in the same shape and style \
as the examples (JSON when they are JSON), consistent with the arguments, holding every `produces` \
value. If `fail` is true, reply with {\"error\": \"...\"} describing a transient failure.";

/// Observed examples shown to a model simulating a tool, and how much of each result.
const PROMPT_EXAMPLES: usize = 3;
const PROMPT_RESULT_CHARS: usize = 2000;

/// Why one request produced no trajectory.
#[derive(Debug, Clone)]
pub struct ItemFailure {
    pub stage: &'static str,
    pub reason: String,
}

impl ItemFailure {
    pub fn new(stage: &'static str, reason: impl ToString) -> Self {
        Self {
            stage,
            reason: reason.to_string(),
        }
    }
}

/// The shared settings of the agents.
pub struct Agents<'a> {
    pub model: &'a dyn ChatModel,
    pub model_name: &'a str,
    /// Sent as the request `seed`, so servers that honour it answer reproducibly.
    pub seed: u64,
    pub sandbox: &'a PythonOptions,
    /// The observed calls and output schemas tools are simulated from.
    pub grounding: &'a Grounding,
}

fn request(a: &Agents, messages: Vec<Value>, tools: Vec<Value>, json_out: bool) -> ChatRequest {
    ChatRequest {
        model: a.model_name.to_string(),
        messages,
        tools,
        temperature: 0.0,
        seed: a.seed,
        max_tokens: 2048,
        response_format: json_out.then(|| json!({"type": "json_object"})),
    }
}

/// A seed as the planner sees it.
fn seed_summary(seed: &Trajectory) -> Value {
    let calls: Vec<Value> = seed
        .messages
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(|c| json!({"tool": c.name, "arguments": c.arguments}))
        .collect();
    let first_user: String = seed
        .messages
        .iter()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.clone())
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    json!({"traj_id": seed.traj_id, "domain": seed.domain, "first_user_message": first_user, "calls": calls})
}

/// The planner: the mutation's draft, refined by the model. Whatever the model says, the
/// targets are recomputed from the steps it returns.
pub async fn plan(a: &Agents<'_>, input: &PlanInput<'_>) -> Result<Blueprint, ItemFailure> {
    let d = draft(input);
    let draft_json = serde_json::to_value(&d).expect("a blueprint serializes");
    let task = json!({"draft": draft_json});
    let user = json!({
        "seed": seed_summary(input.seed),
        "mutation": input.mutation.name(),
        "draft": draft_json,
    });
    let call = AgentCall {
        role: Role::Planner,
        task,
        request: request(
            a,
            vec![
                json!({"role": "system", "content": PLANNER_PROMPT}),
                json!({"role": "user", "content": user.to_string()}),
            ],
            vec![],
            true,
        ),
    };
    let reply = a
        .model
        .chat(&call)
        .await
        .map_err(|e| ItemFailure::new("planner", e))?;
    let text = reply.content.unwrap_or_default();
    let v: Value = serde_json::from_str(crate::llm::strip_fence(&text)).map_err(|e| {
        ItemFailure::new("planner", format!("the reply is not a JSON blueprint: {e}"))
    })?;
    let mut bp = d;
    for (field, slot) in [
        ("goal", &mut bp.goal),
        ("persona", &mut bp.persona),
        ("expected_outcome", &mut bp.expected_outcome),
    ] {
        if let Some(s) = v
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
        {
            *slot = s.to_string();
        }
    }
    if let Some(steps) = v.get("steps") {
        let steps: Vec<Step> = serde_json::from_value(steps.clone()).map_err(|e| {
            ItemFailure::new(
                "planner",
                format!("the blueprint's steps do not parse: {e}"),
            )
        })?;
        if !matches!(steps.last(), Some(Step::Answer { .. })) {
            return Err(ItemFailure::new(
                "planner",
                "the blueprint does not end with an answer step",
            ));
        }
        bp.steps = steps;
    }
    bp.compute_targets(a.grounding);
    Ok(bp)
}

fn as_openai(system: Option<String>, messages: &[Message]) -> Vec<Value> {
    let t = Trajectory {
        system,
        messages: messages.to_vec(),
        ..Default::default()
    };
    messages_json(&t, false)
}

async fn user_turn(
    a: &Agents<'_>,
    bp: &Blueprint,
    messages: &[Message],
    planned_reply: Option<&str>,
) -> Result<Message, ItemFailure> {
    // The user simulator sees the conversation from the other side.
    let mut convo = vec![
        json!({"role": "system", "content": format!("{USER_PROMPT}\nPersona: {}\nGoal: {}{}", bp.persona, bp.goal,
        planned_reply.map(|r| format!("\nWhen asked, answer: {r}")).unwrap_or_default())}),
    ];
    for m in messages {
        let role = match m.role.as_ref() {
            "user" => "assistant",
            "assistant" if m.tool_calls.is_empty() => "user",
            _ => continue,
        };
        convo.push(json!({"role": role, "content": m.content}));
    }
    if convo.len() == 1 {
        convo.push(json!({"role": "user", "content": "Start the conversation with your request."}));
    }
    let call = AgentCall {
        role: Role::User,
        task: json!({"persona": bp.persona, "goal": bp.goal, "planned_reply": planned_reply}),
        request: request(a, convo, vec![], false),
    };
    let reply = a
        .model
        .chat(&call)
        .await
        .map_err(|e| ItemFailure::new("user simulator", e))?;
    match reply.content.filter(|c| !c.trim().is_empty()) {
        Some(c) => Ok(Message::text("user", c)),
        None => Err(ItemFailure::new("user simulator", "an empty user message")),
    }
}

async fn assistant_turn(
    a: &Agents<'_>,
    bp: &Blueprint,
    messages: &[Message],
    sequence: &[usize],
) -> Result<ChatReply, ItemFailure> {
    let plan: Vec<&Step> = bp.script();
    let system = format!(
        "{}\n\n## Plan\nFollow these steps in order, one assistant message per step; pass each `depends_on` argument the value from the named earlier result.\n{}",
        bp.system
            .clone()
            .unwrap_or_else(|| "You are a helpful assistant with tools.".into()),
        serde_json::to_string(&plan).expect("steps serialize")
    );
    let t = Trajectory {
        tools: bp.tools.clone().into(),
        ..Default::default()
    };
    let call = AgentCall {
        role: Role::Assistant,
        task: json!({"script": plan, "sequence": sequence}),
        request: request(a, as_openai(Some(system), messages), tools_json(&t), false),
    };
    a.model
        .chat(&call)
        .await
        .map_err(|e| ItemFailure::new("assistant", e))
}

async fn tool_turn(
    a: &Agents<'_>,
    bp: &Blueprint,
    call: &ToolCall,
    planned: Option<(&super::blueprint::PlannedCall, bool)>,
) -> Result<Message, ItemFailure> {
    let mut msg = if is_code_tool(&call.name) && bp.tools.iter().any(|t| t.name == call.name) {
        run_code(a, call).await?
    } else if let Some(def) = bp.tools.iter().find(|t| t.name == call.name) {
        let args: Value = serde_json::from_str(&call.arguments).unwrap_or(json!({}));
        let (produces, fail) = planned
            .filter(|(p, _)| p.tool == call.name)
            .map(|(p, fail)| (Value::Object(p.produces.clone()), fail))
            .unwrap_or((json!({}), false));
        let empty = serde_json::Map::new();
        let examples = a.grounding.nearest(
            &call.name,
            args.as_object().unwrap_or(&empty),
            PROMPT_EXAMPLES,
        );
        // A tool that really answers in plain text may be simulated in plain text.
        let text_ok = a
            .grounding
            .examples(&call.name)
            .iter()
            .any(|e| serde_json::from_str::<Value>(&e.result).is_err());
        let task = json!({
            "tool": def.name, "description": def.description,
            "parameters": def.parameters.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
            "output_schema": a.grounding.output_schema(&call.name), "arguments": args,
            "produces": produces, "fail": fail, "examples": examples,
        });
        // The model sees the examples' results cut short; the offline simulator the whole ones.
        let mut shown = task.clone();
        if let Some(list) = shown.get_mut("examples").and_then(Value::as_array_mut) {
            for e in list {
                if let Some(Value::String(r)) = e.get_mut("result")
                    && r.chars().count() > PROMPT_RESULT_CHARS
                {
                    *r = r.chars().take(PROMPT_RESULT_CHARS).collect::<String>() + "…";
                }
            }
        }
        let ac = AgentCall {
            role: Role::ToolSimulator,
            task,
            request: request(
                a,
                vec![
                    json!({"role": "system", "content": TOOL_PROMPT}),
                    json!({"role": "user", "content": shown.to_string()}),
                ],
                vec![],
                true,
            ),
        };
        let reply = a
            .model
            .chat(&ac)
            .await
            .map_err(|e| ItemFailure::new("tool simulator", e))?;
        let content = crate::llm::strip_fence(&reply.content.unwrap_or_default()).to_string();
        if !text_ok && serde_json::from_str::<Value>(&content).is_err() {
            return Err(ItemFailure::new(
                "tool simulator",
                format!("`{}` result is not JSON", call.name),
            ));
        }
        let mut m = Message::tool_result(content.clone());
        m.error = Some(crate::metrics::messages::is_error_text(&content));
        m
    } else {
        let mut m = Message::tool_result(
            json!({"error": format!("unknown tool `{}`", call.name)}).to_string(),
        );
        m.error = Some(true);
        m
    };
    msg.name = Some(call.name.clone());
    msg.tool_call_id = call.id.clone();
    Ok(msg)
}

/// The code tool: the code runs in the sandbox; its output is the result.
async fn run_code(a: &Agents<'_>, call: &ToolCall) -> Result<Message, ItemFailure> {
    let args: Value = serde_json::from_str(&call.arguments).unwrap_or(json!({}));
    let code = args
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let opts = a.sandbox.clone();
    let r = tokio::task::spawn_blocking(move || crate::sandbox::python::run(&code, &opts))
        .await
        .map_err(|e| ItemFailure::new("code tool", e))?
        .map_err(|e| ItemFailure::new("code tool", e))?;
    let mut m = if r.success() {
        Message::tool_result(r.stdout.trim_end().to_string())
    } else {
        let tail: String = r
            .stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Message::tool_result(format!("Error: {:?}\n{tail}", r.outcome))
    };
    m.error = Some(!r.success());
    Ok(m)
}

/// Plays the conversation along the blueprint.
pub async fn rollout(a: &Agents<'_>, bp: &Blueprint) -> Result<Vec<Message>, ItemFailure> {
    let seq = bp.call_sequence();
    let sequence: Vec<usize> = seq.iter().map(|(n, _)| *n).collect();
    let script = bp.script();
    let mut messages = vec![user_turn(a, bp, &[], None).await?];
    let mut pos = 0; // position in the planned call sequence
    let mut used_ids = std::collections::HashSet::new();
    let max_turns = script.len() + 4;
    for turn in 0..max_turns {
        let reply = assistant_turn(a, bp, &messages, &sequence).await?;
        if !reply.tool_calls.is_empty() {
            let mut calls = reply.tool_calls;
            for (i, c) in calls.iter_mut().enumerate() {
                // Ids must be unique in the trajectory for results to pair with their calls.
                if c.id.as_ref().is_none_or(|id| used_ids.contains(id)) {
                    c.id = Some(format!("call_{turn}_{i}"));
                }
                used_ids.insert(c.id.clone().expect("set above"));
            }
            let mut m = Message::calls(calls.clone());
            m.content = reply.content.filter(|c| !c.trim().is_empty());
            messages.push(m);
            for c in &calls {
                let planned = seq.get(pos).map(|(n, p)| {
                    let fail = p.fails_first && seq.get(pos + 1).is_some_and(|(m, _)| m == n);
                    (*p, fail)
                });
                let result = tool_turn(a, bp, c, planned).await?;
                messages.push(result);
                pos += 1;
            }
            continue;
        }
        let text = reply.content.unwrap_or_default();
        let asks = text.trim_end().ends_with('?');
        messages.push(Message::text("assistant", text));
        if !asks {
            return Ok(messages);
        }
        let planned_reply = match script.get(turn) {
            Some(Step::Ask { answer, .. }) => Some(answer.as_str()),
            _ => None,
        };
        let m = user_turn(a, bp, &messages, planned_reply).await?;
        messages.push(m);
    }
    Ok(messages)
}
