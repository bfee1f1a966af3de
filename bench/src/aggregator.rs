//! `sluice-bench aggregator`: how fast the aggregator counts, and how soon a
//! closed window is visible (`scripts/bench-aggregator`, section
//! "Aggregator" of `docs/benchmarks.md`).
//!
//! 1. **Counting, in memory**: decoding the events alone (the floor any
//!    consumer pays) vs decoding and counting them into windows, same
//!    payloads, same thread, interleaved rounds; CPU seconds per event.
//! 2. **Through Kafka**: a plain consumer that only reads the records (the
//!    baseline) vs the real aggregator (its `serve`, in this process, with a
//!    fresh group and database) over the same pre-produced topic; events per
//!    CPU second of this process.
//! 3. **Window delay**: a live stream whose event time crosses a window
//!    boundary; for each partition, the time from the moment the stream's
//!    event time passed the window's end plus the allowed lateness to the
//!    moment its rows were visible in ClickHouse.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use sluice_aggregator::AggregatorConfig;
use sluice_aggregator::record::decode;
use sluice_aggregator::window::{PartitionWindows, WINDOW_MS, window_start};
use sluice_core::Timestamp;
use sluice_core::kafka::KafkaSettings;

use crate::procfs::{CpuClock, Pid};

pub const BEGIN_MARKER: &str =
    "<!-- BEGIN GENERATED AGGREGATOR RESULTS (scripts/bench-aggregator) -->";
pub const END_MARKER: &str = "<!-- END GENERATED AGGREGATOR RESULTS -->";
/// Goals from the issue: events per second per core, and seconds from the
/// end of the allowed lateness to rows visible.
pub const GOAL_PER_CORE: f64 = 300_000.0;
pub const STRETCH_PER_CORE: f64 = 500_000.0;
pub const GOAL_DELAY_SECS: f64 = 10.0;

