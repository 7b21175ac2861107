//! Every command-line option, defined in one place.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::choice::Choice;
use crate::error::Error;
use crate::evolve::SeedStrategy;
use crate::formats::Format;
use crate::ingest::{FileReads, TargetTable};
use crate::query::output::OutputFormat;
use crate::report::GroupBy;
use crate::select::{Strategy, Unit};
use crate::synth::Backend;

/// A value parser offering the names of a library [`Choice`].
fn choice<T: Choice>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::names())
        .map(|s: String| T::from_name(&s).expect("clap only passes listed names"))
}

/// tdscale: SQL analytics over corpora of tool-use agent trajectories.
///
/// A corpus is a folder (or s3://bucket/prefix) of Parquet tables. Ingest trajectory files into
/// it, then ask it questions in SQL.
#[derive(Debug, Parser)]
#[command(name = "tdscale", version, about, long_about = None)]
#[command(
    after_help = "Logs: set RUST_LOG (e.g. RUST_LOG=tdscale=debug).\nExit codes: 0 ok, 1 error, 2 usage, 3 rejected input with --strict, 4 SQL error, 5 storage error, 6 every model request of a batch failed, 7 another writer held the corpus past --lock-timeout, 8 this writer lost its lock, 130/143 interrupted by SIGINT/SIGTERM."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How long a command that writes into a corpus waits while another process writes it
    /// (e.g. 30s, 10m; 0: fail at once). Past it the command fails with exit code 7.
    #[arg(long, global = true, default_value = "10m", value_parser = parse_wait)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest trajectory files or tool catalogs into a corpus (format detected per file).
    Ingest(IngestArgs),
    /// Run SQL over a corpus: one statement, files of statements, or an interactive prompt.
    Sql(SqlArgs),
    /// The diversity report: DE, RME, CAC percentiles, top modes and the long tail per group.
    Report(ReportArgs),
    /// Equal-budget subsets by quantity or by diversity, with metrics and training files.
    Budget(BudgetArgs),
    /// Join evaluation scores to the subsets of a budget run: the ablation table and plot.
    Ablation(AblationArgs),
    /// Business clusters of the tools table: build them, or show one.
    #[command(subcommand)]
    Clusters(ClustersCommand),
    /// Tool definitions: learn schemas for the tools the corpus calls but never defines.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Give every trajectory a domain: from its tools' clusters, or asked of a model.
    Label(LabelArgs),
    /// Run untrusted code in the sandbox.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Export trajectories from a corpus.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Assign every trajectory to train or test: deterministic, stratified, near-duplicates together.
    Split(SplitArgs),
    /// Flag training trajectories that are near-duplicates of evaluation items.
    Decontaminate(DecontaminateArgs),
    /// Evolve the corpus: pick long-tail seeds in SQL, synthesize new trajectories from them, repeat.
    Evolve(EvolveArgs),
    /// Diversity and complexity per evolution round (the `rounds` table).
    Rounds(RoundsArgs),
    /// Run a node of a Ballista cluster that knows every tdscale function.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Generate a synthetic corpus (Zipf domains, long-tailed modes) for tests and benchmarks.
    Gen(GenArgs),
    /// Ingest the bundled test data into a corpus and print a summary: the one-command tour.
    Demo(DemoArgs),
    /// Look at a corpus in the browser: report, trajectories, rounds, clusters, SQL (read-only).
    Serve(ServeArgs),
    /// The per-trajectory metrics stored beside the trajectories.
    #[command(subcommand)]
    Metrics(MetricsCommand),
}

impl Command {
    /// Whether the command streams its input through once and then exits (ingest, gen, metrics
    /// refresh): what it frees is soon allocated again, and all of it goes back at exit.
    pub fn streams(&self) -> bool {
        matches!(
            self,
            Command::Ingest(_) | Command::Gen(_) | Command::Metrics(_)
        )
    }

