//! `tdscale serve`: every page in a real browser (headless Chromium through Playwright, driven
//! by `tests/browser/serve_pages.py`) on the tau-bench data, an evolved round, clusters of the
//! BFCL catalogs and a hostile trajectory; the JSON API against numbers computed apart with
//! `tdscale sql`; read-only SQL, timeouts, memory limits, the token and the host check; new
//! files showing up; an S3 corpus.

use std::collections::HashSet;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::common::*;

/// A `tdscale serve` process, killed when dropped.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    addr: String,
}

impl Server {
    /// Starts the server on a free loopback port with `extra` options and `env`.
    fn start(corpus: &str, extra: &[&str], env: &[(&str, String)]) -> Self {
        use std::os::unix::process::CommandExt;
        let mut cmd = bin();
        cmd.args(["serve", corpus, "--bind", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start tdscale serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the first line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("tdscale serve did not print its address: {line:?}"))
            .to_string();
        let s = Self { child, addr };
        let token = env
            .iter()
            .find(|(k, _)| *k == "TDSCALE_SERVE_TOKEN")
            .map(|(_, v)| format!("Bearer {v}"));
        s.wait_for_index(token.as_deref());
        s
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (bounded) until the trajectory index is in memory, so tests see a settled server.
    fn wait_for_index(&self, authorization: Option<&str>) {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        for _ in 0..600 {
            let r = get(&self.addr, "/api/status", &headers);
            if r.status == 200 && r.json()["index"]["materialized"] == json!(true) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the trajectory index was not built within 60 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect to the server");
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = vec![];
    s.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        let mut out = vec![];
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            rest = &rest[eol + 2 + n + 2..];
        }
        body = out;
    }
    Response {
        status,
        headers,
        body,
    }
}

fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers, b"")
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs SQL in the console's API.
fn console(addr: &str, sql: &str) -> Response {
    request(
        addr,
        "POST",
        "/api/sql",
        &[("Content-Type", "application/json")],
        json!({ "sql": sql }).to_string().as_bytes(),
    )
}

/// The hostile trajectory: markup and script in every text a page shows.
const HOSTILE_ID: &str = "<img src=x onerror=window.__pwned=3>";

fn hostile_file(dir: &Path) -> PathBuf {
    let record = json!({
        "id": HOSTILE_ID,
        "messages": [
            {"role": "system", "content": "<script>window.__pwned=4</script>"},
            {"role": "user", "content": "<script>window.__pwned=1</script> please help"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "<b>lookup</b>", "arguments": "{\"q\": \"</pre><img src=x onerror=window.__pwned=2>\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "<svg onload=window.__pwned=5><a href=\"javascript:window.__pwned=6\">click</a>"},
            {"role": "assistant", "content": "<iframe srcdoc=\"<script>parent.__pwned=7</script>\"></iframe> done"}
        ],
        "tools": [{"type": "function", "function": {"name": "<b>lookup</b>", "description": "<style>body{display:none}</style>",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    });
    let p = dir.join("hostile.jsonl");
    std::fs::write(&p, format!("{record}\n")).unwrap();
    p
}

fn ok(o: std::process::Output) {
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
}

/// tau-bench, the hostile trajectory (with a hostile domain label), the BFCL multi-turn
/// catalogs and their clusters, and one evolved round (offline backend).
fn browser_corpus(dir: &Path) -> String {
    let root = dir.join("corpus").to_str().unwrap().to_string();
    ok(run(&[
        "ingest",
        &root,
        shared("tau-bench/gpt-4o-airline.json").to_str().unwrap(),
    ]));
    ok(run(&[
        "ingest",
        &root,
        hostile_file(dir).to_str().unwrap(),
        "--domain",
        "<i>evil</i>",
    ]));
    let mut args = vec![
        "ingest".to_string(),
        root.clone(),
        "--table".into(),
        "tools".into(),
    ];
    for f in std::fs::read_dir(shared("bfcl/multi_turn_func_doc")).unwrap() {
        args.push(f.unwrap().path().to_str().unwrap().to_string());
    }
    ok(bin().args(&args).output().unwrap());
    ok(run(&["clusters", "build", &root]));
    ok(run(&[
        "evolve",
        &root,
        "--rounds",
        "1",
        "--per-round",
        "30",
        "--backend",
        "offline",
    ]));
    root
}

fn one_number(corpus: &str, sql: &str) -> i64 {
    let rows = sql_rows(corpus, sql);
    number(rows[0].as_object().unwrap().values().next().unwrap()) as i64
}

/// The leaves of JSON arguments as they count for a dependency: strings of at least 3
/// characters and numbers other than 0 and 1 (DESIGN.md, dep_t).
fn needles(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.chars().count() >= 3 => out.push(s.clone()),
        Value::Number(n) if n.as_f64().is_some_and(|x| x != 0.0 && x != 1.0) => {
            out.push(n.to_string())
        }
        Value::Array(a) => a.iter().for_each(|x| needles(x, out)),
        Value::Object(o) => o.values().for_each(|x| needles(x, out)),
        _ => {}
    }
}

/// What the trajectory page must show for `id`, from `tdscale sql` (the `tool_calls` view and
/// `step_complexity`), and the number of (call, earlier result) dependencies counted here.
fn expected_trajectory(corpus: &str, id: &str) -> Value {
    let lit = id.replace('\'', "''");
    let calls = sql_rows(
        corpus,
        &format!(
            "SELECT tool_name, arguments, result, is_error FROM tool_calls WHERE traj_id = '{lit}' ORDER BY msg_index, call_index"
        ),
    );
    let steps = sql_rows(
        corpus,
        &format!(
            "SELECT unnest(step_complexity(messages)) AS c FROM trajectories WHERE traj_id = '{lit}'"
        ),
    );
    assert_eq!(calls.len(), steps.len());
    let messages = sql_rows(
        corpus,
        &format!("SELECT messages FROM trajectories WHERE traj_id = '{lit}'"),
    );
    let messages = messages[0]["messages"].as_array().unwrap().clone();
    let mut arrows = 0;
    let mut earlier: Vec<(usize, String)> = vec![];
    for (i, m) in messages.iter().enumerate() {
        match m["role"].as_str().unwrap() {
            "tool" => earlier.push((i, m["content"].as_str().unwrap_or("").to_string())),
            "assistant" => {
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    let args: Value = serde_json::from_str(c["arguments"].as_str().unwrap())
                        .unwrap_or(Value::Null);
                    let mut ns = vec![];
                    needles(&args, &mut ns);
                    let sources: HashSet<usize> = ns
                        .iter()
                        .filter_map(|n| earlier.iter().rev().find(|(_, t)| t.contains(n)))
                        .map(|(at, _)| *at)
                        .collect();
                    arrows += sources.len();
                }
            }
            _ => {}
        }
    }
    json!({
        "id": id,
        "calls": calls.iter().zip(&steps).map(|(c, s)| json!({
            "name": c["tool_name"], "arguments": c["arguments"], "result": c["result"],
            "is_error": c["is_error"].as_bool().unwrap_or(false), "step": number(&s["c"]),
        })).collect::<Vec<_>>(),
        "arrows": arrows,
    })
}

/// Chromium and Playwright for Python, or a failure saying how to get them.
fn browser_prerequisites() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Debian's chromium at /usr/bin/chromium: run scripts/test.sh (which installs it) or `apt-get install -y chromium`"
    );
    let o = Command::new("python3")
        .args(["-c", "import playwright"])
        .output()
        .expect("python3 is needed by the browser tests");
    assert!(
        o.status.success(),
        "the browser tests need Playwright for Python: run scripts/test.sh (which installs it) or `pip install playwright` (the package only; the browser is Debian's chromium)"
    );
}

