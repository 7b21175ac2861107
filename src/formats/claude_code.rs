//! Claude Code session logs (`~/.claude/projects/<project>/<sessionId>.jsonl`, sub-agents in
//! `<sessionId>/subagents/agent-<agentId>.jsonl`): one file is one session, one JSON line per
//! event. There is no published schema; this reader follows the fields the logs carry.
//!
//! `user` and `assistant` lines hold an Anthropic API message (`message.content` as in
//! [`super::anthropic`]): the streamed lines of one response share `message.id` and are merged
//! into one assistant message; a user line's `tool_result` blocks are tool messages (with the
//! line's `toolUseResult`) before any user text. Lines of a sub-agent (`isSidechain` with an
//! `agentId`) form their own trajectory, `<source>/<sessionId>/<agentId>`, whose parent is the
//! session `<source>/<sessionId>`. `summary`, `system`, `progress`, `file-history-snapshot` and
//! other lines are kept in `metadata.events`; each line's own fields (uuid, parentUuid,
//! timestamp, usage, …) are kept with its message under `lines`, and the fields every line repeats
//! (sessionId, cwd, version, gitBranch, …) once in `metadata.session`. Lines are read in file
//! order.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::anthropic::{fill_assistant, fill_user};
use super::conv::Conv;
use super::fields::RecordResult;
use super::parts::{self, Dialect};
use super::{ParseContext, base};
use crate::model::Trajectory;

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    (
        "sessionId (+ agentId of a sub-agent)",
        "traj_id (sub-agent: parent_id = the session)",
    ),
    (
        "assistant lines sharing message.id",
        "one assistant message (text, thinking, tool_use)",
    ),
    (
        "user lines: tool_result blocks",
        "tool messages (is_error → error)",
    ),
    (
        "user lines: text / image blocks",
        "user messages (images → content_parts)",
    ),
    (
        "summary, system, progress, file-history-snapshot lines",
        "metadata.events",
    ),
    (
        "per-line fields (uuid, timestamp, toolUseResult, usage, …)",
        "metadata.message_fields.<i>.lines",
    ),
    (
        "fields every line repeats (cwd, version, gitBranch, …)",
        "metadata.session",
    ),
];

/// Fields that every line of a session repeats: kept once, in `metadata.session`.
const SESSION_FIELDS: &[&str] = &[
    "sessionId",
    "cwd",
    "version",
    "gitBranch",
    "userType",
    "isSidechain",
    "agentId",
    "slug",
];

const MESSAGE_LINES: &[&str] = &["user", "assistant"];

/// True for a line of a session log.
pub fn looks_like(m: &Map<String, Value>) -> bool {
    let t = m.get("type").and_then(Value::as_str).unwrap_or("");
    (m.contains_key("sessionId") && m.contains_key("uuid") && !t.is_empty())
        || (t == "summary" && m.contains_key("leafUuid"))
        || (t == "file-history-snapshot" && m.contains_key("snapshot"))
}

struct Session {
    conv: Conv,
    /// `message.id` of the last assistant line, while no other line came in between.
    last_response: Option<String>,
    common: Map<String, Value>,
    session_id: String,
    agent_id: Option<String>,
}

impl Session {
    /// The line without the fields the session repeats (when they have the session's value).
    fn strip(&self, mut line: Map<String, Value>) -> Map<String, Value> {
        for k in SESSION_FIELDS {
            if line.get(*k).is_some() && line.get(*k) == self.common.get(*k) {
                line.remove(*k);
            }
        }
        line
    }
}

