//! What one run of `sluice-bench plugins` measured, as JSON-serialisable
//! data ([`super::report`] renders it).

use serde::{Deserialize, Serialize};
use sluice_plugin_host::runtime::RuntimeSettings;

use super::{languages, native, pipeline};
use crate::results::{Environment, WorkloadInfo};

/// Mean and percentiles of a set of timings, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub samples: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

impl Summary {
    /// From nanosecond samples.
    pub fn from_ns(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let at = |p: f64| values[((n as f64 - 1.0) * p).round() as usize] / 1000.0;
        Self {
            samples: n,
            mean_us: values.iter().sum::<f64>() / n as f64 / 1000.0,
            p50_us: at(0.50),
            p99_us: at(0.99),
            min_us: values[0] / 1000.0,
            max_us: values[n - 1] / 1000.0,
        }
    }
}

/// A loaded plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub kind: String,
    pub config: String,
    /// The component as uploaded.
    pub component_bytes: u64,
    /// Its compiled code image in memory.
    pub image_bytes: u64,
    pub compile_ms: f64,
    /// RSS growth when it was compiled first (includes compiler warm-up).
    pub rss_first_compile_bytes: i64,
    /// RSS growth when a second copy was compiled and kept.
    pub rss_second_copy_bytes: i64,
}

/// One throughput measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputCell {
    pub round: usize,
    pub batch: usize,
    pub setup: String,
    pub batches: u64,
    pub events: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Plugin calls that failed (their events were rejected by policy).
    #[serde(default)]
    pub failed_calls: u64,
    pub wall_seconds: f64,
    /// CPU time of the measuring thread (`/proc/thread-self/schedstat`).
    pub cpu_seconds: f64,
}

impl ThroughputCell {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall_seconds.max(1e-9)
    }

    pub fn cpu_us_per_event(&self) -> f64 {
        self.cpu_seconds * 1e6 / (self.events.max(1) as f64)
    }
}

/// One plugin's call at one batch size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyRow {
    pub plugin: String,
    pub batch: usize,
    /// `Runtime::validate` / `enrich`: fresh store and instance, `init`,
    /// the call, drop (what the chain times per plugin).
    pub fresh: Summary,
    /// The same batch through `Runtime::run_batch` on a warm pool.
    pub reused: Summary,
    /// Mean wall time of the fresh calls during which the thread was never
    /// descheduled, and how many of all calls those were.
    #[serde(deserialize_with = "null_as_nan")]
    pub fresh_undisturbed_us: f64,
    pub fresh_kept: usize,
    /// The same for the reused calls.
    #[serde(deserialize_with = "null_as_nan")]
    pub reused_undisturbed_us: f64,
    pub reused_kept: usize,
    /// Minor page faults per fresh call and per reused call.
    #[serde(default)]
    pub fresh_faults: f64,
    #[serde(default)]
    pub reused_faults: f64,
    /// Events the plugin changed (enrichers) or rejected (validators) in one
    /// batch.
    pub changed_or_rejected: usize,
    /// Calls that failed (left out of the timings): fresh, reused. On a
    /// busy machine this is the CPU budget, which is wall-clock time.
    #[serde(default)]
    pub failed: (usize, usize),
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Where the fixed cost of a call goes, per plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCosts {
    pub plugin: String,
    /// `Store::new` with the runtime's state, limiter and deadline.
    pub store: Summary,
    /// `InstancePre::instantiate` into that store.
    pub instantiate: Summary,
    /// Store + instantiate, timed as one (the goal's "instantiation").
    pub store_and_instantiate: Summary,
    /// Mean wall time of store + instantiate per instance, from groups of
    /// [`GROUP`](super::GROUP) instances created back to back, counting only
    /// groups during which the thread was never descheduled (so neighbours'
    /// time on this core is left out).
    #[serde(deserialize_with = "null_as_nan")]
    pub create_undisturbed_us: f64,
    /// The same for dropping them.
    #[serde(deserialize_with = "null_as_nan")]
    pub drop_undisturbed_us: f64,
    /// Groups kept (undisturbed) and measured, for creation.
    pub groups_kept: usize,
    pub groups: usize,
    /// The plugin's `init(config)`.
    pub init: Summary,
    /// The first call (0 events) on the new instance.
    pub first_empty_call: Summary,
    /// Dropping the store (returns the pool slot, resets its memory).
    pub drop: Summary,
    /// A 0-event call on a live, initialised instance: the host-to-guest
    /// call overhead (per call, from blocks of calls).
    pub empty_call: Summary,
    /// A 1-event call on a live instance (per call, from blocks).
    pub one_event_call: Summary,
    /// Mean wall time of the 0-event and 1-event calls on a live instance,
    /// over the blocks during which the thread was never descheduled.
    #[serde(deserialize_with = "null_as_nan")]
    pub empty_call_undisturbed_us: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub one_event_call_undisturbed_us: f64,
    /// 0-event blocks kept and measured.
    pub blocks_kept: usize,
    pub blocks: usize,
    /// `Runtime::validate`/`enrich` with 0 events: everything above, as the
    /// gateway does it.
    pub runtime_empty: Summary,
    /// `Runtime::validate`/`enrich` with 1 event.
    pub runtime_one: Summary,
}

/// Passing events into a guest that does nothing with them, on a live
/// instance: in 0.1 the `wrong_length` fixture (a bare wit-bindgen validator
/// that drops its input and returns one verdict fewer), in 0.2 the `ignore`
/// fixture (one `accept` per event), asking for every field or for none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransportRow {
    /// Which interface and what was moved, e.g. `0.2.0, every field`.
    #[serde(default)]
    pub path: String,
    pub batch: usize,
    pub wall: Summary,
    pub cpu_us: f64,
    /// (CPU per call − CPU per 0-event call) ÷ batch.
    pub cpu_us_per_event: f64,
}

/// Resident memory at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySample {
    pub label: String,
    pub rss_bytes: u64,
    pub anon_bytes: u64,
    pub file_bytes: u64,
    pub shmem_bytes: u64,
}

/// N live instances of one plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldInstances {
    pub plugin: String,
    pub instances: usize,
    pub batch: usize,
    pub before: MemorySample,
    pub after_init: MemorySample,
    pub after_batch: MemorySample,
    pub after_drop: MemorySample,
}

impl HeldInstances {
    /// RSS growth per instance from `before` to `sample`.
    pub fn per_instance(&self, sample: &MemorySample) -> f64 {
        (sample.rss_bytes as f64 - self.before.rss_bytes as f64) / self.instances.max(1) as f64
    }
}

/// Reads back what serde_json wrote for NaN (no undisturbed sample): null.
pub fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Everything one run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginResults {
    pub environment: Environment,
    pub workload: WorkloadInfo,
    pub runtime: RuntimeSettings,
    pub rounds: usize,
    pub slice_seconds: f64,
    pub plugins: Vec<PluginInfo>,
    pub throughput: Vec<ThroughputCell>,
    pub latency: Vec<LatencyRow>,
    pub calls: Vec<CallCosts>,
    #[serde(default)]
    pub transport: Vec<TransportRow>,
    #[serde(default)]
    pub conversion: Vec<pipeline::ConversionCosts>,
    #[serde(default)]
    pub native: Vec<native::NativeRow>,
    /// `required-properties` built in Rust, TypeScript and Python.
    #[serde(default)]
    pub languages: Vec<languages::LanguageRow>,
    pub memory: Vec<MemorySample>,
    pub held: Vec<HeldInstances>,
}
