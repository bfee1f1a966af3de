//! The Segment and PostHog routes driven through `router()` with an in-memory
//! producer: no socket, no Kafka. Real SDKs against real Kafka are in
//! `tests/tests/sdk_compat.rs`.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_core::kafka::headers;
use sluice_gateway::producer::{ProduceError, Record};
use sluice_gateway::router;
use tower::ServiceExt;

mod common;

use common::{Harness, KEY, harness, harness_with};

const UUID: &str = "0190d6a8-0000-7000-8000-000000000001";

async fn send(h: &Harness, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn basic(key: &str) -> String {
    format!("Basic {}", BASE64_STANDARD.encode(format!("{key}:")))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn raw_events(h: &Harness) -> Vec<Value> {
    topic(&h.producer.records().await, "events.raw")
        .iter()
        .map(|r| serde_json::from_slice(&r.payload).unwrap())
        .collect()
}

fn topic<'a>(records: &'a [Record], name: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.topic == name).collect()
}

#[tokio::test]
async fn a_segment_batch_is_accepted_and_its_rejects_are_dead_lettered() {
    let h = harness();
    let body = json!({
        "batch": [
            { "type": "track", "event": "Signed Up", "userId": "u1", "messageId": UUID,
              "timestamp": "2027-01-15T08:00:00.000Z", "properties": { "plan": "pro" } },
            { "type": "identify", "anonymousId": "a1", "messageId": "node-next-1-x",
              "traits": { "email": "x@example.com" } },
            { "type": "track", "event": "No User", "messageId": "m-3" }
        ],
        "sentAt": "2027-01-15T08:00:01.000Z"
    });
    let request = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic(KEY))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, answer) = send(&h, request).await;
    // A message that can never succeed must not make the SDK retry the batch.
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"], 1);

    let events = raw_events(&h).await;
    assert_eq!(events[0]["event_id"], UUID);
    assert_eq!(events[0]["team_id"], "team-a");
    assert_eq!(events[0]["event"], "Signed Up");
    assert_eq!(events[0]["timestamp"], "2027-01-15T07:59:59.000Z");
    assert_eq!(events[0]["properties"], json!({ "plan": "pro" }));
    assert_eq!(events[1]["event"], "$identify");
    assert_eq!(events[1]["user_id"], "a1");
    assert_eq!(
        events[1]["context"]["segment"]["message_id"],
        "node-next-1-x"
    );

    let records = h.producer.records().await;
    let dlq = topic(&records, "events.rejected");
    assert_eq!(dlq.len(), 1);
    let original: Value = serde_json::from_slice(&dlq[0].payload).unwrap();
    assert_eq!(
        original["messageId"], "m-3",
        "the message as the SDK sent it"
    );
    assert!(
        dlq[0]
            .headers
            .contains(&(headers::REJECT_CODE, "missing_field".to_owned()))
    );
}

#[tokio::test]
async fn segment_retries_of_a_message_map_to_the_same_event_id() {
    let h = harness();
    for _ in 0..2 {
        let request = Request::post("/v1/track")
            .body(Body::from(
                json!({ "writeKey": KEY, "event": "E", "userId": "u", "messageId": "node-next-7-y" })
                    .to_string(),
            ))
            .unwrap();
        let (status, _, answer) = send(&h, request).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let events = raw_events(&h).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event_id"], events[1]["event_id"]);
    assert!(
        !serde_json::to_string(&events[0]).unwrap().contains(KEY),
        "the write key is not stored"
    );
}

#[tokio::test]
async fn segment_auth_failures_and_kafka_failures_get_the_status_sdks_act_on() {
    let h = harness();
    let body = json!({ "batch": [{ "type": "track", "event": "E", "userId": "u" }] }).to_string();
    let no_key = Request::post("/v1/batch")
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, _, answer) = send(&h, no_key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"]["code"], "missing_api_key");
    let wrong = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic("sk_nope"))
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(send(&h, wrong).await.0, StatusCode::UNAUTHORIZED);
    let malformed = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic(KEY))
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(send(&h, malformed).await.0, StatusCode::BAD_REQUEST);

    h.producer
        .fail_with(Some(ProduceError::Unavailable("broker down".into())));
    let request = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic(KEY))
        .body(Body::from(body))
        .unwrap();
    let (status, headers, answer) = send(&h, request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "5");
    assert_eq!(answer["success"], false);
    assert_eq!(answer["failed"], 1);
}