#[derive(Debug, Clone)]
pub struct Options {
    pub brokers: String,
    pub clickhouse_url: String,
    pub events: u64,
    pub partitions: i32,
    pub rounds: usize,
    pub delay_phases: usize,
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rate {
    pub wall_secs: f64,
    pub cpu_secs: f64,
}

impl Rate {
    pub fn per_core(&self, events: u64) -> f64 {
        events as f64 / self.cpu_secs.max(1e-9)
    }
    pub fn per_wall_second(&self, events: u64) -> f64 {
        events as f64 / self.wall_secs.max(1e-9)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub commit: Option<String>,
    pub measured_at: String,
    pub events: u64,
    pub partitions: i32,
    pub mean_event_bytes: f64,
    /// Rows the in-memory phase emitted (keys per window plus corrections).
    #[serde(alias = "distinct_keys")]
    pub rows_in_memory: usize,
    /// Best of the rounds, per phase.
    pub decode_only: Rate,
    pub decode_and_count: Rate,
    pub consume_only: Rate,
    pub aggregator: Rate,
    /// The aggregator with deduplication off (`dedup.window_secs = 0`), same rounds.
    #[serde(default)]
    pub aggregator_no_dedup: Rate,
    pub rollup_rows: u64,
    pub lateness_ms: u64,
    /// Seconds from lateness end to rows visible, one per partition and phase.
    pub delay_samples_secs: Vec<f64>,
}

/// Realistic events: 3 teams, 20 event names, 20,000 users, times spread over
/// the hour before `now` (12 windows), ~400 bytes of JSON each.
fn workload(n: u64, now_ms: i64) -> Vec<(String, String)> {
    let base = window_start(now_ms - 3_600_000 - WINDOW_MS);
    (0..n)
        .map(|i| {
            let team = format!("team-{}", i % 3);
            let user = format!("user-{:05}", (i * 7_919) % 20_000);
            let at = base + ((i * 3_601) % 3_600_000) as i64;
            let value = serde_json::json!({
                "event_id": uuid::Uuid::from_u128(u128::from(i) + 1),
                "team_id": team,
                "event": format!("Event {:02}", (i * 13) % 20),
                "user_id": user,
                "timestamp": Timestamp::from_millis(at),
                "received_at": Timestamp::from_millis(at + 800),
                "schema_version": 1,
                "properties": {"plan": "pro", "seats": i % 50, "path": "/pricing/enterprise", "ref": "newsletter-2026-11", "cart": [i % 7, i % 11]},
                "context": {"ip": "203.0.113.9", "library": {"name": "sluice-js", "version": "1.4.2"}, "locale": "en-GB"},
            })
            .to_string();
            (sluice_core::kafka::partition_key(&team, &user), value)
        })
        .collect()
}

/// Kafka's default partitioner for these keys, so phase 1 sees the same
/// per-partition streams as the real consumer.
fn partition_of(key: &str, partitions: i32) -> usize {
    // Any stable spread works for an in-memory measurement.
    let mut h: u32 = 2_166_136_261;
    for b in key.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    (h % partitions.max(1) as u32) as usize
}

fn measure<T>(cpu: &CpuClock, f: impl FnOnce() -> T) -> anyhow::Result<(Rate, T)> {
    let (c0, w0) = (cpu.seconds(Pid::This)?, Instant::now());
    let out = f();
    Ok((
        Rate {
            wall_secs: w0.elapsed().as_secs_f64(),
            cpu_secs: cpu.seconds(Pid::This)? - c0,
        },
        out,
    ))
}

fn best(a: Option<Rate>, b: Rate) -> Option<Rate> {
    match a {
        Some(a) if a.cpu_secs <= b.cpu_secs => Some(a),
        _ => Some(b),
    }
}

pub async fn run(options: &Options) -> anyhow::Result<Results> {
    let cpu = CpuClock::default();
    let kafka = KafkaSettings {
        brokers: options.brokers.clone(),
        ..KafkaSettings::default()
    };
    let now = Timestamp::now().as_millis();
    let events = workload(options.events, now);
    let mut results = Results {
        commit: options.commit.clone(),
        measured_at: Timestamp::now().to_rfc3339(),
        events: options.events,
        partitions: options.partitions,
        mean_event_bytes: events.iter().map(|(_, v)| v.len()).sum::<usize>() as f64
            / events.len().max(1) as f64,
        lateness_ms: 5_000,
        ..Results::default()
    };

    in_memory(options, &cpu, &events, &mut results)?;

    eprintln!("phase 2: producing {} events to bench.agg", options.events);
    let topic = "bench.agg".to_owned();
    crate::topics::recreate(
        &options.brokers,
        std::slice::from_ref(&topic),
        options.partitions,
        false,
    )
    .await?;
    produce_all(&kafka, &topic, &events).await?;
    drop(events);

    through_kafka(options, &kafka, &topic, &cpu, &mut results).await?;

    eprintln!(
        "phase 3: window delay ({} phases of ~30 s)",
        options.delay_phases
    );
    results.delay_samples_secs = window_delay(options, &kafka, results.lateness_ms).await?;
    Ok(results)
}

/// Phase 1: decoding alone, then decoding and counting into windows, in
/// memory; the best round of each.
fn in_memory(
    options: &Options,
    cpu: &CpuClock,
    events: &[(String, String)],
    results: &mut Results,
) -> anyhow::Result<()> {
    eprintln!("phase 1: counting in memory ({} rounds)", options.rounds);
    let parts: Vec<usize> = events
        .iter()
        .map(|(k, _)| partition_of(k, options.partitions))
        .collect();
    let (mut decode_best, mut count_best) = (None, None);
    for _ in 0..options.rounds {
        let (rate, sum) = measure(cpu, || {
            events
                .iter()
                .filter_map(|(_, v)| decode(v.as_bytes()).ok())
                .map(|f| f.timestamp.as_millis() as u64 ^ f.user_id.len() as u64)
                .fold(0u64, u64::wrapping_add)
        })?;
        std::hint::black_box(sum);
        decode_best = best(decode_best, rate);
        let (rate, rows) = measure(cpu, || count(events, &parts, options.partitions))?;
        results.rows_in_memory = rows;
        count_best = best(count_best, rate);
    }
    results.decode_only = decode_best.unwrap_or_default();
    results.decode_and_count = count_best.unwrap_or_default();
    Ok(())
}

/// Decodes every event and counts it into its partition's windows, taking
/// the closed ones every 100,000 events and all at the end; returns the
/// rollup rows.
fn count(events: &[(String, String)], parts: &[usize], partitions: i32) -> usize {
    let mut windows: Vec<PartitionWindows> = (0..partitions)
        .map(|_| PartitionWindows::new(60_000))
        .collect();
    let mut rows = 0usize;
    for (offset, ((_, value), part)) in events.iter().zip(parts).enumerate() {
        if let Ok(f) = decode(value.as_bytes()) {
            windows[*part].observe(
                offset as i64,
                f.timestamp.as_millis(),
                f.received_at.as_millis(),
                f.key(),
            );
        }
        if offset % 100_000 == 0 {
            rows += windows
                .iter_mut()
                .map(|w| w.take_closed(usize::MAX).len())
                .sum::<usize>();
        }
    }
    for w in &mut windows {
        w.advance_to(i64::MAX);
        rows += w.take_closed(usize::MAX).len();
    }
    rows
}

/// Phase 2: the consume-only baseline against the aggregator with and
/// without deduplication, on `topic`; the best round of each.
async fn through_kafka(
    options: &Options,
    kafka: &KafkaSettings,
    topic: &str,
    cpu: &CpuClock,
    results: &mut Results,
) -> anyhow::Result<()> {
    eprintln!(
        "phase 2: consume-only baseline vs the aggregator ({} rounds)",
        options.rounds
    );
    let (mut consume_best, mut agg_best, mut plain_best) = (None, None, None);
    for round in 0..options.rounds {
        consume_best = best(
            consume_best,
            consume_only(kafka, topic, options.events, cpu).await?,
        );
        let (rate, rows) = aggregate(options, kafka, topic, round, true, cpu).await?;
        results.rollup_rows = rows;
        agg_best = best(agg_best, rate);
        let (rate, _) = aggregate(options, kafka, topic, round, false, cpu).await?;
        plain_best = best(plain_best, rate);
    }
    results.consume_only = consume_best.unwrap_or_default();
    results.aggregator = agg_best.unwrap_or_default();
    results.aggregator_no_dedup = plain_best.unwrap_or_default();
    crate::topics::delete(&options.brokers, &[topic.to_owned()]).await?;
    Ok(())
}

async fn produce_all(
    kafka: &KafkaSettings,
    topic: &str,
    events: &[(String, String)],
) -> anyhow::Result<()> {
    let producer: FutureProducer = kafka.durable_producer_config(20, 60_000).create()?;
    for chunk in events.chunks(20_000) {
        let sends = chunk.iter().map(|(key, value)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(value),
                Duration::from_secs(60),
            )
        });
        for result in futures::future::join_all(sends).await {
            result
                .map_err(|(e, _)| e)
                .context("producing the workload")?;
        }
    }
    Ok(())
}

