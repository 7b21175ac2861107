//! The command-line interface: a thin layer that parses options and calls the library.

pub mod args;

use std::io::{IsTerminal, Write};

use clap::Parser;

use crate::error::{Error, Result};
use crate::ingest::{IngestOptions, IngestSummary};
use crate::query::output::{self, OutputFormat};
use crate::query::{params, session};
use crate::store::Corpus;
use args::{Cli, Command, ExportCommand};

/// Parses the command line and runs the command.
pub async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingest(a) => ingest(a).await,
        Command::Sql(a) => sql(a).await,
        Command::Export(ExportCommand::Openai(a)) => {
            let corpus = Corpus::open(&a.corpus)?;
            let n = crate::export::openai::export(&corpus, &a.out, a.filter.as_deref()).await?;
            if a.json {
                println!("{}", serde_json::json!({"written": n, "out": a.out}));
            } else {
                println!("wrote {n} trajectories to {}", a.out);
            }
            Ok(())
        }
        Command::Report(a) => report(a).await,
        Command::Budget(a) => budget(a).await,
        Command::Ablation(a) => {
            let ab = crate::select::ablation::build(&a.run, &a.scores).await?;
            if let Some(path) = &a.html {
                std::fs::write(path, crate::select::ablation::to_html(&ab))
                    .map_err(|e| Error::io(path, e))?;
                eprintln!("wrote {}", path.display());
            }
            if a.json {
                print_json(&ab)?;
            } else {
                print!("{}", crate::select::ablation::to_text(&ab));
            }
            Ok(())
        }
        Command::Gen(a) => {
            let corpus = Corpus::open(&a.corpus)?;
            let opts = crate::generate::GenOptions {
                seed: a.seed,
                domains: a.domains,
                zipf: a.zipf,
            };
            let progress = !a.json && std::io::stderr().is_terminal();
            let s = crate::generate::generate(
                &corpus,
                a.trajectories,
                opts,
                a.jsonl.as_deref(),
                progress,
            )
            .await?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string(&s).map_err(|e| Error::Other(e.to_string()))?
                );
            } else {
                println!(
                    "generated {} trajectories into {} in {:.1} s",
                    s.trajectories, a.corpus, s.seconds
                );
            }
            Ok(())
        }
        Command::Sandbox(args::SandboxCommand::Run(a)) => sandbox_run(a).await,
        Command::Sandbox(args::SandboxCommand::SqlWorker) => crate::sandbox::sql::worker_main()
            .await
            .map_err(|e| Error::Other(e.to_string())),
        Command::Clusters(args::ClustersCommand::Show { corpus, id }) => {
            print!(
                "{}",
                crate::clusters::show(&Corpus::open(&corpus)?, &id).await?
            );
            Ok(())
        }
        Command::Clusters(args::ClustersCommand::Build(a)) => {
            let corpus = Corpus::open(&a.corpus)?;
            let domain_overrides = match &a.domains {
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
            let opts = crate::clusters::BuildOptions {
                max_cluster_size: a.max_cluster_size,
                select: a.select,
                domain_overrides,
            };
            let (s, _) = crate::clusters::build(&corpus, &opts).await?;
            if a.json {
                print_json(&s)?;
            } else {
                for p in s.problems.iter().take(10) {
                    eprintln!("note: {p}");
                }
                if s.problems.len() > 10 {
                    eprintln!("note: … and {} more (see --json)", s.problems.len() - 10);
                }
                println!(
                    "{} tools in {} services → {} clusters, {} dependency edges; {} clusters selected covering {} tools and capabilities",
                    s.tools, s.services, s.clusters, s.edges, s.selected, s.covered_items
                );
            }
            Ok(())
        }
        Command::Demo(a) => demo(a).await,
        Command::Evolve(a) => evolve(a).await,
        Command::Cluster(c) => cluster_node(c).await,
        Command::Split(a) => split(a).await,
        Command::Decontaminate(a) => decontaminate(a).await,
        Command::Export(ExportCommand::Bfcl(a)) => export_bfcl(a).await,
        Command::Export(ExportCommand::Tau2(a)) => export_tau2(a).await,
        Command::Rounds(a) => rounds(a).await,
    }
}

