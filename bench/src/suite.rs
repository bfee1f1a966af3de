//! The scenarios, in order, with the measurements taken around each.
//!
//! Throughput phase (one gateway, no rate limit): for each batch size the
//! raw-producer baseline runs immediately before the gateway, so both see the
//! same neighbours on this shared machine; then the half-load latency run.
//! Overload phase (a second gateway with small limits): ten times the
//! measured capacity, memory sampled every 100 ms, then recovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::baseline::{self, ProducerSetup};
use crate::load::{self, Answer, Schedule, Target};
use crate::procfs::{self, CpuClock, Pid};
use crate::promtext;
use crate::results::{
    BatchResult, CpuUse, Environment, HalfLoad, OverloadConfig, OverloadResults, ProducerInfo,
    Quantiles, Recovery, Run, ServerTimes, ThroughputResults, WorkloadInfo,
};
use crate::workload::{Route, Workload};

/// Histogram names the gateway exports on `/metrics`.
pub const PROCESSING_METRIC: &str = "sluice_gateway_processing_duration_seconds";
pub const REQUEST_METRIC: &str = "sluice_gateway_request_duration_seconds";
pub const PRODUCE_METRIC: &str = "sluice_gateway_produce_duration_seconds";

/// A batch size and how many clients (or baseline batches) run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    pub batch: usize,
    pub concurrency: usize,
}

impl std::str::FromStr for BatchPlan {
    type Err = String;

