//! Three Kafka brokers (replication factor 3, `min.insync.replicas=2`, a
//! dedicated stack of this test's own) under steady load through the real
//! gateway, with the real loader and aggregator consuming: the leader of a
//! partition is killed with SIGKILL mid-load and restarted, a node is
//! stalled (SIGSTOP) longer than the session timeout and thawed, another is
//! shut down (controlled) and restarted, then two nodes are down at once
//! (below `min.insync.replicas`: `failed`, never `accepted`). A client that
//! resends what it was answered `failed` (as every SDK does) ends with every
//! event it sent stored once in ClickHouse and counted once in the rollups,
//! views and DAU, whatever Kafka wrote twice on the way (first issue 22
//! scenario; the retries that a failover causes are exactly what
//! deduplication, issue 18, is for).

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use sluice_core::Timestamp;
use sluice_tests::downstream::Downstream;
use sluice_tests::stack::{DedicatedStack, Services};
use sluice_tests::{RunningGateway, TestTopics};
use tokio::sync::Mutex;
use uuid::Uuid;

const KEY: &str = "sk_test_three_brokers";

#[derive(Debug, Default)]
struct Client {
    /// Every event sent, with its body (resent as is).
    sent: BTreeMap<Uuid, Value>,
    /// Answered `accepted` at least once.
    accepted: BTreeSet<Uuid>,
    /// Answered `failed` last time: to resend.
    pending: BTreeSet<Uuid>,
    statuses: BTreeMap<u16, usize>,
    /// Request latencies, for the p99 reported.
    latencies: Vec<Duration>,
}

/// One request with `ids`; records the answers.
async fn send(http: &reqwest::Client, url: &str, client: &Mutex<Client>, ids: &[Uuid]) {
    let events: Vec<Value> = {
        let c = client.lock().await;
        ids.iter().map(|id| c.sent[id].clone()).collect()
    };
    let started = Instant::now();
    let response = http
        .post(url)
        .bearer_auth(KEY)
        .json(&json!({ "events": events }))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the gateway answers, never hangs");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let mut c = client.lock().await;
    c.latencies.push(started.elapsed());
    *c.statuses.entry(status).or_default() += 1;
    for result in body["results"].as_array().into_iter().flatten() {
        let id: Uuid = result["event_id"].as_str().unwrap().parse().unwrap();
        match result["status"].as_str() {
            Some("accepted") => {
                c.accepted.insert(id);
                c.pending.remove(&id);
            }
            Some("failed") => {
                c.pending.insert(id);
            }
            other => panic!("unexpected outcome {other:?}: {result}"),
        }
    }
}

