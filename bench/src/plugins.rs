//! `sluice-bench plugins`: what a team's WebAssembly plugins cost the
//! gateway, measured in one process with the gateway's own plugin runtime.
//!
//! Phases, in this order, on one thread (memory last but sampled throughout):
//! 1. **Load**: `Runtime::new` with the gateway's default limits, then
//!    `Runtime::compile` of the three example plugins; resident memory after
//!    each step, and after compiling a second copy of each (the steady cost
//!    of one more loaded plugin, once the compiler's one-off allocations
//!    are behind us).
//! 2. **Throughput** of the ingest stage ([`pipeline`]) per batch size, with
//!    no plugins, conversion only (an empty chain), one plugin and three,
//!    interleaved over several rounds; wall clock and this thread's CPU time.
//! 3. **Per-plugin latency** of one batch through the runtime as the chain
//!    runs it (`Runtime::run_batch` on a warm instance pool), alternating
//!    with the same batch on a fresh instance (`Runtime::validate`/`enrich`:
//!    what a batch costs when no instance is parked).
//! 4. **Instantiation and call overhead** with the runtime's instance API
//!    (`Runtime::store`, `instantiate_in`, `PluginInstance`): store
//!    creation, instantiation, `init`, the first call and the drop, timed
//!    separately; a bare call on a live instance; and `Runtime::validate` /
//!    `Runtime::enrich` on an empty batch as the end-to-end cross-check.
//! 5. **Memory of live instances**: N instances of each plugin held at once,
//!    after `init` and after a batch, then dropped.
//!
//! [`report`] renders the results into the `## Plugins` section of
//! `docs/benchmarks.md`.

pub mod gateway;
pub mod languages;
pub mod native;
pub mod neighbour;
pub mod pipeline;
pub mod probe;
pub mod report;
pub mod upload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_core::Timestamp;
use sluice_plugin_host::bindings::{Enriched, Event, v0_2};
use sluice_plugin_host::chain::{ChainPlugin, TeamChain};
use sluice_plugin_host::convert::to_wit;
use sluice_plugin_host::registry::FailurePolicy;
use sluice_plugin_host::runtime::{
    BatchResults, InstancePool, PluginInstance, PluginKind, PluginTag, Runtime, RuntimeSettings,
};

use crate::procfs;
use crate::results::{Environment, WorkloadInfo};
use crate::suite::{self, Subject, WorkloadOptions};
use crate::workload::{TEAM, Workload};

use self::pipeline::{BatchTally, Ingest};

/// One example plugin: file stem, world, configuration used.
#[derive(Debug, Clone, Copy)]
pub struct PluginSpec {
    pub name: &'static str,
    pub kind: PluginKind,
    pub config: &'static str,
}

/// The chain of three, in the gateway's order (validators, then enrichers).
/// The configurations are realistic for the workload: every event has the
/// required properties and a browser user agent, so all are accepted, and
/// every event carries `context.ip`, so the scrubber changes every event.
pub const PLUGINS: [PluginSpec; 3] = [
    PluginSpec {
        name: "required_properties",
        kind: PluginKind::Validator,
        config: r#"{"required": {"*": ["product_id", "session_id"], "Checkout Started": ["price", "currency", "quantity"], "Product Added": ["sku", "price"]}}"#,
    },
    PluginSpec {
        name: "bot_filter",
        kind: PluginKind::Validator,
        config: "{}",
    },
    PluginSpec {
        name: "pii_scrubber",
        kind: PluginKind::Enricher,
        config: r#"{"mode": "hash", "salt": "bench-salt"}"#,
    },
];

/// The plugin setups the throughput phase compares.
pub const SETUPS: [(&str, &str); 5] = [
    ("none", "no plugins: the team has no chain"),
    (
        "convert",
        "empty chain: to_wit and back, no plugin called; unchanged events serialised as admitted",
    ),
    ("1", "required_properties"),
    ("3", "required_properties, bot_filter, pii_scrubber"),
    (
        "3, filtered",
        "the same three, pii_scrubber limited to `Checkout Started` (one event name in six) by an event filter",
    ),
];

