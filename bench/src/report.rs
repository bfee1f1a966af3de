//! Markdown for `docs/benchmarks.md`: the results tables and the verdict on
//! each goal of the benchmark issue, spliced between two marker comments so
//! the hand-written text around them survives every run.

use std::fmt::Write as _;

use crate::results::{BatchResult, OverloadResults, Quantiles, Run, Spread, ThroughputResults};
use crate::suite::{RouteRound, SdkRouteResults};
use crate::workload::Route;

pub const BEGIN_MARKER: &str = "<!-- BEGIN GENERATED RESULTS (scripts/bench) -->";
pub const END_MARKER: &str = "<!-- END GENERATED RESULTS -->";
pub const SDK_BEGIN_MARKER: &str = "<!-- BEGIN GENERATED SDK ROUTE RESULTS (scripts/bench) -->";
pub const SDK_END_MARKER: &str = "<!-- END GENERATED SDK ROUTE RESULTS -->";

/// The goals, as numbers.
const MIN_RATIO_AT_1000: f64 = 0.5;
const MAX_CPU_US_PER_EVENT: f64 = 10.0;
const MAX_PROCESSING_P99_MS: f64 = 2.0;
const E2E_P99_ABOVE_LINGER_MS: f64 = 15.0;
/// "Serves normally again as soon as the load drops": within a second.
const MAX_RECOVERY_MS: f64 = 1000.0;
/// Issue 23: an SDK route's CPU per event ÷ the native route's, batch 100.
const MAX_SDK_CPU_VS_NATIVE: f64 = 1.2;
/// Issue 23: an SDK route's events/s ÷ the raw producer's, batch 100.
const MIN_SDK_RATIO: f64 = 0.8;
/// The batch size both SDK goals are judged at.
const SDK_GOAL_BATCH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    /// Could not be measured in this run (e.g. no `/metrics`).
    Unknown,
}

impl Verdict {
    pub(crate) fn from_bool(met: bool) -> Self {
        if met { Self::Met } else { Self::NotMet }
    }

    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Met => "**met**",
            Self::NotMet => "**not met**",
            Self::Unknown => "not measured",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub verdict: Verdict,
}

