//! The SQL session over a corpus: every table of [`tables::ALL`], every tdscale function and
//! every view of `sql/views/`, registered once on one DataFusion `SessionContext`.
//!
//! A command opens one [`CorpusSession`] and passes it to every step. Tables are registered
//! without listing their folders: a table is listed the first time a query reads it, and that
//! listing is kept in the session's list-files cache, so a table is listed once however many
//! queries read it. A step that writes a table calls [`CorpusSession::refresh`], and the next
//! query lists that table (and only that one) again.
//!
//! Opening a session over a corpus first brings its stored per-trajectory metrics up to date
//! ([`trajectory_metrics::refresh`]: a corpus written by an older tdscale, or before a change of
//! the metric definitions, is upgraded on first use). When they cannot be written (a read-only
//! store) or [`SessionOptions::computed_metrics`] asks for it, `trajectory_metrics` is instead
//! the view `computed_trajectory_metrics`, which computes the same values from `messages`.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, TableFunctionImpl, TableProvider,
};
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::cache::TableScopedPath;
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, CachedFileList};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::bound::{BoundTable, BoundTableFunction, forget_listings};
use super::listings::TableListings;
use crate::error::Result;
use crate::store::registry::S3FromEnvRegistry;
use crate::store::tables::{self, Layout, Table};
use crate::store::{Corpus, schema, trajectory_metrics};

/// The views of `sql/views/`, compiled in so the binary works from any directory. Order matters:
/// a view may use the ones before it.
pub const VIEWS: &[(&str, &str)] = &[
    ("tool_calls", include_str!("../../sql/views/tool_calls.sql")),
    (
        "computed_trajectory_metrics",
        include_str!("../../sql/views/computed_trajectory_metrics.sql"),
    ),
];

const DEFAULT_CATALOG: &str = "datafusion";
const DEFAULT_SCHEMA: &str = "public";

/// Memory for the cached listings of a session's tables: room for ~100k files.
const LIST_CACHE_BYTES: usize = 64 << 20;

/// How a session is built: the defaults, or a memory limit for the queries it runs.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Bytes the operators that buffer (sorts, joins, aggregates, windows) may hold at once,
    /// shared fairly between them; past it they spill to temporary files, and a query that
    /// cannot spill fails with "Resources exhausted". `None`: no limit.
    pub memory_limit: Option<usize>,
    /// Where spill files go (default: the system temporary folder).
    pub spill_dir: Option<std::path::PathBuf>,
    /// Refuse to read files by path (`SELECT * FROM 'runs/x.parquet'`), as a session running
    /// untrusted SQL must (`tdscale serve`).
    pub deny_file_paths: bool,
    /// Compute the per-trajectory metrics from `messages` (the view
    /// `computed_trajectory_metrics`) instead of reading the stored `trajectory_metrics`, and
    /// leave the corpus as it is. The results are the same; it is slower.
    pub computed_metrics: bool,
}

/// The session configuration tdscale uses everywhere.
pub fn session_config() -> SessionConfig {
    // The parser's recursion limit (`sql_parser.recursion_limit`, 50 by default) refuses deeply
    // nested parentheses and sub-queries with a clear error; `query::statements` also bounds the
    // operator chains it cannot see.
    SessionConfig::new().with_information_schema(true)
}

/// A session with the tdscale functions and no tables; files can be queried by path
/// (`SELECT * FROM 'runs/x.parquet'`).
pub fn bare_context() -> SessionContext {
    bare_context_with(&SessionOptions::default()).expect("the default runtime settings are valid")
}

/// A session with the tdscale functions and no tables, built with `opts`.
pub fn bare_context_with(opts: &SessionOptions) -> Result<SessionContext> {
    // s3:// URLs get a store from the AWS_* settings on first use, and files can be queried by
    // path unless `deny_file_paths`: SELECT * FROM 'runs/x.parquet'.
    let mut runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(S3FromEnvRegistry::default()))
        .with_cache_manager(
            CacheManagerConfig::default()
                .with_list_files_cache(Some(Arc::new(TableListings::new(LIST_CACHE_BYTES, None))))
                .with_list_files_cache_limit(LIST_CACHE_BYTES),
        );
    if let Some(limit) = opts.memory_limit {
        // FairSpillPool: each spilling operator gets an equal share, so one sort cannot starve
        // the others; spilling needs a disk manager, which the default builder has.
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    if let Some(dir) = &opts.spill_dir {
        runtime = runtime.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
        );
    }
    let ctx = SessionContext::new_with_config_rt(session_config(), runtime.build_arc()?);
    let ctx = if opts.deny_file_paths {
        ctx
    } else {
        ctx.enable_url_table()
    };
    crate::metrics::register(&ctx);
    Ok(ctx)
}

