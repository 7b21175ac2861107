//! `tdscale report`: the diversity report of a corpus, per group (round, domain, source or
//! cluster): counts, DE, RME (bits and normalised), CAC percentiles, the top reasoning modes and
//! the long tail. Every number comes from the SQL plans in `queries/report_*.sql`; this module
//! only arranges them, takes CAC percentiles from an HDR histogram, and renders the result as a
//! terminal table, JSON or HTML with SVG charts.

pub mod html;
pub mod svg;

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::query::cells::{f64_at, f64s, i64_at, str_at, strs};
use crate::query::session::CorpusSession;
use crate::query::{params, run_sql};

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Round,
    Domain,
    Source,
    Cluster,
}

impl GroupBy {
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Round => "round",
            GroupBy::Domain => "domain",
            GroupBy::Source => "source",
            GroupBy::Cluster => "cluster",
        }
    }

    fn column(self) -> &'static str {
        match self {
            GroupBy::Round => "\"round\"",
            GroupBy::Domain => "domain",
            GroupBy::Source => "source",
            GroupBy::Cluster => "cluster_id",
        }
    }
}

crate::choice::impl_choice!(
    GroupBy,
    [
        GroupBy::Round,
        GroupBy::Domain,
        GroupBy::Source,
        GroupBy::Cluster
    ]
);

/// A reasoning mode and how many trajectories follow it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModeCount {
    pub mode: String,
    pub trajectories: u64,
}

/// The report of one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub trajectories: u64,
    /// Trajectories with no domain label (ignored by DE).
    pub unlabeled_domain: u64,
    pub de_bits: Option<f64>,
    pub de_normalized: Option<f64>,
    pub rme_bits: Option<f64>,
    pub rme_normalized: Option<f64>,
    pub modes: u64,
    pub domains: u64,
    pub cac_mean: Option<f64>,
    pub cac_p50: f64,
    pub cac_p90: f64,
    pub cac_p99: f64,
    pub tool_calls: i64,
    pub tokens: i64,
    /// The five most frequent modes.
    pub top_modes: Vec<ModeCount>,
    /// How many of the least frequent modes together hold the last 20 % of trajectories (the
    /// modes left once the most frequent ones cover 80 %).
    pub tail_modes: u64,
    /// Share of trajectories in those tail modes.
    pub tail_share: f64,
}

/// One row of the per-round diversity table.
#[derive(Debug, Clone, Serialize)]
pub struct RoundRow {
    pub round: i64,
    pub trajectories: u64,
    pub de_bits: Option<f64>,
    pub rme_bits: Option<f64>,
    pub modes: u64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub corpus: String,
    pub by: GroupBy,
    pub trajectories: u64,
    pub groups: Vec<GroupReport>,
    /// Modes of the whole corpus, most frequent first (the rank-frequency chart).
    pub rank_frequency: Vec<ModeCount>,
    pub by_round: Vec<RoundRow>,
    /// CAC distribution of the whole corpus: (bin start, bin end, trajectories).
    pub cac_histogram: Vec<(f64, f64, u64)>,
}

const CAC_SCALE: f64 = 1000.0;

/// The long tail of a mode distribution sorted most frequent first: (tail modes, tail share).
///
/// ```
/// use tdscale::report::{long_tail, ModeCount};
/// let m = |n| ModeCount { mode: String::new(), trajectories: n };
/// // 100 trajectories: the first two modes hold 80, the other three hold the last 20.
/// assert_eq!(long_tail(&[m(60), m(20), m(10), m(6), m(4)]), (3, 0.2));
/// ```
pub fn long_tail(modes: &[ModeCount]) -> (u64, f64) {
    let total: u64 = modes.iter().map(|m| m.trajectories).sum();
    if total == 0 {
        return (0, 0.0);
    }
    let mut covered = 0u64;
    let mut head = 0;
    for m in modes {
        if covered as f64 >= 0.8 * total as f64 {
            break;
        }
        covered += m.trajectories;
        head += 1;
    }
    (
        (modes.len() - head) as u64,
        (total - covered) as f64 / total as f64,
    )
}

