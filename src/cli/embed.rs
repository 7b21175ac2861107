//! The commands as calls, for programs that embed tdscale (the Python package): a command line is
//! parsed exactly as `tdscale` parses it — same flags, defaults and messages — run through the same
//! library calls, and answered with the value `--json` prints instead of printed text.
//!
//! ```no_run
//! # async fn f() -> tdscale::error::Result<()> {
//! let args = ["budget", "./corpus", "--budgets", "500,1000", "--out", "runs/a"].map(String::from);
//! let subsets = tdscale::cli::embed::run(&args, false).await?;
//! println!("{} subsets", subsets.as_array().map_or(0, Vec::len));
//! # Ok(()) }
//! ```

use clap::Parser;
use datafusion::arrow::array::RecordBatchReader;
use serde_json::{Value, json};

use super::args::{Cli, ClustersCommand, Command, ExportCommand, IngestArgs};
use super::{cluster_context, eval_selection, open, release};
use crate::error::{Error, Result};
use crate::query::session::CorpusSession;
use crate::store::Corpus;

/// Parses `args` (the command line without the program name) as `tdscale` does. A wrong flag or
/// value is a usage error carrying clap's message, without the `error: ` prefix and the hint to
/// try `--help`.
pub fn parse(args: &[String]) -> Result<Command> {
    let argv = std::iter::once("tdscale".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv)
        .map(|cli| cli.command)
        .map_err(|e| Error::Usage(clap_message(&e.render().to_string())))
}

fn clap_message(rendered: &str) -> String {
    let text = rendered.trim();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let text = match text.find("\n\nFor more information") {
        Some(i) => &text[..i],
        None => text,
    };
    text.trim_end().to_string()
}

