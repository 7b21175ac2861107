//! `tdscale sql`: statements from the command line, files or standard input, or an interactive
//! prompt, over a corpus session (embedded, with `synthesis_requests` and `seeds_next_round`, or
//! on a cluster).

use std::io::{IsTerminal, Write};

use datafusion::prelude::SessionContext;

use super::args::SqlArgs;
use crate::error::{Error, Result};
use crate::query::output::{self, OutputFormat};
use crate::query::params;
use crate::query::session::CorpusSession;
use crate::store::Corpus;

/// Runs the command.
pub async fn run(a: SqlArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let p = params::parse_pairs(&a.params)?;
    let session = match &a.cluster {
        Some(url) => CorpusSession::on(&corpus, super::cluster_context(url).await?).await?,
        None => {
            let session = CorpusSession::open_with(&corpus, &a.session_options()).await?;
            let progress = std::io::stderr().is_terminal();
            crate::evolve::register(&session, a.synth.options(progress), &p).await?;
            session
        }
    };
    let ctx = session.ctx();
    let mut text = String::new();
    for f in &a.files {
        text.push_str(&std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?);
        text.push_str(";\n");
    }
    if let Some(s) = &a.sql {
        text.push_str(s);
    }
    if text.trim().is_empty() {
        return prompt(ctx, a.format).await;
    }
    let text = params::substitute(&text, &p)?;
    let results = crate::query::run_sql(ctx, &text).await?;
    match &a.out {
        Some(out) => {
            let Some((schema, batches)) = results.into_iter().last() else {
                return Err(Error::Usage("the SQL returned no result to write".into()));
            };
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            output::write_file(ctx, out, a.format, schema, batches).await?;
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
async fn prompt(ctx: &SessionContext, format: OutputFormat) -> Result<()> {
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
