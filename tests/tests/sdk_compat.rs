//! Real SDKs against a real gateway and real Kafka: `@segment/analytics-node`,
//! `posthog-node`, `posthog` (Python), and `posthog-js` in headless Chromium.
//! Each client runs as a child process (`tests/sdk/`), sends events and
//! prints which of them it reports as delivered; the test then reads the
//! test topic and checks that every one is there exactly once, with the
//! fields mapped as `docs/sdk-compat.md` says.
//!
//! The clients come from their registries, installed outside the clone by
//! `scripts/sdk-setup` (run by `scripts/test`): node packages under
//! `$SLUICE_CACHE/sdk-node`, the Python SDK in `$SLUICE_CACHE/sdk-venv`,
//! Debian's `chromium`. A missing client fails the test with that hint; it
//! never skips.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use sluice_core::clock::SystemClock;
use sluice_core::kafka::headers;
use sluice_gateway::keys::{ConfiguredKeys, MemoryKeys};
use sluice_gateway::producer::{EventProducer, KafkaProducer, ProduceError, Record};
use sluice_gateway::sdk::event_id_for;
use sluice_gateway::{AppState, router};
use sluice_tests::downstream::Downstream;
use sluice_tests::plugin_admin::{Admin, component};
use sluice_tests::{RunningGateway, TestTopics, read_all, read_records};
use uuid::Uuid;

const KEY: &str = "sk_test_sdk_compat";
const TEAM: &str = "team-sdk";
const PARTITIONS: i32 = 3;

fn cache() -> PathBuf {
    std::env::var_os("SLUICE_CACHE").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sluice"),
        PathBuf::from,
    )
}

/// A client's report: what it says it delivered, and what it gave up on.
#[derive(Debug)]
struct Report {
    sent: Vec<Value>,
    raw: Value,
}