/// The synthesis settings of a command.
pub fn synth_config(
    a: &args::SynthArgs,
    corpus: &Corpus,
    progress: bool,
) -> Result<crate::synth::SynthConfig> {
    use crate::synth::backend::{ChatModel, cache::ResponseCache, offline, openai};
    let model: std::sync::Arc<dyn ChatModel> = match a.backend {
        args::Backend::Offline => std::sync::Arc::new(offline::OfflineModel { seed: a.seed }),
        args::Backend::Openai => {
            let opts = openai::OpenAiOptions {
                base_url: a.base_url.clone(),
                api_key: a.api_key.clone(),
                model: a.model.clone(),
                concurrency: a.concurrency,
                requests_per_minute: a.requests_per_minute,
                timeout: a.request_timeout,
                max_retries: a.max_retries,
                retry_base: a.retry_base,
            };
            let cache = (!a.no_cache).then(|| ResponseCache::new(corpus));
            std::sync::Arc::new(openai::OpenAiModel::new(opts, cache)?)
        }
    };
    let sandbox = crate::sandbox::python::PythonOptions {
        limits: crate::sandbox::Limits {
            timeout: a.code_timeout,
            cpu_seconds: a.code_timeout.as_secs().max(1),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(crate::synth::SynthConfig {
        model,
        model_name: a.model.clone(),
        concurrency: a.concurrency,
        seed: a.seed,
        sandbox,
        progress,
    })
}

#[cfg(not(feature = "cluster"))]
const NO_CLUSTER: &str = "this tdscale was built without the cluster feature: build it with `cargo build --release --features cluster`";

/// A session on a Ballista cluster with the corpus's tables.
async fn cluster_session(
    url: &str,
    corpus: &Corpus,
) -> Result<datafusion::prelude::SessionContext> {
    #[cfg(feature = "cluster")]
    {
        crate::distributed::cluster_context(url, corpus).await
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = (url, corpus);
        Err(Error::Usage(NO_CLUSTER.into()))
    }
}

async fn cluster_node(c: args::ClusterCommand) -> Result<()> {
    #[cfg(feature = "cluster")]
    {
        use crate::distributed::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
        match c {
            args::ClusterCommand::Scheduler {
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
            args::ClusterCommand::Executor {
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
    #[cfg(not(feature = "cluster"))]
    {
        let _ = c;
        Err(Error::Usage(NO_CLUSTER.into()))
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))?
    );
    Ok(())
}

async fn split(a: args::SplitArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let opts = crate::export::split::SplitOptions {
        by: a.by,
        test: a.test,
        seed: a.seed,
        near_dup: a.near_dup,
    };
    let (s, _) = crate::export::split::split(&corpus, &opts).await?;
    if a.json {
        return print_json(&s);
    }
    println!(
        "{} trajectories: {} train, {} test over {} strata; {} near-duplicate groups ({} trajectories) kept on one side",
        s.trajectories, s.train, s.test, s.strata, s.near_duplicate_groups, s.grouped_trajectories
    );
    for (stratum, (test, total)) in s.test_by_stratum.iter().take(20) {
        println!("  {stratum:<40} {test:>6} of {total:>7} in test");
    }
    if s.test_by_stratum.len() > 20 {
        println!(
            "  … {} more strata (see --json)",
            s.test_by_stratum.len() - 20
        );
    }
    Ok(())
}

/// The trajectories an evaluation export writes, and where it writes them.
async fn eval_selection(
    a: &args::ExportEvalArgs,
) -> Result<(
    Vec<crate::model::Trajectory>,
    crate::export::target::ExportTarget,
)> {
    let corpus = Corpus::open(&a.corpus)?;
    let ctx = session::corpus_context(&corpus).await?;
    let mut p = params::parse_pairs(&a.params)?;
    p.insert("split".into(), a.split.clone());
    let sql = match &a.query {
        Some(f) => std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?,
        None => include_str!("../../queries/export_split.sql").to_string(),
    };
    let batches = ctx
        .sql(&params::substitute(&sql, &p)?)
        .await?
        .collect()
        .await?;
    let mut trajectories = vec![];
    for b in &batches {
        trajectories.extend(crate::store::convert::batch_to_trajectories(b)?);
    }
    if trajectories.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to export: no trajectory in split `{}` (run `tdscale split {}` first, or check --query)",
            a.split, a.corpus
        )));
    }
    let retry = crate::export::target::RetryPolicy {
        max_retries: a.retries,
        timeout: a.retry_timeout,
    };
    Ok((
        trajectories,
        crate::export::target::ExportTarget::open(&a.to, retry)?,
    ))
}

