//! The native floor: the three example plugins' own Rust code compiled for
//! the host (LLVM, no Wasm, no canonical ABI), run on the same events with
//! the same configurations. What a plugin costs here is the work it does,
//! whatever runs it; the difference to its cost in the runtime is what Wasm
//! (Cranelift's code, the transport, the host's bookkeeping) adds.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_core::Event as Admitted;
use sluice_plugin_sdk::{Enricher, Event, Validator};

use super::{PLUGINS, ThreadCpu, Undisturbed};

/// One plugin at one batch size, natively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeRow {
    pub plugin: String,
    pub batch: usize,
    /// µs per event to build the owned SDK events the plugin is handed (a
    /// clone of the batch: what the guest's export glue builds from the
    /// canonical-ABI lists), mean over undisturbed calls.
    #[serde(deserialize_with = "super::null_as_nan")]
    pub copy_us: f64,
    /// µs per event in the plugin's own `validate`/`enrich` (dropping the
    /// events and results included), mean over undisturbed calls.
    #[serde(deserialize_with = "super::null_as_nan")]
    pub own_us: f64,
    /// µs per event to drop a batch of the owned events (part of `own_us`:
    /// the SDK hands a plugin owned events, which it drops when done).
    #[serde(default = "nan", deserialize_with = "super::null_as_nan")]
    pub drop_us: f64,
    /// Undisturbed calls kept / calls made.
    pub kept: usize,
    pub calls: usize,
    /// Events rejected (validators) or changed (the enricher) per batch:
    /// the same decisions the Wasm build makes.
    pub changed_or_rejected: usize,
}

fn nan() -> f64 {
    f64::NAN
}

/// The SDK's event for an admitted one: the fields the WIT record carries.
pub fn sdk_event(event: &Admitted<'_>) -> Event {
    Event {
        event_id: event.event_id.to_string(),
        team_id: event.team_id.to_string(),
        name: event.event.to_string(),
        user_id: event.user_id.to_string(),
        timestamp_ms: event.timestamp.as_millis(),
        received_at_ms: event.received_at.as_millis(),
        schema_version: event.schema_version,
        properties: event.properties.get().to_owned(),
        context: event.context.map(|c| c.get().to_owned()),
    }
}

/// A plugin built natively from its configuration.
enum Native {
    Required(required_properties::RequiredProperties),
    Bots(bot_filter::BotFilter),
    Pii(pii_scrubber::PiiScrubber),
}

impl Native {
    fn init(name: &str, config: &str) -> anyhow::Result<Self> {
        let failed = |e| anyhow::anyhow!("{name}: init: {e:?}");
        Ok(match name {
            "required_properties" => Self::Required(Validator::init(config).map_err(failed)?),
            "bot_filter" => Self::Bots(Validator::init(config).map_err(failed)?),
            "pii_scrubber" => Self::Pii(Enricher::init(config).map_err(failed)?),
            other => anyhow::bail!("no native build of plugin {other}"),
        })
    }

    /// One call; how many events were rejected or changed.
    fn call(&self, events: Vec<Event>) -> usize {
        use sluice_plugin_sdk::{Enriched, Verdict};
        let rejected = |verdicts: Vec<Verdict>| {
            verdicts
                .iter()
                .filter(|v| !matches!(v, Verdict::Accept))
                .count()
        };
        match self {
            Self::Required(plugin) => rejected(plugin.validate(events)),
            Self::Bots(plugin) => rejected(plugin.validate(events)),
            Self::Pii(plugin) => plugin
                .enrich(events)
                .iter()
                .filter(|e| !matches!(e, Enriched::Unchanged))
                .count(),
        }
    }
}

/// Times each example plugin natively on `events` (one batch), for `time`
/// per plugin, alternating the copy and the call.
pub fn measure(events: &[Event], time: Duration) -> anyhow::Result<Vec<NativeRow>> {
    const MIN_CALLS: usize = 200;
    let mut rows = Vec::new();
    for spec in &PLUGINS {
        let plugin = Native::init(spec.name, spec.config)
            .with_context(|| format!("native build of {}", spec.name))?;
        let changed_or_rejected = plugin.call(events.to_vec());
        let (mut copy, mut own) = (Undisturbed::default(), Undisturbed::default());
        let mut dropping = Undisturbed::default();
        let cpu = ThreadCpu::open();
        let started = Instant::now();
        let mut calls = 0;
        while calls < MIN_CALLS || started.elapsed() < time {
            let s0 = cpu.switches();
            let t0 = Instant::now();
            let batch = events.to_vec();
            let t1 = Instant::now();
            let s1 = cpu.switches();
            std::hint::black_box(plugin.call(std::hint::black_box(batch)));
            let t2 = Instant::now();
            let s2 = cpu.switches();
            let spare = std::hint::black_box(events.to_vec());
            let s3 = cpu.switches();
            let t3 = Instant::now();
            drop(spare);
            let t4 = Instant::now();
            let s4 = cpu.switches();
            copy.add(s0 == s1, (t1 - t0).as_nanos() as f64, events.len());
            own.add(s1 == s2, (t2 - t1).as_nanos() as f64, events.len());
            dropping.add(s3 == s4, (t4 - t3).as_nanos() as f64, events.len());
            calls += 1;
        }
        rows.push(NativeRow {
            plugin: spec.name.to_owned(),
            batch: events.len(),
            copy_us: copy.mean_us(),
            own_us: own.mean_us(),
            drop_us: dropping.mean_us(),
            kept: own.kept,
            calls,
            changed_or_rejected,
        });
    }
    Ok(rows)
}