    /// The command's `--json` flag: its value is printed as JSON instead of text.
    pub fn json(&self) -> bool {
        match self {
            Command::Ingest(a) => a.json,
            Command::Report(a) => a.json,
            Command::Budget(a) => a.json,
            Command::Ablation(a) => a.json,
            Command::Clusters(ClustersCommand::Build(a)) => a.json,
            Command::Tools(ToolsCommand::Infer(a)) => a.json,
            Command::Label(a) => a.json,
            Command::Export(ExportCommand::Openai(a)) => a.json,
            Command::Export(ExportCommand::Bfcl(a)) => a.json,
            Command::Export(ExportCommand::Tau2(a)) => a.common.json,
            Command::Split(a) => a.json,
            Command::Decontaminate(a) => a.json,
            Command::Evolve(a) => a.json,
            Command::Rounds(a) => a.json,
            Command::Gen(a) => a.json,
            Command::Metrics(MetricsCommand::Refresh(a)) => a.json,
            Command::Clusters(ClustersCommand::Show { .. })
            | Command::Sql(_)
            | Command::Sandbox(_)
            | Command::Cluster(_)
            | Command::Demo(_)
            | Command::Serve(_) => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Compute the stored metrics of every trajectories part that lacks them (or of all with
    /// --force) under the current definitions, and remove those of other versions.
    Refresh(MetricsRefreshArgs),
}

#[derive(Debug, Args)]
pub struct MetricsRefreshArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Recompute the metrics of every part, not only the missing ones.
    #[arg(long)]
    pub force: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Corpus root: a folder (created if missing) or s3://bucket/prefix.
    pub corpus: String,
    /// Inputs: files (.json, .jsonl, .traj, .parquet, optionally .gz or .zst compressed),
    /// folders (read recursively), glob patterns, s3://bucket/key or s3://bucket/prefix/.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// In folders and s3:// prefixes, read the files whose relative path matches this pattern
    /// (e.g. '*.jsonl.zst'; default: every input file).
    #[arg(long)]
    pub glob: Option<String>,
    /// Print each file's detected dialect and where its fields go, and write nothing.
    #[arg(long)]
    pub explain: bool,
    /// The largest record read, in MiB: a larger one (a line, an array element, a document or
    /// a whole session log) is rejected with its first bytes.
    #[arg(long, default_value_t = crate::ingest::input::MAX_RECORD_BYTES >> 20)]
    pub max_record_mb: usize,
    /// How local files are read: `direct` around the page cache (no copy into the cache, no
    /// reclaim of other pages: far less system time for a file that cannot stay cached),
    /// `cached` through it, `auto` direct for a file larger than the memory available.
    #[arg(long, value_parser = choice::<FileReads>(), default_value = "auto")]
    pub file_reads: FileReads,
    /// Table to fill: trajectories, or tools (catalogs and the tools offered in trajectories).
    #[arg(long, value_parser = choice::<TargetTable>(), default_value = "trajectories")]
    pub table: TargetTable,
    /// Input format for every file instead of detecting it.
    #[arg(long, value_parser = choice::<Format>())]
    pub format: Option<Format>,
    /// Dataset name stored in `source` (default: each file's name).
    #[arg(long)]
    pub source: Option<String>,
    /// Domain label for every record.
    #[arg(long)]
    pub domain: Option<String>,
    /// Evolution round of the data.
    #[arg(long, default_value_t = 0)]
    pub round: i32,
    /// Exit with code 3 if any record is rejected (accepted records are still stored).
    #[arg(long)]
    pub strict: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Rows per Parquet part file.
    #[arg(long, default_value_t = crate::store::writer::FILE_ROWS, hide = true)]
    pub rows_per_file: usize,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// A SQL statement (or several separated by `;`). Without it and without -f: a prompt.
    // A statement may start with a `--` comment: that is SQL, not a flag.
    #[arg(allow_hyphen_values = true)]
    pub sql: Option<String>,
    /// Read statements from a file (repeatable; e.g. queries/some_plan.sql).
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Set a parameter of the SQL: `${name}` or `${name:default}` in the text.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Result format.
    #[arg(long, value_parser = choice::<OutputFormat>(), default_value = "table")]
    pub format: OutputFormat,
    /// Write the result of the last statement to this file or s3:// URL instead of stdout.
    #[arg(long)]
    pub out: Option<String>,
    /// Run on a Ballista cluster of tdscale nodes, e.g. df://host:50050 (needs the `cluster` build).
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// Memory the sorts, joins, aggregates and windows may hold, e.g. 4GiB; past it they spill
    /// to temporary files (a query that cannot spill fails with "Resources exhausted").
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory_limit: Option<u64>,
    /// Compute the per-trajectory metrics from the messages in every query instead of reading
    /// the stored `trajectory_metrics` (same results, slower; leaves the corpus untouched).
    #[arg(long)]
    pub computed_metrics: bool,
    /// How `INSERT INTO synthesis_requests` synthesizes.
    #[command(flatten)]
    pub synth: SynthArgs,
}

/// Which model the synthesis agents talk to, and how, and how code steps run.
#[derive(Debug, Args, Clone)]
pub struct SynthArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Wall-clock limit of each code-tool run in the sandbox.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub code_timeout: std::time::Duration,
}

/// Which model an agent talks to, and how.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// `offline` plays the agents deterministically with no model; `openai` calls an
    /// OpenAI-compatible chat-completions server.
    #[arg(long, value_parser = choice::<Backend>(), default_value = "offline")]
    pub backend: Backend,
    /// Base URL of the OpenAI-compatible server.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "http://127.0.0.1:8000/v1"
    )]
    pub base_url: String,
    /// Model name sent in each request.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// API key (sent as a bearer token, never printed).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Requests in flight at once (and seeds worked on at once).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Start at most this many requests per minute.
    #[arg(long)]
    pub requests_per_minute: Option<u32>,
    /// Per-request timeout, e.g. 120s.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Retries of a request after 429, 5xx, timeouts and broken bodies.
    #[arg(long, default_value_t = 6)]
    pub max_retries: u32,
    /// First retry delay (doubles per retry, with jitter), e.g. 500ms.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub retry_base: std::time::Duration,
    /// Do not read or write the response cache (`cache/llm/` in the corpus).
    #[arg(long)]
    pub no_cache: bool,
    /// Seed of every deterministic choice (mutations, offline answers, request seeds).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct EvolveArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Rounds to run (an interrupted batch found first counts as one).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seeds per round.
    #[arg(long, default_value_t = 200)]
    pub per_round: usize,
    /// How seeds are picked: the long tail, or uniformly at random (a control).
    #[arg(long, value_parser = choice::<SeedStrategy>(), default_value = "steered")]
    pub strategy: SeedStrategy,
    /// A parameter of queries/seeds_next_round.sql (w_surprisal, w_cac, w_cluster, w_rare_domain).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub synth: SynthArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RoundsArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Group the report by this column.
    #[arg(long, value_parser = choice::<GroupBy>(), default_value = "round")]
    pub by: GroupBy,
    /// Also write the report as an HTML page with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Run on a Ballista cluster of tdscale nodes, e.g. df://host:50050 (needs the `cluster` build).
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// Memory the sorts, joins, aggregates and windows may hold, e.g. 4GiB; past it they spill
    /// to temporary files (a query that cannot spill fails with "Resources exhausted").
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory_limit: Option<u64>,
    /// Compute the per-trajectory metrics from the messages in every query instead of reading
    /// the stored `trajectory_metrics` (same results, slower; leaves the corpus untouched).
    #[arg(long)]
    pub computed_metrics: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Budgets, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub budgets: Vec<i64>,
    /// What a budget counts.
    #[arg(long, value_parser = choice::<Unit>(), default_value = "trajectories")]
    pub unit: Unit,
    /// Strategies, comma-separated (default: all six).
    #[arg(long, value_parser = choice::<Strategy>(), value_delimiter = ',', default_value = "random,head,stratified,greedy_entropy,complexity,deita")]
    pub strategies: Vec<Strategy>,
    /// Number of seeds (0, 1, … n-1) per budget and strategy.
    #[arg(long, default_value_t = 3)]
    pub seeds: u32,
    /// Output folder or s3:// prefix (default: runs/budget-<date and time> in the corpus).
    #[arg(long)]
    pub out: Option<String>,
    /// MinHash similarity at or above which `deita` rejects a candidate.
    #[arg(long, default_value_t = 0.6)]
    pub threshold: f64,
    /// Write only manifests and metrics, not the training files.
    #[arg(long)]
    pub no_training_files: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AblationArgs {
    /// The --out folder (or s3:// prefix) of a `tdscale budget` run.
    pub run: String,
    /// Scores: CSV with a header, a JSON array or JSON lines, with subset, benchmark, score.
    #[arg(long)]
    pub scores: String,
    /// Also write the table and plots as an HTML page.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClustersCommand {
    /// Find dependency edges, group tools into clusters, select by maximum coverage.
    Build(ClustersBuildArgs),
    /// Print a cluster's tools and edges.
    Show {
        /// Corpus root.
        corpus: String,
        /// The cluster id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ClustersBuildArgs {
    /// Corpus root.
    pub corpus: String,
    /// Largest cluster; larger groups are split along the dependency graph.
    #[arg(long, default_value_t = 12)]
    pub max_cluster_size: usize,
    /// How many clusters the coverage pass selects.
    #[arg(long, default_value_t = 500)]
    pub select: usize,
    /// JSON object mapping services or cluster ids to domain labels.
    #[arg(long)]
    pub domains: Option<PathBuf>,
    /// Do not read the trajectories for observed data flows (catalog evidence only).
    #[arg(long)]
    pub no_observed_flows: bool,
    /// Trajectories an observed flow must be seen in before it makes an edge.
    #[arg(long, default_value_t = 2)]
    pub min_flow_trajectories: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Infer argument and output schemas from the calls of every tool that has no definition
    /// (stored in `tools` with provenance 'inferred'; running it again replaces them).
    Infer(ToolsInferArgs),
}

#[derive(Debug, Args)]
pub struct ToolsInferArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LabelArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Where domains come from: `clusters` (the catalog labels and clusters of the tools each
    /// trajectory calls) or `llm` (a model through `--backend openai`).
    #[arg(long, value_parser = choice::<crate::labels::domains::Method>())]
    pub domains: crate::labels::domains::Method,
    /// Trajectories per model request (`--domains llm`).
    #[arg(long, default_value_t = 20)]
    pub batch_size: usize,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run a Python snippet or a SQL query and report how it ended.
    Run(SandboxRunArgs),
    /// The child process that runs a sandboxed query (internal: reads its request on stdin).
    #[command(hide = true)]
    SqlWorker,
}

/// Languages the sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Python,
    Sql,
}

