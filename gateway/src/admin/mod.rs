//! The HTTP admin surface, one module per resource. Callers are the operator
//! token (`admin.token`, every team) or a team's key for that team only (one
//! team can never see or change another's resources): an `admin`-role key
//! to change anything, and for schemas any key of the team to read.
//!
//! - `GET /admin/v1/whoami`: who the caller is (`{"operator": true}` or
//!   `{"operator": false, "team": ...}`); the console signs in with it.
//! - [`keys`]: API keys under `/admin/v1/keys`.
//! - [`plugins`]: a team's plugins under `/admin/v1/teams/{team}/plugins`.
//! - [`replay`]: re-driving a team's dead-lettered events through its
//!   current pipeline, `/admin/v1/teams/{team}/replay`.
//! - [`schemas`]: the Confluent-shaped schema registry API under
//!   `/schemas/v1/teams/{team}`, with its own error body ([`schemas::error`]).

pub mod keys;
pub mod plugins;
pub mod replay;
pub mod schemas;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::{self, Admin};
use crate::error::ApiError;
use crate::state::AppState;

/// Every admin and schema route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/whoami", get(whoami))
        .merge(keys::routes())
        .merge(plugins::routes())
        .merge(replay::routes())
        .merge(schemas::routes())
}

/// Who the caller is: the operator, or a team's admin key (an ingest key,
/// like an unknown one, is refused as on every admin route).
async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(match admin(&state, &headers)? {
        Admin::Operator => json!({"operator": true, "team": null}),
        Admin::Team(team) => json!({"operator": false, "team": &*team}),
    }))
}

/// The caller of an admin route, from its headers.
fn admin(state: &AppState, headers: &HeaderMap) -> Result<Admin, ApiError> {
    auth::authenticate_admin(state.keys(), state.operator_token(), headers)
}

pub(crate) fn validate_team_id(team: &str) -> Result<(), ApiError> {
    let ok = !team.is_empty()
        && team.len() <= 64
        && team
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest(
            "`team_id` must be 1 to 64 characters of A-Z, a-z, 0-9, `-`, `_`, `.`".to_owned(),
        ))
    }
}
