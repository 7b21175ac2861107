//! `tdscale sql`: statements, files, parameters, formats and errors.

use crate::common::*;

fn corpus_with_data() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c").to_str().unwrap().to_string();
    let o = run(&[
        "ingest",
        &root,
        testdata("formats/openai_chat.jsonl").to_str().unwrap(),
        testdata("formats/tau_bench_retail.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (dir, root)
}

#[test]
fn formats_table_csv_json_and_parquet_file() {
    let (dir, root) = corpus_with_data();
    let q = "SELECT source, count(*) AS n FROM trajectories GROUP BY source ORDER BY source";
    let o = run(&["sql", &root, q]);
    assert!(
        stdout(&o).contains("| openai_chat      | 3 |"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("(2 rows)"));
    let o = run(&["sql", &root, q, "--format", "csv"]);
    assert_eq!(stdout(&o), "source,n\nopenai_chat,3\ntau_bench_retail,2\n");
    let o = run(&["sql", &root, q, "--format", "json"]);
    let rows = json_lines(&stdout(&o));
    assert_eq!(
        rows[1],
        serde_json::json!({"source": "tau_bench_retail", "n": 2})
    );
    let out = dir.path().join("out/r.parquet");
    let o = run(&[
        "sql",
        &root,
        q,
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "sql",
        &root,
        &format!("SELECT sum(n) FROM '{}'", out.display()),
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().nth(1), Some("5"));
    let o = run(&["sql", &root, q, "--format", "parquet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--out"));
}

#[test]
fn files_of_statements_with_parameters() {
    let (dir, root) = corpus_with_data();
    let plan = dir.path().join("plan.sql");
    std::fs::write(&plan, "CREATE VIEW rich AS SELECT * FROM trajectories WHERE num_tool_calls >= ${min_calls:1};\nSELECT count(*) AS n FROM rich WHERE source = '${source}';").unwrap();
    let o = run(&[
        "sql",
        &root,
        "-f",
        plan.to_str().unwrap(),
        "-p",
        "source=openai_chat",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n\n3\n");
    let o = run(&[
        "sql",
        &root,
        "-f",
        plan.to_str().unwrap(),
        "-p",
        "source=openai_chat",
        "-p",
        "min_calls=3",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&o), "n\n1\n");
    let o = run(&["sql", &root, "-f", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("parameter `source` has no value"),
        "{}",
        stderr(&o)
    );
    // The bundled summary plan runs as is.
    let o = run(&[
        "sql",
        &root,
        "-f",
        repo().join("queries/corpus_summary.sql").to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("openai_chat,openai,3,6"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn errors_name_the_problem_and_exit_non_zero() {
    let (_dir, root) = corpus_with_data();
    let o = run(&["sql", &root, "SELECT * FROM nosuch"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("nosuch") && stderr(&o).contains("not found"),
        "{}",
        stderr(&o)
    );
    let o = run(&["sql", &root, "SELEC count(*) FROM trajectories"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("Line: 1, Column: 1"), "{}", stderr(&o));
    let o = run(&["sql", &root, "SELECT count(* FROM trajectories"]);
    assert!(stderr(&o).contains("Column"), "{}", stderr(&o));
    let o = run(&["sql", "ftp://x/y", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn statements_from_standard_input() {
    use std::io::Write;
    let (_dir, root) = corpus_with_data();
    let mut child = bin()
        .args(["sql", &root, "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n FROM trajectories;\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "n\n5\n");
}

/// A statement that starts with a comment begins with `--`, which is SQL, not a flag; the flags
/// around it still work.
#[test]
fn a_statement_that_starts_with_a_comment_is_sql() {
    let (_dir, root) = corpus_with_data();
    let count = "SELECT count(*) AS n FROM trajectories";
    for sql in [
        format!("-- how many\n{count}"),
        format!("--{count}\n{count}"),
    ] {
        for args in [
            vec!["sql", &root, &sql, "--format", "csv"],
            vec!["sql", "--format", "csv", &root, &sql],
        ] {
            let o = run(&args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
            assert_eq!(stdout(&o), "n\n5\n", "{args:?}");
        }
    }
}

#[test]
fn empty_corpus_has_empty_tables() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty");
    let o = run(&[
        "sql",
        root.to_str().unwrap(),
        "SELECT count(*) AS n FROM trajectories",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n\n0\n");
    let o = run(&[
        "sql",
        root.to_str().unwrap(),
        "SELECT count(*) AS n FROM tool_calls",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&o), "n\n0\n");
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c");
    let o = run(&[
        "gen",
        c.to_str().unwrap(),
        "--trajectories",
        "20000",
        "--seed",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = bin()
        .args([
            c.to_str().unwrap(),
            "--format",
            "csv",
            "SELECT traj_id FROM trajectories",
        ])
        .arg("--")
        .args(Vec::<&str>::new())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _ = &mut child;
    let _ = child.kill();
    let _ = child.wait();
    let mut child = bin()
        .args([
            "sql",
            c.to_str().unwrap(),
            "--format",
            "csv",
            "SELECT traj_id FROM trajectories",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "traj_id");
    // The reader is gone: tdscale stops like `yes | head` does, without an error message.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn a_very_long_expression_is_an_error_not_a_crash() {
    let (_dir, root) = corpus_with_data();
    // 8,000 terms: deeper than any plan may nest.
    let long = format!("SELECT {} AS n", vec!["1"; 8000].join(" + "));
    let o = run(&["sql", &root, &long]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("nests too deeply"), "{err}");
    // Deep parentheses are refused by the parser's recursion limit, also with exit code 4.
    let parens = format!("SELECT {}1{} AS n", "(".repeat(5000), ")".repeat(5000));
    let o = run(&["sql", &root, &parens]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // Ordinary long expressions still run: 500 terms, and an OR chain of 300 conditions.
    let sum = format!("SELECT {} AS n", vec!["2"; 500].join(" + "));
    let o = run(&["sql", &root, &sum, "--format", "csv"]);
    assert_eq!(stdout(&o), "n\n1000\n", "{}", stderr(&o));
    let ors = (0..300)
        .map(|i| format!("num_turns = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let q = format!("SELECT count(*) AS n FROM trajectories WHERE {ors}");
    let o = run(&["sql", &root, &q, "--format", "csv"]);
    assert_eq!(stdout(&o), "n\n5\n", "{}", stderr(&o));
}

/// The `spill_count` of the SortExec in an EXPLAIN ANALYZE output.
fn sort_spills(explain_csv: &str) -> u64 {
    let at = explain_csv
        .find("SortExec")
        .unwrap_or_else(|| panic!("no SortExec: {explain_csv}"));
    let rest = &explain_csv[at..];
    let n = rest
        .split("spill_count=")
        .nth(1)
        .unwrap_or_else(|| panic!("no spill_count: {rest}"));
    n[..n.find(|c: char| !c.is_ascii_digit()).unwrap()]
        .parse()
        .unwrap()
}

#[test]
fn memory_limit_makes_sorts_spill_and_refuses_what_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c").to_str().unwrap().to_string();
    let o = run(&["gen", &root, "--trajectories", "60000", "--seed", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // About 50 MB of rows to sort. One partition and small batches make a 16 MiB pool hold many
    // batches, as a large corpus would under a few GiB.
    let settings = "SET datafusion.execution.target_partitions = 1; SET datafusion.execution.batch_size = 1024; SET datafusion.execution.sort_spill_reservation_bytes = 2097152;";
    let q = "SELECT traj_id, messages FROM trajectories ORDER BY num_tokens DESC, traj_id";
    let explain = format!("{settings} EXPLAIN ANALYZE {q}");
    let limited = run(&[
        "sql",
        &root,
        &explain,
        "--format",
        "csv",
        "--memory-limit",
        "16MiB",
    ]);
    assert!(limited.status.success(), "{}", stderr(&limited));
    assert!(sort_spills(&stdout(&limited)) > 0, "{}", stdout(&limited));
    let unlimited = run(&["sql", &root, &explain, "--format", "csv"]);
    assert!(unlimited.status.success(), "{}", stderr(&unlimited));
    assert_eq!(sort_spills(&stdout(&unlimited)), 0);
    // Spilling changes nothing in the result.
    let q = format!("{settings} {q}");
    let limited = run(&[
        "sql",
        &root,
        &q,
        "--format",
        "json",
        "--memory-limit",
        "16MiB",
    ]);
    let unlimited = run(&["sql", &root, &q, "--format", "json"]);
    assert!(limited.status.success(), "{}", stderr(&limited));
    assert_eq!(stdout(&limited).lines().count(), 60_000);
    assert!(
        stdout(&limited) == stdout(&unlimited),
        "the spilled sort differs"
    );
    // With the default batches a 16 MiB pool is too small even for spilling: a clear SQL error.
    let o = run(&[
        "sql",
        &root,
        q.trim_start_matches(settings),
        "--memory-limit",
        "16MiB",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("Resources exhausted"), "{}", stderr(&o));
    // `report` takes the option too, and reports the same.
    let a = run(&["report", &root, "--json", "--memory-limit", "256MiB"]);
    let b = run(&["report", &root, "--json"]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    let o = run(&["sql", &root, "SELECT 1", "--memory-limit", "lots"]);
    assert_eq!(o.status.code(), Some(2));
}
