//! The command-line interface: parses the options ([`args`]), turns them into the library's
//! options, calls the library and prints what it returns. No behaviour lives here. [`embed`] runs
//! the same commands for a program that embeds tdscale and wants their values, not their text.

pub mod args;
mod cluster;
mod commands;
mod demo;
pub mod embed;
mod sandbox;
mod sql;
mod writers;

use clap::Parser;

use crate::error::{Error, Result};
use crate::query::session::CorpusSession;
use crate::store::Corpus;
use args::{Cli, Command, SandboxCommand};
use writers::corpus;

/// The command line, parsed (`--help` and errors in it end the process, as clap does); the
/// binary looks at the command before it starts the runtime that [`main`] runs in.
pub fn parse() -> Cli {
    Cli::parse()
}

/// Runs a parsed command line ([`parse`]). SIGINT and SIGTERM end it with exit code 128 + the
/// signal, after letting go of the S3 leases it holds (what it had not committed stays
/// invisible; local locks go with the process).
pub async fn main(cli: Cli) -> Result<()> {
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
        Command::Sql(a) => sql::run(a).await,
        Command::Sandbox(SandboxCommand::Run(a)) => sandbox::run(a).await,
        Command::Sandbox(SandboxCommand::SqlWorker) => crate::sandbox::sql::worker_main()
            .await
            .map_err(|e| Error::Other(e.to_string())),
        Command::Demo(a) => demo::run(a).await,
        Command::Serve(a) => crate::serve::serve(&Corpus::open(&a.corpus)?, a.options()).await,
        Command::Cluster(c) => cluster::node(c).await,
        command => {
            let json = command.json();
            let out = match commands::execute(command, json, None).await {
                Some(out) => out?,
                None => unreachable!("every command that only prints is matched above"),
            };
            eprint!("{}", out.notes);
            if json {
                print_json(&out.value)?;
            } else {
                print!("{}", out.text);
            }
            out.error.map_or(Ok(()), Err)
        }
    }
}

/// Opens the corpus at `root` and a session over it.
async fn open(root: &str) -> Result<CorpusSession> {
    CorpusSession::open(&corpus(root)?).await
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))?
    );
    Ok(())
}
