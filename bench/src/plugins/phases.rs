//! The measuring phases of [`super::run`], in the order it runs them (see
//! the module documentation of [`super`]): each loops over the batch sizes
//! and plugins, announces each step, and adds its rows to the results.

use std::time::{Duration, Instant};

use anyhow::Context;
use sluice_core::Timestamp;
use sluice_plugin_host::bindings::{Enriched, Event, v0_2};
use sluice_plugin_host::chain::{ChainPlugin, TeamChain};
use sluice_plugin_host::convert::to_wit;
use sluice_plugin_host::runtime::{
    BatchResults, CompiledPlugin, InstancePool, PluginInstance, PluginKind, PluginTag, Runtime,
};

use super::measure::{Undisturbed, ns_since, with_retries};
use super::pipeline::{BatchTally, Ingest};
use super::setup::Loaded;
use super::{
    CallCosts, HeldInstances, LatencyRow, Options, PluginResults, Summary, ThreadCpu,
    ThroughputCell, TransportRow, languages, memory_sample, native, pipeline, probe, step,
};
use crate::workload::TEAM;

/// What every phase measures with.
pub(super) struct Bench<'a> {
    pub(super) options: &'a Options,
    pub(super) runtime: &'a Runtime,
    /// The gateway's ingest stage over `runtime`.
    pub(super) ingest: Ingest<'a>,
    /// Request bodies per batch size.
    pub(super) bodies: &'a [(usize, Vec<bytes::Bytes>)],
    pub(super) loaded: &'a [Loaded],
}