pub(crate) fn num(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn opt(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{}{unit}", num(v)))
}

/// "0.52 (0.46–0.57)" for several rounds, "0.52" for one.
pub(crate) fn spread(s: Spread, unit: &str) -> String {
    if s.n > 1 {
        format!("{}{unit} ({}–{})", num(s.mean), num(s.min), num(s.max))
    } else {
        format!("{}{unit}", num(s.mean))
    }
}

fn p50_p99(q: &Quantiles) -> String {
    format!("{} / {}", num(q.p50_ms), num(q.p99_ms))
}

fn statuses(run: &Run) -> String {
    let mut parts: Vec<String> = run
        .statuses
        .iter()
        .map(|(status, n)| format!("{status}: {}", thousands(*n as f64)))
        .collect();
    if run.transport_errors > 0 {
        let kinds: Vec<String> = run
            .transport_failures
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        parts.push(format!(
            "no HTTP answer: {} ({})",
            thousands(run.transport_errors as f64),
            kinds.join(", ")
        ));
    }
    if run.not_sent > 0 {
        parts.push(format!(
            "not sent (client cap): {}",
            thousands(run.not_sent as f64)
        ));
    }
    parts.join(", ")
}

/// Every goal of the issue with what this run measured.
pub fn goals(
    throughput: Option<&ThroughputResults>,
    overload: Option<&OverloadResults>,
) -> Vec<Goal> {
    let mut goals = throughput.map(throughput_goals).unwrap_or_default();
    goals.extend(overload.map(overload_goals).unwrap_or_default());
    goals
}

/// The goals of the closed-loop and half-load runs.
fn throughput_goals(t: &ThroughputResults) -> Vec<Goal> {
    let mut goals = Vec::new();
    let ratio = Spread::of(t.rounds_of(1000).filter_map(BatchResult::ratio));
    let cpu_ratio = Spread::of(t.rounds_of(1000).filter_map(BatchResult::cpu_ratio));
    goals.push(Goal {
        goal: format!(
            "batch 1000: gateway ≥ {MIN_RATIO_AT_1000} × raw-producer events/s (mean of rounds)"
        ),
        measured: ratio.map_or_else(
            || "no batch-1000 run".to_owned(),
            |r| {
                format!(
                    "{}; CPU-cost ratio {}",
                    spread(r, " ×"),
                    cpu_ratio.map_or("–".to_owned(), |c| spread(c, " ×"))
                )
            },
        ),
        verdict: ratio.map_or(Verdict::Unknown, |r| {
            Verdict::from_bool(r.mean >= MIN_RATIO_AT_1000)
        }),
    });
    for size in t.sizes() {
        let cpu = Spread::of(
            t.rounds_of(size)
                .filter_map(|b| b.gateway.gateway_cpu_us_per_event()),
        );
        goals.push(Goal {
            goal: format!(
                "batch {size}: gateway CPU ≤ {MAX_CPU_US_PER_EVENT} µs per accepted event"
            ),
            measured: cpu.map_or("–".to_owned(), |c| spread(c, " µs")),
            verdict: cpu.map_or(Verdict::Unknown, |c| {
                Verdict::from_bool(c.mean <= MAX_CPU_US_PER_EVENT)
            }),
        });
    }
    let half = t.half_load.as_ref();
    let processing = half.and_then(|h| h.run.server.as_ref());
    let (measured, verdict) = match processing.and_then(|s| s.processing.as_ref()) {
        Some(q) => {
            let share = processing.and_then(|s| s.processing_within_2ms);
            let met = share.map_or(q.p99_ms < MAX_PROCESSING_P99_MS, |s| s >= 0.99);
            (
                format!(
                    "p99 ≈ {} ms (bucket-interpolated); {} of requests ≤ 2 ms",
                    num(q.p99_ms),
                    share.map_or("?".to_owned(), |s| format!("{:.2} %", s * 100.0))
                ),
                Verdict::from_bool(met),
            )
        }
        None => (
            "gateway exposes no processing histogram on /metrics".to_owned(),
            Verdict::Unknown,
        ),
    };
    goals.push(Goal {
        goal: format!("half load, batch 100: gateway processing p99 < {MAX_PROCESSING_P99_MS} ms"),
        measured,
        verdict,
    });
    let limit = t.producer.linger_ms as f64 + E2E_P99_ABOVE_LINGER_MS;
    goals.push(Goal {
        goal: format!(
            "half load, batch 100: end-to-end p99 < linger + {E2E_P99_ABOVE_LINGER_MS} ms = {limit} ms"
        ),
        measured: half.map_or_else(
            || "no half-load run".to_owned(),
            |h| {
                let raw = h.baseline.as_ref().map_or(String::new(), |b| {
                    format!(" (raw producer, same schedule: {} ms)", num(b.latency.p99_ms))
                });
                format!("{} ms{raw}", num(h.run.latency.p99_ms))
            },
        ),
        verdict: half.map_or(Verdict::Unknown, |h| {
            Verdict::from_bool(h.run.latency.p99_ms < limit)
        }),
    });
    goals
}

/// The goals of the overload run and the recovery after it.
fn overload_goals(o: &OverloadResults) -> Vec<Goal> {
    let mut goals = Vec::new();
    let run = &o.run;
    let shed = run.status(429) + run.status(503);
    let other_5xx: u64 = run
        .statuses
        .iter()
        .filter(|(s, _)| s.starts_with('5') && s.as_str() != "503")
        .map(|(_, n)| n)
        .sum();
    let achieved = run.requests as f64 * run.batch as f64
        / o.offered_seconds.max(1e-9)
        / o.capacity_events_per_second.max(1e-9);
    // A goal at 10× is met only by a run that offered about 10×: a
    // client that sent 6× shows nothing about 10× (within 5 %, the
    // scheduler's own jitter).
    let offered_enough = achieved >= o.factor * 0.95;
    goals.push(Goal {
        goal: format!(
            "{}× capacity offered: sheds with 429/503, nothing else fails",
            o.factor
        ),
        measured: format!(
            "sent {achieved:.1}× capacity{}; {}; other 5xx: {other_5xx}",
            if offered_enough {
                ""
            } else {
                " (the client could not offer the full factor: not a result at it)"
            },
            statuses(run)
        ),
        verdict: Verdict::from_bool(
            offered_enough && shed > 0 && other_5xx == 0 && run.transport_errors == 0,
        ),
    });
    let peak = o.peak_rss_bytes.max(o.peak_sampled_rss_bytes);
    goals.push(Goal {
        goal: format!(
            "overload: peak RSS under the {} budget",
            mib(o.config.rss_budget_bytes)
        ),
        measured: format!("peak {} (idle {})", mib(peak), mib(o.idle_rss_bytes)),
        verdict: Verdict::from_bool(peak <= o.config.rss_budget_bytes),
    });
    let after = &o.recovery.after;
    let after_ok = after.requests > 0 && after.status(200) == after.requests;
    goals.push(Goal {
        goal: format!("after overload: first 200 within {MAX_RECOVERY_MS} ms, then normal service"),
        measured: format!(
            "first 200 after {}; next {} s: {} requests, {} (p99 {} ms)",
            opt(o.recovery.first_ok_after_ms, " ms"),
            num(after.seconds),
            after.requests,
            statuses(after),
            num(after.latency.p99_ms)
        ),
        verdict: Verdict::from_bool(
            o.recovery
                .first_ok_after_ms
                .is_some_and(|ms| ms <= MAX_RECOVERY_MS)
                && after_ok,
        ),
    });
    goals
}

/// The generated section (without markers).
pub fn render(
    throughput: Option<&ThroughputResults>,
    overload: Option<&OverloadResults>,
) -> String {
    let mut md = String::new();
    // Writing to a String cannot fail; `let _` keeps the code free of unwraps.
    let env = throughput
        .map(|t| &t.environment)
        .or(overload.map(|o| &o.environment));
    let _ = writeln!(md, "### Last run\n");
    if let Some(env) = env {
        let _ = writeln!(
            md,
            "{} on `{}`, {} vCPU, {:.0} GiB, Linux {}; load average at start {}; Kafka {} broker(s) at {}; commit {}.\n",
            env.started_at,
            env.cpu_model,
            env.cpus,
            env.memory_gib,
            env.kernel,
            env.load_average,
            env.broker_count,
            env.brokers,
            env.commit.as_deref().unwrap_or("unknown"),
        );
    }

    let _ = writeln!(md, "### Goals\n");
    let _ = writeln!(md, "| goal | measured | verdict |\n|---|---|---|");
    for goal in goals(throughput, overload) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            goal.goal,
            goal.measured,
            goal.verdict.text()
        );
    }
    let _ = writeln!(md);

    if let Some(t) = throughput {
        render_throughput(&mut md, t);
    }
    if let Some(o) = overload {
        render_overload(&mut md, o);
    }
    md
}

