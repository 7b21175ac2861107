//! `tdscale split`: a deterministic train/test assignment, stratified, stable as the corpus grows,
//! with near-duplicates kept on one side.
//!
//! - Each trajectory gets u = seeded_hash(traj_id, seed) / 2⁶³, a uniform number that depends on
//!   nothing else, so adding trajectories never moves the ones already assigned.
//! - Near-duplicates (MinHash over the user turns and the tool sequence, `user_text`, estimated
//!   Jaccard ≥ `--near-dup`) are joined into groups; a group takes the u and the stratum of its
//!   member with the smallest u and goes to test when u < `--test`. A group is never split.
//! - Stratified: within each stratum (the `--by` columns) the test share is `--test` in
//!   expectation; a stratum with at least 1/`--test` groups and none in test gets its smallest-u
//!   group moved to test, so no large stratum is missing from the evaluation split.
//!
//! The result replaces the `splits` table: traj_id, split, stratum, group_id, seed, test_fraction.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::UInt32Type;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::metrics::lsh::LshIndex;
use crate::metrics::minhash::signature;
use crate::metrics::seeded_hash::seeded_hash;
use crate::query::cells;
use crate::query::session::CorpusSession;
use crate::store::{rows, tables};

/// Settings of a split.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Columns of `trajectories` to stratify by (`cluster` means `cluster_id`).
    pub by: Vec<String>,
    pub test: f64,
    pub seed: i64,
    /// Estimated Jaccard similarity at or above which two trajectories are near-duplicates.
    pub near_dup: f64,
}

/// One row of `splits`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SplitRow {
    pub traj_id: String,
    pub split: String,
    pub stratum: String,
    pub group_id: String,
    pub seed: i64,
    pub test_fraction: f64,
}

/// What a split did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SplitSummary {
    pub trajectories: usize,
    pub train: usize,
    pub test: usize,
    pub strata: usize,
    /// Groups of two or more near-duplicates, and the trajectories in them.
    pub near_duplicate_groups: usize,
    pub grouped_trajectories: usize,
    /// Test trajectories per stratum.
    pub test_by_stratum: BTreeMap<String, (usize, usize)>,
}

impl SplitSummary {
    /// The summary as text, with the first strata.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} trajectories: {} train, {} test over {} strata; {} near-duplicate groups ({} trajectories) kept on one side\n",
            self.trajectories,
            self.train,
            self.test,
            self.strata,
            self.near_duplicate_groups,
            self.grouped_trajectories
        );
        for (stratum, (test, total)) in self.test_by_stratum.iter().take(20) {
            out.push_str(&format!(
                "  {stratum:<40} {test:>6} of {total:>7} in test\n"
            ));
        }
        if self.test_by_stratum.len() > 20 {
            out.push_str(&format!(
                "  … {} more strata (see --json)\n",
                self.test_by_stratum.len() - 20
            ));
        }
        out
    }
}

const SPLIT_COLUMNS: &[&str] = &[
    "domain",
    "cluster_id",
    "source",
    "format",
    "round",
    "reasoning_mode",
];

