//! `deita_select(budget[, unit[, threshold]])`: a table function that selects the way DEITA
//! does: candidates in order of score, each admitted only if its MinHash similarity to every
//! trajectory already selected is below `threshold` (default 0.6).
//!
//! The score is the complexity times the quality: `action_complexity(messages) ×
//! coalesce(reward, 1)`, so failed trajectories come last. Similarity is estimated from
//! 64-value MinHash signatures of `user_text(messages)` (the user turns and the tool sequence).
//! Both are read from `trajectory_metrics` (`cac`, `user_minhash`), where they are stored.
//! Already-selected trajectories are indexed by LSH with bands cut for the threshold
//! ([`LshIndex`]), which finds every selected trajectory at or above it; a candidate is compared
//! on the full signature with those sharing a band until one is too similar. The walk stops
//! before the first admitted trajectory that would exceed the budget.
//!
//! ```sql
//! SELECT * FROM deita_select(1000, 'tokens', 0.7);
//! ```

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, UInt32Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::{DataFusionError, Result};

use super::args::{f64_arg, int_arg, unit_arg};
use super::selection::{ComputedTable, Unit, selection_batch, selection_schema};
use crate::metrics::lsh::LshIndex;
use crate::metrics::minhash::{DEFAULT_K, signature};

/// The table function.
#[derive(Debug, Default)]
pub struct DeitaSelect;

/// One candidate: id, cost, score and signature.
pub struct Scored {
    pub traj_id: String,
    pub cost: i64,
    pub score: f64,
    pub signature: Vec<u32>,
}

/// The DEITA walk over candidates. Returns the picked (traj_id, cost) in order.
pub fn select(mut cands: Vec<Scored>, budget: i64, threshold: f64) -> Vec<(String, i64)> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.traj_id.cmp(&b.traj_id)));
    let mut selected = LshIndex::new(threshold);
    let mut picked = vec![];
    let mut used = 0i64;
    for c in cands {
        let mut near = false;
        selected.visit_near(&c.signature, |_, _| {
            near = true;
            ControlFlow::Break(())
        });
        if near {
            continue;
        }
        if used + c.cost > budget {
            break;
        }
        used += c.cost;
        picked.push((c.traj_id, c.cost));
        selected.insert(&c.signature);
    }
    picked
}

fn scored(batches: &[RecordBatch]) -> Result<Vec<Scored>> {
    let mut out = vec![];
    for b in batches {
        let id = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let id = id.as_string::<i32>();
        let cost = datafusion::arrow::compute::cast(b.column(1), &DataType::Int64)?;
        let cost = cost.as_primitive::<Int64Type>();
        let score = datafusion::arrow::compute::cast(b.column(2), &DataType::Float64)?;
        let score = score.as_primitive::<Float64Type>();
        let sig = b.column(3).as_list::<i32>();
        for i in 0..b.num_rows() {
            // A trajectory without messages has no user text: the signature of the empty
            // text, as `tdscale split` takes it.
            let signature: Vec<u32> = if sig.is_null(i) {
                signature("", DEFAULT_K)
            } else {
                sig.value(i).as_primitive::<UInt32Type>().values().to_vec()
            };
            if signature.len() != DEFAULT_K {
                return Err(DataFusionError::Execution(
                    "deita_select: unexpected signature length".into(),
                ));
            }
            out.push(Scored {
                traj_id: id.value(i).to_string(),
                cost: if cost.is_null(i) { 0 } else { cost.value(i) },
                score: if score.is_null(i) {
                    0.0
                } else {
                    score.value(i)
                },
                signature,
            });
        }
    }
    Ok(out)
}

impl TableFunctionImpl for DeitaSelect {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let budget = int_arg(exprs, 0, "deita_select(budget, ..)", None)?;
        let unit: Unit = unit_arg(exprs, 1)?;
        let threshold = f64_arg(exprs, 2, "deita_select(.., threshold)", 0.6)?;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(DataFusionError::Plan(format!(
                "deita_select: threshold must be between 0 and 1, got {threshold}"
            )));
        }
        let sql = format!(
            "SELECT traj_id, {cost} AS cost, cac * coalesce(reward, 1.0) AS score, user_minhash AS sig FROM trajectory_metrics",
            cost = unit.cost_expr(),
        );
        Ok(Arc::new(ComputedTable {
            name: "deita_select",
            schema: selection_schema(),
            sql,
            compute: Arc::new(move |batches| {
                selection_batch(&select(scored(&batches)?, budget, threshold))
            }),
        }))
    }
}
