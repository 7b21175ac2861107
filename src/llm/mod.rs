//! How tdscale reaches a language model: the synthesis agents and the domain labeller alike.
//! Every agent turn is an [`AgentCall`]: the chat-completions request a model would get, and the
//! structured task behind it. The `openai` backend ([`openai`]) sends the request to any
//! OpenAI-compatible server, with retries and the response cache ([`cache`]); an offline model
//! (synthesis has one) plays the agent from the task, deterministically, with no model.
//!
//! This sits below the modules that use a model (labels, synthesis), not inside synthesis: the
//! labels a model writes are an input of synthesis, so the flow puts labelling first.

pub mod cache;
pub mod openai;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::ToolCall;

/// Which agent is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Planner,
    User,
    Assistant,
    ToolSimulator,
    /// Labels trajectories with their domain.
    Labeler,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::ToolSimulator => "tool_simulator",
            Role::Labeler => "labeler",
        }
    }
}

/// A chat-completions request body (the fields tdscale sets).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    pub temperature: f64,
    pub seed: u64,
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
}

/// One agent turn.
#[derive(Debug, Clone)]
pub struct AgentCall {
    pub role: Role,
    /// The task as data: what the offline backend plays from.
    pub task: Value,
    pub request: ChatRequest,
}

/// What the model said.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatReply {
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// Why a call did not get an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// Transient faults (429, 5xx, timeouts, broken bodies) outlasted the retries.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    /// The server refused the request itself (4xx other than 429): retrying cannot help.
    #[error("request refused: {0}")]
    Refused(String),
    /// The offline backend was given a task it cannot play.
    #[error("{0}")]
    Task(String),
}

/// A language model as the agents see it.
#[async_trait]
pub trait ChatModel: Send + Sync {
    async fn chat(&self, call: &AgentCall) -> Result<ChatReply, BackendError>;
    /// Requests, retries, cache hits, latency and tokens so far, for the end-of-batch summary.
    fn stats(&self) -> Option<StatsSummary> {
        None
    }
    /// A short name for logs and the `batches` table.
    fn describe(&self) -> String;
}

/// A backend's end-of-batch numbers: requests, cache hits, retries, latency and tokens.
#[derive(Debug, Clone, Serialize, Default)]
pub struct StatsSummary {
    pub http_requests: u64,
    pub answered: u64,
    pub cache_hits: u64,
    pub retries: u64,
    pub failed: u64,
    /// Transient faults seen, by kind (`429`, `500`, `timeout`, `not JSON`, …).
    pub faults: BTreeMap<String, u64>,
    pub latency_ms_p50: u64,
    pub latency_ms_p90: u64,
    pub latency_ms_p99: u64,
    pub latency_ms_max: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub completion_tokens_p90: u64,
}

impl StatsSummary {
    /// One line for the terminal.
    pub fn line(&self) -> String {
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect();
        format!(
            "{} HTTP requests ({} answered, {} from cache, {} retries{}, {} failed); latency p50 {} ms, p90 {} ms, p99 {} ms, max {} ms; tokens {} in, {} out",
            self.http_requests,
            self.answered,
            self.cache_hits,
            self.retries,
            if faults.is_empty() {
                String::new()
            } else {
                format!(": {}", faults.join(", "))
            },
            self.failed,
            self.latency_ms_p50,
            self.latency_ms_p90,
            self.latency_ms_p99,
            self.latency_ms_max,
            self.prompt_tokens,
            self.completion_tokens
        )
    }
}

/// The text of a model's answer without the Markdown fence models often wrap JSON in.
pub fn strip_fence(text: &str) -> &str {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .unwrap_or(t);
    t.strip_suffix("```").unwrap_or(t).trim()
}
