//! The console API's one error type, mapped to a status and a stable `code`
//! in one place. Server-side details (5xx) are logged, never returned.
//!
//! Body: `{"error": {"code": "invalid_range", "message": "..."}}`, the shape
//! of the gateway's errors, so the page handles both alike.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing key: send `Authorization: Bearer <admin key or operator token>`")]
    MissingApiKey,
    #[error("unknown key")]
    InvalidApiKey,
    #[error("this key was revoked")]
    RevokedApiKey,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidRange(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the query read more than this console allows; narrow the time range")]
    QueryTooLarge,
    #[error("the query ran longer than this console allows; narrow the time range")]
    QueryTimeout,
    #[error("too many live views are open ({0}); close one or retry later")]
    TooManyLiveViews(usize),
    #[error("ClickHouse is unavailable")]
    ClickHouseUnavailable(#[source] anyhow::Error),
    #[error("the gateway is unavailable")]
    GatewayUnavailable(#[source] anyhow::Error),
    #[error("Kafka is unavailable")]
    KafkaUnavailable(#[source] anyhow::Error),
    #[error("tracing is not available: {0}")]
    TracingUnavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingApiKey | Self::InvalidApiKey | Self::RevokedApiKey => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::InvalidRange(_) | Self::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QueryTooLarge => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QueryTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::TooManyLiveViews(_)
            | Self::ClickHouseUnavailable(_)
            | Self::GatewayUnavailable(_)
            | Self::KafkaUnavailable(_)
            | Self::TracingUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::RevokedApiKey => "revoked_api_key",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidRange(_) => "invalid_range",
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::QueryTooLarge => "query_too_large",
            Self::QueryTimeout => "query_timeout",
            Self::TooManyLiveViews(_) => "too_many_live_views",
            Self::ClickHouseUnavailable(_) => "clickhouse_unavailable",
            Self::GatewayUnavailable(_) => "gateway_unavailable",
            Self::KafkaUnavailable(_) => "kafka_unavailable",
            Self::TracingUnavailable(_) => "tracing_unavailable",
        }
    }

    /// A failed ClickHouse query: the server's own limits are the caller's
    /// problem (4xx/504), anything else is ours.
    pub fn clickhouse(err: sluice_clickhouse::Error) -> Self {
        // TIMEOUT_EXCEEDED, TOO_MANY_ROWS, TOO_MANY_BYTES.
        match err.exception_code() {
            Some(159) => Self::QueryTimeout,
            Some(158 | 307) => Self::QueryTooLarge,
            _ => Self::ClickHouseUnavailable(err.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), error = %self.cause(), "console request failed");
        }
        let message = self.to_string();
        (
            status,
            Json(json!({"error": {"code": self.code(), "message": message}})),
        )
            .into_response()
    }
}

impl ApiError {
    /// The error with its cause, for the log line only.
    fn cause(&self) -> String {
        match self {
            Self::ClickHouseUnavailable(e)
            | Self::GatewayUnavailable(e)
            | Self::KafkaUnavailable(e) => format!("{self}: {e:#}"),
            other => other.to_string(),
        }
    }
}
