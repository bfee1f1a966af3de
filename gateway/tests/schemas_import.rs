//! Iglu self-describing schemas and Segment tracking-plan event schemas,
//! registered as published through the registry API and then enforced on
//! events, through `router()` with an in-memory registry and producer (no
//! socket, no Kafka). The schemas are in `tests/schemas-import/`, written
//! for these tests in the style of Iglu Central and of Segment's exports;
//! `docs/schemas.md` ("Importing Iglu and Segment schemas") quotes them.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_core::kafka::headers;
use sluice_gateway::producer::{MemoryProducer, Record};
use sluice_gateway::{AppState, router};
use tower::ServiceExt;

const BASE: &str = "/schemas/v1/teams/team-a";
/// `com.acme/checkout_started`, percent-encoded as one path segment.
const CHECKOUT: &str = "com.acme%2Fcheckout_started";

struct Harness {
    state: AppState,
    producer: Arc<MemoryProducer>,
    admin: String,
    ingest: String,
}

async fn harness() -> Harness {
    let h = common::schema_harness().await;
    Harness {
        state: h.state,
        producer: h.producer,
        admin: h.teams.admin_a,
        ingest: h.teams.ingest_a,
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/schemas-import/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    common::call_json(&h.state, (method, path), key, "application/json", body).await
}

/// Registers `schema` as sent by `sluice schema register`: JSON text.
async fn register(h: &Harness, subject: &str, schema: &Value) -> (StatusCode, Value) {
    call(
        h,
        "POST",
        &format!("{BASE}/subjects/{subject}/versions"),
        &h.admin,
        Some(json!({ "schemaType": "JSON", "schema": schema.to_string() })),
    )
    .await
}

/// Posts native events; answers the per-event results.
async fn send(h: &Harness, events: Value) -> Value {
    let request = Request::post("/v1/events")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", h.ingest))
        .body(Body::from(json!({ "events": events }).to_string()))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<Value>(&bytes).unwrap()["results"].clone()
}

/// Posts a Segment batch with the ingest key as write key, as the SDKs do.
async fn send_segment(h: &Harness, batch: Value) -> Value {
    let basic = BASE64_STANDARD.encode(format!("{}:", h.ingest));
    let request = Request::post("/v1/batch")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .body(Body::from(json!({ "batch": batch }).to_string()))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// The (code, message) of every dead-lettered event, in order.
async fn rejections(h: &Harness) -> Vec<(String, String)> {
    let header = |r: &Record, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    h.producer
        .records()
        .await
        .iter()
        .filter_map(|r| {
            Some((
                header(r, headers::REJECT_CODE)?,
                header(r, headers::REJECT_MESSAGE)?,
            ))
        })
        .collect()
}

fn checkout(basket_value: Value, extra: Value) -> Value {
    let mut properties = json!({
        "basketId": "0190d6a8-0000-7000-8000-0000000000aa",
        "basketValue": basket_value,
        "currency": "EUR",
        "items": 2,
        "paymentMethod": null
    });
    for (k, v) in extra.as_object().unwrap() {
        properties[k] = v.clone();
    }
    properties
}

#[tokio::test]
async fn an_iglu_schema_registers_as_published_and_its_schemaver_names_the_version() {
    let h = harness().await;
    let v1 = fixture("iglu-checkout_started-1-0-0");
    let (status, body) = register(&h, CHECKOUT, &v1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "id": 1, "version": 1, "format": "iglu", "checked": "#",
            "schemaVer": "1-0-0", "iglu": "iglu:com.acme/checkout_started/jsonschema/1-0-0"
        })
    );
    // Stored and served as registered, `self` and all; found by SchemaVer.
    let (status, view) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/{CHECKOUT}/versions/1-0-0"),
        &h.ingest,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["version"], 1);
    assert_eq!(view["subject"], "com.acme/checkout_started");
    assert_eq!(view["schemaVer"], "1-0-0");
    let text: Value = serde_json::from_str(view["schema"].as_str().unwrap()).unwrap();
    assert_eq!(text, v1);
    // The same document again is the same version.
    let (_, again) = register(&h, CHECKOUT, &v1).await;
    assert_eq!(again["version"], 1);

    // 1-0-1 adds an optional property to the closed model: an ADDITION.
    let (status, body) = register(&h, CHECKOUT, &fixture("iglu-checkout_started-1-0-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].as_u64(), body["schemaVer"].as_str()),
        (Some(2), Some("1-0-1"))
    );
    let (_, versions) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/{CHECKOUT}/versions"),
        &h.ingest,
        None,
    )
    .await;
    assert_eq!(versions, json!([1, 2]));

    let event = |user: &str, version: u32, properties: Value| {
        json!({"event": "com.acme/checkout_started", "user_id": user,
               "schema_version": version, "properties": properties})
    };
    let results = send(
        &h,
        json!([
            event("u1", 1, checkout(json!(42.5), json!({}))),
            // The draft-04 `exclusiveMinimum: true` makes 0 too low.
            event("u2", 1, checkout(json!(0), json!({}))),
            event(
                "u3",
                2,
                checkout(json!(10), json!({"couponCode": "SPRING"}))
            ),
            // 1-0-0 is closed: it has no `couponCode`.
            event(
                "u4",
                1,
                checkout(json!(10), json!({"couponCode": "SPRING"}))
            ),
        ]),
    )
    .await;
    let outcomes: Vec<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["accepted", "rejected", "accepted", "rejected"]);
    assert_eq!(
        rejections(&h).await,
        [
            (
                "schema_violation".to_owned(),
                "`properties.basketValue`: 0 is below the minimum 0 (exclusive) (schema version 1 of `com.acme/checkout_started`)".to_owned()
            ),
            (
                "schema_violation".to_owned(),
                "`properties.couponCode`: property not allowed: the schema is closed (additionalProperties: false) and does not name it (schema version 1 of `com.acme/checkout_started`)".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn schemaver_disagreements_with_the_registry_are_refused_with_their_reason() {
    let h = harness().await;
    let v100 = fixture("iglu-checkout_started-1-0-0");
    let v101 = fixture("iglu-checkout_started-1-0-1");
    let code = |body: &Value| body["code"].as_str().unwrap().to_owned();

    // A history starts at 1-0-0: 1-0-0 could never come after 1-0-1.
    let (status, body) = register(&h, CHECKOUT, &v101).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (body["error_code"].as_u64(), code(&body)),
        (Some(409), "schemaver_out_of_order".to_owned())
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("`com.acme/checkout_started` has no versions yet, so its first SchemaVer is 1-0-0, not 1-0-1"),
        "{body}"
    );

    // `self` names the subject: registering it under another is refused.
    let (status, body) = register(&h, "com.acme%2Fcheckout_completed", &v100).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        (body["error_code"].as_u64(), code(&body)),
        (Some(42209), "subject_mismatch".to_owned())
    );
    assert_eq!(
        body["message"],
        "the schema's `self` block names `com.acme/checkout_started` (iglu:com.acme/checkout_started/jsonschema/1-0-0), but it is registered under `com.acme/checkout_completed`: an Iglu schema's subject is its vendor/name"
    );

    // A malformed `self` is an invalid schema, at its path.
    let mut bad = v100.clone();
    bad["self"]["version"] = json!("1-0");
    let (status, body) = register(&h, CHECKOUT, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (code(&body), body["path"].as_str()),
        ("invalid_schema".to_owned(), Some("#/self/version"))
    );

    assert_eq!(register(&h, CHECKOUT, &v100).await.0, StatusCode::OK);
    // Skipping 1-0-1: it could never be registered afterwards.
    let (status, body) = register(
        &h,
        CHECKOUT,
        &fixture("iglu-checkout_started-1-0-2-not-an-addition"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "schemaver_out_of_order");
    assert_eq!(
        body["message"],
        "the latest version of `com.acme/checkout_started` is 1-0-0 (version 1), so the next SchemaVer is 1-0-1, 1-1-0 or 2-0-0, not 1-0-2"
    );
    assert_eq!(register(&h, CHECKOUT, &v101).await.0, StatusCode::OK);
    // A published SchemaVer never changes.
    let mut edited = v101.clone();
    edited["description"] = json!("edited after publication");
    let (status, body) = register(&h, CHECKOUT, &edited).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["message"],
        "the latest version of `com.acme/checkout_started` is 1-0-1 (version 2), so the next SchemaVer is 1-0-2, 1-1-0 or 2-0-0, not 1-0-1; 1-0-1 is already version 2 with another body (an Iglu schema never changes once published)"
    );

    // 1-0-2 drops an enum value: data 1-0-0 and 1-0-1 accepted would fail,
    // so it is no ADDITION. The dry run says so too, as a verdict.
    let not_addition = fixture("iglu-checkout_started-1-0-2-not-an-addition");
    let (status, check) = call(
        &h,
        "POST",
        &format!("{BASE}/compatibility/subjects/{CHECKOUT}/versions"),
        &h.ingest,
        Some(json!({ "schema": not_addition })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["is_compatible"], false);
    assert_eq!(check["code"], "schemaver_not_addition");
    let (status, body) = register(&h, CHECKOUT, &not_addition).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "schemaver_not_addition");
    assert_eq!(check["messages"][0], body["message"]);
    assert_eq!(
        body["message"],
        "`self.version` 1-0-2 declares an ADDITION, which must accept all data of the earlier 1-0-x versions, but: against version 1 (BACKWARD): #/properties/paymentMethod: enum value \"invoice\" removed: old events with it would fail the new schema [enum_value_removed] (and 1 more); publish it as a REVISION or MODEL instead"
    );
    let versions: Vec<u64> = body["incompatibilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);

    // As a REVISION it claims nothing, and the subject's mode decides:
    // BACKWARD refuses it; with NONE for the subject it is version 3.
    let revision = fixture("iglu-checkout_started-1-1-0");
    let (status, body) = register(&h, CHECKOUT, &revision).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "incompatible_schema");
    assert_eq!(body["incompatibilities"][0]["rule"], "enum_value_removed");
    let (status, _) = call(
        &h,
        "PUT",
        &format!("{BASE}/config/{CHECKOUT}"),
        &h.admin,
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = register(&h, CHECKOUT, &revision).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].as_u64(), body["schemaVer"].as_str()),
        (Some(3), Some("1-1-0"))
    );

    // An Iglu subject takes Iglu schemas only.
    let (status, body) = register(&h, CHECKOUT, &json!({"type": "object"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "schema_format_conflict");
    assert_eq!(
        body["message"],
        "`com.acme/checkout_started` holds Iglu schemas: each next version must be one too, with the next SchemaVer in its `self` block"
    );
    // Nor does an Iglu schema continue a subject registered without one.
    let signup = "com.acme%2Fsignup";
    assert_eq!(
        register(&h, signup, &json!({"type": "object"})).await.0,
        StatusCode::OK
    );
    let mut iglu_signup = v100.clone();
    iglu_signup["self"]["name"] = json!("signup");
    let (status, body) = register(&h, signup, &iglu_signup).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "schema_format_conflict");
    assert_eq!(
        body["message"],
        "`com.acme/signup` already holds schemas without a SchemaVer (plain JSON Schema or Segment's), so an Iglu schema cannot continue it: its SchemaVers would have no start"
    );
}

