//! OpenHands runs: a JSON array of events (what `save_trajectory_path` writes; one file, one
//! run, named by the file), an evaluation `output.jsonl` line (`{instance_id, history: [events],
//! test_result: {report: {resolved}}, …}`), the feedback wrapper (`{id, feedback, polarity,
//! trajectory: [events]}`) and Hugging Face rows whose `trajectory` already holds chat messages.
//!
//! Events: the `system` action gives the system prompt and the tools; `message` actions are user
//! or assistant messages; every other action is a tool call — with function calling, named and
//! identified by its `tool_call_metadata`, with the arguments the model sent (the actions of one
//! model response are one assistant message, although their observations come in between);
//! without, named after the action (`run` → `execute_bash`, `run_ipython` →
//! `execute_ipython_cell`, `read` / `edit` / `write` → `str_replace_editor`, `browse` →
//! `browser`…) with id `event-<id>`. An action's `thought` is reasoning (for `think` it is the
//! argument). An observation whose `cause` is a call's event is that call's result (`error`
//! when the observation is `error` or `success` is false). Recall, state changes and other
//! bookkeeping events are kept in `metadata.events`; every event's remaining fields are kept with
//! its message, and each model response once in `metadata.model_responses`. `resolved` is the
//! reward (1 or 0).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::conv::Conv;
use super::fields::{Obj, RecordResult, kind};
use super::{LABEL_KEYS, ParseContext, base, openai, take_labels, tool_schema};
use crate::model::{ToolCall, Trajectory, id_text};

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    ("system action: args.content, args.tools", "system, tools"),
    (
        "message actions (source user / agent)",
        "user / assistant messages",
    ),
    (
        "other actions (tool_call_metadata or action name)",
        "messages[].tool_calls",
    ),
    ("args.thought", "messages[].reasoning"),
    (
        "observations (cause = a call's event id)",
        "tool messages (error / success:false → error)",
    ),
    ("recall, state changes, other events", "metadata.events"),
    (
        "tool_call_metadata.model_response",
        "metadata.model_responses.<id>",
    ),
    (
        "event fields (message, timestamp, extras, …)",
        "metadata.message_fields.<i>.events",
    ),
    ("test_result.report.resolved / resolved", "reward"),
    ("instance_id / id / trajectory_id / file name", "traj_id"),
];

const NON_FC_NAMES: &[(&str, &str)] = &[
    ("run", "execute_bash"),
    ("run_ipython", "execute_ipython_cell"),
    ("read", "str_replace_editor"),
    ("edit", "str_replace_editor"),
    ("write", "str_replace_editor"),
    ("browse", "browser"),
    ("browse_interactive", "browser"),
    ("think", "think"),
    ("finish", "finish"),
    ("delegate", "delegate"),
    ("reject", "reject"),
    ("task_tracking", "task_tracker"),
];

const BOOKKEEPING_ACTIONS: &[&str] = &[
    "recall",
    "change_agent_state",
    "null",
    "condensation",
    "condensation_request",
    "pause",
    "resume",
    "stop",
    "loop_recovery",
    "push",
    "send_pr",
    "start",
];

const BOOKKEEPING_OBSERVATIONS: &[&str] = &[
    "recall",
    "agent_state_changed",
    "null",
    "condense",
    "loop_detection",
    "user_rejected",
    "delegate",
];

/// True for an OpenHands event: an object with `action` or `observation` and `source` or `id`.
pub fn is_event(v: &Value) -> bool {
    (v.get("action").is_some_and(Value::is_string)
        || v.get("observation").is_some_and(Value::is_string))
        && (v.get("source").is_some() || v.get("id").is_some())
}

fn is_event_list(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty() && a.iter().take(8).any(is_event))
}

fn is_message_list(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(|m| m.get("role").is_some())
}

/// True for an OpenHands run in any of its forms (a bare event is detected too: a file of
/// events split by its array layout is gathered back into one run by the caller).
pub fn looks_like(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.first().is_some_and(is_event),
        Value::Object(m) => {
            is_event(v)
                || is_event_list(m.get("history"))
                || is_event_list(m.get("trajectory"))
                || (is_message_list(m.get("trajectory"))
                    && (m.contains_key("instance_id") || m.contains_key("trajectory_id")))
        }
        _ => false,
    }
}

struct Events<'a> {
    conv: Conv,
    t: &'a mut Trajectory,
    /// Call id of each action event that made a call.
    call_of_event: HashMap<String, String>,
    /// Assistant message of each model response.
    message_of_response: HashMap<String, usize>,
    model_responses: Map<String, Value>,
}

fn event_key(v: Option<&Value>) -> Option<String> {
    v.and_then(id_text)
}

