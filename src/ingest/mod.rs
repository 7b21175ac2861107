//! Streaming ingest of trajectory files and tool catalogs into the corpus.
//!
//! One blocking worker reads each input as a stream of records, parses a chunk of records in
//! parallel (rayon), drops records already in the corpus or seen earlier in the run, and builds
//! Arrow batches; the async side writes them as Parquet part files that become visible only when
//! complete. Memory is bounded by the chunk size and the row-group buffer, not by the input.
//! Bad records never stop the run: each is reported with file, line and reason and copied to
//! `rejects/ingest-<run>.jsonl` in the corpus.

pub mod input;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::formats::{self, Format, ParseContext, Parsed};
use crate::model::{CatalogTool, Trajectory};
use crate::store::tables::{self, Table};
use crate::store::{Corpus, convert, read, trajectory_metrics, writer};
use input::{RawRecord, Records};

/// Records per parse chunk: large enough to keep both cores busy, small enough to bound memory.
const CHUNK_RECORDS: usize = 2048;
const CHUNK_BYTES: usize = 32 << 20;

/// Which table the records of a file go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetTable {
    /// Trajectory files into `trajectories` (catalog files still go to `tools`).
    Trajectories,
    /// Tool definitions into `tools`: catalogs, and the tools offered in trajectory files.
    Tools,
}

impl TargetTable {
    pub fn name(self) -> &'static str {
        match self {
            TargetTable::Trajectories => "trajectories",
            TargetTable::Tools => "tools",
        }
    }
}

crate::choice::impl_choice!(TargetTable, [TargetTable::Trajectories, TargetTable::Tools]);

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub table: TargetTable,
    /// Force a format instead of detecting it per file.
    pub format: Option<Format>,
    /// Dataset name for every file (default: the file name).
    pub source: Option<String>,
    /// Domain label for every record (default: guessed from the file name for known datasets).
    pub domain: Option<String>,
    pub round: i32,
    /// Rows per Parquet part file.
    pub rows_per_file: usize,
    pub progress: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            table: TargetTable::Trajectories,
            format: None,
            source: None,
            domain: None,
            round: 0,
            rows_per_file: writer::FILE_ROWS,
            progress: false,
        }
    }
}

/// Counts for one input file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub format: Option<String>,
    pub read: u64,
    pub ingested: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub bytes: u64,
}

/// One rejected record, as written to the rejects file.
#[derive(Debug, Clone, Serialize)]
pub struct Reject {
    pub file: String,
    pub line: usize,
    pub reason: String,
    pub record: String,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    pub read: u64,
    pub ingested: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub tools_ingested: u64,
    pub files: Vec<FileSummary>,
    /// Where the rejected records were copied, if any were.
    pub rejects_file: Option<String>,
    /// The first rejects, for the terminal.
    #[serde(skip)]
    pub sample_rejects: Vec<Reject>,
}

