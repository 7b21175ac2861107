//! What SQL from the page may do: read. One statement, a query (`SELECT`, `WITH`, `VALUES`,
//! or `EXPLAIN` of one); no DDL (`CREATE`, `DROP`), DML (`INSERT`, `COPY`), `SET`, `PREPARE`
//! or any other statement. The served session also has no URL tables (no `FROM 'file'`) and
//! only the table functions listed here, none of which reads a file. DataFusion's own
//! [`SQLOptions`](datafusion::prelude::SQLOptions) refuse the same statements a second time
//! when the query is planned.

use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

/// The table functions a served query may call: series of numbers and the selections over the
/// corpus's own tables.
pub const TABLE_FUNCTIONS: &[&str] =
    &["generate_series", "range", "greedy_entropy", "deita_select"];

/// Removes every table function not in [`TABLE_FUNCTIONS`] from `ctx`.
pub fn restrict_table_functions(ctx: &SessionContext) {
    let names: Vec<String> = ctx.state().table_functions().keys().cloned().collect();
    for name in names {
        if !TABLE_FUNCTIONS.contains(&name.as_str()) {
            ctx.deregister_udtf(&name);
        }
    }
}

/// Why SQL was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// It is not SQL (a parse error) or not one statement.
    Invalid(String),
    /// It is a statement the viewer does not run (it would write, or change the session).
    Refused(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Invalid(m) | Rejection::Refused(m) => f.write_str(m),
        }
    }
}

/// The first keyword of a statement, to name what was refused.
fn keyword(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn refusal(what: &str) -> Rejection {
    Rejection::Refused(format!(
        "read-only: `{what}` is refused here; the console runs one query (SELECT, WITH, VALUES or EXPLAIN) — use `tdscale sql` on the command line to change the corpus"
    ))
}

fn check_statement(s: &DfStatement) -> Result<(), Rejection> {
    match s {
        DfStatement::Statement(inner) => match inner.as_ref() {
            Statement::Query(_) => Ok(()),
            Statement::Explain { statement, .. } => match statement.as_ref() {
                Statement::Query(_) => Ok(()),
                other => Err(refusal(&keyword(&other.to_string()))),
            },
            other => Err(refusal(&keyword(&other.to_string()))),
        },
        DfStatement::Explain(e) => check_statement(&e.statement),
        DfStatement::CopyTo(_) => Err(refusal("COPY")),
        DfStatement::CreateExternalTable(_) => Err(refusal("CREATE EXTERNAL TABLE")),
        DfStatement::Reset(_) => Err(refusal("RESET")),
    }
}

/// Checks that `sql` is exactly one read-only query; the error says what was wrong or refused.
///
/// ```
/// use tdscale::serve::guard::{check, Rejection};
/// assert!(check("SELECT 1").is_ok());
/// assert!(check("WITH a AS (SELECT 1 AS x) SELECT x FROM a").is_ok());
/// assert!(check("EXPLAIN SELECT 1").is_ok());
/// let refused = |sql: &str| match check(sql) { Err(Rejection::Refused(m)) => m, other => panic!("{other:?}") };
/// assert!(refused("COPY (SELECT 1) TO '/tmp/x.csv'").contains("COPY"));
/// assert!(refused("CREATE TABLE t AS SELECT 1").contains("CREATE"));
/// assert!(refused("INSERT INTO rounds SELECT * FROM rounds").contains("INSERT"));
/// assert!(refused("SET datafusion.execution.batch_size = 1").contains("SET"));
/// assert!(refused("EXPLAIN INSERT INTO rounds SELECT * FROM rounds").contains("INSERT"));
/// assert!(matches!(check("SELECT 1; DROP VIEW tool_calls"), Err(Rejection::Invalid(m)) if m.contains("one query")));
/// assert!(matches!(check("SELEC 1"), Err(Rejection::Invalid(m)) if m.contains("parse error")));
/// ```
pub fn check(sql: &str) -> Result<(), Rejection> {
    let parsed = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
        .map_err(|e| Rejection::Invalid(format!("SQL parse error: {e}")))?;
    match parsed.len() {
        0 => Err(Rejection::Invalid("no SQL statement given".into())),
        1 => check_statement(&parsed[0]),
        n => Err(Rejection::Invalid(format!(
            "{n} statements given: the console runs one query at a time"
        ))),
    }
}
