//! The trajectory index: one row per trajectory with its labels, reasoning mode, CAC, counts
//! and the start of its first message (`queries/serve_index.sql`), kept in memory as a
//! DataFusion table named `trajectory_index`, so that filtering and paging the browser over
//! 10^6 trajectories does not decode every conversation again. The report reads the stored
//! `trajectory_metrics` (or this index, when the metrics are computed from `messages`).
//!
//! Until the index is built (in the background, after the server starts listening),
//! `trajectory_index` computes the same columns from `trajectories`: every page works at once,
//! only slower. The table the session knows never changes; what it reads is swapped in place
//! ([`SwappableTable`]), so a query planned before a swap reads the old data whole and one
//! planned after reads the new. Every `refresh` interval the refresher lists the corpus's
//! tables; a table whose files changed is listed again by the next query, and new trajectory
//! files rebuild the index (the old one answers until the new one is ready).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use serde::Serialize;

use super::App;
use crate::error::Result;
use crate::query::session::CorpusSession;
use crate::store::tables;

/// The plan of the index.
pub const INDEX_SQL: &str = include_str!("../../queries/serve_index.sql");
/// The name of the index in the served session.
pub const INDEX_TABLE: &str = "trajectory_index";
/// The view the report and the console read, pointed at the index.
const METRICS_VIEW: &str = "trajectory_metrics";

/// What the server knows of its index and of the corpus's files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The index is in memory (else `trajectory_index` computes from the files).
    pub materialized: bool,
    pub rows: u64,
    pub build_ms: u64,
    pub built_at: Option<String>,
    /// When the tables were last listed.
    pub checked_at: Option<String>,
    /// Tables whose files changed at the last listing that found a change.
    pub last_changed: Vec<String>,
    /// The last refresh's error, if it failed.
    pub last_error: Option<String>,
}

/// A file as the refresher compares it: path, size and modification time.
type FileSig = (String, u64, i64);

/// The index's state, shared by the refresher and the handlers.
#[derive(Default)]
pub struct IndexState {
    status: Mutex<Status>,
    /// The files of each table at the last listing; the lock also keeps two refreshes (the
    /// timer's and one a page asked for) from running at once.
    files: tokio::sync::Mutex<HashMap<&'static str, Vec<FileSig>>>,
    /// The table registered as `trajectory_index`.
    table: Mutex<Option<Arc<SwappableTable>>>,
}

impl IndexState {
    /// The state of a server whose `trajectory_index` is `table`.
    pub fn new(table: Arc<SwappableTable>) -> Self {
        Self {
            table: Mutex::new(Some(table)),
            ..Default::default()
        }
    }

    pub fn status(&self) -> Status {
        self.status.lock().expect("lock").clone()
    }
}

/// A table whose contents are replaced in place. It declares every filter inexact, so
/// whichever provider answers a scan, DataFusion applies the filters again above it.
#[derive(Debug)]
pub struct SwappableTable {
    schema: SchemaRef,
    inner: RwLock<Arc<dyn TableProvider>>,
}

impl SwappableTable {
    fn new(inner: Arc<dyn TableProvider>) -> Self {
        Self {
            schema: inner.schema(),
            inner: RwLock::new(inner),
        }
    }

    fn current(&self) -> Arc<dyn TableProvider> {
        self.inner.read().expect("lock").clone()
    }

    /// Replaces the contents; the schema must be the same.
    fn swap(&self, next: Arc<dyn TableProvider>) -> Result<()> {
        if next.schema().fields() != self.schema.fields() {
            return Err(crate::error::Error::Other(format!(
                "the rebuilt index has another schema: {} instead of {}",
                next.schema(),
                self.schema
            )));
        }
        *self.inner.write().expect("lock") = next;
        Ok(())
    }
}

#[async_trait]
impl TableProvider for SwappableTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.current().scan(state, projection, filters, limit).await
    }
}

