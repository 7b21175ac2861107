//! The offline backend: no model, deterministic. It plays each agent from the task the agent
//! was given — the planner returns the mutation's draft, the user simulator says what the
//! blueprint has the user say, the assistant makes the blueprint's next move (taking dependent
//! values from the results actually in the conversation), and the tool simulator answers from
//! the nearest observed result of the tool with the blueprint's values substituted, or with an
//! object that holds them and fills the tool's output schema (see [`crate::synth::grounding`]).

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::llm::{AgentCall, BackendError, ChatModel, ChatReply, Role};
use crate::model::ToolCall;
use crate::synth::blueprint::Step;
use crate::synth::grounding::{Example, RETRY_ERROR, simulate};

/// The offline model.
#[derive(Debug, Clone, Default)]
pub struct OfflineModel {
    pub seed: u64,
}

fn task_err(what: &str) -> BackendError {
    BackendError::Task(format!("offline backend: the task has no {what}"))
}

impl OfflineModel {
    fn assistant(&self, call: &AgentCall) -> Result<ChatReply, BackendError> {
        let script: Vec<Step> = serde_json::from_value(
            call.task
                .get("script")
                .cloned()
                .ok_or_else(|| task_err("script"))?,
        )
        .map_err(|e| BackendError::Task(format!("offline backend: bad script: {e}")))?;
        let sequence: Vec<usize> = serde_json::from_value(
            call.task
                .get("sequence")
                .cloned()
                .ok_or_else(|| task_err("sequence"))?,
        )
        .map_err(|e| BackendError::Task(format!("offline backend: bad sequence: {e}")))?;
        let msgs = &call.request.messages;
        let role = |m: &Value| {
            m.get("role")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let moves_done = msgs.iter().filter(|m| role(m) == "assistant").count();
        // Results by planned call: the last result of each (a retry replaces the failure).
        let mut results: Map<String, Value> = Map::new();
        for (pos, m) in msgs.iter().filter(|m| role(m) == "tool").enumerate() {
            if let (Some(n), Some(text)) =
                (sequence.get(pos), m.get("content").and_then(Value::as_str))
            {
                results.insert(
                    n.to_string(),
                    serde_json::from_str(text).unwrap_or(Value::Null),
                );
            }
        }
        let Some(step) = script.get(moves_done) else {
            return Ok(ChatReply {
                content: Some("Is there anything else I can help you with?".into()),
                ..Default::default()
            });
        };
        Ok(match step {
            Step::Ask { question, .. } => ChatReply {
                content: Some(question.clone()),
                ..Default::default()
            },
            Step::Answer { text } => ChatReply {
                content: Some(text.clone()),
                ..Default::default()
            },
            Step::Calls { calls } => {
                let tool_calls = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut args = c.arguments.clone();
                        for d in &c.depends_on {
                            if let Some(v) = results
                                .get(&d.call.to_string())
                                .and_then(|r| r.get(&d.field))
                            {
                                args.insert(d.argument.clone(), v.clone());
                            }
                        }
                        ToolCall {
                            id: Some(format!("call_{moves_done}_{i}")),
                            name: c.tool.clone(),
                            arguments: Value::Object(args).to_string(),
                        }
                    })
                    .collect();
                ChatReply {
                    content: None,
                    tool_calls,
                    ..Default::default()
                }
            }
        })
    }

    fn tool(&self, call: &AgentCall) -> Result<ChatReply, BackendError> {
        let t = &call.task;
        if t.get("fail").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(ChatReply {
                content: Some(json!({ "error": RETRY_ERROR }).to_string()),
                ..Default::default()
            });
        }
        let tool = t
            .get("tool")
            .and_then(Value::as_str)
            .ok_or_else(|| task_err("tool"))?;
        let object = |k: &str| {
            t.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let nearest: Option<Example> = t
            .pointer("/examples/0")
            .and_then(|e| serde_json::from_value(e.clone()).ok());
        let content = simulate(
            tool,
            &object("arguments"),
            &object("produces"),
            nearest.as_ref(),
            t.get("output_schema").filter(|s| !s.is_null()),
            self.seed,
        );
        Ok(ChatReply {
            content: Some(content),
            ..Default::default()
        })
    }
}

#[async_trait]
impl ChatModel for OfflineModel {
    async fn chat(&self, call: &AgentCall) -> Result<ChatReply, BackendError> {
        match call.role {
            Role::Planner => {
                let draft = call.task.get("draft").ok_or_else(|| task_err("draft"))?;
                Ok(ChatReply {
                    content: Some(draft.to_string()),
                    ..Default::default()
                })
            }
            Role::User => {
                let say = call
                    .task
                    .get("planned_reply")
                    .and_then(Value::as_str)
                    .or_else(|| call.task.get("goal").and_then(Value::as_str))
                    .ok_or_else(|| task_err("goal"))?;
                Ok(ChatReply {
                    content: Some(say.to_string()),
                    ..Default::default()
                })
            }
            Role::Assistant => self.assistant(call),
            Role::ToolSimulator => self.tool(call),
            Role::Labeler => Err(BackendError::Task(
                "the offline backend plays synthesis agents only: label domains with `--domains clusters`, or with a model".into(),
            )),
        }
    }

    fn describe(&self) -> String {
        format!("offline(seed={})", self.seed)
    }
}