fn render_throughput(md: &mut String, t: &ThroughputResults) {
    let w = &t.workload;
    let p = &t.producer;
    let _ = writeln!(
        md,
        "### Throughput: gateway vs raw producer\n\n\
         Events: {} distinct, mean {:.0} bytes as sent, {:.0} bytes as produced, {} users. \
         Producer (both sides): topic `{}` ({} partitions), acks=all, idempotence, zstd, \
         linger {} ms, queue {} KiB. Ratio = gateway events/s ÷ raw-producer events/s at \
         the same batch size and concurrency, measured back to back; CPU-cost ratio = raw \
         producer CPU µs/event ÷ gateway CPU µs/event (the ratio on equal CPU, far less \
         sensitive to neighbours). Rounds repeat every batch size, interleaved.\n",
        w.distinct_events,
        w.mean_event_bytes,
        w.mean_record_bytes,
        w.users,
        p.topic,
        p.partitions,
        p.linger_ms,
        p.queue_max_kbytes
    );
    let _ = writeln!(
        md,
        "| round | batch | concurrent | raw producer events/s | gateway events/s | ratio | CPU-cost ratio | gateway p50 / p99 ms | raw p50 / p99 ms | gateway req/s | gateway CPU µs/event | raw producer CPU µs/event | load generator CPU µs/event | Kafka CPU µs/event (gateway run) | gateway statuses |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for b in &t.batches {
        let g = &b.gateway;
        let r = &b.baseline;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            b.round,
            b.batch,
            b.concurrency,
            thousands(r.events_per_second),
            thousands(g.events_per_second),
            opt(b.ratio(), ""),
            opt(b.cpu_ratio(), ""),
            p50_p99(&g.latency),
            p50_p99(&r.latency),
            thousands(g.requests_per_second),
            opt(g.gateway_cpu_us_per_event(), ""),
            opt(r.per_event_us(r.cpu.bench_seconds), ""),
            opt(g.per_event_us(g.cpu.bench_seconds), ""),
            opt(g.cpu.kafka_seconds.and_then(|s| g.per_event_us(s)), ""),
            statuses(g),
        );
    }
    let _ = writeln!(md);
    let server_rows: Vec<_> = t
        .batches
        .iter()
        .filter_map(|b| {
            b.gateway
                .server
                .as_ref()
                .map(|s| (b.batch, format!("closed loop, round {}", b.round), s))
        })
        .chain(t.half_load.iter().filter_map(|h| {
            h.run
                .server
                .as_ref()
                .map(|s| (h.run.batch, "half load".to_owned(), s))
        }))
        .collect();
    if !server_rows.is_empty() {
        let _ = writeln!(
            md,
            "Inside the gateway (from `/metrics` histograms, differenced around each run; \
             p50 / p99 in ms, interpolated within buckets):\n\n\
             | batch | load | processing | processing ≤ 2 ms | produce (enqueue → last ack) | whole request |\n\
             |---:|---|---:|---:|---:|---:|"
        );
        for (batch, load, s) in server_rows {
            let q = |q: &Option<Quantiles>| q.as_ref().map_or("–".to_owned(), p50_p99);
            let _ = writeln!(
                md,
                "| {batch} | {load} | {} | {} | {} | {} |",
                q(&s.processing),
                s.processing_within_2ms
                    .map_or("–".to_owned(), |v| format!("{:.2} %", v * 100.0)),
                q(&s.produce),
                q(&s.request),
            );
        }
        let _ = writeln!(md);
    }
    if let Some(h) = &t.half_load {
        let _ = writeln!(
            md,
            "### Latency at half load\n\n\
             Batch {}: open loop at {:.1} requests/s = half of the {} events/s the gateway \
             reached in the closed-loop run above; the raw producer on the same schedule \
             first. Latency counts from each request's scheduled send time (no coordinated \
             omission).\n\n\
             | path | accepted events/s | end-to-end p50 / p90 / p99 / max ms | service p50 / p99 ms | CPU µs/event (gateway or raw producer) | statuses |\n\
             |---|---:|---:|---:|---:|---|",
            h.run.batch,
            h.target_requests_per_second,
            thousands(h.max_events_per_second),
        );
        let rows = h
            .baseline
            .iter()
            .map(|r| (r, r.per_event_us(r.cpu.bench_seconds)))
            .chain(std::iter::once((&h.run, h.run.gateway_cpu_us_per_event())));
        for (r, cpu) in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} / {} / {} / {} | {} | {} | {} |",
                r.label,
                thousands(r.events_per_second),
                num(r.latency.p50_ms),
                num(r.latency.p90_ms),
                num(r.latency.p99_ms),
                opt(r.latency.max_ms, ""),
                r.service.as_ref().map_or("–".to_owned(), p50_p99),
                opt(cpu, ""),
                statuses(r),
            );
        }
        let _ = writeln!(md);
    }
}

