//! `tdscale ablation`: joins the user's evaluation scores to the subsets of a budget run and
//! shows whether diversity beats quantity: score by budget × strategy, score against diversity,
//! and an HTML plot of score and DE against budget, one line per strategy.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::query::cells::{f64_at, i64_at, str_at};
use crate::query::{run_sql, session};
use crate::report::svg;

/// One cell of the ablation table: a strategy at a budget on a benchmark, over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub benchmark: String,
    pub strategy: String,
    pub budget: i64,
    pub score_mean: f64,
    pub score_sd: Option<f64>,
    pub runs: i64,
    pub de_bits: f64,
    pub rme_bits: f64,
}

/// Correlation of score with diversity on one benchmark, over all scored subsets.
#[derive(Debug, Clone, Serialize)]
pub struct Correlation {
    pub benchmark: String,
    pub subsets: i64,
    pub score_vs_de: Option<f64>,
    pub score_vs_rme: Option<f64>,
}

/// The ablation.
#[derive(Debug, Clone, Serialize)]
pub struct Ablation {
    pub cells: Vec<Cell>,
    pub correlations: Vec<Correlation>,
    /// Score rows whose subset is not in the run.
    pub unmatched: Vec<String>,
}

/// Reads a run folder (or s3:// prefix) and a scores file (CSV with a header, JSON array, or
/// JSON lines; columns `subset`, `benchmark`, `score`).
pub async fn build(run: &str, scores: &str) -> Result<Ablation> {
    let ctx = session::bare_context();
    let summary = format!("{}/summary.parquet", run.trim_end_matches('/'));
    ctx.register_parquet("summary", &summary, Default::default())
        .await
        .map_err(|e| {
            Error::Usage(format!(
                "cannot read {summary}: {e}. Is `{run}` the --out of a `tdscale budget` run?"
            ))
        })?;
    let lower = scores.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        ctx.register_csv("scores", scores, Default::default())
            .await?;
    } else {
        let text = std::fs::read_to_string(scores).map_err(|e| Error::io(scores, e))?;
        // A JSON array becomes JSON lines so one reader serves both.
        let lines = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            _ => text,
        };
        let tmp = tempfile_path();
        std::fs::write(&tmp, lines).map_err(|e| Error::io(&tmp, e))?;
        let options = datafusion::prelude::JsonReadOptions {
            file_extension: "",
            ..Default::default()
        };
        ctx.register_json("scores", tmp.to_str().unwrap_or_default(), options)
            .await?;
    }
    for col in ["subset", "benchmark", "score"] {
        let ok = ctx
            .table("scores")
            .await?
            .schema()
            .has_column_with_unqualified_name(col);
        if !ok {
            return Err(Error::Usage(format!(
                "the scores file needs columns subset, benchmark, score; `{col}` is missing"
            )));
        }
    }
    let mut cells = vec![];
    for b in run_sql(&ctx, include_str!("../../queries/ablation_table.sql"))
        .await?
        .pop()
        .map(|r| r.1)
        .unwrap_or_default()
    {
        for r in 0..b.num_rows() {
            cells.push(Cell {
                benchmark: str_at(&b, "benchmark", r)?,
                strategy: str_at(&b, "strategy", r)?,
                budget: i64_at(&b, "budget", r)?,
                score_mean: f64_at(&b, "score_mean", r)?.unwrap_or(f64::NAN),
                score_sd: f64_at(&b, "score_sd", r)?,
                runs: i64_at(&b, "runs", r)?,
                de_bits: f64_at(&b, "de_bits", r)?.unwrap_or(0.0),
                rme_bits: f64_at(&b, "rme_bits", r)?.unwrap_or(0.0),
            });
        }
    }
    let mut correlations = vec![];
    for b in run_sql(&ctx, include_str!("../../queries/ablation_correlation.sql"))
        .await?
        .pop()
        .map(|r| r.1)
        .unwrap_or_default()
    {
        for r in 0..b.num_rows() {
            correlations.push(Correlation {
                benchmark: str_at(&b, "benchmark", r)?,
                subsets: i64_at(&b, "subsets", r)?,
                score_vs_de: f64_at(&b, "score_vs_de", r)?,
                score_vs_rme: f64_at(&b, "score_vs_rme", r)?,
            });
        }
    }
    let mut unmatched = vec![];
    for b in run_sql(&ctx, "SELECT DISTINCT CAST(subset AS VARCHAR) AS subset FROM scores WHERE CAST(subset AS VARCHAR) NOT IN (SELECT name FROM summary) ORDER BY 1").await?.pop().map(|r| r.1).unwrap_or_default() {
        for r in 0..b.num_rows() {
            unmatched.push(str_at(&b, "subset", r)?);
        }
    }
    if cells.is_empty() {
        return Err(Error::Usage(format!(
            "no score matches a subset of {run}; subsets are named like `stratified-b500-s0`"
        )));
    }
    Ok(Ablation {
        cells,
        correlations,
        unmatched,
    })
}

