//! Atomic Parquet part files: a file is visible only when it is complete.
//!
//! A table whose rows are unique by an id (`trajectories`, `tools`) is written with
//! [`PartWriter::unique_by`]: each part is first written under a `.pending` name that listings
//! skip, and its commit — one at a time per corpus in a process, with the writer lock checked
//! first — re-reads the ids of the parts other writers committed since this one started and drops
//! this part's rows whose ids are now present before making it visible. So even two writers that
//! both got past the lock (two tasks of one process, a lock lost on S3) never store an id twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::parquet::arrow::{ArrowSchemaConverter, AsyncArrowWriter};
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::error::Result;
use crate::store::tables::Table;
use crate::store::{Corpus, PENDING_SUFFIX, lock, owner::Owner, read};

/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 16 * 1024;
/// Flush a row group early when its encoded buffer grows past this many bytes, so memory
/// stays bounded whatever the size of the trajectories.
const ROW_GROUP_BYTES: usize = 64 << 20;
/// Start a new part file after this many rows.
pub const FILE_ROWS: usize = 500_000;

/// A unique name for a run's output files: the time, the process's owner tag (pid and start
/// time, [`Owner::tag`], so a later writer can tell whether the run is still going) and a
/// counter, so concurrent or repeated runs never collide.
pub fn run_id() -> String {
    static OWNER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| Owner::current().tag());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now();
    format!(
        "{}-{}-{}",
        now.format("%Y%m%dT%H%M%S%.6f"),
        *OWNER,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Text columns whose values are nearly all distinct (ids, message texts, call arguments): a
/// dictionary would cost a hash per value and fall back to plain encoding once it outgrows its
/// page, and it makes the pages it covers slower to decode.
const DISTINCT_TEXT: &[&str] = &[
    "traj_id",
    "parent_id",
    "content",
    "reasoning",
    "arguments",
    "tool_call_id",
];

/// The settings of every part file of `schema`: zstd level 1, row groups of
/// [`ROW_GROUP_ROWS`], no dictionary for the [`DISTINCT_TEXT`] columns, and no statistics for
/// the leaves inside lists (message texts, call arguments, tool schemas): no query prunes by
/// their minimum and maximum, and keeping them costs a comparison per value at write time.
pub fn writer_properties(schema: &Schema) -> WriterProperties {
    properties_builder(schema).build()
}

/// [`writer_properties`] as a builder, for a table that sets some columns apart.
pub fn properties_builder(
    schema: &Schema,
) -> datafusion::parquet::file::properties::WriterPropertiesBuilder {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    if let Ok(parquet) = ArrowSchemaConverter::new().convert(schema) {
        for leaf in parquet.columns() {
            if leaf.max_rep_level() > 0 {
                builder = builder
                    .set_column_statistics_enabled(leaf.path().clone(), EnabledStatistics::None);
            }
            if DISTINCT_TEXT.contains(&leaf.name()) {
                builder = builder.set_column_dictionary_enabled(leaf.path().clone(), false);
            }
        }
    }
    builder
}

/// What a [`PartWriter`] committed.
#[derive(Debug, Default)]
pub struct Committed {
    /// Every file made visible, with its row count.
    pub files: Vec<(Path, usize)>,
    /// Rows dropped at commit because another writer had committed their ids meanwhile.
    pub duplicates: usize,
}

impl Committed {
    /// The files made visible.
    pub fn paths(&self) -> Vec<Path> {
        self.files.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The rows made visible.
    pub fn rows(&self) -> usize {
        self.files.iter().map(|(_, n)| n).sum()
    }
}

/// The id check of a table whose rows are unique by an id column.
struct UniqueIds {
    table: &'static Table,
    column: &'static str,
    /// Files whose ids the writer accounts for: those it started from, and those checked since.
    known: HashSet<Path>,
    /// Keys of the ids other writers committed since this one started.
    foreign: HashSet<u128>,
}

/// Writes record batches into part files `<dir>/part-<run>-<n>.parquet`, rolling to a new file
/// every [`FILE_ROWS`] rows (or as set). Each file is uploaded through a buffered multipart writer and only
/// becomes visible when [`PartWriter::finish`] (or a roll) completes it; dropping the writer or
/// killing the process leaves nothing visible.
pub struct PartWriter {
    corpus: Corpus,
    dir: String,
    schema: SchemaRef,
    run: String,
    seq: usize,
    /// The open file: its writer, where it is written, and the name it gets when committed.
    current: Option<(AsyncArrowWriter<BufWriter>, Path, Path)>,
    rows_in_file: usize,
    rows_per_file: usize,
    unique: Option<UniqueIds>,
    committed: Committed,
    properties: WriterProperties,
    /// Write exactly this file (relative to the root) instead of numbered parts.
    file: Option<String>,
}

impl PartWriter {
    /// A writer into `dir` (relative to the corpus root, e.g. `trajectories/round=0`).
    pub fn new(corpus: &Corpus, dir: &str, schema: SchemaRef) -> Self {
        let properties = writer_properties(&schema);
        Self {
            corpus: corpus.clone(),
            dir: dir.to_string(),
            schema,
            run: run_id(),
            seq: 0,
            current: None,
            rows_in_file: 0,
            rows_per_file: FILE_ROWS,
            unique: None,
            committed: Committed::default(),
            properties,
            file: None,
        }
    }

    /// Keeps `table`'s rows unique by `column` (a string id) across writers: each part is
    /// committed only after dropping its rows whose ids were committed by others since this
    /// writer started. `known` are the table's files the caller already read the ids of (or
    /// otherwise accounts for); every other file that appears is checked.
    pub fn unique_by(
        mut self,
        table: &'static Table,
        column: &'static str,
        known: impl IntoIterator<Item = Path>,
    ) -> Self {
        self.unique = Some(UniqueIds {
            table,
            column,
            known: known.into_iter().collect(),
            foreign: HashSet::new(),
        });
        self
    }

    /// A writer of exactly one file, `rel` (relative to the corpus root), that never rolls.
    pub fn to_file(corpus: &Corpus, rel: &str, schema: SchemaRef) -> Self {
        let mut w = Self::new(corpus, "", schema);
        w.file = Some(rel.to_string());
        w.rows_per_file = usize::MAX;
        w
    }

    /// Names the parts after `run` instead of a fresh run id, so that two writers fed the same
    /// rows produce files of the same names (a table written beside another).
    pub fn with_run_id(mut self, run: &str) -> Self {
        self.run = run.to_string();
        self
    }

    /// The run id the part names carry.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Writes with these Parquet settings instead of [`writer_properties`].
    pub fn with_properties(mut self, properties: WriterProperties) -> Self {
        self.properties = properties;
        self
    }

    /// A writer of `table`'s files (into partition `round` for a table partitioned by round).
    pub fn for_table(corpus: &Corpus, table: &Table, round: i32) -> Self {
        Self::new(corpus, &table.folder(round), table.file_schema())
    }

    /// Rolls to a new part file every `rows` rows (at batch boundaries).
    pub fn with_rows_per_file(mut self, rows: usize) -> Self {
        self.rows_per_file = rows.max(1);
        self
    }

    fn open(&mut self) -> Result<()> {
        let name = match &self.file {
            Some(rel) => rel.clone(),
            None => format!("{}/part-{}-{:04}.parquet", self.dir, self.run, self.seq),
        };
        let path = self.corpus.path(&name);
        let written_at = if self.unique.is_some() {
            self.corpus.path(&format!("{name}{PENDING_SUFFIX}"))
        } else {
            path.clone()
        };
        self.seq += 1;
        let sink = BufWriter::new(self.corpus.store(), written_at.clone());
        let writer =
            AsyncArrowWriter::try_new(sink, self.schema.clone(), Some(self.properties.clone()))?;
        self.current = Some((writer, written_at, path));
        self.rows_in_file = 0;
        Ok(())
    }

    /// Appends a batch.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // Split the batch so that every file but the last holds exactly `rows_per_file` rows.
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.current.is_none() {
                self.open()?;
            }
            let take = (self.rows_per_file - self.rows_in_file).min(batch.num_rows() - offset);
            let (w, _, _) = self.current.as_mut().expect("opened above");
            w.write(&batch.slice(offset, take)).await?;
            if w.in_progress_size() > ROW_GROUP_BYTES {
                w.flush().await?;
            }
            offset += take;
            self.rows_in_file += take;
            if self.rows_in_file >= self.rows_per_file {
                self.close_current().await?;
            }
        }
        Ok(())
    }

    async fn close_current(&mut self) -> Result<()> {
        let Some((w, written_at, path)) = self.current.take() else {
            return Ok(());
        };
        let rows = self.rows_in_file;
        if self.unique.is_none() {
            // A writer that lost its lock must not make anything more visible.
            lock::check(&self.corpus)?;
            w.close().await?;
            self.committed.files.push((path, rows));
            return Ok(());
        }
        w.close().await?;
        let result = self.commit(&written_at, &path, rows).await;
        if result.is_err() {
            // Never leave an uncommitted part behind a failed commit.
            let _ = self.corpus.store().delete(&written_at).await;
        }
        result
    }

    /// Makes the pending part `pending` visible as `path`, without the rows whose ids another
    /// writer committed since this one started.
    async fn commit(&mut self, pending: &Path, path: &Path, rows: usize) -> Result<()> {
        let corpus = self.corpus.clone();
        let _section = lock::commit_section(&corpus).await?;
        let unique = self.unique.as_mut().expect("a unique writer");
        let own: HashSet<&Path> = self.committed.files.iter().map(|(p, _)| p).collect();
        let listed = corpus.list(unique.table.dir).await?;
        let mut new: Vec<ObjectMeta> = vec![];
        for m in listed {
            let name = m.location.filename().unwrap_or("");
            if name.ends_with(unique.table.extension()) {
                if !unique.known.contains(&m.location) && !own.contains(&m.location) {
                    new.push(m);
                }
            } else if !corpus.is_local()
                && super::is_pending_name(name)
                && m.location != *pending
                && stale_on_s3(&m)
            {
                // The uncommitted part of a writer that lost the lease long ago.
                let _ = corpus.store().delete(&m.location).await;
            }
        }
        if !new.is_empty() {
            let foreign = &mut unique.foreign;
            read::for_each_string(&corpus, &new, unique.column, |id| {
                foreign.insert(read::id_key(id));
            })
            .await?;
            unique.known.extend(new.into_iter().map(|m| m.location));
        }
        let kept = if unique.foreign.is_empty() {
            corpus
                .store()
                .rename(pending, path)
                .await
                .map_err(|e| corpus.storage_error(e))?;
            rows
        } else {
            let kept = copy_without(
                &corpus,
                self.schema.clone(),
                &self.properties,
                unique.column,
                &unique.foreign,
                pending,
                path,
            )
            .await?;
            corpus
                .store()
                .delete(pending)
                .await
                .map_err(|e| corpus.storage_error(e))?;
            kept
        };
        self.committed.duplicates += rows - kept;
        if kept > 0 {
            self.committed.files.push((path.clone(), kept));
        }
        Ok(())
    }

    /// Completes the open file and returns what was committed.
    pub async fn finish(mut self) -> Result<Committed> {
        self.close_current().await?;
        Ok(std::mem::take(&mut self.committed))
    }
}

