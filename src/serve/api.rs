//! The JSON API under `/api/`, one route per page (and the SQL console's run and download).
//! Every query goes through [`App::query`] or [`App::limited`]: read-only, under the timeout
//! and the memory limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_json::{Value, json};

use super::browse::{self, Filter, NONE_LABEL};
use super::index::{self, INDEX_TABLE};
use super::{ApiError, ApiResult, App, chat, guard};
use crate::choice::Choice;
use crate::query::params::string_literal;
use crate::report::{GroupBy, html, svg};
use crate::store::{rows, tables};

type AppState = State<Arc<App>>;

/// The API's routes (nested under `/api`).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/status", get(status))
        .route("/refresh", post(refresh))
        .route("/overview", get(overview))
        .route("/report", get(report))
        .route("/facets", get(facets))
        .route("/trajectories", get(trajectories))
        .route("/trajectories/count", get(trajectories_count))
        .route("/trajectory", get(trajectory))
        .route("/rejected", get(rejected))
        .route("/rounds", get(rounds))
        .route("/clusters", get(clusters))
        .route("/cluster", get(cluster))
        .route("/sql", post(sql))
        .route("/sql/download", get(download))
        .fallback(|| async { ApiError::not_found("no such API route") })
}

/// Rows of a result as JSON objects.
fn json_rows(batches: &[RecordBatch]) -> ApiResult<Vec<Value>> {
    Ok(rows::from_batches(batches)?)
}

async fn rows_of(app: &App, sql: &str) -> ApiResult<Vec<Value>> {
    let r = app.query(sql, None, None).await?;
    json_rows(&r.batches)
}

/// A query string of one browser filter.
fn filter_link(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn status(State(app): AppState) -> Json<Value> {
    Json(json!({
        "corpus": app.session.corpus().display(),
        "index": app.index.status(),
        "read_only": true,
    }))
}

async fn refresh(State(app): AppState) -> ApiResult<Json<Value>> {
    let changed = index::refresh_now(&app).await?;
    Ok(Json(
        json!({ "changed": changed, "index": app.index.status() }),
    ))
}

async fn overview(State(app): AppState) -> ApiResult<Json<Value>> {
    let corpus = app.session.corpus();
    let mut out = vec![];
    for t in tables::ALL {
        let files = corpus.list_table(t).await?;
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        let rows = if files.is_empty() {
            0
        } else {
            let r = app
                .query(
                    &format!("SELECT count(*) AS n FROM \"{}\"", t.name),
                    None,
                    None,
                )
                .await?;
            r.batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .map(|b| crate::query::cells::i64_at(b, "n", 0))
                .transpose()?
                .unwrap_or(0)
        };
        out.push(json!({ "name": t.name, "files": files.len(), "bytes": bytes, "rows": rows }));
    }
    Ok(Json(json!({
        "corpus": corpus.display(),
        "tables": out,
        "views": ["tool_calls", "trajectory_metrics", INDEX_TABLE],
        "index": app.index.status(),
    })))
}

#[derive(Deserialize)]
struct ByQuery {
    by: Option<String>,
}

/// The filter key of a report grouping.
fn group_key(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Round => "round",
        GroupBy::Domain => "domain",
        GroupBy::Source => "source",
        GroupBy::Cluster => "cluster",
    }
}

async fn report(State(app): AppState, Query(q): Query<ByQuery>) -> ApiResult<Json<Value>> {
    let by = GroupBy::parse_name(q.by.as_deref().unwrap_or("round"), "grouping")?;
    let key = format!("report:{}", by.name());
    let app2 = app.clone();
    let v = app
        .cached(&key, || async move {
            let name = app2.session.corpus().display().to_string();
            let r = app2
                .limited(|ctx| async move { Ok(crate::report::build_on(&ctx, by, &name).await?) })
                .await?;
            Ok(report_json(&r))
        })
        .await?;
    Ok(Json(v.as_ref().clone()))
}

