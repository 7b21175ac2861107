//! A conversation under construction, for the dialects whose sources are not already a list of
//! chat messages (content blocks, event logs, item lists, agent histories).
//!
//! Everything a source carries beyond the columns lands in `metadata` in one layout shared by
//! every dialect:
//! - `message_fields.<i>`: fields of the source message(s) behind stored message `i`, and in
//!   `message_fields.<i>.content_parts` the parts kept verbatim instead of a column (images,
//!   audio, files, redacted thinking, built-in tool items), each as `{"position", "part"}` with its
//!   position in the source list it came from;
//! - `events`: whole source events that carry no message (session summaries, token counts,
//!   state changes), each as `{"at_message", "event"}` with the index of the message it precedes;
//! - `system_fields`: fields of the source system prompt.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::{Message, ToolCall, Trajectory};

/// A conversation being built.
#[derive(Debug, Default)]
pub struct Conv {
    system: Vec<String>,
    pub messages: Vec<Message>,
    fields: BTreeMap<usize, Map<String, Value>>,
    system_fields: Map<String, Value>,
    events: Vec<Value>,
    /// Parts that belong to the next message (a built-in tool item between two messages).
    deferred: Vec<Value>,
}

impl Conv {
    pub fn new() -> Self {
        Self::default()
    }

    /// A system prompt piece: part of `system` while no message has been stored, else a message
    /// with role `system`.
    pub fn system(&mut self, text: impl Into<String>) -> Option<usize> {
        let text = text.into();
        if self.messages.is_empty() {
            if !text.is_empty() {
                self.system.push(text);
            }
            None
        } else {
            Some(self.push(Message::text("system", text)))
        }
    }

    /// True once a system prompt piece is stored.
    pub fn has_system(&self) -> bool {
        !self.system.is_empty()
    }

    /// Stores a message and returns its index.
    pub fn push(&mut self, m: Message) -> usize {
        self.messages.push(m);
        let i = self.messages.len() - 1;
        for p in std::mem::take(&mut self.deferred) {
            self.part_value(i, p);
        }
        i
    }

    /// A user message.
    pub fn user(&mut self, text: Option<String>) -> usize {
        self.push(Message {
            role: "user".into(),
            content: text,
            ..Default::default()
        })
    }

    /// A new, empty assistant message.
    pub fn assistant(&mut self) -> usize {
        self.push(Message {
            role: "assistant".into(),
            ..Default::default()
        })
    }

    /// A tool result answering `call_id` (paired by order when `None`).
    pub fn result(
        &mut self,
        call_id: Option<String>,
        content: Option<String>,
        error: bool,
    ) -> usize {
        self.push(Message {
            role: "tool".into(),
            content,
            tool_call_id: call_id,
            error: error.then_some(true),
            ..Default::default()
        })
    }

    /// The message at `i`.
    pub fn msg(&mut self, i: usize) -> &mut Message {
        &mut self.messages[i]
    }

    /// Appends text to the content of message `i` (parts are joined with no separator).
    pub fn add_text(&mut self, i: usize, text: &str) {
        let m = &mut self.messages[i];
        match &mut m.content {
            Some(c) => c.push_str(text),
            None => m.content = Some(text.to_string()),
        }
    }

    /// Appends a reasoning piece to message `i` (pieces are joined with a blank line).
    pub fn add_reasoning(&mut self, i: usize, text: &str) {
        if text.is_empty() {
            return;
        }
        let m = &mut self.messages[i];
        match &mut m.reasoning {
            Some(r) => {
                r.push_str("\n\n");
                r.push_str(text);
            }
            None => m.reasoning = Some(text.to_string()),
        }
    }

    /// Adds a call to message `i`.
    pub fn add_call(&mut self, i: usize, call: ToolCall) {
        self.messages[i].tool_calls.push(call);
    }

    /// Keeps a source field of message `i` (the source's own key).
    pub fn field(&mut self, i: usize, key: &str, value: Value) {
        self.fields
            .entry(i)
            .or_default()
            .insert(key.to_string(), value);
    }

    /// Keeps every entry of `fields` on message `i`; a key already there is kept as `key#2`, …
    pub fn fields(&mut self, i: usize, fields: Map<String, Value>) {
        let entry = self.fields.entry(i).or_default();
        for (k, v) in fields {
            let mut key = k.clone();
            let mut n = 2;
            while entry.contains_key(&key) {
                key = format!("{k}#{n}");
                n += 1;
            }
            entry.insert(key, v);
        }
    }

    /// Appends `value` to the list `key` of message `i`.
    pub fn push_field(&mut self, i: usize, key: &str, value: Value) {
        let entry = self.fields.entry(i).or_default();
        match entry.get_mut(key) {
            Some(Value::Array(a)) => a.push(value),
            _ => {
                entry.insert(key.to_string(), Value::Array(vec![value]));
            }
        }
    }

    /// Keeps a source part of message `i` verbatim, with its position in its source list.
    pub fn part(&mut self, i: usize, position: usize, part: Value) {
        self.part_value(i, json!({"position": position, "part": part}));
    }

    fn part_value(&mut self, i: usize, entry: Value) {
        self.push_field(i, "content_parts", entry);
    }

    /// Keeps a part that belongs with the next message stored (or the last, at the end).
    pub fn defer_part(&mut self, position: usize, part: Value) {
        self.deferred
            .push(json!({"position": position, "part": part}));
    }

    /// Keeps a field of the system prompt.
    pub fn system_field(&mut self, key: &str, value: Value) {
        self.system_fields.insert(key.to_string(), value);
    }

    /// Keeps a whole source event that makes no message.
    pub fn event(&mut self, event: Value) {
        self.events
            .push(json!({"at_message": self.messages.len(), "event": event}));
    }

    /// Number of messages stored.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when no message is stored.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Moves the conversation into `t`: system prompt (after any `t` already has), messages
    /// and the metadata layout described in the module documentation.
    pub fn finish_into(mut self, t: &mut Trajectory) {
        if !self.deferred.is_empty() {
            match self.messages.len() {
                0 => {
                    let d = std::mem::take(&mut self.deferred);
                    self.system_fields
                        .insert("content_parts".into(), Value::Array(d));
                }
                n => {
                    for p in std::mem::take(&mut self.deferred) {
                        self.part_value(n - 1, p);
                    }
                }
            }
        }
        if !self.system.is_empty() {
            let s = self.system.join("\n\n");
            t.system = Some(match t.system.take() {
                Some(existing) if !existing.is_empty() => format!("{existing}\n\n{s}"),
                _ => s,
            });
        }
        t.messages = self.messages;
        if !self.fields.is_empty() {
            let m: Map<String, Value> = self
                .fields
                .into_iter()
                .map(|(i, f)| (i.to_string(), Value::Object(f)))
                .collect();
            t.metadata.insert("message_fields".into(), Value::Object(m));
        }
        if !self.system_fields.is_empty() {
            t.metadata
                .insert("system_fields".into(), Value::Object(self.system_fields));
        }
        if !self.events.is_empty() {
            t.metadata
                .insert("events".into(), Value::Array(self.events));
        }
    }
}
