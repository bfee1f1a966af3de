//! The schema registry end to end against real Kafka: schemas registered
//! (through the CLI's client) on one gateway replica are enforced by another
//! that shares only the compacted topic; conforming events reach the raw
//! topic, the others are rejected with their reason and land in the
//! dead-letter topic with it; a replica started later loads the registry.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_cli::admin::AdminClient;
use sluice_cli::schema::{Decision, SchemaClient};
use sluice_core::kafka::headers;
use sluice_core::readback;
use sluice_tests::{OPERATOR_TOKEN, RunningGateway, TestTopics};

const TEAM: &str = "team-schemas";
const EVENT: &str = "Signup Completed";

fn v1() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["email"],
        "properties": {
            "email": {"type": "string", "format": "email"},
            "seats": {"type": "integer", "minimum": 1}
        }
    })
}

async fn send(gateway: &RunningGateway, key: &str, events: Value) -> Value {
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_registered_on_one_replica_is_enforced_by_another() {
    let topics = TestTopics::create(2).await.unwrap();
    let config = topics.gateway_config("sk_unused_config_key", "unused");
    let a = RunningGateway::start_ready(config.clone()).await.unwrap();
    let b = RunningGateway::start_ready(config.clone()).await.unwrap();

    let operator = AdminClient::new(&a.url(""), OPERATOR_TOKEN);
    let admin_key = operator.create_key(TEAM, "admin", "schemas").await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let ingest_key = operator.create_key(TEAM, "ingest", "app").await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Register v1 on replica A with the team's admin key.
    let on_a = SchemaClient::new(&a.url(""), &admin_key).unwrap();
    let registered = on_a.register(TEAM, EVENT, &v1().to_string()).await.unwrap();
    assert_eq!(registered, Decision::Accepted { version: Some(1) });

    // A breaking change is refused by a dry run on B (an ingest key may
    // check), with the reason, and nothing is registered.
    let mut breaking = v1();
    breaking["properties"]["plan"] = json!({"type": "string"});
    breaking["required"] = json!(["email", "plan"]);
    let on_b = SchemaClient::new(&b.url(""), &ingest_key).unwrap();
    // B may not have read the registration yet: poll until it knows v1.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match on_b
            .check(TEAM, EVENT, &breaking.to_string())
            .await
            .unwrap()
        {
            Decision::Refused { reasons } => break reasons,
            Decision::Accepted { .. } => {
                assert!(tokio::time::Instant::now() < deadline, "B never saw v1");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        refused[0]
            .contains("required property `plan` added without a default: old events would fail"),
        "{refused:?}"
    );
    let mut compatible = v1();
    compatible["properties"]["plan"] = json!({"type": "string", "default": "free"});
    compatible["required"] = json!(["email", "plan"]);
    assert_eq!(
        on_b.check(TEAM, EVENT, &compatible.to_string())
            .await
            .unwrap(),
        Decision::Accepted { version: None }
    );

    // Replica B enforces what was registered on A.
    let start = {
        let kafka = sluice_tests::kafka();
        let rejected = topics.rejected.clone();
        tokio::task::spawn_blocking(move || readback::end_offsets(&kafka, &rejected))
            .await
            .unwrap()
            .unwrap()
    };
    let body = send(
        &b,
        &ingest_key,
        json!([
            {"event": EVENT, "user_id": "u1", "schema_version": 1, "properties": {"email": "a@example.com", "seats": 3}},
            {"event": EVENT, "user_id": "u2", "schema_version": 1, "properties": {"email": "a@example.com", "seats": 0}},
            {"event": EVENT, "user_id": "u3", "schema_version": 2, "properties": {"email": "a@example.com"}},
            {"event": "Page Viewed", "user_id": "u4", "properties": {"path": "/"}}
        ]),
    )
    .await;
    let results = &body["results"];
    assert_eq!(results[0]["status"], "accepted", "{body}");
    assert_eq!(results[1]["code"], "schema_violation");
    assert_eq!(
        results[1]["message"],
        "`properties.seats`: 0 is below the minimum 1 (schema version 1 of `Signup Completed`)"
    );
    assert_eq!(results[2]["code"], "unknown_schema_version");
    assert_eq!(results[3]["status"], "accepted");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(2))
    );

    // Both rejections are in the dead-letter topic with their reasons.
    let records = {
        let kafka = sluice_tests::kafka();
        let rejected = topics.rejected.clone();
        tokio::task::spawn_blocking(move || {
            readback::read_from(&kafka, &rejected, &start, Duration::from_secs(20), |r| {
                r.len() >= 2
            })
        })
        .await
        .unwrap()
        .unwrap()
    };
    let codes: BTreeMap<String, String> = records
        .iter()
        .map(|r| {
            let event: Value = serde_json::from_slice(&r.payload).unwrap();
            (
                event["user_id"].as_str().unwrap().to_owned(),
                r.headers[headers::REJECT_CODE].clone(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        BTreeMap::from([
            ("u2".to_owned(), "schema_violation".to_owned()),
            ("u3".to_owned(), "unknown_schema_version".to_owned()),
        ])
    );
    let u2 = records
        .iter()
        .find(|r| String::from_utf8_lossy(&r.payload).contains("\"u2\""))
        .unwrap();
    assert!(u2.headers[headers::REJECT_MESSAGE].contains("properties.seats"));

    // v2 registered on B, then a team policy set on B, both honoured by A.
    let admin_on_b = SchemaClient::new(&b.url(""), &admin_key).unwrap();
    assert_eq!(
        admin_on_b
            .register(TEAM, EVENT, &compatible.to_string())
            .await
            .unwrap(),
        Decision::Accepted { version: Some(2) }
    );
    let response = reqwest::Client::new()
        .put(b.url(&format!("/schemas/v1/teams/{TEAM}/config")))
        .bearer_auth(&admin_key)
        .json(&json!({"unregisteredEvents": "reject"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body = send(
            &a,
            &ingest_key,
            json!([
                {"event": EVENT, "user_id": "u5", "schema_version": 2, "properties": {"email": "b@example.com", "plan": "pro"}},
                {"event": "Page Viewed", "user_id": "u6"}
            ]),
        )
        .await;
        if body["results"][0]["status"] == "accepted"
            && body["results"][1]["code"] == "unregistered_event"
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never caught up: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A replica started later loads the registry before it is ready.
    a.stop().await.unwrap();
    let c = RunningGateway::start(config).await.unwrap();
    c.wait_ready(Duration::from_secs(20)).await.unwrap();
    let body = send(
        &c,
        &ingest_key,
        json!([{"event": EVENT, "user_id": "u7", "schema_version": 1, "properties": {"seats": 2}}]),
    )
    .await;
    assert_eq!(body["results"][0]["code"], "schema_violation", "{body}");
    assert!(
        body["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("required property `email` is missing")
    );
    b.stop().await.unwrap();
    c.stop().await.unwrap();
}
