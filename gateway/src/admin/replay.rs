//! Re-driving dead-lettered events, team-scoped like every admin route:
//!
//! - `POST /admin/v1/teams/{team}/replay` `{"events": [...]}`: events as read
//!   back from `events.rejected` (`sluice dlq replay` sends them), in either
//!   shape found there: as the client sent them, or as admitted events (the
//!   `events.raw` contract, with `team_id` and `received_at`).
//!
//! Each event goes through the team's *current* pipeline, exactly as on
//! `/v1/events` (contract, schemas, plugins, one produce), and the answer is
//! the same per-event batch response (200, or 503 naming the `failed` events
//! to resend). A replay is idempotent because the `event_id` is kept: the
//! loader and the aggregator drop a copy of an event they kept within their
//! dedup window, and `sluice dlq replay` skips events ClickHouse already
//! stores for replays older than that.
//!
//! Before the pipeline, each event:
//! - must be a JSON object (else `rejected` with `not_an_object`);
//! - may name a `team_id`, which must be the path's team (else `rejected`
//!   with `team_mismatch`): an event of one team is never replayed into
//!   another's data;
//! - loses `team_id` and `received_at`, which the gateway stamps anew (the
//!   replay is a new receipt; `timestamp` keeps the event's own time).
//!
//! Events refused by these checks are answered `rejected` but, unlike
//! rejections by the pipeline, not written to `events.rejected` again: their
//! copy is already there.
//!
//! Callers: the operator token for every team, or an `admin`-role key of the
//! path's team. Replays are rate-limited in their own bucket per team
//! (`replay:{team}`), so re-driving a backlog does not consume the rate of
//! the team's live traffic, nor the other way round.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sluice_core::RejectCode;
use uuid::Uuid;

use super::{admin, validate_team_id};
use crate::body;
use crate::error::ApiError;
use crate::ingest::{self, BatchResponse, Candidate, Outcome};
use crate::keys::{Principal, Role};
use crate::state::AppState;

/// The code of an event whose `team_id` is not the path's team.
pub const TEAM_MISMATCH: &str = "team_mismatch";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/admin/v1/teams/{team}/replay", post(replay))
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// One event's fate: the pipeline's, or a refusal before it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ReplayOutcome {
    Ingested(Outcome),
    Refused(Refused),
}

/// An event refused before the pipeline, in the shape of a `rejected`
/// outcome (its code is not a contract [`RejectCode`]).
#[derive(Debug, Serialize)]
struct Refused {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<Uuid>,
    code: &'static str,
    message: String,
}

/// The `/v1/events` response body, with the refusals in their places.
#[derive(Debug, Serialize)]
struct ReplayResponse {
    accepted: usize,
    rejected: usize,
    dead_lettered: usize,
    failed: usize,
    results: Vec<ReplayOutcome>,
}

impl IntoResponse for ReplayResponse {
    fn into_response(self) -> Response {
        // As on `/v1/events`: the body names the events to resend.
        let failed = self.failed;
        ingest::batch_answer(failed, Json(self))
    }
}

async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(team): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    validate_team_id(&team)?;
    admin(&state, &headers)?.check_team(&team)?;
    let encoding = body::Encoding::from_headers(&headers)?;
    let (bytes, ticket) = body::read_request(&state, &headers, body, encoding).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::InvalidUtf8)?;
    let batch: ReplayBody<'_> =
        serde_json::from_str(text).map_err(|err| ApiError::from_body_json(&err))?;

    // The native route's batch limits, on the request as sent (the rate
    // limit is charged by the pipeline, on the events it gets).
    let max = state.ingest().max_events_per_batch;
    if batch.events.is_empty() {
        return Err(ApiError::EmptyBatch);
    }
    if batch.events.len() > max {
        return Err(ApiError::TooManyEvents {
            count: batch.events.len(),
            max,
        });
    }

    let prepared: Vec<Result<Box<RawValue>, Refused>> =
        batch.events.iter().map(|raw| prepare(&team, raw)).collect();
    let candidates: Vec<Candidate<'_>> = prepared
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .map(|raw| Candidate::Event(raw))
        .collect();
    let ingested = if candidates.is_empty() {
        None
    } else {
        let principal = Principal {
            team: Arc::from(team.as_str()),
            // The caller administers the team (checked above).
            role: Role::Admin,
            key_id: Arc::from(format!("replay:{team}")),
        };
        Some(ingest::ingest_events(&state, &principal, &candidates).await?)
    };
    drop(ticket);
    Ok(merge(prepared, ingested).into_response())
}

