//! Evaluation exports: splits, BFCL files checked by BFCL's own checker, tau² domains compared
//! with the real files and ingested back, decontamination, and S3 through a faulty proxy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;

use crate::common::number as n;

const BFCL: &[&str] = &[
    "bfcl/BFCL_v4_simple_python.json",
    "bfcl/BFCL_v4_multiple.json",
    "bfcl/BFCL_v4_parallel.json",
    "bfcl/BFCL_v4_parallel_multiple.json",
    "bfcl/BFCL_v4_irrelevance.json",
];

/// Pairs of near-identical chat trajectories (one word differs), each pair under its own ids.
fn planted_pairs(path: &Path, pairs: usize) {
    let mut lines = vec![];
    for i in 0..pairs {
        for (k, word) in ["please", "kindly"].iter().enumerate() {
            let text = format!(
                "Hello, {word} find the cheapest flight from city number {i} to the capital of region {} on the first Monday of month {} and book two seats in economy class for me and my colleague",
                i * 7 + 3,
                i % 12 + 1
            );
            lines.push(
                json!({
                    "id": format!("pair{i}-{k}"),
                    "domain": "travel",
                    "messages": [
                        {"role": "user", "content": text},
                        {"role": "assistant", "content": "Done."}
                    ]
                })
                .to_string(),
            );
        }
    }
    std::fs::write(path, lines.join("\n")).unwrap();
}

#[test]
fn split_is_deterministic_stratified_stable_and_keeps_near_duplicates_together() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c").to_str().unwrap().to_string();
    let pairs = dir.path().join("pairs.jsonl");
    planted_pairs(&pairs, 30);
    let mut args = vec![
        "ingest".to_string(),
        c.clone(),
        pairs.to_str().unwrap().into(),
    ];
    args.extend(BFCL.iter().map(|f| shared(f).to_str().unwrap().to_string()));
    let o = bin().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let split = |c: &str| {
        ok_json(&run(&[
            "split",
            c,
            "--by",
            "domain,source",
            "--test",
            "0.2",
            "--seed",
            "7",
            "--near-dup",
            "0.7",
            "--json",
        ]))
    };
    let s = split(&c);
    let first = sql_rows(
        &c,
        "SELECT traj_id, split, group_id, stratum FROM splits ORDER BY traj_id",
    );
    assert_eq!(first.len() as f64, n(&s["trajectories"]));
    // Deterministic: the same command gives the same assignment.
    split(&c);
    let again = sql_rows(
        &c,
        "SELECT traj_id, split, group_id, stratum FROM splits ORDER BY traj_id",
    );
    assert_eq!(first, again);
    // The test share is about the requested one (groups of near-duplicates move together).
    let total = first.len() as f64;
    let test = first.iter().filter(|r| r["split"] == "test").count() as f64;
    assert!(
        (test / total - 0.2).abs() < 0.08,
        "test share {}",
        test / total
    );
    // Per stratum, groups go to test independently with probability 0.2: the count of test
    // groups is binomial, and every stratum of at least 5 groups has one.
    let mut strata: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for r in &first {
        let e = strata
            .entry(r["stratum"].as_str().unwrap().into())
            .or_default();
        let g = r["group_id"].as_str().unwrap().to_string();
        if r["split"] == "test" {
            e.0.insert(g.clone());
        }
        e.1.insert(g);
    }
    for (k, (test, all)) in &strata {
        let (t, g) = (test.len() as f64, all.len() as f64);
        assert!(t >= 1.0, "stratum {k} has no test group");
        let sigma = (g * 0.2 * 0.8).sqrt();
        assert!(
            (t - 0.2 * g).abs() <= 4.0 * sigma,
            "stratum {k}: {t} of {g} groups in test"
        );
    }
    // Planted near-duplicates share a group and a side.
    let by_id: HashMap<&str, &Value> = first
        .iter()
        .map(|r| (r["traj_id"].as_str().unwrap(), r))
        .collect();
    for i in 0..30 {
        let a = by_id[format!("pairs/pair{i}-0").as_str()];
        let b = by_id[format!("pairs/pair{i}-1").as_str()];
        assert_eq!(a["group_id"], b["group_id"], "pair {i}");
        assert_eq!(a["split"], b["split"], "pair {i}");
    }
    // No pair across the split is a near-duplicate, by the SQL functions.
    let cross = sql_rows(
        &c,
        "WITH s AS (SELECT t.traj_id, p.split, minhash(user_text(t.messages), 64) AS sig
                    FROM trajectories t JOIN splits p ON p.traj_id = t.traj_id)
         SELECT count(*) AS n FROM s a JOIN s b ON a.split = 'train' AND b.split = 'test'
         WHERE jaccard(a.sig, b.sig) >= 0.8",
    );
    assert_eq!(n(&cross[0]["n"]), 0.0);
    // Stable: new trajectories do not move the old ones (unless they join a new group).
    let more = shared("bfcl/BFCL_v4_live_simple.json");
    let o = run(&["ingest", &c, more.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    split(&c);
    let grown = sql_rows(&c, "SELECT traj_id, split, group_id FROM splits");
    let grown: HashMap<&str, &Value> = grown
        .iter()
        .map(|r| (r["traj_id"].as_str().unwrap(), r))
        .collect();
    assert!(grown.len() > first.len());
    for r in &first {
        let g = grown[r["traj_id"].as_str().unwrap()];
        if g["group_id"] == r["group_id"] {
            assert_eq!(g["split"], r["split"], "{} moved", r["traj_id"]);
        }
    }
    // Bad parameters are usage errors.
    let o = run(&["split", &c, "--test", "1.5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["split", &c, "--by", "messages"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// A corpus of the BFCL categories and of generated multi-turn trajectories, split 30 % test.
fn eval_corpus(dir: &Path) -> String {
    let c = dir.join("c").to_str().unwrap().to_string();
    let mut args = vec!["ingest".to_string(), c.clone()];
    args.extend(BFCL.iter().map(|f| shared(f).to_str().unwrap().to_string()));
    let o = bin().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["gen", &c, "--trajectories", "200", "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    ok_json(&run(&[
        "split", &c, "--by", "source", "--test", "0.3", "--seed", "1", "--json",
    ]));
    c
}

fn bfcl_check(dir: &Path, mutate: bool) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("tests/tools/bfcl_check.py")).arg(dir);
    if mutate {
        cmd.arg("--mutate");
    }
    let o = cmd.output().expect("python3 runs the BFCL checker");
    assert!(
        o.status.success(),
        "the BFCL checker failed (install it with `pip install --no-deps bfcl-eval==2026.3.23`): {}",
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(p).unwrap())
}