/// The SDK routes' goals (issue 23) with what this run measured.
pub fn sdk_goals(r: &SdkRouteResults) -> Vec<Goal> {
    let at = |size: usize| r.rounds.iter().filter(move |round| round.batch == size);
    let mut goals = Vec::new();
    for route in routes_in(r) {
        let name = route.name();
        let of = |f: fn(&RouteRound, &Run) -> Option<f64>| {
            Spread::of(at(SDK_GOAL_BATCH).filter_map(|round| {
                let run = round.routes.iter().find(|rr| rr.route == route)?;
                f(round, &run.run)
            }))
        };
        let cpu = of(RouteRound::cpu_vs_native);
        goals.push(Goal {
            goal: format!(
                "batch {SDK_GOAL_BATCH}, {name} route: gateway CPU per event ≤ {MAX_SDK_CPU_VS_NATIVE} × the native route's (same round)"
            ),
            measured: cpu.map_or("–".to_owned(), |c| spread(c, " ×")),
            verdict: cpu.map_or(Verdict::Unknown, |c| {
                Verdict::from_bool(c.mean <= MAX_SDK_CPU_VS_NATIVE)
            }),
        });
        let ratio = of(RouteRound::ratio);
        goals.push(Goal {
            goal: format!(
                "batch {SDK_GOAL_BATCH}, {name} route: ≥ {MIN_SDK_RATIO} × raw-producer events/s (same round)"
            ),
            measured: ratio.map_or("–".to_owned(), |c| spread(c, " ×")),
            verdict: ratio.map_or(Verdict::Unknown, |c| {
                Verdict::from_bool(c.mean >= MIN_SDK_RATIO)
            }),
        });
    }
    goals
}

