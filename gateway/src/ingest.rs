//! The ingest pipeline, from events to per-event outcomes: the native batch
//! endpoint ([`ingest_batch`]) and the SDK compatibility routes
//! ([`ingest_events`], fed by `compat`) share it.
//!
//! A request is refused as a whole (an [`ApiError`]) only when the batch itself
//! is unusable: not JSON, empty, too large. Otherwise every event gets its own
//! outcome:
//! - `accepted`: Kafka acknowledged it in `events.raw`;
//! - `rejected`: it broke a rule (contract, or a team validator); a copy went
//!   to the dead-letter topic; retrying the same event cannot help;
//! - `dead_lettered`: a team plugin failed on it and the plugin's policy sent it
//!   to the dead-letter topic, where Kafka acknowledged it; do not retry;
//! - `failed`: Kafka did not acknowledge it in time; retry with the same `event_id`.
//!
//! Steps: decode and check each event against the contract, then against the
//! team's registered schema for its name and `schema_version` (if any), run
//! the team's plugin chain over the survivors, then produce everything in one batch and
//! answer once Kafka has answered for every record.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ::metrics::{counter, histogram};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sluice_core::kafka::headers;
use sluice_core::{Event, IncomingEvent, Reject, RejectCode};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::ApiError;
use crate::keys::Principal;
use crate::metrics;
use crate::plugins::chain::Fate;
use crate::plugins::convert::{OwnedEvent, to_wit};
use crate::sink::{Record, SinkError};
use crate::state::AppState;

/// How long clients should wait before retrying events Kafka did not take.
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// The request body: `{"events": [ ... ]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// One event's fate, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Accepted {
        event_id: Uuid,
    },
    Rejected {
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<Uuid>,
        code: RejectCode,
        message: String,
    },
    DeadLettered {
        event_id: Uuid,
        code: RejectCode,
        message: String,
    },
    Failed {
        event_id: Uuid,
        code: String,
        message: String,
    },
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub accepted: usize,
    pub rejected: usize,
    #[serde(default)]
    pub dead_lettered: usize,
    pub failed: usize,
    pub results: Vec<Outcome>,
    /// Time spent waiting for Kafka; not part of the body.
    #[serde(skip)]
    pub produce_wait: Duration,
}

impl IntoResponse for BatchResponse {
    fn into_response(self) -> Response {
        if self.failed == 0 {
            return (StatusCode::OK, Json(self)).into_response();
        }
        // Some events are not in Kafka: 503 tells SDKs to retry, and the body
        // tells them exactly which events to resend.
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        response
    }
}

/// What will be produced for one event, and what to tell the client once
/// Kafka answered for it.
#[derive(Debug)]
enum Planned {
    Accept(Uuid),
    Reject(Option<Uuid>, Reject),
    DeadLetter(Uuid, Reject),
}

/// One event handed to [`ingest_events`]: JSON in the native contract's shape,
/// or a message an SDK-compatibility route could not translate, kept as the
/// client sent it so the dead-letter copy shows what actually arrived.
#[derive(Debug, Clone, Copy)]
pub enum Candidate<'a> {
    Event(&'a RawValue),
    Untranslatable {
        original: &'a RawValue,
        reject: &'a Reject,
    },
}

impl<'a> Candidate<'a> {
    /// The text a dead-letter record carries if this event is rejected.
    fn raw(&self) -> &'a RawValue {
        match *self {
            Self::Event(raw) | Self::Untranslatable { original: raw, .. } => raw,
        }
    }
}

/// Decides and produces a native batch (`{"events": [...]}`) for the caller's
/// team. Resolves after Kafka answered for every record.
pub async fn ingest_batch(
    state: &AppState,
    principal: &Principal,
    body: &[u8],
) -> Result<BatchResponse, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::InvalidUtf8)?;
    let batch: BatchBody<'_> =
        serde_json::from_str(text).map_err(|err| ApiError::from_body_json(&err))?;
    let candidates: Vec<Candidate<'_>> = batch
        .events
        .iter()
        .map(|raw| Candidate::Event(raw))
        .collect();
    ingest_events(state, principal, &candidates).await
}