/// Registers `trajectory_index`, computing from the files until [`materialize`] puts it in
/// memory. When the corpus's `trajectory_metrics` is computed from `messages` (its stored
/// metrics could not be brought up to date) and the index holds all its columns, the session's
/// `trajectory_metrics` reads the index instead; the stored table is read as it is.
pub async fn install_live(session: &CorpusSession) -> Result<Arc<SwappableTable>> {
    let columns: Vec<String> = session
        .ctx()
        .table(METRICS_VIEW)
        .await?
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let live = session.sql(INDEX_SQL).await?.into_view();
    let in_index = {
        let schema = live.schema();
        columns.iter().all(|c| schema.field_with_name(c).is_ok())
    };
    let table = Arc::new(SwappableTable::new(live));
    session.ctx().register_table(INDEX_TABLE, table.clone())?;
    if !session.stored_metrics() && in_index {
        let quoted: Vec<String> = columns
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect();
        session
            .collect(&format!(
                "CREATE OR REPLACE VIEW {METRICS_VIEW} AS SELECT {} FROM {INDEX_TABLE}",
                quoted.join(", ")
            ))
            .await?;
    }
    Ok(table)
}

/// Computes the index from the files and puts it in memory in place of what `table` read;
/// returns its rows.
pub async fn materialize(session: &CorpusSession, table: &SwappableTable) -> Result<u64> {
    let df = session.sql(INDEX_SQL).await?;
    let schema = df.schema().inner().clone();
    let batches: Vec<RecordBatch> = df.collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    // One partition per core, so filters and sorts over the index use them all.
    let parts = session.ctx().state().config().target_partitions().max(1);
    let mut partitions: Vec<Vec<RecordBatch>> = vec![vec![]; parts];
    for (i, b) in batches.into_iter().enumerate() {
        partitions[i % parts].push(b);
    }
    table.swap(Arc::new(MemTable::try_new(schema, partitions)?))?;
    Ok(rows as u64)
}

/// Lists every table; refreshes those whose files changed, rebuilds the index when the
/// trajectories changed (or it was never built) and forgets cached results. Returns the
/// tables that changed.
pub async fn refresh_now(app: &App) -> Result<Vec<String>> {
    let mut known = app.index.files.lock().await;
    let session = &app.session;
    let mut changed = vec![];
    for t in tables::ALL {
        let mut files: Vec<FileSig> = session
            .corpus()
            .list_table(t)
            .await?
            .into_iter()
            .map(|m| {
                (
                    m.location.to_string(),
                    m.size,
                    m.last_modified.timestamp_nanos_opt().unwrap_or(0),
                )
            })
            .collect();
        files.sort();
        if known.get(t.name) != Some(&files) {
            session.refresh(t)?;
            known.insert(t.name, files);
            changed.push(t.name.to_string());
        }
    }
    let now = chrono::Utc::now().to_rfc3339();
    let must_build =
        changed.iter().any(|t| t == tables::TRAJECTORIES.name) || !app.index.status().materialized;
    let table = app.index.table.lock().expect("lock").clone();
    if must_build && let Some(table) = table {
        let started = Instant::now();
        let rows = materialize(session, &table).await?;
        let mut s = app.index.status.lock().expect("lock");
        s.materialized = true;
        s.rows = rows;
        s.build_ms = started.elapsed().as_millis() as u64;
        s.built_at = Some(now.clone());
    }
    if !changed.is_empty() {
        app.cache.lock().expect("lock").clear();
    }
    let mut s = app.index.status.lock().expect("lock");
    s.checked_at = Some(now);
    if !changed.is_empty() {
        s.last_changed = changed.clone();
    }
    s.last_error = None;
    Ok(changed)
}

/// Refreshes now, then every `refresh` interval, for as long as the server runs.
pub async fn refresher(app: Arc<App>) {
    loop {
        if let Err(e) = refresh_now(&app).await {
            tracing::warn!("refreshing the corpus's tables failed: {e}");
            app.index.status.lock().expect("lock").last_error = Some(e.to_string());
        }
        tokio::time::sleep(app.options.refresh).await;
    }
}
