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
use crate::{auth, body};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Authenticate before reading the body: an unauthenticated client must not
    // make us buffer megabytes.
    let team = auth::authenticate(state.keys(), &headers)?;
    check_content_type(&headers)?;
    let encoding = body::Encoding::from_headers(&headers)?;
    let bytes = body::read(body, encoding, state.ingest()).await?;
    let response = ingest::ingest_batch(&state, &team, &bytes).await?;
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

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.readiness();
    if readiness.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        let reason = if readiness.is_draining() {
            "draining"
        } else {
            "kafka_unreachable"
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": reason })),
        )
    }
}