fn print_files(files: &[crate::export::target::WrittenFile], to: &str) {
    for f in files {
        println!("  {:<48} {:>7} rows {:>10} bytes", f.path, f.rows, f.bytes);
    }
    println!("wrote {} files to {} (manifest.json last)", files.len(), to);
}

async fn export_bfcl(a: args::ExportEvalArgs) -> Result<()> {
    let (trajectories, target) = eval_selection(&a).await?;
    let s = crate::export::bfcl::export(&trajectories, target).await?;
    if a.json {
        return print_json(&s);
    }
    for (cat, n) in &s.entries {
        println!("{cat:<18} {n:>7} entries");
    }
    for (id, why) in s.skipped.iter().take(10) {
        eprintln!("skipped {id}: {why}");
    }
    if s.skipped.len() > 10 {
        eprintln!("… and {} more skipped (see --json)", s.skipped.len() - 10);
    }
    print_files(&s.files, &a.to);
    Ok(())
}

async fn export_tau2(a: args::ExportTau2Args) -> Result<()> {
    let (trajectories, target) = eval_selection(&a.common).await?;
    let s = crate::export::tau2::export(&trajectories, &a.domain_name, target).await?;
    if a.common.json {
        return print_json(&s);
    }
    println!(
        "{} tasks with {} reference actions over {} tools",
        s.tasks, s.actions, s.tools
    );
    print_files(&s.files, &a.common.to);
    Ok(())
}

async fn decontaminate(a: args::DecontaminateArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let (s, flags) =
        crate::export::decontaminate::decontaminate(&corpus, &a.against, a.threshold).await?;
    if a.json {
        return print_json(&serde_json::json!({"summary": s, "flagged": flags}));
    }
    for f in &flags {
        println!(
            "{:.3}  {}  ~  {} #{}",
            f.similarity, f.traj_id, f.eval_file, f.eval_id
        );
    }
    for u in s.unreadable.iter().take(5) {
        eprintln!("unreadable evaluation record {u}");
    }
    println!(
        "{} of {} training trajectories flagged ({} pairs) against {} items of {} files at similarity ≥ {}; see the `contamination` table",
        s.flagged_trajectories,
        s.train_trajectories,
        s.flagged_pairs,
        s.eval_items,
        s.eval_files,
        a.threshold
    );
    Ok(())
}

async fn evolve(a: args::EvolveArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let progress = !a.json && std::io::stderr().is_terminal();
    let config = std::sync::Arc::new(synth_config(&a.synth, &corpus, progress)?);
    let opts = crate::evolve::EvolveOptions {
        rounds: a.rounds,
        per_round: a.per_round,
        strategy: a.strategy,
        params: params::parse_pairs(&a.params)?,
        seed: a.synth.seed,
    };
    let s = crate::evolve::evolve(&corpus, &opts, config).await?;
    if a.json {
        print_json(&s)?;
        return evolve_outcome(&s);
    }
    if s.resumed_batches > 0 {
        println!("finished {} interrupted batch(es)", s.resumed_batches);
    }
    for b in &s.batches {
        println!(
            "round {}: batch {} — {} requested, {} accepted, {} rejected, {} failed ({:.1} s)",
            b.round, b.batch_id, b.requested, b.accepted, b.rejected, b.failed, b.seconds
        );
    }
    if let Some(st) = &s.backend {
        println!("{}", st.line());
    }
    print_rounds(&crate::evolve::rounds::list(&corpus).await?);
    println!(
        "rejections and failures: tdscale sql {} \"SELECT stage, reasons FROM synthesis_rejects\"",
        a.corpus
    );
    evolve_outcome(&s)
}

