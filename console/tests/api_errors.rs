//! The console API's refusals, through `router()` (no console socket):
//! every team route refuses another team's session and a missing key, and
//! malformed parameters get a specific 400 before any query runs. The
//! gateway's `whoami` is a stub here (these are error paths); the real one is
//! used by `tests/tests/console.rs`. ClickHouse and Kafka point at a closed
//! port: a refusal that reached them would show as a 503, not the 4xx
//! asserted.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_console::{AppState, ConsoleConfig, router};
use tower::ServiceExt;

const TEAM_A: &str = "key-of-team-a";
const OPERATOR: &str = "operator-token";

/// A gateway that knows two keys: team-a's admin key and the operator.
async fn stub_gateway() -> String {
    let app = Router::new().route(
        "/admin/v1/whoami",
        get(|headers: axum::http::HeaderMap| async move {
            let key = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_owned();
            match key.as_str() {
                TEAM_A => (
                    StatusCode::OK,
                    Json(json!({"operator": false, "team": "team-a"})),
                ),
                OPERATOR => (
                    StatusCode::OK,
                    Json(json!({"operator": true, "team": null})),
                ),
                "revoked" => (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"code": "revoked_api_key", "message": "revoked"}})),
                ),
                "ingest" => (
                    StatusCode::FORBIDDEN,
                    Json(json!({"error": {"code": "forbidden", "message": "ingest role"}})),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"code": "invalid_api_key", "message": "unknown"}})),
                ),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

async fn state() -> AppState {
    let mut config = ConsoleConfig::default();
    config.gateway.admin_url = stub_gateway().await;
    config.clickhouse.url = "http://127.0.0.1:1".to_owned();
    config.kafka.brokers = "127.0.0.1:1".to_owned();
    AppState::new(config).unwrap()
}

async fn get_json(state: &AppState, path: &str, key: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::builder().uri(path);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let response = router(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

const TEAM_ROUTES: &[&str] = &[
    "series/events",
    "series/dau",
    "top-events",
    "event-names",
    "rejections",
    "breakdown?event=x&property=y",
    "live",
    "health",
    "traces/4bf92f3577b34da6a3ce929d0e0e4736",
];

#[tokio::test]
async fn every_team_route_refuses_another_team_and_callers_without_an_admin_key() {
    let state = state().await;
    for route in TEAM_ROUTES {
        let path = format!("/api/v1/teams/team-b/{route}");
        let (status, body) = get_json(&state, &path, Some(TEAM_A)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(code(&body), "forbidden", "{path}");
        let (status, body) = get_json(&state, &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(code(&body), "missing_api_key");
        let (status, body) = get_json(&state, &path, Some("revoked")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(code(&body), "revoked_api_key");
        let (status, body) = get_json(&state, &path, Some("nobody")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_api_key")
        );
        let (status, body) = get_json(&state, &path, Some("ingest")).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    }
    // SQL in the team of a path is someone else's team for a team key…
    let (status, _) = get_json(
        &state,
        "/api/v1/teams/x'%20OR%201=1%20--/top-events",
        Some(TEAM_A),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // …and not a team id at all for the operator.
    let (status, body) = get_json(
        &state,
        "/api/v1/teams/x'%20OR%201=1%20--/top-events",
        Some(OPERATOR),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
}

#[tokio::test]
async fn malformed_parameters_get_a_specific_400_before_any_query() {
    let state = state().await;
    let cases = [
        ("series/events?from=yesterday", "invalid_range"),
        (
            "series/events?from=2026-12-07T10:00:00Z&to=2026-12-07T09:00:00Z",
            "invalid_range",
        ),
        (
            "series/events?from=2026-12-07T10:00:00Z&to=2026-12-07T10:00:00Z",
            "invalid_range",
        ),
        // Five-minute points over a year: more than a chart can show.
        (
            "series/events?from=2025-12-07T10:00:00Z&to=2026-12-07T10:00:00Z",
            "invalid_range",
        ),
        ("series/events?granularity=week", "invalid_parameter"),
        ("series/events?event=", "invalid_parameter"),
        ("series/events?event=a%00b", "invalid_parameter"),
        ("series/events?evnt=typo", "invalid_parameter"),
        ("top-events?limit=0", "invalid_parameter"),
        ("top-events?limit=101", "invalid_parameter"),
        ("top-events?limit=ten", "invalid_parameter"),
        ("breakdown?event=Signed%20Up", "invalid_parameter"),
        ("breakdown?property=plan", "invalid_parameter"),
        // Raw events: a month at most.
        (
            "breakdown?event=a&property=b&from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            "invalid_range",
        ),
        ("rejections?to=not-a-time", "invalid_range"),
        ("traces/x'%20OR%201=1", "invalid_parameter"),
        (
            "traces/4bf92f3577b34da6a3ce929d0e0e473",
            "invalid_parameter",
        ),
    ];
    for (route, expected) in cases {
        let path = format!("/api/v1/teams/team-a/{route}");
        let (status, body) = get_json(&state, &path, Some(TEAM_A)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(code(&body), expected, "{path}: {body}");
    }
}

#[tokio::test]
async fn unknown_api_routes_and_gateway_paths_are_404_json_and_the_page_is_served_with_its_policy()
{
    let state = state().await;
    let (status, body) = get_json(&state, "/api/v1/nothing", Some(TEAM_A)).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // Only the gateway's admin and schema APIs are forwarded.
    for path in ["/api/v1/gateway/v1/events", "/api/v1/gateway/metrics"] {
        let (status, body) = get_json(&state, path, Some(TEAM_A)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
    let response = router(state.clone())
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("<html"),
        "index.html"
    );
    for path in ["/nothing.js", "/../Cargo.toml", "/%2e%2e/Cargo.toml"] {
        let response = router(state.clone())
            .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_body_over_the_forwarding_limit_is_refused_before_the_gateway() {
    let mut config = ConsoleConfig::default();
    config.gateway.admin_url = stub_gateway().await;
    config.gateway.max_body_bytes = 1024;
    let state = AppState::new(config).unwrap();
    let response = router(state)
        .oneshot(
            Request::builder()
                .method("PUT")
                .uri("/api/v1/gateway/admin/v1/teams/team-a/plugins/p/versions/1")
                .header(header::AUTHORIZATION, format!("Bearer {TEAM_A}"))
                .body(Body::from(vec![0_u8; 4096]))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&body), "payload_too_large");
}

#[tokio::test]
async fn forwarded_paths_stay_inside_the_admin_and_schema_apis() {
    let state = state().await;
    for path in [
        "/api/v1/gateway/admin/v1/../../v1/events",
        "/api/v1/gateway/admin/v1/%2e%2e/%2E%2E/metrics",
        "/api/v1/gateway/schemas/v1/./x",
    ] {
        let (status, body) = get_json(&state, path, Some(TEAM_A)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
}
