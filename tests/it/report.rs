//! `tdscale report` agrees with the independent plain-Python computation in benches/.

use crate::common::*;

#[test]
fn report_matches_the_python_reference_on_tau_bench() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let file = shared("tau-bench/gpt-4o-airline.json");
    let o = run(&["ingest", root.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = dir.path().join("r.html");
    let o = run(&[
        "report",
        root.to_str().unwrap(),
        "--by",
        "domain",
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let py = std::process::Command::new("python3")
        .arg(repo().join("benches/reference_metrics.py"))
        .args(["--by", "domain"])
        .arg(&file)
        .output()
        .expect("python3 is needed");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    let (a, b) = (&ours["groups"][0], &theirs["groups"][0]);
    assert_eq!(a["group"], "airline");
    assert_eq!(a["trajectories"], b["trajectories"]);
    assert_eq!(a["modes"], b["modes"]);
    assert_eq!(a["modes"], 24, "DESIGN.md: 24 modes");
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    for k in ["de_bits", "rme_bits", "rme_normalized", "cac_mean"] {
        assert!(
            (f(&a[k]) - f(&b[k])).abs() < 1e-9,
            "{k}: {} vs {}",
            a[k],
            b[k]
        );
    }
    assert!(
        (f(&a["rme_bits"]) - 4.05).abs() < 0.005,
        "DESIGN.md: 4.05 bits"
    );
    // Percentiles come from an HDR histogram with 3 significant digits.
    for k in ["cac_p50", "cac_p90", "cac_p99"] {
        assert!(
            (f(&a[k]) - f(&b[k])).abs() / f(&b[k]) < 2e-3,
            "{k}: {} vs {}",
            a[k],
            b[k]
        );
    }
    assert_eq!(a["top_modes"], b["top_modes"]);
    assert!(a["tail_modes"].as_u64().unwrap() > 0);
    let page = std::fs::read_to_string(html).unwrap();
    assert!(
        page.contains("<svg")
            && page.contains("CAC distribution")
            && page.contains("Mode rank-frequency")
            && page.contains("Entropy by round")
    );
}

#[test]
fn report_by_round_and_source_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    run(&[
        "ingest",
        root.to_str().unwrap(),
        testdata("formats/openai_chat.jsonl").to_str().unwrap(),
    ]);
    run(&[
        "ingest",
        root.to_str().unwrap(),
        testdata("formats/tau_bench_retail.json").to_str().unwrap(),
        "--round",
        "1",
    ]);
    let o = run(&["report", root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("by Round"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('0') || l.starts_with('1'))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    let o = run(&["report", root.to_str().unwrap(), "--by", "source", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let groups: Vec<&str> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["openai_chat", "tau_bench_retail"]);
    assert_eq!(r["by_round"].as_array().unwrap().len(), 2);
    // openai_chat has 3 trajectories with 3 different modes: log2 3 bits.
    assert!((r["groups"][0]["rme_bits"].as_f64().unwrap() - 3f64.log2()).abs() < 1e-12);
}

/// Chart marks that lead to a filter carry it escaped; charts without links carry none.
mod charts {
    use tdscale::report::svg::{hbars, histogram, histogram_linked};

    #[test]
    fn linked_marks_carry_an_escaped_filter_and_plain_charts_none() {
        let bins = [(0.0, 1.0, 3), (1.0, 2.0, 5)];
        let plain = histogram("t", "x", &bins);
        assert!(!plain.contains("data-filter"));
        let linked = histogram_linked("t", "x", &bins, &|i| {
            (i == 1).then(|| "mode=\"><script>".to_string())
        });
        assert_eq!(linked.matches("data-filter").count(), 1);
        assert!(linked.contains(r#"data-filter="mode=&quot;&gt;&lt;script&gt;""#));
        let bars = hbars(
            "<b>",
            "n",
            &[("<i>x</i>".into(), 2.0), ("y".into(), 4.0)],
            &|_| String::new(),
            &|i| Some(format!("domain={i}")),
        );
        assert!(!bars.contains("<i>") && !bars.contains("<b>"));
        assert!(bars.contains(r#"data-filter="domain=1""#));
    }
}
