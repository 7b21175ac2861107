//! `tdscale sql`: statements from the command line, files or standard input, or an interactive
//! prompt, over a corpus session (embedded, with `synthesis_requests` and `seeds_next_round`, or
//! on a cluster).

use std::io::{IsTerminal, Write};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use super::args::SqlArgs;
use crate::error::{Error, Result};
use crate::query::output::{self, OutputFormat};
use crate::query::params;
use crate::query::session::CorpusSession;
use crate::store::Corpus;

/// Runs the command.
pub async fn run(a: SqlArgs) -> Result<()> {
    let corpus = super::corpus(&a.corpus)?;
    let p = params::parse_pairs(&a.params)?;
    let session = match &a.cluster {
        Some(url) => {
            CorpusSession::on(&corpus, super::cluster::cluster_context(url).await?).await?
        }
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
        return prompt(&session, a.format).await;
    }
    let text = params::substitute(&text, &p)?;
    // Statements that write into the corpus (and a result written into its folder) run under
    // its writer lock, taken before anything is read.
    let lock = if writes_into(&corpus, ctx, &text)
        || a.out.as_deref().is_some_and(|o| corpus.contains(o))
    {
        Some(session.lock_writer("sql").await?)
    } else {
        None
    };
    let result = run_statements(&a, ctx, &text).await;
    super::writers::release(lock).await;
    result
}

/// Runs the statements and prints or writes the result.
async fn run_statements(a: &SqlArgs, ctx: &SessionContext, text: &str) -> Result<()> {
    let results = crate::query::run_sql(ctx, text).await?;
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

/// Whether a statement of `sql` writes into the corpus: INSERT, UPDATE, DELETE, MERGE or
/// TRUNCATE on a table, or COPY … TO a place inside the corpus's folder. Text that does not parse,
/// or nests too deeply to parse safely, writes nothing (running it reports the error).
pub fn writes_into(corpus: &Corpus, ctx: &SessionContext, sql: &str) -> bool {
    use datafusion::sql::parser::{DFParserBuilder, Statement};
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    if crate::query::check_expression_depth(sql, crate::query::MAX_EXPRESSION_DEPTH).is_err() {
        return false;
    }
    let state = ctx.state();
    let options = state.config().options();
    let dialect_name = options.sql_parser.dialect.to_string();
    let Some(dialect) = datafusion::sql::sqlparser::dialect::dialect_from_str(&dialect_name) else {
        return false;
    };
    let parsed = DFParserBuilder::new(sql)
        .with_dialect(dialect.as_ref())
        .with_recursion_limit(options.sql_parser.recursion_limit.get())
        .build()
        .and_then(|mut p| p.parse_statements());
    let Ok(statements) = parsed else {
        return false;
    };
    statements.iter().any(|s| match s {
        Statement::CopyTo(c) => corpus.contains(&c.target),
        Statement::Statement(s) => matches!(
            s.as_ref(),
            Sql::Insert(_)
                | Sql::Update { .. }
                | Sql::Delete(_)
                | Sql::Merge { .. }
                | Sql::Truncate { .. }
        ),
        _ => false,
    })
}

/// Runs `sql` in the prompt's session, under the corpus's writer lock when it writes into it.
async fn run_in(session: &CorpusSession, sql: &str) -> Result<Vec<(SchemaRef, Vec<RecordBatch>)>> {
    if !writes_into(session.corpus(), session.ctx(), sql) {
        return crate::query::run_sql(session.ctx(), sql).await;
    }
    let lock = session.lock_writer("sql").await?;
    let result = crate::query::run_sql(session.ctx(), sql).await;
    lock.release().await;
    result
}

/// The interactive prompt: statements end with `;`, `\q` or end of input quits. Without a
/// terminal, standard input is read as a file of statements.
async fn prompt(session: &CorpusSession, format: OutputFormat) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Error::io("stdin", e))?;
        if text.trim().is_empty() {
            return Err(Error::Usage(
                "no SQL given: pass a statement, -f FILE, or SQL on standard input".into(),
            ));
        }
        for (schema, batches) in run_in(session, &text).await? {
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
            match run_in(session, &buf).await {
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
