//! The gateway's per-batch ingest work, minus HTTP and Kafka, with or without
//! a team's plugin chain: what `ingest::ingest_batch` and `ingest::plan` do
//! between the request body and the records handed to the producer.
//!
//! Without a chain: UTF-8 check, parse the body into raw events, decode and
//! admit each (contract checks, stamps team and `received_at`), reject
//! duplicate ids, serialise one record per event (payload, key, headers).
//!
//! With a chain: the same decode and admit, then [`to_wit`] for every
//! admitted event, [`TeamChain::run`] (called directly on this thread: the
//! gateway hands the same call to `spawn_blocking`), and for every kept event
//! [`OwnedEvent::from_wit`] (the contract check of what a plugin returned)
//! before serialising it. This is a copy of the private `plan` function in
//! `gateway/src/ingest.rs`; keep it in step.
//!
//! Not included on either side: HTTP, the admission charge, the response
//! body, producing to Kafka.

use std::collections::HashSet;

use anyhow::Context;
use serde::Deserialize;
use serde_json::value::RawValue;
use sluice_core::kafka::{Record, headers};
use sluice_core::{Event, IncomingEvent, Limits, Reject, Timestamp};
use sluice_plugin_host::chain::{Fate, TeamChain};
use sluice_plugin_host::convert::{OwnedEvent, to_wit};
use sluice_plugin_host::runtime::{CallError, Runtime};
use uuid::Uuid;

/// The request body, as the gateway parses it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// What one batch produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchTally {
    pub accepted: usize,
    pub rejected: usize,
    pub dead_lettered: usize,
    /// Payload bytes of all records (keeps the work observable).
    pub bytes: usize,
    /// Plugin calls that failed (trap, CPU budget, ...); their events went
    /// the way of the plugin's failure policy (`reject` here).
    pub failed_calls: usize,
}

impl BatchTally {
    pub fn add(&mut self, other: Self) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.dead_lettered += other.dead_lettered;
        self.bytes += other.bytes;
        self.failed_calls += other.failed_calls;
    }
}

/// The ingest stage for one team.
#[derive(Debug)]
pub struct Ingest<'a> {
    pub runtime: &'a Runtime,
    pub team: &'a str,
    pub limits: Limits,
    pub topic: String,
    pub rejected_topic: String,
}

impl<'a> Ingest<'a> {
    pub fn new(runtime: &'a Runtime, team: &'a str) -> Self {
        Self {
            runtime,
            team,
            limits: Limits::default(),
            topic: sluice_core::kafka::TOPIC_RAW.to_owned(),
            rejected_topic: sluice_core::kafka::TOPIC_REJECTED.to_owned(),
        }
    }

