//! A client's retry of events Kafka already has — here after a gateway
//! replica died between Kafka's acknowledgement and its HTTP answer — is
//! stored once in ClickHouse and counted once in the rollups, the views and
//! DAU, by the real gateway binaries, loader and aggregator on the real
//! stack. (The SDKs' own retries after a partial 503 are in `sdk_compat.rs`;
//! crashes of the loader and the aggregator with retries in the stream are
//! in their `exactly_once.rs`.)

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_core::Timestamp;
use sluice_gateway::ingest::CRASH_AFTER_PRODUCE_ENV;
use sluice_tests::binary::{GatewayProcess, wait_for_abort};
use sluice_tests::downstream::Downstream;
use sluice_tests::{TestTopics, read_all};
use uuid::Uuid;

const KEY: &str = "sk_test_retries_once";
const TEAM: &str = "team-retries";

/// A gateway replica: the real binary on its own port.
struct Replica(GatewayProcess);

impl Replica {
    async fn start(topics: &TestTopics, env: &[(&str, &str)]) -> Self {
        Self(GatewayProcess::start(topics, KEY, TEAM, env).await.unwrap())
    }

    async fn send(&self, events: &[Value]) -> reqwest::Result<reqwest::Response> {
        reqwest::Client::new()
            .post(format!("{}/v1/events", self.0.base))
            .bearer_auth(KEY)
            .json(&json!({ "events": events }))
            .send()
            .await
    }
}

/// Events with client ids, an hour old (their 5-minute windows are closed
/// when the aggregator reads them), 30 users.
fn events(first: u64, n: u64) -> Vec<(Uuid, Value)> {
    let at = Timestamp::now().as_millis() - 3_600_000;
    (first..first + n)
        .map(|i| {
            let id = Uuid::new_v4();
            let name = ["Opened", "Clicked", "Bought"][(i % 3) as usize];
            let event = json!({
                "event_id": id,
                "event": name,
                "user_id": format!("user-{}", i % 30),
                "timestamp": at + (i as i64 % 600) * 1000,
                "properties": { "seq": i },
            });
            (id, event)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_between_the_kafka_ack_and_its_answer_then_retried_on_another_replica_stores_once()
 {
    let topics = TestTopics::create(4).await.unwrap();
    let mut dying = Replica::start(&topics, &[(CRASH_AFTER_PRODUCE_ENV, "1")]).await;
    let survivor = Replica::start(&topics, &[]).await;

    let first = events(0, 300);
    let bodies: Vec<Value> = first.iter().map(|(_, e)| e.clone()).collect();
    let answer = dying.send(&bodies).await;
    assert!(
        answer.is_err(),
        "the dying replica answered: {:?}",
        answer.map(|r| r.status())
    );
    wait_for_abort(&mut dying.0.child, Duration::from_secs(10));
    // The crash came after Kafka's acknowledgement: every event is there
    // although the client heard nothing.
    assert_eq!(read_all(&topics.raw, 4).await.len(), 300);

    // The client resends the batch to another replica...
    let retried = survivor.send(&bodies).await.unwrap();
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["accepted"], 300, "{retried}");
    // ... and later a batch of new events with a third of the old ones again.
    let new = events(300, 100);
    let mut mixed: Vec<Value> = new.iter().map(|(_, e)| e.clone()).collect();
    mixed.extend(bodies.iter().step_by(3).cloned());
    let answer: Value = survivor.send(&mixed).await.unwrap().json().await.unwrap();
    assert_eq!(answer["accepted"], 200, "{answer}");
    assert_eq!(
        read_all(&topics.raw, 4).await.len(),
        800,
        "every copy is in Kafka: 300, 300 again, then 100 new and 100 old"
    );

    let acknowledged: BTreeSet<Uuid> = first.iter().chain(&new).map(|(id, _)| *id).collect();
    let downstream = Downstream::start(&topics.raw).await.unwrap();
    downstream
        .wait_for(400, Duration::from_secs(90))
        .await
        .unwrap();
    downstream.assert_once(&acknowledged).await.unwrap();
    downstream.stop().await.unwrap();
}
