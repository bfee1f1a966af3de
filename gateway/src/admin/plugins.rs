//! Plugin management in the admin API, team-scoped like every admin route:
//!
//! - `PUT    /admin/v1/teams/{team}/plugins/{name}/versions/{version}?kind=validator|enricher&activate=true`
//!   body: the component bytes. Checked before anything is stored, without
//!   compiling (milliseconds): too large (413 `plugin_too_large`), not a
//!   component (422 `not_a_component`), not a valid one (422
//!   `invalid_component`), wrong world (422 `wrong_world`). Then stored and
//!   answered `202` with the state `compiling`: compiling a TypeScript or
//!   Python component takes seconds, and the admin API does not wait for it.
//!   The state turns `active` when this replica runs the version, or
//!   `failed` (with `error`) if it cannot be compiled.
//! - `GET    /admin/v1/teams/{team}/plugins` and `.../plugins/{name}`: records,
//!   state on this replica, and this replica's call statistics.
//! - `PATCH  /admin/v1/teams/{team}/plugins/{name}` `{"active_version", "policy",
//!   "config", "order", "enabled", "events"}`: activate a version, change the
//!   failure policy or configuration, reorder, disable or re-enable, or run
//!   the plugin only on the listed event names (`[]`: on every event).
//! - `POST   /admin/v1/teams/{team}/plugins/{name}/rollback`: back to the
//!   previously active version.
//! - `DELETE /admin/v1/teams/{team}/plugins/{name}/versions/{version}`: a
//!   version that is not active (409 `conflict` otherwise); it also leaves
//!   the rollback history.
//! - `DELETE /admin/v1/teams/{team}/plugins/{name}`.
//!
//! Deleting a version or a plugin tombstones its component bytes in the blob
//! topic (compaction then frees the space), and every replica lets go of the
//! compiled code once no chain runs it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sluice_core::Timestamp;
use sluice_plugin_host::PluginHost;
use sluice_plugin_host::host::Load;
use sluice_plugin_host::registry::{Disabled, FailurePolicy, PluginRecord, Registry, VersionInfo};
use sluice_plugin_host::runtime::{CompileError, PluginKind};
use sluice_plugin_host::stats::StatsView;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/teams/{team}/plugins", get(list))
        .route(
            "/admin/v1/teams/{team}/plugins/{name}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/admin/v1/teams/{team}/plugins/{name}/rollback",
            post(rollback),
        )
        .route(
            "/admin/v1/teams/{team}/plugins/{name}/versions/{version}",
            put(upload).delete(remove_version),
        )
}

fn context<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    team: &str,
) -> Result<(&'a Arc<PluginHost>, &'a Arc<Registry>), ApiError> {
    let admin: Admin = super::admin(state, headers)?;
    admin.check_team(team)?;
    let host = state
        .plugins()
        .ok_or_else(|| ApiError::NotFound("plugins are not enabled on this gateway".to_owned()))?;
    let registry = host
        .registry()
        .ok_or_else(|| ApiError::NotFound("this gateway has no plugin registry".to_owned()))?;
    Ok((host, registry))
}

fn valid_name(kind: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest(format!(
            "{kind} must be 1 to {max} characters of A-Z, a-z, 0-9, `-`, `_`, `.`, `+`"
        )))
    }
}

/// A plugin as the admin API shows it.
#[derive(Debug, Serialize)]
struct PluginView {
    #[serde(flatten)]
    record: PluginRecord,
    /// On this replica: `active` (runs the recorded version, policy,
    /// configuration and event filter), `compiling` (the active version is
    /// being compiled; the version that ran before, if any, runs meanwhile),
    /// `failed` (the active version cannot be compiled: see `error`),
    /// `loading` (compiled, or its bytes still arriving; the chain is not
    /// rebuilt yet), `disabled` or `inactive`.
    state: &'static str,
    /// Why the active version cannot run on this replica (`failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Calls of the active version on this replica.
    stats: Option<StatsView>,
}

fn view(host: &PluginHost, record: PluginRecord) -> PluginView {
    let active = record.active_version.clone();
    let mut error = None;
    let state = if record.disabled.is_some() {
        "disabled"
    } else if let Some(version) = &active {
        // Active means running as recorded: this version, with the current
        // policy and configuration. Until the chain is rebuilt with a change,
        // the plugin shows `loading` (or why not yet), so `active` after a
        // PATCH or an upload tells the caller its change is in force on this
        // replica.
        let running = host.chain(&record.team_id).is_some_and(|chain| {
            chain.plugins.iter().any(|p| {
                *p.tag.name == record.name
                    && *p.tag.version == *version
                    && p.policy == record.policy
                    && *p.config == *record.config
                    && p.runs_on(&record.events)
            })
        });
        let load = record
            .active()
            .and_then(|v| host.load(&v.sha256, record.kind));
        match load {
            _ if running => "active",
            Some(Load::Compiling) => "compiling",
            Some(Load::Failed(why)) => {
                error = Some(why.to_string());
                "failed"
            }
            Some(Load::Ready(_)) | None => "loading",
        }
    } else {
        "inactive"
    };
    let stats = active
        .as_deref()
        .and_then(|v| host.stats(&record.team_id, &record.name, v))
        .map(|s| s.view());
    PluginView {
        record,
        state,
        error,
        stats,
    }
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(team): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (host, registry) = context(&state, &headers, &team)?;
    let plugins: Vec<PluginView> = registry
        .list(&team)
        .into_iter()
        .map(|r| view(host, r))
        .collect();
    Ok(Json(serde_json::json!({ "plugins": plugins })))
}