#[derive(Debug, Args)]
pub struct SandboxRunArgs {
    /// The language of the file.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The snippet or query file (`-` for standard input).
    pub file: PathBuf,
    /// Wall-clock limit, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Memory limit, e.g. 512MiB, 1GiB.
    #[arg(long, default_value = "512MiB", value_parser = parse_bytes)]
    pub memory: u64,
    /// Size of the Python snippet's working directory (a tmpfs inside the sandbox), e.g. 64MiB.
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes)]
    pub disk: u64,
    /// Tables for SQL: Parquet, CSV or JSON lines files, each named after its file (repeatable).
    #[arg(long = "db")]
    pub tables: Vec<PathBuf>,
    /// Run Python even where no network/PID isolation can be set up.
    #[arg(long)]
    pub allow_no_isolation: bool,
    /// Print the full result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `10s`, `500ms`, `2m`, `1h` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s or 500ms"))?;
    if v.is_nan() || v <= 0.0 {
        return Err(format!("`{s}`: the duration must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(v * mult))
}

/// Parses a duration like [`parse_duration`], or zero (`0`, `0s`).
pub fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    let digits = s.trim().trim_end_matches(['m', 's', 'h']);
    if digits.parse::<f64>().is_ok_and(|v| v == 0.0) {
        return Ok(std::time::Duration::ZERO);
    }
    parse_duration(s)
}

/// Parses `512MiB`, `1GiB`, `100MB`, `64k` or a number of bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 512MiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB, GiB, kB, MB, GB)"
            ));
        }
    };
    Ok((v * mult) as u64)
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Trajectories as OpenAI chat JSONL (one per line, with labels and metadata).
    Openai(ExportOpenaiArgs),
    /// A split as BFCL question files with `possible_answer/` ground truth.
    Bfcl(ExportEvalArgs),
    /// A split as a tau²-bench domain: tasks.json, split_tasks.json, tools.json, policy.md.
    Tau2(ExportTau2Args),
}

