//! One trajectory as the chat page shows it: every message with its calls; each call with its
//! pretty-printed arguments, the message holding its result and whether that result is an
//! error, its step complexity c(a_t), and the earlier results its arguments' values come from;
//! the reasoning mode's moves with the messages that made each. Everything is computed by the
//! same code as the SQL functions (`tool_calls_of`, `step_complexity`, `reasoning_mode`).

use datafusion::arrow::array::{Array, RecordBatch};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::metrics::calls::{CodeTools, Weights, call_facts, value_sources};
use crate::metrics::messages::{MessagesView, pair_calls};
use crate::metrics::reasoning_mode::mode_moves;
use crate::model::{ToolList, Trajectory};
use crate::store::convert::{batch_to_trajectories, trajectories_to_batch};

/// Where a value of a call's arguments was found.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    /// The tool message (index into `messages`).
    pub message: usize,
    /// The call that message answers, when known.
    pub call: Option<usize>,
    pub value: String,
}

/// One tool call.
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    /// Position among the trajectory's calls, from 0.
    pub number: usize,
    pub id: Option<String>,
    pub name: String,
    /// The arguments as stored.
    pub arguments: String,
    /// The arguments indented, when they are JSON.
    pub arguments_pretty: Option<String>,
    /// Whether the tool is among the tools the trajectory offers (`None` when it lists none).
    pub offered: Option<bool>,
    /// The message holding the result.
    pub result: Option<usize>,
    /// Whether that result is an error (the source's flag or the error rule of the metrics).
    pub is_error: Option<bool>,
    /// c(a_t) with the default weights.
    pub step_complexity: f64,
    /// The earlier results the arguments consume (the dependency of c(a_t)).
    pub sources: Vec<SourceView>,
}

/// One message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub index: usize,
    pub role: String,
    pub content: Option<String>,
    pub reasoning: Option<String>,
    pub name: Option<String>,
    pub tool_call_id: Option<String>,
    /// The source's error flag, as stored.
    pub error: Option<bool>,
    /// For a tool message: whether the metrics count it as an error.
    pub is_error: bool,
    pub calls: Vec<CallView>,
    /// For a tool message: the call it answers.
    pub answers: Option<usize>,
    /// The reasoning-mode moves this message is part of.
    pub moves: Vec<String>,
}

/// A move of the reasoning mode and the messages that made it.
#[derive(Debug, Clone, Serialize)]
pub struct MoveView {
    #[serde(rename = "move")]
    pub mv: String,
    pub messages: Vec<usize>,
}

/// The whole trajectory.
#[derive(Debug, Clone, Serialize)]
pub struct TrajectoryView {
    pub traj_id: String,
    pub source: String,
    pub format: String,
    pub round: i32,
    pub parent_id: Option<String>,
    pub batch_id: Option<String>,
    pub cluster_id: Option<String>,
    pub domain: Option<String>,
    /// The stored label, if any.
    pub reasoning_mode: Option<String>,
    /// The mode derived from the actions.
    pub mode: String,
    /// CAC with the default weights (the sum of the calls' c(a_t)).
    pub cac: f64,
    pub reward: Option<f64>,
    pub num_turns: i32,
    pub num_tool_calls: i32,
    pub num_tokens: i64,
    pub system: Option<String>,
    pub tools: ToolList,
    pub metadata: Value,
    pub messages: Vec<MessageView>,
    pub moves: Vec<MoveView>,
}

/// The view of the first row of a `trajectories` batch (all its columns), if it has one.
pub fn view_of(batch: &RecordBatch) -> Result<Option<TrajectoryView>> {
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let batch = batch.slice(0, 1);
    let t = batch_to_trajectories(&batch)?
        .pop()
        .ok_or_else(|| Error::Other("no trajectory read back".into()))?;
    let messages = batch
        .column_by_name("messages")
        .ok_or_else(|| Error::Other("the row has no messages column".into()))?;
    if messages.is_null(0) {
        return Ok(Some(build(t, None)?));
    }
    let v = MessagesView::try_new(messages)?;
    Ok(Some(build(t, Some(&v))?))
}