    /// Decodes and admits a body's events (the part both paths share).
    pub fn admit<'b>(
        &'b self,
        body: &'b [u8],
        received_at: Timestamp,
    ) -> anyhow::Result<(Vec<&'b RawValue>, Vec<Decision<'b>>)> {
        let text = std::str::from_utf8(body).context("body is not UTF-8")?;
        let batch: BatchBody<'_> = serde_json::from_str(text).context("body is not a batch")?;
        anyhow::ensure!(!batch.events.is_empty(), "empty batch");
        let mut seen = HashSet::with_capacity(batch.events.len());
        let decisions = batch
            .events
            .iter()
            .map(|raw| {
                let event = IncomingEvent::decode(raw, &self.limits)
                    .map_err(|r| (None, r))?
                    .admit(self.team, received_at, &self.limits, Uuid::now_v7)
                    .map_err(|r| (None, r))?;
                if !seen.insert(event.event_id) {
                    return Err((
                        Some(event.event_id),
                        Reject::new(
                            sluice_core::RejectCode::DuplicateEventId,
                            format!(
                                "`event_id` {} appears earlier in this batch",
                                event.event_id
                            ),
                        ),
                    ));
                }
                Ok(event)
            })
            .collect();
        Ok((batch.events, decisions))
    }

    /// One request body through the whole stage; `chain: None` is a team
    /// without plugins.
    pub fn process(&self, chain: Option<&TeamChain>, body: &[u8]) -> anyhow::Result<BatchTally> {
        let (raws, decisions) = self.admit(body, Timestamp::now())?;
        let mut tally = BatchTally::default();
        let mut records: Vec<Record> = Vec::with_capacity(decisions.len());
        let Some(chain) = chain.filter(|_| decisions.iter().any(Result::is_ok)) else {
            for (decision, raw) in decisions.into_iter().zip(&raws) {
                match decision {
                    Ok(event) => {
                        records.push(accepted_record(&self.topic, &event)?);
                        tally.accepted += 1;
                    }
                    Err((_, reject)) => {
                        records.push(self.rejected_record(raw.get(), &reject));
                        tally.rejected += 1;
                    }
                }
            }
            return Ok(finish(tally, records));
        };

        let alive: Vec<_> = decisions
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .map(to_wit)
            .collect();
        let failed = std::cell::Cell::new(0usize);
        let on_failure = |_: &_, _: u64, _: &CallError| failed.set(failed.get() + 1);
        let mut fates = chain
            .run(self.runtime, alive, &self.limits, &on_failure)
            .into_iter();
        tally.failed_calls = failed.get();
        for (decision, raw) in decisions.into_iter().zip(&raws) {
            let event = match decision {
                Ok(event) => event,
                Err((_, reject)) => {
                    records.push(self.rejected_record(raw.get(), &reject));
                    tally.rejected += 1;
                    continue;
                }
            };
            let fate = fates.next().context("plugin chain lost an event")?;
            match fate {
                Fate::Keep => {
                    records.push(accepted_record(&self.topic, &event)?);
                    tally.accepted += 1;
                }
                Fate::Changed(changed) => {
                    let record =
                        OwnedEvent::from_wit(changed, &event, &self.limits).and_then(|owned| {
                            let record =
                                accepted_record(&self.topic, &owned.as_event()).map_err(|e| {
                                    Reject::new(
                                        sluice_core::RejectCode::PluginFailed,
                                        format!("enriched event cannot be serialised: {e}"),
                                    )
                                })?;
                            self.limits.check_size(record.payload.len())?;
                            Ok(record)
                        });
                    match record {
                        Ok(record) => {
                            records.push(record);
                            tally.accepted += 1;
                        }
                        Err(reject) => {
                            records.push(self.rejected_record(raw.get(), &reject));
                            tally.rejected += 1;
                        }
                    }
                }
                Fate::Reject(reject) => {
                    records.push(self.rejected_record(raw.get(), &reject));
                    tally.rejected += 1;
                }
                Fate::DeadLetter(reject) => {
                    let payload = serde_json::to_string(&event)?;
                    records.push(self.rejected_record(&payload, &reject));
                    tally.dead_lettered += 1;
                }
            }
        }
        Ok(finish(tally, records))
    }

    fn rejected_record(&self, payload: &str, reject: &Reject) -> Record {
        Record {
            topic: self.rejected_topic.clone(),
            key: self.team.to_owned(),
            payload: payload.as_bytes().to_vec(),
            headers: vec![
                (headers::TEAM, self.team.to_owned()),
                (headers::REJECT_CODE, reject.code.as_str().to_owned()),
                (headers::REJECT_MESSAGE, reject.message.clone()),
            ],
        }
    }
}

/// An admitted event, or why not (with its id when it had one).
pub type Decision<'a> = Result<Event<'a>, (Option<Uuid>, Reject)>;

fn accepted_record(topic: &str, event: &Event<'_>) -> anyhow::Result<Record> {
    Ok(Record {
        topic: topic.to_owned(),
        key: event.partition_key(),
        payload: serde_json::to_vec(event)?,
        headers: vec![
            (headers::TEAM, event.team_id.to_string()),
            (headers::SCHEMA_VERSION, event.schema_version.to_string()),
        ],
    })
}

/// Counts the bytes and drops the records (the producer would take them here).
fn finish(mut tally: BatchTally, records: Vec<Record>) -> BatchTally {
    tally.bytes = records.iter().map(|r| r.payload.len()).sum();
    std::hint::black_box(records);
    tally
}