enum Out {
    Batch(&'static Table, RecordBatch),
    /// A `trajectories` batch and its `trajectory_metrics` rows.
    Trajectories(RecordBatch, RecordBatch),
    Reject(Reject),
    File(FileSummary),
}

/// A 128-bit key of an id, so the set of known ids stays small for large corpora.
fn id_key(id: &str) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (0u8, id).hash(&mut a);
    (1u8, id).hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// Reads the ids already stored in a table (only the id column is decoded).
async fn existing_ids(corpus: &Corpus, table: &Table, column: &str) -> Result<HashSet<u128>> {
    let mut ids = HashSet::new();
    let files = corpus.list_table(table).await?;
    read::for_each_string(corpus, &files, column, |id| {
        ids.insert(id_key(id));
    })
    .await?;
    Ok(ids)
}

/// Guesses a domain label from a file name for datasets whose files are split by domain.
fn guess_domain(stem: &str) -> Option<String> {
    let lower = stem.to_ascii_lowercase();
    ["airline", "retail", "telecom"]
        .iter()
        .find(|d| lower.contains(*d))
        .map(|d| d.to_string())
}

fn file_context(path: &Path, opts: &IngestOptions, format: Format) -> ParseContext {
    let stem = input::stem(path);
    let mut ctx = ParseContext {
        source: opts.source.clone().unwrap_or_else(|| stem.clone()),
        round: opts.round,
        domain: opts.domain.clone().or_else(|| guess_domain(&stem)),
        ..Default::default()
    };
    if format == Format::Bfcl {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let answers = dir.join("possible_answer").join(name);
        if let Ok(a) = formats::bfcl::load_answers(&answers) {
            ctx.bfcl_answers = Some(Arc::new(a));
        }
        if let Ok(d) = formats::bfcl::FunctionDocs::load(&dir.join("multi_turn_func_doc")) {
            ctx.bfcl_docs = Some(Arc::new(d));
        }
    }
    if format == Format::Tau2 {
        let dir = path.parent().unwrap_or(Path::new("."));
        // Every tau² domain names its file tasks.json: the folder names the dataset.
        if opts.source.is_none()
            && let Some(folder) = std::fs::canonicalize(dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        {
            ctx.source = folder;
        }
        if let Ok(p) = std::fs::read_to_string(dir.join("policy.md")) {
            ctx.tau2_policy = Some(Arc::new(p));
        }
        let tools = std::fs::read_to_string(dir.join("tools.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|v| formats::tool_schema::tool_defs(Some(&v), "tools.json").ok());
        if let Some((defs, _)) = tools {
            ctx.tau2_tools = Some(Arc::new(defs));
        }
    }
    ctx
}

/// Trajectory tools as catalog tools (for `--table tools`): the service is the trajectory.
fn tools_of(t: &Trajectory) -> Vec<CatalogTool> {
    t.tools
        .iter()
        .map(|d| CatalogTool {
            tool_id: CatalogTool::make_id(&t.traj_id, &d.name),
            name: d.name.clone(),
            description: d.description.clone(),
            parameters: d.parameters.clone(),
            output_schema: None,
            service: t.traj_id.clone(),
            source: t.source.clone(),
            format: t.format.clone(),
            metadata: Default::default(),
            provenance: Some("trajectory".into()),
            ..Default::default()
        })
        .collect()
}

struct Worker {
    opts: IngestOptions,
    seen_traj: HashSet<u128>,
    seen_tools: HashSet<u128>,
    tx: mpsc::Sender<Out>,
    bytes: Arc<AtomicU64>,
}

impl Worker {
    fn send(&self, out: Out) -> bool {
        self.tx.blocking_send(out).is_ok()
    }

    fn reject(
        &self,
        file: &str,
        line: usize,
        reason: String,
        record: String,
        summary: &mut FileSummary,
    ) -> bool {
        summary.rejected += 1;
        self.send(Out::Reject(Reject {
            file: file.to_string(),
            line,
            reason,
            record,
        }))
    }

    fn run_file(&mut self, path: &Path) -> bool {
        let display = path.display().to_string();
        let mut summary = FileSummary {
            path: display.clone(),
            ..Default::default()
        };
        let before = self.bytes.load(Ordering::Relaxed);
        let reader = match input::open(path, self.bytes.clone()) {
            Ok(r) => r,
            Err(e) => {
                let ok = self.reject(
                    &display,
                    0,
                    format!("cannot open: {e}"),
                    String::new(),
                    &mut summary,
                );
                return ok && self.send(Out::File(summary));
            }
        };
        // A reader thread splits the input into chunks while this thread parses the previous
        // chunk on both cores.
        let (chunks_tx, chunks_rx) =
            std::sync::mpsc::sync_channel::<Vec<Result<RawRecord, input::SplitError>>>(2);
        let reader_thread = std::thread::spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
            let mut bytes = 0usize;
            for item in Records::new(reader) {
                bytes += match &item {
                    Ok(r) => r.text.len(),
                    Err(e) => e.text.len(),
                };
                chunk.push(item);
                if chunk.len() >= CHUNK_RECORDS || bytes >= CHUNK_BYTES {
                    if chunks_tx.send(std::mem::take(&mut chunk)).is_err() {
                        return;
                    }
                    bytes = 0;
                }
            }
            let _ = chunks_tx.send(chunk);
        });
        // The format is detected from the first records that parse as JSON (at most 16 tried).
        let mut format = self.opts.format;
        let mut tried = 0;
        let mut ctx: Option<ParseContext> = None;
        let mut alive = true;
        for items in chunks_rx.iter() {
            let mut chunk: Vec<RawRecord> = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Ok(r) => chunk.push(r),
                    Err(e) => {
                        summary.read += 1;
                        alive &= self.reject(&display, e.line, e.reason, e.text, &mut summary);
                    }
                }
            }
            for r in &chunk {
                if format.is_some() || tried >= 16 {
                    break;
                }
                tried += 1;
                if let Ok(v) = serde_json::from_str::<Value>(&r.text) {
                    format = formats::detect(&v);
                }
            }
            if ctx.is_none() {
                ctx = format.map(|f| file_context(path, &self.opts, f));
            }
            alive &= self.process(&display, format, ctx.as_ref(), chunk, &mut summary);
            if !alive {
                break;
            }
        }
        drop(chunks_rx);
        let _ = reader_thread.join();
        if !alive {
            return false;
        }
        summary.format = format.map(|f| f.name().to_string());
        summary.bytes = self.bytes.load(Ordering::Relaxed) - before;
        alive && self.send(Out::File(summary))
    }