#[tokio::test]
async fn a_segment_tracking_plan_event_registers_as_exported_and_checks_segment_calls() {
    let h = harness().await;
    let order = fixture("segment-order_completed");
    let (status, body) = register(&h, "Order%20Completed", &order).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": 1, "version": 1, "format": "segment", "checked": "#/properties/properties"})
    );
    let identify = fixture("segment-identify");
    let (status, body) = register(&h, "%24identify", &identify).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checked"], "#/properties/traits");

    // What a Segment SDK sends, through the Segment route.
    let answer = send_segment(
        &h,
        json!([
            {"type": "track", "event": "Order Completed", "userId": "u1",
             "properties": {"order_id": "o-1", "currency": "EUR", "total": 30,
                            "products": [{"product_id": "p-1", "quantity": 2, "price": 15}]},
             "context": {"library": {"name": "analytics-node"}}},
            {"type": "track", "event": "Order Completed", "userId": "u2",
             "properties": {"order_id": "o-2", "currency": "EUR", "total": 30,
                            "products": [{"product_id": "p-1", "quantity": 0}]}},
            {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com", "plan": "team"}},
            {"type": "identify", "userId": "u2", "traits": {"plan": "team"}}
        ]),
    )
    .await;
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(2)),
        "{answer}"
    );
    assert_eq!(
        rejections(&h).await,
        [
            (
                "schema_violation".to_owned(),
                "`properties.products[0].quantity`: 0 is below the minimum 1 (schema version 1 of `Order Completed`)".to_owned()
            ),
            (
                "schema_violation".to_owned(),
                "`properties`: required property `email` is missing (schema version 1 of `$identify`)".to_owned()
            ),
        ]
    );

    // Compatibility explanations point into the document as registered.
    let mut v2 = order.clone();
    v2["properties"]["properties"]["required"] = json!(["order_id", "currency", "total", "coupon"]);
    let (status, body) = register(&h, "Order%20Completed", &v2).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["incompatibilities"][0]["path"],
        "#/properties/properties/required"
    );
    assert_eq!(body["incompatibilities"][0]["rule"], "required_added");
}