/// The listing table of one corpus table. Nothing is listed until a query reads it.
fn listing_table(corpus: &Corpus, table: &Table) -> Result<ListingTable> {
    let url = ListingTableUrl::parse(corpus.table_url(table))?
        .with_table_ref(TableReference::bare(table.name));
    let options = match table.layout {
        Layout::Parquet => ListingOptions::new(Arc::new(ParquetFormat::default())),
        Layout::ParquetByRound => ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_table_partition_cols(vec![(schema::ROUND_COLUMN.to_string(), DataType::Int32)]),
        Layout::JsonLines => ListingOptions::new(Arc::new(JsonFormat::default())),
    }
    .with_file_extension(table.extension());
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(table.file_schema());
    Ok(ListingTable::try_new(config)?)
}

/// Registers every table of the corpus on `ctx` (and the corpus's object store).
pub fn register_tables(ctx: &SessionContext, corpus: &Corpus) -> Result<()> {
    corpus.register_store(ctx);
    for table in tables::ALL {
        ctx.register_table(table.name, Arc::new(listing_table(corpus, table)?))?;
    }
    Ok(())
}

/// Creates the views of `sql/views/`.
pub async fn register_views(ctx: &SessionContext) -> Result<()> {
    for (name, sql) in VIEWS {
        ctx.sql(sql)
            .await
            .map_err(|e| e.context(format!("creating view {name}")))?
            .collect()
            .await?;
    }
    Ok(())
}

/// A SQL session over a corpus: its tables, the tdscale functions and the views.
///
/// ```no_run
/// # async fn f() -> tdscale::error::Result<()> {
/// let corpus = tdscale::store::Corpus::open("./corpus")?;
/// let session = tdscale::query::session::CorpusSession::open(&corpus).await?;
/// session.ctx().sql("SELECT count(*) FROM tool_calls WHERE is_error").await?.show().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CorpusSession {
    corpus: Corpus,
    ctx: SessionContext,
    stored_metrics: bool,
}

impl std::fmt::Debug for CorpusSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CorpusSession({})", self.corpus.display())
    }
}

impl CorpusSession {
    /// Opens a session over `corpus` with every table, function and view.
    pub async fn open(corpus: &Corpus) -> Result<Self> {
        Self::open_with(corpus, &SessionOptions::default()).await
    }

    /// [`CorpusSession::open`] built with `opts` (e.g. a memory limit).
    pub async fn open_with(corpus: &Corpus, opts: &SessionOptions) -> Result<Self> {
        if !corpus.is_local() {
            corpus.location().check_reachable().await?;
        }
        Self::on_with(corpus, bare_context_with(opts)?, opts).await
    }

    /// Registers the corpus's tables and views on a prepared context (e.g. one connected to a
    /// cluster, with the functions already registered).
    pub async fn on(corpus: &Corpus, ctx: SessionContext) -> Result<Self> {
        Self::on_with(corpus, ctx, &SessionOptions::default()).await
    }

    /// [`CorpusSession::on`], reading or computing the per-trajectory metrics as `opts` says.
    pub async fn on_with(
        corpus: &Corpus,
        ctx: SessionContext,
        opts: &SessionOptions,
    ) -> Result<Self> {
        let mut listings = vec![];
        let stored_metrics = !opts.computed_metrics
            // Never wait for another writer: while one holds the corpus, compute instead.
            && match trajectory_metrics::refresh(
                &corpus.clone().with_lock_timeout(std::time::Duration::ZERO),
                false,
            )
            .await
            {
                Ok(r) => {
                    if r.computed > 0 || r.removed > 0 {
                        tracing::info!("{}", r.to_text().trim_end());
                    }
                    listings = r.listings;
                    true
                }
                Err(e) => {
                    tracing::warn!(
                        "the stored trajectory metrics of {} could not be brought up to date ({e}); \
                         computing them from the messages in every query instead (`tdscale metrics refresh` stores them)",
                        corpus.display()
                    );
                    false
                }
            };
        register_tables(&ctx, corpus)?;
        register_views(&ctx).await?;
        if !stored_metrics {
            ctx.deregister_table(tables::TRAJECTORY_METRICS.name)?;
            ctx.sql(&format!(
                "CREATE VIEW {} AS SELECT * FROM computed_trajectory_metrics",
                tables::TRAJECTORY_METRICS.name
            ))
            .await?
            .collect()
            .await?;
        }
        let session = Self {
            corpus: corpus.clone(),
            ctx,
            stored_metrics,
        };
        // The refresh listed these tables: the first query need not list them again.
        for (table, files) in listings {
            session.remember_listing(table, files)?;
        }
        Ok(session)
    }

    /// The cache key of `table`'s listing.
    fn listing_key(&self, table: &Table) -> Result<TableScopedPath> {
        Ok(TableScopedPath {
            table: Some(TableReference::bare(table.name)),
            path: ListingTableUrl::parse(self.corpus.table_url(table))?
                .prefix()
                .clone(),
        })
    }

    /// Records `files` as the listing of `table`.
    fn remember_listing(&self, table: &Table, files: Vec<object_store::ObjectMeta>) -> Result<()> {
        if let Some(cache) = self.ctx.runtime_env().cache_manager.get_list_files_cache() {
            cache.put(&self.listing_key(table)?, CachedFileList::new(files));
        }
        Ok(())
    }