/// The view of a trajectory that is not in the table (a rejected one, from its JSON).
pub fn view_of_trajectory(t: &Trajectory) -> Result<TrajectoryView> {
    let batch = trajectories_to_batch(std::slice::from_ref(t))?;
    let v = MessagesView::try_new(
        batch
            .column_by_name("messages")
            .ok_or_else(|| Error::Other("no messages column".into()))?,
    )?;
    build(t.clone(), Some(&v))
}

fn pretty(arguments: &str) -> Option<String> {
    let v: Value = serde_json::from_str(arguments).ok()?;
    serde_json::to_string_pretty(&v).ok()
}

fn build(t: Trajectory, v: Option<&MessagesView>) -> Result<TrajectoryView> {
    let code = CodeTools::default();
    let weights = Weights::default();
    let (pairs, facts, sources, moves, base) = match v {
        Some(v) => {
            let facts = call_facts(v, 0, &code);
            let moves = mode_moves(v, 0, &facts);
            (
                pair_calls(v, 0),
                facts,
                value_sources(v, 0),
                moves,
                v.messages(0).start,
            )
        }
        None => (vec![], vec![], vec![], vec![], 0),
    };
    // The call each tool message answers, by message index.
    let mut answers: Vec<Option<usize>> = vec![None; t.messages.len()];
    for (k, p) in pairs.iter().enumerate() {
        if let Some(r) = p.result
            && let Some(slot) = answers.get_mut(r - base)
        {
            *slot = Some(k);
        }
    }
    let mut moves_of: Vec<Vec<String>> = vec![vec![]; t.messages.len()];
    for (mv, ms) in &moves {
        for &m in ms {
            if let Some(slot) = moves_of.get_mut(m) {
                slot.push(mv.clone());
            }
        }
    }
    let offered: Vec<&str> = t.tools.iter().map(|d| d.name.as_str()).collect();
    let mut number = 0usize;
    let mut cac = 0.0;
    let mut messages = Vec::with_capacity(t.messages.len());
    for (i, m) in t.messages.iter().enumerate() {
        let mut calls = vec![];
        for c in &m.tool_calls {
            let k = number;
            number += 1;
            let result = pairs.get(k).and_then(|p| p.result).map(|r| r - base);
            let step = facts.get(k).map(|f| weights.step(f)).unwrap_or(0.0);
            cac += step;
            calls.push(CallView {
                number: k,
                id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
                arguments_pretty: pretty(&c.arguments),
                offered: (!offered.is_empty()).then(|| offered.contains(&c.name.as_str())),
                result,
                is_error: result.and_then(|r| v.map(|v| v.is_error(r + base))),
                step_complexity: step,
                sources: sources
                    .get(k)
                    .map(|s| {
                        s.iter()
                            .map(|s| SourceView {
                                message: s.message,
                                call: answers.get(s.message).copied().flatten(),
                                value: s.value.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        messages.push(MessageView {
            index: i,
            role: m.role.to_string(),
            content: m.content.clone(),
            reasoning: m.reasoning.clone(),
            name: m.name.clone(),
            tool_call_id: m.tool_call_id.clone(),
            error: m.error,
            is_error: m.role == "tool" && v.is_some_and(|v| v.is_error(i + base)),
            calls,
            answers: answers.get(i).copied().flatten(),
            moves: std::mem::take(&mut moves_of[i]),
        });
    }
    Ok(TrajectoryView {
        mode: moves
            .iter()
            .map(|(m, _)| m.as_str())
            .collect::<Vec<_>>()
            .join(">"),
        moves: moves
            .into_iter()
            .map(|(mv, messages)| MoveView { mv, messages })
            .collect(),
        num_turns: t.num_turns(),
        num_tool_calls: t.num_tool_calls(),
        num_tokens: t.num_tokens(),
        cac,
        metadata: Value::Object(t.metadata),
        messages,
        traj_id: t.traj_id,
        source: t.source,
        format: t.format,
        round: t.round,
        parent_id: t.parent_id,
        batch_id: t.batch_id,
        cluster_id: t.cluster_id,
        domain: t.domain,
        reasoning_mode: t.reasoning_mode,
        reward: t.reward,
        system: t.system,
        tools: t.tools,
    })
}