/// The event name the `3, filtered` setup runs the scrubber on.
pub const FILTERED_EVENT: &str = "Checkout Started";

#[derive(Debug, Clone)]
pub struct Options {
    /// Directory with `required_properties.wasm`, `bot_filter.wasm`,
    /// `pii_scrubber.wasm` (from `plugins/build.sh`).
    pub components: PathBuf,
    pub batches: Vec<usize>,
    pub rounds: usize,
    /// Measured time per throughput cell (setup × batch × round).
    pub slice: Duration,
    /// Measured time per plugin × batch in the latency phase.
    pub latency_time: Duration,
    /// Iterations of the instantiation probe per plugin.
    pub probe_iterations: usize,
    /// Instances of each plugin held at once in the memory phase.
    pub instances: usize,
    pub workload: WorkloadOptions,
    pub commit: Option<String>,
}

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
    /// [`GROUP`] instances created back to back, counting only groups during
    /// which the thread was never descheduled (so neighbours' time on this
    /// core is left out).
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

/// CPU time, context switches and page faults of the thread that opened
/// it: `/proc/thread-self/schedstat` (nanoseconds spent on a CPU, and how
/// many times it was scheduled in) and `/proc/thread-self/stat` (minor
/// faults), kept open so a reading costs one `pread`.
///
/// The kernel updates a thread's CPU time at scheduler ticks (4 ms here), so
/// [`ThreadCpu::ns`] is exact over long intervals and only a sample over
/// short ones; the switch count is exact at any length.
#[derive(Debug)]
pub struct ThreadCpu {
    schedstat: Option<std::fs::File>,
    stat: Option<std::fs::File>,
}

fn pread<'b>(file: Option<&std::fs::File>, buf: &'b mut [u8]) -> Option<&'b str> {
    use std::os::unix::fs::FileExt;
    let n = file?.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

impl ThreadCpu {
    pub fn open() -> Self {
        Self {
            schedstat: std::fs::File::open("/proc/thread-self/schedstat").ok(),
            stat: std::fs::File::open("/proc/thread-self/stat").ok(),
        }
    }

    /// Nanoseconds the opening thread has run so far (0 if unreadable).
    pub fn ns(&self) -> u64 {
        let mut buf = [0u8; 128];
        pread(self.schedstat.as_ref(), &mut buf)
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// How many times the opening thread has been scheduled onto a CPU: if
    /// it did not change across an interval, nothing else ran on this
    /// thread's core in between (0 if unreadable).
    pub fn switches(&self) -> u64 {
        let mut buf = [0u8; 128];
        pread(self.schedstat.as_ref(), &mut buf)
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(0)
    }

    /// Minor page faults of the opening thread so far (0 if unreadable).
    pub fn minor_faults(&self) -> u64 {
        let mut buf = [0u8; 1024];
        pread(self.stat.as_ref(), &mut buf)
            .and_then(|s| s.rsplit_once(')'))
            // After the command name: field 3 (state) first; minflt is field 10.
            .and_then(|(_, rest)| rest.split_whitespace().nth(10 - 3)?.parse().ok())
            .unwrap_or(0)
    }
}

/// This process's resident memory, split by kind.
pub fn memory_sample(label: &str) -> MemorySample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |v| v * 1024)
    };
    let rss_bytes =
        procfs::memory(procfs::Pid::This).map_or_else(|_| kb("VmRSS:"), |m| m.rss_bytes);
    MemorySample {
        label: label.to_owned(),
        rss_bytes,
        anon_bytes: kb("RssAnon:"),
        file_bytes: kb("RssFile:"),
        shmem_bytes: kb("RssShmem:"),
    }
}

fn step(what: &str) {
    eprintln!("==> plugins: {what}");
}

/// A loaded plugin, ready for the chain and for the probes.
struct Loaded {
    spec: PluginSpec,
    chain: ChainPlugin,
}

