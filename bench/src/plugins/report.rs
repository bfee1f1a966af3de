//! Markdown for the `## Plugins` section of `docs/benchmarks.md`: goal
//! verdicts and tables, between this section's own markers (the gateway
//! benchmark's markers and text are left alone).

use std::fmt::Write as _;

use super::{CallCosts, PluginResults, SETUPS, Summary, ThroughputCell};
use crate::results::Spread;

pub const BEGIN_MARKER: &str = "<!-- BEGIN GENERATED PLUGIN RESULTS (scripts/bench-plugins) -->";
pub const END_MARKER: &str = "<!-- END GENERATED PLUGIN RESULTS -->";

/// The goals, as numbers.
pub const MIN_RATIO_THREE_AT_1000: f64 = 0.85;
pub const MAX_INSTANTIATE_US: f64 = 25.0;
pub const MAX_CALL_OVERHEAD_US: f64 = 0.5;
pub const MAX_IDLE_INSTANCE_BYTES: f64 = 256.0 * 1024.0;
const GOAL_BATCH: usize = 1000;

/// Replaces the text between this section's markers.
pub fn splice(doc: &str, generated: &str) -> anyhow::Result<String> {
    crate::report::splice_section(doc, BEGIN_MARKER, END_MARKER, generated)
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**not met**" }
}

/// Met when every value is at most `limit`; unclear when one is missing.
fn verdict_all(values: impl IntoIterator<Item = f64>, limit: f64) -> String {
    let values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        "**unclear** (no undisturbed sample)".to_owned()
    } else {
        verdict(values.iter().all(|v| *v <= limit)).to_owned()
    }
}