/// The report with its charts, each mark leading to the trajectories it counts.
fn report_json(r: &crate::report::Report) -> Value {
    let key = group_key(r.by);
    let bars: Vec<(String, f64)> = r
        .groups
        .iter()
        .map(|g| (g.group.clone(), g.trajectories as f64))
        .collect();
    let fmt = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into());
    let groups = svg::hbars(
        &format!("Trajectories by {key}"),
        "trajectories",
        &bars,
        &|i| {
            let g = &r.groups[i];
            format!(
                " — DE {} bits, RME {} bits, CAC p50 {:.2}",
                fmt(g.de_bits),
                fmt(g.rme_bits),
                g.cac_p50
            )
        },
        &|i| Some(filter_link(&[(key, r.groups[i].group.as_str())])),
    );
    let last = r.cac_histogram.len().saturating_sub(1);
    let cac = svg::histogram_linked("CAC distribution", "CAC", &r.cac_histogram, &|i| {
        let (lo, hi, n) = r.cac_histogram[i];
        if n == 0 {
            return None;
        }
        let lo = format!("{lo:.3}");
        let hi = format!("{hi:.3}");
        Some(if i == last {
            filter_link(&[("cac_min", &lo)])
        } else {
            filter_link(&[("cac_min", &lo), ("cac_max", &hi)])
        })
    });
    // The first thousand modes: the tail beyond is a flat line of ones.
    let shown = &r.rank_frequency[..r.rank_frequency.len().min(1000)];
    let points = html::rank_points(shown);
    let modes = svg::log_log_linked(
        "Mode rank-frequency",
        "rank",
        "trajectories",
        &points,
        &|i| Some(filter_link(&[("mode", shown[i].mode.as_str())])),
    );
    let rounds = svg::lines_linked(
        "Entropy by round",
        "round",
        "bits",
        &html::entropy_series(r),
        &|x| Some(filter_link(&[("round", &x.to_string())])),
    );
    json!({
        "report": r,
        "filter_key": key,
        "charts": { "groups": groups, "cac": cac, "modes": modes, "rounds": rounds },
    })
}

async fn facets(State(app): AppState) -> ApiResult<Json<Value>> {
    let app2 = app.clone();
    let v = app
        .cached("facets", || async move {
            let mut out = serde_json::Map::new();
            for (name, expr, order) in [
                ("domain", "domain", "n DESC, v"),
                ("mode", "mode", "n DESC, v"),
                ("cluster", "cluster_id", "n DESC, v"),
                ("source", "source", "n DESC, v"),
                ("round", "CAST(\"round\" AS VARCHAR)", "CAST(v AS INT)"),
            ] {
                let sql = format!(
                    "SELECT coalesce({expr}, {none}) AS v, count(*) AS n FROM {INDEX_TABLE} GROUP BY 1 ORDER BY {order} LIMIT 500",
                    none = string_literal(NONE_LABEL)
                );
                let rows = rows_of(&app2, &sql).await?;
                out.insert(name.into(), Value::Array(rows));
            }
            Ok(Value::Object(out))
        })
        .await?;
    Ok(Json(v.as_ref().clone()))
}

async fn trajectories(
    State(app): AppState,
    Query(f): Query<Filter>,
) -> ApiResult<Json<browse::Page>> {
    Ok(Json(browse::page(&app, &f).await?))
}

async fn trajectories_count(
    State(app): AppState,
    Query(f): Query<Filter>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "count": browse::count(&app, &f).await? })))
}

#[derive(Deserialize)]
struct IdQuery {
    id: Option<String>,
}

fn required<'a>(v: &'a Option<String>, what: &str) -> ApiResult<&'a str> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("give the {what}")))
}

async fn trajectory(State(app): AppState, Query(q): Query<IdQuery>) -> ApiResult<Json<Value>> {
    let id = required(&q.id, "trajectory id (?id=…)")?;
    let lit = string_literal(id);
    // The index knows the round: only that partition's files are read.
    let round = rows_of(
        &app,
        &format!("SELECT \"round\" FROM {INDEX_TABLE} WHERE traj_id = {lit} LIMIT 1"),
    )
    .await?;
    let round_cond = round
        .first()
        .and_then(|r| r["round"].as_i64())
        .map(|r| format!(" AND \"round\" = {r}"))
        .unwrap_or_default();
    let result = app
        .query(
            &format!("SELECT * FROM trajectories WHERE traj_id = {lit}{round_cond} LIMIT 1"),
            None,
            None,
        )
        .await?;
    let batch = result
        .batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| ApiError::not_found(format!("no trajectory `{id}` in this corpus")))?;
    let view = chat::view_of(batch)?
        .ok_or_else(|| ApiError::not_found(format!("no trajectory `{id}` in this corpus")))?;
    let lineage = lineage(&app, &view).await?;
    Ok(Json(json!({ "trajectory": view, "lineage": lineage })))
}

