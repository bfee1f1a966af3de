//! Running a team's chain over a batch: validators in order, then enrichers,
//! each plugin seeing only the events still alive. Every failure is contained
//! and resolved by the failing plugin's [`FailurePolicy`].

use std::sync::Arc;
use std::time::Instant;

use sluice_core::{Reject, RejectCode};

use super::bindings::{Enriched, Event, Verdict};
use super::registry::FailurePolicy;
use super::runtime::{BatchResults, CallError, CompiledPlugin, InstancePool, PluginTag, Runtime};
use super::stats::PluginStats;

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
}

/// A team's plugins in execution order. Immutable: a new upload builds a new
/// chain and swaps it in, so a batch runs against one consistent chain.
#[derive(Debug, Clone, Default)]
pub struct TeamChain {
    pub plugins: Vec<ChainPlugin>,
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
    /// `dead_letter`).
    DeadLetter(Event, Reject),
}

/// Called when a plugin fails; decides whether it should be disabled.
pub type OnFailure<'a> = &'a dyn Fn(&ChainPlugin, u64, &CallError);

enum Slot {
    /// Still in the chain; `true` once an enricher changed it.
    Alive(Event, bool),
    Done(Fate),
    Taken,
}

impl TeamChain {
    pub fn run(
        &self,
        runtime: &Runtime,
        events: Vec<Event>,
        on_failure: OnFailure<'_>,
    ) -> Vec<Fate> {
        let mut slots: Vec<Slot> = events
            .into_iter()
            .map(|event| Slot::Alive(event, false))
            .collect();
        for plugin in &self.plugins {
            let alive: Vec<usize> = (0..slots.len())
                .filter(|i| matches!(slots[*i], Slot::Alive(..)))
                .collect();
            if alive.is_empty() {
                break;
            }
            let (batch, changed): (Vec<Event>, Vec<bool>) = alive
                .iter()
                .map(|&i| match std::mem::replace(&mut slots[i], Slot::Taken) {
                    Slot::Alive(event, changed) => (event, changed),
                    _ => unreachable!("filtered to alive slots"),
                })
                .unzip();
            let kind = plugin.compiled.kind().as_str();
            let span = tracing::info_span!(
                "plugin",
                otel.name = %format_args!("plugin {}", plugin.tag.name),
                plugin.name = %plugin.tag.name,
                plugin.version = %plugin.tag.version,
                plugin.kind = kind,
                events = batch.len() as i64,
                rejected = tracing::field::Empty,
                failed = tracing::field::Empty,
                limit = tracing::field::Empty,
                error = tracing::field::Empty,
            );
            let _entered = span.enter();
            let started = Instant::now();
            let outcome = call(runtime, plugin, &batch);
            let took = started.elapsed();
            let result = if outcome.is_ok() { "ok" } else { "failed" };
            ::metrics::histogram!(crate::metrics::PLUGIN_DURATION, "kind" => kind).record(took);
            ::metrics::counter!(crate::metrics::PLUGIN_CALLS, "kind" => kind, "result" => result)
                .increment(1);
            match outcome {
                Ok(results) => {
                    let (mut rejects, mut failed) = (0, 0_usize);
                    let each = alive.iter().zip(batch).zip(changed).zip(results);
                    for (((&i, event), was_changed), result) in each {
                        slots[i] = match result {
                            Ok(None) => Slot::Alive(event, was_changed),
                            Ok(Some(new)) => Slot::Alive(new, true),
                            Err(PerEvent::Rejected(reject)) => {
                                rejects += 1;
                                Slot::Done(Fate::Reject(reject))
                            }
                            Err(PerEvent::Failed(reason)) => {
                                failed += 1;
                                apply_policy(plugin, event, was_changed, &reason)
                            }
                        };
                    }
                    span.record("rejected", rejects as i64);
                    span.record("failed", failed as i64);
                    plugin.stats.success(alive.len(), rejects, took);
                }
                Err(err) => {
                    span.record("failed", alive.len() as i64);
                    span.record("error", tracing::field::display(&err));
                    if let Some(limit) = err.limit() {
                        span.record("limit", limit);
                    }
                    let consecutive = plugin.stats.failure(alive.len(), &err.to_string(), took);
                    tracing::warn!(
                        team = %plugin.tag.team, plugin = %plugin.tag.name, version = %plugin.tag.version,
                        error = %err, consecutive, policy = ?plugin.policy, "plugin call failed"
                    );
                    on_failure(plugin, consecutive, &err);
                    let reason = err.to_string();
                    for ((&i, event), was_changed) in alive.iter().zip(batch).zip(changed) {
                        slots[i] = apply_policy(plugin, event, was_changed, &reason);
                    }
                }
            }
        }
        slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Alive(event, true) => Fate::Changed(event),
                Slot::Alive(_, false) => Fate::Keep,
                Slot::Done(fate) => fate,
                Slot::Taken => unreachable!("every taken slot is put back"),
            })
            .collect()
    }
}

enum PerEvent {
    Rejected(Reject),
    Failed(String),
}

/// `Ok(Some(e))` = replace with `e`; `Ok(None)` = keep as is.
type PerEventResult = Result<Option<Event>, PerEvent>;

fn call(
    runtime: &Runtime,
    plugin: &ChainPlugin,
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
                Enriched::Changed(changed) => {
                    if changed.event_id != original.event_id || changed.team_id != original.team_id
                    {
                        Err(PerEvent::Failed("changed event_id or team_id".to_owned()))
                    } else {
                        Ok(Some(changed))
                    }
                }
                Enriched::Failed(reason) => Err(PerEvent::Failed(reason)),
            })
            .collect(),
    })
}

fn apply_policy(plugin: &ChainPlugin, event: Event, changed: bool, reason: &str) -> Slot {
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
        FailurePolicy::Pass => Slot::Alive(event, changed),
        FailurePolicy::Reject => Slot::Done(Fate::Reject(reject())),
        FailurePolicy::DeadLetter => Slot::Done(Fate::DeadLetter(event, reject())),
    }
}
