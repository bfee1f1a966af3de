//! The schema registry API, shaped after Confluent Schema Registry so its
//! clients and habits carry over. Each team has its own registry at
//! `/schemas/v1/teams/{team}`: point a Confluent client's base URL there. A
//! subject is an event name of that team.
//!
//! | method and path (under the team's base) | what |
//! |---|---|
//! | `GET  /subjects` | the team's subjects |
//! | `POST /subjects/{subject}` | is this schema registered? → its version, or 404 `schema_not_found` |
//! | `GET  /subjects/{subject}/versions` | its versions, `[1, 2, ...]` |
//! | `POST /subjects/{subject}/versions` | register `{"schema": "<JSON text>" or {...}, "schemaType": "JSON"}` → `{"id", "version"}`; 409 with the reasons if incompatible |
//! | `GET  /subjects/{subject}/versions/{version or latest}` | `{"subject", "version", "id", "schemaType", "schema"}` |
//! | `GET  /subjects/{subject}/versions/{version or latest}/schema` | the schema document alone |
//! | `POST /compatibility/subjects/{subject}/versions` | would registering succeed? (every version the mode checks) |
//! | `POST /compatibility/subjects/{subject}/versions/{version or latest}` | compatible with that one version? → `{"is_compatible", "messages"}` |
//! | `GET/PUT /config` | the team's `{"compatibility"}` and `unregisteredEvents` (`accept`/`reject`) |
//! | `GET/PUT /config/{subject}` | one subject's `{"compatibility"}` |
//!
//! Plus `GET/PUT /schemas/v1/config`: the global default (PUT: operator only).
//!
//! Who may call: reads and compatibility checks take any key of the team (an
//! `ingest` key suffices, so producers and CI need no admin rights) or the
//! operator token; registering and configuring take the team's `admin` key
//! or the operator token. Another team's registry is refused (403): its
//! subjects are never listed or shown. `id` equals the version: schemas are
//! addressed by (team, event, version), so there are no global ids.
//!
//! Iglu self-describing schemas and Segment tracking-plan event schemas are
//! registered as published: the format is detected, stored with the
//! version, and shown in its views (`format`, `checked`, an Iglu schema's
//! `schemaVer`, by which `{version}` may also name it); the rules an Iglu
//! `self` block adds are in [`import`].

pub mod error;
mod import;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use sluice_schemas::{Compatibility, Dialect, Imported, compat};

use self::error::SchemaApiError;
use crate::auth::{self, Admin};
use crate::error::ApiError;
use crate::keys::Role;
use crate::schemas::registry::{
    Compiled, ConfigRecord, Level, SchemaRegistry, UnregisteredEvents, VersionRecord, View,
};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    let base = "/schemas/v1/teams/{team}";
    Router::new()
        .route(
            "/schemas/v1/config",
            get(get_global_config).put(put_global_config),
        )
        .route(&format!("{base}/subjects"), get(list_subjects))
        .route(&format!("{base}/subjects/{{subject}}"), post(lookup))
        .route(
            &format!("{base}/subjects/{{subject}}/versions"),
            get(list_versions).post(register),
        )
        .route(
            &format!("{base}/subjects/{{subject}}/versions/{{version}}"),
            get(get_version),
        )
        .route(
            &format!("{base}/subjects/{{subject}}/versions/{{version}}/schema"),
            get(get_version_schema),
        )
        .route(
            &format!("{base}/compatibility/subjects/{{subject}}/versions"),
            post(check_all),
        )
        .route(
            &format!("{base}/compatibility/subjects/{{subject}}/versions/{{version}}"),
            post(check_one),
        )
        .route(
            &format!("{base}/config"),
            get(get_team_config).put(put_team_config),
        )
        .route(
            &format!("{base}/config/{{subject}}"),
            get(get_subject_config).put(put_subject_config),
        )
}

type Result<T> = std::result::Result<T, SchemaApiError>;

/// What a call needs: read (any key of the team) or write (its admin key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

fn enabled(state: &AppState) -> Result<&SchemaRegistry> {
    state.schemas().map(AsRef::as_ref).ok_or_else(|| {
        SchemaApiError::Internal(anyhow::anyhow!("this gateway has no schema registry"))
    })
}

