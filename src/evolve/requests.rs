//! `synthesis_requests`: the table whose INSERT starts a synthesis batch.
//!
//! ```sql
//! INSERT INTO synthesis_requests SELECT * FROM seeds_next_round;   -- returns the accepted count
//! ```
//!
//! The sink (a DataFusion `DataSink`) stores the requests as
//! `synthesis_requests/batch_id=<id>/requests.parquet` first, so a batch that is interrupted can
//! be found and finished later, then runs the batch. Scanning the table shows every request ever
//! made. The model backend is built when the first batch runs, not when the table is registered.

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

use crate::query::session::CorpusSession;
use crate::store::{read, rows, schema};
use crate::synth::{self, BatchSummary, SynthConfig, SynthOptions, SynthRequest};

/// Where a batch's requests are stored.
pub fn requests_file(batch_id: &str) -> String {
    format!("{TABLE}/batch_id={batch_id}/requests.parquet")
}

/// The table name.
pub const TABLE: &str = "synthesis_requests";

/// A batch's id and its requests.
pub type StoredBatch = (String, Vec<SynthRequest>);

/// What the table and its sink share.
pub struct Shared {
    /// A scope of the session the table is registered in (a scope, so that the session does
    /// not own itself through this table).
    pub session: CorpusSession,
    pub options: SynthOptions,
    config: tokio::sync::OnceCell<Arc<SynthConfig>>,
    /// The stored batches, read once and kept up to date by the inserts.
    stored: tokio::sync::OnceCell<Mutex<Vec<StoredBatch>>>,
    /// Batches run by INSERTs on this table, in order.
    pub finished: Mutex<Vec<BatchSummary>>,
}

impl Shared {
    pub fn new(session: CorpusSession, options: SynthOptions) -> Self {
        Self {
            session,
            options,
            config: Default::default(),
            stored: Default::default(),
            finished: Mutex::new(vec![]),
        }
    }

    /// The synthesis configuration, built on first use.
    pub async fn config(&self) -> crate::error::Result<Arc<SynthConfig>> {
        self.config
            .get_or_try_init(|| async {
                SynthConfig::new(&self.options, self.session.corpus()).map(Arc::new)
            })
            .await
            .cloned()
    }

    async fn stored(&self) -> crate::error::Result<&Mutex<Vec<StoredBatch>>> {
        self.stored
            .get_or_try_init(|| async { stored_batches(&self.session).await.map(Mutex::new) })
            .await
    }

    /// Every stored batch, by id.
    pub async fn stored_batches(&self) -> crate::error::Result<Vec<StoredBatch>> {
        Ok(self.stored().await?.lock().expect("lock").clone())
    }

    /// Stores a batch's requests unless they are stored already (the same id means the same
    /// requests). The file's name is the batch's, so a repeated store writes the same object.
    async fn store(&self, batch_id: &str, requests: &[SynthRequest]) -> crate::error::Result<()> {
        let stored = self.stored().await?;
        if stored
            .lock()
            .expect("lock")
            .iter()
            .any(|(id, _)| id == batch_id)
        {
            return Ok(());
        }
        let batch = rows::to_batch(schema::synthesis_request_schema(), requests)?;
        let bytes = rows::parquet_bytes(std::slice::from_ref(&batch), batch.schema())?;
        self.session
            .corpus()
            .location()
            .put(&requests_file(batch_id), bytes)
            .await?;
        stored
            .lock()
            .expect("lock")
            .push((batch_id.to_string(), requests.to_vec()));
        Ok(())
    }
}

/// The table provider.
pub struct SynthesisRequests(pub Arc<Shared>);

impl fmt::Debug for SynthesisRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SynthesisRequests({})",
            self.0.session.corpus().display()
        )
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
        let stored: Vec<SynthRequest> = self
            .0
            .stored_batches()
            .await
            .map_err(external)?
            .into_iter()
            .flat_map(|(_, r)| r)
            .collect();
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
        write!(f, "SynthesisBatch: {}", self.0.options.backend.name())
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
        // The stored requests and the batch are one write into the corpus.
        let lock = shared
            .session
            .lock_writer("synthesis batch")
            .await
            .map_err(external)?;
        let run = async {
            shared.store(&id, &requests).await?;
            let config = shared.config().await?;
            synth::run_batch(&shared.session, &id, &requests, &config).await
        }
        .await;
        lock.release().await;
        let summary = run.map_err(external)?;
        let accepted = summary.accepted as u64;
        shared.finished.lock().expect("lock").push(summary);
        Ok(accepted)
    }
}

/// Every stored batch with its requests, in order of id.
async fn stored_batches(session: &CorpusSession) -> crate::error::Result<Vec<StoredBatch>> {
    let corpus = session.corpus();
    let files = corpus.list(TABLE).await?;
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
    let mut out = vec![];
    for id in ids {
        let in_batch: Vec<_> = files
            .iter()
            .filter(|m| {
                m.location
                    .parts()
                    .any(|p| p.as_ref() == format!("batch_id={id}"))
            })
            .cloned()
            .collect();
        let mut batches = vec![];
        read::for_each_batch(corpus, &in_batch, None, |b| {
            batches.push(b);
            Ok(())
        })
        .await?;
        out.push((id, rows::from_batches(&batches)?));
    }
    Ok(out)
}
