//! `tdscale export openai`: trajectories as OpenAI chat JSONL, one trajectory per line, with
//! every label and the metadata, so that ingesting the file again gives the same `traj_id`s and
//! the same messages.

use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::model::Trajectory;
use crate::store::{Corpus, convert};

/// The OpenAI chat messages of a trajectory, system prompt first. With `extras`, the fields
/// that only tdscale reads back (`reasoning_content`, `error`, the tool `name`) are included;
/// without, the messages are exactly what OpenAI-style fine-tuning accepts.
pub fn messages_json(t: &Trajectory, extras: bool) -> Vec<Value> {
    let mut messages = vec![];
    if let Some(s) = &t.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    for m in &t.messages {
        let mut o = Map::new();
        o.insert("role".into(), Value::String(m.role.clone()));
        o.insert(
            "content".into(),
            m.content.clone().map(Value::String).unwrap_or(Value::Null),
        );
        if !m.tool_calls.is_empty() {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                .collect();
            o.insert("tool_calls".into(), Value::Array(calls));
        }
        if let Some(id) = &m.tool_call_id {
            o.insert("tool_call_id".into(), Value::String(id.clone()));
        }
        if extras {
            if let Some(r) = &m.reasoning {
                o.insert("reasoning_content".into(), Value::String(r.clone()));
            }
            if let Some(n) = &m.name {
                o.insert("name".into(), Value::String(n.clone()));
            }
            if let Some(e) = m.error {
                o.insert("error".into(), Value::Bool(e));
            }
        }
        messages.push(Value::Object(o));
    }
    messages
}

/// The tools of a trajectory as OpenAI function tools.
pub fn tools_json(t: &Trajectory) -> Vec<Value> {
    t.tools
        .iter()
        .map(|d| {
            let params = d.parameters.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()).unwrap_or(json!({"type": "object"}));
            json!({"type": "function", "function": {"name": d.name, "description": d.description, "parameters": params}})
        })
        .collect()
}

/// The OpenAI JSON of one trajectory, with every label and the metadata.
pub fn to_openai_json(t: &Trajectory) -> Value {
    let messages = messages_json(t, true);
    let tools = tools_json(t);
    let mut o = Map::new();
    o.insert("traj_id".into(), Value::String(t.traj_id.clone()));
    o.insert("source".into(), Value::String(t.source.clone()));
    for (k, v) in [
        ("domain", &t.domain),
        ("reasoning_mode", &t.reasoning_mode),
        ("cluster_id", &t.cluster_id),
        ("parent_id", &t.parent_id),
        ("batch_id", &t.batch_id),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), Value::String(v.clone()));
        }
    }
    if let Some(r) = t.reward {
        o.insert("reward".into(), json!(r));
    }
    o.insert("messages".into(), Value::Array(messages));
    if !tools.is_empty() {
        o.insert("tools".into(), Value::Array(tools));
    }
    if !t.metadata.is_empty() {
        o.insert("metadata".into(), Value::Object(t.metadata.clone()));
    }
    Value::Object(o)
}

/// Writes the trajectories selected by `filter` (a SQL boolean expression, or all) to `out` as
/// OpenAI JSONL. Returns the number of lines written.
pub async fn export(corpus: &Corpus, out: &str, filter: Option<&str>) -> Result<u64> {
    let ctx = crate::query::session::corpus_context(corpus).await?;
    let sql = match filter {
        Some(f) => format!("SELECT * FROM trajectories WHERE {f} ORDER BY traj_id"),
        None => "SELECT * FROM trajectories ORDER BY traj_id".to_string(),
    };
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    let mut w = super::sink::writer(out)?;
    let mut n = 0u64;
    let io = |e: std::io::Error| Error::Storage {
        url: out.to_string(),
        message: e.to_string(),
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let mut buf = Vec::new();
        for t in convert::batch_to_trajectories(&batch)? {
            serde_json::to_writer(&mut buf, &to_openai_json(&t))
                .map_err(|e| Error::Other(e.to_string()))?;
            buf.push(b'\n');
            n += 1;
        }
        w.write_all(&buf).await.map_err(io)?;
    }
    w.shutdown().await.map_err(io)?;
    Ok(n)
}
