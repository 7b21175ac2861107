//! Fixed-budget subsets: diversity of each strategy, exact budgets, determinism, training files
//! that real parsers accept, and the ablation table.

use std::collections::BTreeMap;

use crate::common::*;

/// A skewed corpus: Zipf-distributed domains (exponent 1.3 over 20 domains).
fn skewed_corpus(dir: &std::path::Path, n: u64) -> String {
    let root = dir.join("corpus").to_str().unwrap().to_string();
    let o = run(&[
        "gen",
        &root,
        "--trajectories",
        &n.to_string(),
        "--seed",
        "11",
        "--domains",
        "20",
        "--zipf",
        "1.3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    root
}

/// The largest domain entropy any subset of `budget` trajectories can have: fill the domains as
/// evenly as their sizes allow (water-filling), computed here independently of tdscale.
fn max_domain_entropy(mut sizes: Vec<u64>, budget: u64) -> f64 {
    sizes.sort();
    let mut counts = vec![];
    let mut remaining = budget;
    for (i, &s) in sizes.iter().enumerate() {
        let left = (sizes.len() - i) as u64;
        if s * left <= remaining {
            counts.push(s);
            remaining -= s;
        } else {
            let (q, r) = (remaining / left, remaining % left);
            counts.extend((0..left).map(|j| if j < r { q + 1 } else { q }));
            break;
        }
    }
    let total: u64 = counts.iter().sum();
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 / total as f64)
        .map(|p| p * p.log2())
        .sum::<f64>()
}

fn summary(out: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let obj: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(l.split(','))
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.parse::<f64>()
                            .map(serde_json::Value::from)
                            .unwrap_or(serde_json::Value::String(v.to_string())),
                    )
                })
                .collect();
            serde_json::Value::Object(obj)
        })
        .collect()
}

#[tokio::test]
async fn diversity_strategies_reach_the_maximum_domain_entropy() {
    let dir = tempfile::tempdir().unwrap();
    let root = skewed_corpus(dir.path(), 4000);
    let corpus = tdscale::store::Corpus::open(&root).unwrap();
    let sizes: Vec<u64> = strings(
        &corpus,
        "SELECT CAST(count(*) AS VARCHAR) FROM trajectories GROUP BY domain",
    )
    .await
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    assert!(
        sizes.iter().max().unwrap() > &(10 * sizes.iter().min().unwrap()),
        "the corpus is skewed: {sizes:?}"
    );
    let out = dir.path().join("run");
    let budgets = [60u64, 250, 1000];
    let o = run(&[
        "budget",
        &root,
        "--budgets",
        "60,250,1000",
        "--seeds",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--no-training-files",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.len(), 3 * 6 * 2);
    for b in budgets {
        let max = max_domain_entropy(sizes.clone(), b);
        let de = |strategy: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| r["strategy"] == strategy && r["budget"] == b)
                .map(|r| r["de_bits"].as_f64().unwrap())
                .collect()
        };
        for s in ["stratified", "greedy_entropy"] {
            for d in de(s) {
                assert!(
                    max - d < 0.05 && d <= max + 1e-9,
                    "{s} at {b}: DE {d:.4} vs max {max:.4}"
                );
            }
        }
        for s in ["random", "head"] {
            for d in de(s) {
                assert!(
                    d < max - 0.2,
                    "{s} at {b}: DE {d:.4} should be well below max {max:.4}"
                );
            }
        }
        // Every subset of the trajectories unit holds exactly the budget.
        for r in rows.iter().filter(|r| r["budget"] == b) {
            assert_eq!(r["trajectories"].as_u64(), Some(b), "{}", r["name"]);
            assert_eq!(r["short"], false);
        }
    }
    // The CSV summary says the same as --json.
    assert_eq!(summary(&out).len(), rows.len());
}