    /// True when `trajectory_metrics` is the stored table, false when it is computed from
    /// `messages` by every query that reads it.
    pub fn stored_metrics(&self) -> bool {
        self.stored_metrics
    }

    /// The DataFusion context.
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    /// The corpus.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// Takes the corpus's writer lock for `command` (see [`Corpus::lock_writer`]). When it was
    /// not held by this process already, the session forgets every listing it made before, as
    /// another writer may have changed the tables meanwhile.
    pub async fn lock_writer(&self, command: &str) -> Result<crate::store::lock::WriterLock> {
        let lock = self.corpus.lock_writer(command).await?;
        if lock.taken_now() {
            for t in tables::ALL {
                self.refresh(t)?;
            }
        }
        Ok(lock)
    }

    /// Forgets what the session knows of `table`'s files, after something wrote to it.
    pub fn refresh(&self, table: &Table) -> Result<()> {
        Ok(forget_listings(
            &self.ctx,
            &[TableReference::bare(table.name)],
        )?)
    }

    /// Tells the session that `files` were just written to `table`. When the session has
    /// listed the table already, the files join that listing (a HEAD each): later queries see
    /// them without listing the table again.
    pub async fn add_files(&self, table: &Table, files: &[Path]) -> Result<()> {
        let Some(cache) = self.ctx.runtime_env().cache_manager.get_list_files_cache() else {
            return Ok(());
        };
        let key = self.listing_key(table)?;
        let Some(cached) = cache.get(&key) else {
            return Ok(());
        };
        let mut listed = cached.files.as_ref().clone();
        let store = self.corpus.store();
        for f in files {
            let meta = store
                .head(f)
                .await
                .map_err(|e| self.corpus.storage_error(e))?;
            if !listed.iter().any(|m| m.location == meta.location) {
                listed.push(meta);
            }
        }
        cache.put(&key, CachedFileList::new(listed));
        Ok(())
    }

    /// The files of `table` as this session last listed them — what its queries read — if it
    /// has listed the table.
    pub fn listed_files(&self, table: &Table) -> Result<Option<Vec<ObjectMeta>>> {
        let Some(cache) = self.ctx.runtime_env().cache_manager.get_list_files_cache() else {
            return Ok(None);
        };
        Ok(cache
            .get(&self.listing_key(table)?)
            .map(|c| c.files.as_ref().clone()))
    }

    /// A session of its own over the same tables, views, functions and caches: tables a step
    /// registers or replaces there (a materialised view, a temporary selection) are not seen
    /// by this session.
    pub async fn scoped(&self) -> Result<CorpusSession> {
        let schema = MemorySchemaProvider::new();
        if let Some(source) = self
            .ctx
            .catalog(DEFAULT_CATALOG)
            .and_then(|c| c.schema(DEFAULT_SCHEMA))
        {
            for name in source.table_names() {
                if let Some(t) = source.table(&name).await? {
                    schema.register_table(name, t)?;
                }
            }
        }
        let catalog = MemoryCatalogProvider::new();
        catalog.register_schema(DEFAULT_SCHEMA, Arc::new(schema))?;
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(DEFAULT_CATALOG.to_string(), Arc::new(catalog));
        let state = SessionStateBuilder::new_from_existing(self.ctx.state())
            .with_catalog_list(Arc::new(catalogs))
            .build();
        Ok(Self {
            corpus: self.corpus.clone(),
            ctx: SessionContext::new_with_state(state),
            stored_metrics: self.stored_metrics,
        })
    }

    /// Every table of the corpus, bound to this session: another session (another DataFusion,
    /// through `datafusion-ffi`) that registers them reads the corpus through this one, and each
    /// of its scans lists the table again, so it sees what was written since.
    pub async fn bound_tables(&self) -> Result<Vec<(&'static str, Arc<dyn TableProvider>)>> {
        let mut out = vec![];
        for table in tables::ALL {
            let inner = self.ctx.table_provider(table.name).await?;
            let bound = BoundTable::new(inner, self.ctx.clone())
                .relisting(vec![TableReference::bare(table.name)]);
            out.push((table.name, Arc::new(bound) as Arc<dyn TableProvider>));
        }
        Ok(out)
    }

    /// Every tdscale table function, bound to this session: called from another session, they
    /// read this session's tables and views, listed again for each call.
    pub fn bound_table_functions(&self) -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
        let every_table: Vec<TableReference> = tables::ALL
            .iter()
            .map(|t| TableReference::bare(t.name))
            .collect();
        crate::metrics::table_functions()
            .into_iter()
            .map(|(name, f)| {
                let bound: Arc<dyn TableFunctionImpl> = Arc::new(BoundTableFunction::new(
                    f,
                    self.ctx.clone(),
                    every_table.clone(),
                ));
                (name, bound)
            })
            .collect()
    }

    /// Plans one statement.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        Ok(self.ctx.sql(sql).await?)
    }

    /// Runs one statement and collects its result.
    pub async fn collect(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }
}
