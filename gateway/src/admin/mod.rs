//! The HTTP admin surface, one module per resource. Callers are the operator
//! token (`admin.token`, every team) or a team's key for that team only (one
//! team can never see or change another's resources): an `admin`-role key
//! to change anything, and for schemas any key of the team to read.
//!
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

use axum::Router;
use axum::http::HeaderMap;

use crate::auth::{self, Admin};
use crate::error::ApiError;
use crate::state::AppState;

/// Every admin and schema route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(keys::routes())
        .merge(plugins::routes())
        .merge(replay::routes())
        .merge(schemas::routes())
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
