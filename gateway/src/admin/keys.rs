//! API keys in the admin API:
//!
//! - `POST   /admin/v1/keys` `{"team_id", "role"?, "label"?}` → 201 with the key
//!   (shown once; only its hash is stored)
//! - `GET    /admin/v1/keys?team_id=` → the team's keys, without secrets
//! - `DELETE /admin/v1/keys/{key_id}` → revokes; the key is refused with
//!   `revoked_api_key` by every replica within a second

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::Timestamp;

use super::{admin, validate_team_id};
use crate::error::ApiError;
use crate::keys::{self, KeyRecord, Role};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/keys", get(list_keys).post(create_key))
        .route("/admin/v1/keys/{key_id}", delete(revoke_key))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    team_id: String,
    #[serde(default = "default_role")]
    role: Role,
    #[serde(default)]
    label: String,
}

fn default_role() -> Role {
    Role::Ingest
}

/// A key as the admin API shows it: never the hash.
#[derive(Debug, Serialize)]
struct KeyView {
    key_id: String,
    team_id: String,
    role: Role,
    label: String,
    created_at: Timestamp,
    revoked_at: Option<Timestamp>,
}

impl From<KeyRecord> for KeyView {
    fn from(r: KeyRecord) -> Self {
        Self {
            key_id: r.key_id,
            team_id: r.team_id,
            role: r.role,
            label: r.label,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct Created {
    /// The plaintext key: shown once, store it now.
    key: String,
    #[serde(flatten)]
    view: KeyView,
}

async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let caller = admin(&state, &headers)?;
    let request: CreateKey =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    validate_team_id(&request.team_id)?;
    caller.check_team(&request.team_id)?;
    if request.label.len() > 200 {
        return Err(ApiError::InvalidRequest(
            "`label` must be at most 200 bytes".to_owned(),
        ));
    }
    let new = keys::generate(
        &request.team_id,
        request.role,
        &request.label,
        state.clock().now(),
    );
    state
        .keys()
        .insert(new.record.clone())
        .await
        .map_err(ApiError::Internal)?;
    tracing::info!(team = %request.team_id, key_id = %new.record.key_id, role = ?request.role, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(Created {
            key: new.key,
            view: new.record.into(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    team_id: Option<String>,
}

async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = admin(&state, &headers)?;
    // A team admin sees only its own team, whatever it asks for.
    let team = match (&query.team_id, caller.team()) {
        (Some(team), _) => {
            caller.check_team(team)?;
            Some(team.as_str())
        }
        (None, own) => own,
    };
    let views: Vec<KeyView> = state
        .keys()
        .list(team)
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(Json(serde_json::json!({ "keys": views })))
}

async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = admin(&state, &headers)?;
    let not_found = || ApiError::NotFound(format!("no key `{key_id}`"));
    let mut record = state.keys().get(&key_id).ok_or_else(not_found)?;
    // Another team's key is reported as absent, not forbidden: its existence
    // is none of the caller's business.
    if caller.check_team(&record.team_id).is_err() {
        return Err(not_found());
    }
    if record.revoked_at.is_none() {
        record.revoked_at = Some(state.clock().now());
        state
            .keys()
            .insert(record.clone())
            .await
            .map_err(ApiError::Internal)?;
        tracing::info!(team = %record.team_id, key_id = %record.key_id, "API key revoked");
    }
    Ok(Json(KeyView::from(record)))
}