/// What every evaluation export takes.
#[derive(Debug, Args)]
pub struct ExportEvalArgs {
    /// Corpus root.
    pub corpus: String,
    /// Which side of `tdscale split` to export.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Destination folder or s3://bucket/prefix.
    #[arg(long)]
    pub to: String,
    /// The plan choosing the trajectories (default: queries/export_split.sql).
    #[arg(long)]
    pub query: Option<PathBuf>,
    /// A parameter of the plan.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Retries of each object-store request on transient faults.
    #[arg(long, default_value_t = 10)]
    pub retries: usize,
    /// Give up on a request after retrying this long, e.g. 2m.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub retry_timeout: std::time::Duration,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportTau2Args {
    #[command(flatten)]
    pub common: ExportEvalArgs,
    /// The domain folder name (tasks' `user_scenario.instructions.domain`).
    #[arg(long)]
    pub domain_name: String,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The scheduler: plans jobs and hands tasks to executors.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:50050")]
        bind: String,
        /// The name other hosts reach this scheduler by (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Seconds without a heartbeat before an executor is declared dead and its tasks are
        /// rescheduled (or the job fails when no executor is left).
        #[arg(long, default_value_t = 30)]
        executor_timeout: u64,
    },
    /// An executor: runs tasks; reads the corpus with its own AWS_* settings.
    Executor {
        /// The scheduler, host:port.
        #[arg(long)]
        scheduler: String,
        /// Address of this executor's data (Flight) service.
        #[arg(long, default_value = "0.0.0.0:50051")]
        bind: String,
        /// Port of this executor's gRPC service (default: the bind port + 1).
        #[arg(long)]
        grpc_port: Option<u16>,
        /// The name other hosts reach this executor by (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Tasks run at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Folder for shuffle files (default: a temporary folder).
        #[arg(long)]
        work_dir: Option<String>,
        /// Seconds between heartbeats (keep it below the scheduler's --executor-timeout).
        #[arg(long, default_value_t = 5)]
        heartbeat: u64,
    },
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Corpus root.
    pub corpus: String,
    /// Columns to stratify by, comma-separated (domain, cluster, source, format, round, reasoning_mode).
    #[arg(long, value_delimiter = ',', default_value = "domain")]
    pub by: Vec<String>,
    /// Share of the test split.
    #[arg(long, default_value_t = 0.1)]
    pub test: f64,
    /// Seed of the assignment.
    #[arg(long, default_value_t = 0)]
    pub seed: i64,
    /// Estimated Jaccard similarity from which two trajectories are near-duplicates (kept on one side).
    #[arg(long, default_value_t = 0.8)]
    pub near_dup: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DecontaminateArgs {
    /// Corpus root.
    pub corpus: String,
    /// Evaluation files or folders (BFCL, tau² tasks, chat files, any JSON lines).
    #[arg(long, required = true)]
    pub against: Vec<PathBuf>,
    /// Similarity from which a training trajectory is flagged.
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// Print the summary and the flagged pairs as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportOpenaiArgs {
    /// Corpus root.
    pub corpus: String,
    /// Output file or s3:// URL.
    #[arg(long)]
    pub out: String,
    /// SQL condition selecting trajectories, e.g. "domain = 'airline'".
    #[arg(long = "where")]
    pub filter: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Corpus root to write the trajectories into (round 0).
    pub corpus: String,
    /// How many trajectories.
    #[arg(long)]
    pub trajectories: u64,
    /// Seed: the same seed gives the same corpus.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of domains (Zipf-distributed).
    #[arg(long, default_value_t = crate::generate::DOMAINS.len())]
    pub domains: usize,
    /// Zipf exponent of the domain distribution.
    #[arg(long, default_value_t = 1.1)]
    pub zipf: f64,
    /// Also write the trajectories as OpenAI JSONL to this file or s3:// URL.
    #[arg(long)]
    pub jsonl: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Corpus root: a folder or s3://bucket/prefix.
    pub corpus: String,
    /// Address to listen on (port 0 picks a free one). Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8750")]
    pub bind: std::net::SocketAddr,
    /// The server never writes to the corpus: read-only is its only mode.
    #[arg(long, default_value_t = true)]
    pub read_only: bool,
    /// A token every request must carry (?token=… once in the browser, or an `Authorization:
    /// Bearer` header); at least 16 characters.
    #[arg(long, env = "TDSCALE_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// How long one query may run.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub query_timeout: std::time::Duration,
    /// Memory one query may use, e.g. 1GiB (past it the query fails; nothing spills to disk).
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    pub memory: u64,
    /// Queries running at once (the others wait).
    #[arg(long, default_value_t = 4)]
    pub max_queries: usize,
    /// How often the corpus is listed again to show new data.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub refresh: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Corpus folder to create.
    #[arg(long, default_value = "demo-corpus")]
    pub corpus: String,
    /// Folder with the bundled data.
    #[arg(long, default_value = "testdata")]
    pub data: PathBuf,
}