/// Sanity and warm-up: every setup accepts every event.
pub(super) fn warm_up(b: &Bench<'_>, chains: &[(&str, Option<TeamChain>)]) -> anyhow::Result<()> {
    for (batch, bodies) in b.bodies {
        for (name, chain) in chains {
            with_retries(|| {
                let tally = b.ingest.process(chain.as_ref(), &bodies[0])?;
                anyhow::ensure!(
                    tally.accepted == *batch,
                    "setup {name}, batch {batch}: {tally:?}; expected every event accepted"
                );
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Phase 2, throughput of every setup at every batch size, interleaved
/// over the rounds (every other round in reverse order).
pub(super) fn throughput(
    b: &Bench<'_>,
    chains: &[(&str, Option<TeamChain>)],
    results: &mut PluginResults,
) -> anyhow::Result<()> {
    for round in 1..=b.options.rounds {
        for (batch, bodies) in b.bodies {
            let mut order: Vec<&(&str, Option<TeamChain>)> = chains.iter().collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for (name, chain) in order {
                step(&format!(
                    "throughput round {round}, batch {batch}, setup {name}"
                ));
                results.throughput.push(measure_throughput(
                    &b.ingest,
                    chain.as_ref(),
                    bodies,
                    b.options.slice,
                    round,
                    *batch,
                    name,
                )?);
            }
        }
    }
    Ok(())
}

/// Host-side steps around the chain, per event.
pub(super) fn conversion(b: &Bench<'_>, results: &mut PluginResults) -> anyhow::Result<()> {
    for (batch, bodies) in b.bodies {
        step(&format!("conversion costs at batch {batch}"));
        results.conversion.push(pipeline::conversion_costs(
            &b.ingest,
            &bodies[0],
            b.options.latency_time,
        )?);
    }
    Ok(())
}

/// Phase 3, per-plugin latency, fresh and reused instances.
pub(super) fn latency(b: &Bench<'_>, results: &mut PluginResults) -> anyhow::Result<()> {
    for (batch, bodies) in b.bodies {
        let events = wit_events(&b.ingest, &bodies[0])?;
        for plugin in b.loaded {
            step(&format!("latency: {} at batch {batch}", plugin.spec.name));
            results.latency.push(measure_latency(
                b.runtime,
                plugin,
                &events,
                b.options.latency_time,
            )?);
        }
    }
    Ok(())
}

/// The same plugins' Rust code compiled natively, on the same batches.
pub(super) fn native(b: &Bench<'_>, results: &mut PluginResults) -> anyhow::Result<()> {
    for (batch, bodies) in b.bodies {
        step(&format!(
            "native floor: the example plugins without Wasm at batch {batch}"
        ));
        let events = wit_events(&b.ingest, &bodies[0])?;
        results
            .native
            .extend(native::measure(&events, b.options.latency_time)?);
    }
    Ok(())
}

/// Phase 4, instantiation and call overhead, per plugin.
pub(super) fn calls(b: &Bench<'_>, results: &mut PluginResults) -> anyhow::Result<()> {
    let one_event = wit_events(&b.ingest, &b.bodies.first().context("no batch sizes")?.1[0])?;
    let one_event = &one_event[..1];
    for plugin in b.loaded {
        step(&format!("instantiation and calls: {}", plugin.spec.name));
        results.calls.push(measure_calls(
            b.runtime,
            plugin,
            one_event,
            b.options.probe_iterations,
        )?);
    }
    Ok(())
}

/// Phase 4, continued: events into guests that ignore them, for each of
/// [`TRANSPORT_PATHS`] whose fixture was built.
pub(super) fn transport(b: &Bench<'_>, results: &mut PluginResults) -> anyhow::Result<()> {
    for (path, fixture, config) in TRANSPORT_PATHS {
        let fixture = b.options.components.join(format!("{fixture}.wasm"));
        if !fixture.exists() {
            continue;
        }
        step(&format!(
            "transport: events into a guest that ignores them ({path})"
        ));
        let bytes = std::fs::read(&fixture)?;
        let compiled = b.runtime.compile(&bytes, PluginKind::Validator)?;
        let mut live = b
            .runtime
            .instantiate(&compiled, &probe::tag(TEAM, "transport"))?;
        live.init(config)?;
        let mut empty = measure_transport(&mut live, &[], b.options.latency_time, None)?;
        empty.path = path.to_owned();
        let base = empty.cpu_us;
        results.transport.push(empty);
        for (_, bodies) in b.bodies {
            let events = wit_events(&b.ingest, &bodies[0])?;
            let mut row =
                measure_transport(&mut live, &events, b.options.latency_time, Some(base))?;
            row.path = path.to_owned();
            results.transport.push(row);
        }
    }
    Ok(())
}

/// Phase 5, live instances, after a batch of each size.
pub(super) fn held(b: &Bench<'_>, results: &mut PluginResults) -> anyhow::Result<()> {
    for (batch, bodies) in b.bodies {
        let events = wit_events(&b.ingest, &bodies[0])?;
        for plugin in b.loaded {
            step(&format!(
                "memory: {} live instances of {} after a batch of {batch}",
                b.options.instances, plugin.spec.name
            ));
            results.held.push(hold_instances(
                b.runtime,
                plugin,
                &events,
                b.options.instances,
            )?);
        }
    }
    Ok(())
}

/// Phase 6, one plugin in each language (a separate runtime per build: the
/// compile is timed cold, then from the artifact cache), at the largest
/// batch size.
pub(super) fn languages(b: &Bench<'_>, results: &mut PluginResults) -> anyhow::Result<()> {
    if let Some((batch, bodies)) = b.bodies.last() {
        step(&format!(
            "languages: required_properties in Rust, TypeScript and Python at batch {batch}"
        ));
        let events = wit_events(&b.ingest, &bodies[0])?;
        results.languages = languages::measure(
            &b.options.components,
            &results.runtime,
            &events,
            b.options.latency_time,
            b.options.instances,
        )?;
    }
    Ok(())
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

/// Instances created back to back in the instantiation loop (well under
/// the pool's 64 slots).
pub const GROUP: usize = 32;

/// Calls per timed block for the per-call overhead (the clock is read once
/// per block, so its own cost does not count).
const BLOCK: usize = 100;

fn measure_calls(
    runtime: &Runtime,
    plugin: &Loaded,
    one_event: &[Event],
    iterations: usize,
) -> anyhow::Result<CallCosts> {
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
    let (undisturbed, dropped_undisturbed) =
        instance_groups(runtime, compiled, tag, iterations, &cpu)?;
    let s = call_series(runtime, plugin, &mut live, one_event, iterations, &cpu)?;
    Ok(CallCosts {
        plugin: plugin.spec.name.to_owned(),
        store: Summary::from_ns(s.store),
        instantiate: Summary::from_ns(s.instantiate),
        store_and_instantiate: Summary::from_ns(s.both),
        create_undisturbed_us: undisturbed.mean_us(),
        drop_undisturbed_us: dropped_undisturbed.mean_us(),
        groups_kept: undisturbed.kept,
        groups: undisturbed.total,
        init: Summary::from_ns(s.init),
        first_empty_call: Summary::from_ns(s.first),
        drop: Summary::from_ns(s.dropped),
        empty_call: Summary::from_ns(s.empty),
        one_event_call: Summary::from_ns(s.one),
        empty_call_undisturbed_us: s.empty_undisturbed.mean_us(),
        one_event_call_undisturbed_us: s.one_undisturbed.mean_us(),
        blocks_kept: s.empty_undisturbed.kept,
        blocks: s.empty_undisturbed.total,
        runtime_empty: Summary::from_ns(s.rt_empty),
        runtime_one: Summary::from_ns(s.rt_one),
    })
}

/// Groups of [`GROUP`] instances created back to back, then dropped: the
/// undisturbed means of creating (store + instantiate) and of dropping.
fn instance_groups(
    runtime: &Runtime,
    compiled: &CompiledPlugin,
    tag: &PluginTag,
    iterations: usize,
    cpu: &ThreadCpu,
) -> anyhow::Result<(Undisturbed, Undisturbed)> {
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
    Ok((undisturbed, dropped_undisturbed))
}

/// Wall-clock nanoseconds of each step of a call's fixed cost, one sample
/// per iteration; the bare calls on the live instance one per block of
/// [`BLOCK`] calls, every tenth iteration.
#[derive(Default)]
struct CallSeries {
    store: Vec<f64>,
    instantiate: Vec<f64>,
    both: Vec<f64>,
    init: Vec<f64>,
    first: Vec<f64>,
    dropped: Vec<f64>,
    empty: Vec<f64>,
    one: Vec<f64>,
    rt_empty: Vec<f64>,
    rt_one: Vec<f64>,
    empty_undisturbed: Undisturbed,
    one_undisturbed: Undisturbed,
}

fn call_series(
    runtime: &Runtime,
    plugin: &Loaded,
    live: &mut PluginInstance,
    one_event: &[Event],
    iterations: usize,
    cpu: &ThreadCpu,
) -> anyhow::Result<CallSeries> {
    let tag = &plugin.chain.tag;
    let config = plugin.spec.config;
    let compiled = &plugin.chain.compiled;
    let mut s = CallSeries::default();
    for i in 0..iterations {
        let t0 = Instant::now();
        let store = runtime.store(tag);
        let t1 = Instant::now();
        let mut fresh = runtime.instantiate_in(compiled, store)?;
        let t2 = Instant::now();
        fresh.init(config)?;
        let t3 = Instant::now();
        probe::call(&mut fresh, &[])?;
        let t4 = Instant::now();
        drop(fresh);
        let t5 = Instant::now();
        let ns = |a: Instant, b: Instant| (b - a).as_nanos() as f64;
        s.store.push(ns(t0, t1));
        s.instantiate.push(ns(t1, t2));
        s.both.push(ns(t0, t2));
        s.init.push(ns(t2, t3));
        s.first.push(ns(t3, t4));
        s.dropped.push(ns(t4, t5));
        // The whole thing as the gateway does it.
        let t = Instant::now();
        runtime_call(runtime, &plugin.chain, &[])?;
        s.rt_empty.push(ns_since(t));
        let t = Instant::now();
        runtime_call(runtime, &plugin.chain, one_event)?;
        s.rt_one.push(ns_since(t));
        // Bare calls on the live instance, in blocks.
        if i % 10 == 0 {
            let s0 = cpu.switches();
            let t = Instant::now();
            for _ in 0..BLOCK {
                probe::call(live, &[])?;
            }
            let block = ns_since(t);
            let s1 = cpu.switches();
            s.empty.push(block / BLOCK as f64);
            s.empty_undisturbed.add(s0 == s1, block, BLOCK);
            let t = Instant::now();
            for _ in 0..BLOCK {
                probe::call(live, one_event)?;
            }
            let block = ns_since(t);
            let s2 = cpu.switches();
            s.one.push(block / BLOCK as f64);
            s.one_undisturbed.add(s1 == s2, block, BLOCK);
        }
    }
    Ok(s)
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
