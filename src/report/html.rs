//! The HTML rendering of a report: one self-contained page with tables and SVG charts.

use std::fmt::Write;

use super::{ModeCount, Report, svg};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cell(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

/// Renders the page.
/// The points of the modes' rank-frequency plot: (rank from 1, trajectories, mode).
pub fn rank_points(modes: &[ModeCount]) -> Vec<(f64, f64, String)> {
    modes
        .iter()
        .enumerate()
        .map(|(i, m)| ((i + 1) as f64, m.trajectories as f64, m.mode.clone()))
        .collect()
}

/// The lines of the entropy-by-round plot: DE and RME per round.
pub fn entropy_series(r: &Report) -> [svg::Series<'static>; 2] {
    let series = |bits: fn(&super::RoundRow) -> Option<f64>| {
        r.by_round
            .iter()
            .map(|x| (x.round as f64, bits(x).unwrap_or(0.0)))
            .collect()
    };
    [
        ("DE", "#4472c4", series(|x| x.de_bits)),
        ("RME", "#c0504d", series(|x| x.rme_bits)),
    ]
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tdscale report: {c}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right;font-size:13px}}th{{background:#f3f3f3}}td:first-child{{text-align:left}}
.charts{{display:flex;flex-wrap:wrap;gap:16px}}figure{{margin:0;border:1px solid #ddd;padding:8px}}figcaption{{font-size:13px;color:#555}}
code{{background:#f6f6f6;padding:1px 4px}}</style></head><body>
<h1>Diversity report</h1><p>Corpus <code>{c}</code>: {n} trajectories, grouped by {by:?}. DE and RME in bits; “/max” is the entropy divided by log2 of the number of distinct values.</p>"#,
        c = esc(&r.corpus),
        n = r.trajectories,
        by = r.by
    );
    s.push_str("<table><tr><th>group</th><th>trajectories</th><th>DE</th><th>DE/max</th><th>RME</th><th>RME/max</th><th>modes</th><th>CAC mean</th><th>CAC p50</th><th>CAC p90</th><th>CAC p99</th><th>tail modes (last 20%)</th><th>top modes</th></tr>");
    for g in &r.groups {
        let top: Vec<String> = g
            .top_modes
            .iter()
            .map(|m| format!("<code>{}</code> {}", esc(&m.mode), m.trajectories))
            .collect();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            esc(&g.group),
            g.trajectories,
            cell(g.de_bits),
            cell(g.de_normalized),
            cell(g.rme_bits),
            cell(g.rme_normalized),
            g.modes,
            cell(g.cac_mean),
            g.cac_p50,
            g.cac_p90,
            g.cac_p99,
            g.tail_modes,
            top.join("<br>")
        );
    }
    s.push_str("</table><div class=\"charts\">");
    let _ = write!(
        s,
        "<figure>{}<figcaption>Cumulative Action Complexity of the trajectories</figcaption></figure>",
        svg::histogram("CAC distribution", "CAC", &r.cac_histogram)
    );
    let points = rank_points(&r.rank_frequency);
    let _ = write!(
        s,
        "<figure>{}<figcaption>Reasoning modes by rank (log-log): a straight line is a Zipf tail</figcaption></figure>",
        svg::log_log("Mode rank-frequency", "rank", "trajectories", &points)
    );
    let _ = write!(
        s,
        "<figure>{}<figcaption>Entropy by evolution round</figcaption></figure>",
        svg::lines("Entropy by round", "round", "bits", &entropy_series(r))
    );
    s.push_str("</div></body></html>\n");
    s
}