// ---- Options of the library, from the arguments ----

pub(super) fn progress_bar_wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

impl IngestArgs {
    pub fn options(&self) -> crate::ingest::IngestOptions {
        crate::ingest::IngestOptions {
            table: self.table,
            format: self.format,
            source: self.source.clone(),
            domain: self.domain.clone(),
            round: self.round,
            rows_per_file: self.rows_per_file,
            progress: progress_bar_wanted(self.json),
            glob: self.glob.clone(),
            max_record_bytes: self.max_record_mb.max(1) << 20,
            file_reads: self.file_reads,
        }
    }
}

impl ModelArgs {
    pub fn openai(&self) -> crate::llm::openai::OpenAiOptions {
        crate::llm::openai::OpenAiOptions {
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone(),
            model: self.model.clone(),
            concurrency: self.concurrency,
            requests_per_minute: self.requests_per_minute,
            timeout: self.request_timeout,
            max_retries: self.max_retries,
            retry_base: self.retry_base,
        }
    }
}

impl SynthArgs {
    pub fn options(&self, progress: bool) -> crate::synth::SynthOptions {
        crate::synth::SynthOptions {
            backend: self.model.backend,
            openai: self.model.openai(),
            cache: !self.model.no_cache,
            seed: self.model.seed,
            code_timeout: self.code_timeout,
            progress,
        }
    }
}