/// Writes the rows of `pending` whose ids (`column`) are not in `foreign` to `path` (visible
/// when complete; nothing when no row is left) and returns how many.
async fn copy_without(
    corpus: &Corpus,
    schema: SchemaRef,
    properties: &WriterProperties,
    column: &str,
    foreign: &HashSet<u128>,
    pending: &Path,
    path: &Path,
) -> Result<usize> {
    let meta = corpus
        .store()
        .head(pending)
        .await
        .map_err(|e| corpus.storage_error(e))?;
    let mut batches = vec![];
    read::for_each_batch(corpus, &[meta], None, |b| {
        batches.push(b);
        Ok(())
    })
    .await?;
    let mut out: Option<AsyncArrowWriter<BufWriter>> = None;
    let mut kept = 0;
    for b in batches {
        let ids = datafusion::arrow::compute::cast(
            b.column_by_name(column)
                .expect("the table's schema has its id column"),
            &DataType::Utf8,
        )?;
        let keep: BooleanArray = ids
            .as_string::<i32>()
            .iter()
            .map(|id| Some(id.is_none_or(|id| !foreign.contains(&read::id_key(id)))))
            .collect();
        let b = datafusion::arrow::compute::filter_record_batch(&b, &keep)?;
        if b.num_rows() == 0 {
            continue;
        }
        if out.is_none() {
            let sink = BufWriter::new(corpus.store(), path.clone());
            out = Some(AsyncArrowWriter::try_new(
                sink,
                schema.clone(),
                Some(properties.clone()),
            )?);
        }
        kept += b.num_rows();
        out.as_mut().expect("opened above").write(&b).await?;
    }
    if let Some(w) = out {
        w.close().await?;
    }
    Ok(kept)
}

