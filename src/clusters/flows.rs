//! Observed flow: in the corpus's own trajectories, a value that a call of tool A returned is
//! passed in an argument of a later call of tool B. The test is CAC's "consumes an earlier
//! result" ([`carried_value`]: a string of 3+ characters or a number other than 0 and 1, found
//! verbatim in an earlier tool result), applied per parameter of B and per tool A whose result
//! held the value, and counted over trajectories.
//!
//! Some matches carry no dependency and are not counted: the value was typed by the user before
//! B's call (both calls may just repeat it); every call of A that returned it had received it as
//! its own argument (A only echoed it); the parameter has an enumeration in B's schema (`cabin:
//! economy | business`: closed vocabulary is in many results by chance); the value is a number
//! of fewer than 3 characters (a count of bags or seats is too).
//! Only the original trajectories (round 0) count: synthesized rounds were built from these
//! very edges.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use rayon::prelude::*;

use crate::error::Result;
use crate::metrics::calls::carried_value;
use crate::metrics::json_leaves::{Leaf, keyed_leaves};
use crate::metrics::messages::{MessagesView, pair_calls};
use crate::query::session::CorpusSession;

/// (tool A, tool B, parameter of B) by tool name.
pub type FlowKey = (String, String, String);

/// How often one flow was seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCount {
    /// Trajectories where the value came from A: not typed by the user, not an echo.
    pub trajectories: u64,
    /// Trajectories where the value matched at all (typed or echoed ones included).
    pub matched: u64,
}

/// The flows of a set of trajectories.
#[derive(Debug, Clone, Default)]
pub struct ObservedFlows {
    pub flows: HashMap<FlowKey, FlowCount>,
    /// Trajectories read.
    pub trajectories: u64,
}

impl ObservedFlows {
    fn merge(mut self, other: ObservedFlows) -> ObservedFlows {
        self.trajectories += other.trajectories;
        for (k, c) in other.flows {
            let e = self.flows.entry(k).or_default();
            e.trajectories += c.trajectories;
            e.matched += c.matched;
        }
        self
    }
}

/// The flows of one trajectory: for each (A, B, parameter), whether a real one was seen (not
/// typed, not echoed) — `false` when the value only ever matched as an echo or a typed value.
///
/// `closed(tool, parameter)` says whether a parameter is closed vocabulary.
pub fn flows_of_row(
    v: &MessagesView,
    row: usize,
    closed: &dyn Fn(&str, &str) -> bool,
) -> HashMap<FlowKey, bool> {
    let mut out: HashMap<FlowKey, bool> = HashMap::new();
    let answered_by: HashMap<usize, usize> = pair_calls(v, row)
        .into_iter()
        .filter_map(|p| p.result.map(|r| (r, p.call)))
        .collect();
    // (tool name, result text, arguments of the call it answered)
    let mut answered: Vec<(&str, &str, &str)> = vec![];
    let mut typed: Vec<&str> = vec![];
    for m in v.messages(row) {
        match v.role(m) {
            "user" => typed.extend(v.content(m)),
            "tool" => {
                if let (Some(&c), Some(content)) = (answered_by.get(&m), v.content(m)) {
                    answered.push((v.call_name(c), content, v.call_args(c)));
                }
            }
            "assistant" if !answered.is_empty() => {
                for c in v.calls(m) {
                    let b = v.call_name(c);
                    let Some(leaves) = keyed_leaves(v.call_args(c)) else {
                        continue;
                    };
                    for (field, leaf) in &leaves {
                        let Some(needle) = carried_value(leaf) else {
                            continue;
                        };
                        // small numbers (counts of bags, seats, days) are in any result
                        if matches!(leaf, Leaf::Num(_)) && needle.len() < 3 {
                            continue;
                        }
                        if field.is_empty() || closed(b, field) {
                            continue;
                        }
                        let was_typed = typed.iter().any(|t| t.contains(needle));
                        // per tool A: did every result of A that held it echo A's own argument?
                        let mut sources: Vec<(&str, bool)> = vec![];
                        for &(a, content, a_args) in &answered {
                            if a == b || !content.contains(needle) {
                                continue;
                            }
                            let echoed = a_args.contains(needle);
                            match sources.iter_mut().find(|(x, _)| *x == a) {
                                Some((_, all_echo)) => *all_echo &= echoed,
                                None => sources.push((a, echoed)),
                            }
                        }
                        for (a, all_echo) in sources {
                            let real = !was_typed && !all_echo;
                            let e = out
                                .entry((a.to_string(), b.to_string(), field.to_string()))
                                .or_insert(false);
                            *e |= real;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn flows_of_batch(
    batch: &RecordBatch,
    closed: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<ObservedFlows> {
    let v = MessagesView::try_new(batch.column(0))?;
    let flows = (0..v.len())
        .into_par_iter()
        .filter(|&r| !v.is_null(r))
        .fold(ObservedFlows::default, |mut acc, r| {
            acc.trajectories += 1;
            for (k, real) in flows_of_row(&v, r, closed) {
                let e = acc.flows.entry(k).or_default();
                e.matched += 1;
                e.trajectories += u64::from(real);
            }
            acc
        })
        .reduce(ObservedFlows::default, ObservedFlows::merge);
    Ok(flows)
}

/// The observed flows of the corpus's original trajectories (round 0), streamed batch by batch:
/// memory holds one batch and the counts, never the corpus.
pub async fn observe(
    session: &CorpusSession,
    closed: &HashMap<String, HashSet<String>>,
) -> Result<ObservedFlows> {
    let df = session
        .sql("SELECT messages FROM trajectories WHERE round = 0 AND num_tool_calls >= 2")
        .await?;
    let mut stream = df.execute_stream().await?;
    let is_closed = |tool: &str, field: &str| closed.get(tool).is_some_and(|f| f.contains(field));
    let mut all = ObservedFlows::default();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        all = all.merge(flows_of_batch(&batch, &is_closed)?);
    }
    Ok(all)
}

/// The score of an observed flow seen in `n` trajectories when at least `min` are required:
/// 0.9 at the minimum, towards 1 with more.
pub fn flow_score(n: u64, min: u64) -> f64 {
    1.0 - 0.1 * (min.max(1) as f64 / n.max(1) as f64).min(1.0)
}