fn registry<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    team: &str,
    access: Access,
) -> Result<&'a SchemaRegistry> {
    let token = auth::bearer(headers)?;
    // Team ids never contain `/`: the storage keys rely on it.
    super::validate_team_id(team)?;
    let is_operator = state
        .operator_token()
        .is_some_and(|expected| crate::keys::constant_time_eq(token, expected));
    if !is_operator {
        let principal = auth::principal(state.keys(), token)?;
        Admin::Team(principal.team.clone()).check_team(team)?;
        if access == Access::Write && principal.role != Role::Admin {
            return Err(ApiError::Forbidden(
                "this key has the `ingest` role; registering schemas and changing configuration need an `admin` key".to_owned(),
            )
            .into());
        }
    }
    let registry = enabled(state)?;
    if access == Access::Write && !registry.is_loaded() {
        // Writing before the table is loaded could reuse a version number.
        return Err(SchemaApiError::NotReady);
    }
    Ok(registry)
}

/// The subject's versions, oldest first.
fn versions<'v>(view: &'v View, team: &str, subject: &str) -> Result<Vec<&'v Compiled>> {
    let found = view
        .subject(team, subject)
        .ok_or_else(|| SchemaApiError::SubjectNotFound(subject.to_owned()))?;
    Ok(found.versions.values().map(AsRef::as_ref).collect())
}

fn pick<'v>(versions: &[&'v Compiled], subject: &str, version: &str) -> Result<&'v Compiled> {
    let found = if version == "latest" {
        versions.last().copied()
    } else if let Some(found) = import::by_schema_ver(versions, version) {
        found
    } else {
        let number: u32 = version
            .parse()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| SchemaApiError::InvalidVersion(version.to_owned()))?;
        versions
            .iter()
            .copied()
            .find(|c| c.record.version == number)
    };
    found.ok_or_else(|| SchemaApiError::VersionNotFound(subject.to_owned(), version.to_owned()))
}

fn version_view(compiled: &Compiled) -> Value {
    let r = &compiled.record;
    let mut view = json!({
        "subject": r.subject,
        "version": r.version,
        "id": r.version,
        "schemaType": "JSON",
        // Confluent returns the schema as JSON text.
        "schema": r.schema.to_string(),
        "registered_at": r.registered_at,
    });
    if let Value::Object(fields) = &mut view {
        fields.extend(import::describe(&compiled.origin));
    }
    view
}

/// `{"id", "version"}`, plus what an imported format adds.
fn registered(version: u32, origin: &sluice_schemas::Origin) -> Value {
    let mut answer = json!({ "id": version, "version": version });
    if let Value::Object(fields) = &mut answer {
        fields.extend(import::describe(origin));
    }
    answer
}

/// Reads `{"schema": text-or-object, "schemaType"?: "JSON"}` for `subject`
/// and parses it as the format it is in (plain JSON Schema, Iglu, Segment).
fn candidate(body: &Bytes, subject: &str) -> Result<(Value, Imported)> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| SchemaApiError::InvalidRequest(format!("body is not JSON: {e}")))?;
    if let Some(kind) = request.get("schemaType").and_then(Value::as_str)
        && kind != "JSON"
    {
        return Err(SchemaApiError::InvalidRequest(format!(
            "schemaType `{kind}` is not supported: Sluice registers JSON Schemas only"
        )));
    }
    if request
        .get("references")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
    {
        return Err(SchemaApiError::InvalidRequest(
            "schema references are not supported".to_owned(),
        ));
    }
    let document = match request.get("schema") {
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| {
            SchemaApiError::InvalidSchema(sluice_schemas::SchemaError {
                code: "invalid_schema",
                path: "#".to_owned(),
                message: format!("`schema` is not JSON text: {e}"),
            })
        })?,
        Some(document @ (Value::Object(_) | Value::Bool(_))) => document.clone(),
        _ => {
            return Err(SchemaApiError::InvalidRequest(
                "expected {\"schema\": \"<JSON Schema as text>\"} (an object is accepted too)"
                    .to_owned(),
            ));
        }
    };
    let imported = sluice_schemas::import::import(Dialect::detect(&document), &document, subject)
        .map_err(SchemaApiError::InvalidSchema)?;
    import::check_subject(&imported.origin, subject)?;
    // The schema describes an event's `properties`, which is always an object.
    if imported
        .schema
        .node()
        .is_none_or(|n| !n.types.contains(sluice_schemas::model::Types::OBJECT))
    {
        return Err(SchemaApiError::InvalidSchema(sluice_schemas::SchemaError {
            code: "invalid_schema",
            path: imported.origin.checked(),
            message: "the schema describes an event's `properties`, which is always a JSON object, so it must allow `object`".to_owned(),
        }));
    }
    Ok((document, imported))
}

fn check_subject_name(state: &AppState, subject: &str) -> Result<()> {
    state
        .ingest()
        .event
        .check_event_name(subject)
        .map_err(|reject| SchemaApiError::InvalidSubject(reject.message))
}