fn fresh(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

async fn consume_only(
    kafka: &KafkaSettings,
    topic: &str,
    n: u64,
    cpu: &CpuClock,
) -> anyhow::Result<Rate> {
    let consumer: StreamConsumer =
        sluice_core::service::manual_commit_consumer(kafka, &fresh("bench-consume-"), 10_000)
            .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut seen, mut bytes) = (0u64, 0usize);
    let mut start = None;
    while seen < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "consume-only baseline timed out at {seen}/{n}"
        );
        let message = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await??;
        if start.is_none() {
            start = Some((cpu.seconds(Pid::This)?, Instant::now()));
        }
        bytes += message.payload().map_or(0, <[u8]>::len);
        seen += 1;
    }
    std::hint::black_box(bytes);
    let (c0, w0) = start.context("no records")?;
    Ok(Rate {
        wall_secs: w0.elapsed().as_secs_f64(),
        cpu_secs: cpu.seconds(Pid::This)? - c0,
    })
}

fn counter(name: &str) -> u64 {
    sluice_core::telemetry::metrics()
        .render()
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn config(
    options: &Options,
    kafka: &KafkaSettings,
    topic: &str,
    lateness_ms: u64,
) -> AggregatorConfig {
    let mut config = AggregatorConfig {
        kafka: kafka.clone(),
        topic: topic.to_owned(),
        group_id: fresh("bench-agg-"),
        ..AggregatorConfig::default()
    };
    config.clickhouse.url = options.clickhouse_url.clone();
    config.clickhouse.database = fresh("sluice_bench_agg_");
    config.window.allowed_lateness_ms = lateness_ms;
    config
}

/// The real aggregator over the pre-produced topic, until it has counted
/// every event; returns its rate and the rollup rows stored meanwhile.
async fn aggregate(
    options: &Options,
    kafka: &KafkaSettings,
    topic: &str,
    round: usize,
    dedup: bool,
    cpu: &CpuClock,
) -> anyhow::Result<(Rate, u64)> {
    let mut config = config(options, kafka, topic, 60_000);
    if !dedup {
        config.dedup.window_secs = 0;
    }
    let database = config.clickhouse.database.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let before = counter(sluice_aggregator::status::EVENTS_AGGREGATED);
    let service = tokio::spawn(sluice_aggregator::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut start = None;
    loop {
        let counted = counter(sluice_aggregator::status::EVENTS_AGGREGATED) - before;
        if counted > 0 && start.is_none() {
            start = Some((cpu.seconds(Pid::This)?, Instant::now()));
        }
        if counted >= options.events {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "aggregator round {round} timed out at {counted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (c0, w0) = start.context("nothing counted")?;
    let rate = Rate {
        wall_secs: w0.elapsed().as_secs_f64(),
        cpu_secs: cpu.seconds(Pid::This)? - c0,
    };
    let _ = stop.send(());
    service.await??;
    let rows = clickhouse_scalar(
        &options.clickhouse_url,
        &format!("SELECT count() FROM {database}.rollups_5m"),
    )
    .await
    .unwrap_or(0);
    let _ = clickhouse_scalar(
        &options.clickhouse_url,
        &format!("DROP DATABASE IF EXISTS {database}"),
    )
    .await;
    Ok((rate, rows))
}

async fn clickhouse_scalar(url: &str, sql: &str) -> anyhow::Result<u64> {
    let text = reqwest::Client::new()
        .post(url)
        .body(sql.to_owned())
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text.trim().parse().unwrap_or(0))
}

async fn clickhouse_text(url: &str, sql: &str) -> anyhow::Result<String> {
    Ok(reqwest::Client::new()
        .post(url)
        .body(sql.to_owned())
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// A live stream at about 4,000 events/s whose event time crosses a window
/// boundary ten seconds into each phase (event time runs a fixed offset
/// behind the wall clock, so received_at stays ahead of it, as in
/// production). Samples: per partition, seconds from "event time passed the
/// window end plus lateness" to "rows of that window visible".
async fn window_delay(
    options: &Options,
    kafka: &KafkaSettings,
    lateness_ms: u64,
) -> anyhow::Result<Vec<f64>> {
    let topic = "bench.agg.live".to_owned();
    crate::topics::recreate(
        &options.brokers,
        std::slice::from_ref(&topic),
        options.partitions,
        false,
    )
    .await?;
    let mut config = config(options, kafka, &topic, lateness_ms);
    config.window.idle_timeout_ms = 5_000;
    let database = config.clickhouse.database.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(sluice_aggregator::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let producer: FutureProducer = kafka.durable_producer_config(5, 30_000).create()?;
    let now = Timestamp::now().as_millis();
    let first_boundary = window_start(now) - (options.delay_phases as i64 + 2) * WINDOW_MS;
    let mut samples = Vec::new();
    let mut id = 0u64;
    for phase in 0..options.delay_phases {
        let boundary = first_boundary + phase as i64 * WINDOW_MS;
        let measured_window = boundary - WINDOW_MS;
        let started = Instant::now();
        let crossing = started + Duration::from_secs(10);
        let lateness_end = crossing + Duration::from_millis(lateness_ms);
        let mut seen: BTreeMap<i32, f64> = BTreeMap::new();
        let mut last_poll = Instant::now();
        while started.elapsed() < Duration::from_secs(30)
            && seen.len() < options.partitions as usize
            || started.elapsed() < Duration::from_secs(16)
        {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "window of phase {phase} never became visible"
            );
            // 40 events per 10 ms tick; event time trails by up to 2 s.
            let event_time = boundary - 10_000 + started.elapsed().as_millis() as i64;
            for _ in 0..40 {
                id += 1;
                let user = format!("user-{}", id % 5_000);
                let at = event_time - (id % 2_000) as i64;
                let value = serde_json::json!({
                    "event_id": uuid::Uuid::from_u128(u128::from(id)),
                    "team_id": "team-live", "event": "Viewed", "user_id": user,
                    "timestamp": Timestamp::from_millis(at),
                    "received_at": Timestamp::now(),
                    "schema_version": 1, "properties": {},
                })
                .to_string();
                let key = sluice_core::kafka::partition_key("team-live", &user);
                let _ = producer.send_result(FutureRecord::to(&topic).key(&key).payload(&value));
            }
            if last_poll.elapsed() >= Duration::from_millis(100) {
                last_poll = Instant::now();
                let text = clickhouse_text(&options.clickhouse_url, &format!(
                    "SELECT DISTINCT kafka_partition FROM {database}.rollups_5m WHERE window_start = toDateTime({}) FORMAT TSV",
                    measured_window / 1000
                )).await.unwrap_or_default();
                for partition in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    seen.entry(partition).or_insert_with(|| {
                        let at = Instant::now();
                        if at >= lateness_end {
                            (at - lateness_end).as_secs_f64()
                        } else {
                            -((lateness_end - at).as_secs_f64())
                        }
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("  phase {phase}: {seen:?}");
        samples.extend(seen.values());
    }
    let _ = stop.send(());
    service.await??;
    let _ = clickhouse_scalar(
        &options.clickhouse_url,
        &format!("DROP DATABASE IF EXISTS {database}"),
    )
    .await;
    crate::topics::delete(&options.brokers, std::slice::from_ref(&topic)).await?;
    Ok(samples)
}

fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied()
}

/// The Markdown between this section's markers.
pub fn render(r: &Results) -> String {
    let n = r.events;
    let mut out = String::new();
    let per_core = r.aggregator.per_core(n);
    let delay_p50 = quantile(&r.delay_samples_secs, 0.5);
    let delay_max = quantile(&r.delay_samples_secs, 1.0);
    let verdict = |met: bool| if met { "**met**" } else { "**not met**" };
    let _ = writeln!(
        out,
        "Measured {} (commit {}), {} events of {:.0} bytes on average, {} partitions; counting them in memory emitted {} rows (one per key and window, plus corrections for events later than the 60 s lateness).\n",
        r.measured_at,
        r.commit.as_deref().unwrap_or("unknown"),
        n,
        r.mean_event_bytes,
        r.partitions,
        r.rows_in_memory
    );
    let _ = writeln!(out, "| goal | measured | verdict |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| ≥ {:.0} events/s per core (stretch {:.0}) | {:.0} events per CPU second (the whole aggregator process: Kafka client, decoding, windows, inserts) | {} (stretch {}) |",
        GOAL_PER_CORE,
        STRETCH_PER_CORE,
        per_core,
        verdict(per_core >= GOAL_PER_CORE),
        verdict(per_core >= STRETCH_PER_CORE)
    );
    let _ = writeln!(
        out,
        "| closed window visible ≤ {GOAL_DELAY_SECS:.0} s after its allowed lateness ends | p50 {} s, max {} s over {} partition-windows | {} |\n",
        delay_p50.map_or("-".to_owned(), |v| format!("{v:.2}")),
        delay_max.map_or("-".to_owned(), |v| format!("{v:.2}")),
        r.delay_samples_secs.len(),
        verdict(delay_max.is_some_and(|m| m <= GOAL_DELAY_SECS))
    );
    let _ = writeln!(
        out,
        "| phase | wall s | CPU s | events/s (wall) | events per CPU s | vs its baseline |\n|---|---|---|---|---|---|"
    );
    for (name, rate, base) in [
        (
            "decode only (in memory, baseline)",
            &r.decode_only,
            &r.decode_only,
        ),
        (
            "decode + count into windows (in memory)",
            &r.decode_and_count,
            &r.decode_only,
        ),
        (
            "consume only (Kafka, baseline)",
            &r.consume_only,
            &r.consume_only,
        ),
        (
            "aggregator (Kafka → windows → ClickHouse), retries dropped (default)",
            &r.aggregator,
            &r.consume_only,
        ),
        (
            "aggregator, `dedup.window_secs = 0`",
            &r.aggregator_no_dedup,
            &r.consume_only,
        ),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2}× |",
            rate.wall_secs,
            rate.cpu_secs,
            rate.per_wall_second(n),
            rate.per_core(n),
            rate.per_core(n) / base.per_core(n).max(1e-9)
        );
    }
    let _ = writeln!(
        out,
        "\nDeduplication's cost, same rounds: {:.0} events per CPU second with it, {:.0} without ({:.2}×): decoding `event_id` and one lookup per event in the partition's set.",
        per_core,
        r.aggregator_no_dedup.per_core(n),
        per_core / r.aggregator_no_dedup.per_core(n).max(1e-9),
    );
    let _ = writeln!(
        out,
        "\nThe aggregator stored {} rollup rows for the {} events ({}× fewer rows than events). Window-delay samples (s): {}.",
        r.rollup_rows,
        n,
        n.checked_div(r.rollup_rows).unwrap_or(0),
        r.delay_samples_secs
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_contract_json_in_twelve_windows() {
        let now = Timestamp::parse_rfc3339("2026-11-26T06:00:00Z")
            .unwrap()
            .as_millis();
        let events = workload(2_000, now);
        let windows: std::collections::BTreeSet<i64> = events
            .iter()
            .map(|(_, v)| window_start(decode(v.as_bytes()).unwrap().timestamp.as_millis()))
            .collect();
        assert_eq!(windows.len(), 12);
        assert!(events.iter().all(|(_, v)| v.len() > 300));
    }

    #[test]
    fn the_report_states_goals_and_ratios() {
        let r = Results {
            events: 1000,
            decode_only: Rate {
                wall_secs: 1.0,
                cpu_secs: 0.001,
            },
            decode_and_count: Rate {
                wall_secs: 1.0,
                cpu_secs: 0.002,
            },
            consume_only: Rate {
                wall_secs: 1.0,
                cpu_secs: 0.001,
            },
            aggregator: Rate {
                wall_secs: 1.0,
                cpu_secs: 0.004,
            },
            delay_samples_secs: vec![1.5, 2.5],
            ..Results::default()
        };
        let text = render(&r);
        assert!(text.contains("| 250000 events per CPU second"), "{text}");
        assert!(text.contains("**not met** (stretch **not met**)"), "{text}");
        assert!(
            text.contains("p50 2.50 s, max 2.50 s") || text.contains("p50 1.50 s, max 2.50 s"),
            "{text}"
        );
        assert!(text.contains("| 0.25× |"), "{text}");
    }
}
