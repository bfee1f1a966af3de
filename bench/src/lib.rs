//! `sluice-bench`: how fast the gateway is, measured against what this same
//! machine's raw Kafka producer can do in the same run.
//!
//! `scripts/bench` is the one command; it starts the gateways and calls the
//! subcommands of this binary in order. Module map:
//! - [`workload`]: realistic ~1.2 KB events, request bodies and the matching
//!   pre-serialised Kafka records, all generated before timing.
//! - [`baseline`]: the raw rdkafka producer with the gateway's settings.
//! - [`load`]: HTTP load (closed and open loop) and what it observed.
//! - [`suite`]: the scenarios in order, with CPU, `/metrics` and RSS taken
//!   around each.
//! - [`procfs`]: process CPU time and resident memory from `/proc`.
//! - [`promtext`]: histograms out of the gateway's Prometheus text.
//! - [`topics`]: the benchmark's own topics, recreated per run.
//! - [`results`]: what a run measured, as JSON-serialisable data.
//! - [`report`]: Markdown and goal verdicts for `docs/benchmarks.md`.
//! - [`plugins`]: the plugin host's costs, in-process (`scripts/bench-plugins`).
//! - [`aggregator`]: the aggregator's counting rate and window delay
//!   (`scripts/bench-aggregator`).
//! - [`brokers`]: one Kafka broker against three (`scripts/bench-brokers`).
//!
//! All traffic stays on this machine (the gateway and broker addresses come
//! from the script, on 127.0.0.1), and every loop ends by a deadline.

pub mod aggregator;
pub mod baseline;
pub mod brokers;
pub mod load;
pub mod plugins;
pub mod procfs;
pub mod promtext;
pub mod report;
pub mod results;
pub mod suite;
pub mod topics;
pub mod workload;

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Writes `value` as pretty JSON to `path`, creating parent folders.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The gateway capacity the overload phase multiplies: the best closed-loop
/// throughput at `batch` if that size was measured, else at any size.
pub fn capacity(results: &results::ThroughputResults, batch: usize) -> Option<f64> {
    results.max_gateway_events_per_second(batch).or_else(|| {
        results
            .sizes()
            .into_iter()
            .filter_map(|size| results.max_gateway_events_per_second(size))
            .reduce(f64::max)
    })
}

/// Renders the results into the marked section of `doc`.
pub fn update_doc(
    doc: &Path,
    throughput: Option<&results::ThroughputResults>,
    overload: Option<&results::OverloadResults>,
) -> anyhow::Result<()> {
    report::update_section(
        doc,
        report::BEGIN_MARKER,
        report::END_MARKER,
        &report::render(throughput, overload),
    )
}
