//! Running a team's chain over a batch: validators in order, then enrichers,
//! each plugin seeing only the events still alive. Every failure is contained
//! and resolved by the failing plugin's [`FailurePolicy`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::{Limits, Reject, RejectCode};

use crate::bindings::{Enriched, Event, Verdict, v0_2};
use crate::convert::check_enriched;
use crate::patch;
use crate::registry::FailurePolicy;
use crate::runtime::{BatchResults, CallError, CompiledPlugin, InstancePool, PluginTag, Runtime};
use crate::stats::PluginStats;

/// One plugin in a chain, ready to call.
#[derive(Debug, Clone)]
pub struct ChainPlugin {
    pub tag: PluginTag,
    pub compiled: CompiledPlugin,
    pub config: Arc<str>,
    pub policy: FailurePolicy,
    pub stats: Arc<PluginStats>,
    /// Initialised instances of this version and configuration, reused
    /// across batches.
    pub instances: Arc<InstancePool>,
    /// The event names the plugin runs on (`events` in its record); `None`:
    /// every event.
    pub events: Option<Arc<HashSet<String>>>,
}

impl ChainPlugin {
    /// Which of `events` this plugin runs on, as positions: `None` when it
    /// runs on all of them (no filter, or every name matches).
    fn select(&self, events: &[Event]) -> Option<Vec<usize>> {
        let names = self.events.as_ref()?;
        let picked: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| names.contains(e.name.as_str()))
            .map(|(k, _)| k)
            .collect();
        (picked.len() < events.len()).then_some(picked)
    }

    /// Whether this chain plugin runs with the event filter `names` (a
    /// record's `events`, free of duplicates; empty: every event).
    pub fn runs_on(&self, names: &[String]) -> bool {
        match &self.events {
            None => names.is_empty(),
            Some(set) => set.len() == names.len() && names.iter().all(|n| set.contains(n)),
        }
    }
}

/// An event moved out of a batch, leaving an empty one (no allocation) in
/// its place until it is put back.
fn take_event(slot: &mut Event) -> Event {
    std::mem::replace(slot, crate::convert::empty_event())
}

/// A team's plugins in execution order. Immutable: a new upload builds a new
/// chain and swaps it in, so a batch runs against one consistent chain.
#[derive(Debug, Clone, Default)]
pub struct TeamChain {
    pub plugins: Vec<ChainPlugin>,
}

impl TeamChain {
    /// The team whose chain this is (every plugin of it is that team's).
    pub fn team(&self) -> &str {
        self.plugins.first().map_or("", |p| &p.tag.team)
    }
}

/// What the chain decided for one event.
#[derive(Debug)]
pub enum Fate {
    /// Continue to `events.raw` as admitted: no enricher changed it.
    Keep,
    /// Continue to `events.raw` as an enricher changed it (to be checked
    /// against the contract again).
    Changed(Event),
    /// Refused; the client sees the reason.
    Reject(Reject),
    /// Accepted but diverted to `events.rejected` (plugin failure, policy
    /// `dead_letter`); the admitted event is what gets written there.
    DeadLetter(Reject),
}

/// Called when a plugin fails; decides whether it should be disabled.
pub type OnFailure<'a> = &'a dyn Fn(&ChainPlugin, u64, &CallError);

/// The events still in the chain, in order, where each came from, and
/// whether an enricher changed it. Events stay where they are: a plugin is
/// handed `&alive.events`, changes are written in place, and the vectors are
/// compacted only when a plugin removed some (moving a batch of WIT events
/// around per plugin costs more than the plugins' own bookkeeping).
struct Alive {
    events: Vec<Event>,
    origin: Vec<usize>,
    changed: Vec<bool>,
}

impl Alive {
    /// Drops the events whose `keep` is false, keeping the order.
    fn retain(&mut self, keep: &[bool]) {
        retain_flagged(&mut self.events, keep);
        retain_flagged(&mut self.origin, keep);
        retain_flagged(&mut self.changed, keep);
    }
}

/// Keeps `items[i]` where `keep[i]` (`Vec::retain` visits in order, once).
fn retain_flagged<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    items.retain(|_| *flags.next().unwrap_or(&true));
}

impl TeamChain {
    /// Runs every plugin in order over the events still alive and returns
    /// each event's fate, in the order of `events`.
    /// An enricher's changed event must pass `limits` (the gateway's event
    /// rules) or the call counts as that plugin's failure.
    pub fn run(
        &self,
        runtime: &Runtime,
        events: Vec<Event>,
        limits: &Limits,
        on_failure: OnFailure<'_>,
    ) -> Vec<Fate> {
        let mut batch = ChainBatch::new(events);
        for plugin in &self.plugins {
            if batch.alive.events.is_empty() {
                break;
            }
            batch.run_plugin(runtime, plugin, limits, on_failure);
        }
        batch.finish()
    }
}

/// A batch on its way through a chain: the events still alive, and the
/// fates decided so far by position in the original batch.
struct ChainBatch {
    alive: Alive,
    decided: Vec<Option<Fate>>,
}