    /// `SIZE:CLIENTS`, e.g. `100:32`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (batch, concurrency) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: expected SIZE:CLIENTS, e.g. 100:32"))?;
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{text}`: `{s}` is not a positive number"))
        };
        Ok(Self {
            batch: parse(batch)?,
            concurrency: parse(concurrency)?,
        })
    }
}

/// Who is measured and how to reach them.
#[derive(Debug, Clone)]
pub struct Subject {
    pub gateway_url: String,
    pub api_key: String,
    pub gateway_pid: Option<u32>,
    /// Every broker's pid (their CPU time is summed).
    pub kafka_pids: Vec<u32>,
    pub commit: Option<String>,
    pub brokers: String,
}

#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    pub distinct_events: usize,
    pub users: u64,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct ThroughputOptions {
    pub producer: ProducerSetup,
    pub partitions: i32,
    pub plans: Vec<BatchPlan>,
    /// How many times to run every batch size (interleaved).
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub half_load_batch: usize,
    pub half_load_duration: Duration,
    /// Drop-in SDK routes to measure after the native route at every batch
    /// size and round, with the same events in each SDK's shape.
    pub sdk_routes: Vec<Route>,
}

/// The native route and the SDK routes at one batch size in one round,
/// next to that round's raw-producer baseline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteRound {
    pub round: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub baseline: Run,
    pub native: Run,
    pub routes: Vec<RouteRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRun {
    pub route: Route,
    pub run: Run,
}

impl RouteRound {
    /// The route's acknowledged events/s ÷ the raw producer's.
    pub fn ratio(&self, run: &Run) -> Option<f64> {
        (self.baseline.events_per_second > 0.0)
            .then(|| run.events_per_second / self.baseline.events_per_second)
    }

    /// The route's gateway CPU per event ÷ the native route's, same round.
    pub fn cpu_vs_native(&self, run: &Run) -> Option<f64> {
        let native = self.native.gateway_cpu_us_per_event()?;
        (native > 0.0).then_some(run.gateway_cpu_us_per_event()? / native)
    }
}

/// The SDK routes' results of one throughput run (`--sdk-out`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SdkRouteResults {
    pub environment: Environment,
    pub workload: WorkloadInfo,
    pub rounds: Vec<RouteRound>,
}

#[derive(Debug, Clone)]
pub struct OverloadOptions {
    pub capacity_events_per_second: f64,
    pub factor: f64,
    pub batch: usize,
    pub duration: Duration,
    pub client_max_in_flight: usize,
    pub config: OverloadConfig,
}

/// CPU counters of the processes involved, at one instant.
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    gateway: Option<f64>,
    bench: f64,
    kafka: Option<f64>,
}

#[derive(Debug)]
struct Probes {
    clock: CpuClock,
    gateway: Option<u32>,
    kafka: Vec<u32>,
}

impl Probes {
    fn new(subject: &Subject) -> Self {
        Self {
            clock: CpuClock::default(),
            gateway: subject.gateway_pid,
            kafka: subject.kafka_pids.clone(),
        }
    }

    fn mark(&self) -> CpuMark {
        let read = |pid: Option<u32>| pid.and_then(|p| self.clock.seconds(Pid::Other(p)).ok());
        CpuMark {
            gateway: read(self.gateway),
            bench: self.clock.seconds(Pid::This).unwrap_or(0.0),
            // All brokers or nothing: a sum missing one would understate.
            kafka: (!self.kafka.is_empty())
                .then(|| {
                    self.kafka
                        .iter()
                        .map(|p| read(Some(*p)))
                        .sum::<Option<f64>>()
                })
                .flatten(),
        }
    }

    fn since(&self, start: CpuMark, include_gateway: bool) -> CpuUse {
        let end = self.mark();
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        CpuUse {
            gateway_seconds: if include_gateway {
                diff(start.gateway, end.gateway)
            } else {
                None
            },
            bench_seconds: end.bench - start.bench,
            kafka_seconds: diff(start.kafka, end.kafka),
        }
    }
}

/// The three histograms, scraped at one instant.
#[derive(Debug, Default)]
struct Scrape {
    processing: Option<promtext::Histogram>,
    request: Option<promtext::Histogram>,
    produce: Option<promtext::Histogram>,
}

async fn scrape(target: &Target) -> Scrape {
    let Some(text) = target.get_text("/metrics").await else {
        return Scrape::default();
    };
    Scrape {
        processing: promtext::histogram(&text, PROCESSING_METRIC),
        request: promtext::histogram(&text, REQUEST_METRIC),
        produce: promtext::histogram(&text, PRODUCE_METRIC),
    }
}

/// Server-side times between two scrapes; `None` when `/metrics` has none.
fn server_times(before: &Scrape, after: &Scrape) -> Option<ServerTimes> {
    let delta = |a: &Option<promtext::Histogram>, b: &Option<promtext::Histogram>| match (a, b) {
        (Some(a), Some(b)) => Some(b.since(a)),
        (None, Some(b)) => Some(b.clone()),
        _ => None,
    };
    let processing = delta(&before.processing, &after.processing);
    let request = delta(&before.request, &after.request);
    let produce = delta(&before.produce, &after.produce);
    if processing.is_none() && request.is_none() && produce.is_none() {
        return None;
    }
    Some(ServerTimes {
        processing_within_2ms: processing.as_ref().and_then(|h| h.share_at_most(0.002)),
        processing: processing.as_ref().and_then(Quantiles::from_prometheus),
        request: request.as_ref().and_then(Quantiles::from_prometheus),
        produce: produce.as_ref().and_then(Quantiles::from_prometheus),
    })
}

/// Enough distinct bodies that concurrent clients rarely send the same one.
fn bodies_for(workload: &Workload, batch: usize, concurrency: usize) -> Arc<Vec<Bytes>> {
    let count = concurrency.max(workload.len() / batch.max(1)).max(4);
    Arc::new(workload.bodies(batch, count))
}

pub fn environment(subject: &Subject, broker_count: usize) -> Environment {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let memory_kib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    Environment {
        started_at: sluice_core::Timestamp::now().to_rfc3339(),
        commit: subject.commit.clone(),
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        memory_gib: memory_kib / (1024.0 * 1024.0),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        load_average: read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        brokers: subject.brokers.clone(),
        broker_count,
    }
}

fn generate(options: &WorkloadOptions) -> anyhow::Result<Arc<Workload>> {
    let workload = Workload::generate(options.distinct_events, options.users, options.seed)
        .context("generating the workload")?;
    Ok(Arc::new(workload))
}

fn target(subject: &Subject, connections: usize) -> anyhow::Result<Target> {
    // 30 s: above the gateway's 10 s delivery timeout plus its 5 s guard.
    Target::new(
        &subject.gateway_url,
        &subject.api_key,
        connections,
        Duration::from_secs(30),
    )
}

/// Baseline and gateway at each batch size (the native route, then each
/// SDK route of `options.sdk_routes`), then latency at half load.
pub async fn throughput(
    subject: &Subject,
    workload_options: &WorkloadOptions,
    options: &ThroughputOptions,
    broker_count: usize,
) -> anyhow::Result<(ThroughputResults, SdkRouteResults)> {
    let environment = environment(subject, broker_count);
    let workload = generate(workload_options)?;
    let max_clients = options
        .plans
        .iter()
        .map(|p| p.concurrency)
        .max()
        .unwrap_or(1);
    let target = target(subject, max_clients.max(64))?;
    target.wait_ready(Duration::from_secs(60)).await?;
    let probes = Probes::new(subject);
    let mut results = ThroughputResults {
        environment,
        workload: WorkloadInfo {
            distinct_events: workload.len(),
            users: workload_options.users,
            mean_event_bytes: workload.mean_event_bytes(),
            mean_record_bytes: workload.mean_record_bytes(),
        },
        producer: ProducerInfo {
            topic: options.producer.topic.clone(),
            partitions: options.partitions,
            linger_ms: options.producer.linger_ms,
            delivery_timeout_ms: options.producer.delivery_timeout_ms,
            queue_max_kbytes: options.producer.queue_max_kbytes,
        },
        batches: Vec::new(),
        half_load: None,
    };
    let mut sdk = SdkRouteResults {
        environment: results.environment.clone(),
        workload: results.workload.clone(),
        rounds: Vec::new(),
    };

    let rounds = options.rounds.max(1);
    let runs = (1..=rounds).flat_map(|round| options.plans.iter().map(move |plan| (round, *plan)));
    for (round, plan) in runs {
        let BatchPlan { batch, concurrency } = plan;
        let load = format!("closed loop, {concurrency} concurrent");
        eprintln!(
            "==> round {round}/{rounds}, batch {batch}: raw producer baseline, {concurrency} batches in flight"
        );
        let mark = probes.mark();
        let tally = baseline::run(
            &options.producer,
            &workload,
            batch,
            concurrency,
            options.duration,
        )
        .await?;
        let baseline = Run::from_tally(
            "raw producer",
            batch,
            load,
            &tally,
            probes.since(mark, false),
        );
        eprintln!("    {:.0} events/s", baseline.events_per_second);

        eprintln!("==> round {round}/{rounds}, batch {batch}: gateway, {concurrency} clients");
        let bodies = bodies_for(&workload, batch, concurrency);
        let closed = Closed {
            target: &target,
            batch,
            concurrency,
            options,
            probes: &probes,
        };
        let gateway = closed.run("gateway", &bodies).await;
        eprintln!(
            "    {:.0} events/s, p99 {:.1} ms, statuses {:?}",
            gateway.events_per_second, gateway.latency.p99_ms, gateway.statuses
        );
        let progress = format!("round {round}/{rounds}, batch {batch}");
        let routes = closed.sdk_routes(&workload, subject, &progress).await?;
        if !routes.is_empty() {
            sdk.rounds.push(RouteRound {
                round,
                batch,
                concurrency,
                baseline: baseline.clone(),
                native: gateway.clone(),
                routes,
            });
        }
        results.batches.push(BatchResult {
            round,
            batch,
            concurrency,
            baseline,
            gateway,
        });
    }

    results.half_load = half_load(&results, &workload, &target, options, &probes).await?;
    Ok((results, sdk))
}

/// One closed-loop run of the gateway after a warm-up, with the CPU the
/// processes used and the gateway's own histograms around it.
#[derive(Clone, Copy)]
struct Closed<'a> {
    target: &'a Target,
    batch: usize,
    concurrency: usize,
    options: &'a ThroughputOptions,
    probes: &'a Probes,
}

impl Closed<'_> {
    /// The same run on each SDK route of the options, with the same events
    /// as that route's SDKs would send them.
    async fn sdk_routes(
        &self,
        workload: &Workload,
        subject: &Subject,
        progress: &str,
    ) -> anyhow::Result<Vec<RouteRun>> {
        let (batch, concurrency) = (self.batch, self.concurrency);
        let mut routes = Vec::new();
        for &route in self
            .options
            .sdk_routes
            .iter()
            .filter(|r| **r != Route::Native)
        {
            eprintln!(
                "==> {progress}: {} route {}, {concurrency} clients",
                route.name(),
                route.path(batch)
            );
            let target = self.target.for_route(route, batch, &subject.api_key)?;
            let count = concurrency.max(workload.len() / batch.max(1)).max(4);
            let bodies = Arc::new(workload.route_bodies(route, batch, count, &subject.api_key)?);
            let closed = Closed {
                target: &target,
                ..*self
            };
            let run = closed
                .run(&format!("gateway, {} route", route.name()), &bodies)
                .await;
            eprintln!(
                "    {:.0} events/s, {} µs CPU per event, statuses {:?}",
                run.events_per_second,
                run.gateway_cpu_us_per_event()
                    .map_or("?".to_owned(), |c| format!("{c:.1}")),
                run.statuses
            );
            routes.push(RouteRun { route, run });
        }
        Ok(routes)
    }

    async fn run(&self, label: &str, bodies: &Arc<Vec<Bytes>>) -> Run {
        let (target, concurrency) = (self.target, self.concurrency);
        load::closed_loop(target, bodies, concurrency, self.options.warmup).await;
        let before = scrape(target).await;
        let mark = self.probes.mark();
        let tally = load::closed_loop(target, bodies, concurrency, self.options.duration).await;
        let cpu = self.probes.since(mark, true);
        let after = scrape(target).await;
        let load = format!("closed loop, {concurrency} concurrent");
        let mut run = Run::from_tally(label, self.batch, load, &tally, cpu);
        run.server = server_times(&before, &after);
        run
    }
}

/// Latency at half the gateway's best closed-loop rate at the half-load
/// batch size, the raw producer on the same schedule first; None without
/// a closed-loop run at that size.
async fn half_load(
    results: &ThroughputResults,
    workload: &Arc<Workload>,
    target: &Target,
    options: &ThroughputOptions,
    probes: &Probes,
) -> anyhow::Result<Option<HalfLoad>> {
    let Some(max) = results.max_gateway_events_per_second(options.half_load_batch) else {
        return Ok(None);
    };
    let batch = options.half_load_batch;
    let rate = 0.5 * max / batch as f64;
    eprintln!("==> batch {batch}: open loop at half the maximum ({rate:.1} requests/s)");
    let bodies = bodies_for(workload, batch, 64);
    let schedule = Schedule {
        requests_per_second: rate,
        duration: options.half_load_duration,
        max_in_flight: 2048,
    };
    let mark = probes.mark();
    let tally = baseline::open_loop(&options.producer, workload, batch, schedule).await?;
    let mut raw = Run::from_tally(
        "raw producer, half load",
        batch,
        format!("open loop, {rate:.1} batches/s"),
        &tally,
        probes.since(mark, false),
    );
    raw.service = Some(Quantiles::from_micros(&tally.service));
    eprintln!(
        "    raw producer: end-to-end p50 {:.1} ms p99 {:.1} ms",
        raw.latency.p50_ms, raw.latency.p99_ms
    );
    let before = scrape(target).await;
    let mark = probes.mark();
    let tally = load::open_loop(target, &bodies, schedule, None).await;
    let cpu = probes.since(mark, true);
    let after = scrape(target).await;
    let mut run = Run::from_tally(
        "gateway, half load",
        batch,
        format!("open loop, {rate:.1} requests/s"),
        &tally,
        cpu,
    );
    run.service = Some(Quantiles::from_micros(&tally.service));
    run.server = server_times(&before, &after);
    eprintln!(
        "    gateway: end-to-end p50 {:.1} ms p99 {:.1} ms",
        run.latency.p50_ms, run.latency.p99_ms
    );
    Ok(Some(HalfLoad {
        max_events_per_second: max,
        target_requests_per_second: rate,
        run,
        baseline: Some(raw),
    }))
}

/// Samples a process's RSS every `period` until told to stop.
#[derive(Debug)]
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32, period: Duration, limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, peak, samples) = (stop.clone(), peak.clone(), samples.clone());
            async move {
                let deadline = Instant::now() + limit;
                let mut ticker = tokio::time::interval(period);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    ticker.tick().await;
                    if let Ok(memory) = procfs::memory(Pid::Other(pid)) {
                        peak.fetch_max(memory.rss_bytes, Ordering::Relaxed);
                        samples.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Self {
            stop,
            peak,
            samples,
            task,
        }
    }

    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (
            self.peak.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        )
    }
}

/// Offered load far above capacity, then recovery.
pub async fn overload(
    subject: &Subject,
    workload_options: &WorkloadOptions,
    options: &OverloadOptions,
    broker_count: usize,
) -> anyhow::Result<OverloadResults> {
    let pid = subject
        .gateway_pid
        .context("the overload scenario needs --gateway-pid to watch memory")?;
    let environment = environment(subject, broker_count);
    let workload = generate(workload_options)?;
    let batch = options.batch;
    let target = target(subject, options.client_max_in_flight)?;
    target.wait_ready(Duration::from_secs(60)).await?;
    let probes = Probes::new(subject);
    let idle_rss = procfs::memory(Pid::Other(pid))?.rss_bytes;

    // Normal traffic first, so "warm" RSS is the working level before overload.
    let normal_clients = 8;
    let bodies = bodies_for(&workload, batch, options.client_max_in_flight.min(256));
    load::closed_loop(&target, &bodies, normal_clients, Duration::from_secs(3)).await;
    let warm_rss = procfs::memory(Pid::Other(pid))?.rss_bytes;

    let rate = options.factor * options.capacity_events_per_second / batch as f64;
    eprintln!(
        "==> overload: {:.0}x capacity = {rate:.0} requests/s of {batch} events for {}s",
        options.factor,
        options.duration.as_secs()
    );
    let sampler = RssSampler::start(
        pid,
        Duration::from_millis(100),
        options.duration + Duration::from_secs(120),
    );
    let schedule = Schedule {
        requests_per_second: rate,
        duration: options.duration,
        max_in_flight: options.client_max_in_flight,
    };
    let mark = probes.mark();
    let (stopped_tx, stopped_rx) = oneshot::channel();
    let overload = tokio::spawn({
        let (target, bodies) = (target.clone(), bodies.clone());
        async move { load::open_loop(&target, &bodies, schedule, Some(stopped_tx)).await }
    });

    // The moment no new overload requests are made, probe with one normal
    // request at a time until one is served.
    let stopped = stopped_rx.await.unwrap_or_else(|_| Instant::now());
    let mut probes_sent = 0;
    let mut first_ok = None;
    let probe_deadline = stopped + Duration::from_secs(30);
    while Instant::now() < probe_deadline {
        probes_sent += 1;
        if let Answer::Http { status: 200, .. } = target.post(bodies[0].clone()).await {
            first_ok = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tally = overload.await.context("joining the overload generator")?;
    let cpu = probes.since(mark, true);
    let mut run = Run::from_tally(
        "gateway, overload",
        batch,
        format!(
            "open loop, {rate:.0} requests/s offered, ≤ {} open",
            options.client_max_in_flight
        ),
        &tally,
        cpu,
    );
    run.service = Some(Quantiles::from_micros(&tally.service));
    eprintln!(
        "    statuses {:?}, transport errors {}, not sent {}",
        run.statuses, run.transport_errors, run.not_sent
    );

    let mark = probes.mark();
    let tally = load::closed_loop(&target, &bodies, normal_clients, Duration::from_secs(5)).await;
    let after = Run::from_tally(
        "gateway, after overload",
        batch,
        format!("closed loop, {normal_clients} clients"),
        &tally,
        probes.since(mark, true),
    );
    let (peak_sampled, samples) = sampler.finish().await;
    let final_memory = procfs::memory(Pid::Other(pid))?;
    Ok(OverloadResults {
        environment,
        config: options.config.clone(),
        capacity_events_per_second: options.capacity_events_per_second,
        factor: options.factor,
        target_requests_per_second: rate,
        offered_seconds: options.duration.as_secs_f64(),
        client_max_in_flight: options.client_max_in_flight,
        idle_rss_bytes: idle_rss,
        warm_rss_bytes: warm_rss,
        peak_sampled_rss_bytes: peak_sampled,
        peak_rss_bytes: final_memory.peak_rss_bytes,
        rss_samples: samples,
        run,
        recovery: Recovery {
            first_ok_after_ms: first_ok.map(|d| d.as_secs_f64() * 1000.0),
            probes: probes_sent,
            after,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_plans_parse() {
        let plan: BatchPlan = "100:32".parse().unwrap();
        assert_eq!(
            plan,
            BatchPlan {
                batch: 100,
                concurrency: 32
            }
        );
        assert!("100".parse::<BatchPlan>().is_err());
        assert!("0:3".parse::<BatchPlan>().is_err());
    }
}
