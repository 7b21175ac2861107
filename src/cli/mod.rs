//! The command-line interface: parses the options ([`args`]), turns them into the library's
//! options, calls the library and prints what it returns. No behaviour lives here. [`embed`] runs
//! the same commands for a program that embeds tdscale and wants their values, not their text.

pub mod args;
mod cluster;
mod demo;
pub mod embed;
mod sandbox;
mod sql;
mod writers;

use std::io::IsTerminal;

use clap::Parser;

use crate::error::{Error, Result};
use crate::query::session::CorpusSession;
use crate::store::Corpus;
use crate::store::lock::WriterLock;
use args::{
    Cli, ClustersCommand, Command, ExportCommand, MetricsCommand, SandboxCommand, ToolsCommand,
};
use cluster::cluster_context;
use writers::{corpus, release};

/// Parses the command line and runs the command. SIGINT and SIGTERM end it with exit code
/// 128 + the signal, after letting go of the S3 leases it holds (what it had not committed
/// stays invisible; local locks go with the process).
pub async fn main() -> Result<()> {
    let cli = Cli::parse();
    writers::set_lock_timeout(cli.lock_timeout);
    let stop = writers::interrupted();
    tokio::select! {
        r = run(cli.command) => r,
        (signal, name) = stop => {
            crate::store::lock::release_all().await;
            Err(Error::Interrupted {
                signal,
                message: format!(
                    "interrupted by {name}: nothing half-written is visible; run the same command again to finish"
                ),
            })
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Ingest(a) => ingest(a).await,
        Command::Sql(a) => sql::run(a).await,
        Command::Report(a) => report(a).await,
        Command::Budget(a) => {
            let session = open(&a.corpus).await?;
            let opts = a.options();
            let rows = crate::select::budget::run(&session, &opts).await?;
            emit(a.json, &rows, || {
                crate::select::budget::to_text(&rows, &opts.out)
            })
        }
        Command::Ablation(a) => {
            let ab = crate::select::ablation::build(&a.run, &a.scores).await?;
            if let Some(path) = &a.html {
                write_file(path, &crate::select::ablation::to_html(&ab))?;
            }
            emit(a.json, &ab, || crate::select::ablation::to_text(&ab))
        }
        Command::Gen(a) => {
            let corpus = corpus(&a.corpus)?;
            let progress = !a.json && std::io::stderr().is_terminal();
            let s = crate::generate::generate(
                &corpus,
                a.trajectories,
                a.options(),
                a.jsonl.as_deref(),
                progress,
            )
            .await?;
            emit(a.json, &s, || s.to_text(&a.corpus))
        }
        Command::Sandbox(SandboxCommand::Run(a)) => sandbox::run(a).await,
        Command::Sandbox(SandboxCommand::SqlWorker) => crate::sandbox::sql::worker_main()
            .await
            .map_err(|e| Error::Other(e.to_string())),
        Command::Clusters(ClustersCommand::Show { corpus, id }) => {
            print!(
                "{}",
                crate::clusters::show(&open(&corpus).await?, &id).await?
            );
            Ok(())
        }
        Command::Clusters(ClustersCommand::Build(a)) => {
            let session = open(&a.corpus).await?;
            let (s, _) = crate::clusters::build(&session, &a.options()?).await?;
            if !a.json {
                eprint!("{}", s.problem_lines());
            }
            emit(a.json, &s, || s.to_text())
        }
        Command::Tools(ToolsCommand::Infer(a)) => {
            let s = crate::labels::infer::infer(&open(&a.corpus).await?).await?;
            emit(a.json, &s, || s.to_text())
        }
        Command::Label(a) => {
            let s = crate::labels::domains::label(&open(&a.corpus).await?, &a.options()).await?;
            emit(a.json, &s, || s.to_text())
        }
        Command::Demo(a) => demo::run(a).await,
        Command::Serve(a) => crate::serve::serve(&Corpus::open(&a.corpus)?, a.options()).await,
        Command::Metrics(MetricsCommand::Refresh(a)) => {
            let corpus = corpus(&a.corpus)?;
            if !corpus.is_local() {
                corpus.location().check_reachable().await?;
            }
            let r = crate::store::trajectory_metrics::refresh(&corpus, a.force).await?;
            emit(a.json, &r, || r.to_text())
        }
        Command::Evolve(a) => {
            // The lock before the session, so its listings hold for the whole evolution.
            let corpus = corpus(&a.corpus)?;
            let lock = corpus.lock_writer("evolve").await?;
            let result = evolve(a, CorpusSession::open(&corpus).await?).await;
            lock.release().await;
            result
        }
        Command::Rounds(a) => {
            let rows = crate::evolve::rounds::list(&open(&a.corpus).await?).await?;
            emit(a.json, &rows, || {
                if rows.is_empty() {
                    format!("no rounds yet: run `tdscale evolve {}`\n", a.corpus)
                } else {
                    crate::evolve::rounds::to_text(&rows)
                }
            })
        }
        Command::Cluster(c) => cluster::node(c).await,
        Command::Split(a) => {
            let session = open(&a.corpus).await?;
            let (s, _) = crate::export::split::split(&session, &a.options()).await?;
            emit(a.json, &s, || s.to_text())
        }
        Command::Decontaminate(a) => {
            let session = open(&a.corpus).await?;
            let (s, flags) =
                crate::export::decontaminate::decontaminate(&session, &a.against, a.threshold)
                    .await?;
            if a.json {
                return print_json(&serde_json::json!({"summary": s, "flagged": flags}));
            }
            for u in s.unreadable.iter().take(5) {
                eprintln!("unreadable evaluation record {u}");
            }
            print!("{}", s.to_text(&flags, a.threshold));
            Ok(())
        }
        Command::Export(ExportCommand::Openai(a)) => {
            let session = open(&a.corpus).await?;
            let n = crate::export::openai::export(&session, &a.out, a.filter.as_deref()).await?;
            emit(
                a.json,
                &serde_json::json!({"written": n, "out": a.out}),
                || format!("wrote {n} trajectories to {}\n", a.out),
            )
        }
        Command::Export(ExportCommand::Bfcl(a)) => {
            let (trajectories, target, lock) = eval_selection(&a).await?;
            let s = crate::export::bfcl::export(&trajectories, target).await;
            release(lock).await;
            let s = s?;
            if !a.json {
                eprint!("{}", s.skipped_lines());
            }
            emit(a.json, &s, || s.to_text(&a.to))
        }
        Command::Export(ExportCommand::Tau2(a)) => {
            let (trajectories, target, lock) = eval_selection(&a.common).await?;
            let s = crate::export::tau2::export(&trajectories, &a.domain_name, target).await;
            release(lock).await;
            let s = s?;
            emit(a.common.json, &s, || s.to_text(&a.common.to))
        }
    }
}

async fn evolve(a: args::EvolveArgs, session: CorpusSession) -> Result<()> {
    let progress = !a.json && std::io::stderr().is_terminal();
    let s = crate::evolve::evolve(&session, &a.options()?, a.synth.options(progress)).await?;
    if a.json {
        print_json(&s)?;
    } else {
        let all = crate::evolve::rounds::list(&session).await?;
        print!("{}", s.to_text(&all));
        println!(
            "rejections and failures: tdscale sql {} \"SELECT stage, reasons FROM synthesis_rejects\"",
            a.corpus
        );
    }
    match s.all_failed_batch() {
        Some(b) => Err(Error::Backend(format!(
            "every one of the {} requests of batch {} failed, so evolution stopped: check --base-url, --model and the API key (the reasons are in the synthesis_rejects table)",
            b.requested, b.batch_id
        ))),
        None => Ok(()),
    }
}

/// Opens the corpus at `root` and a session over it.
async fn open(root: &str) -> Result<CorpusSession> {
    CorpusSession::open(&corpus(root)?).await
}

/// Prints `value` as JSON when `json`, else the text `text` makes.
fn emit<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        print_json(value)
    } else {
        print!("{}", text());
        Ok(())
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))?
    );
    Ok(())
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