/// The one ingest pipeline, shared by the native endpoint and the SDK
/// compatibility routes: batch limits and the per-key rate limit, the
/// contract, the team's plugin chain, then one produce. Resolves after Kafka
/// answered for every record.
///
/// Traced as one `ingest` span (the request) with children `decode`,
/// `schema_check`, one `plugin …` per plugin call, and `produce`; every
/// produced record carries the `ingest` span's context in its `traceparent`
/// header.
pub async fn ingest_events(
    state: &AppState,
    principal: &Principal,
    candidates: &[Candidate<'_>],
) -> Result<BatchResponse, ApiError> {
    let span = tracing::info_span!(
        "ingest",
        team = %principal.team,
        events = candidates.len() as i64,
        accepted = tracing::field::Empty,
        rejected = tracing::field::Empty,
        dead_lettered = tracing::field::Empty,
        failed = tracing::field::Empty,
        error = tracing::field::Empty,
    );
    let result = pipeline(state, principal, candidates)
        .instrument(span.clone())
        .await;
    match &result {
        Ok(response) => {
            span.record("accepted", response.accepted as i64);
            span.record("rejected", response.rejected as i64);
            span.record("dead_lettered", response.dead_lettered as i64);
            span.record("failed", response.failed as i64);
        }
        Err(err) => {
            span.record("error", tracing::field::display(err));
        }
    }
    result
}

async fn pipeline(
    state: &AppState,
    principal: &Principal,
    candidates: &[Candidate<'_>],
) -> Result<BatchResponse, ApiError> {
    let team: &str = &principal.team;
    let config = state.ingest();
    if candidates.is_empty() {
        return Err(ApiError::EmptyBatch);
    }
    if candidates.len() > config.max_events_per_batch {
        return Err(ApiError::TooManyEvents {
            count: candidates.len(),
            max: config.max_events_per_batch,
        });
    }
    if let Err(err) = state
        .admission()
        .charge(&principal.key_id, candidates.len())
    {
        if matches!(err, ApiError::RateLimited { .. }) {
            counter!(metrics::RATE_LIMITED).increment(candidates.len() as u64);
        }
        return Err(err);
    }

    let received_at = state.clock().now();
    let mut seen = HashSet::with_capacity(candidates.len());
    let mut decisions: Vec<Result<Event<'_>, (Option<Uuid>, Reject)>> =
        tracing::info_span!("decode", events = candidates.len() as i64).in_scope(|| {
            candidates
                .iter()
                .map(|candidate| {
                    let raw = match *candidate {
                        Candidate::Event(raw) => raw,
                        Candidate::Untranslatable { reject, .. } => {
                            return Err((None, reject.clone()));
                        }
                    };
                    let incoming =
                        IncomingEvent::decode(raw, &config.event).map_err(|r| (None, r))?;
                    let event = incoming
                        .admit(team, received_at, &config.event, Uuid::now_v7)
                        .map_err(|r| (None, r))?;
                    if !seen.insert(event.event_id) {
                        return Err((
                            Some(event.event_id),
                            Reject::new(
                                RejectCode::DuplicateEventId,
                                format!(
                                    "`event_id` {} appears earlier in this batch",
                                    event.event_id
                                ),
                            ),
                        ));
                    }
                    Ok(event)
                })
                .collect()
        });
    // One view for the whole batch: a registration landing mid-batch applies
    // to the next batch, never to half of this one.
    if let Some(schemas) = state.schemas().map(|registry| registry.view()) {
        let span = tracing::info_span!("schema_check", rejected = tracing::field::Empty);
        let _entered = span.enter();
        let mut rejected = 0_usize;
        for decision in &mut decisions {
            if let Ok(event) = decision
                && let Err(reject) = schemas.check(team, event)
            {
                rejected += 1;
                *decision = Err((Some(event.event_id), reject));
            }
        }
        span.record("rejected", rejected as i64);
    }

    let raws: Vec<&RawValue> = candidates.iter().map(Candidate::raw).collect();
    let (mut records, plans) = plan(state, team, &raws, decisions).await?;
    // The request's context, so the consumers' batch spans can link to it.
    if let Some(traceparent) = sluice_core::trace::current_traceparent() {
        for record in &mut records {
            record
                .headers
                .push((headers::TRACEPARENT, traceparent.clone()));
        }
    }

    let produce_started = Instant::now();
    let acks = state
        .sink()
        .send(records)
        .instrument(tracing::info_span!(
            "produce",
            records = plans.len() as i64,
            partitions = tracing::field::Empty,
            failed = tracing::field::Empty,
        ))
        .await;
    let produce_wait = produce_started.elapsed();
    histogram!(metrics::PRODUCE_DURATION).record(produce_wait);

    let mut response = BatchResponse {
        accepted: 0,
        rejected: 0,
        dead_lettered: 0,
        failed: 0,
        results: Vec::with_capacity(plans.len()),
        produce_wait,
    };
    for (plan, ack) in plans.into_iter().zip(acks) {
        let outcome = match (plan, ack) {
            (Planned::Reject(event_id, reject), dlq) => {
                if let Err(err) = dlq {
                    // The client still learns the rejection; only the DLQ copy
                    // is missing, and an operator must know.
                    tracing::warn!(team, code = %reject.code, error = %err, "rejected event not written to the dead-letter topic");
                    counter!(metrics::DLQ_WRITE_FAILURES).increment(1);
                }
                response.rejected += 1;
                counter!(metrics::EVENTS, "outcome" => "rejected", "reason" => reject.code.as_str())
                    .increment(1);
                Outcome::Rejected {
                    event_id,
                    code: reject.code,
                    message: reject.message,
                }
            }
            (Planned::Accept(event_id), Ok(())) => {
                response.accepted += 1;
                Outcome::Accepted { event_id }
            }
            (Planned::DeadLetter(event_id, reject), Ok(())) => {
                response.dead_lettered += 1;
                counter!(metrics::EVENTS, "outcome" => "dead_lettered", "reason" => reject.code.as_str())
                    .increment(1);
                Outcome::DeadLettered {
                    event_id,
                    code: reject.code,
                    message: reject.message,
                }
            }
            (Planned::Accept(event_id) | Planned::DeadLetter(event_id, _), Err(err)) => {
                response.failed += 1;
                counter!(metrics::EVENTS, "outcome" => "failed", "reason" => failure_code(&err))
                    .increment(1);
                Outcome::Failed {
                    event_id,
                    code: failure_code(&err).to_owned(),
                    message: err.to_string(),
                }
            }
        };
        response.results.push(outcome);
    }
    counter!(metrics::EVENTS, "outcome" => "accepted", "reason" => "")
        .increment(response.accepted as u64);
    Ok(response)
}

/// Runs the team's plugin chain (if any) and builds one record per event.
async fn plan(
    state: &AppState,
    team: &str,
    raws: &[&RawValue],
    decisions: Vec<Result<Event<'_>, (Option<Uuid>, Reject)>>,
) -> Result<(Vec<Record>, Vec<Planned>), ApiError> {
    let topics = state.producer_settings();
    let internal = |e: serde_json::Error| ApiError::Internal(e.into());
    let mut records = Vec::with_capacity(decisions.len());
    let mut plans = Vec::with_capacity(decisions.len());

    let chain = state
        .plugins()
        .and_then(|host| host.chain(team).map(|chain| (host, chain)));
    let Some((host, chain)) = chain.filter(|_| decisions.iter().any(Result::is_ok)) else {
        for (decision, raw) in decisions.into_iter().zip(raws) {
            match decision {
                Ok(event) => {
                    records.push(accepted_record(&topics.topic, &event).map_err(internal)?);
                    plans.push(Planned::Accept(event.event_id));
                }
                Err((event_id, reject)) => {
                    records.push(rejected_record(
                        &topics.rejected_topic,
                        team,
                        raw.get(),
                        &reject,
                    ));
                    plans.push(Planned::Reject(event_id, reject));
                }
            }
        }
        return Ok((records, plans));
    };

    let alive: Vec<_> = decisions
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .map(to_wit)
        .collect();
    let mut fates = host
        .run(chain, alive)
        .await
        .map_err(ApiError::Internal)?
        .into_iter();
    let limits = &state.ingest().event;
    for (decision, raw) in decisions.into_iter().zip(raws) {
        let event = match decision {
            Ok(event) => event,
            Err((event_id, reject)) => {
                records.push(rejected_record(
                    &topics.rejected_topic,
                    team,
                    raw.get(),
                    &reject,
                ));
                plans.push(Planned::Reject(event_id, reject));
                continue;
            }
        };
        let event_id = event.event_id;
        let fate = fates
            .next()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("plugin chain lost an event")))?;
        match fate {
            // Unchanged by every enricher: the admitted event, serialised as
            // without plugins (no second contract check needed).
            Fate::Keep => {
                records.push(accepted_record(&topics.topic, &event).map_err(internal)?);
                plans.push(Planned::Accept(event_id));
            }
            Fate::Changed(changed) => {
                let record = OwnedEvent::from_wit(changed, &event, limits).and_then(|owned| {
                    let record =
                        accepted_record(&topics.topic, &owned.as_event()).map_err(|e| {
                            Reject::new(
                                RejectCode::PluginFailed,
                                format!("enriched event cannot be serialised: {e}"),
                            )
                        })?;
                    limits.check_size(record.payload.len())?;
                    Ok(record)
                });
                match record {
                    Ok(record) => {
                        records.push(record);
                        plans.push(Planned::Accept(event_id));
                    }
                    Err(reject) => {
                        records.push(rejected_record(
                            &topics.rejected_topic,
                            team,
                            raw.get(),
                            &reject,
                        ));
                        plans.push(Planned::Reject(Some(event_id), reject));
                    }
                }
            }
            Fate::Reject(reject) => {
                records.push(rejected_record(
                    &topics.rejected_topic,
                    team,
                    raw.get(),
                    &reject,
                ));
                plans.push(Planned::Reject(Some(event_id), reject));
            }
            Fate::DeadLetter(reject) => {
                // The admitted event (ids and times stamped), ready to be
                // replayed into `events.raw` once the plugin is fixed.
                let payload = serde_json::to_string(&event).map_err(internal)?;
                records.push(rejected_record(
                    &topics.rejected_topic,
                    team,
                    &payload,
                    &reject,
                ));
                plans.push(Planned::DeadLetter(event_id, reject));
            }
        }
    }
    Ok((records, plans))
}

