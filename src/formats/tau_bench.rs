//! tau-bench result files: a JSON array of `{task_id, trial, reward, info, traj}` where `traj` is
//! an OpenAI message list and `info.task` holds the user instruction and reference actions.

use serde_json::Value;

use super::fields::{Obj, RecordResult};
use super::{ParseContext, base, openai};
use crate::model::{Trajectory, id_text};

/// Parses one tau-bench result. The id is `<source>/<task_id>/<trial>`, stable across runs.
pub fn parse(ctx: &ParseContext, v: Value) -> RecordResult<Trajectory> {
    let o = Obj::of(&v, "")?;
    let mut t = base(ctx);
    let msgs = o.arr("traj")?.ok_or("traj: required list is missing")?;
    openai::fill_messages(&mut t, msgs, "traj")?;
    t.reward = o.f64("reward")?;
    t.metadata.extend(o.rest(&["traj", "reward"]));
    let task = o.get("task_id").and_then(id_text);
    let trial = o
        .get("trial")
        .and_then(id_text)
        .unwrap_or_else(|| "0".into());
    if let Some(task) = task {
        t.assign_id(Some(format!("{task}/{trial}")));
    }
    Ok(t)
}
