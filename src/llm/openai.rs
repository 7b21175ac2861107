//! The `openai` backend: any OpenAI-compatible chat-completions server (OpenAI, vLLM, SGLang,
//! llama.cpp server, Ollama).
//!
//! At most `concurrency` requests are in flight and at most `requests_per_minute` start per
//! minute. 429s (honouring `Retry-After`), 5xx answers, timeouts, dropped connections and bodies
//! that are truncated or not JSON are retried with exponential backoff and jitter; other 4xx
//! answers are not. Every answered request is stored in the response cache before it is used,
//! so an interrupted batch resumes without repeating it. Latency and tokens go into
//! hdrhistograms, summarised at the end of a batch.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::cache::{ResponseCache, key};
use super::{AgentCall, BackendError, ChatModel, ChatReply, StatsSummary};
use crate::model::ToolCall;
use crate::rng::Rng;

/// Settings of the HTTP backend.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    /// e.g. `http://127.0.0.1:8000/v1`; requests go to `<base_url>/chat/completions`.
    pub base_url: String,
    /// Sent as a bearer token when set; never logged.
    pub api_key: Option<String>,
    pub model: String,
    pub concurrency: usize,
    pub requests_per_minute: Option<u32>,
    pub timeout: Duration,
    pub max_retries: u32,
    /// First backoff; doubles per attempt (with jitter), capped at 30 s.
    pub retry_base: Duration,
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8000/v1".into(),
            api_key: None,
            model: "default".into(),
            concurrency: 16,
            requests_per_minute: None,
            timeout: Duration::from_secs(120),
            max_retries: 6,
            retry_base: Duration::from_millis(500),
        }
    }
}

struct Stats {
    http_requests: u64,
    answered: u64,
    cache_hits: u64,
    retries: u64,
    failed: u64,
    faults: BTreeMap<String, u64>,
    latency_ms: Histogram<u64>,
    completion_tokens: Histogram<u64>,
    tokens_in: u64,
    tokens_out: u64,
}

/// The HTTP model.
pub struct OpenAiModel {
    opts: OpenAiOptions,
    client: reqwest::Client,
    in_flight: Semaphore,
    /// When the next request may start (rate limit).
    next_start: tokio::sync::Mutex<Instant>,
    cache: Option<ResponseCache>,
    stats: Mutex<Stats>,
}

/// What one attempt gave.
enum Attempt {
    Answer(ChatReply),
    /// Worth retrying; with the server's `Retry-After` when it sent one.
    Transient(String, Option<Duration>),
    Refused(String),
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid histogram bounds")
}

/// Parses a chat-completions response body.
///
/// ```
/// # use tdscale::llm::openai::parse_reply;
/// let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}],"usage":{"prompt_tokens":9,"completion_tokens":4}}"#;
/// let r = parse_reply(body).unwrap();
/// assert_eq!(r.tool_calls[0].name, "f");
/// assert_eq!(r.completion_tokens, 4);
/// assert!(parse_reply(b"{\"choices\":[").is_err());
/// ```
pub fn parse_reply(body: &[u8]) -> Result<ChatReply, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_string())?;
    let msg = v
        .pointer("/choices/0/message")
        .ok_or_else(|| "no choices[0].message".to_string())?;
    let content = msg
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut tool_calls = vec![];
    for c in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| "a tool call without a function name".to_string())?;
        let arguments = match c.pointer("/function/arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "{}".into(),
        };
        tool_calls.push(ToolCall {
            id: c.get("id").and_then(Value::as_str).map(str::to_string),
            name: name.to_string(),
            arguments,
        });
    }
    let tokens = |k: &str| {
        v.pointer(&format!("/usage/{k}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(ChatReply {
        content,
        tool_calls,
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
    })
}