#[test]
fn bfcl_export_passes_the_official_ast_checker() {
    let dir = tempfile::tempdir().unwrap();
    let c = eval_corpus(dir.path());
    let out = dir.path().join("bfcl");
    let s = ok_json(&run(&[
        "export",
        "bfcl",
        &c,
        "--to",
        out.to_str().unwrap(),
        "--json",
    ]));
    let entries = &s["entries"];
    for cat in [
        "simple",
        "multiple",
        "parallel",
        "parallel_multiple",
        "irrelevance",
        "multi_turn",
    ] {
        assert!(n(&entries[cat]) > 0.0, "no {cat} entries: {entries}");
    }
    // Each BFCL source lands in its own category (shapes computed from the source files).
    for (source, cat) in [
        ("BFCL_v4_simple_python", "simple"),
        ("BFCL_v4_multiple", "multiple"),
        ("BFCL_v4_parallel", "parallel"),
        ("BFCL_v4_parallel_multiple", "parallel_multiple"),
        ("BFCL_v4_irrelevance", "irrelevance"),
    ] {
        let qs = read_jsonl(&out.join(format!("BFCL_v4_{cat}.json")));
        let from_source = qs
            .iter()
            .filter(|q| {
                q["traj_id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{source}/"))
            })
            .count();
        assert!(
            from_source * 10 >= qs.len() * 9,
            "{cat}: only {from_source} of {} from {source}",
            qs.len()
        );
        for (i, q) in qs.iter().enumerate() {
            assert_eq!(q["id"], json!(format!("{cat}_{i}")));
            assert!(q["function"].as_array().is_some_and(|f| !f.is_empty()));
            assert_eq!(q["question"][0][0]["role"], "user");
        }
    }
    let answered: f64 = [
        "simple",
        "multiple",
        "parallel",
        "parallel_multiple",
        "multi_turn",
    ]
    .iter()
    .map(|c| n(&entries[c]))
    .sum();
    let r = bfcl_check(&out, false);
    assert_eq!(n(&r["checked"]), answered);
    assert_eq!(r["valid"], r["checked"], "failures: {}", r["failures"]);
    let wrong = bfcl_check(&out, true);
    assert!(n(&wrong["checked"]) > 0.0);
    assert_eq!(n(&wrong["valid"]), 0.0, "a wrong answer passed: {wrong}");
    // The manifest lists every file with its checksum, and is written last.
    let manifest: Value = read_json(out.join("manifest.json"));
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), s["files"].as_array().unwrap().len() - 1);
    // Its time is RFC 3339 in UTC to the microsecond, always as wide (2026-12-05T07:55:01.000120Z),
    // so two exports of the same rows write manifests of one size.
    let created_at = manifest["created_at"].as_str().unwrap();
    assert_eq!(created_at.len(), 27, "{created_at}");
    assert!(created_at.ends_with('Z'), "{created_at}");
    chrono::DateTime::parse_from_rfc3339(created_at).unwrap();
    for f in files {
        let bytes = std::fs::read(out.join(f["path"].as_str().unwrap())).unwrap();
        use sha2::Digest;
        assert_eq!(
            f["sha256"],
            json!(hex::encode(sha2::Sha256::digest(&bytes)))
        );
    }
}