/// Steady load: batches of 20 new events, an hour old (closed windows when
/// the aggregator reads them), plus a resend of what failed.
async fn load(url: String, stop: Arc<AtomicBool>, client: Arc<Mutex<Client>>) {
    let http = reqwest::Client::new();
    let at = Timestamp::now().as_millis() - 3_600_000;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<Uuid> = {
            let mut c = client.lock().await;
            (0..20)
                .map(|_| {
                    n += 1;
                    let id = Uuid::new_v4();
                    let name = ["Opened", "Clicked"][(n % 2) as usize];
                    let body = json!({ "event_id": id, "event": name,
                                       "user_id": format!("u{}", n % 11),
                                       "timestamp": at + (n % 900) as i64 * 1000,
                                       "properties": { "n": n } });
                    c.sent.insert(id, body);
                    id
                })
                .collect()
        };
        send(&http, &url, &client, &ids).await;
        resend_pending(&http, &url, &client).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn resend_pending(http: &reqwest::Client, url: &str, client: &Mutex<Client>) {
    let pending: Vec<Uuid> = client
        .lock()
        .await
        .pending
        .iter()
        .copied()
        .take(100)
        .collect();
    if !pending.is_empty() {
        send(http, url, client, &pending).await;
    }
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node leading `partition` of `topic` (node ids are 1..=3).
fn leader(stack: &DedicatedStack, topic: &str, partition: i32) -> i32 {
    let consumer: BaseConsumer = stack.kafka().client_config().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .find(|p| p.id() == partition)
        .unwrap()
        .leader()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_a_controlled_shutdown_and_two_brokers_down_lose_and_double_count_nothing()
{
    let stack =
        tokio::task::spawn_blocking(|| DedicatedStack::start(Services::Kafka { brokers: 3 }))
            .await
            .unwrap()
            .unwrap();
    // Topics with one replica on three brokers: the gateway refuses to
    // start (naming the setting) rather than promise events one broker can
    // lose.
    let thin = TestTopics::create_on(stack.kafka(), 1, 1).await.unwrap();
    let mut config = thin.gateway_config(KEY, "team-thin");
    config.kafka = stack.kafka();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(60),
        sluice_gateway::serve(config, listener, std::future::pending()),
    )
    .await
    .expect("refused at start, not served")
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("producer.min_replicas")
            && refused.contains("1 replica(s), fewer than the 3 required"),
        "{refused}"
    );
    drop(thin);

    let topics = TestTopics::create_on(stack.kafka(), 6, 3).await.unwrap();
    let mut config = topics.gateway_config(KEY, "team-brokers");
    config.kafka = stack.kafka();
    let gateway = RunningGateway::start(config).await.unwrap();
    gateway.wait_ready(Duration::from_secs(60)).await.unwrap();
    let downstream = Downstream::start_on(stack.kafka(), &topics.raw)
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let client = Arc::new(Mutex::new(Client::default()));
    let loading = tokio::spawn(load(
        gateway.url("/v1/events"),
        stop.clone(),
        client.clone(),
    ));
    wait_for("load flowing", Duration::from_secs(30), async || {
        client.lock().await.accepted.len() > 500
    })
    .await;

    let victim = {
        let stack = &stack;
        let topic = topics.raw.clone();
        tokio::task::block_in_place(|| leader(stack, &topic, 0))
    };
    assert!((1..=3).contains(&victim), "leader {victim}");
    let node = format!("kafka-{victim}");
    let before_kill = client.lock().await.accepted.len();
    tokio::task::block_in_place(|| stack.kill(&node)).unwrap();
    let killed_at = Instant::now();
    // Two brokers are still in sync: ingest goes on after the failover.
    wait_for(
        "accepted again after the kill",
        Duration::from_secs(90),
        async || client.lock().await.accepted.len() > before_kill + 500,
    )
    .await;
    let healthy_after = killed_at.elapsed();
    tokio::task::block_in_place(|| stack.start_service(&node)).unwrap();
    let before_restart = client.lock().await.accepted.len();
    wait_for(
        "accepted after the restart",
        Duration::from_secs(60),
        async || client.lock().await.accepted.len() > before_restart + 500,
    )
    .await;

    // A stall longer than the brokers' session timeout (9 s): the node is
    // alive but silent (SIGSTOP), is fenced, and rejoins when thawed.
    let stalled = format!("kafka-{}", (victim + 1) % 3 + 1);
    let before_stall = client.lock().await.accepted.len();
    tokio::task::block_in_place(|| stack.pause(&stalled)).unwrap();
    let stall = Instant::now();
    wait_for(
        "accepted during the stall",
        Duration::from_secs(90),
        async || client.lock().await.accepted.len() > before_stall + 500,
    )
    .await;
    // Not a synchronisation: the stall must outlast the session timeout.
    tokio::time::sleep(Duration::from_secs(15).saturating_sub(stall.elapsed())).await;
    tokio::task::block_in_place(|| stack.resume(&stalled)).unwrap();

    // A controlled shutdown of another node, then back.
    let other = format!("kafka-{}", victim % 3 + 1);
    let before_stop = client.lock().await.accepted.len();
    tokio::task::block_in_place(|| stack.stop(&other)).unwrap();
    wait_for(
        "accepted during a controlled shutdown",
        Duration::from_secs(90),
        async || client.lock().await.accepted.len() > before_stop + 500,
    )
    .await;
    tokio::task::block_in_place(|| stack.start_service(&other)).unwrap();

    // Two nodes down: fewer in sync than min.insync.replicas, so nothing can
    // be acknowledged; the gateway answers `failed` (503), never a false
    // `accepted` (the final check would find an accepted event missing).
    let third = format!("kafka-{}", (victim + 1) % 3 + 1);
    let failures_before = client.lock().await.statuses.get(&503).copied().unwrap_or(0);
    tokio::task::block_in_place(|| stack.stop(&node)).unwrap();
    tokio::task::block_in_place(|| stack.stop(&third)).unwrap();
    wait_for(
        "503s while two nodes are down",
        Duration::from_secs(90),
        async || client.lock().await.statuses.get(&503).copied().unwrap_or(0) > failures_before,
    )
    .await;
    tokio::task::block_in_place(|| stack.start_service(&node)).unwrap();
    tokio::task::block_in_place(|| stack.start_service(&third)).unwrap();
    let before_recovery = client.lock().await.accepted.len();
    wait_for(
        "accepted after both nodes returned",
        Duration::from_secs(120),
        async || client.lock().await.accepted.len() > before_recovery + 500,
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    loading.await.unwrap();

    // The client resends until nothing is pending, as an SDK would.
    let http = reqwest::Client::new();
    let url = gateway.url("/v1/events");
    wait_for(
        "every event accepted",
        Duration::from_secs(60),
        async || {
            resend_pending(&http, &url, &client).await;
            client.lock().await.pending.is_empty()
        },
    )
    .await;

    let c = client.lock().await;
    let all: BTreeSet<Uuid> = c.sent.keys().copied().collect();
    assert_eq!(c.accepted, all, "every event sent was accepted in the end");
    let mut latencies = c.latencies.clone();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "three brokers, leader kafka-{victim} killed, {stalled} stalled 15 s, {other} stopped, then {node} and {third} down: {} events, statuses {:?}, p99 {p99:?}, ingest healthy {healthy_after:?} after the kill",
        all.len(),
        c.statuses
    );
    let total = all.len() as u64;
    drop(c);
    downstream
        .wait_for(total, Duration::from_secs(120))
        .await
        .unwrap();
    downstream.assert_once(&all).await.unwrap();
    downstream.stop().await.unwrap();
    gateway.stop().await.unwrap();
}