fn routes_in(r: &SdkRouteResults) -> Vec<Route> {
    let mut routes: Vec<Route> = r
        .rounds
        .iter()
        .flat_map(|round| round.routes.iter().map(|rr| rr.route))
        .collect();
    routes.sort();
    routes.dedup();
    routes
}

/// The generated SDK routes section (without markers).
pub fn render_sdk_routes(r: &SdkRouteResults) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "#### Last run\n\n\
         {}. Events: {} distinct, mean {:.0} bytes as sent natively.\n",
        r.environment.machine(),
        r.workload.distinct_events,
        r.workload.mean_event_bytes,
    );
    let _ = writeln!(
        md,
        "#### Goals\n\n| goal | measured | verdict |\n|---|---|---|"
    );
    for goal in sdk_goals(r) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            goal.goal,
            goal.measured,
            goal.verdict.text()
        );
    }
    let _ = writeln!(
        md,
        "\n#### Every run\n\n\
         Per round and batch size: the raw producer, the native route, then each SDK route, \
         back to back. Ratio = the route's events/s ÷ the raw producer's; CPU ÷ native = \
         the route's gateway CPU µs per event ÷ the native route's.\n\n\
         | round | batch | concurrent | route | events/s | ratio to raw producer | gateway CPU µs/event | CPU ÷ native | p50 / p99 ms | processing p50 / p99 ms | statuses |\n\
         |---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"
    );
    for round in &r.rounds {
        let raw = &round.baseline;
        let _ = writeln!(
            md,
            "| {} | {} | {} | raw producer | {} | 1 | – | – | {} | – | {} |",
            round.round,
            round.batch,
            round.concurrency,
            thousands(raw.events_per_second),
            p50_p99(&raw.latency),
            statuses(raw),
        );
        let rows = std::iter::once(("native".to_owned(), &round.native)).chain(
            round.routes.iter().map(|rr| {
                let path = rr.route.path(round.batch);
                (format!("{} `{path}`", rr.route.name()), &rr.run)
            }),
        );
        for (name, run) in rows {
            let processing = run
                .server
                .as_ref()
                .and_then(|s| s.processing.as_ref())
                .map_or("–".to_owned(), p50_p99);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {name} | {} | {} | {} | {} | {} | {processing} | {} |",
                round.round,
                round.batch,
                round.concurrency,
                thousands(run.events_per_second),
                opt(round.ratio(run), ""),
                opt(run.gateway_cpu_us_per_event(), ""),
                opt(round.cpu_vs_native(run), ""),
                p50_p99(&run.latency),
                statuses(run),
            );
        }
    }
    md
}

