//! The schema registry API and ingest enforcement through `router()` with an
//! in-memory registry and producer: no socket, no Kafka. The same against the
//! real broker, across two replicas, is in `tests/tests/schemas_e2e.rs`.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_core::kafka::headers;
use sluice_gateway::producer::MemoryProducer;
use sluice_gateway::{AppState, router};
use tower::ServiceExt;

const OPERATOR: &str = "operator-token-0123456789";
const BASE: &str = "/schemas/v1/teams/team-a";

struct Harness {
    state: AppState,
    producer: Arc<MemoryProducer>,
    admin_a: String,
    ingest_a: String,
    admin_b: String,
}

async fn harness() -> Harness {
    let h = common::schema_harness().await;
    Harness {
        state: h.state,
        producer: h.producer,
        admin_a: h.teams.admin_a,
        ingest_a: h.teams.ingest_a,
        admin_b: h.teams.admin_b,
    }
}

async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    // What Confluent's clients send.
    common::call_json(
        &h.state,
        (method, path),
        key,
        "application/vnd.schemaregistry.v1+json",
        body,
    )
    .await
}

/// Confluent's request shape: the schema as JSON text.
fn schema_body(schema: &Value) -> Value {
    json!({ "schemaType": "JSON", "schema": schema.to_string() })
}

fn signup_v1() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "email": {"type": "string", "format": "email"},
            "seats": {"type": "integer", "minimum": 1},
            "address": {"type": "object", "properties": {"zip": {"type": "string"}}}
        },
        "required": ["email"]
    })
}

async fn register(h: &Harness, subject: &str, schema: &Value) -> (StatusCode, Value) {
    call(
        h,
        "POST",
        &format!("{BASE}/subjects/{subject}/versions"),
        &h.admin_a,
        Some(schema_body(schema)),
    )
    .await
}

#[tokio::test]
async fn register_read_back_and_reregister_idempotently() {
    let h = harness().await;
    let (status, body) = register(&h, "Signup", &signup_v1()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"id": 1, "version": 1}));
    // The same schema again answers the same version and writes nothing.
    let (_, again) = register(&h, "Signup", &signup_v1()).await;
    assert_eq!(again["version"], 1);

    let (status, subjects) = call(&h, "GET", &format!("{BASE}/subjects"), &h.ingest_a, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subjects, json!(["Signup"]));
    let (_, versions) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/Signup/versions"),
        &h.ingest_a,
        None,
    )
    .await;
    assert_eq!(versions, json!([1]));
    let (status, latest) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/Signup/versions/latest"),
        &h.ingest_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest["version"], 1);
    assert_eq!(latest["schemaType"], "JSON");
    let text: Value = serde_json::from_str(latest["schema"].as_str().unwrap()).unwrap();
    assert_eq!(text, signup_v1());
    let (_, raw) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/Signup/versions/1/schema"),
        &h.ingest_a,
        None,
    )
    .await;
    assert_eq!(raw, signup_v1());

    // Confluent's lookup: registered under which version?
    let lookup = format!("{BASE}/subjects/Signup");
    let (status, found) = call(
        &h,
        "POST",
        &lookup,
        &h.ingest_a,
        Some(schema_body(&signup_v1())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["version"], 1);
    let (status, body) = call(
        &h,
        "POST",
        &lookup,
        &h.ingest_a,
        Some(schema_body(&json!({"type": "object"}))),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        (body["error_code"].as_u64(), body["code"].as_str()),
        (Some(40403), Some("schema_not_found"))
    );

    let (status, missing) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/Signup/versions/7"),
        &h.ingest_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error_code"], 40402);
    assert_eq!(missing["code"], "version_not_found");
    let (status, bad) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/Signup/versions/zero"),
        &h.ingest_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["error_code"], 42202);
}

