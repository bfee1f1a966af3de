//! The native ingest endpoint against the real broker: what the gateway
//! acknowledges is exactly what lands in Kafka.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_core::kafka::headers;
use sluice_core::readback;
use sluice_tests::{RunningGateway, TestTopics, kafka};
use uuid::Uuid;

const KEY: &str = "sk_test_kafka_roundtrip";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_are_in_kafka_exactly_once_in_user_order() {
    let topics = TestTopics::create(6).await.unwrap();
    let gateway = RunningGateway::start(topics.gateway_config(KEY, "team-rt"))
        .await
        .unwrap();
    let client = reqwest::Client::new();

    // Three requests, five users, a sequence number per user; plus rejects.
    let mut sent: Vec<(Uuid, String, u64)> = Vec::new();
    let mut rejected_ids = Vec::new();
    for request in 0..3u64 {
        let mut events = Vec::new();
        for i in 0..40u64 {
            let id = Uuid::new_v4();
            let user = format!("user-{}", i % 5);
            let seq = request * 40 + i;
            events.push(json!({ "event_id": id, "event": "Seq", "user_id": user,
                                "properties": { "seq": seq } }));
            sent.push((id, user, seq));
        }
        let bad = Uuid::new_v4();
        events.push(json!({ "event_id": bad, "event": "Bad", "user_id": "" }));
        rejected_ids.push(bad);
        let response = client
            .post(gateway.url("/v1/events"))
            .bearer_auth(KEY)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["accepted"], 40, "{body}");
        assert_eq!(body["rejected"], 1, "{body}");
        assert_eq!(body["results"][40]["code"], "invalid_user_id");
    }

    let settings = kafka();
    let start: BTreeMap<i32, i64> = (0..6).map(|p| (p, 0)).collect();
    let (raw_topic, total) = (topics.raw.clone(), sent.len());
    let raw = tokio::task::spawn_blocking(move || {
        readback::read_from(
            &settings,
            &raw_topic,
            &start,
            Duration::from_secs(30),
            |r| r.len() >= total,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        raw.len(),
        sent.len(),
        "every acknowledged event is in the topic"
    );
    // The end offsets count every record ever written, so a duplicate produced
    // after the read stopped would still show here.
    let (settings, raw_topic) = (kafka(), topics.raw.clone());
    let ends = tokio::task::spawn_blocking(move || readback::end_offsets(&settings, &raw_topic))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ends.values().sum::<i64>(),
        sent.len() as i64,
        "no record beyond the acknowledged ones"
    );

    let mut by_id: HashMap<Uuid, &readback::ReadRecord> = HashMap::new();
    let mut per_user: BTreeMap<String, Vec<(i32, i64, u64)>> = BTreeMap::new();
    for record in &raw {
        let value: Value = serde_json::from_slice(&record.payload).unwrap();
        let id: Uuid = value["event_id"].as_str().unwrap().parse().unwrap();
        assert!(by_id.insert(id, record).is_none(), "duplicate {id}");
        let user = value["user_id"].as_str().unwrap().to_owned();
        assert_eq!(record.key, format!("team-rt:{user}"));
        assert_eq!(record.headers[headers::TEAM], "team-rt");
        assert_eq!(value["team_id"], "team-rt");
        per_user.entry(user).or_default().push((
            record.partition,
            record.offset,
            value["properties"]["seq"].as_u64().unwrap(),
        ));
    }
    for (id, _, _) in &sent {
        assert!(
            by_id.contains_key(id),
            "acknowledged event {id} missing from Kafka"
        );
    }
    for (user, mut events) in per_user {
        let partitions: Vec<i32> = events.iter().map(|e| e.0).collect();
        assert!(
            partitions.windows(2).all(|w| w[0] == w[1]),
            "{user} spans partitions"
        );
        events.sort_by_key(|e| e.1);
        let seqs: Vec<u64> = events.iter().map(|e| e.2).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{user} out of order: {seqs:?}"
        );
    }

    let settings = kafka();
    let rejected_topic = topics.rejected.clone();
    let dlq = tokio::task::spawn_blocking(move || {
        readback::read_from(
            &settings,
            &rejected_topic,
            &BTreeMap::from([(0, 0)]),
            Duration::from_secs(30),
            |r| r.len() >= 3,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(dlq.len(), 3);
    for (record, id) in dlq.iter().zip(&rejected_ids) {
        assert_eq!(record.headers[headers::REJECT_CODE], "invalid_user_id");
        let value: Value = serde_json::from_slice(&record.payload).unwrap();
        assert_eq!(
            value["event_id"],
            id.to_string(),
            "the DLQ keeps the event as sent"
        );
    }

    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_command_round_trips_through_the_broker() {
    let topics = TestTopics::create(3).await.unwrap();
    let gateway = RunningGateway::start(topics.gateway_config(KEY, "team-demo"))
        .await
        .unwrap();
    let options = sluice_cli::sample::SampleOptions {
        gateway: gateway.url(""),
        api_key: KEY.to_owned(),
        kafka: kafka(),
        topic: topics.raw.clone(),
        events: 12,
        timeout: Duration::from_secs(30),
    };
    let report = sluice_cli::sample::run(&options).await.unwrap();
    assert_eq!(report.accepted.len(), 12);
    assert_eq!(report.rejected, 1);
    assert_eq!(report.found.len(), 12);
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_batches() {
    let topics = TestTopics::create(3).await.unwrap();
    let mut config = topics.gateway_config(KEY, "team-drain");
    // A long linger keeps requests waiting on Kafka while shutdown begins.
    config.producer.linger_ms = 2000;
    let gateway = RunningGateway::start(config).await.unwrap();
    gateway.wait_ready(Duration::from_secs(20)).await.unwrap();

    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for r in 0..10 {
        let events: Vec<Value> = (0..10)
            .map(|i| json!({ "event": "Drain", "user_id": format!("u{r}-{i}") }))
            .collect();
        let request = client
            .post(gateway.url("/v1/events"))
            .bearer_auth(KEY)
            .json(&json!({ "events": events }))
            .send();
        requests.push(tokio::spawn(request));
    }
    // Shutdown begins while all ten are in flight, held by the linger.
    let readyz = gateway.url("/readyz");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = reqwest::get(&readyz).await.unwrap().json().await.unwrap();
        if body["in_flight_requests"] == 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ten requests never were in flight together: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    gateway.stop().await.unwrap();
    let shutdown_took = started.elapsed();

    let mut accepted = 0;
    for request in requests {
        let response = request
            .await
            .unwrap()
            .expect("in-flight requests are answered, not dropped");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        accepted += body["accepted"].as_u64().unwrap();
    }
    // All ten were in flight when shutdown began and all were answered
    // with Kafka's acknowledgement: shutdown waited for them.
    assert_eq!(accepted, 100);
    eprintln!("shutdown drained ten in-flight requests in {shutdown_took:?}");
    let (settings, raw) = (kafka(), topics.raw.clone());
    let ends = tokio::task::spawn_blocking(move || readback::end_offsets(&settings, &raw))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ends.values().sum::<i64>(),
        100,
        "every answered event is in Kafka"
    );
}

/// Sets one config of `topic` on the real broker.
async fn set_topic_config(topic: &str, key: &str, value: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = kafka().client_config().create().unwrap();
    let results = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(topic)).set(key, value)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

/// A rejected event whose copy the dead-letter topic refuses is answered
/// `failed` (503, resend it), never `rejected`: `rejected` tells the client
/// to stop resending, so it is said only once the copy is kept. The broker
/// really refuses the write here (the rejected topic's `max.message.bytes`
/// set below the event's size); once it accepts again, the resent event is
/// `rejected` and its copy is in the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_the_dead_letter_topic_refused_is_failed_until_it_is_kept() {
    let topics = TestTopics::create(2).await.unwrap();
    set_topic_config(&topics.rejected, "max.message.bytes", "64").await;
    let gateway = RunningGateway::start(topics.gateway_config(KEY, "team-dlq"))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let (good, bad) = (Uuid::new_v4(), Uuid::new_v4());
    let bad_event = json!({ "event_id": bad, "event": "Bad", "user_id": "",
                            "properties": { "pad": "x".repeat(200) } });
    let send = |events: Vec<Value>| {
        client
            .post(gateway.url("/v1/events"))
            .bearer_auth(KEY)
            .json(&json!({ "events": events }))
            .send()
    };

    let response = send(vec![
        json!({ "event_id": good, "event": "Good", "user_id": "u-1" }),
        bad_event.clone(),
    ])
    .await
    .unwrap();
    assert_eq!(response.status(), 503, "some event failed");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["accepted"].clone(),
            body["failed"].clone(),
            body["rejected"].clone()
        ),
        (json!(1), json!(1), json!(0)),
        "{body}"
    );
    let failed = &body["results"][1];
    assert_eq!(failed["status"], "failed", "{body}");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("invalid_user_id") && message.contains("resend"),
        "the message names the rule and says to resend: {message}"
    );
    let dlq = sluice_tests::read_all(&topics.rejected, 1).await;
    assert!(dlq.is_empty(), "nothing was kept: {dlq:?}");

    // The topic takes it again: the client's resend is rejected, and kept.
    set_topic_config(&topics.rejected, "max.message.bytes", "1048588").await;
    let response = send(vec![bad_event]).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    assert_eq!(body["results"][0]["code"], "invalid_user_id");
    let records = sluice_tests::read_records(&topics.rejected, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0]
            .headers
            .get(headers::REJECT_CODE)
            .map(String::as_str),
        Some("invalid_user_id")
    );
    let kept: Value = serde_json::from_slice(&records[0].payload).unwrap();
    assert_eq!(kept["event_id"], bad.to_string());
    gateway.stop().await.unwrap();
}
