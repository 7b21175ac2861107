//! `tdscale serve`: a local web viewer of a corpus — the diversity report with clickable
//! charts, a trajectory browser with filters, one trajectory as a chat with its calls, results
//! and dependencies, the evolution rounds and their rejections, the business clusters, and a
//! read-only SQL console — all answered by DataFusion over one [`CorpusSession`].
//!
//! The pages are one HTML file, one script and one style sheet compiled into the binary
//! ([`assets`]); every page reads a JSON API under `/api/` ([`api`]). Safe by default:
//! - it binds to loopback, and answers only requests naming a loopback host (no DNS
//!   rebinding); binding elsewhere needs a token, checked on every request;
//! - SQL from the page is read-only ([`guard`]): one query, no DDL, DML, `COPY` or `SET`, no
//!   files read by path, only the table functions of [`guard::TABLE_FUNCTIONS`];
//! - every query runs with a timeout and a memory pool of its own, and at most
//!   `max_queries` at a time;
//! - the page builds its DOM with `textContent` only (corpus text is untrusted), under a
//!   Content-Security-Policy that allows no inline script or style.
//!
//! New files in the corpus show up by themselves: every `refresh` interval the tables are
//! listed again and those that changed are re-read ([`index`]).

pub mod api;
pub mod assets;
pub mod browse;
pub mod chat;
pub mod guard;
pub mod index;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionContext};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::query::session::{CorpusSession, SessionOptions, bare_context_with};
use crate::store::Corpus;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen; port 0 picks a free port (the address is printed).
    pub bind: SocketAddr,
    /// The token every request must carry; required when `bind` is not a loopback address.
    pub token: Option<String>,
    /// How long one query may run before it is stopped.
    pub query_timeout: Duration,
    /// The memory one query may use (no spilling to disk: past it the query fails).
    pub memory_limit: usize,
    /// How many queries run at once; the others wait (within their timeout).
    pub max_queries: usize,
    /// How often the corpus's tables are listed again to see new data.
    pub refresh: Duration,
    /// Rows of a SQL console result sent to the page (a download has them all).
    pub max_rows: usize,
    /// The largest result a download may collect.
    pub max_download_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8750)),
            token: None,
            query_timeout: Duration::from_secs(30),
            memory_limit: 1 << 30,
            max_queries: 4,
            refresh: Duration::from_secs(10),
            max_rows: 1000,
            max_download_bytes: 256 << 20,
        }
    }
}

