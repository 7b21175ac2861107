//! The trajectory browser's filters, turned into one SQL query over the trajectory index: a
//! page of rows in a fixed order (the sort column, then `traj_id`), and their count apart so
//! that the first page never waits for it.

use serde::{Deserialize, Serialize};

use super::index::INDEX_TABLE;
use super::{ApiError, ApiResult, App};
use crate::query::params::string_literal;

/// How a group without a value (a NULL domain, cluster or source) is named in the report and
/// in filters.
pub const NONE_LABEL: &str = "(none)";

/// The filters and paging of the browser, as the page's query string gives them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Filter {
    pub domain: Option<String>,
    pub mode: Option<String>,
    pub cluster: Option<String>,
    pub source: Option<String>,
    pub round: Option<String>,
    pub reward_min: Option<String>,
    pub reward_max: Option<String>,
    pub cac_min: Option<String>,
    pub cac_max: Option<String>,
    /// Free text, looked for in the id, the system prompt and every message's content,
    /// reasoning, tool name and arguments (case-insensitive).
    pub q: Option<String>,
    /// Any SQL condition over the index's columns, or over every column of `trajectories`
    /// (with `mode` and `cac`).
    #[serde(rename = "where")]
    pub where_sql: Option<String>,
    pub sort: Option<String>,
    pub desc: Option<String>,
    /// 1-based.
    pub page: Option<String>,
    pub per_page: Option<String>,
}

/// Columns the list may be sorted by.
pub const SORTS: &[&str] = &[
    "traj_id",
    "round",
    "source",
    "domain",
    "cluster_id",
    "mode",
    "cac",
    "num_turns",
    "num_tool_calls",
    "num_tokens",
    "reward",
];

/// One row of the list.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ListRow {
    pub traj_id: String,
    pub round: i32,
    pub source: String,
    pub domain: Option<String>,
    pub cluster_id: Option<String>,
    pub parent_id: Option<String>,
    pub mode: Option<String>,
    pub cac: Option<f64>,
    pub num_turns: i64,
    pub num_tool_calls: i64,
    pub num_tokens: i64,
    pub reward: Option<f64>,
    pub preview: Option<String>,
}

/// A page of the list.
#[derive(Debug, Serialize)]
pub struct Page {
    pub rows: Vec<ListRow>,
    pub page: usize,
    pub per_page: usize,
    pub has_next: bool,
    /// The query that produced the page, to take to the SQL console.
    pub sql: String,
    pub elapsed_ms: u64,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn number(name: &str, v: &Option<String>) -> ApiResult<Option<f64>> {
    given(v)
        .map(|s| {
            s.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| ApiError::bad_request(format!("{name}: `{s}` is not a number")))
        })
        .transpose()
}

fn equals(column: &str, value: &str) -> String {
    if value == NONE_LABEL {
        format!("{column} IS NULL")
    } else {
        format!("{column} = {}", string_literal(value))
    }
}

/// The text the free-text filter looks through, lower-cased: the id, the system prompt and
/// every message's content, reasoning, tool names and arguments.
const TEXT_OF_TRAJECTORY: &str = "lower(concat_ws(' ', traj_id, system, messages_text(messages)))";

/// The SQL conditions of a filter over the index (the text and the custom condition become
/// sub-queries of `trajectories` when they need its columns).
pub async fn conditions(app: &App, f: &Filter) -> ApiResult<Vec<String>> {
    let mut out = vec![];
    for (column, v) in [
        ("domain", &f.domain),
        ("mode", &f.mode),
        ("cluster_id", &f.cluster),
        ("source", &f.source),
    ] {
        if let Some(v) = given(v) {
            out.push(equals(column, v));
        }
    }
    if let Some(r) = given(&f.round) {
        let r: i32 = r
            .parse()
            .map_err(|_| ApiError::bad_request(format!("round: `{r}` is not a round number")))?;
        out.push(format!("\"round\" = {r}"));
    }
    for (column, op, name, v) in [
        ("reward", ">=", "reward_min", &f.reward_min),
        ("reward", "<=", "reward_max", &f.reward_max),
        ("cac", ">=", "cac_min", &f.cac_min),
        ("cac", "<=", "cac_max", &f.cac_max),
    ] {
        if let Some(x) = number(name, v)? {
            out.push(format!("{column} {op} {x:?}"));
        }
    }
    if let Some(q) = given(&f.q) {
        out.push(format!(
            "traj_id IN (SELECT traj_id FROM trajectories WHERE strpos({TEXT_OF_TRAJECTORY}, {}) > 0)",
            string_literal(&q.to_lowercase())
        ));
    }
    if let Some(w) = given(&f.where_sql) {
        out.push(custom_condition(app, w).await?);
    }
    Ok(out)
}

