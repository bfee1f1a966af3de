//! A live plugin instance and its calls, in either WIT version: the batch
//! split into calls of bounded size under one CPU budget, the results
//! checked (one per event) and returned in one shape.

use wasmtime::Store;

use super::state::Budget;
use super::{CallError, PluginState, RuntimeSettings};
use crate::batch;
use crate::bindings::{self, Enriched, Enricher, Event, PluginError, Validator, Verdict, v0_2};

/// The generated exports of the world an instance implements.
pub(super) enum Exports {
    Validator(Validator),
    Enricher(Enricher),
    /// 0.2, with what its `init` declared it reads (`None` until then).
    ValidatorV2(v0_2::Validator, Option<v0_2::Needs>),
    EnricherV2(v0_2::Enricher, Option<v0_2::Needs>),
}

/// A live plugin instance with its store. Dropped, it returns its pool slot
/// (the allocator resets its memory).
pub struct PluginInstance {
    pub(super) store: Store<PluginState>,
    pub(super) exports: Exports,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("state", self.store.data())
            .finish_non_exhaustive()
    }
}

/// What a plugin decided for a batch: one result per event, in order.
#[derive(Debug)]
pub enum BatchResults {
    /// Validators of either version (0.2's verdicts have 0.1's shape).
    Verdicts(Vec<Verdict>),
    /// 0.1 enrichers: a whole event back for each changed one.
    Enriched(Vec<Enriched>),
    /// 0.2 enrichers: a merge patch (or nothing) per event.
    Patches(Vec<v0_2::Enriched>),
}