/// Why a request failed: an HTTP status and a message for the page.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<guard::Rejection> for ApiError {
    fn from(r: guard::Rejection) -> Self {
        match r {
            guard::Rejection::Invalid(m) => Self::bad_request(m),
            guard::Rejection::Refused(m) => Self::new(StatusCode::FORBIDDEN, m),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Usage(_) | Error::Sql(_) | Error::Rejected(_) => StatusCode::BAD_REQUEST,
            Error::Storage { .. } | Error::Backend(_) => StatusCode::BAD_GATEWAY,
            Error::Locked(_) | Error::LockLost(_) | Error::Interrupted { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Io { .. } | Error::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

impl From<DataFusionError> for ApiError {
    fn from(e: DataFusionError) -> Self {
        if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
            return Self::bad_request(format!(
                "the query needs more memory than the server allows one query (--memory): {e}"
            ));
        }
        Self::bad_request(e.to_string())
    }
}

impl From<datafusion::arrow::error::ArrowError> for ApiError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Self::from(DataFusionError::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// The result type of the handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// A query result: its schema, its batches, and whether rows were left out.
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

/// The server's state, shared by every request.
pub struct App {
    pub session: CorpusSession,
    pub options: ServeOptions,
    slots: Semaphore,
    /// Results that only change with the data (reports by grouping, facets), dropped when the
    /// refresher sees new files.
    pub cache: Mutex<HashMap<String, Arc<serde_json::Value>>>,
    pub index: index::IndexState,
}

/// What a served session may run: queries only.
pub fn read_only_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

impl App {
    /// A session for one query: the served tables and functions, with a memory pool of its own
    /// and no spilling.
    fn limited_context(&self) -> ApiResult<SessionContext> {
        let base = self.session.ctx();
        let pool = TrackConsumersPool::new(
            GreedyMemoryPool::new(self.options.memory_limit),
            std::num::NonZeroUsize::new(3).expect("3 > 0"),
        );
        let runtime = RuntimeEnvBuilder::from_runtime_env(base.runtime_env().as_ref())
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?;
        let state = SessionStateBuilder::new_from_existing(base.state())
            .with_runtime_env(runtime)
            .build();
        Ok(SessionContext::new_with_state(state))
    }

    /// Runs `work` on a query session under the server's limits: it waits for a free slot and
    /// is stopped (its plan dropped, which cancels its tasks) when the timeout passes.
    pub async fn limited<T, F, Fut>(&self, work: F) -> ApiResult<T>
    where
        F: FnOnce(SessionContext) -> Fut,
        Fut: std::future::Future<Output = ApiResult<T>>,
    {
        let timeout = self.options.query_timeout;
        let run = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
            work(self.limited_context()?).await
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the query ran longer than {} and was stopped (--query-timeout)",
                    human_duration(timeout)
                ),
            )),
        }
    }

    /// Runs one read-only statement under the limits and collects at most `max_rows` rows
    /// (the stream is dropped after them) or at most `max_bytes` of result.
    pub async fn query(
        &self,
        sql: &str,
        max_rows: Option<usize>,
        max_bytes: Option<usize>,
    ) -> ApiResult<QueryResult> {
        self.limited(|ctx| async move {
            let df = ctx.sql_with_options(sql, read_only_options()).await?;
            let schema: SchemaRef = df.schema().inner().clone();
            let mut stream = df.execute_stream().await?;
            let mut batches = vec![];
            let (mut rows, mut bytes) = (0usize, 0usize);
            let mut truncated = false;
            while let Some(b) = stream.next().await {
                let mut b = b?;
                if let Some(max) = max_rows
                    && rows + b.num_rows() > max
                {
                    b = b.slice(0, max - rows);
                    truncated = true;
                }
                rows += b.num_rows();
                bytes += b.get_array_memory_size();
                if let Some(max) = max_bytes
                    && bytes > max
                {
                    return Err(ApiError::bad_request(format!(
                        "the result is larger than {} MiB: narrow the query, or write it with `tdscale sql --out`",
                        max >> 20
                    )));
                }
                batches.push(b);
                if truncated {
                    break;
                }
            }
            Ok(QueryResult {
                schema,
                batches,
                truncated,
            })
        })
        .await
    }

    /// A cached JSON value, computed by `make` when missing.
    pub async fn cached<F, Fut>(&self, key: &str, make: F) -> ApiResult<Arc<serde_json::Value>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ApiResult<serde_json::Value>>,
    {
        if let Some(v) = self.cache.lock().expect("lock").get(key) {
            return Ok(v.clone());
        }
        let v = Arc::new(make().await?);
        self.cache
            .lock()
            .expect("lock")
            .insert(key.to_string(), v.clone());
        Ok(v)
    }
}

/// `30s`, `1.5s`, `250ms`.
fn human_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The session the server answers from: the corpus's tables, functions and views, no URL
/// tables, only the allowed table functions, and filters pushed into the Parquet scans (a
/// trajectory looked up by id decodes only its own row's messages).
pub async fn served_session(corpus: &Corpus) -> Result<CorpusSession> {
    if !corpus.is_local() {
        corpus.location().check_reachable().await?;
    }
    let ctx = bare_context_with(&SessionOptions {
        deny_file_paths: true,
        ..Default::default()
    })?;
    guard::restrict_table_functions(&ctx);
    ctx.sql("SET datafusion.execution.parquet.pushdown_filters = true")
        .await?
        .collect()
        .await?;
    CorpusSession::on(corpus, ctx).await
}

