//! `sluice dlq` on the real stack: events a failing plugin dead-lettered
//! are found in the dead-letter topic by team and code, replayed through the
//! team's fixed pipeline with their original ids, and stored once in
//! ClickHouse even when replayed twice (by the real loader and aggregator);
//! a third replay finds them stored and sends nothing.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_cli::dlq::{self, DeadLetter, Filter, ReplayOptions, StoredCheck};
use sluice_core::Timestamp;
use sluice_core::kafka::headers;
use sluice_tests::downstream::{Downstream, clickhouse_url};
use sluice_tests::plugin_admin::{Admin, component};
use sluice_tests::{OPERATOR_TOKEN, RunningGateway, TestTopics, kafka, read_all};
use uuid::Uuid;

const KEY_A: &str = "sk_test_dlq_team_a";
const KEY_B: &str = "sk_test_dlq_team_b";

async fn gateway(topics: &TestTopics) -> RunningGateway {
    let mut config = topics.gateway_config(KEY_A, "team-a");
    config.auth.keys.insert(KEY_B.into(), "team-b".into());
    // The failing plugin must keep failing until it is replaced.
    config.plugins.disable_after_failures = 1_000;
    RunningGateway::start_ready(config).await.unwrap()
}

async fn send(gateway: &RunningGateway, key: &str, events: &[Value]) -> Value {
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `n` events with client ids, an hour old (their 5-minute windows are
/// closed when the aggregator reads them).
fn events(n: usize) -> (Vec<Uuid>, Vec<Value>) {
    let at = Timestamp::now().as_millis() - 3_600_000;
    (0..n)
        .map(|i| {
            let id = Uuid::new_v4();
            let name = ["Opened", "Clicked"][i % 2];
            let event = json!({
                "event_id": id,
                "event": name,
                "user_id": format!("user-{}", i % 3),
                "timestamp": at + i as i64 * 1000,
                "properties": { "seq": i },
            });
            (id, event)
        })
        .unzip()
}

/// The dead letters `filter` selects in `topic`.
async fn select(topic: &str, filter: Filter) -> Vec<DeadLetter> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || dlq::select(&kafka(), &topic, &filter))
        .await
        .unwrap()
        .unwrap()
}

fn filter(team: Option<&str>, codes: &[&str]) -> Filter {
    Filter {
        team: team.map(str::to_owned),
        codes: codes.iter().map(|c| (*c).to_owned()).collect(),
        ..Filter::default()
    }
}

fn ids(letters: &[DeadLetter]) -> BTreeSet<Uuid> {
    letters.iter().map(|l| l.event_id.unwrap()).collect()
}

