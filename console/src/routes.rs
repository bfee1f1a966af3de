//! The console's HTTP surface. [`router`] takes the state and returns the
//! whole app, so tests drive it with `tower::ServiceExt::oneshot` and no
//! socket.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{api, assets, gateway, traces};

pub const REQUESTS: &str = "sluice_console_requests_total";
pub const REQUEST_DURATION: &str = "sluice_console_request_duration_seconds";
pub const LIVE_VIEWS: &str = "sluice_console_live_views";

pub fn describe_metrics() {
    describe_counter!(REQUESTS, "Console requests by route and status.");
    describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Console API request duration (the live stream excluded)."
    );
    describe_gauge!(LIVE_VIEWS, "Live views open now.");
}

pub fn router(state: AppState) -> Router {
    let team = "/api/v1/teams/{team}";
    let api = Router::new()
        .route("/api/v1/session", get(api::session))
        .route(&format!("{team}/series/events"), get(api::event_series))
        .route(&format!("{team}/series/dau"), get(api::dau))
        .route(&format!("{team}/top-events"), get(api::top_events))
        .route(&format!("{team}/event-names"), get(api::event_names))
        .route(&format!("{team}/rejections"), get(api::rejections))
        .route(&format!("{team}/breakdown"), get(api::breakdown))
        .route(&format!("{team}/live"), get(api::live))
        .route(&format!("{team}/health"), get(api::health))
        .route(&format!("{team}/traces/{{trace_id}}"), get(traces::trace))
        .route("/api/v1/gateway/{*path}", any(gateway::forward))
        .route("/api/{*rest}", any(api_not_found))
        .route_layer(middleware::from_fn(measure));
    Router::new()
        .route("/", get(assets::index))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/{*path}", get(assets::file))
        .merge(api)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn api_not_found(request: Request) -> ApiError {
    ApiError::NotFound(request.uri().path().to_owned())
}

/// Ready when ClickHouse answers (every page needs it) and the dead letters
/// have been read (the overview counts them).
async fn readyz(State(state): State<AppState>) -> Response {
    if !state.rejections.is_caught_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "reading_dead_letters"})),
        )
            .into_response();
    }
    match state.dashboard.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready: ClickHouse does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": "clickhouse_unreachable"})),
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    gauge!(LIVE_VIEWS).set(state.live.subscribers() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        sluice_core::telemetry::metrics().render(),
    )
}

async fn measure(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    counter!(REQUESTS, "route" => route.clone(), "status" => response.status().as_str().to_owned())
        .increment(1);
    if !route.ends_with("/live") {
        histogram!(REQUEST_DURATION, "route" => route).record(started.elapsed());
    }
    response
}

/// The page runs only its own scripts and talks only to its own origin; it
/// is never framed.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
