//! Golden tests for the Segment and PostHog routes: every case in
//! `tests/sdk-corpus/` (a folder per case: `request.json` with the route and
//! headers, `body` with the bytes as sent, `expected.json` with the answer
//! and the Kafka records) goes through `router()` with an in-memory producer
//! and a fixed clock, and what comes out is compared with what is expected.
//!
//! The bodies of the `segment-node-*`, `posthog-node-*`, `posthog-python-*`
//! and `posthog-js-*` cases are what the real SDKs sent (captured with
//! `tests/sdk/capture_server.py`); the other cases are variants made from
//! them and the refusals the routes must keep.
//!
//! What is compared byte for byte: the status, the headers an SDK reads, the
//! answer body, and every record's topic, key and headers. A record's value
//! is compared in canonical JSON text (keys sorted, no spaces, serde_json's
//! spelling of numbers and strings): `properties` and `context` are the SDK's
//! own JSON passed through, like the native route passes a client's, so the
//! order of their keys and their spacing are the sender's, not ours.
//! Generated values are normalised: an `event_id` the gateway made up (a
//! UUIDv7 of this run) becomes `<generated>` wherever it appears.
//!
//! `SLUICE_GOLDEN_BLESS=1 cargo test -p sluice-gateway --test sdk_golden`
//! rewrites the `expected.json` files from what the gateway does now.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderName, Request};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_core::Timestamp;
use sluice_core::clock::FixedClock;
use sluice_gateway::keys::{ConfiguredKeys, MemoryKeys};
use sluice_gateway::producer::MemoryProducer;
use sluice_gateway::{AppState, GatewayConfig, router};
use tower::ServiceExt;

/// The gateway's clock in every case: 2026-12-07T16:10:40Z, ten seconds
/// after the SDK bodies were captured.
const NOW: i64 = 1_796_659_840_000;
const KEY: &str = "sk_test_team_a";

/// The answer headers an SDK (or a browser) acts on.
const ANSWER_HEADERS: [&str; 3] = ["content-type", "retry-after", "access-control-allow-origin"];

#[derive(Debug, Deserialize)]
struct CaseRequest {
    method: String,
    path: String,
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Expected {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    records: Vec<ExpectedRecord>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ExpectedRecord {
    topic: String,
    key: String,
    headers: Vec<(String, String)>,
    value: String,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-corpus")
}

fn state() -> (AppState, Arc<MemoryProducer>) {
    let mut config = GatewayConfig::default();
    config.auth.keys.insert(KEY.into(), "team-a".into());
    let producer = Arc::new(MemoryProducer::default());
    let state = AppState::new(
        &config,
        Arc::new(MemoryKeys::new(ConfiguredKeys::new(&config.auth.keys))),
        producer.clone(),
        Arc::new(FixedClock::new(Timestamp::from_millis(NOW))),
    );
    (state, producer)
}

/// Ids the gateway generated in this run: UUIDv7s whose time is within a
/// minute of the wall clock (an SDK's own v7 ids are older than the corpus).
fn generated_ids(records: &[sluice_gateway::producer::Record]) -> Vec<String> {
    let wall = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut ids = Vec::new();
    for record in records {
        let Ok(value) = serde_json::from_slice::<Value>(&record.payload) else {
            continue;
        };
        let Some(id) = value["event_id"]
            .as_str()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
        else {
            continue;
        };
        if id.get_version_num() != 7 {
            continue;
        }
        let Some(ts) = id.get_timestamp() else {
            continue;
        };
        let (secs, nanos) = ts.to_unix();
        let millis = i64::try_from(secs).unwrap() * 1000 + i64::from(nanos / 1_000_000);
        if (wall - millis).abs() < 60_000 {
            ids.push(id.to_string());
        }
    }
    ids
}

fn normalise(text: &str, generated: &[String]) -> String {
    generated
        .iter()
        .fold(text.to_owned(), |text, id| text.replace(id, "<generated>"))
}

/// The canonical text of a JSON document (see the module comment); text
/// that is not JSON is returned as it is.
fn canonical(text: &str) -> String {
    serde_json::from_str::<Value>(text).map_or_else(|_| text.to_owned(), |v| v.to_string())
}

async fn run_case(dir: &Path) -> Expected {
    let request: CaseRequest =
        serde_json::from_slice(&std::fs::read(dir.join("request.json")).unwrap()).unwrap();
    let body = std::fs::read(dir.join("body")).unwrap();
    let mut builder = Request::builder()
        .method(request.method.as_str())
        .uri(&request.path);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let (state, producer) = state();
    let response = router(state)
        .oneshot(builder.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = ANSWER_HEADERS
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(HeaderName::from_static(name))?;
            Some(((*name).to_owned(), value.to_str().unwrap().to_owned()))
        })
        .collect();
    let answer = response.into_body().collect().await.unwrap().to_bytes();
    let records = producer.records().await;
    let generated = generated_ids(&records);
    Expected {
        status,
        headers,
        body: normalise(std::str::from_utf8(&answer).unwrap(), &generated),
        records: records
            .iter()
            .map(|record| ExpectedRecord {
                topic: record.topic.clone(),
                key: record.key.clone(),
                headers: record
                    .headers
                    .iter()
                    // The trace context is made per request.
                    .filter(|(name, _)| *name != sluice_core::kafka::headers::TRACEPARENT)
                    .map(|(name, value)| ((*name).to_owned(), normalise(value, &generated)))
                    .collect(),
                value: normalise(std::str::from_utf8(&record.payload).unwrap(), &generated),
            })
            .collect(),
    }
}

#[tokio::test]
async fn every_sdk_payload_in_the_corpus_gives_its_pinned_answer_and_records() {
    let bless = std::env::var_os("SLUICE_GOLDEN_BLESS").is_some();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 30,
        "the corpus is missing: {}",
        corpus().display()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let actual = run_case(dir).await;
        let path = dir.join("expected.json");
        if bless {
            let mut text = serde_json::to_string_pretty(&actual).unwrap();
            text.push('\n');
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let expected: Expected = serde_json::from_slice(
            &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .unwrap();
        let same = actual.status == expected.status
            && actual.headers == expected.headers
            && actual.body == expected.body
            && actual.records.len() == expected.records.len()
            && actual.records.iter().zip(&expected.records).all(|(a, e)| {
                a.topic == e.topic
                    && a.key == e.key
                    && a.headers == e.headers
                    && canonical(&a.value) == canonical(&e.value)
            });
        if !same {
            failures.push(format!(
                "{name}:\n  expected {}\n  actual   {}",
                serde_json::to_string(&expected).unwrap(),
                serde_json::to_string(&actual).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
