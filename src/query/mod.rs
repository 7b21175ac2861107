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
use datafusion::sql::parser::DFParserBuilder;

use crate::error::{Error, Result};

/// How deeply the expressions of a statement given to [`statements`] may nest (see
/// [`check_expression_depth`]).
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Refuses SQL whose expressions nest deeper than `limit`. Planning, optimising and dropping an
/// expression walk its tree recursively, and the parser reads a chain of binary operators
/// (`1 + 1 + … + 1`, `a = 1 OR a = 2 OR …`) without recursing, so its own recursion limit does
/// not see how deep the tree it builds is. The depth is bounded here from the tokens, without
/// recursion: every operator of a chain adds a level, as does every parenthesis or bracket; a
/// comma or a clause keyword ends a chain.
pub fn check_expression_depth(sql: &str, limit: usize) -> std::result::Result<(), String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    // A statement that does not tokenize is left to the parser, which says what is wrong.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Ok(());
    };
    // Operators counted in each open parenthesis level, and their sum with the levels.
    let mut levels: Vec<usize> = vec![0];
    let mut depth = 0usize;
    for t in &tokens {
        match &t.token {
            Token::LParen | Token::LBracket => {
                levels.push(0);
                depth += 1;
            }
            Token::RParen | Token::RBracket => {
                if levels.len() > 1 {
                    depth -= levels.pop().unwrap_or(0) + 1;
                }
            }
            Token::Comma | Token::SemiColon => {
                let last = levels.last_mut().expect("the outer level");
                depth -= *last;
                *last = 0;
            }
            Token::Word(w) => match w.keyword {
                Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::IN => {
                    *levels.last_mut().expect("the outer level") += 1;
                    depth += 1;
                }
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::JOIN
                | Keyword::ON
                | Keyword::USING
                | Keyword::CASE
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::END
                | Keyword::AS
                | Keyword::UNION
                | Keyword::EXCEPT
                | Keyword::INTERSECT
                | Keyword::WITH
                | Keyword::VALUES => {
                    let last = levels.last_mut().expect("the outer level");
                    depth -= *last;
                    *last = 0;
                }
                _ => {}
            },
            Token::Whitespace(_)
            | Token::Number(..)
            | Token::Period
            | Token::Colon
            | Token::DoubleColon
            | Token::EOF => {}
            Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_) => {}
            // Every other token is an operator of some kind.
            _ => {
                *levels.last_mut().expect("the outer level") += 1;
                depth += 1;
            }
        }
        if depth > limit {
            return Err(format!(
                "the SQL nests too deeply near line {} column {}: more than {limit} levels of operators and parentheses in one expression. Split it up (e.g. sum the values of a VALUES list or a table instead of writing a + b + c + …)",
                t.span.start.line, t.span.start.column
            ));
        }
    }
    Ok(())
}

/// Splits `sql` into statements and plans each in turn (later statements see the views and
/// tables earlier ones created). Returns a DataFrame per statement.
pub async fn statements(ctx: &SessionContext, sql: &str) -> Result<Vec<DataFrame>> {
    check_expression_depth(sql, MAX_EXPRESSION_DEPTH)
        .map_err(|e| Error::Sql(datafusion::error::DataFusionError::Plan(e)))?;
    let (dialect_name, recursion_limit) = {
        let state = ctx.state();
        let parser = &state.config().options().sql_parser;
        (parser.dialect.to_string(), parser.recursion_limit.get())
    };
    // The dialect is dropped before the first await, so the future can move between threads
    // (a server runs statements from its handlers).
    let parsed = {
        let dialect = datafusion::sql::sqlparser::dialect::dialect_from_str(&dialect_name)
            .ok_or_else(|| Error::Usage(format!("unknown SQL dialect `{dialect_name}`")))?;
        DFParserBuilder::new(sql)
            .with_dialect(dialect.as_ref())
            .with_recursion_limit(recursion_limit)
            .build()?
            .parse_statements()?
    };
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
