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
use serde_json::Value;

use super::args::{Cli, Command};
use super::commands::{Outcome, execute, ingest_outcome};
use super::writers::corpus;
use crate::error::{Error, Result};

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
/// text), through the same function as the command line. `progress` turns the progress bars of
/// long work on (see [`crate::progress`]). The commands that only make sense on a terminal or as
/// a server (`sql`, `demo`, `sandbox`, `cluster`, `serve`) are usage errors.
pub async fn run(args: &[String], progress: bool) -> Result<Value> {
    match execute(parse(args)?, true, Some(progress)).await {
        Some(out) => value(out?),
        None => Err(Error::Usage(format!(
            "`tdscale {}` runs on the command line only",
            args.first().map_or("", String::as_str)
        ))),
    }
}

/// The value of a command's outcome, or the error it ended with.
fn value(out: Outcome) -> Result<Value> {
    match out.error {
        Some(e) => Err(e),
        None => Ok(out.value),
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
    let opts = crate::ingest::IngestOptions {
        progress,
        ..a.options()
    };
    let name = name.display().to_string();
    let s = crate::ingest::ingest_batches(&corpus(&a.corpus)?, &name, batches, &opts).await?;
    value(ingest_outcome(&a, &s, true)?)
}