/// An error when a batch had every request fail (the summary is printed first either way).
fn evolve_outcome(s: &crate::evolve::EvolveSummary) -> Result<()> {
    match s.all_failed_batch() {
        Some(b) => Err(Error::Backend(format!(
            "every one of the {} requests of batch {} failed, so evolution stopped: check --base-url, --model and the API key (the reasons are in the synthesis_rejects table)",
            b.requested, b.batch_id
        ))),
        None => Ok(()),
    }
}

fn print_rounds(rows: &[crate::evolve::rounds::RoundRow]) {
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    println!(
        "{:>5} {:<9} {:>8} {:>6} {:>7} {:>7} {:>6} {:>8} {:>8} {:>9}",
        "round", "strategy", "trajs", "new", "DE", "RME", "modes", "CAC p50", "CAC p90", "accepted"
    );
    for r in rows {
        println!(
            "{:>5} {:<9} {:>8} {:>6} {:>7} {:>7} {:>6} {:>8} {:>8} {:>9}",
            r.round,
            r.strategy,
            r.trajectories,
            r.new_trajectories,
            f(r.de_bits),
            f(r.rme_bits),
            r.modes,
            f(r.cac_p50),
            f(r.cac_p90),
            r.acceptance_rate
                .map(|x| format!("{:.0}%", 100.0 * x))
                .unwrap_or_else(|| "-".into())
        );
    }
}

async fn rounds(a: args::RoundsArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let rows = crate::evolve::rounds::list(&corpus).await?;
    if a.json {
        print_json(&rows)?;
    } else if rows.is_empty() {
        println!("no rounds yet: run `tdscale evolve {}`", a.corpus);
    } else {
        print_rounds(&rows);
    }
    Ok(())
}

async fn budget(a: args::BudgetArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let opts = crate::select::budget::BudgetOptions {
        budgets: a.budgets,
        unit: a.unit,
        strategies: a.strategies,
        seeds: a.seeds,
        out: a.out.clone(),
        threshold: a.threshold,
        training_files: !a.no_training_files,
        progress: !a.json && std::io::stderr().is_terminal(),
    };
    let rows = crate::select::budget::run(&corpus, &opts).await?;
    if a.json {
        print_json(&rows)?;
        return Ok(());
    }
    println!(
        "{:<28} {:>8} {:>10} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6}",
        "subset", "trajs", "tokens", "DE", "RME", "CAC p50", "CAC p90", "tools", "short"
    );
    for r in &rows {
        println!(
            "{:<28} {:>8} {:>10} {:>7.3} {:>7.3} {:>8.2} {:>8.2} {:>6} {:>6}",
            r.name,
            r.trajectories,
            r.tokens,
            r.de_bits,
            r.rme_bits,
            r.cac_p50,
            r.cac_p90,
            r.tools,
            if r.short { "yes" } else { "" }
        );
    }
    println!(
        "wrote {} subsets to {} (summary.parquet, summary.csv, dataset_info.json)",
        rows.len(),
        a.out
    );
    Ok(())
}