#[tokio::test]
async fn a_schema_that_is_not_understood_is_refused_with_its_path() {
    let h = harness().await;
    let (status, body) = register(
        &h,
        "Signup",
        &json!({"properties": {"email": {"type": "object", "propertyNames": {"maxLength": 3}}}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error_code"], 42201);
    assert_eq!(body["code"], "unsupported_keyword");
    assert_eq!(body["path"], "#/properties/email/propertyNames");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`propertyNames` is not supported"),
        "{body}"
    );

    let (status, body) = register(&h, "Signup", &json!({"type": "strin"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_schema");

    // Not JSON text at all.
    let (status, body) = call(
        &h,
        "POST",
        &format!("{BASE}/subjects/Signup/versions"),
        &h.admin_a,
        Some(json!({"schema": "{not json"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_schema");

    // The schema describes `properties`, an object.
    let (status, body) = register(&h, "Signup", &json!({"type": "string"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("always a JSON object")
    );

    let (status, body) = call(
        &h,
        "POST",
        &format!("{BASE}/subjects/Signup/versions"),
        &h.admin_a,
        Some(json!({"schemaType": "AVRO", "schema": "{}"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");
}

#[tokio::test]
async fn an_incompatible_schema_is_refused_with_the_reason_and_checks_do_not_register() {
    let h = harness().await;
    register(&h, "Signup", &signup_v1()).await;
    let mut v2 = signup_v1();
    v2["properties"]["plan"] = json!({"type": "string"});
    v2["required"] = json!(["email", "plan"]);

    // A dry run with an ingest key: not compatible, nothing registered.
    let (status, check) = call(
        &h,
        "POST",
        &format!("{BASE}/compatibility/subjects/Signup/versions/latest"),
        &h.ingest_a,
        Some(schema_body(&v2)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(check["is_compatible"], false);
    assert_eq!(check["compatibility"], "BACKWARD");
    let messages = check["messages"].to_string();
    assert!(
        messages
            .contains("required property `plan` added without a default: old events would fail"),
        "{messages}"
    );

    let (status, body) = register(&h, "Signup", &v2).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error_code"], 409);
    assert_eq!(body["code"], "incompatible_schema");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("#/required: required property `plan` added without a default"),
        "{message}"
    );
    assert_eq!(body["incompatibilities"][0]["rule"], "required_added");
    assert_eq!(body["incompatibilities"][0]["path"], "#/required");

    // With a default it is BACKWARD compatible.
    v2["properties"]["plan"]["default"] = json!("free");
    let (status, body) = register(&h, "Signup", &v2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);

    // FULL for this subject: adding to a closed model now breaks FORWARD.
    let (status, _) = call(
        &h,
        "PUT",
        &format!("{BASE}/config/Signup"),
        &h.admin_a,
        Some(json!({"compatibility": "FULL"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut v3 = v2.clone();
    v3["properties"]["referrer"] = json!({"type": "string"});
    let (status, body) = register(&h, "Signup", &v3).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("property `referrer` added, but the old schema is closed"),
        "{body}"
    );
    let (_, config) = call(
        &h,
        "GET",
        &format!("{BASE}/config/Signup"),
        &h.ingest_a,
        None,
    )
    .await;
    assert_eq!(config["compatibilityLevel"], "FULL");
    let (_, config) = call(&h, "GET", &format!("{BASE}/config"), &h.ingest_a, None).await;
    assert_eq!(config["compatibilityLevel"], "BACKWARD");

    let (status, body) = call(
        &h,
        "PUT",
        &format!("{BASE}/config"),
        &h.admin_a,
        Some(json!({"compatibility": "SIDEWAYS"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error_code"], 42203);
}

#[tokio::test]
async fn another_teams_subjects_are_invisible_and_ingest_keys_cannot_write() {
    let h = harness().await;
    register(&h, "Signup", &signup_v1()).await;
    // Team B cannot look into team A's registry...
    for path in [
        format!("{BASE}/subjects"),
        format!("{BASE}/subjects/Signup/versions/latest"),
        format!("{BASE}/config"),
    ] {
        let (status, body) = call(&h, "GET", &path, &h.admin_b, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(!body.to_string().contains("email"), "{body}");
    }
    // ...and its own has no such subject.
    let (_, subjects) = call(
        &h,
        "GET",
        "/schemas/v1/teams/team-b/subjects",
        &h.admin_b,
        None,
    )
    .await;
    assert_eq!(subjects, json!([]));
    let (status, body) = call(
        &h,
        "GET",
        "/schemas/v1/teams/team-b/subjects/Signup/versions/latest",
        &h.admin_b,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], 40401);
    assert_eq!(body["code"], "subject_not_found");

    let (status, body) = call(
        &h,
        "POST",
        &format!("{BASE}/subjects/Other/versions"),
        &h.ingest_a,
        Some(schema_body(&signup_v1())),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    let (status, body) = call(&h, "GET", &format!("{BASE}/subjects"), "sk_nope", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], 40101);
    // A team id with a `/` (encoded) is refused, not stored.
    let (status, body) = call(
        &h,
        "PUT",
        "/schemas/v1/teams/a%2Fb/config",
        OPERATOR,
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // The operator sees every team.
    let (status, subjects) = call(&h, "GET", &format!("{BASE}/subjects"), OPERATOR, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subjects, json!(["Signup"]));
    // Only the operator sets the global default.
    let (status, _) = call(
        &h,
        "PUT",
        "/schemas/v1/config",
        &h.admin_a,
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &h,
        "PUT",
        "/schemas/v1/config",
        OPERATOR,
        Some(json!({"compatibility": "FULL"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, config) = call(&h, "GET", &format!("{BASE}/config"), &h.ingest_a, None).await;
    assert_eq!(config["compatibilityLevel"], "FULL");
}

async fn send(h: &Harness, events: Value) -> Value {
    let request = Request::post("/v1/events")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", h.ingest_a))
        .body(Body::from(json!({ "events": events }).to_string()))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn events_are_checked_against_the_version_they_name() {
    let h = harness().await;
    register(&h, "Signup", &signup_v1()).await;
    let body = send(
        &h,
        json!([
            {"event": "Signup", "user_id": "u1", "schema_version": 1, "properties": {"email": "a@b.io", "seats": 2}},
            {"event": "Signup", "user_id": "u2", "schema_version": 1, "properties": {"email": "a@b.io", "address": {"zip": 75001}}},
            {"event": "Signup", "user_id": "u3", "schema_version": 2, "properties": {"email": "a@b.io"}},
            {"event": "Signup", "user_id": "u4", "properties": {"seats": 2}},
            {"event": "Pageview", "user_id": "u5", "properties": {"anything": true}}
        ]),
    )
    .await;
    let results = &body["results"];
    assert_eq!(body["accepted"], 2, "{body}");
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(results[1]["code"], "schema_violation");
    assert_eq!(
        results[1]["message"],
        "`properties.address.zip`: expected string, got an integer (schema version 1 of `Signup`)"
    );
    assert_eq!(results[2]["code"], "unknown_schema_version");
    assert!(
        results[2]["message"]
            .as_str()
            .unwrap()
            .contains("registered: 1")
    );
    // No schema_version means 1.
    assert_eq!(results[3]["code"], "schema_violation");
    assert!(
        results[3]["message"]
            .as_str()
            .unwrap()
            .contains("required property `email` is missing")
    );
    // An event name without a schema passes by default.
    assert_eq!(results[4]["status"], "accepted");

    let records = h.producer.records().await;
    let rejected: Vec<_> = records
        .iter()
        .filter(|r| r.headers.iter().any(|(k, _)| *k == headers::REJECT_CODE))
        .collect();
    assert_eq!(rejected.len(), 3);
    let header = |r: &sluice_gateway::producer::Record, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        header(rejected[0], headers::REJECT_CODE),
        "schema_violation"
    );
    assert!(header(rejected[0], headers::REJECT_MESSAGE).contains("properties.address.zip"));

    // The team now rejects event names without a schema.
    let (status, config) = call(
        &h,
        "PUT",
        &format!("{BASE}/config"),
        &h.admin_a,
        Some(json!({"unregisteredEvents": "reject"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["unregisteredEvents"], "reject");
    assert_eq!(config["compatibility"], "BACKWARD");
    let body = send(&h, json!([{"event": "Pageview", "user_id": "u5"}])).await;
    assert_eq!(body["results"][0]["code"], "unregistered_event");
}
