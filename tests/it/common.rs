//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use datafusion::arrow::array::{Array, RecordBatch};
use tdscale::store::Corpus;

/// The tdscale binary built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tdscale"))
}

/// Runs the binary and returns its output.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run tdscale")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every line of JSON-lines text, parsed.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A JSON file, parsed.
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The JSON document a successful command printed.
pub fn ok_json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The rows of `tdscale sql --format json`.
pub fn sql_rows(corpus: &str, q: &str) -> Vec<serde_json::Value> {
    let o = run(&["sql", corpus, "--format", "json", q]);
    assert!(o.status.success(), "{q}: {}", stderr(&o));
    json_lines(&stdout(&o))
}

/// A JSON number, or a string holding one (wide integers and decimals print as strings).
pub fn number(v: &serde_json::Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The repository's folder.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the bundled test data.
pub fn testdata(rel: &str) -> PathBuf {
    repo().join("testdata").join(rel)
}

/// A file of the shared real data next to the repository; a clear failure when it is missing.
pub fn shared(rel: &str) -> PathBuf {
    let p = repo().join("../shared/data").join(rel);
    assert!(
        p.exists(),
        "shared data {} is missing: the tests read ../shared/data next to the repository",
        p.display()
    );
    p
}

/// A fresh local corpus in a temporary folder.
pub fn temp_corpus() -> (tempfile::TempDir, Corpus) {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = Corpus::open(dir.path().join("corpus").to_str().unwrap()).expect("open corpus");
    (dir, corpus)
}

/// Runs SQL on a corpus and returns the batches of the last statement.
pub async fn sql(corpus: &Corpus, sql: &str) -> Vec<RecordBatch> {
    let session = tdscale::query::session::CorpusSession::open(corpus)
        .await
        .expect("session");
    let mut results = tdscale::query::run_sql(session.ctx(), sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    results.pop().map(|r| r.1).unwrap_or_default()
}

/// The single i64 (or castable) value of a one-row, one-column query.
pub async fn scalar_i64(corpus: &Corpus, q: &str) -> i64 {
    let b = sql(corpus, &format!("SELECT CAST(({q}) AS BIGINT) AS v")).await;
    let a = datafusion::arrow::array::AsArray::as_primitive::<
        datafusion::arrow::datatypes::Int64Type,
    >(b[0].column(0));
    a.value(0)
}

/// Column `col` of a query as strings (NULL as "NULL").
pub async fn strings(corpus: &Corpus, q: &str) -> Vec<String> {
    let batches = sql(corpus, q).await;
    let mut out = vec![];
    for b in batches {
        let c = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let c = datafusion::arrow::array::AsArray::as_string::<i32>(&c);
        for i in 0..c.len() {
            out.push(if c.is_null(i) {
                "NULL".into()
            } else {
                c.value(i).to_string()
            });
        }
    }
    out
}

/// Ingests files with default options.
pub async fn ingest(corpus: &Corpus, files: &[PathBuf]) -> tdscale::ingest::IngestSummary {
    tdscale::ingest::ingest(corpus, files, &Default::default())
        .await
        .expect("ingest")
}

/// A local S3-compatible server (moto) for this test process, started once.
pub struct S3Server {
    pub endpoint: String,
}

static MOTO: OnceLock<S3Server> = OnceLock::new();

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `moto_server` on 127.0.0.1 (once per test process). A missing moto is a failure with
/// the install command, never a skip. The server dies with the test process.
pub fn moto() -> &'static S3Server {
    MOTO.get_or_init(|| {
        let port = free_port();
        let (tx, rx) = std::sync::mpsc::channel();
        // The spawning thread lives as long as the process, so the parent-death signal fires
        // only when the test process ends.
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut cmd = Command::new("moto_server");
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd.spawn();
            tx.send(child.map(|_| ()).map_err(|e| e.to_string()))
                .unwrap();
            loop {
                std::thread::park();
            }
        });
        if let Err(e) = rx.recv().unwrap() {
            panic!("cannot start moto_server ({e}): install it with `pip install 'moto[server]'`");
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        // Its imports take seconds, many more on a busy machine.
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return S3Server { endpoint };
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto_server did not start listening on port {port} within 60 s");
    })
}

impl S3Server {
    /// Creates a bucket and returns its name.
    pub fn bucket(&self, name: &str) -> String {
        let out = Command::new("curl")
            .args(["-sf", "-X", "PUT", &format!("{}/{name}", self.endpoint)])
            .output()
            .expect("curl is needed to create buckets");
        assert!(
            out.status.success(),
            "creating bucket {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        name.to_string()
    }

    /// The environment a tdscale process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// Runs tdscale with the server's environment.
    pub fn run(&self, args: &[&str]) -> Output {
        bin()
            .args(args)
            .envs(self.env())
            .output()
            .expect("run tdscale")
    }
}

/// Lists the files under a folder, recursively, relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// A test server script of `tests/servers/` run with python3, killed when dropped. The script
/// prints its port on its first line.
pub struct PyServer {
    child: std::process::Child,
    pub url: String,
}

impl PyServer {
    pub fn start(script: &str, args: &[&str]) -> Self {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/servers").join(script))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tests/servers/{script} with python3: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("tests/servers/{script} did not print its port: {line:?}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenAI-compatible test server (`tests/servers/openai_stub.py`).
pub struct OpenAiStub {
    _server: PyServer,
    pub base_url: String,
    pub log: PathBuf,
}

impl OpenAiStub {
    /// Starts the server with these extra arguments; it logs requests to `log`.
    pub fn start(log: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["--port", "0", "--log", log.to_str().unwrap()];
        args.extend_from_slice(extra);
        let server = PyServer::start("openai_stub.py", &args);
        Self {
            base_url: format!("{}/v1", server.url),
            _server: server,
            log: log.to_path_buf(),
        }
    }

    /// The request log: one JSON object per request.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        json_lines(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}