/// Every (path, JSON type) of a value, arrays' items under `[]`.
fn type_paths(v: &Value, path: &str, out: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    let ty = tdscale::formats::fields::kind(v);
    out.entry(path.to_string()).or_default().insert(ty);
    match v {
        Value::Array(a) => a
            .iter()
            .for_each(|x| type_paths(x, &format!("{path}[]"), out)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| type_paths(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

#[test]
fn tau2_export_has_the_real_fields_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let c = eval_corpus(dir.path());
    let out = dir.path().join("tau2");
    let s = ok_json(&run(&[
        "export",
        "tau2",
        &c,
        "--to",
        out.to_str().unwrap(),
        "--domain-name",
        "my_domain",
        "--json",
    ]));
    let d = out.join("my_domain");
    let ours: Value = read_json(d.join("tasks.json"));
    assert_eq!(ours.as_array().unwrap().len() as f64, n(&s["tasks"]));
    // Field by field: every field of the real tasks is in ours, with a type the real files use.
    let mut real = BTreeMap::new();
    for domain in ["airline", "retail"] {
        let v = read_json(shared(&format!("tau2/{domain}/tasks.json")));
        type_paths(&v, "", &mut real);
    }
    let mut mine = BTreeMap::new();
    type_paths(&ours, "", &mut mine);
    for (path, types) in &real {
        // `annotations` (airline) and `issues` (retail) are per-domain notes; arguments vary.
        if path.starts_with("[].issues")
            || path.contains(".arguments.")
            || path.starts_with("[].evaluation_criteria.communicate_info[]")
        {
            continue;
        }
        if path == "[].issues" {
            continue;
        }
        let got = mine
            .get(path)
            .unwrap_or_else(|| panic!("our tasks lack {path}"));
        for t in got {
            assert!(
                types.contains(t),
                "{path}: ours is {t}, the real files have {types:?}"
            );
        }
    }
    for t in ours.as_array().unwrap() {
        assert_eq!(t["user_scenario"]["instructions"]["domain"], "my_domain");
    }
    let split: Value = read_json(d.join("split_tasks.json"));
    let ids: BTreeSet<&str> = ours
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let base: BTreeSet<&str> = split["base"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(ids, base);
    let tools: Value = read_json(d.join("tools.json"));
    for t in tools.as_array().unwrap() {
        assert_eq!(t["type"], "function");
        assert!(t["function"]["name"].is_string() && t["function"]["parameters"].is_object());
    }
    assert!(
        !std::fs::read_to_string(d.join("policy.md"))
            .unwrap()
            .trim()
            .is_empty()
    );

    // Round trip: ingest the tasks back; each task is its trajectory again (same id, same calls).
    let back = dir.path().join("back").to_str().unwrap().to_string();
    let o = ok_json(&run(&[
        "ingest",
        &back,
        d.join("tasks.json").to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(n(&o["ingested"]), n(&s["tasks"]));
    assert_eq!(n(&o["rejected"]), 0.0);
    let calls_q = "SELECT traj_id, CAST(tool_sequence(messages) AS VARCHAR) AS seq, domain, cardinality(tools) AS tools FROM trajectories ORDER BY traj_id";
    let again = sql_rows(&back, calls_q);
    let orig: HashMap<String, Value> = sql_rows(&c, calls_q)
        .into_iter()
        .map(|r| (r["traj_id"].as_str().unwrap().to_string(), r))
        .collect();
    for r in &again {
        let o = &orig[r["traj_id"].as_str().unwrap()];
        assert_eq!(r["seq"], o["seq"], "{}", r["traj_id"]);
        assert_eq!(r["domain"], "my_domain");
        assert!(n(&r["tools"]) >= 1.0);
    }
    // The arguments survive too.
    let args_q =
        "SELECT traj_id, arguments FROM tool_calls ORDER BY traj_id, msg_index, call_index";
    let a1: Vec<(String, Value)> = sql_rows(&back, args_q)
        .into_iter()
        .map(|r| {
            (
                r["traj_id"].as_str().unwrap().into(),
                serde_json::from_str(r["arguments"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let kept: BTreeSet<&str> = again
        .iter()
        .map(|r| r["traj_id"].as_str().unwrap())
        .collect();
    let a0: Vec<(String, Value)> = sql_rows(&c, args_q)
        .into_iter()
        .filter(|r| kept.contains(r["traj_id"].as_str().unwrap()))
        .map(|r| {
            (
                r["traj_id"].as_str().unwrap().into(),
                serde_json::from_str(r["arguments"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(a0, a1);
    // The real tau² task files are read by the same format.
    let real_c = dir.path().join("real").to_str().unwrap().to_string();
    let o = ok_json(&run(&[
        "ingest",
        &real_c,
        shared("tau2/airline/tasks.json").to_str().unwrap(),
        shared("tau2/retail/tasks.json").to_str().unwrap(),
        "--json",
    ]));
    assert_eq!((n(&o["ingested"]), n(&o["rejected"])), (164.0, 0.0));
    let r = sql_rows(
        &real_c,
        "SELECT count(*) AS n FROM trajectories WHERE lower(system) LIKE '# % agent policy%'",
    );
    assert_eq!(n(&r[0]["n"]), 164.0, "policy.md becomes the system prompt");
    // Exported again, every task gets back the simulator's instructions, persona and unknown
    // info it was read with.
    let again = dir.path().join("real-tau2");
    let all = every_trajectory_query(dir.path());
    ok_json(&run(&[
        "export",
        "tau2",
        &real_c,
        "--query",
        all.to_str().unwrap(),
        "--to",
        again.to_str().unwrap(),
        "--domain-name",
        "both",
        "--json",
    ]));
    let scenario_of = |t: &Value| {
        let s = &t["user_scenario"];
        let i = &s["instructions"];
        (
            i["task_instructions"].to_string(),
            i["unknown_info"].to_string(),
            s["persona"].to_string(),
        )
    };
    let mut original: Vec<_> = ["airline", "retail"]
        .iter()
        .flat_map(|d| {
            let v = read_json(shared(&format!("tau2/{d}/tasks.json")));
            v.as_array()
                .unwrap()
                .iter()
                .map(scenario_of)
                .collect::<Vec<_>>()
        })
        .collect();
    let exported = read_json(again.join("both").join("tasks.json"));
    let mut exported: Vec<_> = exported
        .as_array()
        .unwrap()
        .iter()
        .map(scenario_of)
        .collect();
    original.sort();
    exported.sort();
    assert_eq!(exported.len(), 164);
    assert_eq!(exported, original);
}

#[test]
fn decontaminate_flags_training_rows_copied_from_evaluation_files() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c").to_str().unwrap().to_string();
    let o = run(&["gen", &c, "--trajectories", "300", "--seed", "9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Five training rows copy BFCL questions (with a word changed), one copies a tau² task.
    let eval = shared("bfcl/BFCL_v4_simple_python.json");
    let questions = read_jsonl(&eval);
    let mut lines = vec![];
    for (i, q) in questions.iter().take(5).enumerate() {
        let text = format!(
            "{} Thanks!",
            q["question"][0][0]["content"].as_str().unwrap()
        );
        lines.push(json!({"id": format!("copy{i}"), "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}).to_string());
    }
    let tasks: Value = read_json(shared("tau2/retail/tasks.json"));
    let i = &tasks[3]["user_scenario"]["instructions"];
    let text = format!(
        "{}\n{}",
        i["reason_for_call"].as_str().unwrap(),
        i["known_info"].as_str().unwrap()
    );
    lines.push(
        json!({"id": "copy-tau2", "messages": [{"role": "user", "content": text}]}).to_string(),
    );
    let copies = dir.path().join("copies.jsonl");
    std::fs::write(&copies, lines.join("\n")).unwrap();
    let o = run(&["ingest", &c, copies.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = ok_json(&run(&[
        "decontaminate",
        &c,
        "--against",
        eval.to_str().unwrap(),
        "--against",
        shared("tau2/retail").to_str().unwrap(),
        "--threshold",
        "0.7",
        "--json",
    ]));
    let flagged: BTreeSet<&str> = r["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["traj_id"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<String> = (0..5)
        .map(|i| format!("copies/copy{i}"))
        .chain(["copies/copy-tau2".to_string()])
        .collect();
    assert_eq!(flagged, expected.iter().map(String::as_str).collect());
    for f in r["flagged"].as_array().unwrap() {
        assert!(n(&f["similarity"]) >= 0.7);
    }
    let tau = r["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["traj_id"] == "copies/copy-tau2")
        .unwrap();
    assert_eq!(tau["eval_id"], tasks[3]["id"]);
    assert!(n(&r["summary"]["eval_items"]) >= questions.len() as f64 + 114.0);
    let t = sql_rows(&c, "SELECT count(DISTINCT traj_id) AS n FROM contamination");
    assert_eq!(n(&t[0]["n"]), 6.0);
}

fn s3_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let o = Command::new("curl")
        .args([
            "-sf",
            &format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}"),
        ])
        .output()
        .unwrap();
    let xml = String::from_utf8_lossy(&o.stdout).into_owned();
    xml.split("<Key>")
        .skip(1)
        .map(|s| s.split("</Key>").next().unwrap().to_string())
        .collect()
}

/// A secret that must never appear in output or logs.
const SECRET: &str = "sekrit-7f3a9c1e";

fn set_fault(proxy: &str, rule: Value) {
    let o = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-d",
            &rule.to_string(),
            &format!("{proxy}/__fault"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn export_to_s3_retries_transient_faults_and_leaves_nothing_on_persistent_ones() {
    let s3 = moto();
    let bucket = s3.bucket("tds-evals");
    let dir = tempfile::tempdir().unwrap();
    let c = eval_corpus(dir.path());
    let proxy = PyServer::start("fault_proxy.py", &["--upstream", &s3.endpoint]);
    let export = |prefix: &str, extra: &[&str]| {
        let to = format!("s3://{bucket}/{prefix}/");
        let mut args = vec!["export", "bfcl", &c, "--to", &to];
        let defaults: &[&str] = &["--retries", "3", "--retry-timeout", "20s"];
        args.extend_from_slice(if extra.is_empty() { defaults } else { extra });
        bin()
            .args(&args)
            .envs(s3.env())
            .env("AWS_ENDPOINT_URL", &proxy.url)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap()
    };
    // Reference: the same export to a local folder.
    let local = dir.path().join("local");
    let o = run(&["export", "bfcl", &c, "--to", local.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: BTreeSet<String> = files_under(&local).into_iter().collect();

    // Transient: two 500s, then a dropped connection; both retried, the export completes.
    set_fault(&proxy.url, json!({"mode": "500", "nth": 2, "count": 2}));
    let o = export("evals/a", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    set_fault(&proxy.url, json!({"mode": "drop", "nth": 3, "count": 1}));
    let o = export("evals/b", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for p in ["evals/a/", "evals/b/"] {
        let keys: BTreeSet<String> = s3_keys(&s3.endpoint, &bucket, p)
            .into_iter()
            .map(|k| k.trim_start_matches(p).to_string())
            .collect();
        assert_eq!(keys, expected, "{p}");
    }
    let stats: Value = serde_json::from_slice(
        &Command::new("curl")
            .args(["-sf", &format!("{}/__stats", proxy.url)])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(n(&stats["faults"]) >= 1.0);

    // Persistent: every request from the 4th on fails. Clear error, no manifest, nothing left.
    set_fault(&proxy.url, json!({"mode": "500", "nth": 4, "count": -1}));
    let o = export("evals/c", &["--retries", "2", "--retry-timeout", "3s"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("no manifest was written"), "{err}");
    assert!(err.contains("Run the same command again"), "{err}");
    assert!(
        !err.contains(SECRET) && !stdout(&o).contains(SECRET),
        "credentials leaked: {err}"
    );
    // Nothing of the failed export is visible (staged uploads are never completed).
    set_fault(&proxy.url, json!({"mode": "none"}));
    let left = s3_keys(&s3.endpoint, &bucket, "evals/c/");
    assert!(left.is_empty(), "objects left by a failed export: {left:?}");
    // Re-running after the fault completes the export.
    let o = export("evals/c", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let keys: BTreeSet<String> = s3_keys(&s3.endpoint, &bucket, "evals/c/")
        .into_iter()
        .map(|k| k.trim_start_matches("evals/c/").to_string())
        .collect();
    assert_eq!(keys, expected);
}

/// The state letter of a process (`R`, `S`, `T` for stopped…), from `/proc/<pid>/stat`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[test]
fn export_killed_mid_commit_is_cleaned_and_completed_by_the_next_run() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let c = eval_corpus(dir.path());
    let reference = dir.path().join("reference");
    let o = run(&["export", "bfcl", &c, "--to", reference.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = files_under(&reference);
    assert!(expected.len() >= 4, "{expected:?}");

    // A complete earlier export, then the same export again, stopped right after its commit
    // made the first file visible, and killed there.
    let to = dir.path().join("out");
    let o = run(&["export", "bfcl", &c, "--to", to.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = bin()
        .args(["export", "bfcl", &c, "--to", to.to_str().unwrap()])
        .env("TDSCALE_PAUSE_AT", "export-commit")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while process_state(child.id()) != Some('T') {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export finished instead of stopping in its commit"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the export never reached its commit"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = files_under(&to);
    assert!(
        left.iter().any(|f| f == ".tdscale-commit.json"),
        "the commit journal is there: {left:?}"
    );
    assert!(
        !left.iter().any(|f| f == "manifest.json"),
        "no manifest describes a half-replaced export: {left:?}"
    );
    assert!(
        left.iter().any(|f| f.contains('#')),
        "files not yet committed are still staged: {left:?}"
    );

    // The next run removes the interrupted commit and every stale staging file, then completes.
    let o = run(&["export", "bfcl", &c, "--to", to.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files_under(&to), expected, "nothing but the export is left");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<&Value> = manifest["files"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len() + 1, expected.len());
    for f in listed {
        let rel = f["path"].as_str().unwrap();
        let bytes = std::fs::read(to.join(rel)).unwrap();
        assert_eq!(
            f["sha256"],
            json!(hex::encode(Sha256::digest(&bytes))),
            "{rel}"
        );
        assert_eq!(bytes, std::fs::read(reference.join(rel)).unwrap(), "{rel}");
    }
}

/// Parses each string with Python's `ast.parse` (mode `eval`); returns, per string, `ok` or the
/// error, and for calls the function's name and keyword names (`**` for a spread dict).
fn python_parse(strings: &[String]) -> Vec<Value> {
    let script = r#"
import ast, json, sys
out = []
for s in json.load(sys.stdin):
    try:
        node = ast.parse(s, mode="eval").body
        if not isinstance(node, ast.Call):
            out.append({"error": "not a call"})
            continue
        kws = [k.arg if k.arg is not None else "**" for k in node.keywords]
        spread = [sorted(ast.literal_eval(k.value).keys()) for k in node.keywords if k.arg is None]
        out.append({"ok": True, "func": ast.unparse(node.func), "keywords": kws, "spread": spread})
    except SyntaxError as e:
        out.append({"error": str(e)})
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed to parse the ground truth");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(strings).unwrap().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn bfcl_multi_turn_ground_truth_is_always_python() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c").to_str().unwrap().to_string();
    // Hand-made multi-turn conversations: parameters named like Python keywords or with a
    // hyphen, strings with quotes and control characters, and a function name Python cannot
    // spell (that trajectory is skipped, with why).
    let tool = |name: &str, params: &[&str]| {
        let props: serde_json::Map<String, Value> = params
            .iter()
            .map(|p| (p.to_string(), json!({"type": "string"})))
            .collect();
        json!({"type": "function", "function": {"name": name, "description": "d", "parameters": {"type": "object", "properties": props}}})
    };
    let call = |id: &str, name: &str, args: Value| json!({"role": "assistant", "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}]});
    let result =
        |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "{\"ok\": true}"});
    let convert = json!({
        "id": "fx",
        "tools": [tool("convert_currency", &["amount", "from", "to"]), tool("search", &["max-results", "query", "class"])],
        "messages": [
            {"role": "user", "content": "Convert 500 USD to EUR."},
            call("a", "convert_currency", json!({"amount": "500", "from": "USD", "to": "EUR"})),
            result("a"),
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": "Now search."},
            call("b", "search", json!({"max-results": "5", "query": "it's\r\n\t\u{0}\"x\"\\", "class": "A"})),
            result("b"),
            {"role": "assistant", "content": "Found it."}
        ]
    });
    let bad_name = json!({
        "id": "hyphen",
        "tools": [tool("get-rate", &["pair"])],
        "messages": [
            {"role": "user", "content": "Rate?"},
            call("a", "get-rate", json!({"pair": "EURUSD"})),
            result("a"),
            {"role": "user", "content": "And again?"},
            call("b", "get-rate", json!({"pair": "EURUSD"})),
            result("b"),
            {"role": "assistant", "content": "1.1"}
        ]
    });
    let file = dir.path().join("fx.jsonl");
    std::fs::write(&file, format!("{convert}\n{bad_name}\n")).unwrap();
    let multi = shared("bfcl/BFCL_v4_multi_turn_base.json");
    let o = run(&[
        "ingest",
        &c,
        file.to_str().unwrap(),
        multi.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every trajectory, not one side of a split.
    let all = every_trajectory_query(dir.path());
    let out = dir.path().join("bfcl");
    let s = ok_json(&run(&[
        "export",
        "bfcl",
        &c,
        "--to",
        out.to_str().unwrap(),
        "--query",
        all.to_str().unwrap(),
        "--json",
    ]));
    let skipped: Vec<&Value> = s["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x[0] == "fx/hyphen")
        .collect();
    assert_eq!(skipped.len(), 1, "{}", s["skipped"]);
    assert!(
        skipped[0][1]
            .as_str()
            .unwrap()
            .contains("not a Python function name"),
        "{}",
        skipped[0][1]
    );
    let answers = read_jsonl(&out.join("possible_answer/BFCL_v4_multi_turn.json"));
    // 200 BFCL entries and the two hand-made ones, each exported or skipped with why.
    assert_eq!(
        answers.len() + s["skipped"].as_array().unwrap().len(),
        202,
        "{}",
        s["skipped"]
    );
    assert!(answers.len() >= 195);
    let mut strings = vec![];
    for a in &answers {
        for turn in a["ground_truth"].as_array().unwrap() {
            for s in turn.as_array().unwrap() {
                strings.push(s.as_str().unwrap().to_string());
            }
        }
    }
    let parsed = python_parse(&strings);
    let bad: Vec<(&String, &Value)> = strings
        .iter()
        .zip(&parsed)
        .filter(|(_, p)| p.get("ok").is_none())
        .collect();
    assert!(bad.is_empty(), "ground truth Python cannot parse: {bad:?}");
    let fx: Vec<&Value> = strings
        .iter()
        .zip(&parsed)
        .filter(|(s, _)| s.starts_with("convert_currency(") || s.starts_with("search("))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        fx,
        vec![
            &json!({"ok": true, "func": "convert_currency", "keywords": ["amount", "to", "**"], "spread": [["from"]]}),
            &json!({"ok": true, "func": "search", "keywords": ["query", "**"], "spread": [["class", "max-results"]]}),
        ]
    );
    // tdscale reads its own ground truth back to the same arguments.
    let back =
        tdscale::formats::pylit::call(strings.iter().find(|s| s.starts_with("search(")).unwrap())
            .unwrap();
    let args: serde_json::Map<String, Value> = back.keywords.into_iter().collect();
    assert_eq!(
        Value::Object(args),
        json!({"max-results": "5", "query": "it's\r\n\t\u{0}\"x\"\\", "class": "A"})
    );
    // And BFCL's own harness takes every entry.
    let r = bfcl_check(&out, false);
    assert_eq!(r["valid"], r["checked"], "failures: {}", r["failures"]);
}

/// A plan file for `export --query` choosing every trajectory instead of a split.
fn every_trajectory_query(dir: &Path) -> std::path::PathBuf {
    let all = dir.join("all.sql");
    std::fs::write(&all, "SELECT * FROM trajectories ORDER BY traj_id").unwrap();
    all
}
