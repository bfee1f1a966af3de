//! One Kafka broker against three (`scripts/bench-brokers`): the same
//! gateway and workload, producing to a topic with one replica and to one
//! with three (`min.insync.replicas` 2, acks from all in-sync replicas), in
//! interleaved rounds of `sluice-bench throughput`.
//!
//! On one machine the three brokers share its cores with the gateway and the
//! load generator, so events/s falls with the extra replication work for
//! reasons that have nothing to do with the gateway. What the gateway itself
//! spends per event stays comparable: the goal is judged on the gateway's
//! CPU per event (issue 22), and events/s is published beside it with the
//! raw producer's, which shows how much of the drop is the brokers'.

use std::fmt::Write as _;

use crate::report::{Goal, Verdict, num, spread};
use crate::results::{BatchResult, Spread, ThroughputResults};

pub const BEGIN_MARKER: &str = "<!-- BEGIN GENERATED BROKER RESULTS (scripts/bench-brokers) -->";
pub const END_MARKER: &str = "<!-- END GENERATED BROKER RESULTS -->";

/// Issue 22: throughput on three brokers ≥ 0.8 × one broker's, with CPU per
/// event as the comparable figure: the gateway's CPU per event on three
/// brokers at most 1 / 0.8 = 1.25 × its CPU per event on one.
const MIN_THREE_VS_ONE: f64 = 0.8;
/// The batch size the goal is judged at.
const GOAL_BATCH: usize = 1000;

/// Every round's result at `batch` across the runs of one shape.
fn rounds<'a>(
    runs: &'a [ThroughputResults],
    batch: usize,
) -> impl Iterator<Item = &'a BatchResult> + 'a {
    runs.iter().flat_map(move |r| r.rounds_of(batch))
}

fn spread_of(
    runs: &[ThroughputResults],
    batch: usize,
    value: impl Fn(&BatchResult) -> Option<f64>,
) -> Option<Spread> {
    Spread::of(rounds(runs, batch).filter_map(value))
}

fn gateway_cpu(b: &BatchResult) -> Option<f64> {
    b.gateway.gateway_cpu_us_per_event()
}

/// One broker's mean gateway CPU per event ÷ three brokers': the throughput
/// ratio the two would have on equal CPU (1 = replication costs the gateway
/// nothing).
pub fn cpu_ratio(
    one: &[ThroughputResults],
    three: &[ThroughputResults],
    batch: usize,
) -> Option<f64> {
    let one = spread_of(one, batch, gateway_cpu)?.mean;
    let three = spread_of(three, batch, gateway_cpu)?.mean;
    (three > 0.0).then(|| one / three)
}

pub fn goal(one: &[ThroughputResults], three: &[ThroughputResults]) -> Goal {
    let goal = format!(
        "gateway at batch {GOAL_BATCH} on three brokers ≥ {MIN_THREE_VS_ONE} × one broker (CPU per event: one ÷ three)"
    );
    match cpu_ratio(one, three, GOAL_BATCH) {
        Some(ratio) => Goal {
            goal,
            measured: format!("{}×", num(ratio)),
            verdict: Verdict::from_bool(ratio >= MIN_THREE_VS_ONE),
        },
        None => Goal {
            goal,
            measured: format!("no batch-{GOAL_BATCH} rounds on both shapes"),
            verdict: Verdict::Unknown,
        },
    }
}

/// The section of `docs/benchmarks.md` between the markers.
pub fn render(one: &[ThroughputResults], three: &[ThroughputResults]) -> String {
    let mut md = String::new();
    // Writing to a String cannot fail; `let _` keeps the code free of unwraps.
    if let (Some(a), Some(b)) = (one.first(), three.first()) {
        let env = &a.environment;
        let _ = writeln!(
            md,
            "### Last run\n\n{}. \
             One broker at {} (replication factor 1) and three at {} (replication factor 3, \
             `min.insync.replicas` 2), {} interleaved round(s) each, {} partitions, linger {} ms.\n",
            env.machine(),
            env.brokers,
            b.environment.brokers,
            one.len().min(three.len()),
            a.producer.partitions,
            a.producer.linger_ms,
        );
    }
    let g = goal(one, three);
    let _ = writeln!(
        md,
        "| goal | measured | verdict |\n|---|---|---|\n| {} | {} | {} |\n",
        g.goal,
        g.measured,
        g.verdict.text()
    );
    let _ = writeln!(
        md,
        "| batch | brokers | gateway events/s | raw producer events/s | gateway CPU µs/event | Kafka CPU µs/event | one ÷ three, gateway CPU |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut sizes: Vec<usize> = one.iter().chain(three).flat_map(|r| r.sizes()).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for batch in sizes {
        for (label, runs) in [("1", one), ("3", three)] {
            let cell = |s: Option<Spread>| s.map_or_else(|| "–".to_owned(), |s| spread(s, ""));
            let ratio = match label {
                "3" => cpu_ratio(one, three, batch)
                    .map_or_else(|| "–".to_owned(), |r| format!("{}×", num(r))),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "| {batch} | {label} | {} | {} | {} | {} | {ratio} |",
                cell(spread_of(runs, batch, |b| Some(
                    b.gateway.events_per_second
                ))),
                cell(spread_of(runs, batch, |b| Some(
                    b.baseline.events_per_second
                ))),
                cell(spread_of(runs, batch, gateway_cpu)),
                cell(spread_of(runs, batch, |b| b
                    .gateway
                    .cpu
                    .kafka_seconds
                    .and_then(|s| b.gateway.per_event_us(s)))),
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CpuUse, Run};

    fn shape(brokers: usize, gateway_cpu_seconds: f64) -> ThroughputResults {
        let run = |cpu: Option<f64>| Run {
            accepted_events: 100_000,
            events_per_second: 50_000.0,
            cpu: CpuUse {
                gateway_seconds: cpu,
                ..CpuUse::default()
            },
            ..Run::default()
        };
        let mut results = ThroughputResults::default();
        results.environment.broker_count = brokers;
        results.batches.push(BatchResult {
            round: 1,
            batch: GOAL_BATCH,
            concurrency: 8,
            baseline: run(None),
            gateway: run(Some(gateway_cpu_seconds)),
        });
        results
    }

    #[test]
    fn the_goal_compares_cpu_per_event_not_events_per_second() {
        // 0.5 s and 0.6 s of gateway CPU for the same 100,000 events: 5 and
        // 6 µs per event, one ÷ three = 0.83.
        let (one, three) = ([shape(1, 0.5)], [shape(3, 0.6)]);
        let g = goal(&one, &three);
        assert_eq!((g.measured.as_str(), g.verdict), ("0.83×", Verdict::Met));
        // 0.7 s on three brokers: 0.71, below 0.8.
        assert_eq!(goal(&one, &[shape(3, 0.7)]).verdict, Verdict::NotMet);
    }

    #[test]
    fn without_both_shapes_the_goal_is_not_measured_and_the_table_has_both() {
        assert_eq!(goal(&[shape(1, 0.5)], &[]).verdict, Verdict::Unknown);
        let table = render(&[shape(1, 0.5)], &[shape(3, 0.6)]);
        assert!(
            table.contains("| 1000 | 3 | 50000 | 50000 | 6.00 |"),
            "{table}"
        );
    }
}