/// Computes the report of a corpus grouped by `by`, in its session (embedded or on a cluster).
pub async fn build(session: &CorpusSession, by: GroupBy) -> Result<Report> {
    build_on(session.ctx(), by, session.corpus().display()).await
}

/// Computes the report in any session that has the corpus's tables and the tdscale functions.
pub async fn build_on(
    ctx: &datafusion::prelude::SessionContext,
    by: GroupBy,
    corpus_name: &str,
) -> Result<Report> {
    let p = HashMap::from([("by".to_string(), by.column().to_string())]);
    let sql = |text: &str| params::substitute(text, &p);
    let one = |mut r: Vec<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)>| {
        r.pop().map(|x| x.1).unwrap_or_default()
    };

    let mut modes: BTreeMap<String, Vec<ModeCount>> = BTreeMap::new();
    for b in one(run_sql(ctx, &sql(include_str!("../../queries/report_modes.sql"))?).await?) {
        for i in 0..b.num_rows() {
            modes
                .entry(str_at(&b, "grp", i)?)
                .or_default()
                .push(ModeCount {
                    mode: str_at(&b, "mode", i)?,
                    trajectories: i64_at(&b, "n", i)? as u64,
                });
        }
    }

    let mut hists: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut all = Histogram::<u64>::new(3).map_err(|e| Error::Other(e.to_string()))?;
    let df = ctx
        .sql(&sql(include_str!("../../queries/report_cac.sql"))?)
        .await?;
    let mut stream = df.execute_stream().await?;
    while let Some(b) = stream.next().await {
        let b = b?;
        // Columns are read once per batch: this loop sees every trajectory.
        for (cac, grp) in f64s(&b, "cac")?.into_iter().zip(strs(&b, "grp")?) {
            let v = (cac.unwrap_or(0.0) * CAC_SCALE).round().max(0.0) as u64;
            if !hists.contains_key(&grp) {
                hists.insert(
                    grp.clone(),
                    Histogram::new(3).map_err(|e| Error::Other(e.to_string()))?,
                );
            }
            let h = hists.get_mut(&grp).expect("inserted above");
            h.record(v).map_err(|e| Error::Other(e.to_string()))?;
            all.record(v).map_err(|e| Error::Other(e.to_string()))?;
        }
    }
    let pct = |h: Option<&Histogram<u64>>, q: f64| {
        h.filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q) as f64 / CAC_SCALE)
            .unwrap_or(0.0)
    };

    let mut groups = vec![];
    let mut total = 0;
    for b in one(run_sql(ctx, &sql(include_str!("../../queries/report_groups.sql"))?).await?) {
        for i in 0..b.num_rows() {
            let group = str_at(&b, "grp", i)?;
            let ms = modes.remove(&group).unwrap_or_default();
            let (tail_modes, tail_share) = long_tail(&ms);
            let h = hists.get(&group);
            let trajectories = i64_at(&b, "trajectories", i)? as u64;
            total += trajectories;
            groups.push(GroupReport {
                trajectories,
                unlabeled_domain: i64_at(&b, "unlabeled_domain", i)? as u64,
                de_bits: f64_at(&b, "de_bits", i)?,
                de_normalized: f64_at(&b, "de_normalized", i)?,
                rme_bits: f64_at(&b, "rme_bits", i)?,
                rme_normalized: f64_at(&b, "rme_normalized", i)?,
                modes: i64_at(&b, "modes", i)? as u64,
                domains: i64_at(&b, "domains", i)? as u64,
                cac_mean: f64_at(&b, "cac_mean", i)?,
                cac_p50: pct(h, 0.5),
                cac_p90: pct(h, 0.9),
                cac_p99: pct(h, 0.99),
                tool_calls: i64_at(&b, "tool_calls", i)?,
                tokens: i64_at(&b, "tokens", i)?,
                top_modes: ms.iter().take(5).cloned().collect(),
                tail_modes,
                tail_share,
                group,
            });
        }
    }
    // Sort numerically when grouping by round.
    if by == GroupBy::Round {
        groups.sort_by_key(|g| g.group.parse::<i64>().unwrap_or(i64::MAX));
    }

    let mut overall: HashMap<String, u64> = HashMap::new();
    for b in one(run_sql(
        ctx,
        "SELECT mode, count(*) AS n FROM trajectory_metrics GROUP BY mode",
    )
    .await?)
    {
        for i in 0..b.num_rows() {
            *overall.entry(str_at(&b, "mode", i)?).or_default() += i64_at(&b, "n", i)? as u64;
        }
    }
    let mut rank_frequency: Vec<ModeCount> = overall
        .into_iter()
        .map(|(mode, trajectories)| ModeCount { mode, trajectories })
        .collect();
    rank_frequency.sort_by(|a, b| {
        b.trajectories
            .cmp(&a.trajectories)
            .then(a.mode.cmp(&b.mode))
    });

    let mut by_round = vec![];
    for b in one(run_sql(ctx, include_str!("../../queries/diversity_by_round.sql")).await?) {
        for i in 0..b.num_rows() {
            by_round.push(RoundRow {
                round: i64_at(&b, "round", i)?,
                trajectories: i64_at(&b, "trajectories", i)? as u64,
                de_bits: f64_at(&b, "de_bits", i)?,
                rme_bits: f64_at(&b, "rme_bits", i)?,
                modes: i64_at(&b, "modes", i)? as u64,
            });
        }
    }

    Ok(Report {
        corpus: corpus_name.to_string(),
        by,
        trajectories: total,
        groups,
        rank_frequency,
        by_round,
        cac_histogram: histogram_bins(&all, 24),
    })
}