impl BatchResults {
    pub fn len(&self) -> usize {
        match self {
            Self::Verdicts(v) => v.len(),
            Self::Enriched(v) => v.len(),
            Self::Patches(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn empty_like(&self, capacity: usize) -> Self {
        match self {
            Self::Verdicts(_) => Self::Verdicts(Vec::with_capacity(capacity)),
            Self::Enriched(_) => Self::Enriched(Vec::with_capacity(capacity)),
            Self::Patches(_) => Self::Patches(Vec::with_capacity(capacity)),
        }
    }

    fn extend(&mut self, more: Self) {
        match (self, more) {
            (Self::Verdicts(all), Self::Verdicts(more)) => all.extend(more),
            (Self::Enriched(all), Self::Enriched(more)) => all.extend(more),
            (Self::Patches(all), Self::Patches(more)) => all.extend(more),
            // One instance implements one world, so its calls agree.
            _ => unreachable!("one instance returned results of two kinds"),
        }
    }
}

/// Splits a batch into calls of bounded size. A single event larger than
/// the byte bound still goes alone in one call.
struct Chunks<'a> {
    rest: &'a [Event],
    max_events: usize,
    max_bytes: usize,
}

impl<'a> Chunks<'a> {
    fn new(events: &'a [Event], config: &RuntimeSettings) -> Self {
        Self {
            rest: events,
            max_events: config.max_events_per_call.max(1),
            max_bytes: config.max_bytes_per_call,
        }
    }
}

/// Bytes of an event's strings: what the call copies into the guest.
fn event_bytes(event: &Event) -> usize {
    event.event_id.len()
        + event.team_id.len()
        + event.name.len()
        + event.user_id.len()
        + event.properties.len()
        + event.context.as_ref().map_or(0, String::len)
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [Event];

    fn next(&mut self) -> Option<&'a [Event]> {
        if self.rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        for event in self.rest.iter().take(self.max_events) {
            bytes += event_bytes(event);
            if n > 0 && bytes > self.max_bytes {
                break;
            }
            n += 1;
        }
        let (chunk, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(chunk)
    }
}

impl PluginInstance {
    /// The whole batch through this instance, as [`Runtime::run_batch`] does
    /// it: one CPU budget for the batch, then calls of bounded size,
    /// stopping at the first failure.
    ///
    /// [`Runtime::run_batch`]: super::Runtime::run_batch
    pub fn run_batch(
        &mut self,
        config: &RuntimeSettings,
        events: &[Event],
    ) -> Result<BatchResults, CallError> {
        self.start_budget();
        let mut results: Option<BatchResults> = None;
        for chunk in Chunks::new(events, config) {
            let more = self.raw_call(chunk)?;
            check_len(chunk.len(), more.len())?;
            match &mut results {
                Some(all) => all.extend(more),
                None => {
                    let mut all = more.empty_like(events.len());
                    all.extend(more);
                    results = Some(all);
                }
            }
        }
        match results {
            Some(results) => Ok(results),
            // No events, no call: an empty result of the instance's kind.
            None => Ok(match self.exports {
                Exports::Validator(_) | Exports::ValidatorV2(..) => {
                    BatchResults::Verdicts(Vec::new())
                }
                Exports::Enricher(_) => BatchResults::Enriched(Vec::new()),
                Exports::EnricherV2(..) => BatchResults::Patches(Vec::new()),
            }),
        }
    }

    /// Calls the plugin's `init(config)`, within a CPU budget of its own.
    /// A 0.2 plugin's declared needs are kept for the calls that follow.
    pub fn init(&mut self, config: &str) -> Result<(), CallError> {
        self.start_budget();
        let store = &mut self.store;
        match &mut self.exports {
            Exports::Validator(v) => {
                let result = v.sluice_plugin_validate().call_init(&mut *store, config);
                init_result(result.map_err(|e| classify(store, e))?)
            }
            Exports::Enricher(e) => {
                let result = e.sluice_plugin_enrich().call_init(&mut *store, config);
                init_result(result.map_err(|e| classify(store, e))?)
            }
            Exports::ValidatorV2(v, needs) => {
                let result = v.sluice_plugin_validate().call_init(&mut *store, config);
                *needs = Some(init_result_v2(result.map_err(|e| classify(store, e))?)?);
                Ok(())
            }
            Exports::EnricherV2(e, needs) => {
                let result = e.sluice_plugin_enrich().call_init(&mut *store, config);
                *needs = Some(init_result_v2(result.map_err(|e| classify(store, e))?)?);
                Ok(())
            }
        }
    }

    /// What a 0.2 plugin declared it reads (after `init`); `None` for 0.1.
    pub fn needs(&self) -> Option<v0_2::Needs> {
        match &self.exports {
            Exports::ValidatorV2(_, needs) | Exports::EnricherV2(_, needs) => *needs,
            Exports::Validator(_) | Exports::Enricher(_) => None,
        }
    }

    /// A fresh CPU budget and log budget, for what follows until the next.
    fn start_budget(&mut self) {
        let state = self.store.data_mut();
        state.budget = Budget::start(state.cpu_budget_ms);
        state.log_budget = state.log_lines;
        self.store.set_epoch_deadline(1);
    }

    /// One call with `events` and its own CPU budget, without splitting and
    /// without the one-result-per-event check. For measuring bare calls and
    /// transport.
    pub fn call_once(&mut self, events: &[Event]) -> Result<BatchResults, CallError> {
        self.start_budget();
        self.raw_call(events)
    }

    /// The call itself, within whatever budget is running. A 0.2 call
    /// encodes the events into one batch first (part of its transport).
    fn raw_call(&mut self, events: &[Event]) -> Result<BatchResults, CallError> {
        let store = &mut self.store;
        match &self.exports {
            Exports::Validator(v) => v
                .sluice_plugin_validate()
                .call_validate(&mut *store, events)
                .map(BatchResults::Verdicts),
            Exports::Enricher(e) => e
                .sluice_plugin_enrich()
                .call_enrich(&mut *store, events)
                .map(BatchResults::Enriched),
            Exports::ValidatorV2(v, needs) => {
                let batch = batch::encode(events, needs.ok_or_else(not_initialised)?);
                v.sluice_plugin_validate()
                    .call_validate(&mut *store, &batch)
                    .map(|verdicts| {
                        BatchResults::Verdicts(verdicts.into_iter().map(from_v2).collect())
                    })
            }
            Exports::EnricherV2(e, needs) => {
                let batch = batch::encode(events, needs.ok_or_else(not_initialised)?);
                e.sluice_plugin_enrich()
                    .call_enrich(&mut *store, &batch)
                    .map(BatchResults::Patches)
            }
        }
        .map_err(|e| classify(store, e))
    }
}

/// A 0.2 call before a successful `init` is a host bug; it fails the call
/// rather than guessing what the plugin reads.
fn not_initialised() -> CallError {
    CallError::Contract("called before a successful init".to_owned())
}

/// 0.2's verdict has 0.1's shape; the chain handles one type.
fn from_v2(verdict: v0_2::Verdict) -> Verdict {
    match verdict {
        v0_2::Verdict::Accept => Verdict::Accept,
        v0_2::Verdict::Reject(r) => Verdict::Reject(bindings::Rejection {
            code: r.code,
            message: r.message,
        }),
    }
}

pub(super) fn classify(store: &mut Store<PluginState>, err: wasmtime::Error) -> CallError {
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => store
                .data_mut()
                .interrupted
                .take()
                .unwrap_or(CallError::Trap(trap.to_string())),
            other => CallError::Trap(other.to_string()),
        };
    }
    // A guest that called `exit`: its status is all there is to say.
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return CallError::Trap(format!("exited with status {}", exit.0));
    }
    tracing::debug!(error = %format!("{err:#}"), "plugin call failed");
    // The chain without wasmtime's backtrace context (guest addresses and
    // function names: for the log above, not for the client).
    let text = without_backtrace(
        &err.chain()
            .map(|e| e.to_string())
            .filter(|m| !m.contains("wasm backtrace:"))
            .collect::<Vec<_>>()
            .join(": "),
    );
    if let Some(what) = text.split(super::state::BLOCKING_REFUSED).nth(1) {
        return CallError::Blocked(what.trim_start_matches(": ").to_owned());
    }
    if text.contains("pooling allocator") || text.contains("maximum concurrent") {
        CallError::Capacity(text)
    } else if text.contains("memory") && text.contains("alloc") {
        CallError::Memory(text)
    } else {
        CallError::Trap(text)
    }
}