impl SqlArgs {
    pub fn session_options(&self) -> crate::query::session::SessionOptions {
        crate::query::session::SessionOptions {
            memory_limit: self.memory_limit.map(|b| b as usize),
            computed_metrics: self.computed_metrics,
            ..Default::default()
        }
    }
}

impl ReportArgs {
    pub fn session_options(&self) -> crate::query::session::SessionOptions {
        crate::query::session::SessionOptions {
            memory_limit: self.memory_limit.map(|b| b as usize),
            computed_metrics: self.computed_metrics,
            ..Default::default()
        }
    }
}

impl LabelArgs {
    pub fn options(&self) -> crate::labels::domains::LabelOptions {
        let m = &self.model;
        crate::labels::domains::LabelOptions {
            method: self.domains,
            model: (m.backend == Backend::Openai).then(|| crate::labels::domains::ModelOptions {
                openai: m.openai(),
                cache: !m.no_cache,
                seed: m.seed,
            }),
            batch_size: self.batch_size,
            progress: progress_bar_wanted(self.json),
        }
    }
}

impl EvolveArgs {
    pub fn options(&self) -> crate::error::Result<crate::evolve::EvolveOptions> {
        Ok(crate::evolve::EvolveOptions {
            rounds: self.rounds,
            per_round: self.per_round,
            strategy: self.strategy,
            params: crate::query::params::parse_pairs(&self.params)?,
            seed: self.synth.model.seed,
        })
    }
}

impl BudgetArgs {
    pub fn options(&self) -> crate::select::budget::BudgetOptions {
        crate::select::budget::BudgetOptions {
            budgets: self.budgets.clone(),
            unit: self.unit,
            strategies: self.strategies.clone(),
            seeds: self.seeds,
            out: self.out.clone().unwrap_or_else(|| {
                format!(
                    "{}/runs/budget-{}",
                    self.corpus.trim_end_matches('/'),
                    crate::store::writer::run_id()
                )
            }),
            threshold: self.threshold,
            training_files: !self.no_training_files,
            progress: progress_bar_wanted(self.json),
        }
    }
}

