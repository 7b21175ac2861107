//! Small, dependency-free SVG charts for the HTML report and the `tdscale serve` pages.
//!
//! Each chart has a plain form and a `_linked` form whose marks (bars, points) carry a
//! `data-filter` attribute — a query string of trajectory-browser filters such as
//! `mode=S1%3EA` — that the served page turns into a click-through. All text is escaped.

use std::fmt::Write;

const W: f64 = 600.0;
const H: f64 = 320.0;
const PAD: (f64, f64, f64, f64) = (56.0, 16.0, 24.0, 48.0); // left, right, top, bottom

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What the marks of a linked chart lead to: the filter of mark `i`, if any.
pub type Links<'a> = &'a dyn Fn(usize) -> Option<String>;

/// The attributes of a mark that leads somewhere.
fn mark(filter: Option<String>) -> String {
    match filter {
        Some(f) => format!(r#" class="mark" data-filter="{}""#, esc(&f)),
        None => String::new(),
    }
}

fn frame(title: &str, x_label: &str, y_label: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title><rect width="{W}" height="{H}" fill="#fff"/>"##,
        t = esc(title)
    );
    let (l, r, t, b) = PAD;
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{y}" x2="{x}" y2="{y}" stroke="#333"/>"##,
        y = H - b,
        x = W - r
    );
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{t}" x2="{l}" y2="{y}" stroke="#333"/>"##,
        y = H - b
    );
    let _ = write!(
        s,
        r##"<text x="{x}" y="{y}" font-size="12" text-anchor="middle">{}</text>"##,
        esc(x_label),
        x = (l + W - r) / 2.0,
        y = H - 8.0
    );
    let _ = write!(
        s,
        r##"<text x="14" y="{y}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {y})">{}</text>"##,
        esc(y_label),
        y = (t + H - b) / 2.0
    );
    s
}

fn nice(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A bar chart of (label range start, range end, count).
pub fn histogram(title: &str, x_label: &str, bins: &[(f64, f64, u64)]) -> String {
    histogram_linked(title, x_label, bins, &|_| None)
}

/// [`histogram`] whose bar `i` leads to `links(i)`.
pub fn histogram_linked(
    title: &str,
    x_label: &str,
    bins: &[(f64, f64, u64)],
    links: Links,
) -> String {
    let mut s = frame(title, x_label, "trajectories");
    let (l, r, t, b) = PAD;
    let max = bins.iter().map(|x| x.2).max().unwrap_or(1).max(1) as f64;
    let bw = (W - l - r) / bins.len().max(1) as f64;
    for (i, (lo, hi, n)) in bins.iter().enumerate() {
        let h = (H - t - b) * *n as f64 / max;
        let _ = write!(
            s,
            r##"<rect{m} x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#4472c4"><title>{lo:.1}–{hi:.1}: {n}</title></rect>"##,
            m = mark(links(i)),
            x = l + i as f64 * bw + 1.0,
            y = H - b - h,
            w = (bw - 2.0).max(1.0)
        );
    }
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let y = H - b - (H - t - b) * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{x}" y="{y:.1}" font-size="10" text-anchor="end">{}</text>"##,
            nice(v.round()),
            x = l - 4.0
        );
    }
    if let (Some(first), Some(last)) = (bins.first(), bins.last()) {
        let _ = write!(
            s,
            r##"<text x="{l}" y="{y}" font-size="10">{}</text>"##,
            nice(first.0),
            y = H - b + 14.0
        );
        let _ = write!(
            s,
            r##"<text x="{x}" y="{y}" font-size="10" text-anchor="end">{}</text>"##,
            nice(last.1),
            x = W - r,
            y = H - b + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Points on log-log axes: rank against frequency.
pub fn log_log(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64, String)]) -> String {
    log_log_linked(title, x_label, y_label, points, &|_| None)
}

/// [`log_log`] whose point `i` leads to `links(i)`.
pub fn log_log_linked(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64, String)],
    links: Links,
) -> String {
    let mut s = frame(title, x_label, y_label);
    let (l, r, t, b) = PAD;
    let xmax = points
        .iter()
        .map(|p| p.0)
        .fold(1.0f64, f64::max)
        .log10()
        .max(1.0);
    let ymax = points
        .iter()
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        .log10()
        .max(1.0);
    let px = |x: f64| l + (W - l - r) * x.max(1.0).log10() / xmax;
    let py = |y: f64| H - b - (H - t - b) * y.max(1.0).log10() / ymax;
    for d in 0..=(xmax.ceil() as i32) {
        let v = 10f64.powi(d);
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{y}" font-size="10" text-anchor="middle">{}</text>"##,
            nice(v),
            x = px(v),
            y = H - b + 14.0
        );
    }
    for d in 0..=(ymax.ceil() as i32) {
        let v = 10f64.powi(d);
        let _ = write!(
            s,
            r##"<text x="{x}" y="{y:.1}" font-size="10" text-anchor="end">{}</text>"##,
            nice(v),
            x = l - 4.0,
            y = py(v) + 3.0
        );
    }
    let mut path = String::new();
    for (i, (x, y, label)) in points.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            px(*x),
            py(*y)
        );
        let _ = write!(
            s,
            r##"<circle{} cx="{:.1}" cy="{:.1}" r="3" fill="#c0504d"><title>#{} {}: {}</title></circle>"##,
            mark(links(i)),
            px(*x),
            py(*y),
            *x as u64,
            esc(label),
            *y as u64
        );
    }
    let _ = write!(
        s,
        r##"<path d="{path}" fill="none" stroke="#c0504d" stroke-opacity="0.4"/>"##
    );
    s.push_str("</svg>");
    s
}