    fn process(
        &mut self,
        file: &str,
        format: Option<Format>,
        ctx: Option<&ParseContext>,
        chunk: Vec<RawRecord>,
        summary: &mut FileSummary,
    ) -> bool {
        if chunk.is_empty() {
            return true;
        }
        summary.read += chunk.len() as u64;
        let parsed: Vec<(RawRecord, std::result::Result<Parsed, String>)> = chunk
            .into_par_iter()
            .map(|r| {
                let res = match (format, ctx) {
                    (Some(f), Some(c)) => formats::parse_text(f, c, &r.text),
                    _ => Err(match serde_json::from_str::<Value>(&r.text) {
                        Ok(v) => format!("unknown format: {}; pass --format", keys_of(&v)),
                        Err(e) => format!("unknown format: the file's records are not JSON ({e})"),
                    }),
                };
                (r, res)
            })
            .collect();
        let mut trajectories: Vec<Trajectory> = vec![];
        let mut tools: Vec<CatalogTool> = vec![];
        let want_tools = self.opts.table == TargetTable::Tools;
        for (raw, res) in parsed {
            match res {
                Err(reason) => {
                    if !self.reject(file, raw.line, reason, raw.text, summary) {
                        return false;
                    }
                }
                Ok(Parsed::Trajectory(t)) if want_tools => {
                    let new: Vec<CatalogTool> = tools_of(&t)
                        .into_iter()
                        .filter(|c| self.seen_tools.insert(id_key(&c.tool_id)))
                        .collect();
                    summary.ingested += new.len() as u64;
                    tools.extend(new);
                }
                Ok(Parsed::Trajectory(t)) => {
                    if self.seen_traj.insert(id_key(&t.traj_id)) {
                        summary.ingested += 1;
                        trajectories.push(*t);
                    } else {
                        summary.duplicates += 1;
                    }
                }
                Ok(Parsed::Tools(ts)) => {
                    for c in ts {
                        let c = match c {
                            Ok(c) => c,
                            Err((reason, text)) => {
                                if !self.reject(file, raw.line, reason, text, summary) {
                                    return false;
                                }
                                continue;
                            }
                        };
                        if self.seen_tools.insert(id_key(&c.tool_id)) {
                            summary.ingested += 1;
                            tools.push(c);
                        } else {
                            summary.duplicates += 1;
                        }
                    }
                }
            }
        }
        // Build the batches and their metrics on both cores.
        let half = trajectories.len().div_ceil(2).max(1);
        let batches: Vec<Result<_>> = trajectories
            .par_chunks(half)
            .map(|c| {
                let b = convert::trajectories_to_batch(c)?;
                let m = trajectory_metrics::compute(&b)?;
                Ok((b, m))
            })
            .collect();
        for b in batches {
            match b {
                Ok((b, m)) => {
                    if !self.send(Out::Trajectories(b, m)) {
                        return false;
                    }
                }
                Err(e) => tracing::error!("building a batch failed: {e}"),
            }
        }
        if !tools.is_empty() {
            match convert::catalog_tools_to_batch(&tools) {
                Ok(b) => return self.send(Out::Batch(&tables::TOOLS, b)),
                Err(e) => tracing::error!("building a batch failed: {e}"),
            }
        }
        true
    }
}

