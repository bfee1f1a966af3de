//! The schema registry API's one error type. Its body follows Confluent
//! Schema Registry (`{"error_code": 40401, "message": ...}`), so existing
//! clients and scripts understand it, plus the project's stable `code`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_schemas::{Compatibility, Incompatibility, SchemaError};

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum SchemaApiError {
    /// Authentication or authorisation, as for every other route.
    #[error("{0}")]
    Auth(ApiError),
    #[error("subject `{0}` not found")]
    SubjectNotFound(String),
    #[error("this schema is not registered under subject `{0}`")]
    SchemaNotFound(String),
    #[error("version {1} of subject `{0}` not found")]
    VersionNotFound(String, String),
    #[error("invalid schema at {0}")]
    InvalidSchema(SchemaError),
    #[error("invalid version `{0}`: use a positive integer or `latest`")]
    InvalidVersion(String),
    #[error(
        "invalid compatibility level `{0}`: use BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE"
    )]
    InvalidCompatibility(String),
    #[error("invalid subject: {0}")]
    InvalidSubject(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("schema is incompatible with an earlier version of `{subject}` under {mode}: {}", first(.found))]
    Incompatible {
        subject: String,
        mode: Compatibility,
        found: Vec<Incompatibility>,
    },
    /// An Iglu schema's `self` names another subject than the route's.
    #[error(
        "the schema's `self` block names `{named}` ({uri}), but it is registered under `{subject}`: an Iglu schema's subject is its vendor/name"
    )]
    SubjectMismatch {
        subject: String,
        named: String,
        uri: String,
    },
    /// Iglu schemas and other formats mixed in one subject: the SchemaVer
    /// order could not be kept.
    #[error("{0}")]
    FormatConflict(String),
    /// The SchemaVer is not the one that may follow the latest version's.
    #[error("{0}")]
    SchemaVerOutOfOrder(String),
    /// The SchemaVer says ADDITION, but data valid under an earlier version
    /// of the same MODEL-REVISION would be refused.
    #[error("`self.version` {schema_ver} declares an ADDITION, which must accept all data of the earlier {series}-x versions, but: {}; publish it as a REVISION or MODEL instead", first(.found))]
    NotAnAddition {
        schema_ver: String,
        series: String,
        found: Vec<Incompatibility>,
    },
    #[error("the schema registry is still loading; retry in a second")]
    NotReady,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

fn first(found: &[Incompatibility]) -> String {
    match found {
        [] => String::new(),
        [one] => one.to_string(),
        [one, rest @ ..] => format!("{one} (and {} more)", rest.len()),
    }
}

impl From<ApiError> for SchemaApiError {
    fn from(err: ApiError) -> Self {
        Self::Auth(err)
    }
}

impl SchemaApiError {
    /// The project's stable, machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Auth(err) => err.code(),
            Self::SubjectNotFound(_) => "subject_not_found",
            Self::VersionNotFound(..) => "version_not_found",
            Self::SchemaNotFound(_) => "schema_not_found",
            Self::InvalidSchema(err) => err.code,
            Self::InvalidVersion(_) => "invalid_version",
            Self::InvalidCompatibility(_) => "invalid_compatibility_level",
            Self::InvalidSubject(_) => "invalid_subject",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Incompatible { .. } => "incompatible_schema",
            Self::SubjectMismatch { .. } => "subject_mismatch",
            Self::FormatConflict(_) => "schema_format_conflict",
            Self::SchemaVerOutOfOrder(_) => "schemaver_out_of_order",
            Self::NotAnAddition { .. } => "schemaver_not_addition",
            Self::NotReady => "not_ready",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(err) => err.status(),
            Self::SubjectNotFound(_) | Self::VersionNotFound(..) | Self::SchemaNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::InvalidSchema(_)
            | Self::InvalidVersion(_)
            | Self::InvalidCompatibility(_)
            | Self::InvalidSubject(_)
            | Self::SubjectMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Incompatible { .. }
            | Self::FormatConflict(_)
            | Self::SchemaVerOutOfOrder(_)
            | Self::NotAnAddition { .. } => StatusCode::CONFLICT,
            Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Confluent's numeric `error_code`.
    fn error_code(&self) -> u32 {
        match self {
            Self::SubjectNotFound(_) => 40401,
            Self::VersionNotFound(..) => 40402,
            Self::SchemaNotFound(_) => 40403,
            Self::InvalidSchema(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidCompatibility(_) => 42203,
            Self::InvalidSubject(_) => 42208,
            Self::SubjectMismatch { .. } => 42209,
            // Confluent has one code for every conflict with the history.
            Self::Incompatible { .. }
            | Self::FormatConflict(_)
            | Self::SchemaVerOutOfOrder(_)
            | Self::NotAnAddition { .. } => 409,
            Self::NotReady => 50003,
            Self::Internal(_) => 50001,
            Self::Auth(_) | Self::InvalidRequest(_) => u32::from(self.status().as_u16()) * 100 + 1,
        }
    }
}

impl IntoResponse for SchemaApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(err) => {
                tracing::error!(code = self.code(), error = ?err, "schema registry request failed");
                "internal error; see gateway logs".to_owned()
            }
            Self::InvalidSchema(err) => format!("invalid schema at {}: {}", err.path, err.message),
            other => other.to_string(),
        };
        let mut body = json!({
            "error_code": self.error_code(),
            "message": message,
            "code": self.code(),
        });
        if let Self::Incompatible { found, .. } | Self::NotAnAddition { found, .. } = &self {
            body["messages"] = found.iter().map(ToString::to_string).collect();
            body["incompatibilities"] = json!(found);
        }
        if let Self::InvalidSchema(err) = &self {
            body["path"] = json!(err.path);
        }
        (status, Json(body)).into_response()
    }
}
