//! Running SQL over a corpus: the session, parameters, statements and result output.

pub mod bound;
pub mod cells;
pub mod listings;
pub mod output;
pub mod params;
pub mod session;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;

use crate::error::{Error, Result};

/// Splits `sql` into statements and plans each in turn (later statements see the views and
/// tables earlier ones created). Returns a DataFrame per statement.
pub async fn statements(ctx: &SessionContext, sql: &str) -> Result<Vec<DataFrame>> {
    let state = ctx.state();
    let dialect_name = state.config().options().sql_parser.dialect.to_string();
    let dialect = datafusion::sql::sqlparser::dialect::dialect_from_str(&dialect_name)
        .ok_or_else(|| Error::Usage(format!("unknown SQL dialect `{dialect_name}`")))?;
    let parsed = DFParser::parse_sql_with_dialect(sql, dialect.as_ref())?;
    if parsed.is_empty() {
        return Err(Error::Usage("no SQL statement given".into()));
    }
    let mut out = vec![];
    for stmt in parsed {
        let plan = ctx.state().statement_to_plan(stmt).await?;
        out.push(ctx.execute_logical_plan(plan).await?);
    }
    Ok(out)
}

/// Runs every statement of `sql` and returns the result of each statement that yields rows
/// (DDL such as `CREATE VIEW` yields none).
pub async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<(SchemaRef, Vec<RecordBatch>)>> {
    let mut results = vec![];
    let stmts = statements(ctx, sql).await?;
    for df in stmts {
        let schema: SchemaRef = df.schema().inner().clone();
        let batches = df.collect().await?;
        if !schema.fields().is_empty() {
            results.push((schema, batches));
        }
    }
    Ok(results)
}