/// A condition the user wrote: over the index when its columns suffice, else over every
/// column of `trajectories` (plus `mode` and `cac`), which reads the files.
async fn custom_condition(app: &App, w: &str) -> ApiResult<String> {
    let on_index = format!("({w})");
    let probe = format!("SELECT count(*) FROM {INDEX_TABLE} WHERE {on_index}");
    if super::guard::check(&probe).is_ok() && plans(app, &probe).await.is_ok() {
        return Ok(on_index);
    }
    let on_files = format!(
        "traj_id IN (SELECT traj_id FROM (SELECT *, coalesce(reasoning_mode, reasoning_mode(messages)) AS mode, action_complexity(messages) AS cac FROM trajectories) WHERE ({w}))"
    );
    let probe = format!("SELECT count(*) FROM {INDEX_TABLE} WHERE {on_files}");
    super::guard::check(&probe).map_err(|e| {
        let mut e = ApiError::from(e);
        e.message = format!("where: {}", e.message);
        e
    })?;
    plans(app, &probe)
        .await
        .map_err(|e| ApiError::bad_request(format!("where: {}", e.message)))?;
    Ok(on_files)
}

/// Whether a statement plans (nothing runs).
async fn plans(app: &App, sql: &str) -> ApiResult<()> {
    app.limited(|ctx| async move {
        ctx.sql_with_options(sql, super::read_only_options())
            .await?;
        Ok(())
    })
    .await
}

fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

/// The page the filter asks for.
pub async fn page(app: &App, f: &Filter) -> ApiResult<Page> {
    let started = std::time::Instant::now();
    let conds = conditions(app, f).await?;
    let sort = given(&f.sort).unwrap_or("traj_id");
    if !SORTS.contains(&sort) {
        return Err(ApiError::bad_request(format!(
            "sort: `{sort}` is not one of {}",
            SORTS.join(", ")
        )));
    }
    let desc = matches!(given(&f.desc), Some("1" | "true" | "yes"));
    let page: usize =
        match given(&f.page) {
            None => 1,
            Some(p) => p.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                ApiError::bad_request(format!("page: `{p}` is not a page number"))
            })?,
        };
    let per_page: usize = match given(&f.per_page) {
        None => 50,
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| (1..=500).contains(p))
            .ok_or_else(|| ApiError::bad_request(format!("per_page: `{p}` is not 1..500")))?,
    };
    let order = if sort == "traj_id" {
        format!("traj_id {}", if desc { "DESC" } else { "ASC" })
    } else {
        format!(
            "\"{sort}\" {} NULLS LAST, traj_id",
            if desc { "DESC" } else { "ASC" }
        )
    };
    let sql = format!(
        "SELECT traj_id, \"round\", source, domain, cluster_id, parent_id, mode, cac, num_turns, num_tool_calls, num_tokens, reward, preview FROM {INDEX_TABLE}{} ORDER BY {order} LIMIT {} OFFSET {}",
        where_clause(&conds),
        per_page + 1,
        (page - 1) * per_page
    );
    super::guard::check(&sql)?;
    let result = app.query(&sql, None, None).await?;
    let mut rows: Vec<ListRow> = crate::store::rows::from_batches(&result.batches)?;
    let has_next = rows.len() > per_page;
    rows.truncate(per_page);
    Ok(Page {
        rows,
        page,
        per_page,
        has_next,
        sql,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// How many trajectories the filter matches.
pub async fn count(app: &App, f: &Filter) -> ApiResult<u64> {
    let conds = conditions(app, f).await?;
    let sql = format!(
        "SELECT count(*) AS n FROM {INDEX_TABLE}{}",
        where_clause(&conds)
    );
    super::guard::check(&sql)?;
    let result = app.query(&sql, None, None).await?;
    let n = result
        .batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| crate::query::cells::i64_at(b, "n", 0))
        .transpose()?
        .unwrap_or(0);
    Ok(n as u64)
}
