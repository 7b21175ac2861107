//! Streaming ingest of trajectory files and tool catalogs into the corpus.
//!
//! A reader thread splits each input into chunks of records; each chunk is parsed and its
//! trajectories built into Arrow batches (with their metrics) by a job on the pool (rayon), a
//! few chunks ahead; one blocking worker takes the jobs' results in input order, drops records
//! seen earlier in the run and passes the batches on; the async side writes them as Parquet
//! part files that become visible only when complete. Memory is bounded by the chunk size, the
//! chunks ahead and the row-group buffer, not by the input.
//! Bad records never stop the run: each is reported with file, line and reason and copied to
//! `rejects/ingest-<run>.jsonl` in the corpus.
//!
//! Inputs are files, folders, glob patterns and `s3://` objects or prefixes ([`sources`]); JSON
//! inputs are split into records by [`input`], Parquet inputs row by row by [`parquet`]. A
//! session log (one file, one run: Claude Code, Codex, an OpenHands event list) is gathered
//! into one record before it is parsed. [`explain`] says what a file is and where its fields go,
//! without writing anything.

pub mod explain;
pub mod input;
pub mod local_file;
pub mod parquet;
pub mod sources;

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{BooleanArray, RecordBatch, RecordBatchReader};
use datafusion::arrow::compute::filter_record_batch;
// Its hasher, not SipHash: the ids are hashes already, and SipHash was a percent of ingest.
use datafusion::common::HashSet;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::formats::{self, Format, ParseContext, Parsed};
use crate::model::{CatalogTool, Trajectory};
use crate::store::read::id_key;
use crate::store::tables::{self, Table};
use crate::store::{Corpus, convert, read, trajectory_metrics, writer};
use input::{RawRecord, Records, SplitError};
pub use local_file::FileReads;
use sources::Input;

/// A file's location in the corpus's store (ingest's `Path`s are input files).
type StorePath = object_store::path::Path;

/// Records per parse chunk: large enough to keep both cores busy, small enough to bound memory.
const CHUNK_RECORDS: usize = 2048;
const CHUNK_BYTES: usize = 32 << 20;
/// Chunks on the pool while the worker stores the oldest: enough that a core finishing its
/// share of one chunk always finds the next one to work on, instead of waiting at the end of
/// each chunk for the other core.
const CHUNKS_AHEAD: usize = 2;
/// Batches waiting for the writer (two per chunk): room for the worker to go on while the
/// writer encodes a row group's end, so that the pool is not left without chunks to parse.
const WRITER_QUEUE: usize = 8;

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
    /// With folders and `s3://` prefixes: read the files whose relative path matches this
    /// pattern (default: every `.json`, `.jsonl`, `.ndjson`, `.traj` and `.parquet` file, also
    /// `.gz` / `.zst` compressed).
    pub glob: Option<String>,
    /// The largest record read, in bytes ([`input::MAX_RECORD_BYTES`] by default); a larger
    /// one is rejected without being held in memory.
    pub max_record_bytes: usize,
    /// How local files are read: around the page cache when larger than the memory left to
    /// cache them, by default.
    pub file_reads: FileReads,
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
            glob: None,
            max_record_bytes: input::MAX_RECORD_BYTES,
            file_reads: FileReads::Auto,
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

/// The id column of each table ingest writes.
fn id_column(table: &Table) -> &'static str {
    if table.name == tables::TOOLS.name {
        "tool_id"
    } else {
        "traj_id"
    }
}

/// Reads the ids already stored in a table (only the id column is decoded), and the files they
/// were read from.
async fn existing_ids(corpus: &Corpus, table: &Table) -> Result<(HashSet<u128>, Vec<StorePath>)> {
    let mut ids = HashSet::new();
    let files = corpus.list_table(table).await?;
    read::for_each_string(corpus, &files, id_column(table), |id| {
        ids.insert(id_key(id));
    })
    .await?;
    Ok((ids, files.into_iter().map(|m| m.location).collect()))
}

/// Guesses a domain label from a file name for datasets whose files are split by domain.
fn guess_domain(stem: &str) -> Option<String> {
    let lower = stem.to_ascii_lowercase();
    ["airline", "retail", "telecom"]
        .iter()
        .find(|d| lower.contains(*d))
        .map(|d| d.to_string())
}

