//! Per-trajectory metrics kept beside the data (DESIGN.md, "Per-trajectory metrics at write
//! time").
//!
//! Every `trajectories` part file has a `trajectory_metrics` part of the same name under the
//! folder of the metric definitions' version (`trajectory_metrics/v2/round=N/part-….parquet`),
//! holding per trajectory the columns of `sql/views/computed_trajectory_metrics.sql`: the reasoning
//! mode, CAC, steps, tool sequence and user-text MinHash, computed from the Arrow batch by the
//! functions behind the SQL functions, and the flat columns the plans read with them. A query
//! of the metrics then reads a few flat columns instead of decoding `messages`.
//!
//! [`TrajectoryWriter`] is how trajectories are written: each batch goes to both tables, the
//! trajectories part completing first. [`refresh`] brings a corpus's metrics up to date from
//! the two listings alone: a trajectories part without its metrics part (written by an older
//! tdscale, or before a change of definition, which moves the table to a new version folder)
//! gets one; metrics files of other versions, or whose trajectories part is gone, are removed
//! once the new ones are written. A session runs it when it opens a corpus, so existing
//! corpora are upgraded on first use; `tdscale metrics refresh` runs it on demand, and with
//! `force` recomputes every part.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, ListArray, RecordBatch, StringArray, StringBuilder,
    UInt32Array, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use rayon::prelude::*;
use serde::Serialize;

use super::tables::{METRICS_VERSION, TRAJECTORIES, TRAJECTORY_METRICS, Table};
use super::writer::{Committed, PartWriter, properties_builder, run_id};
use super::{Corpus, read};
use crate::error::{Error, Result};
use crate::metrics::calls::{CallScan, CodeTools, Weights};
use crate::metrics::messages::{MessagesView, StrCol};
use crate::metrics::minhash::extend_with_signature;
use crate::metrics::reasoning_mode::mode_of_calls_into;
use crate::metrics::tool_sequence::tool_names_of;
use crate::metrics::user_text::user_text_into;

/// Hash functions of the stored user-text MinHash (`minhash(user_text(messages), 64)`).
pub const USER_MINHASH_K: usize = 64;

/// Rows computed per task: the batches of a part are split so that both cores work.
const ROWS_PER_TASK: usize = 2048;

/// The columns of `trajectories` the metrics are computed from.
const INPUT_COLUMNS: &[&str] = &[
    "traj_id",
    "source",
    "format",
    "domain",
    "cluster_id",
    "reasoning_mode",
    "tools",
    "messages",
    "num_turns",
    "num_tool_calls",
    "num_tokens",
    "reward",
];

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        Error::Other(format!(
            "computing trajectory metrics: the trajectories batch has no `{name}` column"
        ))
    })
}

/// A copied column, in the stored table's type.
fn copied(batch: &RecordBatch, name: &str, schema: &SchemaRef) -> Result<ArrayRef> {
    let to = schema.field_with_name(name)?.data_type();
    Ok(cast(column(batch, name)?, to)?)
}

fn list_of(item: DataType, lengths: Vec<usize>, values: ArrayRef, valid: &[bool]) -> ArrayRef {
    Arc::new(ListArray::new(
        Arc::new(Field::new("item", item, true)),
        OffsetBuffer::from_lengths(lengths),
        values,
        Some(NullBuffer::from(valid.to_vec())),
    ))
}

/// The `trajectory_metrics` rows of a batch of `trajectories` rows (the file schema; `round` is
/// the partition's). Each value is what the SQL function of
/// `sql/views/computed_trajectory_metrics.sql` returns for that row: the same functions compute
/// it, with the default weights and code tools.
pub fn compute(batch: &RecordBatch) -> Result<RecordBatch> {
    if batch.num_rows() > ROWS_PER_TASK {
        // Slices of one batch on every core; concatenated back in order.
        let slices: Vec<RecordBatch> = (0..batch.num_rows())
            .step_by(ROWS_PER_TASK)
            .map(|o| batch.slice(o, ROWS_PER_TASK.min(batch.num_rows() - o)))
            .collect();
        let parts = slices
            .par_iter()
            .map(compute_rows)
            .collect::<Result<Vec<_>>>()?;
        return Ok(concat_batches(&TRAJECTORY_METRICS.file_schema(), &parts)?);
    }
    compute_rows(batch)
}