/// Where a synthesized trajectory comes from (seed, blueprint, batch), and what came from it.
async fn lineage(app: &App, t: &chat::TrajectoryView) -> ApiResult<Value> {
    let blueprint = match t.metadata.get("blueprint_id").and_then(|b| b.as_str()) {
        Some(bp) => rows_of(
            app,
            &format!(
                "SELECT * FROM blueprints WHERE blueprint_id = {} LIMIT 1",
                string_literal(bp)
            ),
        )
        .await?
        .pop()
        .map(|mut b| {
            // Steps and tools are JSON text: send them as JSON.
            for k in ["steps", "tools"] {
                if let Some(parsed) = b[k].as_str().and_then(|s| serde_json::from_str(s).ok()) {
                    b[k] = parsed;
                }
            }
            b
        }),
        None => None,
    };
    let batch = match &t.batch_id {
        Some(b) => rows_of(
            app,
            &format!(
                "SELECT * FROM batches WHERE batch_id = {} LIMIT 1",
                string_literal(b)
            ),
        )
        .await?
        .pop(),
        None => None,
    };
    let children = rows_of(
        app,
        &format!(
            "SELECT traj_id, \"round\", mode FROM {INDEX_TABLE} WHERE parent_id = {} ORDER BY traj_id LIMIT 50",
            string_literal(&t.traj_id)
        ),
    )
    .await?;
    Ok(json!({
        "parent_id": t.parent_id,
        "blueprint": blueprint,
        "batch": batch,
        "children": children,
    }))
}

#[derive(Deserialize)]
struct RejectedQuery {
    batch: Option<String>,
    seed: Option<String>,
}

async fn rejected(State(app): AppState, Query(q): Query<RejectedQuery>) -> ApiResult<Json<Value>> {
    let batch = required(&q.batch, "batch id (?batch=…)")?;
    let seed = required(&q.seed, "seed id (&seed=…)")?;
    let found = rows_of(
        &app,
        &format!(
            "SELECT batch_id, seed_id, \"round\", stage, reasons, trajectory FROM synthesis_rejects WHERE batch_id = {} AND seed_id = {} LIMIT 1",
            string_literal(batch),
            string_literal(seed)
        ),
    )
    .await?
    .pop()
    .ok_or_else(|| {
        ApiError::not_found(format!("no rejection of seed `{seed}` in batch `{batch}`"))
    })?;
    let view = match found["trajectory"].as_str() {
        Some(text) => {
            let v: Value = serde_json::from_str(text).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the stored rejected trajectory is not JSON: {e}"),
                )
            })?;
            let ctx = crate::formats::ParseContext {
                source: "rejected".into(),
                ..Default::default()
            };
            let t = crate::formats::openai::parse(&ctx, v).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the stored rejected trajectory cannot be read: {e}"),
                )
            })?;
            Some(chat::view_of_trajectory(&t)?)
        }
        None => None,
    };
    Ok(Json(json!({
        "batch_id": found["batch_id"],
        "seed_id": found["seed_id"],
        "round": found["round"],
        "stage": found["stage"],
        "reasons": found["reasons"].as_str().unwrap_or("").split("; ").collect::<Vec<_>>(),
        "trajectory": view,
    })))
}

/// The kind of a rejection reason: its words before the first name, quote or detail
/// (`unknown tool`, `strayed from the blueprint`, `broken dependency`, …).
///
/// ```
/// use tdscale::serve::api::reason_kind;
/// assert_eq!(reason_kind("unknown tool `fly` (call 2)"), "unknown tool");
/// assert_eq!(reason_kind("strayed from the blueprint: called [a] but planned [b]"), "strayed from the blueprint");
/// assert_eq!(reason_kind("no final answer from the assistant"), "no final answer from the assistant");
/// ```
pub fn reason_kind(reason: &str) -> String {
    let cut = reason
        .find(['`', ':', '(', '[', '"'])
        .unwrap_or(reason.len());
    let kind = reason[..cut].trim();
    if kind.is_empty() {
        reason.trim().to_string()
    } else {
        kind.to_string()
    }
}