fn file_context(input: &Input, opts: &IngestOptions, format: Format) -> ParseContext {
    let stem = input::stem_of_name(input.name());
    let default_source = if format.names_its_runs() {
        format.name().to_string()
    } else {
        stem.clone()
    };
    let mut ctx = ParseContext {
        source: opts.source.clone().unwrap_or(default_source),
        file_stem: stem.clone(),
        round: opts.round,
        domain: opts.domain.clone().or_else(|| guess_domain(&stem)),
        ..Default::default()
    };
    // Sibling files are read for local inputs only.
    let Some(path) = input.local_path() else {
        return ctx;
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
            ctx.tau2_tools = Some(defs);
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

/// The records of an input, split by a reader thread.
type Items = Vec<std::result::Result<RawRecord, SplitError>>;

/// How an input's bytes are split into records.
enum Splitter {
    Json(Records),
    Parquet(parquet::ParquetRecords),
}

impl Iterator for Splitter {
    type Item = std::result::Result<RawRecord, SplitError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Splitter::Json(r) => r.next(),
            Splitter::Parquet(r) => r.next(),
        }
    }
}

/// Opens an input for splitting; the error is the reason of the file's one reject.
fn open_input(
    input: &Input,
    count: Arc<AtomicU64>,
    opts: &IngestOptions,
) -> std::result::Result<Splitter, String> {
    let max_record = opts.max_record_bytes;
    if input.is_parquet() {
        return parquet::open(input, count, max_record).map(Splitter::Parquet);
    }
    let raw = sources::open_raw(input, opts.file_reads, count)
        .map_err(|e| format!("cannot open: {e}"))?;
    let reader = input::decompress(input.name(), raw).map_err(|e| format!("cannot open: {e}"))?;
    Ok(Splitter::Json(Records::with_limit(reader, max_record)))
}

/// True when a file's records must be gathered into one: a session log, or a bare list of
/// OpenHands events split by the array layout.
fn gathers(format: Format, first: Option<&Value>) -> bool {
    format.is_session()
        || (format == Format::Openhands && first.is_some_and(formats::openhands::is_event))
}

/// The records of one session file, gathered up to the record limit.
#[derive(Default)]
struct Gathered {
    first_line: usize,
    lines: Vec<(usize, String)>,
    bytes: usize,
    /// Why the session cannot be read whole (a line that could not be split, the size).
    broken: Option<String>,
}

struct Worker {
    opts: IngestOptions,
    /// The ids of the trajectories the corpus held when the run began: the pool's jobs leave
    /// them out.
    stored_traj: Arc<HashSet<u128>>,
    /// The ids of the trajectories stored by this run: a later record with one is a duplicate.
    seen_traj: HashSet<u128>,
    seen_tools: HashSet<u128>,
    tx: mpsc::Sender<Out>,
    bytes: Arc<AtomicU64>,
    times: StageTimes,
}

/// Wall time of the worker's stages, logged at the end of an ingest (`RUST_LOG=tdscale=info`)
/// beside the writer's: which stage a slow ingest waits on.
#[derive(Default)]
struct StageTimes {
    /// Waiting for the splitter's next chunk of records.
    input: Duration,
    /// Waiting for the pool to parse the next chunk in order and build its batches.
    parsing: Duration,
    /// Building Arrow batches and their metrics, summed over the pool's jobs (each beside the
    /// parsing of other chunks).
    batches: Duration,
    /// Waiting for the writer to take a batch (it encodes Parquet on its own thread).
    writer: Cell<Duration>,
}