/// Whether an uncommitted part on S3 is older than a writer lease lasts: its writer lost the
/// lease (it renews the lease right before committing), so the part will never be committed.
fn stale_on_s3(m: &ObjectMeta) -> bool {
    let age = chrono::Utc::now() - m.last_modified;
    age.to_std()
        .is_ok_and(|age| age > 2 * lock::lease_duration())
}

/// Rewrites one Parquet file of a table in place: its batches are streamed through `f` (which
/// returns batches of `schema`) and written under the same path, through a buffered multipart
/// writer that makes the new content visible only when complete: a rename over the old file on a
/// local folder, the completion of the upload on S3. A reader sees the old file or the new one,
/// whole; a rewrite that fails or is killed leaves the old one. Returns the rows written.
///
/// A rewrite never changes the number of rows (`f` must return as many rows as it gets).
pub async fn rewrite(
    corpus: &Corpus,
    file: &object_store::ObjectMeta,
    schema: SchemaRef,
    mut f: impl FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<usize> {
    use datafusion::parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
    use futures::TryStreamExt;
    let reader = super::read::StoreFile {
        store: corpus.store(),
        path: file.location.clone(),
        size: file.size,
    };
    let mut stream = ParquetRecordBatchStreamBuilder::new(reader)
        .await?
        .build()?;
    let sink = BufWriter::new(corpus.store(), file.location.clone());
    let mut w = AsyncArrowWriter::try_new(sink, schema.clone(), Some(writer_properties(&schema)))?;
    let mut rows = 0;
    while let Some(batch) = stream.try_next().await? {
        let n = batch.num_rows();
        let out = f(batch)?;
        if out.num_rows() != n {
            return Err(crate::error::Error::Other(format!(
                "rewriting {}: {} rows became {}; the file is left as it was",
                file.location,
                n,
                out.num_rows()
            )));
        }
        w.write(&out).await?;
        if w.in_progress_size() > ROW_GROUP_BYTES {
            w.flush().await?;
        }
        rows += n;
    }
    w.close().await?;
    Ok(rows)
}

/// A streaming text object (NDJSON) that becomes visible when finished.
pub struct TextWriter {
    inner: BufWriter,
    lines: usize,
}

impl TextWriter {
    /// Starts `rel` under the corpus root.
    pub fn new(corpus: &Corpus, rel: &str) -> Self {
        Self {
            inner: BufWriter::new(corpus.store(), corpus.path(rel)),
            lines: 0,
        }
    }

    /// Appends one line (a newline is added).
    pub async fn line(&mut self, text: &str) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.inner.write_all(text.as_bytes()).await?;
        self.inner.write_all(b"\n").await?;
        self.lines += 1;
        Ok(())
    }

    /// Drops what was written: nothing becomes visible and no staging file is left.
    pub async fn abort(mut self) {
        self.inner.abort().await.ok();
    }

    /// Completes the object; with no line written nothing is created.
    pub async fn finish(mut self) -> std::io::Result<usize> {
        use tokio::io::AsyncWriteExt;
        if self.lines == 0 {
            self.inner.abort().await.ok();
            return Ok(0);
        }
        self.inner.shutdown().await?;
        Ok(self.lines)
    }
}