impl Events<'_> {
    /// Moves the model response out of an event's `tool_call_metadata` into
    /// `metadata.model_responses` (once per response id) and returns the response.
    fn take_response(&mut self, e: &mut Map<String, Value>) -> Option<Value> {
        let tcm = e.get_mut("tool_call_metadata")?.as_object_mut()?;
        let resp = tcm.get("model_response")?.clone();
        let rid = resp.get("id").and_then(id_text)?;
        match self.model_responses.get(&rid) {
            Some(seen) if *seen == resp => {
                tcm.remove("model_response");
            }
            Some(_) => {}
            None => {
                self.model_responses.insert(rid, resp.clone());
                tcm.remove("model_response");
            }
        }
        Some(resp)
    }

    fn event(&mut self, ev: &Value, path: &str) -> RecordResult<()> {
        let Value::Object(orig) = ev else {
            return Err(format!(
                "{path}: expected an event object, found {}",
                kind(ev)
            ));
        };
        let mut e = orig.clone();
        let id_text_of = |e: &Map<String, Value>| event_key(e.get("id")).unwrap_or_default();
        if let Some(action) = e.get("action").and_then(Value::as_str).map(str::to_string) {
            let args = match e.get("args") {
                None => Map::new(),
                Some(Value::Object(a)) => a.clone(),
                Some(_) => {
                    return Err(format!(
                        "{path}: action event {} has args that are not a JSON object",
                        id_text_of(&e)
                    ));
                }
            };
            match action.as_str() {
                "system" => {
                    let content = args.get("content").and_then(Value::as_str).unwrap_or("");
                    self.conv.system(content);
                    if let Some(tools) = args.get("tools") {
                        tool_schema::fill_tools(
                            self.t,
                            Some(tools),
                            &format!("{path}.args.tools"),
                        )?;
                    }
                    if let Some(Value::Object(a)) = e.get_mut("args") {
                        a.remove("content");
                        a.remove("tools");
                    }
                    self.conv.system_field("event", Value::Object(e));
                    return Ok(());
                }
                "message" => {
                    let text = args
                        .get("content")
                        .and_then(Value::as_str)
                        .or(e.get("message").and_then(Value::as_str))
                        .map(str::to_string);
                    let at = if e.get("source").and_then(Value::as_str) == Some("user") {
                        self.conv.user(text)
                    } else {
                        let a = self.conv.assistant();
                        self.conv.msg(a).content = text;
                        a
                    };
                    let mut k = 0;
                    for key in ["image_urls", "images_urls", "file_urls"] {
                        if let Some(Value::Array(urls)) = args.get(key) {
                            for u in urls {
                                self.conv.part(at, k, json!({ key: u }));
                                k += 1;
                            }
                        }
                    }
                    if let Some(Value::Object(a)) = e.get_mut("args") {
                        a.remove("content");
                        for key in ["image_urls", "images_urls", "file_urls"] {
                            if a.get(key)
                                .and_then(Value::as_array)
                                .is_some_and(|u| !u.is_empty())
                            {
                                a.remove(key);
                            }
                        }
                    }
                    self.conv.push_field(at, "events", Value::Object(e));
                    return Ok(());
                }
                a if BOOKKEEPING_ACTIONS.contains(&a) => {
                    self.conv.event(Value::Object(e));
                    return Ok(());
                }
                _ => {}
            }
            // A tool call.
            let response = self.take_response(&mut e);
            let tcm = orig.get("tool_call_metadata").and_then(Value::as_object);
            let (at, name, call_id, arguments) = match tcm {
                Some(tcm) => {
                    let name = tcm
                        .get("function_name")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| format!("{path}: a tool call has no function name"))?
                        .to_string();
                    let cid = tcm
                        .get("tool_call_id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("event-{}", id_text_of(&e)));
                    let rid = response
                        .as_ref()
                        .and_then(|r| r.get("id"))
                        .and_then(id_text);
                    let at = match rid.as_ref().and_then(|r| self.message_of_response.get(r)) {
                        Some(&a) => a,
                        None => {
                            let a = self.conv.assistant();
                            if let Some(r) = rid {
                                self.message_of_response.insert(r, a);
                            }
                            a
                        }
                    };
                    // The arguments the model sent, from its response.
                    let sent = response
                        .as_ref()
                        .and_then(|r| r.pointer("/choices/0/message/tool_calls"))
                        .and_then(Value::as_array)
                        .and_then(|calls| {
                            calls
                                .iter()
                                .find(|c| c.get("id").and_then(Value::as_str) == Some(cid.as_str()))
                        })
                        .and_then(|c| c.pointer("/function/arguments"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    (at, name, cid, sent)
                }
                None => {
                    let a = self.conv.assistant();
                    let name = NON_FC_NAMES
                        .iter()
                        .find(|(k, _)| *k == action)
                        .map(|(_, n)| n.to_string())
                        .or_else(|| {
                            (action == "call_tool_mcp")
                                .then(|| {
                                    args.get("name").and_then(Value::as_str).map(str::to_string)
                                })
                                .flatten()
                        })
                        .unwrap_or_else(|| action.clone());
                    (a, name, format!("event-{}", id_text_of(&e)), None)
                }
            };
            // The thought is reasoning, except for `think`, where it is the argument.
            if action != "think"
                && let Some(thought) = args.get("thought").and_then(Value::as_str)
                && !thought.is_empty()
            {
                self.conv.add_reasoning(at, thought);
                if let Some(Value::Object(a)) = e.get_mut("args") {
                    a.remove("thought");
                }
            }
            let arguments = arguments.unwrap_or_else(|| {
                let mut a = args.clone();
                if action != "think" {
                    a.remove("thought");
                }
                Value::Object(a).to_string()
            });
            self.conv.add_call(
                at,
                ToolCall {
                    id: Some(call_id.clone()),
                    name,
                    arguments,
                },
            );
            if let Some(k) = event_key(e.get("id")) {
                self.call_of_event.insert(k, call_id);
            }
            self.conv.push_field(at, "events", Value::Object(e));
            return Ok(());
        }
        if let Some(obs) = e
            .get("observation")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            let cause = event_key(e.get("cause"));
            let call = cause
                .as_ref()
                .and_then(|c| self.call_of_event.get(c))
                .cloned();
            match call {
                Some(call_id) if !BOOKKEEPING_OBSERVATIONS.contains(&obs.as_str()) => {
                    let error = obs == "error" || e.get("success") == Some(&Value::Bool(false));
                    let content = e.get("content").and_then(Value::as_str).map(str::to_string);
                    self.take_response(&mut e);
                    if content.is_some() {
                        e.remove("content");
                    }
                    let r = self.conv.result(Some(call_id), content, error);
                    self.conv.push_field(r, "events", Value::Object(e));
                }
                _ => {
                    self.take_response(&mut e);
                    self.conv.event(Value::Object(e));
                }
            }
            return Ok(());
        }
        Err(format!(
            "{path}: event {} is neither an action nor an observation",
            id_text_of(&e)
        ))
    }
}