fn render_overload(md: &mut String, o: &OverloadResults) {
    let c = &o.config;
    let r = &o.run;
    let _ = writeln!(
        md,
        "### Overload\n\n\
         A second gateway with small limits: `admission.max_in_flight_requests` = {}, \
         `admission.memory_budget_bytes` = {}, `producer.queue_max_kbytes` = {} KiB, \
         `ingest.max_body_bytes` = {}{}; RSS budget {}. Offered {:.0}× the measured capacity \
         ({} events/s) as {:.0} requests/s of {} events for {:.0} s, at most {} requests open \
         on the client side.\n",
        c.max_in_flight_requests,
        mib(c.memory_budget_bytes),
        c.queue_max_kbytes,
        mib(c.max_body_bytes),
        if c.max_connections > 0 {
            format!(
                ", `admission.max_connections` = {}, `admission.max_resident_bytes` = the budget \
                 (64 MiB base + bodies + queue + 32 KiB per connection)",
                c.max_connections
            )
        } else {
            String::new()
        },
        mib(c.rss_budget_bytes),
        o.factor,
        thousands(o.capacity_events_per_second),
        o.target_requests_per_second,
        r.batch,
        o.offered_seconds,
        o.client_max_in_flight,
    );
    let _ = writeln!(
        md,
        "| requests sent | statuses | accepted events/s during overload | service p50 / p99 ms | RSS idle / warm / peak | RSS samples | first 200 after load dropped | gateway CPU µs/accepted event |\n\
         |---:|---|---:|---:|---|---:|---:|---:|\n\
         | {} | {} | {} | {} | {} / {} / {} | {} | {} | {} |\n",
        thousands(r.requests as f64),
        statuses(r),
        thousands(r.accepted_events as f64 / o.offered_seconds.max(1e-9)),
        r.service.as_ref().map_or("–".to_owned(), p50_p99),
        mib(o.idle_rss_bytes),
        mib(o.warm_rss_bytes),
        mib(o.peak_rss_bytes.max(o.peak_sampled_rss_bytes)),
        o.rss_samples,
        opt(o.recovery.first_ok_after_ms, " ms"),
        opt(r.gateway_cpu_us_per_event(), ""),
    );
    let a = &o.recovery.after;
    let _ = writeln!(
        md,
        "After the overload: {} probe request(s) until the first 200, then {} s of normal \
         load ({}): {} events/s accepted, p50 / p99 {} ms, statuses {}.\n",
        o.recovery.probes,
        num(a.seconds),
        a.load,
        thousands(a.events_per_second),
        p50_p99(&a.latency),
        statuses(a),
    );
}

/// Replaces the text between the markers in `doc` with `generated`.
pub fn splice(doc: &str, generated: &str) -> anyhow::Result<String> {
    splice_section(doc, BEGIN_MARKER, END_MARKER, generated)
}

/// Rewrites the section of the file `doc` between `begin` and `end` with
/// `generated` (what every benchmark's `--doc` does).
pub fn update_section(
    doc: &std::path::Path,
    begin: &str,
    end: &str,
    generated: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let updated = splice_section(&text, begin, end, generated)
        .with_context(|| format!("updating {}", doc.display()))?;
    std::fs::write(doc, updated).with_context(|| format!("writing {}", doc.display()))
}

