//! The ingest pipeline, from events to per-event outcomes: the native batch
//! endpoint ([`ingest_batch`]) and the SDK compatibility routes
//! ([`ingest_events`], fed by [`crate::sdk`]) share it.
//!
//! A request is refused as a whole (an [`ApiError`]) only when the batch itself
//! is unusable: not JSON, empty, too large. Otherwise every event gets its own
//! outcome:
//! - `accepted`: Kafka acknowledged it in `events.raw`;
//! - `rejected`: it broke a rule (contract, or a team validator); a copy is
//!   in the dead-letter topic (Kafka acknowledged it; if it did not, the
//!   event is `failed` instead, so it is never lost); retrying the same event
//!   cannot help;
//! - `dead_lettered`: a team plugin failed on it and the plugin's policy sent it
//!   to the dead-letter topic, where Kafka acknowledged it; do not retry;
//! - `failed`: Kafka did not acknowledge it (or its dead-letter copy) in
//!   time; retry with the same `event_id`.
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
use sluice_core::{Event, IncomingEvent, Limits, Reject, RejectCode};
use sluice_plugin_host::chain::Fate;
use sluice_plugin_host::convert::{OwnedEvent, to_wit};
use tracing::Instrument;
use uuid::Uuid;

use crate::admission::Refusal;
use crate::config::ProducerSettings;
use crate::error::ApiError;
use crate::keys::Principal;
use crate::metrics;
use crate::producer::{ProduceError, Record};
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
        /// Absent only for an event rejected without a usable `event_id`
        /// whose dead-letter copy failed (the client resends the batch).
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<Uuid>,
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
        let failed = self.failed;
        batch_answer(failed, Json(self))
    }
}

/// A per-event batch answer: 200, or 503 + `Retry-After` when `failed`
/// events are not in Kafka (503 tells SDKs to retry, and the body tells
/// them exactly which events to resend).
pub fn batch_answer(failed: usize, body: impl IntoResponse) -> Response {
    if failed == 0 {
        return (StatusCode::OK, body).into_response();
    }
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
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
/// an event an SDK-compatibility route already translated into the
/// contract's fields, or a message such a route could not translate, kept as
/// the client sent it so the dead-letter copy shows what actually arrived.
#[derive(Clone, Copy)]
pub enum Candidate<'a> {
    Event(&'a RawValue),
    /// Decoded by its route: the pipeline takes its fields as they are
    /// instead of writing them as JSON text and parsing that text back.
    Translated(&'a dyn DecodedEvent),
    Untranslatable {
        original: &'a RawValue,
        reject: &'a Reject,
    },
}

impl std::fmt::Debug for Candidate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Event(raw) => f.debug_tuple("Event").field(raw).finish(),
            Self::Translated(event) => f.debug_tuple("Translated").field(&event.text()).finish(),
            Self::Untranslatable { original, reject } => f
                .debug_struct("Untranslatable")
                .field("original", original)
                .field("reject", reject)
                .finish(),
        }
    }
}

/// An event in the native contract's shape whose fields are already
/// decoded (an SDK message after translation). It must behave exactly as
/// its JSON text ([`DecodedEvent::text`]) would as a [`Candidate::Event`]:
/// the same size, the same fields, the same decoding errors.
pub trait DecodedEvent: Sync {
    /// The length of [`DecodedEvent::text`], for the per-event size limit.
    fn text_len(&self) -> usize;
    /// What [`IncomingEvent::decode`] would read from the text (after its
    /// size check), borrowed from `self`.
    fn fields(&self) -> Result<IncomingEvent<'_>, Reject>;
    /// The event as JSON text: written only for a dead-letter copy.
    fn text(&self) -> String;
}