/// Wall time per event of each host-side step around the chain, over the
/// steps during which the thread was never descheduled.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConversionCosts {
    pub batch: usize,
    pub batches: usize,
    /// Body parse, decode and admit (both paths).
    #[serde(deserialize_with = "super::null_as_nan")]
    pub decode_admit_us: f64,
    /// Record of an admitted event (the path without plugins).
    #[serde(deserialize_with = "super::null_as_nan")]
    pub serialise_us: f64,
    /// `to_wit`: the WIT record the chain takes (owned strings).
    #[serde(deserialize_with = "super::null_as_nan")]
    pub to_wit_us: f64,
    /// `OwnedEvent::from_wit`: the contract check of an event an enricher
    /// changed (here: its context changed, its properties not).
    #[serde(deserialize_with = "super::null_as_nan")]
    pub from_wit_us: f64,
    /// Record of the owned event, and its size check (the path with plugins).
    #[serde(deserialize_with = "super::null_as_nan")]
    pub serialise_owned_us: f64,
}

/// Times each step over whole batches of `body` for about `time`.
pub fn conversion_costs(
    ingest: &Ingest<'_>,
    body: &[u8],
    time: std::time::Duration,
) -> anyhow::Result<ConversionCosts> {
    let cpu = super::ThreadCpu::open();
    let mark = || (std::time::Instant::now(), cpu.switches());
    let mut steps: [super::Undisturbed; 5] = Default::default();
    let mut batches = 0usize;
    let started = std::time::Instant::now();
    while batches < 3 || started.elapsed() < time {
        let m0 = mark();
        let (_, decisions) = ingest.admit(body, Timestamp::now())?;
        let m1 = mark();
        let admitted: Vec<&Event<'_>> = decisions.iter().filter_map(|d| d.as_ref().ok()).collect();
        let m1b = mark();
        let records = admitted
            .iter()
            .map(|e| accepted_record(&ingest.topic, e))
            .collect::<anyhow::Result<Vec<_>>>()?;
        std::hint::black_box(records);
        let m2 = mark();
        let mut wit: Vec<_> = admitted.iter().map(|e| to_wit(e)).collect();
        let m3 = mark();
        // Changed the way the PII scrubber changes events: a new context
        // (re-checked), the same properties (compared, not re-parsed).
        for event in &mut wit {
            if let Some(context) = &mut event.context {
                context.insert_str(1, r#""scrubbed":true,"#);
            }
        }
        let m3b = mark();
        let owned = wit
            .into_iter()
            .zip(&admitted)
            .map(|(e, original)| OwnedEvent::from_wit(e, original, &ingest.limits))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| anyhow::anyhow!("{r:?}"))?;
        let m4 = mark();
        let records = owned
            .iter()
            .map(|o| {
                let record = accepted_record(&ingest.topic, &o.as_event())?;
                ingest
                    .limits
                    .check_size(record.payload.len())
                    .map_err(|r| anyhow::anyhow!("{r:?}"))?;
                Ok(record)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        std::hint::black_box(records);
        let m5 = mark();
        let n = admitted.len();
        for (step, (a, b)) in
            steps
                .iter_mut()
                .zip([(m0, m1), (m1b, m2), (m2, m3), (m3b, m4), (m4, m5)])
        {
            step.add(a.1 == b.1, (b.0 - a.0).as_nanos() as f64, n);
        }
        batches += 1;
    }
    let [decode_admit, serialise, to_wit_, from_wit, serialise_owned] = steps;
    Ok(ConversionCosts {
        batch: body_events(ingest, body)?,
        batches,
        decode_admit_us: decode_admit.mean_us(),
        serialise_us: serialise.mean_us(),
        to_wit_us: to_wit_.mean_us(),
        from_wit_us: from_wit.mean_us(),
        serialise_owned_us: serialise_owned.mean_us(),
    })
}

fn body_events(ingest: &Ingest<'_>, body: &[u8]) -> anyhow::Result<usize> {
    Ok(ingest.admit(body, Timestamp::now())?.1.len())
}