async fn list_subjects(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(team): Path<String>,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    let mut subjects: Vec<&String> = view
        .teams
        .get(&team)
        .map(|t| t.subjects.keys().collect())
        .unwrap_or_default();
    subjects.sort();
    Ok(Json(json!(subjects)))
}

async fn list_versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    let numbers: Vec<u32> = versions(&view, &team, &subject)?
        .iter()
        .map(|c| c.record.version)
        .collect();
    Ok(Json(json!(numbers)))
}

async fn get_version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject, version)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    let all = versions(&view, &team, &subject)?;
    Ok(Json(version_view(pick(&all, &subject, &version)?)))
}

async fn get_version_schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject, version)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    let all = versions(&view, &team, &subject)?;
    Ok(Json(pick(&all, &subject, &version)?.record.schema.clone()))
}

/// Confluent's "is this schema registered under the subject?".
async fn lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    let (document, _) = candidate(&body, &subject)?;
    let all = versions(&view, &team, &subject)?;
    let found = all
        .iter()
        .find(|c| c.record.schema == document)
        .ok_or_else(|| SchemaApiError::SchemaNotFound(subject.clone()))?;
    Ok(Json(version_view(found)))
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let registry = registry(&state, &headers, &team, Access::Write)?;
    check_subject_name(&state, &subject)?;
    let (document, imported) = candidate(&body, &subject)?;
    let _guard = registry.lock().await;
    let view = registry.view();
    let earlier: Vec<&Compiled> = versions(&view, &team, &subject).unwrap_or_default();
    // Registering the same schema again is a no-op that answers its version.
    if let Some(same) = earlier.iter().find(|c| c.record.schema == document) {
        return Ok(Json(registered(same.record.version, &same.origin)));
    }
    // What the document says of its own version comes first: a false
    // ADDITION is reported as such, not as whatever the mode finds.
    import::check_history(&subject, &imported.origin, &imported.schema, &earlier)?;
    let mode = view.compatibility(&team, Some(&subject));
    let found = check_against(mode, &imported, &earlier);
    if !found.is_empty() {
        return Err(SchemaApiError::Incompatible {
            subject,
            mode,
            found,
        });
    }
    let version = earlier.last().map_or(1, |c| c.record.version + 1);
    let record = VersionRecord {
        team_id: team.clone(),
        subject: subject.clone(),
        version,
        schema: document,
        registered_at: state.clock().now(),
        format: imported.origin.dialect(),
    };
    registry
        .put_version(&record)
        .await
        .map_err(SchemaApiError::Internal)?;
    let format = imported.origin.dialect().name();
    tracing::info!(%team, %subject, version, %mode, format, "schema registered");
    Ok(Json(registered(version, &imported.origin)))
}

/// `compat::check` against a subject's versions (oldest first), with paths
/// into the document as registered.
fn check_against(
    mode: Compatibility,
    candidate: &Imported,
    earlier: &[&Compiled],
) -> Vec<sluice_schemas::Incompatibility> {
    let pairs: Vec<(u32, &sluice_schemas::Schema)> = earlier
        .iter()
        .map(|c| (c.record.version, &c.schema))
        .collect();
    let mut found = compat::check(mode, &candidate.schema, &pairs);
    import::rebase(&mut found, &candidate.origin);
    found
}

fn verdict(found: &[sluice_schemas::Incompatibility], mode: Compatibility) -> Value {
    json!({
        "is_compatible": found.is_empty(),
        "compatibility": mode,
        "messages": found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "incompatibilities": found,
    })
}

/// Would registering succeed? Checks every version the subject's mode checks;
/// a subject without versions accepts anything.
async fn check_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    let (_, imported) = candidate(&body, &subject)?;
    let mode = view.compatibility(&team, Some(&subject));
    let earlier = versions(&view, &team, &subject).unwrap_or_default();
    // An Iglu schema's SchemaVer is part of "would registering succeed?":
    // its refusal is a verdict too, so pull-request checks print it.
    if let Err(refusal) =
        import::check_history(&subject, &imported.origin, &imported.schema, &earlier)
    {
        return match refusal {
            SchemaApiError::FormatConflict(_)
            | SchemaApiError::SchemaVerOutOfOrder(_)
            | SchemaApiError::NotAnAddition { .. } => {
                let mut answer = verdict(&[], mode);
                answer["is_compatible"] = json!(false);
                answer["messages"] = json!([refusal.to_string()]);
                answer["code"] = json!(refusal.code());
                if let SchemaApiError::NotAnAddition { found, .. } = &refusal {
                    answer["incompatibilities"] = json!(found);
                }
                Ok(Json(answer))
            }
            other => Err(other),
        };
    }
    Ok(Json(verdict(
        &check_against(mode, &imported, &earlier),
        mode,
    )))
}