impl<'a> Candidate<'a> {
    /// The text a dead-letter record carries if this event is rejected.
    fn text(&self) -> std::borrow::Cow<'a, str> {
        match *self {
            Self::Event(raw) | Self::Untranslatable { original: raw, .. } => raw.get().into(),
            Self::Translated(event) => event.text().into(),
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

/// An event after decoding: admitted, or rejected (with its id if it had one).
type Decision<'a> = Result<Event<'a>, (Option<Uuid>, Reject)>;

/// The stages, in order: admit the batch, decode, schema check, plan (the
/// plugin chain and one record per event), produce, answer.
async fn pipeline(
    state: &AppState,
    principal: &Principal,
    candidates: &[Candidate<'_>],
) -> Result<BatchResponse, ApiError> {
    let team: &str = &principal.team;
    admit_batch(state, principal, candidates.len())?;
    let mut decisions = decode(state, team, candidates);
    schema_check(state, team, &mut decisions);
    let plan = plan(state, team, candidates, decisions).await?;
    let (acks, produce_wait) = produce(state, plan.records).await;
    crash_hook(&acks);
    Ok(answer(team, plan.planned, acks, produce_wait))
}

/// Test hook (outside the `SLUICE_GATEWAY_` prefix, so it is never
/// configuration): abort the process once this many requests had records
/// acknowledged by Kafka, before answering the last of them — the moment
/// that makes a client resend events Kafka already has.
pub const CRASH_AFTER_PRODUCE_ENV: &str = "SLUICE_TEST_GATEWAY_CRASH_AFTER_PRODUCE";

fn crash_hook(acks: &[Result<(), ProduceError>]) {
    static AFTER: std::sync::LazyLock<Option<u64>> = std::sync::LazyLock::new(|| {
        std::env::var(CRASH_AFTER_PRODUCE_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
    });
    static PRODUCED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(after) = *AFTER else { return };
    if acks.iter().any(Result::is_ok)
        && PRODUCED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == after
    {
        tracing::error!("{CRASH_AFTER_PRODUCE_ENV} reached: aborting before the answer");
        std::process::abort();
    }
}

/// Batch limits and the per-key rate limit: the whole request or nothing.
fn admit_batch(state: &AppState, principal: &Principal, events: usize) -> Result<(), ApiError> {
    let config = state.ingest();
    if events == 0 {
        return Err(ApiError::EmptyBatch);
    }
    if events > config.max_events_per_batch {
        return Err(ApiError::TooManyEvents {
            count: events,
            max: config.max_events_per_batch,
        });
    }
    if let Err(refusal) = state.admission().charge(&principal.key_id, events) {
        if matches!(refusal, Refusal::RateLimited { .. }) {
            counter!(metrics::RATE_LIMITED).increment(events as u64);
        }
        return Err(refusal.into());
    }
    Ok(())
}

/// Each candidate against the event contract, stamped with the team and the
/// receive time; a repeated `event_id` within the batch is rejected.
fn decode<'a>(state: &AppState, team: &'a str, candidates: &[Candidate<'a>]) -> Vec<Decision<'a>> {
    let limits = &state.ingest().event;
    let received_at = state.clock().now();
    let mut seen = HashSet::with_capacity(candidates.len());
    tracing::info_span!("decode", events = candidates.len() as i64).in_scope(|| {
        candidates
            .iter()
            .map(|candidate| {
                let incoming = match *candidate {
                    Candidate::Event(raw) => IncomingEvent::decode(raw, limits),
                    // The checks `IncomingEvent::decode` makes, in its order:
                    // the size of the text, then its fields.
                    Candidate::Translated(event) => limits
                        .check_size(event.text_len())
                        .and_then(|()| event.fields()),
                    Candidate::Untranslatable { reject, .. } => {
                        return Err((None, reject.clone()));
                    }
                }
                .map_err(|r| (None, r))?;
                let event = incoming
                    .admit(team, received_at, limits, Uuid::now_v7)
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
    })
}

/// Admitted events against the team's registered schemas, if it has any.
fn schema_check(state: &AppState, team: &str, decisions: &mut [Decision<'_>]) {
    // One view for the whole batch: a registration landing mid-batch applies
    // to the next batch, never to half of this one.
    let Some(schemas) = state.schemas().map(|registry| registry.view()) else {
        return;
    };
    let span = tracing::info_span!("schema_check", rejected = tracing::field::Empty);
    let _entered = span.enter();
    let mut rejected = 0_usize;
    for decision in decisions {
        if let Ok(event) = decision
            && let Err(reject) = schemas.check(team, event)
        {
            rejected += 1;
            *decision = Err((Some(event.event_id), reject));
        }
    }
    span.record("rejected", rejected as i64);
}

/// Produces every record (with the request's trace context) and waits for
/// Kafka's answer to each: one result per record, in order.
async fn produce(
    state: &AppState,
    mut records: Vec<Record>,
) -> (Vec<Result<(), ProduceError>>, Duration) {
    // The request's context, so the consumers' batch spans can link to it.
    if let Some(traceparent) = sluice_core::trace::current_traceparent() {
        for record in &mut records {
            record
                .headers
                .push((headers::TRACEPARENT, traceparent.clone()));
        }
    }
    let started = Instant::now();
    let count = records.len();
    let acks = state
        .producer()
        .send(records)
        .instrument(tracing::info_span!(
            "produce",
            records = count as i64,
            partitions = tracing::field::Empty,
            failed = tracing::field::Empty,
        ))
        .await;
    let produce_wait = started.elapsed();
    histogram!(metrics::PRODUCE_DURATION).record(produce_wait);
    (acks, produce_wait)
}

/// Each event's outcome from its plan and Kafka's answer for its record.
fn answer(
    team: &str,
    planned: Vec<Planned>,
    acks: Vec<Result<(), ProduceError>>,
    produce_wait: Duration,
) -> BatchResponse {
    let mut response = BatchResponse {
        accepted: 0,
        rejected: 0,
        dead_lettered: 0,
        failed: 0,
        results: Vec::with_capacity(planned.len()),
        produce_wait,
    };
    for (plan, ack) in planned.into_iter().zip(acks) {
        let outcome = match (plan, ack) {
            (Planned::Reject(event_id, reject), Ok(())) => {
                response.rejected += 1;
                counter!(metrics::EVENTS, "outcome" => "rejected", "reason" => reject.code.as_str())
                    .increment(1);
                Outcome::Rejected {
                    event_id,
                    code: reject.code,
                    message: reject.message,
                }
            }
            (Planned::Reject(event_id, reject), Err(err)) => {
                // `rejected` tells the client not to resend, so it may only be
                // said once the copy is in the dead-letter topic: otherwise
                // the event would exist nowhere. `failed` makes the client
                // resend it; it is rejected again then, and kept.
                tracing::warn!(team, code = %reject.code, error = %err, "rejected event not written to the dead-letter topic; answered failed");
                counter!(metrics::DLQ_WRITE_FAILURES).increment(1);
                response.failed += 1;
                counter!(metrics::EVENTS, "outcome" => "failed", "reason" => failure_code(&err))
                    .increment(1);
                Outcome::Failed {
                    event_id,
                    code: failure_code(&err).to_owned(),
                    message: format!(
                        "rejected ({}: {}), but the rejection could not be recorded: {err}; resend it",
                        reject.code.as_str(),
                        reject.message
                    ),
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
                    event_id: Some(event_id),
                    code: failure_code(&err).to_owned(),
                    message: err.to_string(),
                }
            }
        };
        response.results.push(outcome);
    }
    counter!(metrics::EVENTS, "outcome" => "accepted", "reason" => "")
        .increment(response.accepted as u64);
    response
}

/// Runs the team's plugin chain (if any) and plans one record per event.
async fn plan<'s>(
    state: &'s AppState,
    team: &'s str,
    candidates: &[Candidate<'_>],
    decisions: Vec<Decision<'_>>,
) -> Result<Plan<'s>, ApiError> {
    let mut plan = Plan::new(team, state.producer_settings(), decisions.len());
    let chain = state
        .plugins()
        .and_then(|host| host.chain(team).map(|chain| (host, chain)));
    let Some((host, chain)) = chain.filter(|_| decisions.iter().any(Result::is_ok)) else {
        for (decision, candidate) in decisions.into_iter().zip(candidates) {
            match decision {
                Ok(event) => plan.accept(&event)?,
                Err((event_id, reject)) => plan.reject(event_id, &candidate.text(), reject),
            }
        }
        return Ok(plan);
    };

    let alive: Vec<_> = decisions
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .map(to_wit)
        .collect();
    let mut fates = host
        .run(chain, alive, state.ingest().event.clone())
        .await
        .map_err(ApiError::Internal)?
        .into_iter();
    let limits = &state.ingest().event;
    for (decision, candidate) in decisions.into_iter().zip(candidates) {
        match decision {
            Ok(event) => {
                let fate = fates.next().ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("plugin chain lost an event"))
                })?;
                plan.apply(fate, &event, candidate, limits)?;
            }
            Err((event_id, reject)) => plan.reject(event_id, &candidate.text(), reject),
        }
    }
    Ok(plan)
}

/// The records to produce and, in the same order, what each event's
/// outcome will be once Kafka has answered.
struct Plan<'s> {
    team: &'s str,
    topics: &'s ProducerSettings,
    records: Vec<Record>,
    planned: Vec<Planned>,
}

impl<'s> Plan<'s> {
    fn new(team: &'s str, topics: &'s ProducerSettings, capacity: usize) -> Self {
        Self {
            team,
            topics,
            records: Vec::with_capacity(capacity),
            planned: Vec::with_capacity(capacity),
        }
    }

    /// The admitted event, as the client sent it (or unchanged by plugins).
    fn accept(&mut self, event: &Event<'_>) -> Result<(), ApiError> {
        let record =
            accepted_record(&self.topics.topic, event).map_err(|e| ApiError::Internal(e.into()))?;
        self.records.push(record);
        self.planned.push(Planned::Accept(event.event_id));
        Ok(())
    }

    /// The one way an event is rejected: the text the client sent goes to
    /// the dead-letter topic with the reason in its headers, and the client
    /// is told the reason.
    fn reject(&mut self, event_id: Option<Uuid>, text: &str, reject: Reject) {
        self.records.push(rejected_record(
            &self.topics.rejected_topic,
            (self.team, event_id),
            text,
            &reject,
            "rejected",
        ));
        self.planned.push(Planned::Reject(event_id, reject));
    }

    /// What the plugin chain decided for an admitted event.
    fn apply(
        &mut self,
        fate: Fate,
        event: &Event<'_>,
        candidate: &Candidate<'_>,
        limits: &Limits,
    ) -> Result<(), ApiError> {
        let event_id = event.event_id;
        match fate {
            // Unchanged by every enricher: the admitted event, serialised as
            // without plugins (no second contract check needed).
            Fate::Keep => self.accept(event)?,
            Fate::Changed(changed) => {
                let record = OwnedEvent::from_wit(changed, event, limits).and_then(|owned| {
                    let record =
                        accepted_record(&self.topics.topic, &owned.as_event()).map_err(|e| {
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
                        self.records.push(record);
                        self.planned.push(Planned::Accept(event_id));
                    }
                    Err(reject) => self.reject(Some(event_id), &candidate.text(), reject),
                }
            }
            Fate::Reject(reject) => self.reject(Some(event_id), &candidate.text(), reject),
            Fate::DeadLetter(reject) => {
                // The admitted event (ids and times stamped), ready to be
                // replayed into `events.raw` once the plugin is fixed.
                let payload =
                    serde_json::to_string(event).map_err(|e| ApiError::Internal(e.into()))?;
                self.records.push(rejected_record(
                    &self.topics.rejected_topic,
                    (self.team, Some(event_id)),
                    &payload,
                    &reject,
                    "dead_lettered",
                ));
                self.planned.push(Planned::DeadLetter(event_id, reject));
            }
        }
        Ok(())
    }
}

fn failure_code(err: &ProduceError) -> &'static str {
    match err {
        ProduceError::Unavailable(_) => "kafka_unavailable",
        ProduceError::QueueFull => "overloaded",
        ProduceError::TooLarge => "too_large_for_kafka",
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

/// A dead-letter record: the event's JSON text; the reason, the outcome
/// (`rejected` or `dead_lettered`) and the event's id in headers.
fn rejected_record(
    topic: &str,
    (team, event_id): (&str, Option<Uuid>),
    payload: &str,
    reject: &Reject,
    outcome: &'static str,
) -> Record {
    let mut fields = vec![
        (headers::TEAM, team.to_owned()),
        (headers::REJECT_CODE, reject.code.as_str().to_owned()),
        (headers::REJECT_MESSAGE, reject.message.clone()),
        (headers::OUTCOME, outcome.to_owned()),
    ];
    if let Some(id) = event_id {
        fields.push((headers::EVENT_ID, id.to_string()));
    }
    Record {
        topic: topic.to_owned(),
        key: team.to_owned(),
        payload: payload.as_bytes().to_vec(),
        headers: fields,
    }
}
