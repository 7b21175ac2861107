//! The SQL session over a corpus: every table of the corpus, every tdscale function and every
//! view of `sql/views/` registered on one DataFusion `SessionContext`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{JsonReadOptions, SessionConfig, SessionContext};

use crate::error::Result;
use crate::store::registry::S3FromEnvRegistry;
use crate::store::{Corpus, schema, tables};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

/// The views of `sql/views/`, compiled in so the binary works from any directory. Order matters:
/// a view may use the ones before it.
pub const VIEWS: &[(&str, &str)] = &[
    ("tool_calls", include_str!("../../sql/views/tool_calls.sql")),
    (
        "trajectory_metrics",
        include_str!("../../sql/views/trajectory_metrics.sql"),
    ),
];

/// How a session is built: the defaults, or a memory limit for the queries it runs.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Bytes the operators that buffer (sorts, joins, aggregates, windows) may hold at once,
    /// shared fairly between them; past it they spill to temporary files, and a query that
    /// cannot spill fails with "Resources exhausted". `None`: no limit.
    pub memory_limit: Option<usize>,
    /// Where spill files go (default: the system temporary folder).
    pub spill_dir: Option<std::path::PathBuf>,
}

/// The session configuration tdscale uses everywhere.
pub fn session_config() -> SessionConfig {
    // The parser's recursion limit (`sql_parser.recursion_limit`, 50 by default) refuses deeply
    // nested parentheses and sub-queries with a clear error; `query::statements` also bounds the
    // operator chains it cannot see.
    SessionConfig::new().with_information_schema(true)
}

/// A session with the tdscale functions and no tables.
pub fn bare_context() -> SessionContext {
    bare_context_with(&SessionOptions::default()).expect("the default runtime settings are valid")
}

/// A session with the tdscale functions and no tables, built with `opts`.
pub fn bare_context_with(opts: &SessionOptions) -> Result<SessionContext> {
    // s3:// URLs get a store from the AWS_* settings on first use, and files can be queried by
    // path: SELECT * FROM 'runs/x.parquet'.
    let mut runtime =
        RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(S3FromEnvRegistry::default()));
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
    let ctx = SessionContext::new_with_config_rt(session_config(), runtime.build_arc()?)
        .enable_url_table();
    crate::metrics::register(&ctx);
    crate::select::register(&ctx);
    Ok(ctx)
}

/// The full `trajectories` schema as queries see it: the file schema plus `round`.
pub fn trajectories_table_schema() -> Arc<Schema> {
    let mut fields: Vec<Field> = schema::trajectory_file_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(schema::ROUND_COLUMN, DataType::Int32, false));
    Arc::new(Schema::new(fields))
}

async fn has_files(corpus: &Corpus, table: &str, ext: &str) -> Result<bool> {
    Ok(corpus
        .list_table(table)
        .await?
        .iter()
        .any(|m| m.location.as_ref().ends_with(ext)))
}

/// Registers the corpus tables on `ctx`. `trajectories` and `tools` always exist (empty in a new
/// corpus); the other tables appear once something has written them.
pub async fn register_tables(ctx: &SessionContext, corpus: &Corpus) -> Result<()> {
    corpus.register_store(ctx);
    if has_files(corpus, tables::TRAJECTORIES, ".parquet").await? {
        let url = ListingTableUrl::parse(corpus.table_url(tables::TRAJECTORIES))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![(schema::ROUND_COLUMN.to_string(), DataType::Int32)]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema::trajectory_file_schema());
        ctx.register_table(
            tables::TRAJECTORIES,
            Arc::new(ListingTable::try_new(config)?),
        )?;
    } else {
        ctx.register_table(
            tables::TRAJECTORIES,
            Arc::new(MemTable::try_new(
                trajectories_table_schema(),
                vec![vec![]],
            )?),
        )?;
    }
    if has_files(corpus, tables::TOOLS, ".parquet").await? {
        let url = ListingTableUrl::parse(corpus.table_url(tables::TOOLS))?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema::tools_schema());
        ctx.register_table(tables::TOOLS, Arc::new(ListingTable::try_new(config)?))?;
    } else {
        ctx.register_table(
            tables::TOOLS,
            Arc::new(MemTable::try_new(schema::tools_schema(), vec![vec![]])?),
        )?;
    }
    for table in tables::PARQUET
        .iter()
        .filter(|t| ![tables::TRAJECTORIES, tables::TOOLS].contains(t))
    {
        if has_files(corpus, table, ".parquet").await? {
            ctx.register_parquet(*table, corpus.table_url(table), Default::default())
                .await?;
        }
    }
    for (table, schema) in schema::fixed_tables() {
        if !ctx.table_exist(table)? {
            ctx.register_table(table, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        }
    }
    if has_files(corpus, tables::REJECTS, ".jsonl").await? {
        let options = JsonReadOptions {
            file_extension: ".jsonl",
            ..Default::default()
        };
        ctx.register_json(tables::REJECTS, corpus.table_url(tables::REJECTS), options)
            .await?;
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

/// A session over `corpus` with every table, function and view.
///
/// ```no_run
/// # async fn f() -> tdscale::error::Result<()> {
/// let corpus = tdscale::store::Corpus::open("./corpus")?;
/// let ctx = tdscale::query::session::corpus_context(&corpus).await?;
/// ctx.sql("SELECT count(*) FROM tool_calls WHERE is_error").await?.show().await?;
/// # Ok(()) }
/// ```
pub async fn corpus_context(corpus: &Corpus) -> Result<SessionContext> {
    corpus_context_with(corpus, &SessionOptions::default()).await
}

/// [`corpus_context`] built with `opts` (e.g. a memory limit).
pub async fn corpus_context_with(corpus: &Corpus, opts: &SessionOptions) -> Result<SessionContext> {
    let ctx = bare_context_with(opts)?;
    register_tables(&ctx, corpus).await?;
    register_views(&ctx).await?;
    Ok(ctx)
}