/// The event as the pipeline gets it, or why it does not.
fn prepare(team: &str, raw: &RawValue) -> Result<Box<RawValue>, Refused> {
    // Borrowed values: `properties` and `context` are passed on byte for
    // byte (a `serde_json::Value` would round large numbers).
    let Ok(mut fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
        return Err(Refused {
            status: "rejected",
            event_id: None,
            code: RejectCode::NotAnObject.as_str(),
            message: "each event must be a JSON object".to_owned(),
        });
    };
    let event_id = fields
        .get("event_id")
        .and_then(|id| serde_json::from_str::<Uuid>(id.get()).ok());
    if let Some(owner) = fields.remove("team_id") {
        let owner = serde_json::from_str::<String>(owner.get()).ok();
        if owner.as_deref() != Some(team) {
            return Err(Refused {
                status: "rejected",
                event_id,
                code: TEAM_MISMATCH,
                message: format!(
                    "the event's `team_id` is {}, not `{team}`; replay it as its own team",
                    owner.map_or_else(|| "not a string".to_owned(), |o| format!("`{o}`"))
                ),
            });
        }
    }
    fields.remove("received_at");
    let text = serde_json::to_string(&fields).map_err(|e| Refused {
        status: "rejected",
        event_id,
        code: RejectCode::InvalidValue.as_str(),
        message: e.to_string(),
    })?;
    RawValue::from_string(text).map_err(|e| Refused {
        status: "rejected",
        event_id,
        code: RejectCode::InvalidValue.as_str(),
        message: e.to_string(),
    })
}