#[test]
fn every_page_in_a_real_browser() {
    browser_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let root = browser_corpus(dir.path());

    // What the pages must show, computed with `tdscale sql` on the corpus's own views.
    let evolved = sql_rows(
        &root,
        "SELECT traj_id, parent_id FROM trajectories WHERE \"round\" = 1 ORDER BY traj_id LIMIT 1",
    );
    assert!(!evolved.is_empty(), "the offline round accepted nothing");
    let mut kinds: Vec<String> = sql_rows(&root, "SELECT reasons FROM synthesis_rejects")
        .iter()
        .flat_map(|r| {
            r["reasons"]
                .as_str()
                .unwrap()
                .split("; ")
                .map(tdscale::serve::api::reason_kind)
                .collect::<Vec<_>>()
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    let top_cluster = sql_rows(
        &root,
        "SELECT e.cluster_id, min(e.field) AS field, c.size FROM cluster_edges e JOIN clusters c USING (cluster_id) GROUP BY e.cluster_id, c.size ORDER BY count(*) DESC, e.cluster_id LIMIT 1",
    );
    let airline = one_number(
        &root,
        "SELECT count(*) FROM trajectories WHERE domain = 'airline'",
    );
    let expect = json!({
        "trajectories": one_number(&root, "SELECT count(*) FROM trajectories"),
        "round1": one_number(&root, "SELECT count(*) FROM trajectories WHERE \"round\" = 1"),
        "domain": "airline",
        "cac_min": 12,
        "domain_cac_count": one_number(&root, "SELECT count(*) FROM trajectory_metrics WHERE domain = 'airline' AND cac >= 12"),
        "where": "cardinality(messages) > 20 AND reward = 1",
        "where_count": one_number(&root, "SELECT count(*) FROM trajectories WHERE cardinality(messages) > 20 AND reward = 1"),
        "hostile_id": format!("hostile/{HOSTILE_ID}"),
        "hostile_texts": [
            format!("hostile/{HOSTILE_ID}"),
            "<script>window.__pwned=1</script> please help",
            "<b>lookup</b>",
            "</pre><img src=x onerror=window.__pwned=2>",
            "<svg onload=window.__pwned=5><a href=\"javascript:window.__pwned=6\">click</a>",
            "<iframe srcdoc=\"<script>parent.__pwned=7</script>\"></iframe> done",
            "<i>evil</i>",
        ],
        "trajectory": expected_trajectory(&root, "gpt-4o-airline/0/0"),
        "evolved_id": evolved[0]["traj_id"],
        "evolved_parent": evolved[0]["parent_id"],
        "rounds": one_number(&root, "SELECT count(*) FROM rounds"),
        "reason_kinds": kinds,
        // The airline tools have no definitions in this corpus (it has BFCL's catalogs), so their
        // requests fail in the planner: rejections without a trajectory.
        "rejected_with_trajectory": one_number(&root, "SELECT count(*) FROM synthesis_rejects WHERE trajectory IS NOT NULL"),
        "first_rejection": sql_rows(&root, "SELECT batch_id, seed_id FROM synthesis_rejects ORDER BY batch_id, seed_id LIMIT 1")[0],
        "clusters": one_number(&root, "SELECT count(*) FROM clusters"),
        "cluster_id": top_cluster[0]["cluster_id"],
        "cluster_tools": top_cluster[0]["size"],
        "cluster_edge_field": top_cluster[0]["field"],
        "good_sql": "SELECT domain, count(*) AS n FROM trajectories WHERE domain = 'airline' GROUP BY domain",
        "good_rows": ["airline", airline.to_string()],
        "good_csv": [["airline", airline.to_string()]],
        "bad_sql": [
            ["SELEC domain FROM trajectories", "parse error"],
            ["SELECT no_such_column FROM trajectories", "no_such_column"],
            ["COPY (SELECT 1) TO '/tmp/tdscale-serve-copy.csv'", "read-only"],
            ["INSERT INTO rounds SELECT * FROM rounds", "read-only"],
            ["DROP VIEW tool_calls", "read-only"],
            ["SELECT * FROM '/etc/passwd'", "not found"],
        ],
    });
    assert!(
        expect["domain_cac_count"].as_i64().unwrap() > 50,
        "{expect}"
    );
    assert!(expect["trajectory"]["arrows"].as_i64().unwrap() > 0);
    let expect_file = dir.path().join("expect.json");
    std::fs::write(&expect_file, expect.to_string()).unwrap();

    let server = Server::start(&root, &[], &[]);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-browser");
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new("python3")
        .arg(repo().join("tests/browser/serve_pages.py"))
        .args(["--url", &server.url(), "--expect"])
        .arg(&expect_file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run python3 tests/browser/serve_pages.py");
    println!("{}{}", stdout(&o), stderr(&o));
    assert!(
        o.status.success(),
        "the browser checks failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains(" passed, 0 failed"));
    assert!(
        !std::path::Path::new("/tmp/tdscale-serve-copy.csv").exists(),
        "COPY wrote a file"
    );
    for page in [
        "overview",
        "trajectories",
        "trajectory",
        "trajectory-evolved",
        "trajectory-hostile",
        "rounds",
        "rejected",
        "clusters",
        "cluster",
        "sql",
    ] {
        let shot = out.join(format!("{page}.png"));
        let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            shot.display()
        );
    }
    println!("screenshots in {}", out.display());
}

/// JSON values equal up to float rounding (sums over differently partitioned inputs).
fn assert_json_close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, v) in x {
                assert_json_close(v, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// A small corpus: the tau-bench trajectories.
fn tau_corpus(dir: &Path) -> String {
    let root = dir.join("c").to_str().unwrap().to_string();
    ok(run(&[
        "ingest",
        &root,
        shared("tau-bench/gpt-4o-airline.json").to_str().unwrap(),
    ]));
    root
}

#[test]
fn sql_from_the_page_is_read_only_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let root = tau_corpus(dir.path());
    let s = Server::start(&root, &["--query-timeout", "1s", "--memory", "8MiB"], &[]);
    let a = &s.addr;
    let r = console(a, "SELECT count(*) AS n FROM trajectories");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rows"], json!([["200"]]));
    // Statements that write, change settings or read files are refused, with what was refused.
    for (sql, what) in [
        (
            "COPY (SELECT 1) TO '/tmp/tdscale-serve-refused.csv'",
            "COPY",
        ),
        ("CREATE TABLE t AS SELECT 1", "CREATE"),
        (
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE",
        ),
        ("INSERT INTO rounds SELECT * FROM rounds", "INSERT"),
        ("DELETE FROM trajectories", "DELETE"),
        ("DROP VIEW tool_calls", "DROP"),
        ("SET datafusion.execution.batch_size = 1", "SET"),
        ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
    ] {
        let r = console(a, sql);
        assert_eq!(r.status, 403, "{sql}: {}", r.text());
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains(what), "{sql}: {e}");
    }
    assert!(!Path::new("/tmp/tdscale-serve-refused.csv").exists());
    for (sql, what) in [
        ("SELECT * FROM '/etc/passwd'", "not found"),
        ("SELECT * FROM read_parquet('/etc/passwd')", "not found"),
        ("SELECT * FROM read_csv('/etc/passwd')", "not found"),
        ("SELEC 1", "parse error"),
        ("SELECT 1; SELECT 2", "2 statements"),
    ] {
        let r = console(a, sql);
        assert_eq!(r.status, 400, "{sql}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains(what),
            "{sql}: {}",
            r.text()
        );
    }
    // The timeout stops a query that would run for hours; the server answers the next one.
    let r = console(a, "SELECT count(*) FROM generate_series(1, 100000000000)");
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.text().contains("--query-timeout"), "{}", r.text());
    // A query needing more than its memory fails with the reason.
    let r = console(
        a,
        "SELECT value FROM generate_series(1, 3000000) ORDER BY value DESC",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("--memory"), "{}", r.text());
    let r = console(a, "SELECT count(*) AS n FROM tool_calls");
    assert_eq!(r.status, 200, "{}", r.text());
    // Downloads are read-only too.
    let r = get(
        a,
        &format!(
            "/api/sql/download?format=csv&sql={}",
            enc("DROP VIEW tool_calls")
        ),
        &[],
    );
    assert_eq!(r.status, 403);
    let r = get(
        a,
        &format!(
            "/api/sql/download?format=csv&sql={}",
            enc("SELECT traj_id FROM trajectories ORDER BY traj_id LIMIT 2")
        ),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "traj_id\ngpt-4o-airline/0/0\ngpt-4o-airline/0/1\n"
    );
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("result.csv")
    );
    // Every answer carries the strict policy; pages are the compiled-in shell.
    for path in [
        "/",
        "/trajectories",
        "/api/status",
        "/assets/app.js",
        "/nope",
    ] {
        let r = get(a, path, &[]);
        assert_eq!(
            r.header("content-security-policy"),
            Some(tdscale::serve::CSP),
            "{path}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    assert!(!tdscale::serve::CSP.contains("unsafe"));
    assert_eq!(get(a, "/nope", &[]).status, 404);
    assert_eq!(get(a, "/api/nope", &[]).status, 404);
    let page = get(a, "/rounds", &[]).text();
    assert_eq!(page, tdscale::serve::assets::INDEX_HTML);
    assert!(!page.contains("<script>") && !page.contains("style="));
}

#[tokio::test]
async fn the_served_session_has_no_file_reading_table_function() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = tdscale::store::Corpus::open(dir.path().join("c").to_str().unwrap()).unwrap();
    let session = tdscale::serve::served_session(&corpus).await.unwrap();
    let mut names: Vec<String> = session
        .ctx()
        .state()
        .table_functions()
        .keys()
        .cloned()
        .collect();
    names.sort();
    let mut allowed: Vec<String> = tdscale::serve::guard::TABLE_FUNCTIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    allowed.sort();
    assert_eq!(names, allowed);
    // And no URL tables: a path is not a table.
    let e = session
        .sql("SELECT * FROM '/etc/hostname'")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
}

#[test]
fn a_token_guards_every_request_and_other_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = tau_corpus(dir.path());
    // Without a token only loopback binds are allowed.
    let o = run(&["serve", &root, "--bind", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--token"), "{}", stderr(&o));
    let o = run(&["serve", &root, "--bind", "0.0.0.0:0", "--token", "short"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("16 characters"), "{}", stderr(&o));
    // A long enough token makes a public bind acceptable (checked without binding it).
    let public = tdscale::serve::ServeOptions {
        bind: "0.0.0.0:8750".parse().unwrap(),
        token: Some("0123456789abcdef".into()),
        ..Default::default()
    };
    assert!(tdscale::serve::check_options(&public).is_ok());
    assert!(tdscale::serve::check_options(&Default::default()).is_ok());

    // Without a token, a request naming another host (DNS rebinding) is refused.
    let open = Server::start(&root, &[], &[]);
    assert_eq!(get(&open.addr, "/api/status", &[]).status, 200);
    let port = open.addr.rsplit(':').next().unwrap();
    for host in [
        format!("localhost:{port}"),
        "LOCALHOST".to_string(),
        format!("[::1]:{port}"),
        "127.3.4.5".to_string(),
    ] {
        assert_eq!(
            get(&open.addr, "/api/status", &[("Host", &host)]).status,
            200,
            "{host}"
        );
    }
    for host in [
        "evil.example",
        "localhost.evil.example",
        "10.0.0.1:8750",
        "[::2]:1",
    ] {
        let r = get(&open.addr, "/api/status", &[("Host", host)]);
        assert_eq!(r.status, 403, "{host}");
        assert!(r.text().contains("localhost"));
    }
    drop(open);

    // With a token (from the environment), every path needs it.
    let token = "0123456789abcdef-secret";
    let s = Server::start(&root, &[], &[("TDSCALE_SERVE_TOKEN", token.to_string())]);
    let a = &s.addr;
    for path in ["/", "/assets/app.js", "/api/status", "/api/trajectories"] {
        assert_eq!(get(a, path, &[]).status, 401, "{path}");
        assert_eq!(
            get(
                a,
                path,
                &[("Authorization", "Bearer wrong-token-0123456789")]
            )
            .status,
            401,
            "{path}"
        );
        let bearer = format!("Bearer {token}");
        assert_eq!(
            get(a, path, &[("Authorization", &bearer)]).status,
            200,
            "{path}"
        );
        let cookie = format!("tdscale_token={token}");
        assert_eq!(get(a, path, &[("Cookie", &cookie)]).status, 200, "{path}");
    }
    // The token in the address becomes a cookie and leaves the address.
    let r = get(
        a,
        &format!("/trajectories?domain=air%20line&token={token}&page=2"),
        &[],
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/trajectories?domain=air+line&page=2")
    );
    assert!(r.header("set-cookie").unwrap().contains("HttpOnly"));
    assert_eq!(get(a, "/?token=wrong-token-0123456789", &[]).status, 401);
    // With a token, other host names are fine (the token is what protects).
    let bearer = format!("Bearer {token}");
    assert_eq!(
        get(
            a,
            "/api/status",
            &[("Authorization", &bearer), ("Host", "viewer.example")]
        )
        .status,
        200
    );
}

#[test]
fn the_index_matches_the_corpus_views_and_new_files_show_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = tau_corpus(dir.path());
    let s = Server::start(&root, &["--refresh", "1h"], &[]);
    let a = &s.addr;
    // The served trajectory_metrics is the corpus's.
    let q = "SELECT * FROM trajectory_metrics ORDER BY traj_id";
    let served = console(a, q).json();
    let cli = sql_rows(&root, q);
    let names: Vec<&str> = served["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let described: Vec<String> = sql_rows(&root, "DESCRIBE trajectory_metrics")
        .iter()
        .map(|r| r["column_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, described);
    let rows = served["rows"].as_array().unwrap();
    assert_eq!(rows.len(), cli.len());
    for (r, c) in rows.iter().zip(&cli) {
        for (i, n) in names.iter().enumerate() {
            // JSON lines leave NULL cells out.
            let (got, want) = (&r[i], c.get(*n).unwrap_or(&Value::Null));
            match (got.as_str(), want) {
                (None, Value::Null) => {}
                (Some(g), Value::String(w)) => assert_eq!(g, w, "{n}"),
                // The console shows a list as Arrow prints it: `[a, b]`.
                (Some(g), Value::Array(items)) => {
                    let shown: Vec<String> = items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect();
                    assert_eq!(g, format!("[{}]", shown.join(", ")), "{n}")
                }
                (Some(g), w) if w.is_number() => {
                    assert!(
                        (g.parse::<f64>().unwrap() - number(w)).abs() < 1e-9,
                        "{n}: {g} vs {w}"
                    )
                }
                _ => panic!("{n}: {got} vs {want}"),
            }
        }
    }
    // The report from the index is the command line's.
    let web = get(a, "/api/report?by=source", &[]).json();
    let o = run(&["report", &root, "--by", "source", "--json"]);
    let cli = ok_json(&o);
    assert_json_close(&web["report"]["groups"], &cli["groups"], "groups");
    assert_json_close(
        &web["report"]["rank_frequency"],
        &cli["rank_frequency"],
        "rank_frequency",
    );

    // Filters and pages agree with SQL on the view.
    let count = |query: &str| {
        get(a, &format!("/api/trajectories/count?{query}"), &[]).json()["count"].clone()
    };
    for (query, sql) in [
        ("cac_min=15&cac_max=30", "cac >= 15 AND cac <= 30"),
        ("mode=Q%3ES1%3EA%3EC1", "mode = 'Q>S1>A>C1'"),
        ("reward_min=1", "reward >= 1"),
        ("where=num_tool_calls+%3E+5", "num_tool_calls > 5"),
        (
            "q=SEATTLE",
            "traj_id IN (SELECT traj_id FROM trajectories WHERE strpos(lower(messages_text(messages)), 'seattle') > 0 OR strpos(lower(system), 'seattle') > 0)",
        ),
    ] {
        let want = one_number(
            &root,
            &format!("SELECT count(*) FROM trajectory_metrics WHERE {sql}"),
        );
        assert!(want > 0, "{sql} matches nothing");
        assert_eq!(count(query), json!(want), "{query}");
    }
    let mut ids = vec![];
    for page in 1..=5 {
        let p = get(
            a,
            &format!("/api/trajectories?per_page=45&page={page}"),
            &[],
        )
        .json();
        ids.extend(
            p["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["traj_id"].as_str().unwrap().to_string()),
        );
        assert_eq!(p["has_next"], json!(page < 5), "page {page}");
    }
    let mut all: Vec<String> = sql_rows(&root, "SELECT traj_id FROM trajectories ORDER BY traj_id")
        .iter()
        .map(|r| r["traj_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids, all,
        "five pages of 45 are the 200 ids in order, once each"
    );
    let r = get(a, "/api/trajectories?sort=messages", &[]);
    assert_eq!(r.status, 400);
    let r = get(a, "/api/trajectories?page=0", &[]);
    assert_eq!(r.status, 400);
    let r = get(a, "/api/trajectory?id=nope", &[]);
    assert_eq!(r.status, 404);

    // New files show up after a refresh (the timer's, or the page's button).
    let hostile = hostile_file(dir.path());
    ok(run(&["ingest", &root, hostile.to_str().unwrap()]));
    assert_eq!(count(""), json!(200), "nothing changes before the refresh");
    let r = request(a, "POST", "/api/refresh", &[], b"").json();
    assert!(
        r["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("trajectories")),
        "{r}"
    );
    assert_eq!(count(""), json!(201));
    all.push(format!("hostile/{HOSTILE_ID}"));
    let t = get(
        a,
        &format!(
            "/api/trajectory?id={}",
            enc(&format!("hostile/{HOSTILE_ID}"))
        ),
        &[],
    )
    .json();
    // Corpus text goes out as JSON strings, unchanged: escaping is the page's job.
    assert_eq!(
        t["trajectory"]["messages"][0]["content"],
        json!("<script>window.__pwned=1</script> please help")
    );
    assert_eq!(
        t["trajectory"]["messages"][1]["calls"][0]["result"],
        json!(2)
    );
}

#[test]
fn an_s3_corpus_is_served() {
    let s3 = moto();
    let bucket = s3.bucket("serve-corpus");
    let root = format!("s3://{bucket}/c");
    let o = s3.run(&[
        "ingest",
        &root,
        shared("tau-bench/gpt-4o-airline.json").to_str().unwrap(),
    ]);
    ok(o);
    let env: Vec<(&str, String)> = s3.env();
    let s = Server::start(&root, &[], &env);
    let a = &s.addr;
    let o = get(a, "/api/overview", &[]).json();
    assert_eq!(o["corpus"], json!(root));
    assert_eq!(o["tables"][0]["rows"], json!(200));
    let p = get(a, "/api/trajectories?domain=airline&per_page=3", &[]).json();
    assert_eq!(p["rows"].as_array().unwrap().len(), 3, "{p}");
    let t = get(a, "/api/trajectory?id=gpt-4o-airline%2F0%2F0", &[]).json();
    assert_eq!(t["trajectory"]["traj_id"], json!("gpt-4o-airline/0/0"));
    assert!(t["trajectory"]["messages"].as_array().unwrap().len() > 10);
}

#[test]
fn an_empty_corpus_answers_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty").to_str().unwrap().to_string();
    let s = Server::start(&root, &[], &[]);
    let a = &s.addr;
    for path in tdscale::serve::assets::PAGES {
        assert_eq!(get(a, path, &[]).status, 200, "{path}");
    }
    for path in [
        "/api/overview",
        "/api/report?by=domain",
        "/api/facets",
        "/api/trajectories",
        "/api/rounds",
        "/api/clusters",
    ] {
        let r = get(a, path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    assert_eq!(
        get(a, "/api/trajectories/count", &[]).json()["count"],
        json!(0)
    );
    assert_eq!(get(a, "/api/rounds", &[]).json()["rounds"], json!([]));
    assert_eq!(get(a, "/api/report?by=nothing", &[]).status, 400);
    let r = get(a, "/api/cluster?id=x", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], json!("no cluster `x`"));
}

/// The chat view of one trajectory, on a conversation worked by hand: which result answers each
/// call, the values a call takes from earlier results, c(a_t) and the moves.
mod chat_view {
    use tdscale::model::{Message, ToolCall, ToolDef, Trajectory};
    use tdscale::serve::chat::view_of_trajectory;

    fn call_message(id: &str, name: &str, args: &str) -> Message {
        Message::calls(vec![ToolCall {
            id: Some(id.into()),
            name: name.into(),
            arguments: args.into(),
        }])
    }

    #[test]
    fn calls_results_dependencies_and_moves() {
        let mut result = Message::tool_result("Error: no seat left");
        result.tool_call_id = Some("c2".into());
        let t = Trajectory {
            traj_id: "t/1".into(),
            source: "t".into(),
            format: "openai".into(),
            tools: vec![ToolDef {
                name: "get_user".into(),
                ..Default::default()
            }]
            .into(),
            messages: vec![
                Message::text("user", "book for mia"),
                call_message("c1", "get_user", r#"{"name": "mia"}"#),
                {
                    let mut m = Message::tool_result(r#"{"user_id": "u_42", "seat": "12A"}"#);
                    m.tool_call_id = Some("c1".into());
                    m
                },
                call_message("c2", "book", r#"{"user": "u_42", "seat": "12A", "n": 1}"#),
                result,
                Message::text("assistant", "Sorry, it is full."),
            ],
            ..Default::default()
        };
        let v = view_of_trajectory(&t).unwrap();
        // get_user is a run of one single call (S1); book consumes its result (C1); the
        // closing text is an answer (A).
        assert_eq!(v.mode, "S1>C1>A");
        let moves: Vec<(&str, &[usize])> = v
            .moves
            .iter()
            .map(|m| (m.mv.as_str(), m.messages.as_slice()))
            .collect();
        assert_eq!(moves, [("S1", &[1][..]), ("C1", &[3][..]), ("A", &[5][..])]);
        assert_eq!(v.messages[3].moves, ["C1"]);
        let c0 = &v.messages[1].calls[0];
        assert_eq!(
            (c0.number, c0.result, c0.is_error),
            (0, Some(2), Some(false))
        );
        assert_eq!(c0.offered, Some(true));
        assert!(c0.sources.is_empty());
        // c = 1 + 0.5 ln(1 + 1 leaf) + new 1
        assert!((c0.step_complexity - (2.0 + 0.5 * 2f64.ln())).abs() < 1e-12);
        let c1 = &v.messages[3].calls[0];
        assert_eq!(
            (c1.number, c1.result, c1.is_error),
            (1, Some(4), Some(true))
        );
        assert_eq!(
            c1.offered,
            Some(false),
            "book is not among the offered tools"
        );
        let found: Vec<(usize, Option<usize>, &str)> = c1
            .sources
            .iter()
            .map(|s| (s.message, s.call, s.value.as_str()))
            .collect();
        assert_eq!(found, [(2, Some(0), "u_42"), (2, Some(0), "12A")]);
        // c = 1 + 0.5 ln(1 + 3 leaves) + dep 1 + new 1
        assert!((c1.step_complexity - (3.0 + 0.5 * 4f64.ln())).abs() < 1e-12);
        assert!((v.cac - (c0.step_complexity + c1.step_complexity)).abs() < 1e-12);
        assert_eq!(v.messages[2].answers, Some(0));
        assert_eq!(v.messages[4].answers, Some(1));
        assert!(v.messages[4].is_error && !v.messages[2].is_error);
    }
}
