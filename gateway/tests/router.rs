//! The HTTP layer driven through `router()` with an in-memory producer: no socket,
//! no Kafka. The same behaviour against the real broker is in `tests/`.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_core::Timestamp;
use sluice_core::kafka::headers;
use sluice_gateway::producer::ProduceError;
use sluice_gateway::router;
use tower::ServiceExt;

mod common;

use common::{Harness, KEY, NOW, OPERATOR, harness};

async fn post(
    h: &Harness,
    auth: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::post("/v1/events").header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = auth {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let response = router(h.state.clone())
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn batch(events: Value) -> String {
    json!({ "events": events }).to_string()
}

#[tokio::test]
async fn accepted_events_are_produced_keyed_by_team_and_user() {
    let h = harness();
    let id = "0190d6a8-0000-7000-8000-000000000001";
    let (status, _, body) = post(
        &h,
        Some(KEY),
        batch(json!([{ "event_id": id, "event": "Clicked", "user_id": "u1", "properties": { "b": 1 } }])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "accepted": 1, "rejected": 0, "dead_lettered": 0, "failed": 0,
        "results": [{ "status": "accepted", "event_id": id }] })
    );

    let records = h.producer.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].topic, "events.raw");
    assert_eq!(records[0].key, "team-a:u1");
    let value: Value = serde_json::from_slice(&records[0].payload).unwrap();
    assert_eq!(value["team_id"], "team-a");
    assert_eq!(
        value["received_at"],
        Timestamp::from_millis(NOW).to_rfc3339()
    );
    assert_eq!(value["properties"], json!({ "b": 1 }));
    assert!(
        records[0]
            .headers
            .contains(&(headers::TEAM, "team-a".to_owned()))
    );
}