impl ChainBatch {
    fn new(events: Vec<Event>) -> Self {
        let n = events.len();
        Self {
            alive: Alive {
                events,
                origin: (0..n).collect(),
                changed: vec![false; n],
            },
            decided: (0..n).map(|_| None).collect(),
        }
    }

    /// One plugin over the alive events it runs on. The events it decides
    /// (rejects, or fails on under a policy that stops them) leave the batch.
    fn run_plugin(
        &mut self,
        runtime: &Runtime,
        plugin: &ChainPlugin,
        limits: &Limits,
        on_failure: OnFailure<'_>,
    ) {
        // A plugin with an event filter gets only its events; `at(j)` is
        // where the call's `j`th event sits in the batch.
        let picked = plugin.select(&self.alive.events);
        if picked.as_ref().is_some_and(Vec::is_empty) {
            return;
        }
        let at = |j: usize| picked.as_ref().map_or(j, |picked| picked[j]);
        let count = picked.as_ref().map_or(self.alive.events.len(), Vec::len);
        let kind = plugin.compiled.kind().as_str();
        let span = tracing::info_span!(
            "plugin",
            otel.name = %format_args!("plugin {}", plugin.tag.name),
            plugin.name = %plugin.tag.name,
            plugin.version = %plugin.tag.version,
            plugin.kind = kind,
            events = count as i64,
            rejected = tracing::field::Empty,
            failed = tracing::field::Empty,
            limit = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let _entered = span.enter();
        let (outcome, took) = self.call_picked(runtime, plugin, limits, picked.as_deref());
        let result = if outcome.is_ok() { "ok" } else { "failed" };
        ::metrics::histogram!(crate::metrics::PLUGIN_DURATION, "kind" => kind).record(took);
        ::metrics::counter!(crate::metrics::PLUGIN_CALLS, "kind" => kind, "result" => result)
            .increment(1);
        let mut keep = vec![true; self.alive.events.len()];
        match outcome {
            Ok(results) => {
                let (rejects, failed, breach) = self.take_results(plugin, results, at, &mut keep);
                span.record("rejected", rejects as i64);
                span.record("failed", failed as i64);
                match breach {
                    None => plugin.stats.success(count, rejects, took),
                    // A result that breaks the contract is the plugin's
                    // fault like a trap: a failed call, logged, and counted
                    // towards disabling the plugin.
                    Some(reason) => {
                        let err = CallError::Contract(reason);
                        span.record("error", tracing::field::display(&err));
                        let consecutive = plugin.stats.failure(count, &err.to_string(), took);
                        tracing::warn!(
                            team = %plugin.tag.team, plugin = %plugin.tag.name, version = %plugin.tag.version,
                            error = %err, consecutive, policy = ?plugin.policy, "plugin broke the contract"
                        );
                        on_failure(plugin, consecutive, &err);
                    }
                }
            }
            Err(err) => {
                span.record("failed", count as i64);
                span.record("error", tracing::field::display(&err));
                if let Some(limit) = err.limit() {
                    span.record("limit", limit);
                }
                let consecutive = plugin.stats.failure(count, &err.to_string(), took);
                tracing::warn!(
                    team = %plugin.tag.team, plugin = %plugin.tag.name, version = %plugin.tag.version,
                    error = %err, consecutive, policy = ?plugin.policy, "plugin call failed"
                );
                on_failure(plugin, consecutive, &err);
                let reason = err.to_string();
                for k in (0..count).map(at) {
                    self.decide(&mut keep, k, apply_policy(plugin, &reason));
                }
            }
        }
        if keep.contains(&false) {
            self.alive.retain(&keep);
        }
    }

    /// A successful call's results, event by event: changes written in
    /// place, decided events marked to leave. Returns the numbers rejected
    /// and failed, and the first breach of the contract, if any.
    fn take_results(
        &mut self,
        plugin: &ChainPlugin,
        results: Vec<PerEventResult>,
        at: impl Fn(usize) -> usize,
        keep: &mut [bool],
    ) -> (usize, usize, Option<String>) {
        let (mut rejects, mut failed) = (0, 0_usize);
        let mut breach = None;
        for (j, result) in results.into_iter().enumerate() {
            let k = at(j);
            match result {
                Ok(None) => {}
                Ok(Some(new)) => {
                    self.alive.events[k] = new;
                    self.alive.changed[k] = true;
                }
                Err(PerEvent::Rejected(reject)) => {
                    rejects += 1;
                    self.decide(keep, k, Some(Fate::Reject(reject)));
                }
                Err(PerEvent::Failed(reason)) => {
                    failed += 1;
                    self.decide(keep, k, apply_policy(plugin, &reason));
                }
                Err(PerEvent::Breach(reason)) => {
                    failed += 1;
                    self.decide(keep, k, apply_policy(plugin, &reason));
                    breach.get_or_insert(reason);
                }
            }
        }
        (rejects, failed, breach)
    }

    /// Calls `plugin` on the alive events, or only on those at `picked`:
    /// those are moved out of the batch for the call and back after it.
    /// Returns the call's time alone, moves excluded (what the plugin's
    /// statistics and duration metric count).
    fn call_picked(
        &mut self,
        runtime: &Runtime,
        plugin: &ChainPlugin,
        limits: &Limits,
        picked: Option<&[usize]>,
    ) -> (Result<Vec<PerEventResult>, CallError>, Duration) {
        let timed = |batch: &[Event]| {
            let started = Instant::now();
            let outcome = call(runtime, plugin, limits, batch);
            (outcome, started.elapsed())
        };
        let Some(picked) = picked else {
            return timed(&self.alive.events);
        };
        let subset: Vec<Event> = picked
            .iter()
            .map(|&k| take_event(&mut self.alive.events[k]))
            .collect();
        let result = timed(&subset);
        for (&k, event) in picked.iter().zip(subset) {
            self.alive.events[k] = event;
        }
        result
    }

    /// Gives the alive event at `k` its final fate, if any (`None`: it
    /// continues), and marks it to leave the batch.
    fn decide(&mut self, keep: &mut [bool], k: usize, fate: Option<Fate>) {
        if let Some(fate) = fate {
            keep[k] = false;
            self.decided[self.alive.origin[k]] = Some(fate);
        }
    }

    /// Every event's fate: the decided ones, and the survivors kept or
    /// changed.
    fn finish(self) -> Vec<Fate> {
        let Self { alive, mut decided } = self;
        let Alive {
            events,
            origin,
            changed,
        } = alive;
        for ((event, i), changed) in events.into_iter().zip(origin).zip(changed) {
            decided[i] = Some(if changed {
                Fate::Changed(event)
            } else {
                Fate::Keep
            });
        }
        // Every event is either decided or still alive, so each slot is set.
        debug_assert!(decided.iter().all(Option::is_some));
        decided
            .into_iter()
            .map(|fate| fate.unwrap_or(Fate::Keep))
            .collect()
    }
}

enum PerEvent {
    Rejected(Reject),
    /// The plugin said it could not process the event.
    Failed(String),
    /// The plugin's result for the event breaks the contract (a changed id,
    /// a forbidden or malformed patch).
    Breach(String),
}

/// `Ok(Some(e))` = replace with `e`; `Ok(None)` = keep as is.
type PerEventResult = Result<Option<Event>, PerEvent>;

fn call(
    runtime: &Runtime,
    plugin: &ChainPlugin,
    limits: &Limits,
    batch: &[Event],
) -> Result<Vec<PerEventResult>, CallError> {
    let tag = &plugin.tag;
    let results = runtime.run_batch(
        &plugin.compiled,
        &plugin.instances,
        tag,
        &plugin.config,
        batch,
    )?;
    // A changed event is held to a client's rules here, where the plugin
    // that changed it is known: a breach is that plugin's failed call.
    let checked = |changed: Event, original: &Event, json_from_host: bool| match check_enriched(
        original,
        &changed,
        limits,
        json_from_host,
    ) {
        Ok(()) => Ok(Some(changed)),
        Err(reason) => Err(PerEvent::Breach(reason)),
    };
    Ok(match results {
        BatchResults::Verdicts(verdicts) => verdicts
            .into_iter()
            .map(|verdict| match verdict {
                Verdict::Accept => Ok(None),
                Verdict::Reject(r) => Err(PerEvent::Rejected(Reject::new(
                    RejectCode::PluginRejected,
                    format!("{} {}: {}: {}", tag.name, tag.version, r.code, r.message),
                ))),
            })
            .collect(),
        BatchResults::Enriched(results) => results
            .into_iter()
            .zip(batch)
            .map(|(result, original)| match result {
                Enriched::Unchanged => Ok(None),
                // 0.1: the guest wrote the whole event, JSON included.
                Enriched::Changed(changed) => checked(changed, original, false),
                Enriched::Failed(reason) => Err(PerEvent::Failed(reason)),
            })
            .collect(),
        BatchResults::Patches(results) => results
            .into_iter()
            .zip(batch)
            .map(|(result, original)| match result {
                v0_2::Enriched::Unchanged => Ok(None),
                v0_2::Enriched::Patched(text) => match patch::apply(original, &text) {
                    Ok(changed) => checked(changed, original, true),
                    Err(e) => Err(PerEvent::Breach(e.to_string())),
                },
                v0_2::Enriched::Failed(reason) => Err(PerEvent::Failed(reason)),
            })
            .collect(),
    })
}

/// What the failing plugin's policy makes of an event it failed on: `None`
/// when the event continues (`pass`), else its final fate.
fn apply_policy(plugin: &ChainPlugin, reason: &str) -> Option<Fate> {
    let reject = || {
        Reject::new(
            RejectCode::PluginFailed,
            format!(
                "plugin {} {} failed: {reason}",
                plugin.tag.name, plugin.tag.version
            ),
        )
    };
    match plugin.policy {
        FailurePolicy::Pass => None,
        FailurePolicy::Reject => Some(Fate::Reject(reject())),
        FailurePolicy::DeadLetter => Some(Fate::DeadLetter(reject())),
    }
}