/// Parses the lines of one session file into its trajectories (the session, and each
/// sub-agent whose lines it holds).
pub fn parse(ctx: &ParseContext, lines: Vec<(usize, Value)>) -> RecordResult<Vec<Trajectory>> {
    let mut sessions: Vec<Session> = vec![];
    let mut by_key: HashMap<String, usize> = HashMap::new();
    // Events seen before the first message line, for the first session.
    let mut early_events: Vec<Value> = vec![];
    for (n, line) in lines {
        let path = format!("line {n}");
        let Value::Object(mut m) = line else {
            return Err(format!("{path}: expected an object"));
        };
        let kind = m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !MESSAGE_LINES.contains(&kind.as_str()) {
            let mut e = Map::new();
            e.insert("line".into(), n.into());
            e.extend(m);
            let e = Value::Object(e);
            let sidechain_key = e
                .get("isSidechain")
                .and_then(Value::as_bool)
                .filter(|s| *s)
                .and(e.get("agentId").and_then(Value::as_str))
                .zip(e.get("sessionId").and_then(Value::as_str))
                .map(|(a, s)| format!("{s}/{a}"));
            let target = sidechain_key
                .and_then(|k| by_key.get(&k).copied())
                .or(if sessions.is_empty() { None } else { Some(0) });
            match target {
                Some(s) => {
                    let sess = &mut sessions[s];
                    sess.last_response = None;
                    sess.conv.event(e);
                }
                None => early_events.push(e),
            }
            continue;
        }
        let lo = &m;
        let session_id = match lo.get("sessionId").and_then(Value::as_str) {
            Some(s) => s.to_string(),
            None => return Err(format!("{path}.sessionId: required string is missing")),
        };
        let agent_id = if lo.get("isSidechain") == Some(&Value::Bool(true)) {
            lo.get("agentId")
                .and_then(Value::as_str)
                .map(str::to_string)
        } else {
            None
        };
        let key = match &agent_id {
            Some(a) => format!("{session_id}/{a}"),
            None => session_id.clone(),
        };
        let s = match by_key.get(&key) {
            Some(&s) => s,
            None => {
                let common: Map<String, Value> = SESSION_FIELDS
                    .iter()
                    .filter_map(|k| lo.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect();
                sessions.push(Session {
                    conv: Conv::new(),
                    last_response: None,
                    common,
                    session_id: session_id.clone(),
                    agent_id: agent_id.clone(),
                });
                by_key.insert(key, sessions.len() - 1);
                if sessions.len() == 1 {
                    for e in early_events.drain(..) {
                        sessions[0].conv.event(e);
                    }
                }
                sessions.len() - 1
            }
        };
        let sess = &mut sessions[s];
        let Some(Value::Object(mut message)) = m.remove("message") else {
            return Err(format!("{path}.message: expected an object"));
        };
        let content = message.remove("content");
        let cpath = format!("{path}.message.content");
        let c = parts::read(Dialect::Anthropic, content.as_ref(), &cpath)?;
        let first = if kind == "assistant" {
            let rid = message
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string);
            let merge = rid.is_some()
                && sess.last_response == rid
                && sess
                    .conv
                    .messages
                    .last()
                    .is_some_and(|m| m.role == "assistant");
            let a = if merge {
                sess.conv.len() - 1
            } else {
                sess.conv.assistant()
            };
            fill_assistant(&mut sess.conv, a, c, &cpath)?;
            sess.last_response = rid;
            Some(a)
        } else {
            sess.last_response = None;
            fill_user(&mut sess.conv, c, &cpath)?
        };
        let mut kept = Map::new();
        kept.insert("line".into(), n.into());
        if !message.is_empty() {
            kept.insert("message".into(), Value::Object(message));
        }
        kept.extend(sess.strip(m));
        match first {
            Some(i) => sess.conv.push_field(i, "lines", Value::Object(kept)),
            None => sess.conv.event(Value::Object(kept)),
        }
    }
    if sessions.is_empty() {
        return Err("no user or assistant line: the session has no conversation".into());
    }
    let mut out = vec![];
    let mut first_events = early_events;
    for sess in sessions {
        let mut t = base(ctx);
        let mut conv = sess.conv;
        for e in first_events.drain(..) {
            conv.event(e);
        }
        conv.finish_into(&mut t);
        t.metadata
            .insert("session".into(), Value::Object(sess.common));
        match &sess.agent_id {
            Some(a) => {
                t.assign_id(Some(format!("{}/{a}", sess.session_id)));
                t.parent_id = Some(format!("{}/{}", t.source, sess.session_id));
            }
            None => t.assign_id(Some(sess.session_id.clone())),
        }
        out.push(t);
    }
    Ok(out)
}
