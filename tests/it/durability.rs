//! A process killed mid-ingest leaves no partial file visible, and the re-run completes the
//! corpus with no duplicates.

use std::time::{Duration, Instant};

use crate::common::*;

fn write_big_jsonl(path: &std::path::Path, n: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let pad = "x".repeat(400);
    for i in 0..n {
        writeln!(
            w,
            r#"{{"id": "t{i}", "messages": [{{"role": "user", "content": "task {i} {pad}"}}, {{"role": "assistant", "content": null, "tool_calls": [{{"id": "c1", "type": "function", "function": {{"name": "lookup", "arguments": "{{\"key\": \"k{i}\"}}"}}}}]}}, {{"role": "tool", "tool_call_id": "c1", "content": "value {i}"}}, {{"role": "assistant", "content": "done"}}]}}"#
        )
        .unwrap();
    }
}

#[tokio::test]
async fn kill_during_ingest_then_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let n = 300_000;
    write_big_jsonl(&input, n);
    let root = dir.path().join("corpus");
    let table = root.join("trajectories");
    let mut child = bin()
        .args([
            "ingest",
            root.to_str().unwrap(),
            input.to_str().unwrap(),
            "--rows-per-file",
            "20000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the first part file is complete, while later ones are being written.
    let start = Instant::now();
    loop {
        if files_under(&table).iter().any(|f| f.ends_with(".parquet")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no part file appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "ingest finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the ingest was killed, not finished");

    // Every visible file is a complete Parquet file; staging files are not visible.
    let visible: Vec<String> = files_under(&table)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .collect();
    assert!(!visible.is_empty());
    let corpus = tdscale::store::Corpus::open(root.to_str().unwrap()).unwrap();
    let partial = scalar_i64(&corpus, "SELECT count(*) FROM trajectories").await;
    assert!(
        partial > 0 && (partial as usize) < n,
        "some but not all rows: {partial}"
    );
    // Each visible file is a whole part: its footer reads and it holds a full roll of rows.
    let mut rows_in_files = 0;
    for f in &visible {
        let file = std::fs::File::open(table.join(f)).unwrap();
        let reader = datafusion::parquet::file::reader::SerializedFileReader::new(file)
            .expect("a complete Parquet file");
        let rows = datafusion::parquet::file::reader::FileReader::metadata(&reader)
            .file_metadata()
            .num_rows();
        assert_eq!(rows, 20000, "{f} is a whole part");
        rows_in_files += rows;
    }
    assert_eq!(rows_in_files, partial);

    let o = run(&[
        "ingest",
        root.to_str().unwrap(),
        input.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["duplicates"].as_i64().unwrap(), partial);
    assert_eq!(s["ingested"].as_i64().unwrap(), n as i64 - partial);
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM trajectories").await,
        n as i64
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(DISTINCT traj_id) FROM trajectories").await,
        n as i64
    );
    assert!(
        !files_under(&table).iter().any(|f| f.contains('#')),
        "staging files are cleaned up by the re-run"
    );
}