/// Runs every phase; see the module documentation.
pub fn run(options: &Options) -> anyhow::Result<PluginResults> {
    anyhow::ensure!(options.rounds > 0, "at least one round");
    let environment = suite::environment(
        &Subject {
            gateway_url: String::new(),
            api_key: String::new(),
            gateway_pid: None,
            kafka_pid: None,
            commit: options.commit.clone(),
            brokers: String::new(),
        },
        0,
    );
    step("generating the workload");
    let w = &options.workload;
    let workload = Workload::generate(w.distinct_events, w.users, w.seed)?;
    let bodies: Vec<(usize, Vec<bytes::Bytes>)> = options
        .batches
        .iter()
        .map(|&b| (b, workload.bodies(b, (workload.len() / b.max(1)).max(4))))
        .collect();
    let mut results = PluginResults {
        environment,
        workload: WorkloadInfo {
            distinct_events: workload.len(),
            users: w.users,
            mean_event_bytes: workload.mean_event_bytes(),
            mean_record_bytes: workload.mean_record_bytes(),
        },
        runtime: RuntimeSettings::default(),
        rounds: options.rounds,
        slice_seconds: options.slice.as_secs_f64(),
        ..PluginResults::default()
    };
    let component_bytes: Vec<Vec<u8>> = PLUGINS
        .iter()
        .map(|spec| {
            let path = options.components.join(format!("{}.wasm", spec.name));
            std::fs::read(&path).with_context(|| {
                format!(
                    "reading {}; build the components with plugins/build.sh",
                    path.display()
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;

    // 1. Load.
    step("loading: runtime and compiled plugins");
    results
        .memory
        .push(memory_sample("start (workload generated)"));
    let runtime = Runtime::new(results.runtime.clone())?;
    results.memory.push(memory_sample(
        "Runtime::new (engine, instance pool reserved)",
    ));
    let mut compiled = Vec::new();
    for (spec, bytes) in PLUGINS.iter().zip(&component_bytes) {
        let before = memory_sample("");
        let started = Instant::now();
        let plugin = runtime
            .compile(bytes, spec.kind)
            .with_context(|| format!("compiling {}", spec.name))?;
        let compile_ms = started.elapsed().as_secs_f64() * 1000.0;
        let after = memory_sample(&format!("{} compiled", spec.name));
        results.plugins.push(PluginInfo {
            name: spec.name.to_owned(),
            kind: spec.kind.as_str().to_owned(),
            config: spec.config.to_owned(),
            component_bytes: bytes.len() as u64,
            image_bytes: probe::image_bytes(&plugin) as u64,
            compile_ms,
            rss_first_compile_bytes: after.rss_bytes as i64 - before.rss_bytes as i64,
            rss_second_copy_bytes: 0,
        });
        results.memory.push(after);
        compiled.push(plugin);
    }
    let mut copies = Vec::new();
    for ((spec, bytes), info) in PLUGINS
        .iter()
        .zip(&component_bytes)
        .zip(&mut results.plugins)
    {
        let before = memory_sample("");
        copies.push(runtime.compile(bytes, spec.kind)?);
        let after = memory_sample("");
        info.rss_second_copy_bytes = after.rss_bytes as i64 - before.rss_bytes as i64;
    }
    results
        .memory
        .push(memory_sample("second copy of each compiled and kept"));
    drop(copies);
    results.memory.push(memory_sample("second copies dropped"));

    let loaded: Vec<Loaded> = PLUGINS
        .iter()
        .zip(&compiled)
        .map(|(spec, compiled)| {
            Ok(Loaded {
                spec: *spec,
                chain: ChainPlugin {
                    tag: probe::tag(TEAM, spec.name),
                    compiled: compiled.clone(),
                    config: spec.config.into(),
                    policy: FailurePolicy::Reject,
                    stats: Default::default(),
                    instances: std::sync::Arc::new(InstancePool::new(&runtime)),
                    events: None,
                },
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let chains: Vec<(&str, Option<TeamChain>)> = vec![
        ("none", None),
        ("convert", Some(TeamChain::default())),
        (
            "1",
            Some(TeamChain {
                plugins: vec![loaded[0].chain.clone()],
            }),
        ),
        (
            "3",
            Some(TeamChain {
                plugins: loaded.iter().map(|l| l.chain.clone()).collect(),
            }),
        ),
        (
            "3, filtered",
            Some(TeamChain {
                plugins: loaded
                    .iter()
                    .map(|l| ChainPlugin {
                        events: (l.spec.kind == PluginKind::Enricher)
                            .then(|| std::sync::Arc::new([FILTERED_EVENT.to_owned()].into())),
                        ..l.chain.clone()
                    })
                    .collect(),
            }),
        ),
    ];

    // Sanity and warm-up: every setup accepts every event.
    let ingest = Ingest::new(&runtime, TEAM);
    for (batch, bodies) in &bodies {
        for (name, chain) in &chains {
            with_retries(|| {
                let tally = ingest.process(chain.as_ref(), &bodies[0])?;
                anyhow::ensure!(
                    tally.accepted == *batch,
                    "setup {name}, batch {batch}: {tally:?}; expected every event accepted"
                );
                Ok(())
            })?;
        }
    }
    results.memory.push(memory_sample(
        "after one batch per size through every setup (no instance alive)",
    ));

    // 2. Throughput.
    for round in 1..=options.rounds {
        for (batch, bodies) in &bodies {
            let mut order: Vec<&(&str, Option<TeamChain>)> = chains.iter().collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for (name, chain) in order {
                step(&format!(
                    "throughput round {round}, batch {batch}, setup {name}"
                ));
                results.throughput.push(measure_throughput(
                    &ingest,
                    chain.as_ref(),
                    bodies,
                    options.slice,
                    round,
                    *batch,
                    name,
                )?);
            }
        }
    }
    results.memory.push(memory_sample(
        "after the throughput runs (no instance alive)",
    ));

    // Host-side steps around the chain, per event.
    for (batch, bodies) in &bodies {
        step(&format!("conversion costs at batch {batch}"));
        results.conversion.push(pipeline::conversion_costs(
            &ingest,
            &bodies[0],
            options.latency_time,
        )?);
    }

    // 3. Per-plugin latency, fresh and reused instances.
    for (batch, bodies) in &bodies {
        let events = wit_events(&ingest, &bodies[0])?;
        for plugin in &loaded {
            step(&format!("latency: {} at batch {batch}", plugin.spec.name));
            results.latency.push(measure_latency(
                &runtime,
                plugin,
                &events,
                options.latency_time,
            )?);
        }
    }

    // The same plugins' Rust code compiled natively, on the same batches.
    for (batch, bodies) in &bodies {
        step(&format!(
            "native floor: the example plugins without Wasm at batch {batch}"
        ));
        let (_, decisions) = ingest.admit(&bodies[0], Timestamp::now())?;
        let events: Vec<_> = decisions
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .map(to_wit)
            .collect();
        results
            .native
            .extend(native::measure(&events, options.latency_time)?);
    }

    // 4. Instantiation and call overhead.
    let one_event = wit_events(&ingest, &bodies.first().context("no batch sizes")?.1[0])?;
    let one_event = &one_event[..1];
    for plugin in &loaded {
        step(&format!("instantiation and calls: {}", plugin.spec.name));
        results.calls.push(measure_calls(
            &runtime,
            plugin,
            one_event,
            options.probe_iterations,
        )?);
    }
    for (path, fixture, config) in TRANSPORT_PATHS {
        let fixture = options.components.join(format!("{fixture}.wasm"));
        if !fixture.exists() {
            continue;
        }
        step(&format!(
            "transport: events into a guest that ignores them ({path})"
        ));
        let bytes = std::fs::read(&fixture)?;
        let compiled = runtime.compile(&bytes, PluginKind::Validator)?;
        let mut live = runtime.instantiate(&compiled, &probe::tag(TEAM, "transport"))?;
        live.init(config)?;
        let mut empty = measure_transport(&mut live, &[], options.latency_time, None)?;
        empty.path = path.to_owned();
        let base = empty.cpu_us;
        results.transport.push(empty);
        for (_, bodies) in &bodies {
            let events = wit_events(&ingest, &bodies[0])?;
            let mut row = measure_transport(&mut live, &events, options.latency_time, Some(base))?;
            row.path = path.to_owned();
            results.transport.push(row);
        }
    }
    results.memory.push(memory_sample(
        "after the latency and call probes (no instance alive)",
    ));

    // 5. Live instances, after a batch of each size.
    for (batch, bodies) in &bodies {
        let events = wit_events(&ingest, &bodies[0])?;
        for plugin in &loaded {
            step(&format!(
                "memory: {} live instances of {} after a batch of {batch}",
                options.instances, plugin.spec.name
            ));
            results.held.push(hold_instances(
                &runtime,
                plugin,
                &events,
                options.instances,
            )?);
        }
    }

    // 6. One plugin in each language (a separate runtime per build: the
    // compile is timed cold, then from the artifact cache).
    if let Some((batch, bodies)) = bodies.last() {
        step(&format!(
            "languages: required_properties in Rust, TypeScript and Python at batch {batch}"
        ));
        let events = wit_events(&ingest, &bodies[0])?;
        results.languages = languages::measure(
            &options.components,
            &results.runtime,
            &events,
            options.latency_time,
            options.instances,
        )?;
    }
    results.memory.push(memory_sample("end"));
    Ok(results)
}

fn measure_throughput(
    ingest: &Ingest<'_>,
    chain: Option<&TeamChain>,
    bodies: &[bytes::Bytes],
    slice: Duration,
    round: usize,
    batch: usize,
    setup: &str,
) -> anyhow::Result<ThroughputCell> {
    let mut tally = BatchTally::default();
    let mut batches = 0u64;
    let cpu = ThreadCpu::open();
    let cpu_started = cpu.ns();
    let started = Instant::now();
    let mut i = 0;
    loop {
        tally.add(ingest.process(chain, &bodies[i % bodies.len()])?);
        batches += 1;
        i += 1;
        if started.elapsed() >= slice {
            break;
        }
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu.ns().saturating_sub(cpu_started) as f64 / 1e9;
    Ok(ThroughputCell {
        round,
        batch,
        setup: setup.to_owned(),
        batches,
        events: batches * batch as u64,
        accepted: tally.accepted as u64,
        rejected: (tally.rejected + tally.dead_lettered) as u64,
        failed_calls: tally.failed_calls as u64,
        wall_seconds,
        cpu_seconds,
    })
}

/// A body's events as a chain receives them.
fn wit_events(ingest: &Ingest<'_>, body: &[u8]) -> anyhow::Result<Vec<Event>> {
    let (_, decisions) = ingest.admit(body, Timestamp::now())?;
    Ok(decisions
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .map(to_wit)
        .collect())
}

/// One call through the runtime, as the chain makes it; returns how many
/// events were rejected (validator) or changed (enricher).
fn runtime_call(
    runtime: &Runtime,
    plugin: &ChainPlugin,
    events: &[Event],
) -> anyhow::Result<usize> {
    let (tag, config): (&PluginTag, &str) = (&plugin.tag, &plugin.config);
    Ok(
        match runtime.run_once(&plugin.compiled, tag, config, events)? {
            BatchResults::Verdicts(verdicts) => verdicts
                .iter()
                .filter(|v| !matches!(v, sluice_plugin_host::bindings::Verdict::Accept))
                .count(),
            BatchResults::Enriched(results) => results
                .iter()
                .filter(|e| !matches!(e, Enriched::Unchanged))
                .count(),
            BatchResults::Patches(results) => results
                .iter()
                .filter(|e| !matches!(e, v0_2::Enriched::Unchanged))
                .count(),
        },
    )
}

/// Calls `f` until it succeeds, at most five times: on a busy machine a call
/// can run out of its CPU budget, which is wall-clock time.
fn with_retries<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let mut attempts = 0;
    loop {
        match f() {
            Ok(value) => return Ok(value),
            Err(err) if attempts >= 4 => return Err(err),
            Err(_) => attempts += 1,
        }
    }
}

fn measure_latency(
    runtime: &Runtime,
    plugin: &Loaded,
    events: &[Event],
    time: Duration,
) -> anyhow::Result<LatencyRow> {
    const MIN_CALLS: usize = 200;
    const MAX_CALLS: usize = 50_000;
    // What the chain does: `Runtime::run_batch` on the plugin's pool of
    // warm instances (calls of bounded size on a reused instance).
    let pool = InstancePool::new(runtime);
    let pooled = || {
        runtime.run_batch(
            &plugin.chain.compiled,
            &pool,
            &plugin.chain.tag,
            &plugin.chain.config,
            events,
        )
    };
    with_retries(|| Ok(pooled()?))?;
    let changed = with_retries(|| runtime_call(runtime, &plugin.chain, events))?;
    let (mut fresh, mut reused) = (Vec::new(), Vec::new());
    let (mut fresh_u, mut reused_u) = (Undisturbed::default(), Undisturbed::default());
    let (mut fresh_faults, mut reused_faults) = (0u64, 0u64);
    let (mut failed, mut last_error) = ((0usize, 0usize), None);
    let cpu = ThreadCpu::open();
    let started = Instant::now();
    while fresh.len() < MAX_CALLS && (fresh.len() < MIN_CALLS || started.elapsed() < time) {
        if failed.0 + failed.1 > MAX_CALLS / 10 {
            anyhow::bail!(
                "{}: too many failed calls: {last_error:?}",
                plugin.spec.name
            );
        }
        let f0 = cpu.minor_faults();
        let s0 = cpu.switches();
        let t0 = Instant::now();
        let outcome = runtime_call(runtime, &plugin.chain, events);
        let t1 = Instant::now();
        let s1 = cpu.switches();
        let f1 = cpu.minor_faults();
        if let Err(err) = outcome {
            failed.0 += 1;
            last_error = Some(format!("{err:#}"));
            continue;
        }
        let s1b = cpu.switches();
        let t1b = Instant::now();
        let outcome = pooled();
        let t2 = Instant::now();
        let s2 = cpu.switches();
        let f2 = cpu.minor_faults();
        if let Err(err) = outcome {
            // The runtime drops a failed instance; the next call makes one.
            failed.1 += 1;
            last_error = Some(format!("{err:#}"));
            continue;
        }
        let (a, b) = ((t1 - t0).as_nanos() as f64, (t2 - t1b).as_nanos() as f64);
        fresh.push(a);
        reused.push(b);
        fresh_u.add(s0 == s1, a, 1);
        reused_u.add(s1b == s2, b, 1);
        fresh_faults += f1.saturating_sub(f0);
        reused_faults += f2.saturating_sub(f1);
    }
    let calls = fresh.len().max(1) as f64;
    Ok(LatencyRow {
        plugin: plugin.spec.name.to_owned(),
        batch: events.len(),
        fresh: Summary::from_ns(fresh),
        reused: Summary::from_ns(reused),
        fresh_undisturbed_us: fresh_u.mean_us(),
        fresh_kept: fresh_u.kept,
        reused_undisturbed_us: reused_u.mean_us(),
        reused_kept: reused_u.kept,
        fresh_faults: fresh_faults as f64 / calls,
        reused_faults: reused_faults as f64 / calls,
        failed,
        last_error,
        changed_or_rejected: changed,
    })
}

/// The transport measurements: (label, fixture, configuration).
const TRANSPORT_PATHS: [(&str, &str, &str); 3] = [
    ("0.1.0, every field", "fixture_wrong_length", "{}"),
    (
        "0.2.0, every field and spans",
        "fixture_ignore",
        r#"{"fields": "all"}"#,
    ),
    ("0.2.0, nothing declared", "fixture_ignore", "{}"),
];

fn measure_transport(
    live: &mut PluginInstance,
    events: &[Event],
    time: Duration,
    empty_cpu_us: Option<f64>,
) -> anyhow::Result<TransportRow> {
    const MIN_CALLS: usize = 100;
    const MAX_CALLS: usize = 100_000;
    live.call_once(events)?;
    let cpu = ThreadCpu::open();
    let mut wall = Vec::new();
    let c0 = cpu.ns();
    let started = Instant::now();
    while wall.len() < MAX_CALLS && (wall.len() < MIN_CALLS || started.elapsed() < time) {
        let t = Instant::now();
        std::hint::black_box(live.call_once(events)?);
        wall.push(ns_since(t));
    }
    let cpu_us = cpu.ns().saturating_sub(c0) as f64 / 1000.0 / wall.len().max(1) as f64;
    let cpu_us_per_event = match empty_cpu_us {
        Some(base) if !events.is_empty() => (cpu_us - base) / events.len() as f64,
        _ => 0.0,
    };
    Ok(TransportRow {
        path: String::new(),
        batch: events.len(),
        wall: Summary::from_ns(wall),
        cpu_us,
        cpu_us_per_event,
    })
}

fn ns_since(t: Instant) -> f64 {
    t.elapsed().as_nanos() as f64
}

/// Instances created back to back in the instantiation loop (well under
/// the pool's 64 slots).
pub const GROUP: usize = 32;

/// Timed groups of operations, keeping those no context switch interrupted.
#[derive(Debug, Default)]
pub(crate) struct Undisturbed {
    ns: f64,
    operations: usize,
    kept: usize,
    total: usize,
}

impl Undisturbed {
    pub(crate) fn add(&mut self, undisturbed: bool, ns: f64, operations: usize) {
        self.total += 1;
        if undisturbed {
            self.kept += 1;
            self.ns += ns;
            self.operations += operations;
        }
    }

    /// Mean per operation over the kept groups (NaN if none was kept).
    pub(crate) fn mean_us(&self) -> f64 {
        if self.operations == 0 {
            f64::NAN
        } else {
            self.ns / 1000.0 / self.operations as f64
        }
    }
}

fn measure_calls(
    runtime: &Runtime,
    plugin: &Loaded,
    one_event: &[Event],
    iterations: usize,
) -> anyhow::Result<CallCosts> {
    /// Calls per timed block for the per-call overhead (the clock is read
    /// once per block, so its own cost does not count).
    const BLOCK: usize = 100;
    let tag = &plugin.chain.tag;
    let config = plugin.spec.config;
    let compiled = &plugin.chain.compiled;
    let mut live = runtime.instantiate(compiled, tag)?;
    live.init(config)?;
    // Warm-up of every path.
    for _ in 0..100 {
        let mut fresh = runtime.instantiate(compiled, tag)?;
        fresh.init(config)?;
        probe::call(&mut fresh, &[])?;
        probe::call(&mut live, &[])?;
        probe::call(&mut live, one_event)?;
        runtime_call(runtime, &plugin.chain, &[])?;
    }
    // Store + instantiate in groups: the mean the goal asks for, from the
    // groups no other task interrupted.
    let cpu = ThreadCpu::open();
    let mut undisturbed = Undisturbed::default();
    let mut dropped_undisturbed = Undisturbed::default();
    let mut group: Vec<PluginInstance> = Vec::with_capacity(GROUP);
    for _ in 0..iterations.div_ceil(GROUP) {
        let s0 = cpu.switches();
        let t0 = Instant::now();
        for _ in 0..GROUP {
            group.push(runtime.instantiate(compiled, tag)?);
        }
        let t1 = Instant::now();
        let s1 = cpu.switches();
        group.clear();
        let t2 = Instant::now();
        let s2 = cpu.switches();
        undisturbed.add(s0 == s1, (t1 - t0).as_nanos() as f64, GROUP);
        dropped_undisturbed.add(s1 == s2, (t2 - t1).as_nanos() as f64, GROUP);
    }
    let (mut empty_undisturbed, mut one_undisturbed) =
        (Undisturbed::default(), Undisturbed::default());
    let mut series: [Vec<f64>; 10] = Default::default();
    let [
        store,
        instantiate,
        both,
        init,
        first,
        dropped,
        empty,
        one,
        rt_empty,
        rt_one,
    ] = &mut series;
    for i in 0..iterations {
        let t0 = Instant::now();
        let s = runtime.store(tag);
        let t1 = Instant::now();
        let mut fresh = runtime.instantiate_in(compiled, s)?;
        let t2 = Instant::now();
        fresh.init(config)?;
        let t3 = Instant::now();
        probe::call(&mut fresh, &[])?;
        let t4 = Instant::now();
        drop(fresh);
        let t5 = Instant::now();
        let ns = |a: Instant, b: Instant| (b - a).as_nanos() as f64;
        store.push(ns(t0, t1));
        instantiate.push(ns(t1, t2));
        both.push(ns(t0, t2));
        init.push(ns(t2, t3));
        first.push(ns(t3, t4));
        dropped.push(ns(t4, t5));
        // The whole thing as the gateway does it.
        let t = Instant::now();
        runtime_call(runtime, &plugin.chain, &[])?;
        rt_empty.push(ns_since(t));
        let t = Instant::now();
        runtime_call(runtime, &plugin.chain, one_event)?;
        rt_one.push(ns_since(t));
        // Bare calls on the live instance, in blocks.
        if i % 10 == 0 {
            let s0 = cpu.switches();
            let t = Instant::now();
            for _ in 0..BLOCK {
                probe::call(&mut live, &[])?;
            }
            let block = ns_since(t);
            let s1 = cpu.switches();
            empty.push(block / BLOCK as f64);
            empty_undisturbed.add(s0 == s1, block, BLOCK);
            let t = Instant::now();
            for _ in 0..BLOCK {
                probe::call(&mut live, one_event)?;
            }
            let block = ns_since(t);
            let s2 = cpu.switches();
            one.push(block / BLOCK as f64);
            one_undisturbed.add(s1 == s2, block, BLOCK);
        }
    }
    let [
        store,
        instantiate,
        both,
        init,
        first,
        dropped,
        empty,
        one,
        rt_empty,
        rt_one,
    ] = series;
    Ok(CallCosts {
        plugin: plugin.spec.name.to_owned(),
        store: Summary::from_ns(store),
        instantiate: Summary::from_ns(instantiate),
        store_and_instantiate: Summary::from_ns(both),
        create_undisturbed_us: undisturbed.mean_us(),
        drop_undisturbed_us: dropped_undisturbed.mean_us(),
        groups_kept: undisturbed.kept,
        groups: undisturbed.total,
        init: Summary::from_ns(init),
        first_empty_call: Summary::from_ns(first),
        drop: Summary::from_ns(dropped),
        empty_call: Summary::from_ns(empty),
        one_event_call: Summary::from_ns(one),
        empty_call_undisturbed_us: empty_undisturbed.mean_us(),
        one_event_call_undisturbed_us: one_undisturbed.mean_us(),
        blocks_kept: empty_undisturbed.kept,
        blocks: empty_undisturbed.total,
        runtime_empty: Summary::from_ns(rt_empty),
        runtime_one: Summary::from_ns(rt_one),
    })
}

/// N instances of one plugin made and run exactly as the gateway's
/// `Runtime::run_batch` does (instantiate, `init`, the batch in calls of
/// bounded size), then held: the RSS they keep is what an idle, parked
/// instance costs.
fn hold_instances(
    runtime: &Runtime,
    plugin: &Loaded,
    events: &[Event],
    n: usize,
) -> anyhow::Result<HeldInstances> {
    let before = memory_sample("before");
    let mut live: Vec<PluginInstance> = Vec::with_capacity(n);
    let fresh = || -> anyhow::Result<PluginInstance> {
        let mut instance = runtime.instantiate(&plugin.chain.compiled, &plugin.chain.tag)?;
        instance.init(plugin.spec.config)?;
        Ok(instance)
    };
    for _ in 0..n {
        live.push(fresh()?);
    }
    let after_init = memory_sample("after init");
    for instance in &mut live {
        let results = instance.run_batch(runtime.config(), events)?;
        anyhow::ensure!(results.len() == events.len(), "{}", plugin.spec.name);
    }
    let after_batch = memory_sample("after a batch");
    drop(live);
    let after_drop = memory_sample("after drop");
    Ok(HeldInstances {
        plugin: plugin.spec.name.to_owned(),
        instances: n,
        batch: events.len(),
        before,
        after_init,
        after_batch,
        after_drop,
    })
}

/// Renders `results` into the `## Plugins` section of `doc`.
pub fn update_doc(doc: &Path, results: &PluginResults) -> anyhow::Result<()> {
    crate::report::update_section(
        doc,
        report::BEGIN_MARKER,
        report::END_MARKER,
        &report::render(results),
    )
}