async fn rounds(State(app): AppState) -> ApiResult<Json<Value>> {
    let rounds_rows: Vec<crate::evolve::rounds::RoundRow> = rows::from_batches(
        &app.query(
            "SELECT * FROM rounds ORDER BY \"round\", finished_at",
            None,
            None,
        )
        .await?
        .batches,
    )?;
    let batches = rows_of(
        &app,
        "SELECT * FROM batches ORDER BY \"round\", finished_at",
    )
    .await?;
    let rejects = rows_of(
        &app,
        "SELECT \"round\", stage, batch_id, seed_id, reasons, trajectory IS NOT NULL AS has_trajectory FROM synthesis_rejects ORDER BY \"round\", batch_id, seed_id LIMIT 100000",
    )
    .await?;
    // (round, stage, kind) → count and the first examples.
    let mut groups: BTreeMap<(i64, String, String), (u64, Vec<Value>)> = BTreeMap::new();
    for r in &rejects {
        let reasons = r["reasons"].as_str().unwrap_or("");
        for reason in reasons.split("; ").filter(|s| !s.is_empty()) {
            let key = (
                r["round"].as_i64().unwrap_or(0),
                r["stage"].as_str().unwrap_or("").to_string(),
                reason_kind(reason),
            );
            let e = groups.entry(key).or_default();
            e.0 += 1;
            // Examples from different seeds show more than one seed's many failures.
            if e.1.len() < 3 && !e.1.iter().any(|x| x["seed_id"] == r["seed_id"]) {
                e.1.push(json!({
                    "batch_id": r["batch_id"],
                    "seed_id": r["seed_id"],
                    "reason": reason,
                    "has_trajectory": r["has_trajectory"],
                }));
            }
        }
    }
    let mut reasons: Vec<Value> = groups
        .into_iter()
        .map(|((round, stage, kind), (n, examples))| {
            json!({ "round": round, "stage": stage, "kind": kind, "count": n, "examples": examples })
        })
        .collect();
    reasons.sort_by(|a, b| {
        a["round"]
            .as_i64()
            .cmp(&b["round"].as_i64())
            .then(b["count"].as_u64().cmp(&a["count"].as_u64()))
    });
    let xs = |f: &dyn Fn(&crate::evolve::rounds::RoundRow) -> Option<f64>| -> Vec<(f64, f64)> {
        rounds_rows
            .iter()
            .filter_map(|r| f(r).map(|y| (r.round as f64, y)))
            .collect()
    };
    let round_link = |x: usize| Some(filter_link(&[("round", &x.to_string())]));
    let entropy = svg::lines_linked(
        "Diversity by round",
        "round",
        "bits",
        &[
            ("DE", "#4472c4", xs(&|r| r.de_bits)),
            ("RME", "#c0504d", xs(&|r| r.rme_bits)),
        ],
        &round_link,
    );
    let cac = svg::lines_linked(
        "CAC percentiles by round",
        "round",
        "CAC",
        &[
            ("p50", "#4472c4", xs(&|r| r.cac_p50)),
            ("p90", "#ed7d31", xs(&|r| r.cac_p90)),
            ("p99", "#c0504d", xs(&|r| r.cac_p99)),
        ],
        &round_link,
    );
    let evolved: Vec<&crate::evolve::rounds::RoundRow> =
        rounds_rows.iter().filter(|r| r.requested > 0).collect();
    let acceptance = svg::hbars(
        "Acceptance by round",
        "accepted share of the requests (%)",
        &evolved
            .iter()
            .map(|r| {
                (
                    format!("round {}", r.round),
                    100.0 * r.acceptance_rate.unwrap_or(0.0),
                )
            })
            .collect::<Vec<_>>(),
        &|i| {
            let r = evolved[i];
            format!(
                "% — {} of {} accepted, {} rejected, {} failed",
                r.accepted, r.requested, r.rejected, r.failed
            )
        },
        &|i| Some(filter_link(&[("round", &evolved[i].round.to_string())])),
    );
    Ok(Json(json!({
        "rounds": rounds_rows,
        "batches": batches,
        "reasons": reasons,
        "charts": { "entropy": entropy, "cac": cac, "acceptance": acceptance },
    })))
}

async fn clusters(State(app): AppState) -> ApiResult<Json<Value>> {
    let list = rows_of(
        &app,
        "SELECT cluster_id, service, domain, size, internal_edges, selected, \"rank\", coverage_gain FROM clusters ORDER BY \"rank\" NULLS LAST, cluster_id LIMIT 5000",
    )
    .await?;
    let used = rows_of(
        &app,
        &format!(
            "SELECT cluster_id, count(*) AS trajectories FROM {INDEX_TABLE} WHERE cluster_id IS NOT NULL GROUP BY 1"
        ),
    )
    .await?;
    let used: BTreeMap<String, Value> = used
        .into_iter()
        .filter_map(|r| {
            Some((
                r["cluster_id"].as_str()?.to_string(),
                r["trajectories"].clone(),
            ))
        })
        .collect();
    let list: Vec<Value> = list
        .into_iter()
        .map(|mut c| {
            let n = c["cluster_id"]
                .as_str()
                .and_then(|id| used.get(id).cloned())
                .unwrap_or(json!(0));
            c["trajectories"] = n;
            c
        })
        .collect();
    // The coverage curve: distinct tools and capabilities covered after each selected cluster.
    let mut covered = 0.0;
    let mut curve = vec![];
    for c in list.iter().filter(|c| c["rank"].is_number()) {
        covered += c["coverage_gain"].as_f64().unwrap_or(0.0);
        curve.push((c["rank"].as_f64().unwrap_or(0.0), covered));
    }
    let chart = svg::lines(
        "Coverage of the selected clusters",
        "clusters selected",
        "tools and capabilities covered",
        &[("covered", "#4472c4", curve)],
    );
    Ok(Json(
        json!({ "clusters": list, "charts": { "coverage": chart } }),
    ))
}

