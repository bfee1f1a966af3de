//! The HTTP boundary's one error type. Every request-level failure is a variant
//! here; [`IntoResponse`] maps them to a status and a stable machine-readable
//! `code` in one place. Server-side details (5xx) are logged, never returned.
//!
//! Body: `{"error": {"code": "invalid_api_key", "message": "..."}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admission::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "missing API key: send `Authorization: Bearer <key>` (Segment routes: HTTP Basic with the key as user; PostHog routes: `api_key` in the body)"
    )]
    MissingApiKey,
    #[error("unknown API key")]
    InvalidApiKey,
    #[error("this API key was revoked")]
    RevokedApiKey,
    #[error("{message}")]
    PluginRejected {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("too many requests for this API key; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the gateway is at capacity; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    #[error("the gateway is starting or stopping; retry in {retry_after_secs} s")]
    NotReady { retry_after_secs: u64 },
    #[error("request body is not valid UTF-8")]
    InvalidUtf8,
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("request body is not a batch: {0}; expected {{\"events\": [...]}}")]
    InvalidBatch(String),
    #[error("unsupported Content-Encoding `{0}`: send gzip, zstd or no encoding")]
    UnsupportedEncoding(String),
    #[error("request body could not be decompressed: {0}")]
    InvalidCompression(String),
    #[error("decompressed request body exceeds {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    #[error(
        "no API key in the first {limit} bytes of the decompressed body: send the key in an `Authorization` header, put it before the events (`api_key` first), or send a smaller batch"
    )]
    UnauthenticatedTooLarge { limit: usize },
    #[error("request body not received within {secs} s")]
    BodyTimeout { secs: u64 },
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("the batch contains no events")]
    EmptyBatch,
    #[error("the batch has {count} events; at most {max} are accepted per request")]
    TooManyEvents { count: usize, max: usize },
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported Content-Type `{0}`: send application/json")]
    UnsupportedMediaType(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A request body that did not decode: JSON of the wrong shape is an
    /// invalid batch, anything else is malformed JSON.
    pub fn from_body_json(err: &serde_json::Error) -> Self {
        if err.is_data() {
            Self::InvalidBatch(err.to_string())
        } else {
            Self::MalformedJson(err.to_string())
        }
    }

    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::RevokedApiKey => "revoked_api_key",
            Self::PluginRejected { code, .. } => code,
            Self::Conflict(_) => "conflict",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::InvalidRequest(_) => "invalid_request",
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded { .. } => "overloaded",
            Self::NotReady { .. } => "not_ready",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidBatch(_) => "invalid_batch",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::InvalidCompression(_) => "invalid_compression",
            Self::DecompressedTooLarge { .. } => "decompressed_too_large",
            Self::UnauthenticatedTooLarge { .. } => "unauthenticated_body_too_large",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::BodyRead(_) => "body_read_error",
            Self::EmptyBatch => "empty_batch",
            Self::TooManyEvents { .. } => "too_many_events",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingApiKey | Self::InvalidApiKey | Self::RevokedApiKey => {
                StatusCode::UNAUTHORIZED
            }
            Self::PluginRejected { status, .. } => *status,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded { .. } | Self::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidRequest(_)
            | Self::InvalidUtf8
            | Self::MalformedJson(_)
            | Self::InvalidBatch(_)
            | Self::InvalidCompression(_)
            | Self::BodyRead(_)
            | Self::EmptyBatch => StatusCode::BAD_REQUEST,
            Self::TooManyEvents { .. }
            | Self::PayloadTooLarge { .. }
            | Self::DecompressedTooLarge { .. }
            | Self::UnauthenticatedTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::Overloaded { retry_after_secs }
            | Self::NotReady { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Overloaded { retry_after_secs } => Self::Overloaded { retry_after_secs },
            Refusal::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if matches!(self, Self::Overloaded { .. } | Self::NotReady { .. }) {
            // Load shedding is expected under overload and counted in
            // sluice_gateway_requests_total; an ERROR line per refused
            // request would itself cost CPU we are short of.
            tracing::debug!(code = self.code(), "request shed");
            self.to_string()
        } else if status.is_server_error() {
            tracing::error!(code = self.code(), error = ?self, "request failed");
            match &self {
                Self::Internal(_) => "internal error; see gateway logs".to_owned(),
                other => other.to_string(),
            }
        } else {
            self.to_string()
        };
        let body = json!({ "error": { "code": self.code(), "message": message } });
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
