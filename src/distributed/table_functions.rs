//! Table functions on a cluster. `greedy_entropy` and `deita_select` compute a selection in
//! Rust from a sub-query, which a Ballista plan cannot carry as code. On a cluster client they
//! are evaluated when the statement is planned — the sub-query itself runs on the cluster — and
//! the plan carries their (small) result as an in-memory table, which [`TdscaleCodec`] serializes
//! as Arrow IPC for the scheduler and the executors.

use std::any::Any;
use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use datafusion_proto::logical_plan::LogicalExtensionCodec;

/// Wraps a table function so that it is evaluated at planning time.
#[derive(Debug)]
pub struct Eager(pub Arc<dyn TableFunctionImpl>);

impl TableFunctionImpl for Eager {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let state = args
            .session()
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                DataFusionError::Plan("a table function needs a DataFusion session".into())
            })?
            .clone();
        let provider = self
            .0
            .call_with_args(TableFunctionArgs::new(args.exprs(), &state))?;
        let schema = provider.schema();
        // Planning is synchronous; the selection's sub-query is not. The CLI and the tests run
        // on a multi-threaded runtime, where a worker may block on it.
        let batches = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let ctx = SessionContext::new_with_state(state);
                let plan = provider.scan(&ctx.state(), None, &[], None).await?;
                collect(plan, ctx.task_ctx()).await
            })
        })?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }
}

const TAG: &[u8] = b"tdscale-memtable:";

/// Ballista's logical codec plus in-memory tables (table-function results, and the empty tables
/// a corpus registers before anything has written them), carried as Arrow IPC.
#[derive(Debug)]
pub struct TdscaleCodec {
    pub inner: Arc<dyn LogicalExtensionCodec>,
}

impl LogicalExtensionCodec for TdscaleCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(ipc) = buf.strip_prefix(TAG) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let reader = StreamReader::try_new(Cursor::new(ipc), None)?;
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let any: &dyn Any = node.as_ref();
        let Some(m) = any.downcast_ref::<MemTable>() else {
            return self.inner.try_encode_table_provider(table_ref, node, buf);
        };
        buf.extend_from_slice(TAG);
        let mut w = StreamWriter::try_new(&mut *buf, &node.schema())?;
        for partition in &m.batches {
            let batches = partition.try_read().map_err(|_| {
                DataFusionError::Internal("an in-memory table is being written to".into())
            })?;
            for b in batches.iter() {
                w.write(b)?;
            }
        }
        w.finish()?;
        Ok(())
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Re-registers the table functions of `ctx` so they are evaluated at planning time.
pub fn register_eager(ctx: &SessionContext) {
    for name in ["greedy_entropy", "deita_select"] {
        if let Ok(f) = ctx.table_function(name) {
            ctx.register_udtf(name, Arc::new(Eager(f.function().clone())));
        }
    }
}
