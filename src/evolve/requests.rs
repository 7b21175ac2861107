//! `synthesis_requests`: the table whose INSERT starts a synthesis batch.
//!
//! ```sql
//! INSERT INTO synthesis_requests SELECT * FROM seeds_next_round;   -- returns the accepted count
//! ```
//!
//! The sink (a DataFusion `DataSink`) stores the requests under
//! `synthesis_requests/batch_id=<id>/` first, so a batch that is interrupted can be found and
//! finished later, then runs the batch. Scanning the table shows every request ever made.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::TryStreamExt;

use crate::store::{Corpus, rows, schema};
use crate::synth::{self, BatchSummary, SynthConfig, SynthRequest};

/// Where a batch's requests are stored.
pub fn requests_dir(batch_id: &str) -> String {
    format!("{TABLE}/batch_id={batch_id}")
}

/// The table name.
pub const TABLE: &str = "synthesis_requests";

/// What the table and its sink share.
pub struct Shared {
    pub corpus: Corpus,
    pub config: Arc<SynthConfig>,
    /// Batches run by INSERTs on this table, in order.
    pub finished: Mutex<Vec<BatchSummary>>,
}

/// The table provider.
pub struct SynthesisRequests(pub Arc<Shared>);

impl fmt::Debug for SynthesisRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SynthesisRequests({})", self.0.corpus.display())
    }
}

fn external(e: crate::error::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for SynthesisRequests {
    fn schema(&self) -> SchemaRef {
        schema::synthesis_request_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let stored = stored_requests(&self.0.corpus).await.map_err(external)?;
        let batch = rows::to_batch(self.schema(), &stored).map_err(external)?;
        MemTable::try_new(self.schema(), vec![vec![batch]])?
            .scan(state, projection, &[], limit)
            .await
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::Plan(format!(
                "{TABLE} only takes INSERT INTO (each insert is a new batch)"
            )));
        }
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(RequestSink(self.0.clone())),
            None,
        )))
    }
}

/// The sink: store the requests, run the batch, return the accepted count.
struct RequestSink(Arc<Shared>);

impl fmt::Debug for RequestSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestSink")
    }
}

impl DisplayAs for RequestSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SynthesisBatch: {}", self.0.config.model.describe())
    }
}

#[async_trait]
impl DataSink for RequestSink {
    fn schema(&self) -> &SchemaRef {
        static SCHEMA: std::sync::LazyLock<SchemaRef> =
            std::sync::LazyLock::new(schema::synthesis_request_schema);
        &SCHEMA
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let batches: Vec<_> = data.try_collect().await?;
        let requests: Vec<SynthRequest> = rows::from_batches(&batches).map_err(|e| {
            DataFusionError::Plan(format!(
                "every synthesis request needs seed_id, round and mutation: {e}"
            ))
        })?;
        if requests.is_empty() {
            return Ok(0);
        }
        if requests.iter().any(|r| r.round != requests[0].round) {
            return Err(DataFusionError::Plan(
                "one INSERT is one batch of one round: the requests name several rounds".into(),
            ));
        }
        let shared = &self.0;
        let id = synth::batch_id(&requests);
        store_requests(&shared.corpus, &id, &requests)
            .await
            .map_err(external)?;
        let summary = synth::run_batch(&shared.corpus, &id, &requests, &shared.config)
            .await
            .map_err(external)?;
        let accepted = summary.accepted as u64;
        shared.finished.lock().expect("lock").push(summary);
        Ok(accepted)
    }
}

/// Stores a batch's requests unless they are stored already (the same id means the same
/// requests).
async fn store_requests(
    corpus: &Corpus,
    batch_id: &str,
    requests: &[SynthRequest],
) -> crate::error::Result<()> {
    if !corpus.list_table(&requests_dir(batch_id)).await?.is_empty() {
        return Ok(());
    }
    rows::append(
        corpus,
        &requests_dir(batch_id),
        schema::synthesis_request_schema(),
        requests,
    )
    .await
}

/// Every stored request with its batch id.
pub async fn stored_batches(
    corpus: &Corpus,
) -> crate::error::Result<Vec<(String, Vec<SynthRequest>)>> {
    let mut out: Vec<(String, Vec<SynthRequest>)> = vec![];
    let files = corpus.list_table(TABLE).await?;
    let mut ids: Vec<String> = files
        .iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
        .filter_map(|m| {
            m.location
                .parts()
                .find_map(|p| p.as_ref().strip_prefix("batch_id=").map(str::to_string))
        })
        .collect();
    ids.sort();
    ids.dedup();
    let ctx = crate::query::session::bare_context();
    corpus.register_store(&ctx);
    for id in ids {
        let batches = ctx
            .read_parquet(corpus.table_url(&requests_dir(&id)), Default::default())
            .await?
            .collect()
            .await?;
        out.push((id, rows::from_batches(&batches)?));
    }
    Ok(out)
}

async fn stored_requests(corpus: &Corpus) -> crate::error::Result<Vec<SynthRequest>> {
    Ok(stored_batches(corpus)
        .await?
        .into_iter()
        .flat_map(|(_, r)| r)
        .collect())
}