impl Worker {
    fn send(&self, out: Out) -> bool {
        let started = Instant::now();
        let sent = self.tx.blocking_send(out).is_ok();
        let t = &self.times.writer;
        t.set(t.get() + started.elapsed());
        sent
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

    fn run_file(&mut self, input: &Input) -> bool {
        let mut summary = FileSummary {
            path: input.display.clone(),
            ..Default::default()
        };
        let before = self.bytes.load(Ordering::Relaxed);
        match open_input(input, self.bytes.clone(), &self.opts) {
            Ok(splitter) => self.run_records(input, splitter, summary, before),
            Err(reason) => {
                summary.read += 1;
                let ok = self.reject(&input.display, 0, reason, String::new(), &mut summary);
                ok && self.send(Out::File(summary))
            }
        }
    }

    /// Ingests the rows of Arrow batches as records named `name` (rows are numbered as lines).
    fn run_rows(&mut self, name: &str, batches: Box<dyn RecordBatchReader + Send>) -> bool {
        let input = Input::rows(name);
        let summary = FileSummary {
            path: input.display.clone(),
            ..Default::default()
        };
        let before = self.bytes.load(Ordering::Relaxed);
        let rows = parquet::ParquetRecords::from_batches(
            batches,
            Some(self.bytes.clone()),
            self.opts.max_record_bytes,
        );
        self.run_records(&input, Splitter::Parquet(rows), summary, before)
    }

    /// Parses and stores the records of one input.
    fn run_records(
        &mut self,
        input: &Input,
        splitter: Splitter,
        mut summary: FileSummary,
        before: u64,
    ) -> bool {
        let display = summary.path.clone();
        // A reader thread splits the input into chunks while this thread parses the previous
        // chunk on both cores.
        let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel::<Items>(2);
        let reader_thread = std::thread::spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
            let mut bytes = 0usize;
            for item in splitter {
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
        let mut first_value: Option<Value> = None;
        let mut ctx: Option<Arc<ParseContext>> = None;
        let mut gathered: Option<Gathered> = None;
        // The chunks on the pool, oldest first: each is stored, in input order, once it is ready.
        let mut jobs: VecDeque<ChunkJob> = VecDeque::new();
        let stored =
            (self.opts.table == TargetTable::Trajectories).then(|| self.stored_traj.clone());
        let mut alive = true;
        loop {
            let waited = Instant::now();
            let Ok(items) = chunks_rx.recv() else { break };
            self.times.input += waited.elapsed();
            if ctx.is_none() {
                let forced = format.is_some();
                for r in items.iter().flatten().take(16) {
                    let Ok(v) = serde_json::from_str::<Value>(&r.text) else {
                        continue;
                    };
                    if !forced {
                        format = formats::detect_next(format, &v);
                    }
                    if first_value.is_none() {
                        first_value = Some(v);
                    }
                    if forced || formats::settled(format) {
                        break;
                    }
                }
                ctx = format.map(|f| Arc::new(file_context(input, &self.opts, f)));
                if let Some(f) = format
                    && gathers(f, first_value.as_ref())
                {
                    gathered = Some(Gathered::default());
                }
            }
            if let Some(g) = &mut gathered {
                summary.read = 1;
                for item in items {
                    match item {
                        Ok(r) => {
                            if g.lines.is_empty() {
                                g.first_line = r.line;
                            }
                            g.bytes += r.text.len();
                            if g.bytes > self.opts.max_record_bytes {
                                g.broken.get_or_insert(format!(
                                    "the session is over the limit of {} bytes (--max-record-mb)",
                                    self.opts.max_record_bytes
                                ));
                                g.lines.clear();
                            } else if g.broken.is_none() {
                                g.lines.push((r.line, r.text));
                            }
                        }
                        Err(e) => {
                            g.broken.get_or_insert(format!(
                                "line {}: {}; the session it belongs to is rejected",
                                e.line, e.reason
                            ));
                        }
                    }
                }
                continue;
            }
            jobs.push_back(ChunkJob::spawn(format, ctx.clone(), items, stored.clone()));
            if jobs.len() > CHUNKS_AHEAD {
                alive &= self.store_next(&display, &mut jobs, &mut summary);
                if !alive {
                    break;
                }
            }
        }
        drop(chunks_rx);
        let _ = reader_thread.join();
        while alive && !jobs.is_empty() {
            alive &= self.store_next(&display, &mut jobs, &mut summary);
        }
        if !alive {
            return false;
        }
        if let (Some(g), Some(f), Some(c)) = (gathered, format, ctx.as_ref()) {
            alive &= self.session(&display, f, c, g, &mut summary);
        }
        summary.format = format.map(|f| f.name().to_string());
        summary.bytes = self.bytes.load(Ordering::Relaxed) - before;
        alive && self.send(Out::File(summary))
    }

    /// Parses a gathered session file as one record.
    fn session(
        &mut self,
        file: &str,
        format: Format,
        ctx: &ParseContext,
        g: Gathered,
        summary: &mut FileSummary,
    ) -> bool {
        // Array elements go back into the array they came from; session lines stay lines.
        let whole = |sep: &str| {
            g.lines
                .iter()
                .map(|(_, t)| t.trim_end_matches(['\n', '\r']))
                .collect::<Vec<_>>()
                .join(sep)
        };
        let array = (!format.is_session()).then(|| format!("[{}]", whole(",\n")));
        let res = match (&g.broken, &array) {
            (Some(reason), _) => Err(reason.clone()),
            (None, None) => {
                let refs: Vec<(usize, &str)> =
                    g.lines.iter().map(|(n, t)| (*n, t.as_str())).collect();
                formats::parse_session(format, ctx, &refs)
            }
            (None, Some(a)) => serde_json::from_str::<Value>(a)
                .map_err(|e| format!("malformed JSON: {e}"))
                .and_then(|v| formats::parse(format, ctx, v)),
        };
        // The text is only needed for the rejects file.
        let text = match (&res, array) {
            (Ok(_), _) => String::new(),
            (Err(_), Some(a)) => a,
            (Err(_), None) => whole("\n"),
        };
        let raw = RawRecord {
            line: g.first_line.max(1),
            text,
        };
        self.handle(file, vec![(raw, res)], None, summary)
    }

    /// Waits for the oldest job and stores its chunk: [`Self::handle`] with its records counted
    /// as read.
    fn store_next(
        &mut self,
        file: &str,
        jobs: &mut VecDeque<ChunkJob>,
        summary: &mut FileSummary,
    ) -> bool {
        let Some(job) = jobs.pop_front() else {
            return true;
        };
        let waited = Instant::now();
        let done = job.wait();
        self.times.parsing += waited.elapsed();
        let Some(chunk) = done else {
            tracing::error!("a parse job of {file} ended without its chunk");
            return false;
        };
        summary.read += chunk.parsed.len() as u64;
        self.handle(file, chunk.parsed, chunk.built, summary)
    }

    /// Sends the batches a job built, without the rows whose id an earlier record of the run
    /// had (the job left out those the corpus held).
    fn send_built(&mut self, built: Built, summary: &mut FileSummary) -> bool {
        summary.duplicates += built.stored_before;
        for b in built.batches {
            let (batch, metrics, ids) = match b {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("building a batch failed: {e}");
                    continue;
                }
            };
            let keep: BooleanArray = ids
                .iter()
                .map(|k| Some(self.seen_traj.insert(*k)))
                .collect();
            let kept = keep.true_count();
            summary.ingested += kept as u64;
            summary.duplicates += (ids.len() - kept) as u64;
            let (batch, metrics) = if kept == ids.len() {
                (batch, metrics)
            } else {
                match (
                    filter_record_batch(&batch, &keep),
                    filter_record_batch(&metrics, &keep),
                ) {
                    (Ok(b), Ok(m)) => (b, m),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!("dropping repeated trajectories failed: {e}");
                        continue;
                    }
                }
            };
            if kept > 0 && !self.send(Out::Trajectories(batch, metrics)) {
                return false;
            }
        }
        true
    }