#[tokio::test]
async fn token_budgets_are_never_exceeded_and_seeds_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let root = skewed_corpus(dir.path(), 1500);
    let corpus = tdscale::store::Corpus::open(&root).unwrap();
    let max_tokens = scalar_i64(&corpus, "SELECT max(num_tokens) FROM trajectories").await;
    let budget = 40_000;
    let out1 = dir.path().join("a");
    let out2 = dir.path().join("b");
    for out in [&out1, &out2] {
        let o = run(&[
            "budget",
            &root,
            "--budgets",
            &budget.to_string(),
            "--unit",
            "tokens",
            "--seeds",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--no-training-files",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for r in summary(&out1) {
        let used = r["used"].as_f64().unwrap() as i64;
        assert!(used <= budget, "{} used {used}", r["name"]);
        assert_eq!(r["tokens"].as_f64().unwrap() as i64, used);
        assert!(
            used > budget - max_tokens,
            "{} stops only when the next trajectory would overflow: {used}",
            r["name"]
        );
    }
    // The same seed gives the same subset; another seed another one.
    let manifest = |out: &std::path::Path, name: &str| -> Vec<String> {
        let o = run(&[
            "sql",
            &root,
            &format!(
                "SELECT traj_id FROM '{}' ORDER BY pick",
                out.join(name).join("manifest.parquet").display()
            ),
            "--format",
            "csv",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().skip(1).map(str::to_string).collect()
    };
    for s in [
        "random",
        "stratified",
        "greedy_entropy",
        "head",
        "complexity",
        "deita",
    ] {
        let name = format!("{s}-b{budget}-s0");
        assert_eq!(
            manifest(&out1, &name),
            manifest(&out2, &name),
            "{name} is deterministic"
        );
    }
    assert_ne!(
        manifest(&out1, "random-b40000-s0"),
        manifest(&out1, "random-b40000-s1")
    );
}

#[test]
fn budget_larger_than_the_corpus_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = skewed_corpus(dir.path(), 200);
    let o = run(&[
        "budget",
        &root,
        "--budgets",
        "100,500",
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("budget 500 trajectories is not possible: the corpus holds 200"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("r").exists(), "nothing written");
}

#[test]
fn plans_run_from_the_sql_command() {
    let dir = tempfile::tempdir().unwrap();
    let root = skewed_corpus(dir.path(), 300);
    for plan in [
        "random",
        "head",
        "stratified",
        "greedy_entropy",
        "complexity",
        "deita",
    ] {
        let f = repo().join(format!("queries/budget_{plan}.sql"));
        let o = run(&[
            "sql",
            &root,
            "-f",
            f.to_str().unwrap(),
            "-p",
            "budget=25",
            "-p",
            "seed=4",
            "--format",
            "csv",
        ]);
        assert!(o.status.success(), "{plan}: {}", stderr(&o));
        let text = stdout(&o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "traj_id,pick,cost,used");
        assert_eq!(lines.len(), 26, "{plan}: 25 rows");
        assert!(lines[25].ends_with(",25,1,25"), "{plan}: {}", lines[25]);
    }
}

#[test]
fn training_files_load_with_real_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    // Real data with parallel calls, errors and code, plus the generated corpus.
    let mut args = vec!["ingest".to_string(), root.to_str().unwrap().to_string()];
    for f in std::fs::read_dir(testdata("formats")).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            args.push(p.to_str().unwrap().to_string());
        }
    }
    args.push(
        shared("tau-bench/gpt-4o-airline.json")
            .to_str()
            .unwrap()
            .to_string(),
    );
    assert!(bin().args(&args).output().unwrap().status.success());
    let out = dir.path().join("run");
    let o = run(&[
        "budget",
        root.to_str().unwrap(),
        "--budgets",
        "40,213",
        "--strategies",
        "stratified,complexity",
        "--seeds",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let check = r#"
import json, sys
root = sys.argv[1]
info = json.load(open(f"{root}/dataset_info.json"))
assert set(info) == {"stratified-b40-s0", "stratified-b213-s0", "complexity-b40-s0", "complexity-b213-s0"}, info.keys()
n_checked = 0
for name, entry in info.items():
    assert entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "conversations", "system": "system", "tools": "tools"}
    data = json.load(open(f"{root}/{entry['file_name']}"))
    assert len(data) == int(name.split("-b")[1].split("-")[0]), (name, len(data))
    for rec in data:
        conv = rec["conversations"]
        assert len(conv) % 2 == 0 and len(conv) > 0, conv
        for i, turn in enumerate(conv):
            assert set(turn) == {"from", "value"}
            assert turn["from"] in (("human", "observation") if i % 2 == 0 else ("gpt", "function_call")), (i, turn["from"])
            assert isinstance(turn["value"], str)
            if turn["from"] == "function_call":
                call = json.loads(turn["value"])
                for c in (call if isinstance(call, list) else [call]):
                    assert isinstance(c["name"], str) and isinstance(c["arguments"], (dict, str))
        tools = json.loads(rec["tools"])
        assert all({"name", "description", "parameters"} <= set(t) for t in tools)
        assert isinstance(rec["system"], str)
        n_checked += 1
    ids = set()
    with open(f"{root}/{name}/train_openai.jsonl") as f:
        lines = [json.loads(l) for l in f]
    assert len(lines) == len(data)
    for line in lines:
        assert set(line) <= {"messages", "tools"}
        ids = set()
        for m in line["messages"]:
            assert m["role"] in ("system", "user", "assistant", "tool")
            for c in m.get("tool_calls", []):
                assert c["type"] == "function"
                json.loads(c["function"]["arguments"]) if c["function"]["arguments"].strip().startswith("{") else None
                ids.add(c["id"])
            if m["role"] == "tool":
                assert m["tool_call_id"] in ids, m
print(n_checked)
"#;
    let py = std::process::Command::new("python3")
        .args(["-c", check, out.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        (2 * (40 + 213)).to_string()
    );
}

#[test]
fn budget_output_on_s3() {
    let s3 = moto();
    let bucket = s3.bucket("tds-budget");
    let dir = tempfile::tempdir().unwrap();
    let root = skewed_corpus(dir.path(), 300);
    let out = format!("s3://{bucket}/runs/r1");
    let o = s3.run(&[
        "budget",
        &root,
        "--budgets",
        "20",
        "--strategies",
        "random,stratified",
        "--seeds",
        "1",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = s3.run(&["sql", &root, &format!("CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION '{out}/summary.parquet'; SELECT count(*) AS n, sum(trajectories) AS t FROM s"), "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n,t\n2,40\n");
    let o = s3.run(&["sql", &root, &format!("CREATE EXTERNAL TABLE m STORED AS PARQUET LOCATION '{out}/stratified-b20-s0/manifest.parquet'; SELECT count(*) FROM m"), "--format", "csv"]);
    assert_eq!(stdout(&o).lines().nth(1), Some("20"));
}

#[test]
fn ablation_table_from_scores() {
    let dir = tempfile::tempdir().unwrap();
    let root = skewed_corpus(dir.path(), 800);
    let out = dir.path().join("run");
    let o = run(&[
        "budget",
        &root,
        "--budgets",
        "50,200",
        "--strategies",
        "random,stratified",
        "--seeds",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--no-training-files",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Scores: stratified better than random, rising with budget; one row for a subset that does not exist.
    let mut csv = String::from("subset,benchmark,score\n");
    let mut expected: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for (s, base) in [("random", 0.30), ("stratified", 0.40)] {
        for b in [50, 200] {
            for seed in 0..2 {
                let score = base + if b == 200 { 0.1 } else { 0.0 } + seed as f64 * 0.02;
                csv.push_str(&format!("{s}-b{b}-s{seed},bfcl,{score}\n"));
                expected.entry((s.to_string(), b)).or_default().push(score);
            }
        }
    }
    csv.push_str("nosuch-b1-s0,bfcl,0.9\n");
    let scores = dir.path().join("scores.csv");
    std::fs::write(&scores, csv).unwrap();
    let html = dir.path().join("ablation.html");
    let o = run(&[
        "ablation",
        out.to_str().unwrap(),
        "--scores",
        scores.to_str().unwrap(),
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cells = a["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for c in cells {
        let xs = &expected[&(
            c["strategy"].as_str().unwrap().to_string(),
            c["budget"].as_i64().unwrap(),
        )];
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((c["score_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
        assert_eq!(c["runs"], 2);
    }
    // Stratified subsets are both more diverse and better scored here: positive correlation.
    assert!(a["correlations"][0]["score_vs_de"].as_f64().unwrap() > 0.5);
    assert_eq!(a["unmatched"], serde_json::json!(["nosuch-b1-s0"]));
    let page = std::fs::read_to_string(html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("score by budget") && page.contains("stratified")
    );
    let o = run(&[
        "ablation",
        out.to_str().unwrap(),
        "--scores",
        scores.to_str().unwrap(),
    ]);
    assert!(stdout(&o).contains("benchmark bfcl"), "{}", stdout(&o));
    // A scores file without the needed columns.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"name": "random-b50-s0", "value": 1}]"#).unwrap();
    let o = run(&[
        "ablation",
        out.to_str().unwrap(),
        "--scores",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("subset, benchmark, score"),
        "{}",
        stderr(&o)
    );
}
