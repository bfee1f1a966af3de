//! API keys are shared by every gateway replica through the compacted
//! `sluice.keys` topic: created on one, honoured by another within seconds;
//! revoked on one, refused by the other; and still there after a restart.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use sluice_cli::admin::AdminClient;
use sluice_tests::{OPERATOR_TOKEN, RunningGateway, TestTopics};

async fn send(gateway: &RunningGateway, key: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/events"))
        .bearer_auth(key)
        .json(&json!({ "events": [{ "event": "Ping", "user_id": "u1" }] }))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Polls until `send` answers `status`. Replication takes well under a
/// second here; the 30 s deadline only bounds a broken run on a loaded
/// machine (a deadline, not a speed requirement: speed is benchmarked).
async fn eventually(gateway: &RunningGateway, key: &str, status: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = send(gateway, key).await;
        if got == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {got} after 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_on_one_replica_works_on_another_and_revocation_spreads() {
    let topics = TestTopics::create(2).await.unwrap();
    let config = topics.gateway_config("sk_unused_config_key", "unused");
    let a = RunningGateway::start_ready(config.clone()).await.unwrap();
    let b = RunningGateway::start_ready(config.clone()).await.unwrap();

    let admin_a = AdminClient::new(&a.url(""), OPERATOR_TOKEN);
    let created = admin_a
        .create_key("team-x", "ingest", "replicated")
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();

    // Read-your-writes on the replica that created it; within seconds on the other.
    assert_eq!(send(&a, &key).await.0, 200);
    let body = eventually(&b, &key, 200).await;
    assert_eq!(body["accepted"], 1);

    let admin_b = AdminClient::new(&b.url(""), OPERATOR_TOKEN);
    admin_b.revoke_key(&key_id).await.unwrap();
    assert_eq!(send(&b, &key).await.1["error"]["code"], "revoked_api_key");
    let body = eventually(&a, &key, 401).await;
    assert_eq!(body["error"]["code"], "revoked_api_key");

    // A replica started later loads the whole history before it is ready.
    a.stop().await.unwrap();
    let c = RunningGateway::start(config).await.unwrap();
    c.wait_ready(Duration::from_secs(20)).await.unwrap();
    assert_eq!(send(&c, &key).await.1["error"]["code"], "revoked_api_key");
    let listed = AdminClient::new(&c.url(""), OPERATOR_TOKEN)
        .list_keys(Some("team-x"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["key_id"], key_id.as_str());
    b.stop().await.unwrap();
    c.stop().await.unwrap();
}
