//! The same SQL on a Ballista cluster of tdscale nodes: an in-process cluster (scheduler and two
//! executors) and a cluster of separate tdscale processes, each compared with the embedded run.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use serde_json::Value;
use tdscale::query::{params, session};
use tdscale::store::Corpus;

use crate::common::*;

/// A corpus of several Parquet files: 3,000 generated trajectories ingested 400 per file.
fn multi_file_corpus(dir: &Path) -> String {
    let gen_dir = dir.join("gen");
    let jsonl = dir.join("gen.jsonl");
    let o = run(&[
        "gen",
        gen_dir.to_str().unwrap(),
        "--trajectories",
        "3000",
        "--seed",
        "21",
        "--jsonl",
        jsonl.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = dir.join("c").to_str().unwrap().to_string();
    let o = run(&[
        "ingest",
        &c,
        jsonl.to_str().unwrap(),
        "--rows-per-file",
        "400",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = files_under(&Path::new(&c).join("trajectories"));
    assert!(files.len() >= 7, "{files:?}");
    c
}

/// The plans compared: metrics by group, the per-trajectory view, and pure-SQL selections.
fn plans() -> Vec<(String, String)> {
    let q = |f: &str| std::fs::read_to_string(repo().join("queries").join(f)).unwrap();
    let budget = |f: &str| {
        let p = HashMap::from([
            ("budget".to_string(), "500".to_string()),
            ("seed".to_string(), "3".to_string()),
            ("unit".to_string(), "trajectories".to_string()),
        ]);
        params::substitute(&q(f), &p).unwrap()
    };
    vec![
        ("diversity_by_round".into(), q("diversity_by_round.sql")),
        (
            "by_domain".into(),
            "SELECT domain, count(*) AS n, domain_entropy(domain) AS de, reasoning_mode_entropy(mode) AS rme,
                    normalized_entropy(mode) AS nrme, sum(cac) AS cac, max(tools_used) AS tools
             FROM trajectory_metrics GROUP BY domain ORDER BY domain"
                .into(),
        ),
        (
            "window".into(),
            "SELECT traj_id, sum(action_complexity(messages)) OVER (PARTITION BY domain ORDER BY traj_id) AS running,
                    seeded_hash(traj_id, 5) AS h, cardinality(step_complexity(messages)) AS steps
             FROM trajectories ORDER BY traj_id"
                .into(),
        ),
        ("budget_stratified".into(), budget("budget_stratified.sql")),
        ("budget_random".into(), budget("budget_random.sql")),
        ("budget_complexity".into(), budget("budget_complexity.sql")),
        ("budget_greedy_entropy".into(), budget("budget_greedy_entropy.sql")),
    ]
}

fn rows(batches: &[RecordBatch]) -> Vec<Value> {
    let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    w.write_batches(&refs).unwrap();
    w.finish().unwrap();
    let v: Value = serde_json::from_slice(&w.into_inner()).unwrap_or(Value::Array(vec![]));
    v.as_array().cloned().unwrap_or_default()
}

/// Equal, numbers up to 1e-9 relative (sums of floats are added in another order).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

async fn run_on(ctx: &SessionContext, sql: &str) -> Vec<Value> {
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows(&batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_cluster_gives_the_embedded_results() {
    let dir = tempfile::tempdir().unwrap();
    let c = multi_file_corpus(dir.path());
    let corpus = Corpus::open(&c).unwrap();
    let embedded = session::CorpusSession::open(&corpus).await.unwrap();
    let url = tdscale::distributed::local_cluster(2, 2).await.unwrap();
    let cluster = session::CorpusSession::on(
        &corpus,
        tdscale::distributed::cluster_context(&url).await.unwrap(),
    )
    .await
    .unwrap();
    let (embedded, cluster) = (embedded.ctx(), cluster.ctx());
    for (name, sql) in plans() {
        let a = run_on(embedded, &sql).await;
        let b = run_on(cluster, &sql).await;
        assert!(!a.is_empty(), "{name}: no rows");
        assert_eq!(a.len(), b.len(), "{name}: row counts differ");
        for (x, y) in a.iter().zip(&b) {
            assert!(same(x, y), "{name}: embedded {x} vs cluster {y}");
        }
    }
    // The diversity report (`tdscale report --cluster`) is the same too.
    let by = tdscale::report::GroupBy::Domain;
    let a = tdscale::report::build_on(embedded, by, "c").await.unwrap();
    let b = tdscale::report::build_on(cluster, by, "c").await.unwrap();
    assert!(
        same(
            &serde_json::to_value(&a).unwrap(),
            &serde_json::to_value(&b).unwrap()
        ),
        "the report differs on the cluster"
    );
    // The plan really is distributed: Ballista splits it into stages joined by shuffles.
    let explain = run_on(
        cluster,
        "EXPLAIN SELECT domain_entropy(domain) FROM trajectories",
    )
    .await;
    assert!(
        explain.iter().any(|r| r["plan_type"] == "distributed_plan"
            && r["plan"]
                .as_str()
                .unwrap_or("")
                .contains("ShuffleWriterExec")),
        "{explain:?}"
    );
}

/// Distinct free loopback ports (all held until every one is chosen).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// A tdscale node process, killed when dropped; its output goes to `log`.
struct Node {
    child: Child,
    log: std::path::PathBuf,
}

impl Node {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the node accepts connections on `port`: an executor started before its
    /// scheduler listens gives up at once (it happened on a busy machine).
    fn wait_listening(&mut self, port: u16) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the node died: {}",
                self.log()
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the node did not listen on port {port} within 60 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node(log: std::path::PathBuf, args: &[&str]) -> Node {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = bin();
    cmd.args(args)
        .env("RUST_LOG", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Node {
        child: cmd.spawn().unwrap(),
        log,
    }
}

/// Runs tdscale, killed after `limit` (a client waiting on a cluster that cannot run its job).
fn run_within(args: &[&str], limit: Duration) -> Option<std::process::Output> {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(child.wait_with_output().unwrap())
}

fn sql_json(args: &[&str]) -> std::process::Output {
    bin().args(args).output().unwrap()
}

#[test]
fn separate_processes_run_tdscale_sql_and_fail_clearly_when_an_executor_dies() {
    let dir = tempfile::tempdir().unwrap();
    let c = multi_file_corpus(dir.path());
    let [sp, ep, gp] = free_ports::<3>();
    let mut scheduler = node(
        dir.path().join("scheduler.log"),
        &[
            "cluster",
            "scheduler",
            "--bind",
            &format!("127.0.0.1:{sp}"),
            "--executor-timeout",
            "5",
        ],
    );
    scheduler.wait_listening(sp);
    let mut executor = node(
        dir.path().join("executor.log"),
        &[
            "cluster",
            "executor",
            "--scheduler",
            &format!("127.0.0.1:{sp}"),
            "--bind",
            &format!("127.0.0.1:{ep}"),
            "--grpc-port",
            &gp.to_string(),
            "--concurrency",
            "2",
            "--heartbeat",
            "1",
        ],
    );
    let url = format!("df://127.0.0.1:{sp}");
    let q = repo().join("queries/diversity_by_round.sql");
    let embedded = sql_json(&["sql", &c, "-f", q.to_str().unwrap(), "--format", "json"]);
    assert!(embedded.status.success(), "{}", stderr(&embedded));
    // The executor registers within a few seconds; each attempt gets 20 s.
    let started = Instant::now();
    let distributed = loop {
        assert!(
            executor.child.try_wait().unwrap().is_none(),
            "the executor died: {}",
            executor.log()
        );
        let attempt = run_within(
            &[
                "sql",
                &c,
                "--cluster",
                &url,
                "-f",
                q.to_str().unwrap(),
                "--format",
                "json",
            ],
            Duration::from_secs(20),
        );
        match attempt {
            Some(o) if o.status.success() => break o,
            other => assert!(
                started.elapsed() < Duration::from_secs(60),
                "the cluster never answered ({:?}).\nscheduler: {}\nexecutor: {}",
                other.map(|o| stderr(&o)),
                scheduler.log(),
                executor.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let parse = |o: &std::process::Output| json_lines(&stdout(o));
    // It ran on the cluster: the client's plan is a distributed one.
    let explain = sql_json(&[
        "sql",
        &c,
        "--cluster",
        &url,
        "--format",
        "csv",
        "EXPLAIN SELECT count(*) FROM trajectories",
    ]);
    assert!(
        stdout(&explain).contains("distributed_plan"),
        "{}",
        stdout(&explain)
    );
    let (a, b) = (parse(&embedded), parse(&distributed));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(same(x, y), "embedded {x} vs cluster {y}");
    }
    // Kill the only executor during a long query: a clear error, never a wrong answer.
    let heavy = "WITH s AS (SELECT minhash(user_text(messages), 64) AS sig FROM trajectories WHERE seeded_hash(traj_id, 1) % 2 = 0)
                 SELECT count(*) AS n, sum(jaccard(a.sig, b.sig)) AS s FROM s a CROSS JOIN s b";
    let mut client = Command::new(env!("CARGO_BIN_EXE_tdscale"))
        .args(["sql", &c, "--cluster", &url, "--format", "json", heavy])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        client.try_wait().unwrap().is_none(),
        "the query ended before the executor was killed: make it heavier"
    );
    let _ = executor.child.kill();
    let _ = executor.child.wait();
    let started = Instant::now();
    while client.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = client.kill();
            panic!("the query neither failed nor finished within 120 s of losing its executor");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = client.wait_with_output().unwrap();
    eprintln!(
        "after losing the executor: {:?} {}",
        out.status,
        stderr(&out)
    );
    if out.status.success() {
        let expected = sql_json(&["sql", &c, "--format", "json", heavy]);
        assert!(expected.status.success(), "{}", stderr(&expected));
        let (x, y) = (parse(&expected), parse(&out));
        assert!(
            x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| same(p, q)),
            "a wrong answer after losing the executor: {y:?} vs {x:?}"
        );
    } else {
        let err = stderr(&out);
        // The last line is tdscale's error; Ballista may log the failure before it.
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error:") && last.contains("executor"),
            "a failure without a clear message: {err}"
        );
        assert_eq!(out.status.code(), Some(4), "{err}");
    }
}
