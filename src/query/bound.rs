//! Tables and table functions bound to a corpus session: whatever session asks them to scan,
//! they plan and run in the session they come from, with its object stores (S3 from the `AWS_*`
//! settings), listing caches, views and functions.
//!
//! This is how another DataFusion reads a corpus — typically a separately compiled one reached
//! through `datafusion-ffi`, such as the `datafusion` Python package, whose session knows neither
//! the corpus's stores nor the views the selection table functions read. The scan is planned in
//! the corpus session and handed over as one leaf: the other session's optimizer sees its
//! partitions and schema, and every partition it executes runs with the corpus session's task
//! context, not the caller's. A caller that lives long (a notebook) and outlives later writes to
//! the corpus asks for the tables to be listed again on every scan ([`BoundTable::relisting`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::config::ConfigOptions;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use datafusion::prelude::SessionContext;
use tokio::runtime::Handle;

/// A table that plans and runs in `ctx`.
pub struct BoundTable {
    inner: Arc<dyn TableProvider>,
    ctx: SessionContext,
    relist: Vec<TableReference>,
    /// The runtime the table was made on: scans are planned there, because a foreign caller
    /// polls them off any tokio runtime and the object stores' clients need one.
    runtime: Option<Handle>,
}

impl BoundTable {
    /// Binds `inner` to `ctx`; made on a tokio runtime, the table plans its scans on it.
    pub fn new(inner: Arc<dyn TableProvider>, ctx: SessionContext) -> Self {
        Self {
            inner,
            ctx,
            relist: vec![],
            runtime: Handle::try_current().ok(),
        }
    }

    /// Forgets the session's listings of `tables` before every scan, so each scan sees the
    /// files written since the last one.
    pub fn relisting(mut self, tables: Vec<TableReference>) -> Self {
        self.relist = tables;
        self
    }
}

// `SessionContext` is not `Debug`: the bound objects show what they wrap and the session's id.
impl fmt::Debug for BoundTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundTable")
            .field("inner", &self.inner)
            .field("session", &self.ctx.session_id())
            .field("relist", &self.relist)
            .finish()
    }
}

impl fmt::Debug for BoundTableFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundTableFunction")
            .field("inner", &self.inner)
            .field("session", &self.ctx.session_id())
            .field("relist", &self.relist)
            .finish()
    }
}

/// Drops what `ctx` remembers of the files of `tables` (their listings and file statistics).
pub fn forget_listings(ctx: &SessionContext, tables: &[TableReference]) -> Result<()> {
    let caches = &ctx.runtime_env().cache_manager;
    for table in tables {
        if let Some(c) = caches.get_list_files_cache() {
            c.drop_table_entries(table)?;
        }
        if let Some(c) = caches.get_file_statistic_cache() {
            c.drop_table_entries(table)?;
        }
    }
    Ok(())
}

#[async_trait]
impl TableProvider for BoundTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        _caller: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        forget_listings(&self.ctx, &self.relist)?;
        let state = self.ctx.state();
        let inner = self.inner.clone();
        let (projection, filters) = (projection.cloned(), filters.to_vec());
        let plan = async move {
            let plan = inner
                .scan(&state, projection.as_ref(), &filters, limit)
                .await?;
            Ok::<_, DataFusionError>(Arc::new(BoundExec {
                inner: plan,
                task: state.task_ctx(),
            }) as Arc<dyn ExecutionPlan>)
        };
        match &self.runtime {
            Some(runtime) => runtime
                .spawn(plan)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
            None => plan.await,
        }
    }
}

/// A table function whose tables are [`BoundTable`]s of `ctx` (listing `relist` again on every
/// scan): its arguments are read and its table computed in that session.
pub struct BoundTableFunction {
    inner: Arc<dyn TableFunctionImpl>,
    ctx: SessionContext,
    relist: Vec<TableReference>,
    runtime: Option<Handle>,
}

impl BoundTableFunction {
    pub fn new(
        inner: Arc<dyn TableFunctionImpl>,
        ctx: SessionContext,
        relist: Vec<TableReference>,
    ) -> Self {
        Self {
            inner,
            ctx,
            relist,
            runtime: Handle::try_current().ok(),
        }
    }
}

impl TableFunctionImpl for BoundTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let state = self.ctx.state();
        let table = self
            .inner
            .call_with_args(TableFunctionArgs::new(args.exprs(), &state))?;
        let mut bound = BoundTable::new(table, self.ctx.clone()).relisting(self.relist.clone());
        bound.runtime = self.runtime.clone();
        Ok(Arc::new(bound))
    }
}

/// A plan of the corpus session, executed with its task context. A leaf to the caller: the
/// plan under it is the corpus session's business.
struct BoundExec {
    inner: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
}

impl fmt::Debug for BoundExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundExec")
            .field("inner", &self.inner.name())
            .finish()
    }
}

impl DisplayAs for BoundExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoundExec: ")?;
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for BoundExec {
    fn name(&self) -> &str {
        "BoundExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        config: &ConfigOptions,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self
            .inner
            .repartitioned(target_partitions, config)?
            .map(|inner| {
                Arc::new(BoundExec {
                    inner,
                    task: self.task.clone(),
                }) as Arc<dyn ExecutionPlan>
            }))
    }

    fn execute(
        &self,
        partition: usize,
        _caller: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, self.task.clone())
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }
}
