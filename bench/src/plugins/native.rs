//! The native floor: the three example plugins' own Rust code compiled for
//! the host (LLVM, no Wasm, no canonical ABI), run on the same events with
//! the same configurations, through the same SDK code a component runs: the
//! batch as the host encodes it for `sluice:plugin@0.2.0`, read by the SDK's
//! `Batch`, one call per event. What a plugin costs here is the work it
//! does, whatever runs it; the difference to its cost in the runtime is what
//! Wasm (Cranelift's code, the transport, the host's bookkeeping) adds.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_plugin_host::batch;
use sluice_plugin_host::bindings::{Event, v0_2};
use sluice_plugin_sdk::{Batch, Enricher, Fields, Validator};

use super::{PLUGINS, ThreadCpu, Undisturbed};

/// One plugin at one batch size, natively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeRow {
    pub plugin: String,
    pub batch: usize,
    /// µs per event to copy the encoded batch (text and spans) the plugin
    /// is handed: what the canonical ABI copies into the guest, mean over
    /// undisturbed calls.
    #[serde(deserialize_with = "super::null_as_nan")]
    pub copy_us: f64,
    /// µs per event in the SDK's batch reader and the plugin's own
    /// `validate`/`enrich` (dropping the batch and results included), mean
    /// over undisturbed calls.
    #[serde(deserialize_with = "super::null_as_nan")]
    pub own_us: f64,
    /// µs per event to drop a copied batch (part of `own_us`: the guest
    /// frees the batch it was handed when done).
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

/// The batch a 0.2 plugin reading `fields` receives for `events`, encoded
/// by the host's own encoder (spans included, as the Rust SDK asks).
fn encoded(events: &[Event], fields: Fields) -> (String, Vec<u32>) {
    let mut wanted = v0_2::Fields::empty();
    for (flag, sdk) in [
        (v0_2::Fields::USER_ID, Fields::USER_ID),
        (v0_2::Fields::TIMES, Fields::TIMES),
        (v0_2::Fields::SCHEMA_VERSION, Fields::SCHEMA_VERSION),
        (v0_2::Fields::PROPERTIES, Fields::PROPERTIES),
        (v0_2::Fields::CONTEXT, Fields::CONTEXT),
    ] {
        if fields.contains(sdk) {
            wanted |= flag;
        }
    }
    let batch = batch::encode(
        events,
        v0_2::Needs {
            fields: wanted,
            spans: true,
        },
    );
    (batch.events, batch.spans)
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

    /// What the plugin declares it reads.
    fn fields(&self) -> Fields {
        match self {
            Self::Required(_) => required_properties::RequiredProperties::FIELDS,
            Self::Bots(_) => bot_filter::BotFilter::FIELDS,
            Self::Pii(_) => pii_scrubber::PiiScrubber::FIELDS,
        }
    }

    /// One call on a batch handed over as the guest gets it; how many
    /// events were rejected or changed.
    fn call(&self, (text, spans): (String, Vec<u32>)) -> usize {
        use sluice_plugin_sdk::{Enriched, Verdict};
        let Ok(batch) = Batch::new(text, spans, self.fields()) else {
            return usize::MAX;
        };
        let rejected = |verdicts: Vec<Verdict>| {
            verdicts
                .iter()
                .filter(|v| !matches!(v, Verdict::Accept))
                .count()
        };
        match self {
            Self::Required(plugin) => rejected(batch.validate_with(plugin)),
            Self::Bots(plugin) => rejected(batch.validate_with(plugin)),
            Self::Pii(plugin) => batch
                .enrich_with(plugin)
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
        let encoded = encoded(events, plugin.fields());
        let changed_or_rejected = plugin.call(encoded.clone());
        anyhow::ensure!(
            changed_or_rejected != usize::MAX,
            "{}: the SDK refused the host's batch",
            spec.name
        );
        let (mut copy, mut own) = (Undisturbed::default(), Undisturbed::default());
        let mut dropping = Undisturbed::default();
        let cpu = ThreadCpu::open();
        let started = Instant::now();
        let mut calls = 0;
        while calls < MIN_CALLS || started.elapsed() < time {
            let s0 = cpu.switches();
            let t0 = Instant::now();
            let batch = encoded.clone();
            let t1 = Instant::now();
            let s1 = cpu.switches();
            std::hint::black_box(plugin.call(std::hint::black_box(batch)));
            let t2 = Instant::now();
            let s2 = cpu.switches();
            let spare = std::hint::black_box(encoded.clone());
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