/// Runs the command `args` and returns the value `tdscale … --json` prints (`clusters show`: its
/// text). `progress` turns the progress bars of long work on (see [`crate::progress`]). The
/// commands that only make sense on a terminal or as a server (`sql`, `demo`, `sandbox`,
/// `cluster`, `serve`) are usage errors.
pub async fn run(args: &[String], progress: bool) -> Result<Value> {
    match parse(args)? {
        Command::Ingest(a) if a.explain => {
            to_value(&crate::ingest::explain::explain(&a.inputs, &a.options()).await?)
        }
        Command::Ingest(a) => {
            let corpus = Corpus::open(&a.corpus)?;
            let opts = crate::ingest::IngestOptions {
                progress,
                ..a.options()
            };
            let s = crate::ingest::ingest(&corpus, &a.inputs, &opts).await?;
            ingest_outcome(&a, &s)
        }
        Command::Report(a) => {
            let corpus = Corpus::open(&a.corpus)?;
            let session = match &a.cluster {
                Some(url) => CorpusSession::on(&corpus, cluster_context(url).await?).await?,
                None => CorpusSession::open_with(&corpus, &a.session_options()).await?,
            };
            let r = crate::report::build(&session, a.by).await?;
            if let Some(path) = &a.html {
                write_file(path, &crate::report::html::render(&r))?;
            }
            to_value(&r)
        }
        Command::Budget(a) => {
            let session = open(&a.corpus).await?;
            let opts = crate::select::budget::BudgetOptions {
                progress,
                ..a.options()
            };
            to_value(&crate::select::budget::run(&session, &opts).await?)
        }
        Command::Ablation(a) => {
            let ab = crate::select::ablation::build(&a.run, &a.scores).await?;
            if let Some(path) = &a.html {
                write_file(path, &crate::select::ablation::to_html(&ab))?;
            }
            to_value(&ab)
        }
        Command::Gen(a) => {
            let corpus = Corpus::open(&a.corpus)?;
            let s = crate::generate::generate(
                &corpus,
                a.trajectories,
                a.options(),
                a.jsonl.as_deref(),
                progress,
            )
            .await?;
            to_value(&s)
        }
        Command::Clusters(ClustersCommand::Build(a)) => {
            let session = open(&a.corpus).await?;
            let (s, _) = crate::clusters::build(&session, &a.options()?).await?;
            to_value(&s)
        }
        Command::Clusters(ClustersCommand::Show { corpus, id }) => Ok(Value::String(
            crate::clusters::show(&open(&corpus).await?, &id).await?,
        )),
        Command::Evolve(a) => {
            let session = open(&a.corpus).await?;
            let s =
                crate::evolve::evolve(&session, &a.options()?, a.synth.options(progress)).await?;
            to_value(&s)
        }
        Command::Rounds(a) => {
            to_value(&crate::evolve::rounds::list(&open(&a.corpus).await?).await?)
        }
        Command::Split(a) => {
            let session = open(&a.corpus).await?;
            let (s, _) = crate::export::split::split(&session, &a.options()).await?;
            to_value(&s)
        }
        Command::Decontaminate(a) => {
            let session = open(&a.corpus).await?;
            let (s, flags) =
                crate::export::decontaminate::decontaminate(&session, &a.against, a.threshold)
                    .await?;
            Ok(json!({"summary": to_value(&s)?, "flagged": to_value(&flags)?}))
        }
        Command::Export(ExportCommand::Openai(a)) => {
            let session = open(&a.corpus).await?;
            let n = crate::export::openai::export(&session, &a.out, a.filter.as_deref()).await?;
            Ok(json!({"written": n, "out": a.out}))
        }
        Command::Export(ExportCommand::Bfcl(a)) => {
            let (trajectories, target, lock) = eval_selection(&a).await?;
            let s = crate::export::bfcl::export(&trajectories, target).await;
            release(lock).await;
            to_value(&s?)
        }
        Command::Export(ExportCommand::Tau2(a)) => {
            let (trajectories, target, lock) = eval_selection(&a.common).await?;
            let s = crate::export::tau2::export(&trajectories, &a.domain_name, target).await;
            release(lock).await;
            to_value(&s?)
        }
        Command::Tools(super::args::ToolsCommand::Infer(a)) => {
            to_value(&crate::labels::infer::infer(&open(&a.corpus).await?).await?)
        }
        Command::Metrics(super::args::MetricsCommand::Refresh(a)) => {
            let corpus = Corpus::open(&a.corpus)?;
            to_value(&crate::store::trajectory_metrics::refresh(&corpus, a.force).await?)
        }
        Command::Label(a) => {
            let opts = crate::labels::domains::LabelOptions {
                progress,
                ..a.options()
            };
            to_value(&crate::labels::domains::label(&open(&a.corpus).await?, &opts).await?)
        }
        Command::Sql(_)
        | Command::Demo(_)
        | Command::Sandbox(_)
        | Command::Cluster(_)
        | Command::Serve(_) => Err(Error::Usage(format!(
            "`tdscale {}` runs on the command line only",
            args.first().map_or("", String::as_str)
        ))),
    }
}

/// Ingests Arrow rows with the options of `tdscale ingest`: `args` is an ingest command line
/// whose single input is the name the rows go by (see [`crate::ingest::ingest_batches`]).
pub async fn ingest_rows(
    args: &[String],
    batches: Box<dyn RecordBatchReader + Send>,
    progress: bool,
) -> Result<Value> {
    let Command::Ingest(a) = parse(args)? else {
        return Err(Error::Usage("expected an ingest command line".into()));
    };
    let [name] = a.inputs.as_slice() else {
        return Err(Error::Usage(
            "rows are ingested under one name: give exactly one input".into(),
        ));
    };
    let corpus = Corpus::open(&a.corpus)?;
    let opts = crate::ingest::IngestOptions {
        progress,
        ..a.options()
    };
    let name = name.display().to_string();
    let s = crate::ingest::ingest_batches(&corpus, &name, batches, &opts).await?;
    ingest_outcome(&a, &s)
}

/// An ingest's summary, or under `--strict` with rejects the error the command exits with.
fn ingest_outcome(a: &IngestArgs, s: &crate::ingest::IngestSummary) -> Result<Value> {
    if a.strict && s.rejected > 0 {
        let sample = s.reject_lines();
        return Err(Error::Rejected(format!(
            "{} record(s) rejected and --strict is set\n{}",
            s.rejected,
            sample.trim_end()
        )));
    }
    to_value(s)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Other(e.to_string()))
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}