/// u in [0, 1): `seeded_hash` is uniform over the non-negative i64s.
fn unit(traj_id: &str, seed: i64) -> f64 {
    seeded_hash(traj_id, seed) as f64 / 9_223_372_036_854_775_808.0
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Computes the split and replaces the `splits` table, holding the corpus's writer lock.
pub async fn split(
    session: &CorpusSession,
    opts: &SplitOptions,
) -> Result<(SplitSummary, Vec<SplitRow>)> {
    let lock = session.lock_writer("split").await?;
    let result = split_locked(session, opts).await;
    lock.release().await;
    result
}

async fn split_locked(
    session: &CorpusSession,
    opts: &SplitOptions,
) -> Result<(SplitSummary, Vec<SplitRow>)> {
    if !(opts.test > 0.0 && opts.test < 1.0) {
        return Err(Error::Usage(format!(
            "--test {} must be a fraction between 0 and 1",
            opts.test
        )));
    }
    let mut cols = vec![];
    for c in &opts.by {
        let c = if c == "cluster" {
            "cluster_id"
        } else {
            c.as_str()
        };
        if !SPLIT_COLUMNS.contains(&c) {
            return Err(Error::Usage(format!(
                "cannot stratify by `{c}`: use {}",
                SPLIT_COLUMNS.join(", ")
            )));
        }
        cols.push(format!("coalesce(CAST(\"{c}\" AS VARCHAR), '-')"));
    }
    let stratum = if cols.is_empty() {
        "'all'".to_string()
    } else {
        cols.join(" || '|' || ")
    };
    let ctx = session.ctx();
    // The stored MinHash of each trajectory's user turns and tool sequence
    // (`minhash(user_text(messages), 64)`); a trajectory without messages has no text.
    let batches = ctx
        .sql(&format!(
            "SELECT traj_id, {stratum} AS stratum, user_minhash FROM trajectory_metrics ORDER BY traj_id"
        ))
        .await?
        .collect()
        .await?;
    let mut ids = vec![];
    let mut strata = vec![];
    let mut sigs: Vec<Vec<u32>> = vec![];
    let no_text = signature("", 64);
    for b in &batches {
        ids.extend(cells::strs(b, "traj_id")?);
        strata.extend(cells::strs(b, "stratum")?);
        let col = b
            .column_by_name("user_minhash")
            .ok_or_else(|| Error::Other("split: no user_minhash column".into()))?;
        let list = col.as_list::<i32>();
        for i in 0..list.len() {
            sigs.push(if list.is_null(i) {
                no_text.clone()
            } else {
                list.value(i).as_primitive::<UInt32Type>().values().to_vec()
            });
        }
    }
    // Everything is copied out of the batches; the grouping needs their memory.
    drop(batches);
    // The grouping is long on a large corpus; on its own thread, SIGINT and SIGTERM still end
    // the command while it runs.
    let opts = opts.clone();
    let (summary, out) = tokio::task::spawn_blocking(move || assign(ids, strata, sigs, &opts))
        .await
        .map_err(|e| Error::Other(format!("split: the assignment failed: {e}")))?;
    rows::replace(session.corpus(), &tables::SPLITS, &out).await?;
    session.refresh(&tables::SPLITS)?;
    Ok((summary, out))
}

/// Groups the near-duplicates and assigns each trajectory (by number: `ids`, `strata` and
/// `sigs` are parallel) to train or test.
fn assign(
    ids: Vec<String>,
    strata: Vec<String>,
    sigs: Vec<Vec<u32>>,
    opts: &SplitOptions,
) -> (SplitSummary, Vec<SplitRow>) {
    let n = ids.len();
    // Near-duplicate groups by union-find over LSH candidate pairs.
    let mut parent: Vec<usize> = (0..n).collect();
    let mut index = LshIndex::with_capacity(opts.near_dup, n, sigs.first().map_or(0, Vec::len));
    for (me, sig) in sigs.into_iter().enumerate() {
        // Joined with the signatures before it that are near, then indexed under its own number.
        index.visit_near(&sig, |other, _| {
            let (a, b) = (find(&mut parent, me), find(&mut parent, other));
            parent[a.max(b)] = a.min(b);
            ControlFlow::Continue(())
        });
        index.insert(&sig);
    }
    let u: Vec<f64> = ids.iter().map(|id| unit(id, opts.seed)).collect();
    // Representative of each group: its member with the smallest u.
    let mut rep: HashMap<usize, usize> = HashMap::new();
    let mut size: HashMap<usize, usize> = HashMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        *size.entry(r).or_default() += 1;
        let e = rep.entry(r).or_insert(i);
        if u[i] < u[*e] {
            *e = i;
        }
    }
    let mut test: HashMap<usize, bool> = rep.iter().map(|(&g, &r)| (g, u[r] < opts.test)).collect();
    // Strata with enough groups but none in test get their smallest-u group.
    let mut by_stratum: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (&g, &r) in &rep {
        by_stratum.entry(strata[r].as_str()).or_default().push(g);
    }
    let min_groups = (1.0 / opts.test).ceil() as usize;
    for groups in by_stratum.values() {
        if groups.len() >= min_groups && !groups.iter().any(|g| test[g]) {
            let g = *groups
                .iter()
                .min_by(|a, b| u[rep[a]].total_cmp(&u[rep[b]]).then(a.cmp(b)))
                .expect("non-empty");
            test.insert(g, true);
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut summary = SplitSummary {
        trajectories: n,
        strata: by_stratum.len(),
        ..Default::default()
    };
    for i in 0..n {
        let g = find(&mut parent, i);
        let r = rep[&g];
        let is_test = test[&g];
        let e = summary
            .test_by_stratum
            .entry(strata[r].clone())
            .or_default();
        e.1 += 1;
        if is_test {
            e.0 += 1;
            summary.test += 1;
        } else {
            summary.train += 1;
        }
        out.push(SplitRow {
            traj_id: ids[i].clone(),
            split: if is_test { "test" } else { "train" }.into(),
            stratum: strata[r].clone(),
            group_id: ids[r].clone(),
            seed: opts.seed,
            test_fraction: opts.test,
        });
    }
    for s in size.values().filter(|s| **s > 1) {
        summary.near_duplicate_groups += 1;
        summary.grouped_trajectories += s;
    }
    (summary, out)
}