/// Whether an address is loopback (127.0.0.0/8 or ::1).
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// The checks before serving: a non-loopback bind needs a token, and a token must not be
/// trivially guessable.
pub fn check_options(options: &ServeOptions) -> Result<()> {
    match &options.token {
        None if !is_loopback(&options.bind) => Err(Error::Usage(format!(
            "binding to {} makes the corpus reachable from other machines: give --token (or TDSCALE_SERVE_TOKEN), or bind to 127.0.0.1",
            options.bind
        ))),
        Some(t) if t.chars().count() < 16 => Err(Error::Usage(
            "the token must be at least 16 characters (e.g. `openssl rand -hex 16`)".into(),
        )),
        _ => Ok(()),
    }
}

/// Serves the corpus until Ctrl-C. Prints the address on stdout once listening.
pub async fn serve(corpus: &Corpus, options: ServeOptions) -> Result<()> {
    check_options(&options)?;
    let session = served_session(corpus).await?;
    let index_table = index::install_live(&session).await?;
    let app = Arc::new(App {
        slots: Semaphore::new(options.max_queries.max(1)),
        session,
        cache: Mutex::new(HashMap::new()),
        index: index::IndexState::new(index_table),
        options,
    });
    let listener = tokio::net::TcpListener::bind(app.options.bind)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", app.options.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Other(e.to_string()))?;
    println!(
        "serving {} at http://{addr}/ (read-only{}; Ctrl-C stops)",
        corpus.display(),
        if app.options.token.is_some() {
            ", token required"
        } else {
            ""
        }
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::spawn(index::refresher(app.clone()));
    let router = router(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Other(format!("the server stopped: {e}")))
}

/// Every route, behind the access guard and the security headers.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .nest("/api", api::routes())
        .merge(assets::routes())
        .fallback(|| async { text_response(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(app.clone(), access))
        .with_state(app)
}

const TOKEN_COOKIE: &str = "tdscale_token";

/// The Content-Security-Policy of every response: scripts, styles and data from this server
/// only, no inline script or style, no plugins, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares digests in constant time, so a wrong token's timing tells nothing.
fn same_token(given: &str, expected: &str) -> bool {
    digest(given)
        .iter()
        .zip(digest(expected).iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

/// The `token` query parameter, and the query string without it.
fn query_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let rest: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter_map(|(k, v)| {
            if k == "token" {
                token = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    let rest = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(rest)
        .finish();
    (token, rest)
}

/// Whether the Host header names this machine's loopback (`localhost`, `127.x.x.x`, `[::1]`).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(n, _)| n).unwrap_or(host)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn text_response(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_string(),
    )
        .into_response()
}

/// The access guard: the host check (without a token) or the token check (with one), then the
/// security headers on whatever the route answered.
async fn access(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let mut response = match &app.options.token {
        None if !loopback_host(req.headers()) => text_response(
            StatusCode::FORBIDDEN,
            "this server answers only requests to localhost / 127.0.0.1 (start it with --token to serve other names)",
        ),
        None => next.run(req).await,
        Some(expected) => {
            let (in_query, rest) = query_token(req.uri().query().unwrap_or(""));
            let presented = bearer_token(req.headers()).or_else(|| cookie_token(req.headers()));
            if presented.is_some_and(|t| same_token(&t, expected)) {
                next.run(req).await
            } else if let Some(t) = in_query {
                if same_token(&t, expected) {
                    // Keep the token in a cookie and take it out of the address bar.
                    let target = if rest.is_empty() {
                        req.uri().path().to_string()
                    } else {
                        format!("{}?{rest}", req.uri().path())
                    };
                    let mut r =
                        (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response();
                    if let Ok(v) = HeaderValue::from_str(&format!(
                        "{TOKEN_COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict"
                    )) {
                        r.headers_mut().insert(header::SET_COOKIE, v);
                    }
                    r
                } else {
                    text_response(StatusCode::UNAUTHORIZED, "wrong token")
                }
            } else {
                text_response(
                    StatusCode::UNAUTHORIZED,
                    "this server needs its token: open the address with ?token=… or send `Authorization: Bearer …`",
                )
            }
        }
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