#[tokio::test]
async fn posthog_bodies_arrive_in_every_shape_the_sdks_send() {
    let h = harness();
    let event = |n: u32| {
        json!({ "event": "clicked", "distinct_id": "d1", "uuid": format!("0190d6a8-0000-7000-8000-00000000010{n}"),
                "properties": { "n": n, "token": KEY } })
    };
    let node = json!({ "api_key": KEY, "batch": [event(1)], "sent_at": "2027-01-15T08:00:00Z" });
    let requests = [
        // posthog-node and posthog-python: gzip announced in Content-Encoding.
        Request::post("/batch/")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gzip(node.to_string().as_bytes())))
            .unwrap(),
        // Older posthog-js: `?compression=gzip-js`, text/plain.
        Request::post("/e/?compression=gzip-js&ver=1.0")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(gzip(json!([event(2)]).to_string().as_bytes())))
            .unwrap(),
        // posthog-js now: gzip with nothing saying so.
        Request::post("/i/v0/e/?ip=0")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(gzip(
                json!({ "api_key": KEY, "batch": [event(3)] })
                    .to_string()
                    .as_bytes(),
            )))
            .unwrap(),
        // sendBeacon: form field with base64 JSON.
        Request::post("/e?compression=base64")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "data={}",
                BASE64_STANDARD
                    .encode(json!([event(4)]).to_string())
                    .replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D")
            )))
            .unwrap(),
        // One event, as in PostHog's `curl` examples.
        Request::post("/capture")
            .body(Body::from(
                json!({ "api_key": KEY, "event": "clicked", "distinct_id": "d1",
                        "uuid": "0190d6a8-0000-7000-8000-000000000105" })
                .to_string(),
            ))
            .unwrap(),
    ];
    for request in requests {
        let uri = request.uri().clone();
        let (status, _, answer) = send(&h, request).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {answer}");
        assert_eq!(answer["status"], 1, "{uri}: {answer}");
        assert_eq!(answer["accepted"], 1, "{uri}: {answer}");
    }
    let events = raw_events(&h).await;
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5);
    for (n, id) in ids.iter().enumerate() {
        assert!(id.ends_with(&format!("10{}", n + 1)), "{id}");
    }
    assert!(events.iter().all(|e| e["user_id"] == "d1"));
    assert!(
        !serde_json::to_string(&events).unwrap().contains(KEY),
        "the key is never stored"
    );
}

#[tokio::test]
async fn posthog_without_a_key_is_401_and_a_bad_body_is_400() {
    let h = harness();
    let request = Request::post("/batch/")
        .body(Body::from(
            json!({ "batch": [{ "event": "e", "distinct_id": "d" }] }).to_string(),
        ))
        .unwrap();
    assert_eq!(send(&h, request).await.0, StatusCode::UNAUTHORIZED);
    let request = Request::post("/batch/")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from("not gzip"))
        .unwrap();
    assert_eq!(send(&h, request).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn browsers_get_cors_preflights_and_headers() {
    let h = harness();
    for path in ["/e/", "/v1/batch"] {
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .uri(path)
            .header(header::ORIGIN, "http://localhost:8000")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = send(&h, preflight).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type"
        );
    }
    let request = Request::post("/e/")
        .header(header::ORIGIN, "http://localhost:8000")
        .body(Body::from(
            json!({ "api_key": KEY, "event": "e", "distinct_id": "d" }).to_string(),
        ))
        .unwrap();
    let (status, headers, _) = send(&h, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    // The native endpoint is for servers and stays without CORS.
    let native = Request::post("/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .body(Body::from(
            json!({ "events": [{ "event": "e", "user_id": "u" }] }).to_string(),
        ))
        .unwrap();
    let (status, headers, _) = send(&h, native).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

#[tokio::test]
async fn rate_limits_are_429_for_segment_and_503_for_posthog() {
    // posthog-js drops a batch answered 429; every PostHog SDK retries a 503.
    let h = harness_with(|config| {
        config.admission.events_per_second_per_key = 1;
        config.admission.burst_events_per_key = 1;
    });
    let segment = || {
        Request::post("/v1/track")
            .header(header::AUTHORIZATION, basic(KEY))
            .body(Body::from(
                json!({ "event": "E", "userId": "u" }).to_string(),
            ))
            .unwrap()
    };
    let posthog = || {
        Request::post("/e/")
            .body(Body::from(
                json!({ "api_key": KEY, "event": "e", "distinct_id": "d" }).to_string(),
            ))
            .unwrap()
    };
    assert_eq!(send(&h, segment()).await.0, StatusCode::OK);
    let (status, headers, answer) = send(&h, segment()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(answer["error"]["code"], "rate_limited");
    let (status, headers, answer) = send(&h, posthog()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(answer["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn a_bomb_carrying_its_key_is_refused_by_the_key_at_the_default_pre_auth_bound() {
    // Default limits: 1 MiB decoded before the key is checked, 20 MiB after.
    let h = harness_with(|config| {
        config.ingest.max_body_bytes = 1024 * 1024;
        config.ingest.max_events_per_batch = 300;
    });
    let bomb = |head: &str| {
        let mut text = head.as_bytes().to_vec();
        text.resize(64 * 1024 * 1024, b' ');
        gzip(&text)
    };
    let cases = [
        (
            bomb(r#"{"api_key":"sk_unknown","batch":["#),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            bomb(r#"[{"event":"e","properties":{"token":"sk_unknown"}},"#),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            bomb(r#"{"batch":["#),
            StatusCode::PAYLOAD_TOO_LARGE,
            "unauthenticated_body_too_large",
        ),
        // Past the check, a valid key's bomb still stops at the decoded limit.
        (
            bomb(&format!(r#"{{"api_key":"{KEY}","batch":["#)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "decompressed_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let request = Request::post("/batch/")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(body))
            .unwrap();
        let (got, _, answer) = send(&h, request).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code))
        );
    }
    // 300 posthog-js-sized events (4 KiB each) decode past the bound: with
    // the key first, every one is accepted.
    let batch: Vec<Value> = (0..300)
        .map(|i| json!({ "event": "e", "distinct_id": format!("d{i}"), "properties": { "pad": "x".repeat(4000) } }))
        .collect();
    let body = json!({ "api_key": KEY, "batch": batch }).to_string();
    assert!(body.len() > 1024 * 1024);
    let request = Request::post("/batch/")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(body.as_bytes())))
        .unwrap();
    let (status, _, answer) = send(&h, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 300, "{answer}");
    assert_eq!(raw_events(&h).await.len(), 300);
}
