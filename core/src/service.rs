//! What the consumer services (loader, aggregator) share around their loop:
//! readiness state, the `/healthz` `/readyz` `/metrics` router, waiting for
//! ClickHouse at start-up, and eager-rebalance bookkeeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};
use serde_json::json;

/// The command-line flags every service has besides `--help` and `--version`
/// (flatten into the service's own `clap` struct, which names the
/// `<PREFIX>CONFIG` variable for `--config`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceFlags {
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Validate the configuration and exit without connecting anywhere.
    #[arg(long)]
    pub check_config: bool,
}

/// A configuration's own checks, run before connecting anywhere.
pub type Validate<C> = fn(&C) -> Result<(), String>;
/// Where a configured service listens.
pub type ListenAddress<C> = fn(&C) -> std::net::SocketAddr;

/// How a service is served once configured: its config, its bound listener
/// and the shutdown signal.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Everything a service's `main` does after parsing its command line: load
/// and validate the configuration (`--print-config`, `--check-config`),
/// start logging and tracing, bind `listen`, serve until SIGINT/SIGTERM,
/// flush the last spans, and turn the outcome into an exit code.
pub async fn run_main<C, Fut>(
    name: &'static str,
    version: &'static str,
    (file, flags): (Option<&std::path::Path>, &ServiceFlags),
    env_prefix: &str,
    (validate, listen): (Validate<C>, ListenAddress<C>),
    serve: impl FnOnce(C, tokio::net::TcpListener, Shutdown) -> Fut,
) -> std::process::ExitCode
where
    C: Default + serde::Serialize + serde::de::DeserializeOwned,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let run = async {
        let config: C = match crate::config::startup(
            file,
            env_prefix,
            flags.print_config,
            flags.check_config,
            validate,
        )? {
            crate::config::Next::Run(config) => config,
            crate::config::Next::Exit => return Ok(()),
        };
        let telemetry = crate::trace::init(name, version);
        let address = listen(&config);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| anyhow::anyhow!("binding {address}: {e}"))?;
        let served = serve(config, listener, Box::pin(crate::shutdown::signal())).await;
        // Spans of the last requests and batches are still buffered.
        telemetry.shutdown().await;
        served
    };
    // `{:#}` of an anyhow error includes its causes.
    crate::shutdown::exit_code(run.await.map_err(|err: anyhow::Error| format!("{err:#}")))
}

/// Readiness of a consumer service: ClickHouse answers, and which partitions
/// it holds. Each service names its own gauges.
#[derive(Debug)]
pub struct ConsumerStatus {
    clickhouse_up: AtomicBool,
    assigned: Mutex<Vec<i32>>,
    up_gauge: &'static str,
    assigned_gauge: &'static str,
}

impl ConsumerStatus {
    pub const fn new(up_gauge: &'static str, assigned_gauge: &'static str) -> Self {
        Self {
            clickhouse_up: AtomicBool::new(false),
            assigned: Mutex::new(Vec::new()),
            up_gauge,
            assigned_gauge,
        }
    }

    pub fn set_clickhouse_up(&self, up: bool) {
        self.clickhouse_up.store(up, Ordering::Relaxed);
        metrics::gauge!(self.up_gauge).set(f64::from(u8::from(up)));
    }

    /// Ready: ClickHouse answers (the loop is not stuck retrying).
    pub fn is_ready(&self) -> bool {
        self.clickhouse_up.load(Ordering::Relaxed)
    }

    pub fn set_assigned(&self, partitions: Vec<i32>) {
        metrics::gauge!(self.assigned_gauge).set(partitions.len() as f64);
        if let Ok(mut assigned) = self.assigned.lock() {
            *assigned = partitions;
        }
    }

    pub fn assigned(&self) -> Vec<i32> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// `/healthz`, `/readyz` and `/metrics` of a consumer service.
pub fn router(status: Arc<ConsumerStatus>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    crate::telemetry::metrics().render(),
                )
            }),
        )
        .with_state(status)
}

async fn readyz(State(status): State<Arc<ConsumerStatus>>) -> Response {
    if status.is_ready() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "partitions": status.assigned() })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": "clickhouse_unreachable" })),
        )
            .into_response()
    }
}

/// Serves [`router`] on `listener` until the returned guard is dropped.
fn spawn_health(listener: tokio::net::TcpListener, status: Arc<ConsumerStatus>) -> HealthServer {
    HealthServer(tokio::spawn(
        axum::serve(listener, router(status)).into_future(),
    ))
}

/// The background health server of [`spawn_health`]; stops when dropped.
#[derive(Debug)]
pub struct HealthServer(tokio::task::JoinHandle<std::io::Result<()>>);

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Consumer settings both consumer services need for their exactly-once
/// arguments: manual commits only, earliest start, and the eager `range`
/// assignor (every member gives its partitions up before any is handed out
/// again).
pub fn manual_commit_consumer(
    kafka: &crate::kafka::KafkaSettings,
    group_id: &str,
    session_timeout_ms: u64,
) -> rdkafka::ClientConfig {
    let mut client = kafka.client_config();
    client
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session_timeout_ms.to_string())
        .set("partition.assignment.strategy", "range")
        .set("enable.partition.eof", "false");
    client
}