/// Replaces the text between `begin` and the first `end` after it, keeping
/// both markers and everything around them (each benchmark owns one section).
pub fn splice_section(
    doc: &str,
    begin: &str,
    end: &str,
    generated: &str,
) -> anyhow::Result<String> {
    let start = doc
        .find(begin)
        .ok_or_else(|| anyhow::anyhow!("marker `{begin}` not found"))?;
    let stop = doc[start..]
        .find(end)
        .map(|i| start + i)
        .ok_or_else(|| anyhow::anyhow!("marker `{end}` not found after the begin marker"))?;
    Ok(format!(
        "{}{begin}\n\n{}\n{}",
        &doc[..start],
        generated.trim_end(),
        &doc[stop..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{BatchResult, HalfLoad, OverloadConfig, Recovery, ServerTimes};

    fn run(events_per_second: f64, cpu: f64, accepted: u64) -> Run {
        let mut run = Run {
            events_per_second,
            accepted_events: accepted,
            ..Run::default()
        };
        run.cpu.gateway_seconds = Some(cpu);
        run
    }

    #[test]
    fn goals_compare_against_the_numbers() {
        let mut half = run(1000.0, 1.0, 1000);
        half.latency.p99_ms = 70.0;
        half.server = Some(ServerTimes {
            processing: Some(Quantiles {
                p99_ms: 1.5,
                ..Quantiles::default()
            }),
            processing_within_2ms: Some(0.995),
            ..ServerTimes::default()
        });
        let t = ThroughputResults {
            batches: vec![
                BatchResult {
                    round: 1,
                    batch: 1000,
                    concurrency: 8,
                    baseline: run(10_000.0, 0.0, 100_000),
                    gateway: run(6_000.0, 0.5, 100_000),
                },
                BatchResult {
                    round: 2,
                    batch: 1000,
                    concurrency: 8,
                    baseline: run(10_000.0, 0.0, 100_000),
                    gateway: run(4_500.0, 0.7, 100_000),
                },
            ],
            half_load: Some(HalfLoad {
                run: half,
                ..HalfLoad::default()
            }),
            producer: crate::results::ProducerInfo {
                linger_ms: 50,
                ..Default::default()
            },
            ..ThroughputResults::default()
        };
        let goals = goals(Some(&t), None);
        let verdicts: Vec<_> = goals.iter().map(|g| g.verdict).collect();
        assert_eq!(
            verdicts,
            vec![Verdict::Met, Verdict::Met, Verdict::Met, Verdict::NotMet]
        );
        // Verdicts use the mean over rounds; the spread is shown.
        assert!(
            goals[0].measured.starts_with("0.53 × (0.45–0.60)"),
            "{}",
            goals[0].measured
        );
        assert!(
            goals[1].measured.starts_with("6.00 µs (5.00–7.00)"),
            "{}",
            goals[1].measured
        );
    }

    #[test]
    fn overload_verdicts_need_shedding_memory_and_recovery() {
        let mut overload = OverloadResults {
            config: OverloadConfig {
                rss_budget_bytes: 100 << 20,
                ..OverloadConfig::default()
            },
            peak_rss_bytes: 80 << 20,
            capacity_events_per_second: 1000.0,
            offered_seconds: 10.0,
            factor: 10.0,
            recovery: Recovery {
                first_ok_after_ms: Some(120.0),
                after: Run {
                    requests: 10,
                    statuses: [("200".to_owned(), 10)].into(),
                    ..Run::default()
                },
                ..Recovery::default()
            },
            ..OverloadResults::default()
        };
        overload.run.batch = 100;
        overload.run.requests = 1000;
        overload.run.statuses = [("200".to_owned(), 100), ("503".to_owned(), 900)].into();
        let verdicts: Vec<_> = goals(None, Some(&overload))
            .iter()
            .map(|g| g.verdict)
            .collect();
        assert_eq!(verdicts, vec![Verdict::Met; 3]);
        // Only 6× offered: clean shedding, but not a 10× result.
        overload.run.requests = 600;
        let short = goals(None, Some(&overload));
        assert_eq!(short[0].verdict, Verdict::NotMet, "{:?}", short[0]);
        assert!(short[0].measured.contains("sent 6.0× capacity (the client"));
        overload.run.requests = 1000;
        overload.run.statuses.insert("500".to_owned(), 1);
        overload.peak_rss_bytes = 200 << 20;
        let verdicts: Vec<_> = goals(None, Some(&overload))
            .iter()
            .map(|g| g.verdict)
            .collect();
        assert_eq!(verdicts[..2], [Verdict::NotMet, Verdict::NotMet]);
    }

    #[test]
    fn sdk_goals_judge_batch_100_against_native_and_raw() {
        use crate::suite::RouteRun;
        let round = |batch: usize, sdk_eps: f64, sdk_cpu: f64| RouteRound {
            round: 1,
            batch,
            concurrency: 8,
            baseline: run(100_000.0, 1.0, 1_000_000),
            native: run(90_000.0, 8.0, 1_000_000),
            routes: vec![RouteRun {
                route: Route::Segment,
                run: run(sdk_eps, sdk_cpu, 1_000_000),
            }],
        };
        let results = SdkRouteResults {
            rounds: vec![round(100, 85_000.0, 9.0), round(1000, 10.0, 100.0)],
            ..SdkRouteResults::default()
        };
        let goals = sdk_goals(&results);
        assert_eq!(goals.len(), 2);
        assert_eq!(goals[0].verdict, Verdict::Met, "{goals:?}");
        assert_eq!(goals[1].verdict, Verdict::Met, "{goals:?}");
        let results = SdkRouteResults {
            rounds: vec![round(100, 70_000.0, 10.0)],
            ..SdkRouteResults::default()
        };
        let goals = sdk_goals(&results);
        assert_eq!(goals[0].verdict, Verdict::NotMet, "{goals:?}");
        assert_eq!(goals[1].verdict, Verdict::NotMet, "{goals:?}");
        let md = render_sdk_routes(&results);
        assert!(md.contains("| segment `/v1/batch` |"), "{md}");
    }

    #[test]
    fn splice_keeps_the_text_around_the_markers() {
        let doc = format!("intro\n{BEGIN_MARKER}\nold\n{END_MARKER}\noutro\n");
        let out = splice(&doc, "new table\n").unwrap();
        assert_eq!(
            out,
            format!("intro\n{BEGIN_MARKER}\n\nnew table\n{END_MARKER}\noutro\n")
        );
        assert!(splice("no markers", "x").is_err());
    }

    #[test]
    fn big_numbers_get_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
