//! Exports of corpus data: training files (`openai`), evaluation splits (`split`) in BFCL's and
//! tau²'s formats (`bfcl`, `tau2`), contamination checks against evaluation files
//! (`decontaminate`), all written through `target` to a folder or object storage.

pub mod bfcl;
pub mod decontaminate;
pub mod openai;
pub mod split;
pub mod target;
pub mod tau2;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::Trajectory;
use crate::query::params;
use crate::query::session::CorpusSession;

/// The plan choosing the trajectories of an evaluation export (`queries/export_split.sql`).
pub const EXPORT_SPLIT_SQL: &str = include_str!("../../queries/export_split.sql");

/// The trajectories an evaluation export writes: the rows of `query` (the plan
/// [`EXPORT_SPLIT_SQL`] by default) with `split` and `params` filled in.
pub async fn split_trajectories(
    session: &CorpusSession,
    split: &str,
    query: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<Vec<Trajectory>> {
    let mut p = params.clone();
    p.insert("split".into(), split.to_string());
    let sql = params::substitute(query.unwrap_or(EXPORT_SPLIT_SQL), &p)?;
    let mut trajectories = vec![];
    for b in &session.collect(&sql).await? {
        trajectories.extend(crate::store::convert::batch_to_trajectories(b)?);
    }
    if trajectories.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to export: no trajectory in split `{split}` (run `tdscale split {}` first, or check --query)",
            session.corpus().display()
        )));
    }
    Ok(trajectories)
}
