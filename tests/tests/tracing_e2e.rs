//! One trace from HTTP request to ClickHouse row, against a real Jaeger
//! (`scripts/stack jaeger up`; `SLUICE_OTLP_ENDPOINT` and
//! `SLUICE_JAEGER_QUERY_URL` from `scripts/stack env`), and the metrics the
//! same run moves.
//!
//! The gateway (with a validator plugin), the loader and the aggregator run
//! in this process, so their spans share one service name (unique per run).
//! Fails, never skips, when Jaeger is not there.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::net::TcpListener;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_tests::plugin_admin::Admin;
use sluice_tests::{RunningGateway, TestTopics};
use uuid::Uuid;

const KEY: &str = "sk_test_tracing";
const TEAM: &str = "team-trace";
const EVENTS: usize = 20;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the trace backend with `scripts/stack jaeger up` and run `eval \"$(scripts/stack env)\"`")
    })
}

fn clickhouse_url() -> String {
    std::env::var("SLUICE_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".to_owned())
}

async fn sql(query: &str) -> String {
    reqwest::Client::new()
        .post(clickhouse_url())
        .body(query.to_owned())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one series in a Prometheus text page (0 if absent).
fn series(page: &str, name_and_labels: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(url: String) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Polls `check` every 300 ms until it returns `Some`, or panics after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

struct Consumer {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Consumer {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

/// Runs a consumer service's `serve` on a free port until [`Consumer::stop`].
async fn spawn<Fut>(serve: impl FnOnce(TcpListener, BoxFuture<'static, ()>) -> Fut) -> Consumer
where
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = Box::pin(async {
        let _ = stopped.await;
    });
    let task = tokio::spawn(serve(listener, shutdown));
    Consumer { addr, stop, task }
}

async fn start_loader(topic: &str, db: &str) -> Consumer {
    let mut config = sluice_loader::LoaderConfig {
        kafka: sluice_tests::kafka(),
        topic: topic.to_owned(),
        group_id: format!("loader-{}", Uuid::new_v4().simple()),
        ..Default::default()
    };
    config.clickhouse.url = clickhouse_url();
    config.clickhouse.database = db.to_owned();
    config.batch.max_wait_ms = 200;
    spawn(|listener, shutdown| sluice_loader::serve(config, listener, shutdown)).await
}

async fn start_aggregator(topic: &str, db: &str) -> Consumer {
    let mut config = sluice_aggregator::AggregatorConfig {
        kafka: sluice_tests::kafka(),
        topic: topic.to_owned(),
        group_id: format!("aggregator-{}", Uuid::new_v4().simple()),
        ..Default::default()
    };
    config.clickhouse.url = clickhouse_url();
    config.clickhouse.database = db.to_owned();
    // Events from 20 minutes ago: their windows close as soon as the
    // partition is idle for half a second.
    config.window.allowed_lateness_ms = 1_000;
    config.window.idle_timeout_ms = 500;
    config.flush.interval_ms = 200;
    spawn(|listener, shutdown| sluice_aggregator::serve(config, listener, shutdown)).await
}

/// Every trace of `service` Jaeger holds.
async fn traces(query_url: &str, service: &str) -> Vec<Value> {
    let body: Value = reqwest::get(format!(
        "{query_url}/api/traces?service={service}&limit=1000&lookback=1h"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    body["data"].as_array().cloned().unwrap_or_default()
}

fn spans(trace: &Value) -> impl Iterator<Item = &Value> {
    trace["spans"].as_array().into_iter().flatten()
}

fn operation(span: &Value) -> &str {
    span["operationName"].as_str().unwrap_or("")
}

fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| &t["value"])
}

/// Trace ids a span links to (Jaeger shows OTLP links as references).
fn linked_traces(span: &Value) -> Vec<String> {
    span["references"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["refType"] == "FOLLOWS_FROM")
        .filter_map(|r| r["traceID"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_request_to_clickhouse_row_and_the_metrics_move() {
    let otlp = env("SLUICE_OTLP_ENDPOINT");
    let query_url = env("SLUICE_JAEGER_QUERY_URL");
    let reachable = reqwest::get(format!("{query_url}/api/services")).await;
    assert!(
        reachable.is_ok_and(|r| r.status().is_success()),
        "Jaeger does not answer at {query_url}: start it with `scripts/stack jaeger up`"
    );
    let service = format!("sluice-e2e-{}", Uuid::new_v4().simple());
    let telemetry = sluice_core::trace::init_with_endpoint(&service, "test", &otlp);
    assert!(telemetry.tracing_enabled());

    let topics = TestTopics::create(2).await.unwrap();
    let db = format!("sluice_trace_{}", Uuid::new_v4().simple());
    let gateway = RunningGateway::start_ready(topics.gateway_config(KEY, TEAM))
        .await
        .unwrap();
    Admin::new(&gateway)
        .install_validator(
            TEAM,
            "required",
            "required_properties",
            json!({ "required": { "Signed Up": ["plan"] } }),
        )
        .await;

    let loader = start_loader(&topics.raw, &db).await;
    let aggregator = start_aggregator(&topics.raw, &db).await;
    let metrics_url = gateway.url("/metrics");
    let accepted = "sluice_gateway_events_total{outcome=\"accepted\",reason=\"\"}";
    let before = scrape(metrics_url.clone()).await;

    let at = chrono_free_timestamp(20 * 60 * 1000);
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({
                "event": "Signed Up",
                "user_id": format!("user-{}", i % 4),
                "timestamp": at,
                "properties": { "plan": "pro" },
            })
        })
        .collect();
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/events"))
        .bearer_auth(KEY)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], EVENTS, "{body}");

    // The rows arrive, and the rollups count them.
    let rows_query = format!("SELECT count() FROM {db}.events FORMAT TSV");
    eventually("the loader's rows", Duration::from_secs(60), || async {
        let rows: usize = sql(&rows_query).await.trim().parse().ok()?;
        (rows == EVENTS).then_some(())
    })
    .await;
    let rollup_query = format!("SELECT sum(events) FROM {db}.rollups_5m FORMAT TSV");
    eventually(
        "the aggregator's rollups",
        Duration::from_secs(60),
        || async {
            let counted: usize = sql(&rollup_query).await.trim().parse().ok()?;
            (counted == EVENTS).then_some(())
        },
    )
    .await;

    // Metrics: one recorder per process, rendered by every service.
    let after = scrape(metrics_url).await;
    assert_eq!(
        series(&after, accepted) - series(&before, accepted),
        EVENTS as f64,
        "accepted events counter"
    );
    assert!(
        series(&after, "sluice_gateway_request_bytes_total") > 0.0,
        "request bytes"
    );
    let loader_page = scrape(loader.metrics_url()).await;
    assert!(series(&loader_page, "sluice_loader_rows_inserted_total") >= EVENTS as f64);
    eventually(
        "the consumer lag gauges",
        Duration::from_secs(20),
        || async {
            let page = scrape(loader.metrics_url()).await;
            (page.contains("sluice_loader_consumer_lag{partition=")
                && page.contains("sluice_aggregator_consumer_lag{partition="))
            .then_some(())
        },
    )
    .await;
    let aggregator_page = scrape(aggregator.metrics_url()).await;
    assert!(series(&aggregator_page, "sluice_aggregator_events_total") >= EVENTS as f64);
    assert!(aggregator_page.contains("sluice_aggregator_window_delay_seconds_count"));
    assert!(after.contains("sluice_gateway_plugin_duration_seconds_count{kind=\"validator\"}"));

    loader.stop().await;
    aggregator.stop().await;
    gateway.stop().await.unwrap();
    // Exports every buffered span.
    telemetry.shutdown().await;

    // The request's trace: ingest → decode, plugin, produce.
    let all = eventually("the traces in Jaeger", Duration::from_secs(30), || async {
        let all = traces(&query_url, &service).await;
        let has = |name: &str| all.iter().flat_map(spans).any(|s| operation(s) == name);
        (has("ingest") && has("load_batch") && has("rollup_batch")).then_some(all)
    })
    .await;
    let request = all
        .iter()
        .find(|t| {
            spans(t).any(|s| {
                operation(s) == "ingest" && tag(s, "accepted") == Some(&json!(EVENTS as i64))
            })
        })
        .expect("a trace with the ingest span of our request");
    let request_id = request["traceID"].as_str().unwrap().to_owned();
    let names: Vec<&str> = spans(request).map(operation).collect();
    for expected in ["ingest", "decode", "plugin required", "produce"] {
        assert!(names.contains(&expected), "{expected} missing in {names:?}");
    }
    let ingest = spans(request).find(|s| operation(s) == "ingest").unwrap();
    assert_eq!(tag(ingest, "team"), Some(&json!(TEAM)));
    let plugin = spans(request)
        .find(|s| operation(s) == "plugin required")
        .unwrap();
    assert_eq!(tag(plugin, "plugin.version"), Some(&json!("1.0.0")));
    assert_eq!(tag(plugin, "rejected"), Some(&json!(0)));
    let produce = spans(request).find(|s| operation(s) == "produce").unwrap();
    assert_eq!(tag(produce, "records"), Some(&json!(EVENTS as i64)));
    assert!(tag(produce, "partitions").is_some(), "{produce}");

    // The consumers' batch spans link back to the request's trace.
    for batch in ["load_batch", "rollup_batch"] {
        let linked = all
            .iter()
            .flat_map(spans)
            .filter(|s| operation(s) == batch)
            .any(|s| linked_traces(s).contains(&request_id));
        assert!(linked, "no {batch} span links to trace {request_id}");
    }
    let load = all
        .iter()
        .flat_map(spans)
        .find(|s| operation(s) == "load_batch" && linked_traces(s).contains(&request_id))
        .unwrap();
    assert_eq!(tag(load, "table"), Some(&json!("events")));
    assert!(tag(load, "first_offset").is_some() && tag(load, "last_offset").is_some());

    let _ = sql(&format!("DROP DATABASE IF EXISTS {db}")).await;
}

/// An RFC 3339 UTC timestamp `ago_ms` before now, without a date crate.
fn chrono_free_timestamp(ago_ms: i64) -> String {
    let now = sluice_core::Timestamp::now().as_millis();
    sluice_core::Timestamp::from_millis(now - ago_ms).to_string()
}