async fn sandbox_run(a: args::SandboxRunArgs) -> Result<()> {
    use crate::sandbox::{Limits, python, sql};
    let code = if a.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::io("stdin", e))?;
        s
    } else {
        std::fs::read_to_string(&a.file).map_err(|e| Error::io(&a.file, e))?
    };
    let limits = Limits {
        timeout: a.timeout,
        cpu_seconds: a.timeout.as_secs().max(1),
        memory_bytes: a.memory,
        disk_bytes: a.disk,
        ..Default::default()
    };
    let sandbox_err = |e: crate::sandbox::SandboxError| match e {
        crate::sandbox::SandboxError::NoIsolation(_) => Error::Usage(e.to_string()),
        other => Error::Other(other.to_string()),
    };
    let r = match a.lang {
        args::Lang::Python => {
            let opts = python::PythonOptions {
                limits,
                allow_no_isolation: a.allow_no_isolation,
                ..Default::default()
            };
            tokio::task::spawn_blocking(move || python::run(&code, &opts))
                .await
                .map_err(|e| Error::Other(e.to_string()))?
                .map_err(sandbox_err)?
        }
        args::Lang::Sql => {
            let worker =
                std::env::current_exe().map_err(|e| Error::io("the tdscale executable", e))?;
            tokio::task::spawn_blocking(move || {
                sql::run_isolated(&code, &a.tables, &limits, &worker)
            })
            .await
            .map_err(|e| Error::Other(e.to_string()))?
            .map_err(sandbox_err)?
        }
    };
    if a.json {
        print_json(&r)?;
    } else {
        print!("{}", r.stdout);
        eprint!("{}", r.stderr);
        eprintln!(
            "[sandbox] {:?} in {} ms wall, {} ms cpu{}{}",
            r.outcome,
            r.wall_ms,
            r.cpu_ms,
            if r.stdout_truncated || r.stderr_truncated {
                ", output truncated"
            } else {
                ""
            },
            if r.isolation.notes.is_empty() {
                String::new()
            } else {
                format!("; {}", r.isolation.notes.join("; "))
            }
        );
    }
    if r.success() {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "the sandboxed {} did not succeed: {:?}",
            if a.lang == args::Lang::Python {
                "snippet"
            } else {
                "query"
            },
            r.outcome
        )))
    }
}

async fn report(a: args::ReportArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let r = match &a.cluster {
        Some(url) => {
            crate::report::build_on(&cluster_session(url, &corpus).await?, a.by, &a.corpus).await?
        }
        None => {
            let opts = session::SessionOptions {
                memory_limit: a.memory_limit.map(|b| b as usize),
                ..Default::default()
            };
            let ctx = session::corpus_context_with(&corpus, &opts).await?;
            crate::report::build_on(&ctx, a.by, corpus.display()).await?
        }
    };
    if let Some(path) = &a.html {
        std::fs::write(path, crate::report::html::render(&r)).map_err(|e| Error::io(path, e))?;
        eprintln!("wrote {}", path.display());
    }
    if a.json {
        print_json(&r)?;
    } else {
        print!("{}", crate::report::to_text(&r));
    }
    Ok(())
}

fn print_summary(s: &IngestSummary, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(s).unwrap_or_default());
        return;
    }
    for r in &s.sample_rejects {
        eprintln!("rejected {}:{}: {}", r.file, r.line, r.reason);
    }
    if s.rejected as usize > s.sample_rejects.len() {
        eprintln!(
            "… and {} more rejected records",
            s.rejected as usize - s.sample_rejects.len()
        );
    }
    for f in &s.files {
        println!(
            "{}: format {}, {} read, {} ingested, {} duplicates, {} rejected",
            f.path,
            f.format.as_deref().unwrap_or("unknown"),
            f.read,
            f.ingested,
            f.duplicates,
            f.rejected
        );
    }
    println!(
        "read {} records ({:.1} MB) in {:.2} s: {} ingested, {} duplicates, {} rejected{}",
        s.read,
        s.bytes as f64 / 1e6,
        s.seconds,
        s.ingested,
        s.duplicates,
        s.rejected,
        if s.tools_ingested > 0 && s.ingested != s.tools_ingested {
            format!(", {} catalog tools", s.tools_ingested)
        } else {
            String::new()
        }
    );
    if s.ingested == 0 && s.duplicates > 0 && s.rejected == 0 {
        println!("nothing new: every record is already in the corpus");
    }
    if let Some(f) = &s.rejects_file {
        println!("rejected records were copied to {f}");
    }
}