fn failure_code(err: &SinkError) -> &'static str {
    match err {
        SinkError::Unavailable(_) => "kafka_unavailable",
        SinkError::QueueFull => "overloaded",
        SinkError::TooLarge => "too_large_for_kafka",
    }
}

fn accepted_record(topic: &str, event: &Event<'_>) -> Result<Record, serde_json::Error> {
    // Sized once: growing from serde_json's small default buffer took about
    // four reallocations per 1.4 KB event, visible in profiles at batch 1000.
    let mut payload = Vec::with_capacity(serialized_size_hint(event));
    serde_json::to_writer(&mut payload, event)?;
    Ok(Record {
        topic: topic.to_owned(),
        key: event.partition_key(),
        payload,
        headers: vec![
            (headers::TEAM, event.team_id.to_string()),
            (headers::SCHEMA_VERSION, event.schema_version.to_string()),
        ],
    })
}

/// About the length of `event` as JSON: its variable parts plus room for the
/// field names, id and timestamps, so the payload is rarely reallocated.
fn serialized_size_hint(event: &Event<'_>) -> usize {
    event.team_id.len()
        + event.event.len()
        + event.user_id.len()
        + event.properties.get().len()
        + event.context.map_or(0, |context| context.get().len())
        + 256
}

/// A dead-letter record: the event's JSON text and the reason in headers.
fn rejected_record(topic: &str, team: &str, payload: &str, reject: &Reject) -> Record {
    Record {
        topic: topic.to_owned(),
        key: team.to_owned(),
        payload: payload.as_bytes().to_vec(),
        headers: vec![
            (headers::TEAM, team.to_owned()),
            (headers::REJECT_CODE, reject.code.as_str().to_owned()),
            (headers::REJECT_MESSAGE, reject.message.clone()),
        ],
    }
}