/// The error text up to wasmtime's `wasm backtrace:` block: addresses and
/// function names of the guest are for the operator's log, not for the
/// client whose event failed (the failure message reaches it).
fn without_backtrace(text: &str) -> String {
    let cut = text.find("wasm backtrace:").map_or(text, |at| &text[..at]);
    let cut = cut.trim_end().trim_end_matches(':').trim_end();
    let cut = cut.strip_suffix("error while executing at").unwrap_or(cut);
    let cut = cut.trim_end().trim_end_matches(':').trim_end();
    if cut.is_empty() {
        "the plugin failed (details in the gateway log)".to_owned()
    } else {
        cut.replace('\n', " ")
    }
}

fn init_result(result: Result<(), PluginError>) -> Result<(), CallError> {
    result.map_err(|err| match err {
        PluginError::InvalidConfig(msg) => CallError::InvalidConfig(msg),
        PluginError::Other(msg) => CallError::Contract(format!("init failed: {msg}")),
    })
}

fn init_result_v2(
    result: Result<v0_2::Needs, v0_2::PluginError>,
) -> Result<v0_2::Needs, CallError> {
    result.map_err(|err| match err {
        v0_2::PluginError::InvalidConfig(msg) => CallError::InvalidConfig(msg),
        v0_2::PluginError::Other(msg) => CallError::Contract(format!("init failed: {msg}")),
    })
}

fn check_len(expected: usize, got: usize) -> Result<(), CallError> {
    if expected == got {
        Ok(())
    } else {
        Err(CallError::WrongLength { expected, got })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bytes: usize) -> Event {
        Event {
            schema_version: 1,
            properties: "x".repeat(bytes),
            ..crate::convert::empty_event()
        }
    }

    #[test]
    fn clients_are_not_shown_the_guests_backtrace() {
        // The shape wasmtime 48 gives a guest error with its context.
        let text = "error while executing at wasm backtrace:\n    0: 0x1d2f3 - <unknown>!core::panicking::panic\n    1: 0x2a0 - validate";
        assert_eq!(
            without_backtrace(text),
            "the plugin failed (details in the gateway log)"
        );
        let text = "failed to flush: stream closed\n\nwasm backtrace:\n    0: 0x1 - f";
        assert_eq!(without_backtrace(text), "failed to flush: stream closed");
        assert_eq!(without_backtrace("plain reason"), "plain reason");
    }

    #[test]
    fn batches_are_split_by_count_and_bytes() {
        let config = RuntimeSettings {
            max_events_per_call: 3,
            max_bytes_per_call: 100,
            ..RuntimeSettings::default()
        };
        let sizes = |events: &[Event]| -> Vec<usize> {
            Chunks::new(events, &config).map(<[Event]>::len).collect()
        };
        let small: Vec<Event> = (0..7).map(|_| event(10)).collect();
        assert_eq!(sizes(&small), [3, 3, 1]);
        let large: Vec<Event> = (0..5).map(|_| event(60)).collect();
        assert_eq!(sizes(&large), [1, 1, 1, 1, 1]);
        // An event over the byte bound still goes, alone.
        assert_eq!(sizes(&[event(500), event(10), event(10)]), [1, 2]);
        assert!(sizes(&[]).is_empty());
    }
}