async fn cluster(State(app): AppState, Query(q): Query<IdQuery>) -> ApiResult<Json<Value>> {
    let id = required(&q.id, "cluster id (?id=…)")?;
    let lit = string_literal(id);
    let head = rows_of(
        &app,
        &format!(
            "SELECT cluster_id, service, domain, size, internal_edges, selected, \"rank\", coverage_gain FROM clusters WHERE cluster_id = {lit} LIMIT 1"
        ),
    )
    .await?
    .pop()
    .ok_or_else(|| ApiError::not_found(format!("no cluster `{id}`")))?;
    let tools = rows_of(
        &app,
        &format!(
            "SELECT t.tool_id, t.name, t.description, t.parameters, t.output_schema FROM (SELECT unnest(tool_ids) AS id FROM clusters WHERE cluster_id = {lit}) c JOIN tools t ON t.tool_id = c.id ORDER BY t.name"
        ),
    )
    .await?;
    let edges = rows_of(
        &app,
        &format!(
            "SELECT from_tool, to_tool, field, score, evidence FROM cluster_edges WHERE cluster_id = {lit} ORDER BY score DESC, from_tool, to_tool, field"
        ),
    )
    .await?;
    let trajectories = rows_of(
        &app,
        &format!("SELECT count(*) AS n FROM {INDEX_TABLE} WHERE cluster_id = {lit}"),
    )
    .await?;
    Ok(Json(json!({
        "cluster": head,
        "tools": tools,
        "edges": edges,
        "trajectories": trajectories.first().map(|r| r["n"].clone()).unwrap_or(json!(0)),
    })))
}

#[derive(Deserialize)]
struct SqlBody {
    sql: String,
}

/// Every cell as display text (NULL as `null`), so any type — lists, structs, maps — shows.
fn text_cells(batches: &[RecordBatch]) -> ApiResult<Vec<Vec<Value>>> {
    let options = FormatOptions::default();
    let mut out = vec![];
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        for row in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| {
                        if c.is_null(row) {
                            Value::Null
                        } else {
                            Value::String(f.value(row).to_string())
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

async fn sql(State(app): AppState, Json(body): Json<SqlBody>) -> ApiResult<Json<Value>> {
    guard::check(&body.sql)?;
    let started = std::time::Instant::now();
    let r = app
        .query(&body.sql, Some(app.options.max_rows), None)
        .await?;
    let columns: Vec<Value> = r
        .schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() }))
        .collect();
    let rows = text_cells(&r.batches)?;
    Ok(Json(json!({
        "columns": columns,
        "rows": rows,
        "truncated": r.truncated,
        "max_rows": app.options.max_rows,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    })))
}

#[derive(Deserialize)]
struct DownloadQuery {
    sql: Option<String>,
    format: Option<String>,
}

async fn download(State(app): AppState, Query(q): Query<DownloadQuery>) -> ApiResult<Response> {
    let sql = required(&q.sql, "query (?sql=…)")?;
    guard::check(sql)?;
    let format = q.format.as_deref().unwrap_or("csv");
    if !matches!(format, "csv" | "parquet") {
        return Err(ApiError::bad_request(format!(
            "format: `{format}` is not csv or parquet"
        )));
    }
    let r = app
        .query(sql, None, Some(app.options.max_download_bytes))
        .await?;
    let (bytes, content_type) = if format == "csv" {
        let mut buf = vec![];
        {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buf);
            if r.batches.is_empty() {
                w.write(&RecordBatch::new_empty(r.schema.clone()))?;
            }
            for b in &r.batches {
                w.write(b)?;
            }
        }
        (buf, "text/csv; charset=utf-8")
    } else {
        (
            rows::parquet_bytes(&r.batches, r.schema.clone())?,
            "application/vnd.apache.parquet",
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"result.{format}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