/// The pipeline's outcomes and the refusals, back in request order.
fn merge(
    prepared: Vec<Result<Box<RawValue>, Refused>>,
    ingested: Option<BatchResponse>,
) -> ReplayResponse {
    let (mut response, mut outcomes) = match ingested {
        Some(r) => (
            ReplayResponse {
                accepted: r.accepted,
                rejected: r.rejected,
                dead_lettered: r.dead_lettered,
                failed: r.failed,
                results: Vec::with_capacity(prepared.len()),
            },
            r.results.into_iter(),
        ),
        None => (
            ReplayResponse {
                accepted: 0,
                rejected: 0,
                dead_lettered: 0,
                failed: 0,
                results: Vec::with_capacity(prepared.len()),
            },
            Vec::new().into_iter(),
        ),
    };
    for p in prepared {
        match p {
            // One outcome per candidate, in order (the pipeline's contract).
            Ok(_) => response
                .results
                .extend(outcomes.next().map(ReplayOutcome::Ingested)),
            Err(refused) => {
                response.rejected += 1;
                response.results.push(ReplayOutcome::Refused(refused));
            }
        }
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use sluice_core::Timestamp;
    use sluice_core::clock::FixedClock;
    use tower::ServiceExt;

    use crate::keys::{self, ConfiguredKeys, MemoryKeys, Role};
    use crate::producer::MemoryProducer;
    use crate::{AppState, GatewayConfig, router};

    const OPERATOR: &str = "operator-token-0123456789";
    const INGEST_KEY: &str = "sk_test_team_a";
    const NOW: i64 = 1_800_000_000_000;
    const ID: &str = "0190d6a8-0000-7000-8000-000000000001";

    fn harness() -> (AppState, Arc<MemoryProducer>) {
        let mut config = GatewayConfig::default();
        config.auth.keys.insert(INGEST_KEY.into(), "team-a".into());
        config.admin.token = OPERATOR.into();
        config.ingest.max_events_per_batch = 4;
        let producer = Arc::new(MemoryProducer::default());
        let state = AppState::new(
            &config,
            Arc::new(MemoryKeys::new(ConfiguredKeys::new(&config.auth.keys))),
            producer.clone(),
            Arc::new(FixedClock::new(Timestamp::from_millis(NOW))),
        );
        (state, producer)
    }

    async fn admin_key(state: &AppState, team: &str) -> String {
        let new = keys::generate(team, Role::Admin, "", Timestamp::from_millis(NOW));
        state.keys().insert(new.record).await.unwrap();
        new.key
    }

    async fn replay(
        state: &AppState,
        team: &str,
        token: &str,
        events: Value,
    ) -> (StatusCode, Value) {
        replay_text(state, team, token, json!({ "events": events }).to_string()).await
    }

    async fn replay_text(
        state: &AppState,
        team: &str,
        token: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let request = Request::post(format!("/admin/v1/teams/{team}/replay"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A dead-lettered event as the gateway wrote it: the admitted event.
    fn admitted(team: &str) -> Value {
        json!({
            "event_id": ID, "team_id": team, "event": "Clicked", "user_id": "u1",
            "timestamp": "2027-01-15T07:00:00.000Z", "received_at": "2027-01-15T07:00:01.000Z",
            "schema_version": 1, "properties": { "b": 1 }
        })
    }

    #[tokio::test]
    async fn the_operator_replays_an_admitted_event_with_its_id_and_a_new_receive_time() {
        let (state, producer) = harness();
        // Numbers a `serde_json::Value` would round, to show they are kept.
        let text = admitted("team-a")
            .to_string()
            .replace(r#"{"b":1}"#, r#"{"big":12345678901234567890123,"b":1.50}"#);
        let (status, body) = replay_text(
            &state,
            "team-a",
            OPERATOR,
            format!(r#"{{"events":[{text}]}}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({ "accepted": 1, "rejected": 0, "dead_lettered": 0, "failed": 0,
                    "results": [{ "status": "accepted", "event_id": ID }] })
        );
        let records = producer.records().await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].topic, "events.raw");
        let text = std::str::from_utf8(&records[0].payload).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["event_id"], ID);
        assert_eq!(value["team_id"], "team-a");
        assert_eq!(value["timestamp"], "2027-01-15T07:00:00.000Z");
        // The replay is a new receipt.
        assert_eq!(
            value["received_at"],
            Timestamp::from_millis(NOW).to_rfc3339()
        );
        // Properties pass byte for byte.
        assert!(
            text.contains(r#""properties":{"big":12345678901234567890123,"b":1.50}"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_event_of_another_team_is_refused_alone_and_never_produced() {
        let (state, producer) = harness();
        let other = "0190d6a8-0000-7000-8000-000000000002";
        let mut foreign = admitted("team-b");
        foreign["event_id"] = json!(other);
        let events = json!([
            foreign,
            admitted("team-a"),
            { "event": "x", "user_id": "u", "team_id": 7 },
            "not an object",
        ]);
        let (status, body) = replay(&state, "team-a", OPERATOR, events).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (body["accepted"].as_u64(), body["rejected"].as_u64()),
            (Some(1), Some(3))
        );
        let results = body["results"].as_array().unwrap();
        assert_eq!(results[0]["status"], "rejected");
        assert_eq!(results[0]["code"], "team_mismatch");
        assert_eq!(results[0]["event_id"], other);
        assert_eq!(results[1], json!({ "status": "accepted", "event_id": ID }));
        assert_eq!(results[2]["code"], "team_mismatch");
        assert_eq!(results[3]["code"], "not_an_object");
        // Only the accepted event was produced: no new dead-letter copies.
        let records = producer.records().await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].topic, "events.raw");
    }

    #[tokio::test]
    async fn only_the_operator_or_the_teams_admin_key_may_replay() {
        let (state, producer) = harness();
        let admin_b = admin_key(&state, "team-b").await;
        let (status, body) = replay(&state, "team-a", &admin_b, json!([admitted("team-a")])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = replay(&state, "team-a", INGEST_KEY, json!([admitted("team-a")])).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = replay(&state, "team%20a", OPERATOR, json!([admitted("team-a")])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(producer.records().await.is_empty());

        let admin_a = admin_key(&state, "team-a").await;
        let (status, body) = replay(&state, "team-a", &admin_a, json!([admitted("team-a")])).await;
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (StatusCode::OK, Some(1)),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_native_batch_limits_and_the_contract_apply() {
        let (state, producer) = harness();
        let five = Value::Array(vec![admitted("team-a"); 5]);
        let (status, body) = replay(&state, "team-a", OPERATOR, five).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        let (status, body) = replay(&state, "team-a", OPERATOR, json!([])).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (StatusCode::BAD_REQUEST, &json!("empty_batch"))
        );

        // As the client sent it (no team_id): the current contract decides,
        // and a rejection is dead-lettered again, as on /v1/events.
        let events = json!([{ "event_id": ID, "event": "", "user_id": "u1" }]);
        let (status, body) = replay(&state, "team-a", OPERATOR, events).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["results"][0]["code"], "invalid_event_name");
        assert_eq!(producer.records().await[0].topic, "events.rejected");
    }
}
