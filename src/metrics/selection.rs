//! What the selection table functions share: the budget [`Unit`], the schema of a selection, and
//! [`ComputedTable`] — a table whose rows are computed in Rust from the result of a SQL query when
//! it is scanned, which is how the greedy selections SQL cannot express become table functions.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Trajectories,
    Tokens,
}

impl Unit {
    /// Parses a unit name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "trajectories" => Ok(Unit::Trajectories),
            "tokens" => Ok(Unit::Tokens),
            other => Err(DataFusionError::Plan(format!(
                "unit must be 'trajectories' or 'tokens', got '{other}'"
            ))),
        }
    }

    /// The name used in plans and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Trajectories => "trajectories",
            Unit::Tokens => "tokens",
        }
    }

    /// The SQL expression of one trajectory's cost.
    pub fn cost_expr(self) -> &'static str {
        match self {
            Unit::Trajectories => "1",
            Unit::Tokens => "num_tokens",
        }
    }
}

crate::choice::impl_choice!(Unit, [Unit::Trajectories, Unit::Tokens]);

/// Turns the input batches into the output batch.
pub type Compute = Arc<dyn Fn(Vec<RecordBatch>) -> Result<RecordBatch> + Send + Sync>;

/// The table.
pub struct ComputedTable {
    pub name: &'static str,
    pub schema: SchemaRef,
    pub sql: String,
    pub compute: Compute,
}

impl fmt::Debug for ComputedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComputedTable")
            .field("name", &self.name)
            .field("sql", &self.sql)
            .finish()
    }
}

#[async_trait]
impl TableProvider for ComputedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let session = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                // A foreign session (another DataFusion, through datafusion-ffi) cannot run
                // the selection's SQL: the corpus's own session must.
                DataFusionError::Plan(format!(
                    "{} reads trajectory_metrics and runs only in a corpus session \
                     (from Python: the session tdscale.open returns)",
                    self.name
                ))
            })?;
        let ctx = SessionContext::new_with_state(session.clone());
        let input = ctx.sql(&self.sql).await?.collect().await?;
        // The walk is long and synchronous on a large corpus: on a blocking thread, the
        // runtime goes on serving other queries, and a command still ends on SIGINT / SIGTERM.
        let compute = self.compute.clone();
        let out = tokio::task::spawn_blocking(move || compute(input))
            .await
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", self.name)))??;
        MemTable::try_new(self.schema.clone(), vec![vec![out]])?
            .scan(state, projection, &[], None)
            .await
    }
}

/// The schema of a selection: `traj_id`, its position `pick`, its `cost` in the budget unit and
/// the budget `used` up to and including it.
pub fn selection_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("traj_id", DataType::Utf8, false),
        Field::new("pick", DataType::Int64, false),
        Field::new("cost", DataType::Int64, false),
        Field::new("used", DataType::Int64, false),
    ]))
}

/// Builds a selection batch from picked (traj_id, cost) in order.
pub fn selection_batch(picked: &[(String, i64)]) -> Result<RecordBatch> {
    let mut used = 0;
    let used: Vec<i64> = picked
        .iter()
        .map(|(_, c)| {
            used += c;
            used
        })
        .collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            picked.iter().map(|p| p.0.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(1..=picked.len() as i64)),
        Arc::new(Int64Array::from_iter_values(picked.iter().map(|p| p.1))),
        Arc::new(Int64Array::from(used)),
    ];
    Ok(RecordBatch::try_new(selection_schema(), cols)?)
}