fn us(v: f64) -> String {
    if v.is_nan() {
        String::from("–")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn kib(bytes: f64) -> String {
    format!("{:.0} KiB", bytes / 1024.0)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn spread(s: &Spread, fmt: impl Fn(f64) -> String) -> String {
    if s.n > 1 {
        format!("{} ({}–{})", fmt(s.mean), fmt(s.min), fmt(s.max))
    } else {
        fmt(s.mean)
    }
}

fn triple(s: &Summary) -> String {
    format!("{} / {} / {}", us(s.mean_us), us(s.p50_us), us(s.p99_us))
}

/// Per-round ratios of `setup` to `none` at `batch`: (wall, CPU-cost).
pub fn ratios(results: &PluginResults, batch: usize, setup: &str) -> Vec<(f64, f64)> {
    let cell = |round: usize, name: &str| -> Option<&ThroughputCell> {
        results
            .throughput
            .iter()
            .find(|c| c.round == round && c.batch == batch && c.setup == name)
    };
    (1..=results.rounds)
        .filter_map(|round| {
            let (base, with) = (cell(round, "none")?, cell(round, setup)?);
            Some((
                with.events_per_second() / base.events_per_second(),
                base.cpu_us_per_event() / with.cpu_us_per_event(),
            ))
        })
        .collect()
}

fn cells<'a>(
    results: &'a PluginResults,
    batch: usize,
    setup: &'a str,
) -> impl Iterator<Item = &'a ThroughputCell> {
    results
        .throughput
        .iter()
        .filter(move |c| c.batch == batch && c.setup == setup)
}

fn batches(results: &PluginResults) -> Vec<usize> {
    let mut sizes: Vec<usize> = results.throughput.iter().map(|c| c.batch).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The goal rows: (goal, measured, verdict).
pub fn goals(results: &PluginResults) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    rows.extend(throughput_goal(results));
    if !results.calls.is_empty() {
        rows.push(calls_goal(
            results,
            format!(
                "instantiation from `InstancePre`, store included ≤ {MAX_INSTANTIATE_US} µs mean (undisturbed groups)"
            ),
            |c| (c.create_undisturbed_us, &c.store_and_instantiate),
            MAX_INSTANTIATE_US,
        ));
        rows.push(calls_goal(
            results,
            format!(
                "host-to-guest call overhead ≤ {MAX_CALL_OVERHEAD_US} µs (0-event call on a live instance, undisturbed blocks)"
            ),
            |c| (c.empty_call_undisturbed_us, &c.empty_call),
            MAX_CALL_OVERHEAD_US,
        ));
    }
    rows.extend(idle_memory_goal(results));
    rows
}

/// Three plugins against none at [`GOAL_BATCH`], by wall clock and by CPU
/// cost.
fn throughput_goal(results: &PluginResults) -> Option<(String, String, String)> {
    let r = ratios(results, GOAL_BATCH, "3");
    let (Some(wall), Some(cpu)) = (
        Spread::of(r.iter().map(|x| x.0)),
        Spread::of(r.iter().map(|x| x.1)),
    ) else {
        return None;
    };
    let (wall_ok, cpu_ok) = (
        wall.mean >= MIN_RATIO_THREE_AT_1000,
        cpu.mean >= MIN_RATIO_THREE_AT_1000,
    );
    let v = match (wall_ok, cpu_ok) {
        (true, true) => verdict(true).to_owned(),
        (false, false) => verdict(false).to_owned(),
        _ => "**unclear** (wall clock and CPU disagree: noise)".to_owned(),
    };
    let f = |x: f64| format!("{x:.2}");
    Some((
        format!(
            "batch {GOAL_BATCH}: ingest stage with 3 plugins ≥ {MIN_RATIO_THREE_AT_1000} × its throughput without plugins"
        ),
        format!(
            "{} × (CPU-cost ratio {} ×), mean of {} rounds",
            spread(&wall, f),
            spread(&cpu, f),
            wall.n
        ),
        v,
    ))
}

/// A per-call goal judged on each plugin's undisturbed mean, `measure`
/// giving that mean and the summary of all samples.
fn calls_goal(
    results: &PluginResults,
    goal: String,
    measure: impl Fn(&CallCosts) -> (f64, &Summary),
    limit: f64,
) -> (String, String, String) {
    let measured = results
        .calls
        .iter()
        .map(|c| {
            let (undisturbed, all) = measure(c);
            format!(
                "{} {} µs (all samples: mean {}, p50 {})",
                c.plugin,
                us(undisturbed),
                us(all.mean_us),
                us(all.p50_us)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    (
        goal,
        measured,
        verdict_all(results.calls.iter().map(|c| measure(c).0), limit),
    )
}

/// The resident memory an idle instance keeps after a batch, the worst
/// plugin judged.
fn idle_memory_goal(results: &PluginResults) -> Option<(String, String, String)> {
    if results.held.is_empty() {
        return None;
    }
    let worst = results
        .held
        .iter()
        .map(|h| h.per_instance(&h.after_batch))
        .fold(0.0, f64::max);
    let mut sizes: Vec<usize> = results.held.iter().map(|h| h.batch).collect();
    sizes.dedup();
    let measured = sizes
        .iter()
        .map(|&batch| {
            let plugins = results
                .held
                .iter()
                .filter(|h| h.batch == batch)
                .map(|h| format!("{} {}", h.plugin, kib(h.per_instance(&h.after_batch))))
                .collect::<Vec<_>>()
                .join(", ");
            format!("batch {batch}: {plugins}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some((
        format!(
            "an idle instance after a batch holds ≤ {} resident",
            kib(MAX_IDLE_INSTANCE_BYTES)
        ),
        format!("{measured} (RSS growth ÷ live instances)"),
        verdict(worst <= MAX_IDLE_INSTANCE_BYTES).to_owned(),
    ))
}

/// The generated section (without markers).
pub fn render(results: &PluginResults) -> String {
    let mut md = String::new();
    // Writing to a String cannot fail; `let _` keeps the code free of unwraps.
    let _ = writeln!(md, "### Last run\n");
    render_run(&mut md, results);
    render_goals(&mut md, results);
    render_throughput(&mut md, results);
    if !results.conversion.is_empty() {
        render_conversion(&mut md, results);
    }
    render_latency(&mut md, results);
    if !results.transport.is_empty() {
        render_transport(&mut md, results);
    }
    if !results.native.is_empty() {
        render_native(&mut md, results);
    }
    if !results.languages.is_empty() {
        render_languages(&mut md, results);
    }
    render_calls(&mut md, results);
    render_memory(&mut md, results);
    md
}

/// The machine, the workload and the runtime of the run.
fn render_run(md: &mut String, results: &PluginResults) {
    let env = &results.environment;
    let rt = &results.runtime;
    let _ = writeln!(
        md,
        "{} on `{}`, {} vCPU, {:.0} GiB, Linux {}; load average at start {}; commit {}. \
         Workload: {} distinct events, mean {:.0} bytes as sent. Runtime: the gateway's defaults \
         (CPU budget {} ms per call, {} linear memory, {} pool slots). Throughput: {} interleaved \
         rounds of {:.1} s per cell, one thread.\n",
        env.started_at,
        env.cpu_model,
        env.cpus,
        env.memory_gib,
        env.kernel,
        env.load_average,
        env.commit.as_deref().unwrap_or("unknown"),
        results.workload.distinct_events,
        results.workload.mean_event_bytes,
        rt.cpu_budget_ms,
        mib(rt.max_memory_bytes as f64),
        rt.max_instances,
        results.rounds,
        results.slice_seconds,
    );
}

/// The goal verdicts.
fn render_goals(md: &mut String, results: &PluginResults) {
    let _ = writeln!(md, "#### Goals\n");
    let _ = writeln!(md, "| goal | measured | verdict |\n|---|---|---|");
    for (goal, measured, v) in goals(results) {
        let _ = writeln!(md, "| {goal} | {measured} | {v} |");
    }
}

/// Events/s of the ingest stage per batch size and setup.
fn render_throughput(md: &mut String, results: &PluginResults) {
    let _ = writeln!(md, "\n#### Throughput of the ingest stage\n");
    let _ = writeln!(
        md,
        "Events/s through decode → admit → (plugins) → serialise on one thread; ratios are \
         against `none` in the same round, then averaged (lowest–highest round). CPU µs/event is \
         this thread's CPU time; the CPU-cost ratio (none ÷ setup) is the throughput ratio on \
         an unshared CPU.\n"
    );
    let _ = writeln!(
        md,
        "| batch | setup | events/s | ratio to none | CPU µs/event | CPU-cost ratio | added CPU µs/event |\n|---:|---|---:|---:|---:|---:|---:|"
    );
    for batch in batches(results) {
        let base_cpu =
            Spread::of(cells(results, batch, "none").map(ThroughputCell::cpu_us_per_event));
        for (setup, what) in SETUPS {
            let eps =
                Spread::of(cells(results, batch, setup).map(ThroughputCell::events_per_second));
            let cpu =
                Spread::of(cells(results, batch, setup).map(ThroughputCell::cpu_us_per_event));
            let (Some(eps), Some(cpu)) = (eps, cpu) else {
                continue;
            };
            let r = ratios(results, batch, setup);
            let wall = Spread::of(r.iter().map(|x| x.0));
            let cpu_ratio = Spread::of(r.iter().map(|x| x.1));
            let f2 = |x: f64| format!("{x:.2}");
            let added = base_cpu.map_or(String::from("–"), |b| us(cpu.mean - b.mean));
            let _ = writeln!(
                md,
                "| {batch} | {setup} ({what}) | {} | {} | {} | {} | {} |",
                spread(&eps, thousands),
                wall.map_or(String::from("–"), |s| spread(&s, f2)),
                spread(&cpu, us),
                cpu_ratio.map_or(String::from("–"), |s| spread(&s, f2)),
                if setup == "none" {
                    String::from("–")
                } else {
                    added
                },
            );
        }
    }
}

/// The host's own per-event steps around the chain.
fn render_conversion(md: &mut String, results: &PluginResults) {
    let _ = writeln!(
        md,
        "\nWhere the host's own per-event time goes (µs per event, whole batches, mean over the undisturbed steps). Without plugins an event is decoded, admitted and serialised; with a chain it is also converted to the WIT record; an event an enricher changed is checked again against the contract when it comes back (`OwnedEvent::from_wit`: a changed field is parsed again, an unchanged one only compared) and serialised from that copy (the last two columns, measured on every event with its context changed and its properties not, as the PII scrubber changes this workload), an unchanged one is serialised as admitted.\n"
    );
    let _ = writeln!(
        md,
        "| batch | decode + admit | serialise (no plugins) | to_wit | from_wit | serialise owned + size check |\n|---:|---:|---:|---:|---:|---:|"
    );
    for c in &results.conversion {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            c.batch,
            us(c.decode_admit_us),
            us(c.serialise_us),
            us(c.to_wit_us),
            us(c.from_wit_us),
            us(c.serialise_owned_us),
        );
    }
}

/// Each plugin call, fresh and reused instances, then the failed calls.
fn render_latency(md: &mut String, results: &PluginResults) {
    let _ = writeln!(md, "\n#### Added latency per plugin call\n");
    let _ = writeln!(
        md,
        "One call per batch; wall clock in µs as mean / p50 / p99 over all calls, then the mean over the *undisturbed* calls (the thread was never descheduled during the call, so no neighbour's time is in it), which also gives the per-event cost, and minor page faults per call. *Fresh* is `Runtime::validate` / \
         `Runtime::enrich`: a new store and instance, `init(config)`, the whole batch in one \
         call, drop (what a batch costs when no warm instance is parked); *reused* is \
         `Runtime::run_batch` on the plugin's instance pool, as the chain calls it: a warm, \
         initialised instance, the batch in calls of at most `max_events_per_call` / \
         `max_bytes_per_call`, the instance parked again; measured alternately with it.\n"
    );
    let _ = writeln!(
        md,
        "| plugin | batch | fresh instance: all calls | undisturbed mean | µs/event | page faults | reused instance: all calls | undisturbed mean | µs/event | page faults | fresh − reused (undisturbed) | undisturbed calls kept | events changed or rejected |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in &results.latency {
        let per_event = |v: f64| us(v / row.batch.max(1) as f64);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.0} | {} | {} / {} of {} | {} |",
            row.plugin,
            row.batch,
            triple(&row.fresh),
            us(row.fresh_undisturbed_us),
            per_event(row.fresh_undisturbed_us),
            row.fresh_faults,
            triple(&row.reused),
            us(row.reused_undisturbed_us),
            per_event(row.reused_undisturbed_us),
            row.reused_faults,
            us(row.fresh_undisturbed_us - row.reused_undisturbed_us),
            row.fresh_kept,
            row.reused_kept,
            row.fresh.samples,
            row.changed_or_rejected,
        );
    }
    let failures: Vec<String> = results
        .latency
        .iter()
        .filter(|r| r.failed != (0, 0))
        .map(|r| {
            format!(
                "{} at batch {}: {} fresh and {} reused calls ({})",
                r.plugin,
                r.batch,
                r.failed.0,
                r.failed.1,
                r.last_error.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(
            md,
            "\nFailed calls (left out of the timings): {}.",
            failures.join("; ")
        );
    }
    let failed_calls: u64 = results.throughput.iter().map(|c| c.failed_calls).sum();
    if failed_calls > 0 {
        let _ = writeln!(
            md,
            "\nPlugin calls that failed during the throughput runs (their events were rejected by the `reject` policy and still counted): {failed_calls}."
        );
    }
}

/// Events into guests that ignore them: the floor under every plugin.
fn render_transport(md: &mut String, results: &PluginResults) {
    let _ = writeln!(
        md,
        "\nThe floor under every plugin, *transport*: the same events passed on a live instance to a guest that ignores them: in `sluice:plugin@0.1.0` the `wrong_length` test fixture (a bare wit-bindgen validator that drops its input), in `0.2.0` the `ignore` fixture (one `accept` per event), once asking for every field and the spans (what 0.1 always moved) and once for nothing (only `event_id` and `name` are sent). A 0.2 call includes the host's encoding of the batch. Per event = (CPU per call − CPU per 0-event call) ÷ batch.\n"
    );
    let _ = writeln!(
        md,
        "| interface, what moves | batch | wall mean / p50 / p99 µs | CPU µs per call | CPU µs per event |\n|---|---:|---:|---:|---:|"
    );
    for t in &results.transport {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            if t.path.is_empty() {
                "0.1.0, every field"
            } else {
                &t.path
            },
            t.batch,
            triple(&t.wall),
            us(t.cpu_us),
            if t.batch == 0 {
                String::from("–")
            } else {
                us(t.cpu_us_per_event)
            },
        );
    }
}

/// Where the fixed cost of a call goes.
fn render_calls(md: &mut String, results: &PluginResults) {
    let _ = writeln!(md, "\n#### Instantiation and call overhead\n");
    let _ = writeln!(
        md,
        "Wall-clock µs as mean / p50 / p99 over {} iterations per plugin; *undisturbed* means are wall time per operation over the timed groups (32 instances created, then dropped, back to back; blocks of 100 bare calls) during which the thread was never descheduled (its schedstat switch count did not move), which leaves out the time neighbours had the core; the goals are judged on them. Kept groups: {}. Stores and instances are the \
         gateway's own (`Runtime::store`, `Runtime::instantiate_in`). *Bare call*: \
         `validate`/`enrich` with 0 (or 1) events on a live instance, timed over blocks of 100 \
         calls (lifting and lowering the lists, the guest's entry and exit, post-return, and \
         re-arming the epoch deadline). *Runtime, 0 events*: the gateway's \
         `Runtime::validate`/`enrich` on an empty batch, i.e. store + instantiate + init + \
         first call + drop.\n",
        results.calls.first().map_or(0, |c| c.store.samples),
        results
            .calls
            .iter()
            .map(|c| format!(
                "{} {}/{} instance groups, {}/{} call blocks",
                c.plugin, c.groups_kept, c.groups, c.blocks_kept, c.blocks
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        md,
        "| plugin | store | instantiate | store + instantiate | undisturbed mean: store + instantiate / drop | init(config) | first call | drop | bare call, 0 events | bare call, 1 event | undisturbed mean: bare call, 0 / 1 event | Runtime, 0 events | Runtime, 1 event |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in &results.calls {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |",
            c.plugin,
            triple(&c.store),
            triple(&c.instantiate),
            triple(&c.store_and_instantiate),
            us(c.create_undisturbed_us),
            us(c.drop_undisturbed_us),
            triple(&c.init),
            triple(&c.first_empty_call),
            triple(&c.drop),
            triple(&c.empty_call),
            triple(&c.one_event_call),
            us(c.empty_call_undisturbed_us),
            us(c.one_event_call_undisturbed_us),
            triple(&c.runtime_empty),
            triple(&c.runtime_one),
        );
    }
}

/// Compiled plugins, the process over the run, and live instances.
fn render_memory(md: &mut String, results: &PluginResults) {
    let _ = writeln!(md, "\n#### Memory\n");
    let _ = writeln!(
        md,
        "| plugin | kind | component | compiled code image | compile | RSS growth, first compile | RSS growth, second copy kept |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for p in &results.plugins {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} ms | {} | {} |",
            p.name,
            p.kind,
            kib(p.component_bytes as f64),
            kib(p.image_bytes as f64),
            p.compile_ms,
            kib(p.rss_first_compile_bytes as f64),
            kib(p.rss_second_copy_bytes as f64),
        );
    }
    let _ = writeln!(
        md,
        "\nResident memory of the benchmark process (VmRSS, and its anonymous / file / shmem parts) as the run went on:\n"
    );
    let _ = writeln!(
        md,
        "| moment | RSS | anon | file | shmem | Δ RSS |\n|---|---:|---:|---:|---:|---:|"
    );
    let mut previous: Option<u64> = None;
    for m in &results.memory {
        let delta = previous.map_or(String::from("–"), |p| kib(m.rss_bytes as f64 - p as f64));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            m.label,
            mib(m.rss_bytes as f64),
            mib(m.anon_bytes as f64),
            mib(m.file_bytes as f64),
            mib(m.shmem_bytes as f64),
            delta
        );
        previous = Some(m.rss_bytes);
    }
    let _ = writeln!(
        md,
        "\nLive instances: N instances of one plugin created and initialised by the runtime (`Runtime::instantiate`, `init`), then each given one batch exactly as `Runtime::run_batch` gives it (calls of bounded size), all held at once as parked instances are, then dropped. Per instance = RSS growth since *before* ÷ N.\n"
    );
    let _ = writeln!(
        md,
        "| plugin | N | per instance after init | per instance after a batch | batch | RSS after drop − before |\n|---|---:|---:|---:|---:|---:|"
    );
    for h in &results.held {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            h.plugin,
            h.instances,
            kib(h.per_instance(&h.after_init)),
            kib(h.per_instance(&h.after_batch)),
            h.batch,
            kib(h.after_drop.rss_bytes as f64 - h.before.rss_bytes as f64),
        );
    }
}

/// `required-properties` in every language it was built in.
fn render_languages(md: &mut String, results: &PluginResults) {
    let _ = writeln!(
        md,
        "\n#### One plugin in three languages\n\n`required-properties` built with the Rust SDK, the TypeScript SDK (componentize-js: SpiderMonkey inside the component) and the Python SDK (componentize-py: CPython inside), same configuration, same runtime limits, the last batch size above. *Compile*: `Runtime::compile` on an empty artifact cache (a cold replica taking an upload into service); *load*: the same from the artifact cache in a new engine (a restart). *Events/s per core*: the plugin stage alone (`run_batch`) on the measuring thread's CPU time, with a fresh instance (instantiate + `init`) per batch and with one reused instance. *Idle memory*: resident growth per instance while {} instances are held, each after one batch.\n",
        results.languages.first().map_or(0, |r| r.instances)
    );
    let _ = writeln!(
        md,
        "| language | component | compile s | load ms | instantiate + init ms | batch | events/s per core, fresh instance | events/s per core, reused | idle memory per instance |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in &results.languages {
        let _ = writeln!(
            md,
            "| {} | {:.1} MB | {:.2} | {:.1} | {:.2} | {} | {:.0}K | {:.0}K | {:.0} KiB |",
            row.language,
            row.component_bytes as f64 / 1e6,
            row.compile_s,
            row.load_ms,
            row.instantiate_init_ms,
            row.batch,
            row.fresh_events_per_s / 1e3,
            row.reused_events_per_s / 1e3,
            row.idle_kib_per_instance,
        );
    }
}

/// The native floor next to the same plugins in the runtime.
fn render_native(md: &mut String, results: &PluginResults) {
    let _ = writeln!(
        md,
        "\n#### Native floor: the same plugins without Wasm\n\nThe three example plugins' own Rust code compiled for the host (LLVM, the workspace's release profile; no Wasm, no canonical ABI, no runtime), handed the same batches as the host encodes them for `sluice:plugin@0.2.0` (one JSON text and its spans, only the fields each plugin declares) and read by the same SDK code a component runs (`Batch`, one call per event), timed on the measuring thread, undisturbed calls only. *Copy* is copying the encoded batch (what the canonical ABI copies into the guest); *own code* is the SDK's batch reader and the plugin's per-event `validate`/`enrich`, dropping the batch and the results included (the drop timed on its own as *drop*). *In the runtime* is the reused-instance mean per event from the latency table above (transport, guest code and the host's bookkeeping).\n"
    );
    let _ = writeln!(
        md,
        "| plugin | batch | native: copy µs/event | native: own code µs/event | of which drop | in the runtime µs/event | runtime ÷ native own code | undisturbed calls kept | events changed or rejected |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for batch in batches(results) {
        let (mut own_sum, mut drop_sum, mut runtime_sum) = (0.0, 0.0, 0.0);
        for row in results.native.iter().filter(|r| r.batch == batch) {
            let runtime = results
                .latency
                .iter()
                .find(|l| l.plugin == row.plugin && l.batch == batch)
                .map_or(f64::NAN, |l| l.reused_undisturbed_us / batch as f64);
            own_sum += row.own_us;
            drop_sum += row.drop_us;
            runtime_sum += runtime;
            let _ = writeln!(
                md,
                "| {} | {batch} | {} | {} | {} | {} | {:.1} × | {} / {} | {} |",
                row.plugin,
                us(row.copy_us),
                us(row.own_us),
                us(row.drop_us),
                us(runtime),
                runtime / row.own_us,
                row.kept,
                row.calls,
                row.changed_or_rejected,
            );
        }
        let _ = writeln!(
            md,
            "| all three | {batch} | | **{}** | {} | **{}** | {:.1} × | | |",
            us(own_sum),
            us(drop_sum),
            us(runtime_sum),
            runtime_sum / own_sum,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_its_own_section() {
        let other = crate::report::BEGIN_MARKER;
        let other_end = crate::report::END_MARKER;
        let doc = format!(
            "intro\n{other}\nbench\n{other_end}\n## Plugins\ntext\n{BEGIN_MARKER}\nold\n{END_MARKER}\noutro\n"
        );
        let out = splice(&doc, "new\n").unwrap();
        assert_eq!(
            out,
            format!(
                "intro\n{other}\nbench\n{other_end}\n## Plugins\ntext\n{BEGIN_MARKER}\n\nnew\n{END_MARKER}\noutro\n"
            )
        );
        assert!(crate::report::splice(&out, "x").is_ok());
        assert!(splice("no markers", "x").is_err());
    }

    #[test]
    fn ratios_pair_rounds() {
        let cell = |round, setup: &str, events, cpu| ThroughputCell {
            round,
            batch: 1000,
            setup: setup.to_owned(),
            batches: 1,
            events,
            accepted: events,
            rejected: 0,
            failed_calls: 0,
            wall_seconds: 1.0,
            cpu_seconds: cpu,
        };
        let results = PluginResults {
            rounds: 2,
            throughput: vec![
                cell(1, "none", 1000, 1.0),
                cell(1, "3", 500, 1.0),
                cell(2, "none", 2000, 1.0),
                cell(2, "3", 1000, 1.0),
            ],
            ..PluginResults::default()
        };
        let r = ratios(&results, 1000, "3");
        assert_eq!(r, vec![(0.5, 0.5), (0.5, 0.5)]);
        assert!(goals(&results)[0].2.contains("not met"));
        assert_eq!(thousands(1234567.0), "1,234,567");
    }
    #[test]
    fn native_floor_sums_the_three_plugins() {
        let native = |plugin: &str, own_us| super::super::native::NativeRow {
            plugin: plugin.to_owned(),
            batch: 1000,
            copy_us: 0.2,
            own_us,
            drop_us: 0.1,
            kept: 10,
            calls: 10,
            changed_or_rejected: 0,
        };
        let results = PluginResults {
            throughput: vec![ThroughputCell {
                round: 1,
                batch: 1000,
                setup: "none".to_owned(),
                batches: 1,
                events: 1000,
                accepted: 1000,
                rejected: 0,
                failed_calls: 0,
                wall_seconds: 1.0,
                cpu_seconds: 1.0,
            }],
            native: vec![native("a", 0.5), native("b", 1.0), native("c", 1.5)],
            ..PluginResults::default()
        };
        let md = render(&results);
        assert!(md.contains("| a | 1000 | 0.20 | 0.50 | 0.10 |"), "{md}");
        assert!(
            md.contains("| all three | 1000 | | **3.00** | 0.30 |"),
            "{md}"
        );
    }
}