fn keys_of(v: &Value) -> String {
    match v {
        Value::Object(m) => format!("record keys {:?}", m.keys().take(8).collect::<Vec<_>>()),
        Value::Array(_) => "a JSON array".into(),
        other => format!("a JSON {}", formats::fields::kind(other)),
    }
}

fn progress_bar(total: u64, enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} ingest [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Ingests `inputs` into the corpus and returns what happened.
///
/// ```no_run
/// # async fn f() -> tdscale::error::Result<()> {
/// let corpus = tdscale::store::Corpus::open("./corpus")?;
/// let s = tdscale::ingest::ingest(&corpus, &["data.jsonl".into()], &Default::default()).await?;
/// println!("{} new trajectories, {} rejected", s.ingested, s.rejected);
/// # Ok(()) }
/// ```
pub async fn ingest(
    corpus: &Corpus,
    inputs: &[PathBuf],
    opts: &IngestOptions,
) -> Result<IngestSummary> {
    let started = Instant::now();
    for p in inputs {
        if !p.exists() {
            return Err(Error::Usage(format!(
                "input `{}` does not exist",
                p.display()
            )));
        }
    }
    for t in [
        &tables::TRAJECTORIES,
        &tables::TRAJECTORY_METRICS,
        &tables::TOOLS,
    ] {
        let n = corpus.remove_stale_staging(t);
        if n > 0 {
            tracing::info!("removed {n} staging file(s) left in {t}/ by an interrupted write");
        }
    }
    let seen_traj = existing_ids(corpus, &tables::TRAJECTORIES, "traj_id").await?;
    let seen_tools = existing_ids(corpus, &tables::TOOLS, "tool_id").await?;
    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bytes = Arc::new(AtomicU64::new(0));
    let pb = progress_bar(total, opts.progress);
    let (tx, mut rx) = mpsc::channel::<Out>(4);
    let mut worker = Worker {
        opts: opts.clone(),
        seen_traj,
        seen_tools,
        tx,
        bytes: bytes.clone(),
    };
    let files = inputs.to_vec();
    let handle = tokio::task::spawn_blocking(move || {
        for f in &files {
            if !worker.run_file(f) {
                break;
            }
        }
    });

    let run = writer::run_id();
    let mut writers: HashMap<&'static str, writer::PartWriter> = HashMap::new();
    let mut trajectories: Option<trajectory_metrics::TrajectoryWriter> = None;
    let rejects_rel = format!("{}/ingest-{run}.jsonl", tables::REJECTS.name);
    let mut rejects = writer::TextWriter::new(corpus, &rejects_rel);
    let mut summary = IngestSummary::default();
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(200));
    let result: Result<()> = async {
        loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = ticker.tick() => { pb.set_position(bytes.load(Ordering::Relaxed)); continue; }
            };
            let Some(msg) = msg else { break };
            match msg {
                Out::Batch(table, batch) => {
                    let w = writers.entry(table.name).or_insert_with(|| {
                        writer::PartWriter::for_table(corpus, table, opts.round)
                            .with_rows_per_file(opts.rows_per_file)
                    });
                    w.write(&batch).await?;
                }
                Out::Trajectories(batch, metrics) => {
                    let w = trajectories.get_or_insert_with(|| {
                        trajectory_metrics::TrajectoryWriter::new(corpus, opts.round)
                            .with_rows_per_file(opts.rows_per_file)
                    });
                    w.write_with_metrics(&batch, &metrics).await?;
                }
                Out::Reject(r) => {
                    let line = serde_json::to_string(&r).unwrap_or_default();
                    rejects.line(&line).await.map_err(|e| Error::Storage {
                        url: corpus.display().into(),
                        message: e.to_string(),
                    })?;
                    if summary.sample_rejects.len() < 20 {
                        summary.sample_rejects.push(r);
                    }
                }
                Out::File(f) => {
                    summary.read += f.read;
                    summary.duplicates += f.duplicates;
                    summary.rejected += f.rejected;
                    summary.bytes += f.bytes;
                    summary.files.push(f);
                }
            }
        }
        Ok(())
    }
    .await;
    // On error the channel closes and the worker stops at its next send.
    drop(rx);
    handle
        .await
        .map_err(|e| Error::Other(format!("ingest worker failed: {e}")))?;
    result?;
    if let Some(w) = trajectories {
        summary.ingested += w.finish().await?.rows() as u64;
    }
    // The other writers are the tools table's (trajectories go through `trajectories`).
    for w in writers.into_values() {
        for (_, rows) in w.finish().await? {
            summary.tools_ingested += rows as u64;
        }
    }
    if opts.table == TargetTable::Tools {
        summary.ingested = summary.tools_ingested;
    }
    let n = rejects.finish().await.map_err(|e| Error::Storage {
        url: corpus.display().into(),
        message: e.to_string(),
    })?;
    if n > 0 {
        summary.rejects_file = Some(format!(
            "{}ingest-{run}.jsonl",
            corpus.table_url(&tables::REJECTS)
        ));
    }
    pb.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

