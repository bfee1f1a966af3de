//! Plugins end to end: uploaded through the admin API of one gateway replica,
//! stored in Kafka, compiled by every replica, and enforced on real traffic
//! whose results are read back from the real topics.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_tests::plugin_admin::{Admin, component};
use sluice_tests::{OPERATOR_TOKEN, RunningGateway, TestTopics, read_all};
use uuid::Uuid;

const KEY_A: &str = "sk_test_plugins_team_a";
const KEY_B: &str = "sk_test_plugins_team_b";

async fn send(gateway: &RunningGateway, key: &str, events: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn two_replicas(topics: &TestTopics) -> (RunningGateway, RunningGateway) {
    let mut config = topics.gateway_config(KEY_A, "team-a");
    config.auth.keys.insert(KEY_B.into(), "team-b".into());
    config.plugins.disable_after_failures = 3;
    let a = RunningGateway::start(config.clone()).await.unwrap();
    let b = RunningGateway::start(config).await.unwrap();
    a.wait_ready(Duration::from_secs(30)).await.unwrap();
    b.wait_ready(Duration::from_secs(30)).await.unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_validator_and_enricher_shape_what_reaches_kafka_on_every_replica() {
    let topics = TestTopics::create(2).await.unwrap();
    let (a, b) = two_replicas(&topics).await;
    let admin = Admin::new(&a);

    let (status, body) = admin
        .upload(
            "team-a",
            "required",
            "1.0.0",
            "validator",
            component("required_properties"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    admin
        .patch(
            "team-a",
            "required",
            json!({ "config": { "required": { "Signed Up": ["plan"] } } }),
        )
        .await;
    let (status, body) = admin
        .upload(
            "team-a",
            "scrub",
            "1.0.0",
            "enricher",
            component("pii_scrubber"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    admin
        .patch("team-a", "scrub", json!({ "config": { "salt": "e2e" } }))
        .await;
    // Uploaded through replica A, enforced by replica B.
    Admin::new(&b)
        .wait_active("team-a", "required", "1.0.0")
        .await;
    Admin::new(&b).wait_active("team-a", "scrub", "1.0.0").await;

    let ok = Uuid::new_v4();
    let (status, body) = send(&b, KEY_A, json!([
        { "event_id": ok, "event": "Signed Up", "user_id": "u1", "properties": { "plan": "pro", "email": "ann@example.com" } },
        { "event": "Signed Up", "user_id": "u2", "properties": { "email": "bob@example.com" } },
    ]))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    assert_eq!(body["results"][1]["status"], "rejected");
    assert_eq!(body["results"][1]["code"], "plugin_rejected");
    let message = body["results"][1]["message"].as_str().unwrap();
    assert!(
        message.contains("required")
            && message.contains("missing_property")
            && message.contains("plan"),
        "{message}"
    );

    // Team B has no plugins: its events pass untouched.
    let (status, body) = send(&b, KEY_B, json!([{ "event": "Signed Up", "user_id": "u9", "properties": { "email": "eve@example.com" } }])).await;
    assert_eq!((status.as_u16(), body["accepted"].as_u64()), (200, Some(1)));

    let raw = read_all(&topics.raw, 2).await;
    let enriched = raw
        .iter()
        .find(|e| e["event_id"] == ok.to_string())
        .unwrap();
    let email = enriched["properties"]["email"].as_str().unwrap();
    assert!(
        email.starts_with("sha256:"),
        "the enricher's change arrived in events.raw: {enriched}"
    );
    assert_eq!(enriched["properties"]["plan"], "pro");
    let untouched = raw.iter().find(|e| e["team_id"] == "team-b").unwrap();
    assert_eq!(untouched["properties"]["email"], "eve@example.com");
    let dlq = read_all(&topics.rejected, 1).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["user_id"], "u2");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// `events` in a plugin's record: the plugin runs on those event names only;
/// other events reach Kafka as if it had accepted them unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_runs_only_on_the_events_its_filter_names() {
    let topics = TestTopics::create(1).await.unwrap();
    let gateway = RunningGateway::start_ready(topics.gateway_config(KEY_A, "team-a"))
        .await
        .unwrap();
    let admin = Admin::new(&gateway);
    let (status, body) = admin
        .upload(
            "team-a",
            "scrub",
            "1.0.0",
            "enricher",
            component("pii_scrubber"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // A name an event could not have is refused, and nothing changes.
    for bad in [
        json!([""]),
        json!(["ok", "bad\u{7}name"]),
        json!("Signed Up"),
    ] {
        let (status, body) = admin
            .try_patch("team-a", "scrub", json!({ "events": bad }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    }
    let shown = admin.show("team-a", "scrub").await;
    assert!(shown.get("events").is_none(), "{shown}");

    let shown = admin
        .patch(
            "team-a",
            "scrub",
            json!({ "config": { "salt": "e2e" }, "events": ["Signed Up", "Invited", "Signed Up"] }),
        )
        .await;
    assert_eq!(
        shown["events"],
        json!(["Invited", "Signed Up"]),
        "sorted, once each"
    );
    admin.wait_active("team-a", "scrub", "1.0.0").await;

    let (status, body) = send(&gateway, KEY_A, json!([
        { "event": "Signed Up", "user_id": "u1", "properties": { "email": "ann@example.com" } },
        { "event": "Page Viewed", "user_id": "u2", "properties": { "email": "bob@example.com" } },
    ]))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2, "{body}");
    let raw = read_all(&topics.raw, 1).await;
    let email = |user: &str| {
        raw.iter().find(|e| e["user_id"] == user).unwrap()["properties"]["email"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(email("u1").starts_with("sha256:"), "{raw:?}");
    assert_eq!(
        email("u2"),
        "bob@example.com",
        "not in the filter: untouched"
    );
    let stats = &admin.show("team-a", "scrub").await["stats"];
    assert_eq!(
        stats["events"], 1,
        "only the sign-up went to the plugin: {stats}"
    );

    // `[]` clears the filter: every event again.
    let shown = admin
        .patch("team-a", "scrub", json!({ "events": [] }))
        .await;
    assert!(shown.get("events").is_none(), "{shown}");
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_validated_before_anything_changes() {
    let topics = TestTopics::create(1).await.unwrap();
    let gateway = RunningGateway::start(topics.gateway_config(KEY_A, "team-a"))
        .await
        .unwrap();
    gateway.wait_ready(Duration::from_secs(30)).await.unwrap();
    let admin = Admin::new(&gateway);
    let cases = [
        (
            "core",
            "validator",
            component("not-a-component"),
            422,
            "not_a_component",
        ),
        (
            "junk",
            "validator",
            b"hello".to_vec(),
            422,
            "not_a_component",
        ),
        (
            "other",
            "validator",
            component("fixture_other_world"),
            422,
            "wrong_world",
        ),
        (
            "swapped",
            "enricher",
            component("required_properties"),
            422,
            "wrong_world",
        ),
        (
            "cut",
            "validator",
            component("required_properties")[..4096].to_vec(),
            422,
            "invalid_component",
        ),
    ];
    for (name, kind, bytes, status, code) in cases {
        let (got, body) = admin.upload("team-a", name, "1.0.0", kind, bytes).await;
        assert_eq!(
            (got.as_u16(), body["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {body}"
        );
        assert_eq!(
            admin.show("team-a", name).await["error"]["code"],
            "not_found",
            "nothing stored for {name}"
        );
    }
    // A team admin key cannot touch another team's plugins.
    let created = sluice_cli::admin::AdminClient::new(&gateway.url(""), OPERATOR_TOKEN)
        .create_key("team-b", "admin", "")
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .put(gateway.url("/admin/v1/teams/team-a/plugins/x/versions/1.0.0?kind=validator"))
        .bearer_auth(created["key"].as_str().unwrap())
        .body(component("required_properties"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plugin_is_contained_disabled_and_re_enabled_while_other_teams_are_served() {
    let topics = TestTopics::create(1).await.unwrap();
    let (a, b) = two_replicas(&topics).await;
    let admin = Admin::new(&a);
    admin
        .upload(
            "team-a",
            "spin",
            "1.0.0",
            "validator",
            component("fixture_infinite_loop"),
        )
        .await;
    admin
        .patch("team-a", "spin", json!({ "policy": "dead_letter" }))
        .await;
    admin.wait_active("team-a", "spin", "1.0.0").await;

    for i in 0..3 {
        let (status, body) = send(
            &a,
            KEY_A,
            json!([{ "event": "e", "user_id": format!("u{i}") }]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["status"], "dead_lettered", "{body}");
        assert_eq!(body["results"][0]["code"], "plugin_failed");
        // Other teams are served normally meanwhile.
        let (status, other) = send(&a, KEY_B, json!([{ "event": "e", "user_id": "u" }])).await;
        assert_eq!(
            (status.as_u16(), other["accepted"].as_u64()),
            (200, Some(1))
        );
    }
    // Three consecutive failures disable it, on every replica.
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = Admin::new(&b).show("team-a", "spin").await;
        if shown["state"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shown["state"], "disabled", "{shown}");
    assert!(
        shown["disabled"]["reason"]
            .as_str()
            .unwrap()
            .contains("CPU budget"),
        "{shown}"
    );
    let (_, body) = send(&b, KEY_A, json!([{ "event": "e", "user_id": "u" }])).await;
    assert_eq!(
        body["results"][0]["status"], "accepted",
        "a disabled plugin no longer runs"
    );

    let metrics = reqwest::get(a.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_gateway_plugin_disabled{")
                && l.contains("spin")
                && l.ends_with(" 1")),
        "{metrics}"
    );

    let enabled = admin
        .patch("team-a", "spin", json!({ "enabled": true }))
        .await;
    assert!(enabled["disabled"].is_null());
    admin.wait_active("team-a", "spin", "1.0.0").await;
    let dead = read_all(&topics.rejected, 1).await;
    assert_eq!(
        dead.len(),
        3,
        "the dead-lettered events are in events.rejected, ready for replay"
    );
    assert!(
        dead.iter()
            .all(|e| e["team_id"] == "team-a" && e["event_id"].is_string())
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// A plugin that sleeps for an hour in a blocking WASI wait, which no CPU
/// budget sees (the guest runs no code while it waits): before the host
/// refused blocking waits, each such batch held its request and a plugin
/// slot for the whole sleep, and enough of them stalled every team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_sleeps_fails_at_once_and_never_holds_other_teams_up() {
    let topics = TestTopics::create(1).await.unwrap();
    let mut config = topics.gateway_config(KEY_A, "team-a");
    config.auth.keys.insert(KEY_B.into(), "team-b".into());
    let gateway = RunningGateway::start_ready(config).await.unwrap();
    let admin = Admin::new(&gateway);
    admin
        .upload(
            "team-a",
            "nap",
            "1.0.0",
            "validator",
            component("fixture_sleep"),
        )
        .await;
    admin.wait_active("team-a", "nap", "1.0.0").await;
    admin
        .install_validator(
            "team-b",
            "required",
            "required_properties",
            json!({"required": {}}),
        )
        .await;

    // More of team a's batches at once than there are plugin slots: had
    // any of them slept, `send`'s 30 s timeout would fail the test long
    // before the hour.
    let sleepers: Vec<_> = (0..8)
        .map(|i| {
            let url = gateway.url("/v1/events");
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .bearer_auth(KEY_A)
                    .json(&json!({ "events": [{ "event": "e", "user_id": format!("u{i}") }] }))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (status, other) = send(&gateway, KEY_B, json!([{ "event": "e", "user_id": "u" }])).await;
    assert_eq!(
        (status.as_u16(), other["accepted"].as_u64()),
        (200, Some(1)),
        "{other}"
    );
    for sleeper in sleepers {
        let body = sleeper.await.unwrap();
        let result = &body["results"][0];
        assert_eq!(result["status"], "rejected", "{body}");
        assert_eq!(result["code"], "plugin_failed", "{body}");
        let message = result["message"].as_str().unwrap();
        assert!(
            message.contains("nap") && message.contains("block"),
            "{body}"
        );
        // What the client sees names the plugin and the reason, nothing of
        // the host's insides.
        assert!(
            !message.contains("wasm backtrace") && !message.contains("0x"),
            "{body}"
        );
    }
    let shown = admin.show("team-a", "nap").await;
    assert!(shown["stats"]["failures"].as_u64().unwrap() >= 1, "{shown}");
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_versions_under_load_loses_no_request() {
    let topics = TestTopics::create(2).await.unwrap();
    let gateway = RunningGateway::start(topics.gateway_config(KEY_A, "team-a"))
        .await
        .unwrap();
    gateway.wait_ready(Duration::from_secs(30)).await.unwrap();
    let admin = Admin::new(&gateway);
    admin
        .upload(
            "team-a",
            "bots",
            "1.0.0",
            "validator",
            component("bot_filter"),
        )
        .await;
    admin.wait_active("team-a", "bots", "1.0.0").await;

    let stop = Arc::new(AtomicBool::new(false));
    let url = gateway.url("/v1/events");
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut sent, mut accepted, mut errors) = (HashSet::new(), HashSet::new(), 0);
            while !stop.load(Ordering::Relaxed) {
                let events: Vec<Value> = (0..10)
                    .map(|i| {
                        let id = Uuid::new_v4();
                        sent.insert(id);
                        json!({ "event_id": id, "event": "e", "user_id": format!("u{i}"),
                                "context": { "user_agent": "Mozilla/5.0 Firefox/130.0" } })
                    })
                    .collect();
                let response = client
                    .post(&url)
                    .bearer_auth(KEY_A)
                    .json(&json!({ "events": events }))
                    .send()
                    .await
                    .unwrap();
                if response.status() != 200 {
                    errors += 1;
                }
                let body: Value = response.json().await.unwrap();
                for r in body["results"].as_array().unwrap() {
                    if r["status"] == "accepted" {
                        accepted.insert(r["event_id"].as_str().unwrap().parse::<Uuid>().unwrap());
                    }
                }
            }
            (sent, accepted, errors)
        })
    };
    // Swap versions back and forth while requests flow.
    for (i, version) in ["1.0.1", "1.0.2", "1.0.3"].iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let config = json!({ "user_agent_patterns": [format!("never-matches-{i}")] });
        let (status, _) = admin
            .upload(
                "team-a",
                "bots",
                version,
                "validator",
                component("bot_filter"),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        admin
            .patch("team-a", "bots", json!({ "config": config }))
            .await;
    }
    let rolled = reqwest::Client::new()
        .post(gateway.url("/admin/v1/teams/team-a/plugins/bots/rollback"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(rolled.status(), 200);
    let rolled: Value = rolled.json().await.unwrap();
    assert_eq!(rolled["active_version"], "1.0.2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (sent, accepted, errors) = load.await.unwrap();
    assert_eq!(errors, 0, "no request failed during the swaps");
    assert_eq!(
        accepted, sent,
        "every event sent during the swaps was accepted"
    );
    let in_topic: HashSet<Uuid> = read_all(&topics.raw, 2)
        .await
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        sent.is_subset(&in_topic),
        "every accepted event is in Kafka"
    );
    gateway.stop().await.unwrap();
}

/// The quick start of `docs/plugins.md` in the other languages, on the real
/// gateway: a TypeScript validator and a Python enricher (`sluice:plugin@0.2.0`
/// components from `plugins/js/build.sh` and `plugins/python/build.sh`)
/// uploaded through replica A, which answers `compiling` at once and
/// compiles them in the background. Replica B, started afterwards as a
/// restarted or added replica would be, loads A's compiled code from the
/// shared artifact directory instead of compiling the 12-19 MB components
/// again, and replica C, with no artifact cache, compiles them itself: each
/// reports ready only once it runs them, so neither ever takes an event the
/// team's validator has not seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_and_python_plugins_shape_what_reaches_kafka() {
    let topics = TestTopics::create(2).await.unwrap();
    let artifacts = std::env::temp_dir().join(format!("sluice-e2e-artifacts-{}", Uuid::new_v4()));
    let cold = topics.gateway_config(KEY_A, "team-a");
    let mut config = cold.clone();
    config.plugins.runtime.artifact_dir = artifacts.to_string_lossy().into_owned();
    config.plugins.runtime.artifact_key = "shared by both replicas".to_owned();
    let a = RunningGateway::start(config.clone()).await.unwrap();
    a.wait_ready(Duration::from_secs(30)).await.unwrap();
    let admin = Admin::new(&a);

    let plugins = [
        (
            "required-ts",
            "validator",
            "ts_required_properties",
            json!({ "required": { "Signed Up": ["plan"] } }),
        ),
        (
            "scrub-py",
            "enricher",
            "py_pii_scrubber",
            json!({ "salt": "e2e" }),
        ),
    ];
    for (name, kind, file, config) in &plugins {
        let (status, body) = admin
            .upload("team-a", name, "1.0.0", kind, component(file))
            .await;
        // Checked and stored, not compiled yet: that takes seconds.
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
        assert_eq!(body["state"], "compiling", "{name}: {body}");
        let version = &body["versions"][0];
        assert_eq!(version["wit_version"], "0.2.0", "{name}: {body}");
        admin
            .patch("team-a", name, json!({ "config": config }))
            .await;
    }
    for (name, ..) in &plugins {
        admin.wait_active("team-a", name, "1.0.0").await;
    }

    let b = RunningGateway::start(config).await.unwrap();
    let c = RunningGateway::start(cold).await.unwrap();
    for replica in [&b, &c] {
        replica.wait_ready(Duration::from_secs(300)).await.unwrap();
        // Ready means running them, without waiting any further.
        for (name, ..) in &plugins {
            let shown = Admin::new(replica).show("team-a", name).await;
            assert_eq!(shown["state"], "active", "{name} at readiness: {shown}");
        }
    }
    // A compiled both (two misses), B compiled neither: it loaded both from
    // A's artifacts (two hits). C has no cache and counts nothing. The
    // replicas live in this test process and share its metrics; no other
    // test here uses a cache.
    let metrics = reqwest::get(b.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |result: &str| -> f64 {
        let prefix = format!("sluice_gateway_plugin_artifacts_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .map_or(0.0, |n| n.trim().parse().unwrap())
    };
    assert_eq!((count("hit"), count("miss")), (2.0, 2.0), "{metrics}");
    c.stop().await.unwrap();

    let ok = Uuid::new_v4();
    let (status, body) = send(&b, KEY_A, json!([
        { "event_id": ok, "event": "Signed Up", "user_id": "u1", "properties": { "plan": "pro", "email": "ann@example.com" }, "context": { "ip": "203.0.113.9" } },
        { "event": "Signed Up", "user_id": "u2", "properties": { "email": "bob@example.com" } },
    ]))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    assert_eq!(body["results"][1]["code"], "plugin_rejected", "{body}");
    let message = body["results"][1]["message"].as_str().unwrap();
    assert!(
        message.contains("required-ts") && message.contains("missing_property"),
        "{message}"
    );

    let raw = read_all(&topics.raw, 1).await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    let enriched = &raw[0];
    assert_eq!(enriched["event_id"], ok.to_string());
    assert_eq!(enriched["properties"]["plan"], "pro");
    for changed in [&enriched["properties"]["email"], &enriched["context"]["ip"]] {
        assert!(
            changed.as_str().unwrap().starts_with("sha256:"),
            "the Python enricher's patch arrived in events.raw: {enriched}"
        );
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&artifacts);
}