/// A named line of a [`lines`] chart: (name, colour, points).
pub type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// Lines over integer x values.
pub fn lines(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    lines_linked(title, x_label, y_label, series, &|_| None)
}

/// [`lines`] whose points at x value `x` lead to `links(x)`.
pub fn lines_linked(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    links: Links,
) -> String {
    let mut s = frame(title, x_label, y_label);
    let (l, r, t, b) = PAD;
    let all: Vec<(f64, f64)> = series.iter().flat_map(|x| x.2.iter().copied()).collect();
    let (xmin, xmax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let ymax = all.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1.0) * 1.1;
    let span = if xmax > xmin { xmax - xmin } else { 1.0 };
    let px = |x: f64| l + 10.0 + (W - l - r - 20.0) * (x - xmin) / span;
    let py = |y: f64| H - b - (H - t - b) * y / ymax;
    for k in 0..=4 {
        let v = ymax * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{x}" y="{y:.1}" font-size="10" text-anchor="end">{}</text>"##,
            nice((v * 100.0).round() / 100.0),
            x = l - 4.0,
            y = py(v) + 3.0
        );
    }
    let mut xs: Vec<f64> = all.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{y}" font-size="10" text-anchor="middle">{}</text>"##,
            px(x),
            nice(x),
            y = H - b + 14.0
        );
    }
    for (i, (name, colour, pts)) in series.iter().enumerate() {
        let mut path = String::new();
        for (j, (x, y)) in pts.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1},{:.1}",
                if j == 0 { "M" } else { " L" },
                px(*x),
                py(*y)
            );
            let _ = write!(
                s,
                r##"<circle{} cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"><title>{} {} {}: {:.3}</title></circle>"##,
                mark(links(*x as usize)),
                px(*x),
                py(*y),
                esc(name),
                esc(x_label),
                x,
                y
            );
        }
        let _ = write!(
            s,
            r##"<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>"##
        );
        let _ = write!(
            s,
            r##"<text x="{x}" y="{y}" font-size="12" fill="{colour}">{}</text>"##,
            esc(name),
            x = W - r - 120.0,
            y = t + 14.0 + 16.0 * i as f64
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars of labelled values, one per line (long labels are cut, the tooltip has
/// them whole), bar `i` leading to `links(i)`. `note(i)` adds to bar `i`'s tooltip.
pub fn hbars(
    title: &str,
    x_label: &str,
    bars: &[(String, f64)],
    note: &dyn Fn(usize) -> String,
    links: Links,
) -> String {
    const LABEL: f64 = 180.0;
    const ROW: f64 = 18.0;
    let height = PAD.2 + ROW * bars.len().max(1) as f64 + PAD.3;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{t}"><title>{t}</title><rect width="{W}" height="{height}" fill="#fff"/>"##,
        t = esc(title)
    );
    let (r, t) = (PAD.1, PAD.2);
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let span = W - LABEL - r - 60.0;
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = t + ROW * i as f64;
        let short: String = if label.chars().count() > 28 {
            label.chars().take(27).chain(std::iter::once('…')).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            r##"<text x="{x}" y="{ty:.1}" font-size="11" text-anchor="end">{}</text>"##,
            esc(&short),
            x = LABEL - 6.0,
            ty = y + ROW * 0.7
        );
        let w = (span * v / max).max(1.0);
        let extra = note(i);
        let _ = write!(
            s,
            r##"<rect{m} x="{LABEL}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#4472c4"><title>{}: {}{}</title></rect>"##,
            esc(label),
            nice(*v),
            esc(&extra),
            m = mark(links(i)),
            h = ROW - 4.0
        );
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{ty:.1}" font-size="10">{}</text>"##,
            nice(*v),
            x = LABEL + w + 4.0,
            ty = y + ROW * 0.7
        );
    }
    let _ = write!(
        s,
        r##"<text x="{x}" y="{y}" font-size="12" text-anchor="middle">{}</text>"##,
        esc(x_label),
        x = LABEL + span / 2.0,
        y = height - 8.0
    );
    s.push_str("</svg>");
    s
}