impl IngestSummary {
    /// The rejected records worth showing, one line each (the terminal's standard error).
    pub fn reject_lines(&self) -> String {
        let mut out = String::new();
        for r in &self.sample_rejects {
            out.push_str(&format!("rejected {}:{}: {}\n", r.file, r.line, r.reason));
        }
        if self.rejected as usize > self.sample_rejects.len() {
            out.push_str(&format!(
                "… and {} more rejected records\n",
                self.rejected as usize - self.sample_rejects.len()
            ));
        }
        out
    }

    /// The summary as text: a line per file, then the totals.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            out.push_str(&format!(
                "{}: format {}, {} read, {} ingested, {} duplicates, {} rejected\n",
                f.path,
                f.format.as_deref().unwrap_or("unknown"),
                f.read,
                f.ingested,
                f.duplicates,
                f.rejected
            ));
        }
        out.push_str(&format!(
            "read {} records ({:.1} MB) in {:.2} s: {} ingested, {} duplicates, {} rejected{}\n",
            self.read,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.ingested,
            self.duplicates,
            self.rejected,
            if self.tools_ingested > 0 && self.ingested != self.tools_ingested {
                format!(", {} catalog tools", self.tools_ingested)
            } else {
                String::new()
            }
        ));
        if self.ingested == 0 && self.duplicates > 0 && self.rejected == 0 {
            out.push_str("nothing new: every record is already in the corpus\n");
        }
        if let Some(f) = &self.rejects_file {
            out.push_str(&format!("rejected records were copied to {f}\n"));
        }
        out
    }
}