/// What a consumer service's `serve` does: health and metrics on
/// `listener`; `connect` until it succeeds (ClickHouse or Kafka may start
/// after us), waiting `backoff` between tries, logging each failure and
/// reporting not-ready meanwhile; then `run` with the shutdown signal. Ends
/// early, successfully, if `shutdown` fires while still connecting.
pub async fn serve_consumer<T, S, C, R>(
    what: &str,
    listener: tokio::net::TcpListener,
    status: Arc<ConsumerStatus>,
    mut backoff: crate::backoff::Backoff,
    shutdown: S,
    mut connect: impl FnMut() -> C,
    run: impl FnOnce(T, Pin<Box<S>>) -> R,
) -> anyhow::Result<()>
where
    S: Future<Output = ()>,
    C: Future<Output = anyhow::Result<T>>,
    R: Future<Output = anyhow::Result<()>>,
{
    let _health = spawn_health(listener, status.clone());
    let mut shutdown = Box::pin(shutdown);
    let started = loop {
        tokio::select! {
            () = shutdown.as_mut() => return Ok(()),
            result = connect() => match result {
                Ok(started) => break started,
                Err(err) => {
                    status.set_clickhouse_up(false);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{err:#}"), backoff_ms = delay.as_millis() as u64, "cannot start {what} yet; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    };
    run(started, shutdown).await
}

/// Partitions assigned and revoked since the loop last looked.
#[derive(Debug, Default)]
pub struct Rebalanced {
    pub assigned: Vec<i32>,
    pub revoked: Vec<i32>,
}

/// A consumer context that records rebalances of one topic, for a loop that
/// applies them between records (see the services' exactly-once notes: with
/// the eager `range` assignor every member gives its partitions up before
/// any is handed out again).
#[derive(Debug, Clone)]
pub struct RebalanceLog {
    topic: String,
    log: Arc<Mutex<Rebalanced>>,
    in_flight: Arc<InFlight>,
}

/// Partitions whose writes are still in flight. A revocation waits for the
/// revoked partitions' writes to finish before it returns to the group, so a
/// partition's next owner never starts while its last write may still land.
#[derive(Debug, Default)]
pub struct InFlight {
    partitions: Mutex<std::collections::BTreeSet<i32>>,
    done: std::sync::Condvar,
}

/// Marks one partition's write in flight until dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    owner: Arc<InFlight>,
    partition: i32,
}

impl InFlight {
    pub fn begin(self: &Arc<Self>, partition: i32) -> InFlightGuard {
        if let Ok(mut set) = self.partitions.lock() {
            set.insert(partition);
        }
        InFlightGuard {
            owner: self.clone(),
            partition,
        }
    }

    /// Blocks until none of `partitions` has a write in flight.
    pub fn wait_for(&self, partitions: &[i32]) {
        let Ok(mut set) = self.partitions.lock() else {
            return;
        };
        while partitions.iter().any(|p| set.contains(p)) {
            tracing::info!(?partitions, "revocation waits for in-flight writes");
            set = match self.done.wait_timeout(set, Duration::from_secs(10)) {
                Ok((set, _)) => set,
                Err(_) => return,
            };
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut set) = self.owner.partitions.lock() {
            set.remove(&self.partition);
        }
        self.owner.done.notify_all();
    }
}

impl RebalanceLog {
    pub fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            log: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    /// The in-flight writes a revocation waits for.
    pub fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }

    /// What happened since the last call.
    pub fn take(&self) -> Rebalanced {
        self.log
            .lock()
            .map(|mut log| std::mem::take(&mut *log))
            .unwrap_or_default()
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for RebalanceLog {}

impl ConsumerContext for RebalanceLog {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = self.partitions(tpl);
            // Called from inside the consumer's poll on a runtime worker:
            // hand the worker's other tasks (the writes we wait for among
            // them) to another thread while blocking.
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(|| self.in_flight.wait_for(&revoked));
                }
                _ => self.in_flight.wait_for(&revoked),
            }
            if let Ok(mut log) = self.log.lock() {
                log.revoked.extend(revoked);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance
            && let Ok(mut log) = self.log.lock()
        {
            log.assigned.extend(self.partitions(tpl));
        }
    }
}

/// Test hook (outside every service's prefix, so never configuration): how
/// a crash hook ends the process. `sigkill` sends SIGKILL to itself (what an
/// OOM killer or `kill -9` does); anything else aborts (SIGABRT). Either way
/// nothing is flushed or committed.
pub const CRASH_WITH_ENV: &str = "SLUICE_TEST_CRASH_WITH";

/// Ends the process at once, as [`CRASH_WITH_ENV`] says; for crash hooks.
pub fn crash_now(reason: &str) -> ! {
    tracing::error!("{reason}: crashing on purpose (test hook)");
    if std::env::var(CRASH_WITH_ENV).as_deref() == Ok("sigkill") {
        // The `kill` command rather than a libc binding: this is a test
        // hook, and the process is gone before `status` returns.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
    }
    std::process::abort();
}