fn read_events(t: &mut Trajectory, events: &[Value], path: &str) -> RecordResult<()> {
    let mut ev = Events {
        conv: Conv::new(),
        t,
        call_of_event: HashMap::new(),
        message_of_response: HashMap::new(),
        model_responses: Map::new(),
    };
    for (i, e) in events.iter().enumerate() {
        ev.event(e, &format!("{path}[{i}]"))?;
    }
    let Events {
        conv,
        t,
        model_responses,
        ..
    } = ev;
    conv.finish_into(t);
    if !model_responses.is_empty() {
        t.metadata
            .insert("model_responses".into(), Value::Object(model_responses));
    }
    Ok(())
}

fn resolved(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(1.0),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(0.0),
        _ => None,
    }
}

/// Parses one OpenHands run.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let mut t = base(ctx);
    if let Value::Array(events) = &v {
        read_events(&mut t, events, "events")?;
        if !ctx.file_stem.is_empty() {
            t.assign_id(Some(ctx.file_stem.clone()));
        }
        return Ok(t);
    }
    if is_event(&v) {
        return Err(
            "a single OpenHands event: a run is the whole list of events (one file)".into(),
        );
    }
    let o = Obj::of(&v, "")?;
    take_labels(&mut t, &o)?;
    let (key, id) = if is_event_list(o.get("history")) {
        read_events(&mut t, o.arr("history")?.expect("checked"), "history")?;
        if let Some(r) = resolved(v.pointer("/test_result/report/resolved")) {
            t.reward = Some(r);
        }
        ("history", o.get("instance_id").and_then(id_text))
    } else if is_event_list(o.get("trajectory")) {
        read_events(&mut t, o.arr("trajectory")?.expect("checked"), "trajectory")?;
        ("trajectory", o.get("id").and_then(id_text))
    } else if let Some(msgs) = o.arr("trajectory")? {
        openai::fill_messages(&mut t, msgs, "trajectory")?;
        tool_schema::fill_tools(&mut t, o.get("tools"), "tools")?;
        if let Some(r) = resolved(o.get("resolved")) {
            t.reward = Some(r);
        }
        (
            "trajectory",
            o.get("trajectory_id")
                .or(o.get("instance_id"))
                .and_then(id_text),
        )
    } else {
        return Err("no OpenHands events: expected `history` or `trajectory`".into());
    };
    let mut known = vec![key];
    if is_message_list(o.get("trajectory")) {
        known.push("tools");
    }
    known.extend_from_slice(LABEL_KEYS);
    t.metadata.extend(o.rest(&known));
    o.assign_id(&mut t, id)?;
    Ok(t)
}