async fn ingest(a: args::IngestArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let opts = IngestOptions {
        table: a.table,
        format: a.format,
        source: a.source,
        domain: a.domain,
        round: a.round,
        rows_per_file: a.rows_per_file,
        progress: !a.json && std::io::stderr().is_terminal(),
    };
    let s = crate::ingest::ingest(&corpus, &a.inputs, &opts).await?;
    print_summary(&s, a.json);
    if a.strict && s.rejected > 0 {
        return Err(Error::Rejected(format!(
            "{} record(s) rejected and --strict is set",
            s.rejected
        )));
    }
    Ok(())
}

async fn sql(a: args::SqlArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let p = params::parse_pairs(&a.params)?;
    let ctx = match &a.cluster {
        Some(url) => cluster_session(url, &corpus).await?,
        None => {
            let config = std::sync::Arc::new(synth_config(
                &a.synth,
                &corpus,
                std::io::stderr().is_terminal(),
            )?);
            let opts = session::SessionOptions {
                memory_limit: a.memory_limit.map(|b| b as usize),
                ..Default::default()
            };
            crate::evolve::evolution_context(&corpus, config, &p, &opts)
                .await?
                .0
        }
    };
    let mut text = String::new();
    for f in &a.files {
        text.push_str(&std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?);
        text.push_str(";\n");
    }
    if let Some(s) = &a.sql {
        text.push_str(s);
    }
    if text.trim().is_empty() {
        return prompt(&ctx, a.format).await;
    }
    let text = params::substitute(&text, &p)?;
    let results = crate::query::run_sql(&ctx, &text).await?;
    match &a.out {
        Some(out) => {
            let Some((schema, batches)) = results.into_iter().last() else {
                return Err(Error::Usage("the SQL returned no result to write".into()));
            };
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            output::write_file(&ctx, out, a.format, schema, batches).await?;
            eprintln!("wrote {rows} rows to {out}");
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            for (schema, batches) in &results {
                output::write_text(&mut w, a.format, schema, batches)?;
            }
            w.flush().map_err(|e| Error::io("stdout", e))?;
        }
    }
    Ok(())
}

/// The interactive prompt: statements end with `;`, `\q` or end of input quits. Without a
/// terminal, standard input is read as a file of statements.
async fn prompt(ctx: &datafusion::prelude::SessionContext, format: OutputFormat) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Error::io("stdin", e))?;
        if text.trim().is_empty() {
            return Err(Error::Usage(
                "no SQL given: pass a statement, -f FILE, or SQL on standard input".into(),
            ));
        }
        for (schema, batches) in crate::query::run_sql(ctx, &text).await? {
            output::write_text(&mut std::io::stdout(), format, &schema, &batches)?;
        }
        return Ok(());
    }
    let mut rl = rustyline::DefaultEditor::new().map_err(|e| Error::Other(e.to_string()))?;
    let mut buf = String::new();
    println!("tdscale SQL. End statements with `;`. \\q quits.");
    loop {
        let line = match rl.readline(if buf.is_empty() {
            "tdscale> "
        } else {
            "      -> "
        }) {
            Ok(l) => l,
            Err(_) => return Ok(()),
        };
        if buf.is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
            return Ok(());
        }
        buf.push_str(&line);
        buf.push('\n');
        if line.trim_end().ends_with(';') {
            let _ = rl.add_history_entry(buf.trim());
            match crate::query::run_sql(ctx, &buf).await {
                Ok(results) => {
                    for (schema, batches) in results {
                        output::write_text(&mut std::io::stdout(), format, &schema, &batches)?;
                    }
                }
                Err(e) => eprintln!("error: {e}"),
            }
            buf.clear();
        }
    }
}