/// Bins an HDR histogram into `n` equal bins from 0 to its 99.9th percentile (the last bin
/// takes everything above).
fn histogram_bins(h: &Histogram<u64>, n: usize) -> Vec<(f64, f64, u64)> {
    if h.is_empty() {
        return vec![];
    }
    let hi = (h.value_at_quantile(0.999) as f64 / CAC_SCALE).max(1.0);
    let width = hi / n as f64;
    let mut bins: Vec<(f64, f64, u64)> = (0..n)
        .map(|i| (i as f64 * width, (i + 1) as f64 * width, 0))
        .collect();
    for v in h.iter_recorded() {
        let x = v.value_iterated_to() as f64 / CAC_SCALE;
        let i = ((x / width) as usize).min(n - 1);
        bins[i].2 += v.count_since_last_iteration();
    }
    bins
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

/// The terminal rendering.
pub fn to_text(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "diversity report of {} ({} trajectories) by {:?}\n",
        r.corpus, r.trajectories, r.by
    );
    let _ = writeln!(
        s,
        "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>6}",
        "group",
        "trajs",
        "DE",
        "DE/max",
        "RME",
        "RME/max",
        "modes",
        "CAC p50",
        "CAC p90",
        "CAC p99",
        "tail"
    );
    for g in &r.groups {
        let name: String = g.group.chars().take(24).collect();
        let _ = writeln!(
            s,
            "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>6}",
            name,
            g.trajectories,
            fmt_opt(g.de_bits),
            fmt_opt(g.de_normalized),
            fmt_opt(g.rme_bits),
            fmt_opt(g.rme_normalized),
            g.modes,
            g.cac_p50,
            g.cac_p90,
            g.cac_p99,
            g.tail_modes
        );
    }
    let _ = writeln!(
        s,
        "\nDE, RME in bits; /max normalised by log2 of the distinct values; tail = modes holding the last 20% of trajectories"
    );
    for g in &r.groups {
        let top: Vec<String> = g
            .top_modes
            .iter()
            .map(|m| {
                format!(
                    "{} ({})",
                    if m.mode.is_empty() { "''" } else { &m.mode },
                    m.trajectories
                )
            })
            .collect();
        let _ = writeln!(s, "top modes of {}: {}", g.group, top.join(", "));
    }
    s
}