async fn ingest(a: args::IngestArgs) -> Result<()> {
    if a.explain {
        let files = crate::ingest::explain::explain(&a.inputs, &a.options()).await?;
        return emit(a.json, &files, || crate::ingest::explain::to_text(&files));
    }
    let corpus = corpus(&a.corpus)?;
    let s = crate::ingest::ingest(&corpus, &a.inputs, &a.options()).await?;
    if a.json {
        print_json(&s)?;
    } else {
        eprint!("{}", s.reject_lines());
        print!("{}", s.to_text());
    }
    if a.strict && s.rejected > 0 {
        return Err(Error::Rejected(format!(
            "{} record(s) rejected and --strict is set",
            s.rejected
        )));
    }
    Ok(())
}

async fn report(a: args::ReportArgs) -> Result<()> {
    let corpus = corpus(&a.corpus)?;
    let session = match &a.cluster {
        Some(url) => CorpusSession::on(&corpus, cluster_context(url).await?).await?,
        None => CorpusSession::open_with(&corpus, &a.session_options()).await?,
    };
    let r = crate::report::build(&session, a.by).await?;
    if let Some(path) = &a.html {
        write_file(path, &crate::report::html::render(&r))?;
    }
    emit(a.json, &r, || crate::report::to_text(&r))
}

/// The trajectories an evaluation export writes, where it writes them, and the corpus's writer
/// lock when that is inside the corpus.
async fn eval_selection(
    a: &args::ExportEvalArgs,
) -> Result<(
    Vec<crate::model::Trajectory>,
    crate::export::target::ExportTarget,
    Option<WriterLock>,
)> {
    let session = open(&a.corpus).await?;
    let lock = if session.corpus().contains(&a.to) {
        Some(session.lock_writer("export").await?)
    } else {
        None
    };
    let params = crate::query::params::parse_pairs(&a.params)?;
    let trajectories =
        crate::export::split_trajectories(&session, &a.split, a.query_text()?.as_deref(), &params)
            .await?;
    let target = crate::export::target::ExportTarget::open(&a.to, a.retry())?;
    Ok((trajectories, target, lock))
}