fn find(registry: &Registry, team: &str, name: &str) -> Result<PluginRecord, ApiError> {
    registry
        .get(team, name)
        .ok_or_else(|| ApiError::NotFound(format!("team `{team}` has no plugin `{name}`")))
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (host, registry) = context(&state, &headers, &team)?;
    Ok(Json(view(host, find(registry, &team, &name)?)))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    kind: Option<PluginKind>,
    #[serde(default = "yes")]
    activate: bool,
}

fn yes() -> bool {
    true
}

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, name, version)): Path<(String, String, String)>,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let (host, registry) = context(&state, &headers, &team)?;
    valid_name("plugin name", &name, 64)?;
    valid_name("version", &version, 32)?;
    let existing = registry.get(&team, &name);
    let kind = match (&existing, query.kind) {
        (Some(record), Some(kind)) if record.kind != kind => {
            return Err(ApiError::Conflict(format!(
                "plugin `{name}` is a {}; upload a {} under another name",
                record.kind.as_str(),
                kind.as_str()
            )));
        }
        (Some(record), _) => record.kind,
        (None, Some(kind)) => kind,
        (None, None) => {
            return Err(ApiError::InvalidRequest(
                "the first upload of a plugin needs `?kind=validator` or `?kind=enricher`"
                    .to_owned(),
            ));
        }
    };
    let limit = host.runtime().config().max_component_bytes;
    let bytes = crate::body::read_limited(body, limit)
        .await
        .map_err(|err| match err {
            ApiError::PayloadTooLarge { limit } => ApiError::PluginRejected {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "plugin_too_large",
                message: format!("component exceeds {limit} bytes"),
            },
            other => other,
        })?;
    let sha = sluice_plugin_host::registry::sha256_hex(&bytes);
    let known = existing
        .as_ref()
        .and_then(|r| r.versions.iter().find(|v| v.version == version));
    if known.is_some_and(|known| known.sha256 != sha) {
        return Err(ApiError::Conflict(format!(
            "version {version} of `{name}` was already uploaded with different bytes; versions are immutable"
        )));
    }

    // Check everything that can be checked without compiling before storing
    // anything (validating a 20 MB component takes tens of milliseconds).
    let check_bytes = bytes.clone();
    let wit_version = tokio::task::spawn_blocking(move || {
        sluice_plugin_host::runtime::check(&check_bytes, kind, limit)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(rejected)?;

    // The registry hashes the bytes as it stores them: the same `sha`.
    let stored = registry
        .put_blob(&team, &name, &bytes)
        .await
        .map_err(ApiError::Internal)?;
    let mut record = existing.unwrap_or_else(|| new_record(&team, &name, kind));
    if !record.versions.iter().any(|v| v.version == version) {
        record.versions.push(VersionInfo {
            version: version.clone(),
            sha256: sha.clone(),
            size: bytes.len(),
            chunks: stored.chunks,
            uploaded_at: Timestamp::now(),
            wit_version: wit_version.to_owned(),
            blob: stored.key,
        });
    }
    if query.activate {
        activate(&mut record, &version);
    }
    registry.put(&record).await.map_err(ApiError::Internal)?;
    tracing::info!(%team, plugin = %name, %version, kind = kind.as_str(), activate = query.activate, "plugin uploaded");
    if query.activate {
        // Start compiling here with the bytes in hand rather than when the
        // record comes back from the registry; other replicas start when
        // they read it (and share the work through the artifact cache).
        let _ = host.prepare(&sha, kind, || Some(Ok(bytes.to_vec())));
    }
    Ok((StatusCode::ACCEPTED, Json(view(host, record))))
}

/// A plugin's record before its first version.
fn new_record(team: &str, name: &str, kind: PluginKind) -> PluginRecord {
    PluginRecord {
        team_id: team.to_owned(),
        name: name.to_owned(),
        kind,
        versions: Vec::new(),
        active_version: None,
        history: Vec::new(),
        policy: FailurePolicy::default(),
        config: "{}".to_owned(),
        order: 0,
        events: Vec::new(),
        disabled: None,
    }
}

/// An upload refused by [`check`](sluice_plugin_host::runtime::check).
fn rejected(err: CompileError) -> ApiError {
    let (status, code) = match &err {
        CompileError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "plugin_too_large"),
        CompileError::NotAComponent => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_component"),
        CompileError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_component"),
        CompileError::WrongWorld { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "wrong_world"),
        // Not an outcome of the check: compile failures show in the state.
        CompileError::Compile(_) => (StatusCode::UNPROCESSABLE_ENTITY, "compile_failed"),
    };
    ApiError::PluginRejected {
        status,
        code,
        message: err.to_string(),
    }
}

