//! `greedy_entropy(budget[, seed[, unit]])`: a table function that picks trajectories greedily
//! to maximise the joint entropy of (domain, reasoning mode) within a budget.
//!
//! The joint entropy splits as H(D, M) = H(D) + H(M | D), and the greedy raises it term by term:
//! adding a trajectory raises an entropy more the less filled its category is, so each step takes
//! the least-filled domain (which maximises H(D): the domains fill as evenly as their sizes allow),
//! then within it the least-filled mode (which spreads H(M | D)). Ties are broken by CAC: between
//! domains and cells by the CAC of their best remaining trajectory, within a cell highest CAC
//! first, with `seeded_hash(traj_id, seed)` for exact ties. Taking the least-filled *cell* over
//! all domains instead would favour the domains with many modes and lower H(D). The walk stops
//! before the first pick that would exceed the budget (`unit` 'trajectories' or 'tokens').
//!
//! ```sql
//! SELECT * FROM greedy_entropy(500, 1, 'trajectories');
//! ```

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::Result;

use super::args::{int_arg, unit_arg};
use super::seeded_hash::seeded_hash;
use super::selection::{ComputedTable, Unit, selection_batch, selection_schema};

/// The table function.
#[derive(Debug, Default)]
pub struct GreedyEntropy;

/// One candidate.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub traj_id: String,
    pub domain: String,
    pub mode: String,
    pub cac: f64,
    pub cost: i64,
}

/// A heap key: the least count first, then the best CAC, then the lowest index.
#[derive(Debug, PartialEq)]
struct Key {
    count: u64,
    best_cac: f64,
    id: usize,
}

impl Eq for Key {}

impl Ord for Key {
    // BinaryHeap is a max-heap: the "greatest" key is the one to take next.
    fn cmp(&self, o: &Self) -> Ordering {
        o.count
            .cmp(&self.count)
            .then(self.best_cac.total_cmp(&o.best_cac))
            .then(o.id.cmp(&self.id))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The greedy walk. Returns the picked (traj_id, cost) in order.
pub fn select(cands: &[Candidate], budget: i64, seed: i64) -> Vec<(String, i64)> {
    let hashes: Vec<i64> = cands
        .iter()
        .map(|c| seeded_hash(&c.traj_id, seed))
        .collect();
    // Cells, each sorted so that its best trajectory is last (taking is a pop).
    let mut cell_ids: HashMap<(&str, &str), usize> = HashMap::new();
    let mut domain_ids: HashMap<&str, usize> = HashMap::new();
    let mut cells: Vec<Vec<usize>> = vec![];
    let mut domain_cells: Vec<Vec<usize>> = vec![];
    // Cells and domains are numbered in id order, so ties between them (broken by number) do
    // not depend on the order the rows arrived in (partitions, a cluster's shuffle).
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| cands[a].traj_id.cmp(&cands[b].traj_id));
    for i in order {
        let c = &cands[i];
        let nd = domain_ids.len();
        let d = *domain_ids.entry(c.domain.as_str()).or_insert(nd);
        if d == domain_cells.len() {
            domain_cells.push(vec![]);
        }
        let nc = cells.len();
        let cell = *cell_ids
            .entry((c.domain.as_str(), c.mode.as_str()))
            .or_insert(nc);
        if cell == cells.len() {
            cells.push(vec![]);
            domain_cells[d].push(cell);
        }
        cells[cell].push(i);
    }
    for cell in &mut cells {
        cell.sort_by(|&a, &b| {
            cands[a]
                .cac
                .total_cmp(&cands[b].cac)
                .then(hashes[b].cmp(&hashes[a]))
        });
    }
    let best = |cell: &Vec<usize>| cell.last().map(|&i| cands[i].cac).unwrap_or(f64::MIN);
    // Per domain, a heap of its cells keyed by their fill; over domains, a heap keyed by theirs.
    let mut cell_count = vec![0u64; cells.len()];
    let mut in_domain: Vec<BinaryHeap<Key>> = domain_cells
        .iter()
        .map(|cs| {
            cs.iter()
                .map(|&c| Key {
                    count: 0,
                    best_cac: best(&cells[c]),
                    id: c,
                })
                .collect()
        })
        .collect();
    let domain_key = |d: usize, count: u64, heaps: &Vec<BinaryHeap<Key>>| {
        heaps[d].peek().map(|k| Key {
            count,
            best_cac: k.best_cac,
            id: d,
        })
    };
    let mut domains: BinaryHeap<Key> = (0..domain_cells.len())
        .filter_map(|d| domain_key(d, 0, &in_domain))
        .collect();
    let mut picked = vec![];
    let mut used = 0i64;
    while let Some(dk) = domains.pop() {
        let Some(ck) = in_domain[dk.id].pop() else {
            continue;
        };
        let Some(i) = cells[ck.id].pop() else {
            continue;
        };
        if used + cands[i].cost > budget {
            break;
        }
        used += cands[i].cost;
        picked.push((cands[i].traj_id.clone(), cands[i].cost));
        cell_count[ck.id] += 1;
        if !cells[ck.id].is_empty() {
            in_domain[dk.id].push(Key {
                count: cell_count[ck.id],
                best_cac: best(&cells[ck.id]),
                id: ck.id,
            });
        }
        if let Some(k) = domain_key(dk.id, dk.count + 1, &in_domain) {
            domains.push(k);
        }
    }
    picked
}

/// Reads candidates from the rows of the input query.
pub fn candidates(batches: &[RecordBatch]) -> Result<Vec<Candidate>> {
    let mut out = vec![];
    for b in batches {
        let s = |i: usize| datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8);
        let (id, dom, mode) = (s(0)?, s(1)?, s(2)?);
        let (id, dom, mode) = (
            id.as_string::<i32>(),
            dom.as_string::<i32>(),
            mode.as_string::<i32>(),
        );
        let cac = datafusion::arrow::compute::cast(b.column(3), &DataType::Float64)?;
        let cac = cac.as_primitive::<Float64Type>();
        let cost = datafusion::arrow::compute::cast(b.column(4), &DataType::Int64)?;
        let cost = cost.as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push(Candidate {
                traj_id: id.value(i).to_string(),
                domain: if dom.is_null(i) {
                    String::new()
                } else {
                    dom.value(i).to_string()
                },
                mode: if mode.is_null(i) {
                    String::new()
                } else {
                    mode.value(i).to_string()
                },
                cac: if cac.is_null(i) { 0.0 } else { cac.value(i) },
                cost: if cost.is_null(i) { 0 } else { cost.value(i) },
            });
        }
    }
    Ok(out)
}

/// The input query: every trajectory with its cell, CAC and cost.
pub fn candidates_sql(unit: Unit) -> String {
    format!(
        "SELECT traj_id, domain, mode, cac, {} AS cost FROM trajectory_metrics",
        unit.cost_expr()
    )
}

impl TableFunctionImpl for GreedyEntropy {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let budget = int_arg(exprs, 0, "greedy_entropy(budget, ..)", None)?;
        let seed = int_arg(exprs, 1, "greedy_entropy(.., seed, ..)", Some(0))?;
        let unit = unit_arg(exprs, 2)?;
        Ok(Arc::new(ComputedTable {
            name: "greedy_entropy",
            schema: selection_schema(),
            sql: candidates_sql(unit),
            compute: Arc::new(move |batches| {
                selection_batch(&select(&candidates(&batches)?, budget, seed))
            }),
        }))
    }
}