fn options(gateway: &RunningGateway, token: &str) -> ReplayOptions {
    ReplayOptions {
        gateway: gateway.url(""),
        token: token.to_owned(),
        stored: None,
        dry_run: false,
        // Several requests for a handful of events.
        batch_size: 3,
        attempts: 3,
        backoff: Duration::from_millis(200),
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettered_events_are_replayed_with_their_ids_and_stored_once_when_replayed_twice() {
    let topics = TestTopics::create(2).await.unwrap();
    let gateway = gateway(&topics).await;
    let admin = Admin::new(&gateway);
    let (status, body) = admin
        .upload(
            "team-a",
            "checker",
            "1.0.0",
            "validator",
            component("fixture_trap"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    admin
        .patch("team-a", "checker", json!({ "policy": "dead_letter" }))
        .await;
    admin.wait_active("team-a", "checker", "1.0.0").await;

    let (sent, bodies) = events(8);
    let answer = send(&gateway, KEY_A, &bodies).await;
    assert_eq!(answer["dead_lettered"], 8, "{answer}");
    assert!(read_all(&topics.raw, 2).await.is_empty());

    // The plugin is fixed: a new version that accepts every event, running
    // on this replica before anything is replayed.
    let (status, body) = admin
        .upload(
            "team-a",
            "checker",
            "1.0.1",
            "validator",
            component("fixture_ignore"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    admin.wait_active("team-a", "checker", "1.0.1").await;

    let letters = select(&topics.rejected, filter(Some("team-a"), &["plugin_failed"])).await;
    let want: BTreeSet<Uuid> = sent.iter().copied().collect();
    assert_eq!(ids(&letters), want);

    // Another team's admin key may not replay team-a's events.
    let created: Value = reqwest::Client::new()
        .post(gateway.url("/admin/v1/keys"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({ "team_id": "team-b", "role": "admin" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_b = created["key"].as_str().unwrap();
    let refused = dlq::replay("team-a", &letters, &options(&gateway, admin_b))
        .await
        .unwrap_err();
    assert!(format!("{refused:#}").contains("HTTP 403"), "{refused:#}");
    assert!(read_all(&topics.raw, 2).await.is_empty());

    // Replayed twice (say, an operator ran it again): every event is
    // accepted under its original id both times.
    for round in 1..=2 {
        let report = dlq::replay("team-a", &letters, &options(&gateway, OPERATOR_TOKEN))
            .await
            .unwrap();
        assert_eq!(
            (report.selected, report.accepted, report.failed),
            (8, 8, 0),
            "{}",
            report.render()
        );
        assert!(report.rejected.is_empty() && report.dead_lettered == 0);
        assert_eq!(
            report.accepted_ids.iter().copied().collect::<BTreeSet<_>>(),
            want
        );
        let raw = read_all(&topics.raw, 2).await;
        assert_eq!(raw.len(), 8 * round);
        for event in &raw {
            let id: Uuid = event["event_id"].as_str().unwrap().parse().unwrap();
            assert!(want.contains(&id), "{event}");
            assert_eq!(event["team_id"], "team-a");
        }
    }

    // The real loader and aggregator keep one copy of each.
    let downstream = Downstream::start(&topics.raw).await.unwrap();
    downstream
        .wait_for(8, Duration::from_secs(90))
        .await
        .unwrap();
    downstream.assert_once(&want).await.unwrap();

    // Days later, outside the dedup window, the ClickHouse pre-check skips
    // what is stored: nothing is sent.
    let mut checked = options(&gateway, OPERATOR_TOKEN);
    checked.stored = Some(StoredCheck {
        url: clickhouse_url(),
        database: downstream.db().to_owned(),
        table: "events".to_owned(),
    });
    let report = dlq::replay("team-a", &letters, &checked).await.unwrap();
    assert_eq!(
        (report.already_stored, report.sent, report.accepted),
        (8, 0, 0),
        "{}",
        report.render()
    );
    assert_eq!(read_all(&topics.raw, 2).await.len(), 16);

    downstream.stop().await.unwrap();
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_selects_exactly_the_dead_letters_of_a_team_and_code() {
    let topics = TestTopics::create(1).await.unwrap();
    let gateway = gateway(&topics).await;
    let tomorrow = Timestamp::now().as_millis() + 86_400_000;
    let future =
        |id: Uuid| json!({ "event_id": id, "event": "e", "user_id": "u", "timestamp": tomorrow });
    let nameless = |id: Uuid| json!({ "event_id": id, "event": "", "user_id": "u" });

    let a_future: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let a_nameless: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let b_future: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let mut batch: Vec<Value> = a_future.iter().map(|id| future(*id)).collect();
    batch.extend(a_nameless.iter().map(|id| nameless(*id)));
    assert_eq!(send(&gateway, KEY_A, &batch).await["rejected"], 5);
    let batch: Vec<Value> = b_future.iter().map(|id| future(*id)).collect();
    assert_eq!(send(&gateway, KEY_B, &batch).await["rejected"], 2);

    // A dead letter of the loader: the events.raw record, no team header.
    let loader_id = Uuid::new_v4();
    let producer: FutureProducer = kafka().client_config().create().unwrap();
    let payload = json!({ "event_id": loader_id, "team_id": "team-b", "event": "e" }).to_string();
    producer
        .send(
            FutureRecord::to(&topics.rejected)
                .key("events.raw:0:17")
                .payload(&payload)
                .headers(
                    OwnedHeaders::new()
                        .insert(Header {
                            key: headers::REJECT_CODE,
                            value: Some("clickhouse_rejected"),
                        })
                        .insert(Header {
                            key: headers::REJECT_MESSAGE,
                            value: Some("type mismatch"),
                        }),
                ),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    let set = |ids: &[&[Uuid]]| -> BTreeSet<Uuid> {
        ids.iter().flat_map(|s| s.iter().copied()).collect()
    };
    let topic = &topics.rejected;
    assert_eq!(
        ids(&select(topic, filter(Some("team-a"), &[])).await),
        set(&[&a_future, &a_nameless])
    );
    assert_eq!(
        ids(&select(topic, filter(Some("team-a"), &["timestamp_in_future"])).await),
        set(&[&a_future])
    );
    assert_eq!(
        ids(&select(topic, filter(Some("team-b"), &[])).await),
        set(&[&b_future, &[loader_id]])
    );
    assert_eq!(
        ids(&select(
            topic,
            filter(None, &["clickhouse_rejected", "invalid_event_name"])
        )
        .await),
        set(&[&a_nameless, &[loader_id]])
    );
    let mut limited = filter(Some("team-a"), &[]);
    limited.limit = Some(2);
    assert_eq!(select(topic, limited).await.len(), 2);
    let mut later = filter(None, &[]);
    later.from = Some(Timestamp::from_millis(tomorrow));
    assert!(select(topic, later).await.is_empty());

    // The listing: a line per dead letter, then the counts.
    let (kafka, name) = (kafka(), topic.clone());
    let (tally, text) = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let tally = dlq::list(&kafka, &name, &Filter::default(), &mut out).unwrap();
        (tally, String::from_utf8(out).unwrap())
    })
    .await
    .unwrap();
    let counts: Vec<(&str, &str, usize)> = tally
        .0
        .iter()
        .map(|((team, code), n)| (team.as_str(), code.as_str(), *n))
        .collect();
    assert_eq!(
        counts,
        [
            ("team-a", "invalid_event_name", 2),
            ("team-a", "timestamp_in_future", 3),
            ("team-b", "clickhouse_rejected", 1),
            ("team-b", "timestamp_in_future", 2),
        ]
    );
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("team-b  clickhouse_rejected  {loader_id}"))),
        "{text}"
    );
    gateway.stop().await.unwrap();
}