/// Compatible with one version, in the direction(s) of the subject's mode?
async fn check_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject, version)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    let (_, imported) = candidate(&body, &subject)?;
    let mode = view.compatibility(&team, Some(&subject));
    let all = versions(&view, &team, &subject)?;
    let against = pick(&all, &subject, &version)?;
    let found = check_against(mode, &imported, &[against]);
    Ok(Json(verdict(&found, mode)))
}

/// Reads `{"compatibility": "FULL", "unregisteredEvents"?: "reject"}`.
fn config_body(body: &Bytes, team_level: bool) -> Result<ConfigRecord> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| SchemaApiError::InvalidRequest(format!("body is not JSON: {e}")))?;
    let mut config = ConfigRecord::default();
    for (key, value) in request.as_object().into_iter().flatten() {
        match (key.as_str(), value.as_str()) {
            ("compatibility" | "compatibilityLevel", Some(level)) => {
                config.compatibility = Some(
                    Compatibility::parse(level)
                        .ok_or_else(|| SchemaApiError::InvalidCompatibility(level.to_owned()))?,
                );
            }
            ("unregisteredEvents", Some(policy)) if team_level => {
                config.unregistered_events = Some(match policy {
                    "accept" => UnregisteredEvents::Accept,
                    "reject" => UnregisteredEvents::Reject,
                    other => {
                        return Err(SchemaApiError::InvalidRequest(format!(
                            "unregisteredEvents must be `accept` or `reject`, not `{other}`"
                        )));
                    }
                });
            }
            _ => {
                return Err(SchemaApiError::InvalidRequest(format!(
                    "unexpected field `{key}`: send {{\"compatibility\": \"BACKWARD\"}}{}",
                    if team_level {
                        " and optionally \"unregisteredEvents\": \"accept\" or \"reject\""
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    if config == ConfigRecord::default() {
        return Err(SchemaApiError::InvalidRequest(
            "nothing to change: send {\"compatibility\": \"BACKWARD\"}".to_owned(),
        ));
    }
    Ok(config)
}

fn merge(current: &ConfigRecord, update: ConfigRecord) -> ConfigRecord {
    ConfigRecord {
        compatibility: update.compatibility.or(current.compatibility),
        unregistered_events: update.unregistered_events.or(current.unregistered_events),
    }
}

async fn get_global_config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    // Any admin may read the default its teams inherit.
    auth::authenticate_admin(state.keys(), state.operator_token(), &headers)?;
    let registry = enabled(&state)?;
    let mode = registry.view().global.compatibility.unwrap_or_default();
    Ok(Json(json!({ "compatibilityLevel": mode })))
}

async fn put_global_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let caller = auth::authenticate_admin(state.keys(), state.operator_token(), &headers)?;
    if caller != Admin::Operator {
        return Err(ApiError::Forbidden(
            "only the operator token may change the global schema configuration".to_owned(),
        )
        .into());
    }
    let registry = enabled(&state)?;
    let update = config_body(&body, false)?;
    let config = merge(&registry.view().global, update);
    registry
        .put_config(Level::Global, &config)
        .await
        .map_err(SchemaApiError::Internal)?;
    Ok(Json(json!({ "compatibility": config.compatibility })))
}

async fn get_team_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(team): Path<String>,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    Ok(Json(json!({
        "compatibilityLevel": view.compatibility(&team, None),
        "unregisteredEvents": view.unregistered_events(&team),
    })))
}

async fn put_team_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(team): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let registry = registry(&state, &headers, &team, Access::Write)?;
    let update = config_body(&body, true)?;
    let view = registry.view();
    let current = view
        .teams
        .get(&team)
        .map(|t| t.config.clone())
        .unwrap_or_default();
    let config = merge(&current, update);
    registry
        .put_config(Level::Team(&team), &config)
        .await
        .map_err(SchemaApiError::Internal)?;
    let view = registry.view();
    Ok(Json(json!({
        "compatibility": view.compatibility(&team, None),
        "unregisteredEvents": view.unregistered_events(&team),
    })))
}

async fn get_subject_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let view = registry(&state, &headers, &team, Access::Read)?.view();
    Ok(Json(
        json!({ "compatibilityLevel": view.compatibility(&team, Some(&subject)) }),
    ))
}

async fn put_subject_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, subject)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let registry = registry(&state, &headers, &team, Access::Write)?;
    check_subject_name(&state, &subject)?;
    let config = config_body(&body, false)?;
    registry
        .put_config(Level::Subject(&team, &subject), &config)
        .await
        .map_err(SchemaApiError::Internal)?;
    Ok(Json(json!({ "compatibility": config.compatibility })))
}
