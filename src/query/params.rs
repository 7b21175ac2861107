//! Named parameters of the plans in `queries/`: `${name}` or `${name:default}` in the SQL
//! text, set with `--param name=value`.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Parses `name=value` pairs.
pub fn parse_pairs(pairs: &[String]) -> Result<HashMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| Error::Usage(format!("--param `{p}` is not name=value")))
        })
        .collect()
}

/// Substitutes parameters into `sql`. A parameter with no value and no default is an error
/// that names it.
///
/// ```
/// use std::collections::HashMap;
/// let p = HashMap::from([("budget".to_string(), "500".to_string())]);
/// let sql = tdscale::query::params::substitute("LIMIT ${budget} OFFSET ${skip:0}", &p).unwrap();
/// assert_eq!(sql, "LIMIT 500 OFFSET 0");
/// ```
pub fn substitute(sql: &str, params: &HashMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            Error::Usage(format!(
                "unterminated parameter `${{{}`",
                after.chars().take(20).collect::<String>()
            ))
        })?;
        let spec = &after[..end];
        let (name, default) = match spec.split_once(':') {
            Some((n, d)) => (n.trim(), Some(d)),
            None => (spec.trim(), None),
        };
        let value = params
            .get(name)
            .map(String::as_str)
            .or(default)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "parameter `{name}` has no value: pass --param {name}=..."
                ))
            })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `text` as a SQL string literal, quotes doubled, for values spliced into generated SQL.
///
/// ```
/// assert_eq!(tdscale::query::params::string_literal("it's"), "'it''s'");
/// ```
pub fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
