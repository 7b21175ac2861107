//! Past one machine: the same SQL on a Ballista cluster (DESIGN.md, "Scale").
//!
//! Stock Ballista binaries cannot run custom functions: a UDF travels by name and must be
//! compiled into the client, the scheduler and every executor. So tdscale ships its own
//! scheduler and executor ([`run_scheduler`], [`run_executor`]), each built on the same
//! [`node_state`] — DataFusion's defaults plus every tdscale function (scalar, aggregate, window
//! use of the aggregates, and the table functions) and an object-store registry that creates S3
//! stores from the node's own `AWS_*` settings. The client ([`cluster_context`]) plans with the
//! same functions and the corpus's tables and views, and hands the plan to the scheduler.
//!
//! What runs distributed: every SQL statement (scans, joins, aggregates, window functions and
//! the tdscale functions inside them). What stays on the client: parsing and planning, the
//! greedy walks of the table functions `greedy_entropy` / `deita_select` (their sub-query runs on
//! the cluster; the walk runs on the client and the plan carries its small result, see
//! [`table_functions`]), and writing results.

pub mod table_functions;

use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};
use crate::store::registry::S3FromEnvRegistry;

/// The logical codec of every node: Ballista's, plus the tables that table functions compute.
pub fn logical_codec() -> Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec> {
    Arc::new(table_functions::TdscaleCodec {
        inner: Arc::new(ballista_core::serde::BallistaLogicalExtensionCodec::default()),
    })
}

/// The session configuration of every node.
pub fn session_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_information_schema(true)
        .with_ballista_logical_extension_codec(logical_codec())
}

fn runtime() -> datafusion::common::Result<Arc<RuntimeEnv>> {
    RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(S3FromEnvRegistry::default()))
        .build_arc()
}

/// A session state with every tdscale function and S3 from `AWS_*`: what the client, the
/// scheduler and the executors all plan and run with.
pub fn node_state(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime()?)
        .with_default_features()
        .build();
    let ctx = SessionContext::new_with_state(state);
    crate::metrics::register(&ctx);
    Ok(ctx.state())
}

fn addr(s: &str, what: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::Usage(format!("{what} `{s}` is not host:port")))
}

fn ballista_err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("cluster: {e}"))
}

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: String,
    /// The name executors and clients reach this scheduler by (default: the bind host).
    pub external_host: Option<String>,
    /// Seconds without a heartbeat after which an executor is considered dead.
    pub executor_timeout_seconds: u64,
}

/// Runs a scheduler until the process ends.
pub async fn run_scheduler(opts: &SchedulerOptions) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    let bind = addr(&opts.bind, "--bind")?;
    let mut config = SchedulerConfig::default()
        .with_hostname(
            opts.external_host
                .clone()
                .unwrap_or_else(|| bind.ip().to_string()),
        )
        .with_port(bind.port())
        .with_override_config_producer(Arc::new(session_config))
        .with_override_session_builder(Arc::new(node_state));
    config.bind_host = bind.ip().to_string();
    config.override_logical_codec = Some(logical_codec());
    config.executor_timeout_seconds = opts.executor_timeout_seconds;
    config.expire_dead_executor_interval_seconds = (opts.executor_timeout_seconds / 2).clamp(1, 15);
    config.no_executors_grace_period_seconds = opts.executor_timeout_seconds;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista_err)?;
    tracing::info!("tdscale scheduler listening on {bind}");
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(ballista_err)
}

/// Executor settings.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: String,
    pub bind: String,
    /// Port of the executor's own gRPC service (default: the bind port + 1).
    pub grpc_port: Option<u16>,
    pub external_host: Option<String>,
    pub concurrency: usize,
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler (below its executor timeout).
    pub heartbeat_seconds: u64,
}

/// Runs an executor until the process ends (or its scheduler goes away).
pub async fn run_executor(opts: &ExecutorOptions) -> Result<()> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    let bind = addr(&opts.bind, "--bind")?;
    let (sched_host, sched_port) = opts
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            Error::Usage(format!("--scheduler `{}` is not host:port", opts.scheduler))
        })?;
    let state = node_state(session_config())?;
    let config = ExecutorProcessConfig {
        bind_host: bind.ip().to_string(),
        port: bind.port(),
        grpc_port: opts.grpc_port.unwrap_or(bind.port().wrapping_add(1)),
        external_host: opts.external_host.clone(),
        scheduler_host: sched_host,
        scheduler_port: sched_port,
        vcores: opts.concurrency.max(1),
        executor_heartbeat_interval_seconds: opts.heartbeat_seconds.max(1),
        work_dir: opts.work_dir.clone(),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        override_runtime_producer: Some(Arc::new(|_| runtime())),
        override_config_producer: Some(Arc::new(session_config)),
        override_logical_codec: Some(logical_codec()),
        ..Default::default()
    };
    tracing::info!("tdscale executor on {bind}, scheduler {}", opts.scheduler);
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista_err)
}

/// A client context on the cluster at `url` (`df://host:port`) with every tdscale function;
/// `CorpusSession::on` adds a corpus's tables and views.
pub async fn cluster_context(url: &str) -> Result<SessionContext> {
    let state = node_state(session_config())?;
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| {
            Error::Other(format!(
                "cannot reach the cluster at {url}: {e}. Start one with `tdscale cluster scheduler` and `tdscale cluster executor`"
            ))
        })?;
    // Connecting swaps in Ballista's function lists: register ours again.
    crate::metrics::register(&ctx);
    table_functions::register_eager(&ctx);
    Ok(ctx)
}

/// An in-process cluster (a scheduler and `executors` executors on loopback ports) for tests
/// and single-machine trials; returns its `df://` URL. It runs on the current tokio runtime.
pub async fn local_cluster(executors: usize, vcores: usize) -> Result<String> {
    let state = node_state(session_config())?;
    let scheduler = ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state)
        .await
        .map_err(ballista_err)?;
    let url = format!("http://localhost:{}", scheduler.port());
    for _ in 0..executors {
        let client = SchedulerGrpcClient::connect(url.clone())
            .await
            .map_err(ballista_err)?;
        ballista_executor::new_standalone_executor_from_state(client, vcores, &state)
            .await
            .map_err(ballista_err)?;
    }
    Ok(format!("df://localhost:{}", scheduler.port()))
}