#[tokio::test]
async fn segment_rules_sluice_cannot_enforce_are_refused_not_dropped() {
    let h = harness().await;
    let (status, body) = register(
        &h,
        "Order%20Completed",
        &fixture("segment-order_completed-context-rules"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        (
            body["error_code"].as_u64(),
            body["code"].as_str(),
            body["path"].as_str()
        ),
        (
            Some(42201),
            Some("unsupported_keyword"),
            Some("#/properties/context")
        )
    );
    assert_eq!(
        body["message"],
        "invalid schema at #/properties/context: Sluice checks only the `properties` section of this Segment schema (it becomes the event's `properties`); constraints on `context` would not be enforced, so the schema is refused rather than half-applied"
    );
    // Nothing was registered.
    let (status, _) = call(
        &h,
        "GET",
        &format!("{BASE}/subjects/Order%20Completed/versions"),
        &h.ingest,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn stored_records_keep_their_format_and_plain_ones_are_unchanged() {
    use sluice_gateway::schemas::registry::VersionRecord;
    use sluice_schemas::Dialect;
    // A record written before formats existed reads as plain JSON Schema...
    let old = json!({"team_id": "team-a", "subject": "Signup", "version": 1,
                     "schema": {"type": "object"}, "registered_at": "2027-01-15T08:00:00.000Z"});
    let record: VersionRecord = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(record.format, Dialect::JsonSchema);
    // ...and a plain record is written exactly as before.
    assert_eq!(serde_json::to_value(&record).unwrap(), old);
    let iglu = VersionRecord {
        format: Dialect::Iglu,
        ..record
    };
    let written = serde_json::to_value(&iglu).unwrap();
    assert_eq!(written["format"], "iglu");
    let back: VersionRecord = serde_json::from_value(written).unwrap();
    assert_eq!(back, iglu);
}

#[tokio::test]
async fn the_flattened_segment_export_is_read_whole() {
    let h = harness().await;
    let (status, body) = register(
        &h,
        "Product%20Viewed",
        &fixture("segment-product_viewed-flat"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": 1, "version": 1, "format": "segment", "checked": "#"})
    );
    let answer = send_segment(
        &h,
        json!([
            {"type": "track", "event": "Product Viewed", "userId": "u1",
             "properties": {"product_id": "p-1", "price": 15, "variant": null}},
            {"type": "track", "event": "Product Viewed", "userId": "u2",
             "properties": {"product_id": "p-1", "price": "15"}}
        ]),
    )
    .await;
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{answer}"
    );
    assert_eq!(
        rejections(&h).await,
        [(
            "schema_violation".to_owned(),
            "`properties.price`: expected number, got a string (schema version 1 of `Product Viewed`)".to_owned()
        )]
    );
}