#[tokio::test]
async fn each_event_gets_its_own_outcome_and_rejects_go_to_the_dlq() {
    let h = harness();
    let id = "0190d6a8-0000-7000-8000-000000000002";
    let (status, _, body) = post(
        &h,
        Some(KEY),
        batch(json!([
            { "event_id": id, "event": "A", "user_id": "u1" },
            { "event": "B" },
            { "event_id": id, "event": "C", "user_id": "u1" },
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"], 2);
    assert_eq!(body["results"][1]["code"], "missing_field");
    assert_eq!(body["results"][2]["code"], "duplicate_event_id");
    assert_eq!(body["results"][2]["event_id"], id);

    let records = h.producer.records().await;
    let dlq: Vec<_> = records
        .iter()
        .filter(|r| r.topic == "events.rejected")
        .collect();
    assert_eq!(dlq.len(), 2);
    assert_eq!(dlq[0].payload, br#"{"event":"B"}"#);
    assert!(
        dlq[0]
            .headers
            .contains(&(headers::REJECT_CODE, "missing_field".to_owned()))
    );
}

#[tokio::test]
async fn kafka_failure_is_a_503_naming_the_events_to_retry() {
    let h = harness();
    h.producer
        .fail_with(Some(ProduceError::Unavailable("broker down".into())));
    let (status, headers, body) = post(
        &h,
        Some(KEY),
        batch(json!([{ "event": "A", "user_id": "u1" }])),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "5");
    assert_eq!(body["failed"], 1);
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["results"][0]["status"], "failed");
    assert_eq!(body["results"][0]["code"], "kafka_unavailable");
}

/// A rejection the dead-letter topic did not take is not answered
/// `rejected` (the client would drop the event, and it would exist nowhere)
/// but `failed`, so the client resends it; its neighbours are unaffected.
#[tokio::test]
async fn a_rejection_whose_dead_letter_copy_failed_is_answered_failed() {
    let h = harness();
    h.producer.fail_topic(
        "events.rejected",
        ProduceError::Unavailable("broker down".into()),
    );
    let kept = uuid::Uuid::new_v4();
    let (status, headers, body) = post(
        &h,
        Some(KEY),
        batch(json!([
            { "event_id": kept, "event": "A", "user_id": "u1" },
            { "event_id": uuid::Uuid::new_v4(), "event": "B" },
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "5");
    assert_eq!(
        (&body["accepted"], &body["rejected"], &body["failed"]),
        (&json!(1), &json!(0), &json!(1)),
        "{body}"
    );
    assert_eq!(body["results"][0]["status"], "accepted");
    let failed = &body["results"][1];
    assert_eq!(failed["status"], "failed", "{body}");
    // Results are in request order; an event that fails the contract check
    // has no id the gateway vouches for, rejected or failed.
    assert!(failed.get("event_id").is_none(), "{failed}");
    assert_eq!(failed["code"], "kafka_unavailable");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("missing_field"),
        "the reason it will be rejected is named: {failed}"
    );
    let records = h.producer.records().await;
    assert_eq!(records.len(), 1, "only the accepted event was kept");
    assert_eq!(records[0].topic, "events.raw");
}

#[tokio::test]
async fn request_level_errors_have_specific_codes() {
    let h = harness();
    let too_many = batch(
        json!([{ "event": "a", "user_id": "u" }, { "event": "a", "user_id": "u" },
        { "event": "a", "user_id": "u" }, { "event": "a", "user_id": "u" }]),
    );
    let cases: Vec<(Option<&str>, Body, StatusCode, &str)> = vec![
        (
            None,
            Body::from(batch(json!([]))),
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
        ),
        (
            Some("sk_wrong_key"),
            Body::from(batch(json!([]))),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            Some(KEY),
            Body::from("{\"events\": ["),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Some(KEY),
            Body::from("{\"events\": 5}"),
            StatusCode::BAD_REQUEST,
            "invalid_batch",
        ),
        (
            Some(KEY),
            Body::from(vec![b'{', 0xff, b'}']),
            StatusCode::BAD_REQUEST,
            "invalid_utf8",
        ),
        (
            Some(KEY),
            Body::from(batch(json!([]))),
            StatusCode::BAD_REQUEST,
            "empty_batch",
        ),
        (
            Some(KEY),
            Body::from(too_many),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
        ),
        (
            Some(KEY),
            Body::from(vec![b' '; 65 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (key, body, want_status, want_code) in cases {
        let (status, _, body) = post(&h, key, body).await;
        assert_eq!(status, want_status, "{want_code}: {body}");
        assert_eq!(body["error"]["code"], want_code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert!(h.producer.records().await.is_empty());
}

#[tokio::test]
async fn unsupported_content_type_is_415() {
    let h = harness();
    let request = Request::post("/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from("<events/>"))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn readiness_follows_the_backend_and_draining() {
    let h = harness();
    let get = |path: &'static str| {
        let app = router(h.state.clone());
        async move {
            app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get("/healthz").await, StatusCode::OK);
    assert_eq!(get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    h.state.readiness().set_backend_reachable(true);
    assert_eq!(get("/readyz").await, StatusCode::OK);
    h.state.readiness().start_draining();
    assert_eq!(get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
}

async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn keys_are_created_used_and_revoked_through_the_admin_api() {
    let h = harness();
    let (status, created) = call(
        &h,
        "POST",
        "/admin/v1/keys",
        OPERATOR,
        Some(json!({ "team_id": "team-b", "label": "web" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_"));
    assert_eq!(created["role"], "ingest");
    assert!(created.get("hash").is_none(), "the hash is never shown");

    let event = batch(json!([{ "event": "e", "user_id": "u" }]));
    let (status, _, _) = post(&h, Some(&key), event.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let records = h.producer.records().await;
    assert_eq!(records[0].key, "team-b:u", "events go to the key's team");

    let (status, listed) = call(&h, "GET", "/admin/v1/keys?team_id=team-b", OPERATOR, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);

    let key_id = created["key_id"].as_str().unwrap();
    let (status, revoked) = call(
        &h,
        "DELETE",
        &format!("/admin/v1/keys/{key_id}"),
        OPERATOR,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, _, body) = post(&h, Some(&key), event).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "revoked_api_key");
}

#[tokio::test]
async fn team_admins_are_confined_to_their_team() {
    let h = harness();
    let (_, admin_a) = call(
        &h,
        "POST",
        "/admin/v1/keys",
        OPERATOR,
        Some(json!({ "team_id": "team-a", "role": "admin" })),
    )
    .await;
    let admin_a = admin_a["key"].as_str().unwrap().to_owned();
    let (_, key_b) = call(
        &h,
        "POST",
        "/admin/v1/keys",
        OPERATOR,
        Some(json!({ "team_id": "team-b" })),
    )
    .await;

    let (status, body) = call(
        &h,
        "POST",
        "/admin/v1/keys",
        &admin_a,
        Some(json!({ "team_id": "team-b" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = call(&h, "GET", "/admin/v1/keys?team_id=team-b", &admin_a, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, own) = call(&h, "GET", "/admin/v1/keys", &admin_a, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        own["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["team_id"] == "team-a")
    );
    let other = key_b["key_id"].as_str().unwrap();
    let (status, _) = call(
        &h,
        "DELETE",
        &format!("/admin/v1/keys/{other}"),
        &admin_a,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another team's key does not exist for this caller"
    );

    // Ingest keys cannot administer at all; a wrong token is unauthorised.
    let (status, body) = call(&h, "GET", "/admin/v1/keys", KEY, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = call(
        &h,
        "GET",
        "/admin/v1/keys",
        "operator-token-wrong-value",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &h,
        "POST",
        "/admin/v1/keys",
        OPERATOR,
        Some(json!({ "team_id": "a:b" })),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn metrics_count_outcomes_by_reason() {
    let h = harness();
    let (status, _, _) = post(
        &h,
        Some(KEY),
        batch(json!([
            { "event": "A", "user_id": "u1" },
            { "event": "B", "user_id": "" },
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let response = router(h.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let has = |needle: &str| text.lines().any(|l| l.starts_with(needle));
    assert!(
        has("sluice_gateway_events_total{outcome=\"rejected\",reason=\"invalid_user_id\"}"),
        "{text}"
    );
    assert!(
        has("sluice_gateway_events_total{outcome=\"accepted\""),
        "{text}"
    );
    assert!(
        has("sluice_gateway_requests_total{route=\"events\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        has("sluice_gateway_processing_duration_seconds_bucket"),
        "{text}"
    );
}

/// The status `app` answers for `method path`, without credentials.
async fn status_of(app: &axum::Router, method: &str, path: &str) -> StatusCode {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn with_admin_listen_the_public_listener_serves_ingest_and_the_other_everything_operators_use()
 {
    let h = harness();
    let public = sluice_gateway::routes::ingest_router(h.state.clone());
    let operator = sluice_gateway::routes::operator_router(h.state.clone());
    // (method, path, served on the public listener, served on the operator's):
    // a route not served there is 404; a served one answers anything else
    // (401 without credentials, 400 for an empty SDK batch, 200, ...).
    let cases = [
        ("POST", "/v1/events", true, false),
        ("POST", "/v1/batch", true, false),
        ("POST", "/batch/", true, false),
        ("GET", "/metrics", false, true),
        ("GET", "/admin/v1/keys", false, true),
        ("GET", "/admin/v1/teams/team-a/plugins", false, true),
        ("POST", "/admin/v1/teams/team-a/replay", false, true),
        ("GET", "/schemas/v1/teams/team-a/subjects", false, true),
        ("GET", "/healthz", true, true),
        ("GET", "/readyz", true, true),
    ];
    for (method, path, on_public, on_operator) in cases {
        for (app, served, side) in [
            (&public, on_public, "public"),
            (&operator, on_operator, "operator"),
        ] {
            let status = status_of(app, method, path).await;
            assert_eq!(
                status != StatusCode::NOT_FOUND,
                served,
                "{side} {method} {path}: {status}"
            );
        }
    }
    assert_eq!(
        status_of(&operator, "GET", "/metrics").await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&public, "POST", "/v1/events").await,
        StatusCode::UNAUTHORIZED
    );
    // One listener (no admin.listen) still serves both sides.
    let all = router(h.state.clone());
    assert_eq!(status_of(&all, "GET", "/metrics").await, StatusCode::OK);
    assert_eq!(
        status_of(&all, "POST", "/v1/events").await,
        StatusCode::UNAUTHORIZED
    );
}