impl ClustersBuildArgs {
    pub fn options(&self) -> crate::error::Result<crate::clusters::BuildOptions> {
        let domain_overrides = match &self.domains {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                serde_json::from_str(&text).map_err(|e| {
                    Error::Usage(format!(
                        "{}: expected a JSON object of service → domain: {e}",
                        p.display()
                    ))
                })?
            }
            None => Default::default(),
        };
        Ok(crate::clusters::BuildOptions {
            max_cluster_size: self.max_cluster_size,
            select: self.select,
            domain_overrides,
            observed_flows: !self.no_observed_flows,
            min_flow_trajectories: self.min_flow_trajectories,
        })
    }
}

impl SplitArgs {
    pub fn options(&self) -> crate::export::split::SplitOptions {
        crate::export::split::SplitOptions {
            by: self.by.clone(),
            test: self.test,
            seed: self.seed,
            near_dup: self.near_dup,
        }
    }
}

impl ExportEvalArgs {
    pub fn retry(&self) -> crate::export::target::RetryPolicy {
        crate::export::target::RetryPolicy {
            max_retries: self.retries,
            timeout: self.retry_timeout,
        }
    }

    /// The plan's text (`--query`), if one was given.
    pub fn query_text(&self) -> crate::error::Result<Option<String>> {
        self.query
            .as_ref()
            .map(|f| std::fs::read_to_string(f).map_err(|e| Error::io(f, e)))
            .transpose()
    }
}

impl GenArgs {
    pub fn options(&self) -> crate::generate::GenOptions {
        crate::generate::GenOptions {
            seed: self.seed,
            domains: self.domains,
            zipf: self.zipf,
        }
    }
}

impl SandboxRunArgs {
    pub fn limits(&self) -> crate::sandbox::Limits {
        crate::sandbox::Limits {
            memory_bytes: self.memory,
            disk_bytes: self.disk,
            ..crate::sandbox::Limits::with_timeout(self.timeout)
        }
    }

    /// The snippet or query: the file's text, or standard input for `-`.
    pub fn code(&self) -> crate::error::Result<String> {
        if self.file.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| Error::io("stdin", e))?;
            Ok(s)
        } else {
            std::fs::read_to_string(&self.file).map_err(|e| Error::io(&self.file, e))
        }
    }
}

#[cfg(feature = "cluster")]
impl ClusterCommand {
    /// Runs the node until the process ends.
    pub async fn run(self) -> crate::error::Result<()> {
        use crate::distributed::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
        match self {
            ClusterCommand::Scheduler {
                bind,
                external_host,
                executor_timeout,
            } => {
                run_scheduler(&SchedulerOptions {
                    bind,
                    external_host,
                    executor_timeout_seconds: executor_timeout,
                })
                .await
            }
            ClusterCommand::Executor {
                scheduler,
                bind,
                grpc_port,
                external_host,
                concurrency,
                work_dir,
                heartbeat,
            } => {
                run_executor(&ExecutorOptions {
                    scheduler,
                    bind,
                    grpc_port,
                    external_host,
                    concurrency,
                    work_dir,
                    heartbeat_seconds: heartbeat,
                })
                .await
            }
        }
    }
}

impl ServeArgs {
    pub fn options(&self) -> crate::serve::ServeOptions {
        crate::serve::ServeOptions {
            bind: self.bind,
            token: self.token.clone(),
            query_timeout: self.query_timeout,
            memory_limit: self.memory as usize,
            max_queries: self.max_queries,
            refresh: self.refresh,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// Only the commands that stream and exit keep the memory they free (src/main.rs); a server
    /// or an interactive prompt gives it back when idle.
    #[test]
    fn only_streaming_commands_keep_freed_memory() {
        let streams = |args: &[&str]| Cli::try_parse_from(args).unwrap().command.streams();
        assert!(streams(&["tdscale", "ingest", "c", "a.jsonl"]));
        assert!(streams(&["tdscale", "gen", "c", "--trajectories", "10"]));
        assert!(streams(&["tdscale", "metrics", "refresh", "c"]));
        assert!(!streams(&["tdscale", "serve", "c"]));
        assert!(!streams(&["tdscale", "sql", "c"]));
        assert!(!streams(&["tdscale", "report", "c"]));
    }
}