async fn demo(a: args::DemoArgs) -> Result<()> {
    if !a.data.is_dir() {
        return Err(Error::Usage(format!(
            "bundled data folder `{}` not found: run from the repository root or pass --data",
            a.data.display()
        )));
    }
    let corpus = Corpus::open(&a.corpus)?;
    let mut trajectories = vec![];
    let mut catalogs = vec![];
    for dir in ["formats", "catalogs"] {
        let d = a.data.join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| Error::io(&d, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if dir == "formats" {
            trajectories = files
        } else {
            catalogs = files
        }
    }
    println!(
        "== ingest {} trajectory files into {}",
        trajectories.len(),
        a.corpus
    );
    let s = crate::ingest::ingest(&corpus, &trajectories, &IngestOptions::default()).await?;
    print_summary(&s, false);
    println!("\n== ingest {} tool catalogs", catalogs.len());
    let opts = IngestOptions {
        table: crate::ingest::TargetTable::Tools,
        ..Default::default()
    };
    let s = crate::ingest::ingest(&corpus, &catalogs, &opts).await?;
    print_summary(&s, false);
    let ctx = session::corpus_context(&corpus).await?;
    let summary = include_str!("../../queries/corpus_summary.sql");
    println!("\n== queries/corpus_summary.sql");
    for (schema, batches) in crate::query::run_sql(&ctx, summary).await? {
        output::write_text(
            &mut std::io::stdout(),
            OutputFormat::Table,
            &schema,
            &batches,
        )?;
    }
    println!("\n== tdscale report {} --by source", a.corpus);
    let r = crate::report::build(&corpus, crate::report::GroupBy::Source).await?;
    print!("{}", crate::report::to_text(&r));
    let html = std::path::Path::new(&a.corpus).join("report.html");
    std::fs::write(&html, crate::report::html::render(&r)).map_err(|e| Error::io(&html, e))?;
    println!("\nthe same report with charts: {}", html.display());

    println!("\n== tdscale clusters build {}", a.corpus);
    let (cs, clusters) = crate::clusters::build(&corpus, &Default::default()).await?;
    for c in &clusters {
        println!(
            "{:<28} {:<10} {} tools, {} edges: {}",
            c.cluster_id,
            c.domain,
            c.tool_ids.len(),
            c.internal_edges,
            c.tool_names.join(", ")
        );
    }
    println!("{} clusters, {} dependency edges", cs.clusters, cs.edges);

    let out = format!("{}/runs/demo", a.corpus.trim_end_matches('/'));
    println!(
        "\n== tdscale budget {} --budgets 4,8 --seeds 1 --out {out}",
        a.corpus
    );
    budget(args::BudgetArgs {
        corpus: a.corpus.clone(),
        budgets: vec![4, 8],
        unit: crate::select::Unit::Trajectories,
        strategies: crate::select::Strategy::ALL.to_vec(),
        seeds: 1,
        out,
        threshold: 0.6,
        no_training_files: false,
        json: false,
    })
    .await?;

    // Evolution needs a corpus with a long tail: a generated one, next to the demo corpus.
    let evolved = format!("{}/evolved", a.corpus.trim_end_matches('/'));
    println!(
        "\n== tdscale gen {evolved} --trajectories 2000, then tdscale evolve {evolved} --rounds 2 --per-round 50 --backend offline"
    );
    let ev = Corpus::open(&evolved)?;
    if crate::evolve::rounds::list(&ev).await?.is_empty() {
        crate::generate::generate(&ev, 2000, Default::default(), None, false).await?;
    }
    let synth = args::SynthArgs::parse_from_defaults();
    let config = std::sync::Arc::new(synth_config(&synth, &ev, std::io::stderr().is_terminal())?);
    let opts = crate::evolve::EvolveOptions {
        rounds: 2,
        per_round: 50,
        strategy: crate::evolve::SeedStrategy::Steered,
        params: Default::default(),
        seed: 0,
    };
    let s = crate::evolve::evolve(&ev, &opts, config).await?;
    for b in &s.batches {
        println!(
            "round {}: {} requested, {} accepted, {} rejected, {} failed",
            b.round, b.requested, b.accepted, b.rejected, b.failed
        );
    }
    print_rounds(&crate::evolve::rounds::list(&ev).await?);
    Ok(())
}
