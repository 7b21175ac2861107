//! A corpus rooted on S3 (moto_server started by the tests on 127.0.0.1).

use crate::common::*;

#[test]
fn corpus_on_s3_ingest_query_export() {
    let s3 = moto();
    let bucket = s3.bucket("tds-corpus");
    let root = format!("s3://{bucket}/corpora/airline");
    let file = shared("tau-bench/gpt-4o-airline.json");
    let o = s3.run(&["ingest", &root, file.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["ingested"], 200);
    let o = s3.run(&["ingest", &root, file.to_str().unwrap(), "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (s["ingested"].as_i64(), s["duplicates"].as_i64()),
        (Some(0), Some(200))
    );
    let o = s3.run(&[
        "sql",
        &root,
        "SELECT count(*) AS n, sum(num_tool_calls) AS calls FROM trajectories",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "n,calls\n200,1164");
    let o = s3.run(&[
        "sql",
        &root,
        "SELECT count(*) FROM tool_calls WHERE result IS NOT NULL",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&o).lines().nth(1), Some("1164"));
    // Export to S3: the filtered count matches SQL, and the object is there to read back.
    let o = s3.run(&[
        "sql",
        &root,
        "SELECT count(*) FROM trajectories WHERE reward = 1",
        "--format",
        "csv",
    ]);
    let solved: u64 = stdout(&o).lines().nth(1).unwrap().parse().unwrap();
    assert!(solved > 0 && solved < 200);
    let out = format!("s3://{bucket}/exports/airline.jsonl");
    let o = s3.run(&[
        "export",
        "openai",
        &root,
        "--out",
        &out,
        "--where",
        "reward = 1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(written["written"].as_u64(), Some(solved));
    let o = s3.run(&[
        "sql",
        &root,
        &format!("CREATE EXTERNAL TABLE exported STORED AS JSON LOCATION '{out}'; SELECT count(*) AS n, min(reward) AS r FROM exported"),
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("n,r\n{solved},1.0\n"));
    // Missing credentials are named, not probed for on the network.
    let o = bin()
        .args(["sql", &root, "SELECT 1"])
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("AWS_ACCESS_KEY_ID"), "{}", stderr(&o));
    // An unreachable endpoint names the problem and exits with the storage code.
    let o = bin()
        .args(["sql", &format!("s3://{bucket}/x"), "SELECT 1"])
        .envs(s3.env())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("storage error"), "{}", stderr(&o));
}

/// The table folders a corpus's LIST requests asked for, in the proxy's request log.
fn listed_tables(log: &[String], bucket: &str, corpus_prefix: &str) -> Vec<String> {
    log.iter()
        .filter_map(|r| r.strip_prefix(&format!("GET /{bucket}?")))
        .filter(|q| q.contains("list-type=2"))
        .filter_map(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .map(|p| p.replace("%2F", "/"))
        })
        .filter_map(|p| {
            p.strip_prefix(&format!("{corpus_prefix}/"))
                .map(|rest| rest.split('/').next().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn evolution_on_s3_lists_each_table_once() {
    let s3 = moto();
    let bucket = s3.bucket("tds-listings");
    let root = format!("s3://{bucket}/evo");
    let o = s3.run(&[
        "gen",
        &root,
        "--trajectories",
        "400",
        "--seed",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let proxy = PyServer::start("fault_proxy.py", &["--upstream", &s3.endpoint]);
    let o = bin()
        .args([
            "evolve",
            &root,
            "--rounds",
            "2",
            "--per-round",
            "10",
            "--backend",
            "offline",
            "--json",
        ])
        .envs(s3.env())
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["batches"].as_array().map(Vec::len), Some(2));
    let log: Vec<String> = serde_json::from_slice(
        &std::process::Command::new("curl")
            .args(["-sf", &format!("{}/__log", proxy.url)])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let listed = listed_tables(&log, &bucket, "evo");
    assert!(
        listed.iter().any(|t| t == "trajectories"),
        "the log shows no listing of the corpus: {log:?}"
    );
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for t in &listed {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    // The session lists each table once; besides, each batch's commit lists `trajectories` to
    // check the ids other writers committed meanwhile (one listing per batch, not per query).
    let batches = 2;
    assert_eq!(
        counts.remove("trajectories"),
        Some(1 + batches),
        "two evolution rounds listed trajectories more than once per batch: {listed:?}"
    );
    assert!(
        counts.values().all(|&n| n == 1),
        "two evolution rounds listed a table more than once: {counts:?}"
    );
}
