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
//!
//! Inside: `setup` (the example plugins, loading them, the setups' chains),
//! `phases` (each phase's loops and measurements), `measure` (the
//! instruments: thread CPU time, context switches, page faults, resident
//! memory) and `results` (what a run measured, as JSON).

pub mod gateway;
pub mod languages;
mod measure;
pub mod native;
pub mod neighbour;
mod phases;
pub mod pipeline;
pub mod probe;
pub mod report;
mod results;
mod setup;
pub mod upload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_plugin_host::runtime::{Runtime, RuntimeSettings};

pub(crate) use self::measure::Undisturbed;
pub use self::measure::{ThreadCpu, memory_sample};
pub use self::phases::GROUP;
pub use self::results::{
    CallCosts, HeldInstances, LatencyRow, MemorySample, PluginInfo, PluginResults, Summary,
    ThroughputCell, TransportRow, null_as_nan,
};
pub use self::setup::{FILTERED_EVENT, PLUGINS, PluginSpec, SETUPS};
use crate::results::WorkloadInfo;
use crate::suite::{self, Subject, WorkloadOptions};
use crate::workload::{TEAM, Workload};

use self::phases::Bench;
use self::pipeline::Ingest;

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

fn step(what: &str) {
    eprintln!("==> plugins: {what}");
}

/// Runs every phase; see the module documentation.
pub fn run(options: &Options) -> anyhow::Result<PluginResults> {
    anyhow::ensure!(options.rounds > 0, "at least one round");
    let environment = suite::environment(
        &Subject {
            gateway_url: String::new(),
            api_key: String::new(),
            gateway_pid: None,
            kafka_pids: Vec::new(),
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
    let component_bytes = setup::read_components(&options.components)?;

    // 1. Load.
    step("loading: runtime and compiled plugins");
    results
        .memory
        .push(memory_sample("start (workload generated)"));
    let runtime = Runtime::new(results.runtime.clone())?;
    results.memory.push(memory_sample(
        "Runtime::new (engine, instance pool reserved)",
    ));
    let compiled = setup::compile(&runtime, &component_bytes, &mut results)?;
    let loaded = setup::loaded(&runtime, &compiled);
    let chains = setup::chains(&loaded);
    let bench = Bench {
        options,
        runtime: &runtime,
        ingest: Ingest::new(&runtime, TEAM),
        bodies: &bodies,
        loaded: &loaded,
    };
    phases::warm_up(&bench, &chains)?;
    results.memory.push(memory_sample(
        "after one batch per size through every setup (no instance alive)",
    ));

    // 2. Throughput, then the host's own steps around the chain.
    phases::throughput(&bench, &chains, &mut results)?;
    results.memory.push(memory_sample(
        "after the throughput runs (no instance alive)",
    ));
    phases::conversion(&bench, &mut results)?;

    // 3. Per-plugin latency, and the same plugins without Wasm.
    phases::latency(&bench, &mut results)?;
    phases::native(&bench, &mut results)?;

    // 4. Instantiation and call overhead, and transport.
    phases::calls(&bench, &mut results)?;
    phases::transport(&bench, &mut results)?;
    results.memory.push(memory_sample(
        "after the latency and call probes (no instance alive)",
    ));

    // 5. Live instances; 6. one plugin in each language.
    phases::held(&bench, &mut results)?;
    phases::languages(&bench, &mut results)?;
    results.memory.push(memory_sample("end"));
    Ok(results)
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