fn tempfile_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "tdscale-scores-{}-{}.jsonl",
        std::process::id(),
        crate::store::writer::run_id()
    ))
}

fn by_benchmark(a: &Ablation) -> BTreeMap<&str, Vec<&Cell>> {
    let mut m: BTreeMap<&str, Vec<&Cell>> = BTreeMap::new();
    for c in &a.cells {
        m.entry(&c.benchmark).or_default().push(c);
    }
    m
}

/// The terminal rendering: per benchmark, strategies × budgets with mean ± sd over seeds.
pub fn to_text(a: &Ablation) -> String {
    let mut s = String::new();
    for (bench, cells) in by_benchmark(a) {
        let mut budgets: Vec<i64> = cells.iter().map(|c| c.budget).collect();
        budgets.sort();
        budgets.dedup();
        let _ = writeln!(
            s,
            "benchmark {bench}: score (mean ± sd over seeds) by budget"
        );
        let _ = write!(s, "{:<16}", "strategy");
        for b in &budgets {
            let _ = write!(s, " {:>16}", b);
        }
        let _ = writeln!(s);
        let mut strategies: Vec<&str> = cells.iter().map(|c| c.strategy.as_str()).collect();
        strategies.dedup();
        strategies.sort_by_key(|st| {
            super::Strategy::ALL
                .iter()
                .position(|x| x.name() == *st)
                .unwrap_or(99)
        });
        strategies.dedup();
        for st in strategies {
            let _ = write!(s, "{st:<16}");
            for b in &budgets {
                match cells.iter().find(|c| c.strategy == st && c.budget == *b) {
                    Some(c) => {
                        let sd = c.score_sd.map(|x| format!(" ± {x:.3}")).unwrap_or_default();
                        let _ = write!(s, " {:>16}", format!("{:.3}{sd}", c.score_mean));
                    }
                    None => {
                        let _ = write!(s, " {:>16}", "-");
                    }
                }
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    for c in &a.correlations {
        let f = |x: Option<f64>| x.map(|v| format!("{v:+.3}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "benchmark {}: correlation of score with DE {} and with RME {} over {} subsets",
            c.benchmark,
            f(c.score_vs_de),
            f(c.score_vs_rme),
            c.subsets
        );
    }
    if !a.unmatched.is_empty() {
        let _ = writeln!(
            s,
            "scores for unknown subsets (ignored): {}",
            a.unmatched.join(", ")
        );
    }
    s
}

/// The HTML page: per benchmark, score and DE against budget, one line per strategy.
pub fn to_html(a: &Ablation) -> String {
    const COLOURS: [&str; 6] = [
        "#7f7f7f", "#bcbd22", "#1f77b4", "#d62728", "#9467bd", "#2ca02c",
    ];
    let mut s = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tdscale ablation</title><style>body{font-family:system-ui,sans-serif;margin:2em}figure{display:inline-block;margin:8px;border:1px solid #ddd;padding:8px}pre{background:#f6f6f6;padding:8px}</style></head><body><h1>Ablation: diversity versus quantity</h1>",
    );
    let _ = write!(
        s,
        "<pre>{}</pre>",
        to_text(a).replace('&', "&amp;").replace('<', "&lt;")
    );
    for (bench, cells) in by_benchmark(a) {
        let mut names: Vec<String> = vec![];
        let mut score_series: Vec<(String, Vec<(f64, f64)>)> = vec![];
        let mut de_series: Vec<(String, Vec<(f64, f64)>)> = vec![];
        for st in super::Strategy::ALL {
            let mut pts: Vec<&&Cell> = cells.iter().filter(|c| c.strategy == st.name()).collect();
            if pts.is_empty() {
                continue;
            }
            pts.sort_by_key(|c| c.budget);
            names.push(st.name().to_string());
            score_series.push((
                st.name().to_string(),
                pts.iter()
                    .map(|c| (c.budget as f64, c.score_mean))
                    .collect(),
            ));
            de_series.push((
                st.name().to_string(),
                pts.iter().map(|c| (c.budget as f64, c.de_bits)).collect(),
            ));
        }
        let colour = |i: usize| COLOURS[i % COLOURS.len()];
        let scores: Vec<svg::Series> = score_series
            .iter()
            .enumerate()
            .map(|(i, (n, p))| (n.as_str(), colour(i), p.clone()))
            .collect();
        let des: Vec<svg::Series> = de_series
            .iter()
            .enumerate()
            .map(|(i, (n, p))| (n.as_str(), colour(i), p.clone()))
            .collect();
        let _ = write!(
            s,
            "<h2>{}</h2><figure>{}</figure><figure>{}</figure>",
            bench.replace('<', "&lt;"),
            svg::lines(
                &format!("{bench}: score by budget"),
                "budget",
                "score",
                &scores
            ),
            svg::lines("domain entropy by budget", "budget", "DE (bits)", &des)
        );
    }
    s.push_str("</body></html>\n");
    s
}
