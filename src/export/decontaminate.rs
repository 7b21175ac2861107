//! `tdscale decontaminate`: flags training trajectories that are near-duplicates of evaluation
//! items, so they can be removed before training.
//!
//! Evaluation files are BFCL question files, tau² `tasks.json`, OpenAI / ShareGPT chat files, or
//! any JSON / JSON lines (then every string of a record counts). The text compared is what the
//! user says: BFCL questions, a tau² task's instructions, user messages. Training rows are the
//! `train` side of `splits` when the corpus has a split, else every trajectory. Similarity is the
//! MinHash estimate (64 hashes) of the Jaccard similarity of word 3-grams; pairs at or above
//! `--threshold` are reported and written to the `contamination` table.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::metrics::lsh::LshIndex;
use crate::metrics::minhash::signature;
use crate::query::cells;
use crate::query::session::CorpusSession;
use crate::store::{rows, tables};

/// One flagged pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flag {
    pub traj_id: String,
    pub eval_file: String,
    pub eval_id: String,
    pub similarity: f64,
    pub threshold: f64,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DecontaminationSummary {
    pub eval_files: usize,
    pub eval_items: usize,
    /// Records of the evaluation files that could not be read, with why.
    pub unreadable: Vec<String>,
    pub train_trajectories: usize,
    pub flagged_pairs: usize,
    pub flagged_trajectories: usize,
}

impl DecontaminationSummary {
    /// The flagged pairs, a line each, then the counts.
    pub fn to_text(&self, flags: &[Flag], threshold: f64) -> String {
        let mut out = String::new();
        for f in flags {
            out.push_str(&format!(
                "{:.3}  {}  ~  {} #{}\n",
                f.similarity, f.traj_id, f.eval_file, f.eval_id
            ));
        }
        out.push_str(&format!(
            "{} of {} training trajectories flagged ({} pairs) against {} items of {} files at similarity ≥ {}; see the `contamination` table\n",
            self.flagged_trajectories,
            self.train_trajectories,
            self.flagged_pairs,
            self.eval_items,
            self.eval_files,
            threshold
        ));
        out
    }
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn user_contents(msgs: &Value, out: &mut Vec<String>) {
    match msgs {
        Value::Array(a) => a.iter().for_each(|m| user_contents(m, out)),
        Value::Object(m) => {
            let role = m
                .get("role")
                .or_else(|| m.get("from"))
                .and_then(Value::as_str);
            if matches!(role, Some("user" | "human")) {
                for k in ["content", "value"] {
                    if let Some(Value::String(s)) = m.get(k) {
                        out.push(s.clone());
                    }
                }
            }
        }
        _ => {}
    }
}

/// The user-side text of one evaluation record.
pub fn eval_text(v: &Value) -> String {
    let mut out = vec![];
    if let Some(q) = v.get("question") {
        user_contents(q, &mut out);
    } else if let Some(s) = v.get("user_scenario") {
        match s.get("instructions") {
            Some(Value::Object(i)) => {
                // What the user would say; task_instructions steer behaviour, not content.
                for k in ["reason_for_call", "known_info"] {
                    if let Some(Value::String(t)) = i.get(k) {
                        out.push(t.clone());
                    }
                }
            }
            Some(other) => strings(other, &mut out),
            None => {}
        }
    } else if let Some(m) = v.get("messages").or_else(|| v.get("conversations")) {
        user_contents(m, &mut out);
    } else {
        strings(v, &mut out);
    }
    out.join("\n")
}

fn eval_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d)
                    .map_err(|e| Error::io(&d, e))?
                    .flatten()
                {
                    let q = e.path();
                    if q.is_dir() {
                        stack.push(q);
                    } else if q.extension().is_some_and(|x| x == "json" || x == "jsonl")
                        && q.file_name().is_some_and(|n| n != "manifest.json")
                    {
                        out.push(q);
                    }
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    out.sort();
    Ok(out)
}

/// The records of one file: a JSON array's items, one JSON document, or JSON lines.
fn records(path: &Path, unreadable: &mut Vec<String>) -> Result<Vec<(String, Value)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let id_of = |v: &Value, n: usize| {
        v.get("id")
            .and_then(crate::model::id_text)
            .unwrap_or_else(|| n.to_string())
    };
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok(match v {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(n, x)| (id_of(&x, n), x))
                .collect(),
            other => vec![(id_of(&other, 0), other)],
        });
    }
    let mut out = vec![];
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => out.push((id_of(&v, n), v)),
            Err(e) => unreadable.push(format!("{}:{}: {e}", path.display(), n + 1)),
        }
    }
    Ok(out)
}

/// Flags training trajectories within `threshold` of any item of the evaluation files and
/// replaces the `contamination` table, holding the corpus's writer lock.
pub async fn decontaminate(
    session: &CorpusSession,
    against: &[PathBuf],
    threshold: f64,
) -> Result<(DecontaminationSummary, Vec<Flag>)> {
    let lock = session.lock_writer("decontaminate").await?;
    let result = decontaminate_locked(session, against, threshold).await;
    lock.release().await;
    result
}

async fn decontaminate_locked(
    session: &CorpusSession,
    against: &[PathBuf],
    threshold: f64,
) -> Result<(DecontaminationSummary, Vec<Flag>)> {
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(Error::Usage(format!(
            "--threshold {threshold} must be in (0, 1]"
        )));
    }
    let mut summary = DecontaminationSummary::default();
    let mut index = LshIndex::new(threshold);
    let mut items: Vec<(String, String)> = vec![];
    let files = eval_files(against)?;
    summary.eval_files = files.len();
    for f in &files {
        for (id, v) in records(f, &mut summary.unreadable)? {
            let text = eval_text(&v);
            if text.trim().is_empty() {
                continue;
            }
            index.insert(&signature(&text, 64));
            items.push((f.display().to_string(), id));
        }
    }
    summary.eval_items = items.len();
    let ctx = session.ctx();
    let has_split = ctx
        .sql("SELECT count(*) AS n FROM splits")
        .await?
        .collect()
        .await?
        .first()
        .map(|b| cells::i64_at(b, "n", 0))
        .transpose()?
        .unwrap_or(0)
        > 0;
    let q = if has_split {
        "SELECT t.traj_id, user_text(t.messages) AS text FROM trajectories t JOIN splits s ON s.traj_id = t.traj_id WHERE s.split = 'train' ORDER BY t.traj_id"
    } else {
        "SELECT traj_id, user_text(messages) AS text FROM trajectories ORDER BY traj_id"
    };
    let batches = ctx.sql(q).await?.collect().await?;
    let mut flags = vec![];
    let mut flagged = std::collections::HashSet::new();
    for b in &batches {
        let ids = cells::strs(b, "traj_id")?;
        let texts = cells::strs(b, "text")?;
        for (id, text) in ids.into_iter().zip(texts) {
            summary.train_trajectories += 1;
            // user_text ends with the tool sequence, which evaluation questions do not have.
            let user = text
                .rsplit_once("\ntools: ")
                .map_or(text.as_str(), |(u, _)| u);
            for (k, sim) in index.query(&signature(user, 64)) {
                flagged.insert(id.clone());
                flags.push(Flag {
                    traj_id: id.clone(),
                    eval_file: items[k].0.clone(),
                    eval_id: items[k].1.clone(),
                    similarity: sim,
                    threshold,
                });
            }
        }
    }
    summary.flagged_pairs = flags.len();
    summary.flagged_trajectories = flagged.len();
    rows::replace(session.corpus(), &tables::CONTAMINATION, &flags).await?;
    session.refresh(&tables::CONTAMINATION)?;
    Ok((summary, flags))
}
