//! The HTTP surface. [`router`] takes the state and returns the whole app, so
//! tests drive it with `tower::ServiceExt::oneshot` and no socket.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiError;
use crate::ingest;
use crate::state::AppState;
use std::time::Instant;

use ::metrics::{counter, histogram};

use crate::{admin, auth, body, metrics, sdk};

/// Every route on one listener (development, and the tests).
pub fn router(state: AppState) -> Router {
    ingest_routes().merge(operator_routes()).with_state(state)
}

/// The public listener when `admin.listen` is set: ingest (native and SDK
/// routes) and health, nothing an operator reads or changes.
pub fn ingest_router(state: AppState) -> Router {
    ingest_routes().merge(health_routes()).with_state(state)
}

/// The operator's listener when `admin.listen` is set: `/metrics` (team and
/// plugin names in its labels), the admin and schema APIs, and health.
pub fn operator_router(state: AppState) -> Router {
    operator_routes().with_state(state)
}

fn ingest_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events", post(post_events))
        .merge(sdk::routes())
}

/// `/metrics`, the admin and schema APIs, and health.
fn operator_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics_text))
        .merge(admin::routes())
        .merge(health_routes())
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn post_events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let response = match ingest_request(&state, &headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    counter!(metrics::REQUESTS, "route" => "events", "status" => response.status().as_str().to_owned())
        .increment(1);
    histogram!(metrics::REQUEST_DURATION).record(started.elapsed());
    response
}

async fn ingest_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Authenticate before reading the body: an unauthenticated client must not
    // make us buffer megabytes (its body is drained, not kept).
    let checked = auth::authenticate(state.keys(), headers).and_then(|principal| {
        check_content_type(headers)?;
        Ok((principal, body::Encoding::from_headers(headers)?))
    });
    let (principal, encoding) = match checked {
        Ok(checked) => checked,
        Err(err) => return Err(body::refuse(body, state.ingest(), err).await),
    };
    let (bytes, ticket) = body::read_request(state, headers, body, encoding).await?;
    let body_read = Instant::now();
    let response = ingest::ingest_batch(state, &principal, &bytes).await?;
    histogram!(metrics::PROCESSING_DURATION)
        .record(body_read.elapsed().saturating_sub(response.produce_wait));
    drop(ticket);
    Ok(response.into_response())
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("text/plain")
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.to_owned()))
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        sluice_core::telemetry::metrics().render(),
    )
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Whether to route traffic here, with this replica's ingest requests in
/// flight: what a drain is waiting for (the `/metrics` gauge of the same
/// name is process-wide, this is per replica).
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let in_flight = state.admission().in_flight_used();
    match state.not_ready_because() {
        None => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "in_flight_requests": in_flight })),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "reason": reason,
                "in_flight_requests": in_flight,
            })),
        ),
    }
}