fn compute_rows(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = TRAJECTORY_METRICS.file_schema();
    let n = batch.num_rows();
    let messages = column(batch, "messages")?;
    let v = MessagesView::try_new(messages)?;
    let label = column(batch, "reasoning_mode")?;
    let label = StrCol::try_new(label, "reasoning_mode")?;
    let tools = column(batch, "tools")?;
    let code = CodeTools::default();
    let weights = Weights::default();

    let mut mode = StringBuilder::with_capacity(n, 8 * n);
    // Room reused row after row: the mode, the user text and its shingles.
    let (mut mode_text, mut user_text, mut shingles) = (String::new(), String::new(), vec![]);
    let mut cac: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut steps: Vec<Option<u64>> = Vec::with_capacity(n);
    let mut tools_used: Vec<Option<u64>> = Vec::with_capacity(n);
    let mut valid: Vec<bool> = Vec::with_capacity(n);
    let mut names: Vec<&str> = vec![];
    let mut name_lengths: Vec<usize> = Vec::with_capacity(n);
    let mut hashes: Vec<u32> = Vec::with_capacity(n * USER_MINHASH_K);
    let mut hash_lengths: Vec<usize> = Vec::with_capacity(n);
    let mut distinct: datafusion::common::HashSet<&str> = Default::default();
    let mut scan = CallScan::default();
    for r in 0..n {
        let present = !v.is_null(r);
        valid.push(present);
        if !present {
            // coalesce(reasoning_mode, reasoning_mode(messages)) with NULL messages
            mode.append_option(label.get(r));
            cac.push(None);
            steps.push(None);
            tools_used.push(None);
            name_lengths.push(0);
            hash_lengths.push(0);
            continue;
        }
        let facts = scan.facts(&v, r, &code);
        // coalesce(reasoning_mode, reasoning_mode(messages)), from the facts CAC reads too
        match label.get(r) {
            Some(l) => mode.append_value(l),
            None => {
                mode_of_calls_into(&v, r, facts, &mut mode_text);
                mode.append_value(&mode_text);
            }
        }
        cac.push(Some(weights.total(facts)));
        steps.push(Some(facts.len() as u64));
        let before = names.len();
        tool_names_of(&v, r, &mut names);
        name_lengths.push(names.len() - before);
        distinct.clear();
        distinct.extend(&names[before..]);
        tools_used.push(Some(distinct.len() as u64));
        user_text_into(&v, r, &mut user_text);
        extend_with_signature(&user_text, USER_MINHASH_K, &mut shingles, &mut hashes);
        hash_lengths.push(USER_MINHASH_K);
    }
    let tools_offered: UInt64Array = match tools.data_type() {
        DataType::List(_) => {
            let l = tools.as_list::<i32>();
            (0..n)
                .map(|r| (!l.is_null(r)).then(|| l.value_length(r) as u64))
                .collect()
        }
        other => {
            return Err(Error::Other(format!(
                "computing trajectory metrics: `tools` is {other}, expected a list"
            )));
        }
    };
    let columns: Vec<ArrayRef> = vec![
        copied(batch, "traj_id", &schema)?,
        copied(batch, "source", &schema)?,
        copied(batch, "format", &schema)?,
        copied(batch, "domain", &schema)?,
        copied(batch, "cluster_id", &schema)?,
        copied(batch, "reasoning_mode", &schema)?,
        Arc::new(mode.finish()),
        Arc::new(Float64Array::from(cac)),
        Arc::new(UInt64Array::from(steps)),
        copied(batch, "num_turns", &schema)?,
        copied(batch, "num_tool_calls", &schema)?,
        copied(batch, "num_tokens", &schema)?,
        copied(batch, "reward", &schema)?,
        Arc::new(tools_offered),
        Arc::new(UInt64Array::from(tools_used)),
        list_of(
            DataType::Utf8,
            name_lengths,
            Arc::new(StringArray::from_iter_values(names)),
            &valid,
        ),
        list_of(
            DataType::UInt32,
            hash_lengths,
            Arc::new(UInt32Array::from(hashes)),
            &valid,
        ),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Parquet settings of the metrics parts: those of every part (no statistics inside lists
/// among them), except that the MinHash values (uniformly random 32-bit numbers) are stored
/// plain, without a dictionary or compression, which would cost time and save nothing.
pub fn properties() -> WriterProperties {
    let hashes = ColumnPath::from(vec![
        "user_minhash".to_string(),
        "list".to_string(),
        "item".to_string(),
    ]);
    properties_builder(&TRAJECTORY_METRICS.file_schema())
        .set_column_dictionary_enabled(hashes.clone(), false)
        .set_column_encoding(hashes.clone(), Encoding::PLAIN)
        .set_column_compression(hashes, Compression::UNCOMPRESSED)
        .set_key_value_metadata(Some(vec![
            datafusion::parquet::file::metadata::KeyValue::new(
                "tdscale.metrics_version".to_string(),
                METRICS_VERSION.to_string(),
            ),
        ]))
        .build()
}

/// Writes trajectory batches into `trajectories/round=N/` and their metrics into
/// `trajectory_metrics/vV/round=N/` under the same part names: the two writers see the same
/// rows, so they roll to a new file at the same rows. Each trajectories part is complete before
/// its metrics part, so a metrics file never names a trajectories file that is not there yet.
pub struct TrajectoryWriter {
    corpus: Corpus,
    trajectories: PartWriter,
    metrics: PartWriter,
}

impl TrajectoryWriter {
    /// A writer of partition `round`.
    pub fn new(corpus: &Corpus, round: i32) -> Self {
        let run = run_id();
        Self {
            corpus: corpus.clone(),
            trajectories: PartWriter::for_table(corpus, &TRAJECTORIES, round).with_run_id(&run),
            metrics: PartWriter::for_table(corpus, &TRAJECTORY_METRICS, round)
                .with_run_id(&run)
                .with_properties(properties()),
        }
    }

    /// Rolls to a new part every `rows` rows (both tables).
    pub fn with_rows_per_file(self, rows: usize) -> Self {
        Self {
            trajectories: self.trajectories.with_rows_per_file(rows),
            metrics: self.metrics.with_rows_per_file(rows),
            ..self
        }
    }

    /// Appends a `trajectories` batch, computing its metrics here.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let metrics = cpu(|| compute(batch))?;
        self.write_with_metrics(batch, &metrics).await
    }

    /// Appends a `trajectories` batch and its metrics, computed by [`compute`] (e.g. on the
    /// cores that built the batch).
    pub async fn write_with_metrics(
        &mut self,
        batch: &RecordBatch,
        metrics: &RecordBatch,
    ) -> Result<()> {
        if batch.num_rows() != metrics.num_rows() {
            return Err(Error::Other(format!(
                "trajectory metrics of {} rows given for a batch of {}",
                metrics.num_rows(),
                batch.num_rows()
            )));
        }
        self.trajectories.write(batch).await?;
        self.metrics.write(metrics).await
    }

    /// Keeps the trajectories unique by `traj_id` across writers (see
    /// [`PartWriter::unique_by`]); `known` are the trajectories files whose ids the caller read.
    pub fn unique_by(self, known: impl IntoIterator<Item = Path>) -> Self {
        Self {
            trajectories: self.trajectories.unique_by(&TRAJECTORIES, "traj_id", known),
            ..self
        }
    }

    /// Completes the open parts; returns what was committed to each table.
    pub async fn finish(self) -> Result<Written> {
        let trajectories = self.trajectories.finish().await?;
        let mut metrics = self.metrics.finish().await?.paths();
        if trajectories.duplicates > 0 {
            // Another writer committed some of these ids first and the commit dropped those
            // rows: recompute the metrics of the parts that lost rows from what they now hold.
            let corpus = &self.corpus;
            let kept: BTreeMap<String, &(Path, usize)> = trajectories
                .files
                .iter()
                .filter_map(|f| relative(corpus, TRAJECTORIES.dir, &f.0).map(|r| (r, f)))
                .collect();
            let mut fixed = vec![];
            for m in metrics {
                let Some(rel) = relative(corpus, TRAJECTORY_METRICS.dir, &m) else {
                    continue;
                };
                match kept.get(&rel) {
                    Some((path, _)) => fixed.extend(recompute(corpus, path).await?),
                    None => corpus
                        .store()
                        .delete(&m)
                        .await
                        .map_err(|e| corpus.storage_error(e))?,
                }
            }
            metrics = fixed;
        }
        Ok(Written {
            trajectories,
            metrics,
        })
    }
}

/// What a [`TrajectoryWriter`] committed.
#[derive(Debug, Default)]
pub struct Written {
    /// The trajectories files, their rows, and the rows dropped as another writer's.
    pub trajectories: Committed,
    /// The metrics files.
    pub metrics: Vec<Path>,
}

impl Written {
    /// Trajectories written.
    pub fn rows(&self) -> usize {
        self.trajectories.rows()
    }
}

/// What [`refresh`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refresh {
    /// The version of the definitions the stored metrics now follow.
    pub version: String,
    /// `trajectories` part files.
    pub parts: usize,
    /// Parts whose metrics were computed in this run.
    pub computed: usize,
    /// Trajectories in those parts.
    pub trajectories: u64,
    /// Metrics files removed: of another version, or whose trajectories part is gone.
    pub removed: usize,
    pub seconds: f64,
    /// The files of `trajectories` and of `trajectory_metrics` after the refresh, so that a
    /// session need not list them again.
    #[serde(skip)]
    pub listings: Vec<(&'static Table, Vec<ObjectMeta>)>,
}

impl Refresh {
    /// The outcome as a line of text.
    pub fn to_text(&self) -> String {
        if self.computed == 0 && self.removed == 0 {
            return format!(
                "trajectory metrics (definitions v{}) are up to date: {} part(s)\n",
                self.version, self.parts
            );
        }
        format!(
            "trajectory metrics (definitions v{}): computed {} of {} part(s) ({} trajectories), removed {} stale file(s) in {:.2} s\n",
            self.version, self.computed, self.parts, self.trajectories, self.removed, self.seconds
        )
    }
}

/// The part of `location` after the folder `dir/` of the corpus (`round=0/part-….parquet`).
fn relative(corpus: &Corpus, dir: &str, location: &Path) -> Option<String> {
    let parts: Vec<String> = location
        .prefix_match(&corpus.path(dir))?
        .map(|p| p.as_ref().to_string())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Runs CPU-bound work from async code without stalling the runtime's other tasks (on a
/// multi-threaded runtime; a single-threaded one runs it in place).
fn cpu<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Brings the stored metrics of `corpus` up to date (see the module documentation); with
/// `force`, recomputes the metrics of every part.
///
/// Writing holds the corpus's writer lock, waiting for it as long as `corpus`'s lock timeout
/// says; a corpus whose metrics are up to date is only listed.
pub async fn refresh(corpus: &Corpus, force: bool) -> Result<Refresh> {
    if !force {
        let r = refresh_with(corpus, false, false).await?;
        if r.computed == 0 && r.removed == 0 {
            return Ok(r);
        }
    }
    let lock = corpus.lock_writer("metrics refresh").await?;
    let r = refresh_with(corpus, force, true).await;
    lock.release().await;
    r
}

/// [`refresh`]'s work; without `write`, only counts what it would compute and remove.
async fn refresh_with(corpus: &Corpus, force: bool, write: bool) -> Result<Refresh> {
    let started = Instant::now();
    // Metrics first: a metrics file is written after its trajectories part, so every metrics
    // file listed here has its trajectories part in the listing that follows.
    let stored: Vec<ObjectMeta> = corpus
        .list(TRAJECTORY_METRICS.name)
        .await?
        .into_iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
        .collect();
    let parts: BTreeMap<String, ObjectMeta> = corpus
        .list_table(&TRAJECTORIES)
        .await?
        .into_iter()
        .filter_map(|m| relative(corpus, TRAJECTORIES.dir, &m.location).map(|r| (r, m)))
        .collect();
    let current: HashSet<String> = stored
        .iter()
        .filter_map(|m| relative(corpus, TRAJECTORY_METRICS.dir, &m.location))
        .collect();
    let mut out = Refresh {
        version: METRICS_VERSION.to_string(),
        parts: parts.len(),
        ..Default::default()
    };
    let mut written: Vec<Path> = vec![];
    for (rel, meta) in &parts {
        if force || !current.contains(rel) {
            out.computed += 1;
            if write {
                let (rows, file) = compute_part(corpus, rel, meta).await?;
                out.trajectories += rows;
                written.extend(file);
            }
        }
    }
    let (stale, mut kept): (Vec<ObjectMeta>, Vec<ObjectMeta>) = stored.into_iter().partition(|m| {
        relative(corpus, TRAJECTORY_METRICS.dir, &m.location)
            .is_none_or(|rel| !parts.contains_key(&rel))
    });
    out.removed = stale.len();
    if write {
        corpus.remove_files(stale).await?;
    }
    let store = corpus.store();
    for path in written {
        let meta = store
            .head(&path)
            .await
            .map_err(|e| corpus.storage_error(e))?;
        kept.retain(|m| m.location != meta.location);
        kept.push(meta);
    }
    out.listings = vec![
        (&TRAJECTORIES, parts.into_values().collect()),
        (&TRAJECTORY_METRICS, kept),
    ];
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// Recomputes the metrics part of the trajectories file at `location` (after the file was
/// rewritten); returns the file written (none for a part without rows).
pub async fn recompute(corpus: &Corpus, location: &Path) -> Result<Option<Path>> {
    let Some(rel) = relative(corpus, TRAJECTORIES.dir, location) else {
        return Ok(None);
    };
    let meta = corpus
        .store()
        .head(location)
        .await
        .map_err(|e| corpus.storage_error(e))?;
    Ok(compute_part(corpus, &rel, &meta).await?.1)
}

/// Computes and writes the metrics part of the trajectories part `rel`; returns its rows and
/// the file written (none for a part without rows).
async fn compute_part(
    corpus: &Corpus,
    rel: &str,
    meta: &ObjectMeta,
) -> Result<(u64, Option<Path>)> {
    let mut batches = read::file_batches(corpus, meta, Some(INPUT_COLUMNS), 8192).await?;
    let mut w = PartWriter::to_file(
        corpus,
        &format!("{}/{rel}", TRAJECTORY_METRICS.dir),
        TRAJECTORY_METRICS.file_schema(),
    )
    .with_properties(properties());
    let mut rows = 0u64;
    while let Some(batch) = batches.try_next().await? {
        let metrics = cpu(|| compute(&batch))?;
        rows += metrics.num_rows() as u64;
        w.write(&metrics).await?;
    }
    let file = w.finish().await?.paths().into_iter().next();
    Ok((rows, file))
}