enum Client {
    Node(&'static str),
    Python(&'static str),
}

/// Runs one client script to completion against `url`.
async fn run_client(
    client: Client,
    url: String,
    run: &str,
    events: usize,
    extra_env: &[(&str, &str)],
) -> Report {
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk");
    let node_modules = std::env::var_os("SLUICE_SDK_NODE")
        .map_or_else(|| cache().join("sdk-node"), PathBuf::from)
        .join("node_modules");
    let python = std::env::var_os("SLUICE_SDK_PYTHON")
        .map_or_else(|| cache().join("sdk-venv/bin/python"), PathBuf::from);
    let mut command = match client {
        Client::Node(script) => {
            assert!(
                node_modules.is_dir(),
                "{} missing: run scripts/sdk-setup",
                node_modules.display()
            );
            let mut command = Command::new("node");
            command
                .arg(scripts.join(script))
                .env("NODE_PATH", &node_modules);
            command
        }
        Client::Python(script) => {
            assert!(
                python.exists(),
                "{} missing: run scripts/sdk-setup",
                python.display()
            );
            let mut command = Command::new(python);
            command.arg(scripts.join(script));
            command
        }
    };
    command
        .env("SLUICE_URL", url)
        .env("SLUICE_KEY", KEY)
        .env("SDK_RUN", run)
        .env("SDK_EVENTS", events.to_string())
        .envs(extra_env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let raw: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no report from the client:\n{stdout}\n{stderr}"));
    assert_eq!(
        raw["failed"].as_array().map(Vec::len),
        Some(0),
        "the client gave up on events: {raw}\nstderr: {stderr}"
    );
    Report {
        sent: raw["sent"].as_array().unwrap().clone(),
        raw,
    }
}

/// Checks that each expected id is in `events` exactly once and returns the
/// events by id.
fn exactly_once(events: &[Value], expected: &[Uuid]) -> HashMap<Uuid, Value> {
    let mut by_id: HashMap<Uuid, Vec<&Value>> = HashMap::new();
    for event in events {
        let id: Uuid = event["event_id"].as_str().unwrap().parse().unwrap();
        by_id.entry(id).or_default().push(event);
    }
    for id in expected {
        let copies = by_id.get(id).map_or(0, Vec::len);
        assert_eq!(
            copies,
            1,
            "event {id}: {copies} copies in Kafka ({} events there, {} expected)",
            events.len(),
            expected.len()
        );
    }
    assert_eq!(events.len(), expected.len(), "unexpected extra events");
    by_id
        .into_iter()
        .map(|(id, mut copies)| (id, copies.remove(0).clone()))
        .collect()
}

fn no_key_stored(events: &[Value]) {
    let text = serde_json::to_string(events).unwrap();
    assert!(!text.contains(KEY), "the API key must not be stored");
}

/// Runs `client` against a fresh gateway on fresh topics; returns its report,
/// everything in the raw topic afterwards, and the run tag it put in events.
async fn run_against_gateway(client: Client, events: usize) -> (Report, Vec<Value>, String) {
    let topics = TestTopics::create(PARTITIONS).await.unwrap();
    let gateway = RunningGateway::start(topics.gateway_config(KEY, TEAM))
        .await
        .unwrap();
    gateway.wait_ready(Duration::from_secs(30)).await.unwrap();
    let run = run_tag();
    let report = run_client(client, gateway.url(""), &run, events, &[]).await;
    let in_kafka = read_all(&topics.raw, PARTITIONS).await;
    gateway.stop().await.unwrap();
    (report, in_kafka, run)
}

fn run_tag() -> String {
    Uuid::new_v4().simple().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_analytics_node_events_arrive_once_with_mapped_fields() {
    let (report, events, run) = run_against_gateway(Client::Node("segment-node.js"), 20).await;
    assert_eq!(report.sent.len(), 22, "{}", report.raw);
    let expected: Vec<Uuid> = report
        .sent
        .iter()
        .map(|m| event_id_for(TEAM, m["messageId"].as_str().unwrap()))
        .collect();
    let by_id = exactly_once(&events, &expected);
    for (message, id) in report.sent.iter().zip(&expected) {
        let event = &by_id[id];
        let name = match message["type"].as_str().unwrap() {
            "track" => message["event"].as_str().unwrap().to_owned(),
            other => format!("${other}"),
        };
        assert_eq!(event["event"], name.as_str(), "{event}");
        assert_eq!(event["team_id"], TEAM);
        assert_eq!(event["user_id"], message["userId"], "{event}");
        assert_eq!(event["properties"]["run"], run.as_str(), "{event}");
        assert_eq!(
            event["context"]["segment"]["message_id"],
            message["messageId"]
        );
        assert_eq!(
            event["context"]["library"]["name"], "@segment/analytics-node",
            "the SDK's own context is kept: {event}"
        );
    }
    no_key_stored(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_sdk_events_answer_200_and_reach_the_dlq_with_their_reasons() {
    // A team validator (plugins run on SDK routes as on the native one) and
    // the contract's clock window each reject one of a real SDK's events. The
    // SDK must hear 200, so it neither retries nor drops the batch; the rest
    // is in events.raw and the two rejects are in events.rejected with reasons.
    let topics = TestTopics::create(PARTITIONS).await.unwrap();
    let gateway = RunningGateway::start(topics.gateway_config(KEY, TEAM))
        .await
        .unwrap();
    gateway.wait_ready(Duration::from_secs(30)).await.unwrap();
    let admin = Admin::new(&gateway);
    let (status, body) = admin
        .upload(
            TEAM,
            "required",
            "1.0.0",
            "validator",
            component("required_properties"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    admin
        .patch(
            TEAM,
            "required",
            json!({ "config": { "required": { "$identify": ["email"] } } }),
        )
        .await;
    admin.wait_active(TEAM, "required", "1.0.0").await;

    let run = run_tag();
    let report = run_client(
        Client::Node("segment-node.js"),
        gateway.url(""),
        &run,
        5,
        &[("SDK_STALE", "1")],
    )
    .await;
    assert_eq!(
        report.sent.len(),
        8,
        "delivered, as the SDK sees it: {}",
        report.raw
    );
    let id_of = |m: &Value| event_id_for(TEAM, m["messageId"].as_str().unwrap());
    let (rejected, accepted): (Vec<&Value>, Vec<&Value>) = report
        .sent
        .iter()
        .partition(|m| m["type"] == "identify" || m["event"] == "Stale Event");
    let raw = read_all(&topics.raw, PARTITIONS).await;
    exactly_once(&raw, &accepted.iter().map(|m| id_of(m)).collect::<Vec<_>>());

    let dead = read_records(&topics.rejected, 1).await;
    let reasons: HashMap<Uuid, String> = dead
        .iter()
        .map(|record| {
            let event: Value = serde_json::from_slice(&record.payload).unwrap();
            let id = event["event_id"].as_str().unwrap().parse().unwrap();
            (id, record.headers[headers::REJECT_CODE].clone())
        })
        .collect();
    assert_eq!(dead.len(), 2, "{reasons:?}");
    for message in rejected {
        let expected = if message["type"] == "identify" {
            "plugin_rejected"
        } else {
            "timestamp_too_old"
        };
        assert_eq!(
            reasons.get(&id_of(message)).map(String::as_str),
            Some(expected),
            "{message}"
        );
    }
    gateway.stop().await.unwrap();
}

/// The checks shared by the PostHog clients: `uuid` is the event id,
/// `distinct_id` the user, and the token is gone.
fn check_posthog(events: &[Value], report: &Report, run: &str) {
    let expected: Vec<Uuid> = report
        .sent
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().parse().unwrap())
        .collect();
    let by_id = exactly_once(events, &expected);
    for (sent, id) in report.sent.iter().zip(&expected) {
        let event = &by_id[id];
        assert_eq!(event["event"], sent["event"], "{event}");
        assert_eq!(event["team_id"], TEAM);
        if let Some(user) = sent["distinctId"].as_str() {
            assert_eq!(event["user_id"], user, "{event}");
        }
        if event["event"] != "$identify" {
            assert_eq!(event["properties"]["run"], run, "{event}");
        }
        assert_eq!(event["context"]["posthog"]["uuid"], id.to_string());
    }
    no_key_stored(events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posthog_node_events_arrive_once_with_mapped_fields() {
    let (report, events, run) = run_against_gateway(Client::Node("posthog-node.js"), 20).await;
    assert_eq!(report.sent.len(), 20, "{}", report.raw);
    check_posthog(&events, &report, &run);
    assert!(
        events
            .iter()
            .all(|e| e["properties"]["$set"]["plan"] == "pro"),
        "$set is kept in properties"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posthog_python_events_arrive_once_with_mapped_fields() {
    let (report, events, run) = run_against_gateway(Client::Python("posthog_python.py"), 20).await;
    assert_eq!(report.sent.len(), 20, "{}", report.raw);
    check_posthog(&events, &report, &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posthog_js_in_headless_chromium_events_arrive_once() {
    let (report, events, run) = run_against_gateway(Client::Node("posthog-browser.js"), 10).await;
    assert!(report.sent.len() >= 10, "{}", report.raw);
    let statuses = report.raw["statuses"].to_string();
    assert!(
        statuses.contains(" 200 gzip"),
        "posthog-js sent its batches gzipped: {statuses}"
    );
    check_posthog(&events, &report, &run);
    let user = format!("browser-user-{run}");
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "button clicked")
            .all(|e| e["user_id"] == user.as_str()),
        "captures after identify belong to the identified user"
    );
}

/// Takes one from `budget` if any is left.
fn take_one(budget: &AtomicUsize) -> bool {
    budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Kafka through a producer that fails the first `failures` sends: the gateway's
/// real 503 path, without touching the shared broker.
#[derive(Debug)]
struct Flaky {
    inner: KafkaProducer,
    failures: AtomicUsize,
    failed: AtomicUsize,
}

impl EventProducer for Flaky {
    fn send(&self, records: Vec<Record>) -> BoxFuture<'_, Vec<Result<(), ProduceError>>> {
        if take_one(&self.failures) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            let error = ProduceError::Unavailable("test: broker unreachable".into());
            return Box::pin(async move { records.iter().map(|_| Err(error.clone())).collect() });
        }
        self.inner.send(records)
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        self.inner.probe()
    }
}

/// An in-process gateway for `topics` producing through `producer`.
async fn gateway_with<P: EventProducer + 'static>(
    topics: &TestTopics,
    producer: impl FnOnce(&sluice_gateway::GatewayConfig) -> P,
) -> (SocketAddr, Arc<P>) {
    let config = topics.gateway_config(KEY, TEAM);
    let producer = Arc::new(producer(&config));
    let state = AppState::new(
        &config,
        Arc::new(MemoryKeys::new(ConfiguredKeys::new(&config.auth.keys))),
        producer.clone(),
        Arc::new(SystemClock),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    (addr, producer)
}

async fn flaky_gateway(topics: &TestTopics, failures: usize) -> (SocketAddr, Arc<Flaky>) {
    gateway_with(topics, |config| Flaky {
        inner: KafkaProducer::new(&config.kafka, &config.producer).unwrap(),
        failures: AtomicUsize::new(failures),
        failed: AtomicUsize::new(0),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_retry_through_503s_and_nothing_is_lost_or_duplicated() {
    for (client, expected) in [
        (Client::Node("segment-node.js"), 12),
        (Client::Node("posthog-node.js"), 10),
        (Client::Python("posthog_python.py"), 10),
        // posthog-js's own retry queue, in the browser: the 503s carry CORS
        // headers, so the page sees them and backs off.
        (Client::Node("posthog-browser.js"), 11),
    ] {
        let topics = TestTopics::create(PARTITIONS).await.unwrap();
        let (addr, producer) = flaky_gateway(&topics, 2).await;
        let segment = matches!(client, Client::Node("segment-node.js"));
        let run = run_tag();
        let report = run_client(
            client,
            format!("http://{addr}"),
            &run,
            10,
            &[("SDK_QUIET_MS", "8000")],
        )
        .await;
        assert_eq!(report.sent.len(), expected, "{}", report.raw);
        assert_eq!(
            producer.failed.load(Ordering::SeqCst),
            2,
            "the gateway answered 503 twice"
        );
        let events = read_all(&topics.raw, PARTITIONS).await;
        let ids: Vec<Uuid> = report
            .sent
            .iter()
            .map(|m| match m["messageId"].as_str() {
                Some(message_id) if segment => event_id_for(TEAM, message_id),
                _ => m["uuid"].as_str().unwrap().parse().unwrap(),
            })
            .collect();
        exactly_once(&events, &ids);
    }
}

/// Kafka writes every record, but for the first `lost` sends the gateway
/// hears a failure for every other record: what a delivery timeout after the
/// broker wrote them (a broker paused mid-batch) looks like from the
/// gateway. The client gets a partial 503 and resends the whole batch, so
/// events already in Kafka are produced again with the same `event_id`.
#[derive(Debug)]
struct LostAcks {
    inner: KafkaProducer,
    lost: AtomicUsize,
    partial: AtomicUsize,
}

impl EventProducer for LostAcks {
    fn send(&self, records: Vec<Record>) -> BoxFuture<'_, Vec<Result<(), ProduceError>>> {
        let lose = take_one(&self.lost);
        Box::pin(async move {
            let acks = self.inner.send(records).await;
            if !lose {
                return acks;
            }
            self.partial.fetch_add(1, Ordering::SeqCst);
            acks.into_iter()
                .enumerate()
                .map(|(i, ack)| match ack {
                    Ok(()) if i % 2 == 1 => Err(ProduceError::Unavailable(
                        "test: the acknowledgement was lost".into(),
                    )),
                    other => other,
                })
                .collect()
        })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        self.inner.probe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_retries_of_acknowledged_events_are_stored_and_counted_once() {
    for (client, expected) in [
        (Client::Node("segment-node.js"), 12),
        (Client::Node("posthog-node.js"), 10),
        (Client::Python("posthog_python.py"), 10),
    ] {
        let topics = TestTopics::create(PARTITIONS).await.unwrap();
        let (addr, producer) = gateway_with(&topics, |config| LostAcks {
            inner: KafkaProducer::new(&config.kafka, &config.producer).unwrap(),
            lost: AtomicUsize::new(2),
            partial: AtomicUsize::new(0),
        })
        .await;
        let segment = matches!(client, Client::Node("segment-node.js"));
        let report = run_client(
            client,
            format!("http://{addr}"),
            &run_tag(),
            10,
            // An hour ago: the aggregator's windows are closed when it reads them.
            &[("SDK_QUIET_MS", "8000"), ("SDK_PAST_MS", "3600000")],
        )
        .await;
        assert_eq!(report.sent.len(), expected, "{}", report.raw);
        assert_eq!(
            producer.partial.load(Ordering::SeqCst),
            2,
            "two partial 503s"
        );
        let ids: std::collections::BTreeSet<Uuid> = report
            .sent
            .iter()
            .map(|m| match m["messageId"].as_str() {
                Some(message_id) if segment => event_id_for(TEAM, message_id),
                _ => m["uuid"].as_str().unwrap().parse().unwrap(),
            })
            .collect();
        let in_kafka = read_all(&topics.raw, PARTITIONS).await;
        assert!(
            in_kafka.len() > ids.len(),
            "the SDK's retries put acknowledged events into Kafka again ({} records, {} events)",
            in_kafka.len(),
            ids.len()
        );

        let downstream = Downstream::start(&topics.raw).await.unwrap();
        downstream
            .wait_for(ids.len() as u64, Duration::from_secs(90))
            .await
            .unwrap();
        downstream.assert_once(&ids).await.unwrap();
        downstream.stop().await.unwrap();
    }
}