    /// Keeps the new rows of parsed records, rejects the rest, and sends the batches: those
    /// `built` on the pool with the records' trajectories, or built here when no job did.
    fn handle(
        &mut self,
        file: &str,
        mut parsed: ParsedChunk,
        built: Option<Built>,
        summary: &mut FileSummary,
    ) -> bool {
        let want_tools = self.opts.table == TargetTable::Tools;
        // A chunk that no job built (a gathered session) is built here, the same way.
        let built = match built {
            None if !want_tools => Some(build_trajectories(&mut parsed, &self.stored_traj)),
            built => built,
        };
        if let Some(b) = &built {
            self.times.batches += b.took;
        }
        let mut tools: Vec<CatalogTool> = vec![];
        for (raw, res) in parsed {
            let ts = match res {
                Err(reason) => {
                    if !self.reject(file, raw.line, reason, raw.text, summary) {
                        return false;
                    }
                    continue;
                }
                Ok(Parsed::Trajectory(t)) => vec![*t],
                Ok(Parsed::Trajectories(ts)) => ts,
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
                    continue;
                }
            };
            // Trajectories are left in the chunk only when their tools are what is ingested.
            for t in ts {
                let new: Vec<CatalogTool> = tools_of(&t)
                    .into_iter()
                    .filter(|c| self.seen_tools.insert(id_key(&c.tool_id)))
                    .collect();
                summary.ingested += new.len() as u64;
                tools.extend(new);
            }
        }
        if let Some(b) = built
            && !self.send_built(b, summary)
        {
            return false;
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

/// A chunk of records, parsed, in their order: a record the splitter could not read is there
/// with its reason, so that every reject keeps its place among the others.
type ParsedChunk = Vec<(RawRecord, std::result::Result<Parsed, String>)>;

/// The batches of a chunk's trajectories, built on the pool.
struct Built {
    /// Each batch with its `trajectory_metrics` rows and the id key of each row, in input order.
    batches: Vec<Result<(RecordBatch, RecordBatch, Vec<u128>)>>,
    /// Trajectories left out because the corpus held their ids before the run.
    stored_before: u64,
    /// Time spent building the batches and their metrics.
    took: Duration,
}

/// A chunk parsed and, when its trajectories go to `trajectories`, built into batches.
struct ReadyChunk {
    /// The records in order; the trajectories that went into `built` are taken out.
    parsed: ParsedChunk,
    built: Option<Built>,
}

/// A chunk being made ready by a job on the pool.
struct ChunkJob(std::sync::mpsc::Receiver<std::thread::Result<ReadyChunk>>);

impl ChunkJob {
    /// Parses `items` on the pool and, given the ids the corpus held (`stored`), builds the
    /// batches of the new trajectories there too.
    fn spawn(
        format: Option<Format>,
        ctx: Option<Arc<ParseContext>>,
        items: Items,
        stored: Option<Arc<HashSet<u128>>>,
    ) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rayon::spawn(move || {
            // A panic in the job reaches the worker, as it would if the worker had parsed.
            let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut parsed = parse_chunk(format, ctx.as_deref(), items);
                let built = stored.map(|s| build_trajectories(&mut parsed, &s));
                ReadyChunk { parsed, built }
            }));
            let _ = tx.send(ready);
        });
        ChunkJob(rx)
    }

    /// The chunk, once ready; `None` if the job ended without it.
    fn wait(self) -> Option<ReadyChunk> {
        match self.0.recv().ok()? {
            Ok(ready) => Some(ready),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Takes the trajectories out of a parsed chunk and builds the batches of those whose ids are
/// not in `stored`, with their metrics and the id key of each row, in two halves on both cores.
fn build_trajectories(parsed: &mut ParsedChunk, stored: &HashSet<u128>) -> Built {
    let mut trajectories: Vec<Trajectory> = Vec::with_capacity(parsed.len());
    let mut keys: Vec<u128> = Vec::with_capacity(parsed.len());
    let mut stored_before = 0;
    let mut keep = |t: Trajectory| {
        let key = id_key(&t.traj_id);
        if stored.contains(&key) {
            stored_before += 1;
        } else {
            trajectories.push(t);
            keys.push(key);
        }
    };
    for (_, res) in parsed.iter_mut() {
        match res {
            Ok(Parsed::Trajectory(t)) => keep(std::mem::take(&mut **t)),
            Ok(Parsed::Trajectories(ts)) => std::mem::take(ts).into_iter().for_each(&mut keep),
            _ => continue,
        }
        // The record stays in the chunk, yielding nothing more.
        *res = Ok(Parsed::Trajectories(vec![]));
    }
    let started = Instant::now();
    let half = trajectories.len().div_ceil(2).max(1);
    let batches = trajectories
        .par_chunks(half)
        .zip(keys.par_chunks(half))
        .map(|(c, keys)| {
            let b = convert::trajectories_to_batch(c)?;
            let m = trajectory_metrics::compute(&b)?;
            Ok((b, m, keys.to_vec()))
        })
        .collect();
    let took = started.elapsed();
    drop(trajectories);
    Built {
        batches,
        stored_before,
        took,
    }
}

/// Parses a chunk's records on every core.
fn parse_chunk(format: Option<Format>, ctx: Option<&ParseContext>, items: Items) -> ParsedChunk {
    items
        .into_par_iter()
        .map(|item| {
            let r = match item {
                Ok(r) => r,
                Err(e) => {
                    let raw = RawRecord {
                        line: e.line,
                        text: e.text,
                    };
                    return (raw, Err(e.reason));
                }
            };
            let res = match (format, ctx) {
                (Some(f), Some(c)) => formats::parse_text(f, c, &r.text),
                _ => Err(match serde_json::from_str::<Value>(&r.text) {
                    Ok(v) => format!("unknown format: {}; pass --format", keys_of(&v)),
                    Err(e) => format!("unknown format: the file's records are not JSON ({e})"),
                }),
            };
            (r, res)
        })
        .collect()
}

fn keys_of(v: &Value) -> String {
    match v {
        Value::Object(m) => format!("record keys {:?}", m.keys().take(8).collect::<Vec<_>>()),
        Value::Array(_) => "a JSON array".into(),
        other => format!("a JSON {}", formats::fields::kind(other)),
    }
}

fn progress_bar(total: Option<u64>, enabled: bool) -> indicatif::ProgressBar {
    let pb = crate::progress::bar(enabled, total, "ingest", crate::progress::Units::Bytes);
    let template = match total {
        Some(_) => "{spinner} ingest [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        None => "{spinner} ingest {bytes} {bytes_per_sec}",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// One input of an ingest.
enum Source {
    File(Input),
    Rows {
        name: String,
        batches: Box<dyn RecordBatchReader + Send>,
    },
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
    let names: Vec<String> = inputs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let inputs = sources::expand(&names, opts.glob.as_deref()).await?;
    let total: u64 = inputs.iter().map(|i| i.size).sum();
    let sources = inputs.into_iter().map(Source::File).collect();
    run(corpus, sources, Some(total), opts, started).await
}

/// Ingests the rows of Arrow record batches (a data frame, a Hugging Face dataset) as if they
/// were the rows of a Parquet file called `name`: nested lists and structs become JSON arrays and
/// objects, a `messages` / `conversations` column of JSON text is read as JSON, and the records
/// go through the same format detection and parsers as files. `name` stands for the file in the
/// summary and the rejects (rows are numbered as lines) and, like a file name, is the default
/// `source`. The summary's `bytes` are those of the rows' JSON text.
///
/// ```no_run
/// # async fn f(batches: Box<dyn datafusion::arrow::array::RecordBatchReader + Send>) -> tdscale::error::Result<()> {
/// let corpus = tdscale::store::Corpus::open("./corpus")?;
/// let s = tdscale::ingest::ingest_batches(&corpus, "hf-train", batches, &Default::default()).await?;
/// println!("{} new trajectories, {} rejected", s.ingested, s.rejected);
/// # Ok(()) }
/// ```
pub async fn ingest_batches(
    corpus: &Corpus,
    name: &str,
    batches: Box<dyn RecordBatchReader + Send>,
    opts: &IngestOptions,
) -> Result<IngestSummary> {
    let sources = vec![Source::Rows {
        name: name.to_string(),
        batches,
    }];
    run(corpus, sources, None, opts, Instant::now()).await
}

/// The streaming pipeline behind [`ingest`] and [`ingest_batches`], holding the corpus's writer
/// lock; `total` is the input's size in bytes for the progress bar, when known.
async fn run(
    corpus: &Corpus,
    sources: Vec<Source>,
    total: Option<u64>,
    opts: &IngestOptions,
    started: Instant,
) -> Result<IngestSummary> {
    // One writer at a time: taking the lock also removes the staging files of writers that
    // are gone (and only theirs).
    let lock = corpus.lock_writer("ingest").await?;
    let result = run_locked(corpus, sources, total, opts, started).await;
    lock.release().await;
    result
}

async fn run_locked(
    corpus: &Corpus,
    sources: Vec<Source>,
    total: Option<u64>,
    opts: &IngestOptions,
    started: Instant,
) -> Result<IngestSummary> {
    let (stored_traj, traj_files) = existing_ids(corpus, &tables::TRAJECTORIES).await?;
    let (seen_tools, tool_files) = existing_ids(corpus, &tables::TOOLS).await?;
    let mut known_files: HashMap<&'static str, Vec<StorePath>> = HashMap::from([
        (tables::TRAJECTORIES.name, traj_files),
        (tables::TOOLS.name, tool_files),
    ]);
    let bytes = Arc::new(AtomicU64::new(0));
    let pb = progress_bar(total, opts.progress);
    let (tx, mut rx) = mpsc::channel::<Out>(WRITER_QUEUE);
    let mut worker = Worker {
        opts: opts.clone(),
        stored_traj: Arc::new(stored_traj),
        seen_traj: HashSet::default(),
        seen_tools,
        tx,
        bytes: bytes.clone(),
        times: StageTimes::default(),
    };
    let handle = tokio::task::spawn_blocking(move || {
        for source in sources {
            let alive = match source {
                Source::File(input) => worker.run_file(&input),
                Source::Rows { name, batches } => worker.run_rows(&name, batches),
            };
            if !alive {
                break;
            }
        }
        worker.times
    });

    let run = writer::run_id();
    let mut writers: HashMap<&'static str, writer::PartWriter> = HashMap::new();
    let mut trajectories: Option<trajectory_metrics::TrajectoryWriter> = None;
    let rejects_rel = format!("{}/ingest-{run}.jsonl", tables::REJECTS.name);
    let mut rejects = writer::TextWriter::new(corpus, &rejects_rel);
    let mut summary = IngestSummary::default();
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    // Time spent encoding and writing Parquet.
    let mut writing = Duration::ZERO;
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
                        // Each part is committed only after dropping the ids that another
                        // writer committed since this ingest read the table's ids.
                        writer::PartWriter::for_table(corpus, table, opts.round)
                            .with_rows_per_file(opts.rows_per_file)
                            .unique_by(
                                table,
                                id_column(table),
                                known_files.remove(table.name).unwrap_or_default(),
                            )
                    });
                    let started = Instant::now();
                    w.write(&batch).await?;
                    writing += started.elapsed();
                }
                Out::Trajectories(batch, metrics) => {
                    let w = trajectories.get_or_insert_with(|| {
                        // Each part is committed only after dropping the ids that another
                        // writer committed since this ingest read them.
                        trajectory_metrics::TrajectoryWriter::new(corpus, opts.round)
                            .with_rows_per_file(opts.rows_per_file)
                            .unique_by(
                                known_files
                                    .remove(tables::TRAJECTORIES.name)
                                    .unwrap_or_default(),
                            )
                    });
                    let started = Instant::now();
                    w.write_with_metrics(&batch, &metrics).await?;
                    writing += started.elapsed();
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
    let times = handle
        .await
        .map_err(|e| Error::Other(format!("ingest worker failed: {e}")))?;
    if let Err(e) = result {
        // Leave no staging object of the rejects file behind.
        rejects.abort().await;
        return Err(e);
    }
    let finishing = Instant::now();
    if let Some(w) = trajectories {
        let committed = w.finish().await?.trajectories;
        let rows = committed.rows() as u64;
        if opts.table == TargetTable::Trajectories {
            summary.ingested += rows;
            summary.duplicates += committed.duplicates as u64;
        } else {
            summary.tools_ingested += rows;
        }
    }
    // The other writers are the tools table's (trajectories go through `trajectories`).
    for w in writers.into_values() {
        let committed = w.finish().await?;
        summary.tools_ingested += committed.rows() as u64;
        if opts.table == TargetTable::Tools {
            summary.duplicates += committed.duplicates as u64;
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
    // The pool parses chunks and builds their batches ahead of the worker, which stores them in
    // order; the writer encodes beside them.
    tracing::info!(
        "ingest took {:.2} s: the worker waited {:.2} s for input and {:.2} s for parsed chunks \
         (whose jobs built batches and metrics for {:.2} s in all) and {:.2} s for the writer; \
         the writer wrote Parquet for {:.2} s and completed its files in {:.2} s",
        summary.seconds,
        times.input.as_secs_f64(),
        times.parsing.as_secs_f64(),
        times.batches.as_secs_f64(),
        times.writer.get().as_secs_f64(),
        writing.as_secs_f64(),
        finishing.elapsed().as_secs_f64(),
    );
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