impl OpenAiModel {
    /// A client; with a cache, answers are stored and reused.
    pub fn new(opts: OpenAiOptions, cache: Option<ResponseCache>) -> crate::error::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| {
                crate::error::Error::Other(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(Self {
            in_flight: Semaphore::new(opts.concurrency.max(1)),
            next_start: tokio::sync::Mutex::new(Instant::now()),
            client,
            cache,
            stats: Mutex::new(Stats {
                http_requests: 0,
                answered: 0,
                cache_hits: 0,
                retries: 0,
                failed: 0,
                faults: BTreeMap::new(),
                latency_ms: histogram(),
                completion_tokens: histogram(),
                tokens_in: 0,
                tokens_out: 0,
            }),
            opts,
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.opts.base_url.trim_end_matches('/')
        )
    }

    /// Waits for the rate limit to allow one more request.
    async fn pace(&self) {
        let Some(rpm) = self.opts.requests_per_minute.filter(|r| *r > 0) else {
            return;
        };
        let interval = Duration::from_secs_f64(60.0 / rpm as f64);
        let start = {
            let mut next = self.next_start.lock().await;
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + interval;
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }

    async fn attempt(&self, call: &AgentCall, cache_key: &str) -> Attempt {
        self.pace().await;
        let _permit = self.in_flight.acquire().await.expect("never closed");
        self.stats.lock().expect("stats lock").http_requests += 1;
        let started = Instant::now();
        let mut req = self
            .client
            .post(self.url())
            .header("x-tdscale-agent", call.role.name())
            .header("x-tdscale-cache-key", cache_key)
            .json(&call.request);
        if let Some(k) = &self.opts.api_key {
            req = req.bearer_auth(k);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::Transient("timeout".into(), None),
            Err(e) if e.is_connect() => {
                return Attempt::Transient("connection refused".into(), None);
            }
            Err(_) => return Attempt::Transient("connection dropped".into(), None),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)));
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => return Attempt::Transient("timeout".into(), None),
            Err(_) => return Attempt::Transient("truncated body".into(), None),
        };
        if status.as_u16() == 429 || status.is_server_error() {
            return Attempt::Transient(status.as_u16().to_string(), retry_after);
        }
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Attempt::Refused(format!("HTTP {status}: {text}"));
        }
        match parse_reply(&body) {
            Ok(reply) => {
                let mut s = self.stats.lock().expect("stats lock");
                s.answered += 1;
                let ms = started.elapsed().as_millis().max(1) as u64;
                s.latency_ms.saturating_record(ms);
                s.tokens_in += reply.prompt_tokens;
                s.tokens_out += reply.completion_tokens;
                s.completion_tokens
                    .saturating_record(reply.completion_tokens.max(1));
                Attempt::Answer(reply)
            }
            Err(why) => Attempt::Transient(why, None),
        }
    }

    fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let base = self.opts.retry_base.as_secs_f64() * 2f64.powi(attempt as i32);
        Duration::from_secs_f64(base.min(30.0) * (0.5 + rng.f64()))
    }
}

#[async_trait]
impl ChatModel for OpenAiModel {
    async fn chat(&self, call: &AgentCall) -> Result<ChatReply, BackendError> {
        let cache_key = key(&call.request);
        if let Some(c) = &self.cache
            && let Some(hit) = c.get(&cache_key).await
        {
            self.stats.lock().expect("stats lock").cache_hits += 1;
            return Ok(hit);
        }
        let mut rng = Rng::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7),
        );
        let mut last = String::new();
        for attempt in 0..=self.opts.max_retries {
            match self.attempt(call, &cache_key).await {
                Attempt::Answer(reply) => {
                    if let Some(c) = &self.cache
                        && let Err(e) = c.put(&cache_key, &reply).await
                    {
                        tracing::warn!("could not cache a response: {e}");
                    }
                    return Ok(reply);
                }
                Attempt::Refused(why) => {
                    self.stats.lock().expect("stats lock").failed += 1;
                    return Err(BackendError::Refused(why));
                }
                Attempt::Transient(why, retry_after) => {
                    {
                        let mut s = self.stats.lock().expect("stats lock");
                        *s.faults.entry(why.clone()).or_default() += 1;
                        if attempt < self.opts.max_retries {
                            s.retries += 1;
                        }
                    }
                    tracing::debug!(agent = call.role.name(), attempt, "transient fault: {why}");
                    last = why;
                    if attempt < self.opts.max_retries {
                        let wait = retry_after.unwrap_or_else(|| self.backoff(attempt, &mut rng));
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        self.stats.lock().expect("stats lock").failed += 1;
        Err(BackendError::Exhausted {
            attempts: self.opts.max_retries + 1,
            last,
        })
    }

    fn stats(&self) -> Option<StatsSummary> {
        let s = self.stats.lock().expect("stats lock");
        let q = |h: &Histogram<u64>, p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        Some(StatsSummary {
            http_requests: s.http_requests,
            answered: s.answered,
            cache_hits: s.cache_hits,
            retries: s.retries,
            failed: s.failed,
            faults: s.faults.clone(),
            latency_ms_p50: q(&s.latency_ms, 0.5),
            latency_ms_p90: q(&s.latency_ms, 0.9),
            latency_ms_p99: q(&s.latency_ms, 0.99),
            latency_ms_max: s.latency_ms.max(),
            prompt_tokens: s.tokens_in,
            completion_tokens: s.tokens_out,
            completion_tokens_p90: q(&s.completion_tokens, 0.9),
        })
    }

    fn describe(&self) -> String {
        format!("openai({} at {})", self.opts.model, self.opts.base_url)
    }
}