fn activate(record: &mut PluginRecord, version: &str) {
    if record.active_version.as_deref() == Some(version) {
        record.disabled = None;
        return;
    }
    if let Some(previous) = record.active_version.replace(version.to_owned()) {
        record.history.push(previous);
    }
    record.disabled = None;
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    active_version: Option<String>,
    policy: Option<FailurePolicy>,
    config: Option<Box<RawValue>>,
    order: Option<i32>,
    enabled: Option<bool>,
    events: Option<Vec<String>>,
}

/// Most names in a plugin's event filter.
const MAX_FILTER_EVENTS: usize = 1000;

/// A plugin's event filter as stored: every name one that an event could have
/// (the gateway's event-name rules), sorted and without duplicates.
fn event_filter(mut names: Vec<String>, state: &AppState) -> Result<Vec<String>, ApiError> {
    if names.len() > MAX_FILTER_EVENTS {
        return Err(ApiError::InvalidRequest(format!(
            "`events` lists {} names; the limit is {MAX_FILTER_EVENTS}",
            names.len()
        )));
    }
    for name in &names {
        state
            .ingest()
            .event
            .check_event_name(name)
            .map_err(|r| ApiError::InvalidRequest(format!("`events`: {}", r.message)))?;
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let (host, registry) = context(&state, &headers, &team)?;
    let change: Update =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let events = change
        .events
        .map(|names| event_filter(names, &state))
        .transpose()?;
    let mut record = find(registry, &team, &name)?;
    if let Some(version) = change.active_version {
        if !record.versions.iter().any(|v| v.version == version) {
            return Err(ApiError::NotFound(format!(
                "plugin `{name}` has no version `{version}`"
            )));
        }
        activate(&mut record, &version);
    }
    if let Some(policy) = change.policy {
        record.policy = policy;
    }
    if let Some(config) = change.config {
        if !config.get().trim_start().starts_with('{') {
            return Err(ApiError::InvalidRequest(
                "`config` must be a JSON object".to_owned(),
            ));
        }
        record.config = config.get().to_owned();
    }
    if let Some(order) = change.order {
        record.order = order;
    }
    if let Some(events) = events {
        record.events = events;
    }
    match change.enabled {
        Some(true) => record.disabled = None,
        Some(false) => {
            record.disabled = Some(Disabled {
                reason: "disabled through the admin API".to_owned(),
                at: Timestamp::now(),
            })
        }
        None => {}
    }
    registry.put(&record).await.map_err(ApiError::Internal)?;
    Ok(Json(view(host, record)))
}

async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (host, registry) = context(&state, &headers, &team)?;
    let mut record = find(registry, &team, &name)?;
    let previous = record.history.pop().ok_or_else(|| {
        ApiError::Conflict(format!("plugin `{name}` has no previously active version"))
    })?;
    record.active_version = Some(previous);
    record.disabled = None;
    registry.put(&record).await.map_err(ApiError::Internal)?;
    Ok(Json(view(host, record)))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, registry) = context(&state, &headers, &team)?;
    find(registry, &team, &name)?;
    registry
        .remove(&team, &name)
        .await
        .map_err(ApiError::Internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, name, version)): Path<(String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (host, registry) = context(&state, &headers, &team)?;
    let mut record = find(registry, &team, &name)?;
    if record.active_version.as_deref() == Some(version.as_str()) {
        return Err(ApiError::Conflict(format!(
            "version {version} of `{name}` is active; activate another version first, or delete the plugin"
        )));
    }
    let Some(at) = record.versions.iter().position(|v| v.version == version) else {
        return Err(ApiError::NotFound(format!(
            "plugin `{name}` has no version `{version}`"
        )));
    };
    let gone = record.versions.remove(at);
    record.history.retain(|v| *v != version);
    registry.put(&record).await.map_err(ApiError::Internal)?;
    registry
        .forget_blobs(&team, std::slice::from_ref(&gone))
        .await
        .map_err(ApiError::Internal)?;
    tracing::info!(%team, plugin = %name, %version, "plugin version deleted");
    Ok(Json(view(host, record)))
}
