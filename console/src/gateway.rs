//! Admin calls forwarded to the gateway: `/api/v1/gateway/<path>` becomes
//! `<gateway.admin_url>/<path>` with the caller's key. Only the admin and
//! schema APIs are reachable; the gateway decides what the key may do (its
//! team isolation is the one that counts) and its answer is passed back
//! unchanged.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::bearer;
use crate::error::ApiError;
use crate::state::AppState;

/// Where forwarded paths start in the console's API.
pub const PREFIX: &str = "/api/v1/gateway/";

/// The gateway paths the page may use.
const FORWARDED: &[&str] = &["admin/v1/", "schemas/v1/"];

pub async fn forward(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // The path as sent, still percent-encoded: a subject named `a/b` or
    // `a?b` reaches the gateway as the page encoded it, not re-split here.
    let path = parts
        .uri
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or_default()
        .to_owned();
    let dots = path
        .split('/')
        .any(|part| matches!(part, "." | "..") || part.to_ascii_lowercase().contains("%2e%2e"));
    if !FORWARDED.iter().any(|prefix| path.starts_with(prefix)) || dots {
        return Err(ApiError::NotFound(parts.uri.path().to_owned()));
    }
    let key = bearer(&parts)?.to_owned();
    let limit = state.config.gateway.max_body_bytes;
    // Read whole (the gateway checks what it gets; a plugin is one body),
    // refused past the limit before anything is sent on.
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let mut url = format!(
        "{}/{path}",
        state.config.gateway.admin_url.trim_end_matches('/')
    );
    if let Some(query) = parts.uri.query() {
        url.push('?');
        url.push_str(query);
    }
    let mut call = state
        .http
        .request(parts.method.clone(), &url)
        .bearer_auth(key)
        .body(body);
    if let Some(kind) = parts.headers.get(header::CONTENT_TYPE) {
        call = call.header(header::CONTENT_TYPE, kind);
    }
    let answer = call
        .send()
        .await
        .map_err(|e| ApiError::GatewayUnavailable(e.into()))?;
    let status = answer.status();
    let kind = answer.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| ApiError::GatewayUnavailable(e.into()))?;
    let mut response = (status, Body::from(bytes)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        kind.unwrap_or_else(|| HeaderValue::from_static("application/json")),
    );
    Ok(response)
}
