//! What a run measured, as plain serialisable data: written as JSON by the
//! measuring subcommands, read back by `report` to render Markdown. Keeping
//! measuring and rendering apart lets the script run the throughput and
//! overload phases against two differently configured gateways and still
//! produce one report.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::load::Tally;
use crate::promtext;

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Unknown for server-side histograms (bucketed).
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: f64,
    pub samples: u64,
}

impl Quantiles {
    /// From a client-side histogram in microseconds.
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: Some(ms(h.value_at_quantile(0.999))),
            max_ms: Some(ms(h.max())),
            mean_ms: h.mean() / 1000.0,
            samples: h.len(),
        }
    }

    /// From a Prometheus histogram in seconds (interpolated within buckets).
    pub fn from_prometheus(h: &promtext::Histogram) -> Option<Self> {
        let ms = |q: f64| h.quantile(q).map(|s| s * 1000.0);
        Some(Self {
            p50_ms: ms(0.50)?,
            p90_ms: ms(0.90)?,
            p99_ms: ms(0.99)?,
            p999_ms: None,
            max_ms: None,
            mean_ms: h.mean()? * 1000.0,
            samples: h.count.max(0.0) as u64,
        })
    }
}

/// CPU seconds used during a scenario, per process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// The gateway process (absent in baseline runs, where it idles).
    pub gateway_seconds: Option<f64>,
    /// This load generator (in baseline runs: the raw producer itself).
    pub bench_seconds: f64,
    /// The Kafka broker, when its pid was given.
    pub kafka_seconds: Option<f64>,
}

/// The gateway's own view from `/metrics`, differenced around the scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTimes {
    /// Decode, validate, serialise: excluding body upload and Kafka's ack.
    pub processing: Option<Quantiles>,
    /// Fraction of requests whose processing took ≤ 2 ms (an exact bucket).
    pub processing_within_2ms: Option<f64>,
    /// The whole request inside the gateway.
    pub request: Option<Quantiles>,
    /// Enqueue to last acknowledgement.
    pub produce: Option<Quantiles>,
}

/// One scenario's numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub label: String,
    pub batch: usize,
    /// How load was offered, in words ("closed loop, 32 clients").
    pub load: String,
    pub seconds: f64,
    pub requests: u64,
    pub accepted_events: u64,
    pub rejected_events: u64,
    pub failed_events: u64,
    /// HTTP status → count (baseline runs: 200 = batch fully acked).
    pub statuses: BTreeMap<String, u64>,
    pub transport_errors: u64,
    /// `transport_errors` by kind (connect, timeout, reset/closed, other).
    pub transport_failures: BTreeMap<String, u64>,
    /// Open loop: scheduled sends skipped at the generator's in-flight cap.
    pub not_sent: u64,
    pub events_per_second: f64,
    pub requests_per_second: f64,
    /// End to end as the client saw it (open loop: from the scheduled time).
    pub latency: Quantiles,
    /// Open loop: from the actual send.
    pub service: Option<Quantiles>,
    pub cpu: CpuUse,
    pub server: Option<ServerTimes>,
}

impl Run {
    pub fn from_tally(label: &str, batch: usize, load: String, tally: &Tally, cpu: CpuUse) -> Self {
        let seconds = tally.elapsed.as_secs_f64().max(1e-9);
        Self {
            label: label.to_owned(),
            batch,
            load,
            seconds,
            requests: tally.requests,
            accepted_events: tally.accepted,
            rejected_events: tally.rejected,
            failed_events: tally.failed,
            statuses: tally
                .statuses
                .iter()
                .map(|(status, n)| (status.to_string(), *n))
                .collect(),
            transport_errors: tally.transport_errors,
            transport_failures: tally
                .failures
                .iter()
                .map(|(name, n)| ((*name).to_owned(), *n))
                .collect(),
            not_sent: tally.not_sent,
            events_per_second: tally.accepted as f64 / seconds,
            requests_per_second: tally.requests as f64 / seconds,
            latency: Quantiles::from_micros(&tally.latency),
            service: None,
            cpu,
            server: None,
        }
    }

    /// CPU microseconds per accepted event for `seconds` of CPU.
    pub fn per_event_us(&self, seconds: f64) -> Option<f64> {
        (self.accepted_events > 0).then(|| seconds * 1e6 / self.accepted_events as f64)
    }

    pub fn gateway_cpu_us_per_event(&self) -> Option<f64> {
        self.per_event_us(self.cpu.gateway_seconds?)
    }

    pub fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code.to_string()).copied().unwrap_or(0)
    }
}

/// The machine and moment of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub started_at: String,
    pub commit: Option<String>,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1-minute load average when the run started: how busy the neighbours were.
    pub load_average: String,
    pub brokers: String,
    pub broker_count: usize,
}

impl Environment {
    /// "when on `cpu`, n vCPU, Linux k; load average at start l; commit c":
    /// the machine line each generated section opens with.
    pub fn machine(&self) -> String {
        format!(
            "{} on `{}`, {} vCPU, Linux {}; load average at start {}; commit {}",
            self.started_at,
            self.cpu_model,
            self.cpus,
            self.kernel,
            self.load_average,
            self.commit.as_deref().unwrap_or("unknown"),
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadInfo {
    pub distinct_events: usize,
    pub users: u64,
    pub mean_event_bytes: f64,
    pub mean_record_bytes: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProducerInfo {
    pub topic: String,
    pub partitions: i32,
    pub linger_ms: u64,
    pub delivery_timeout_ms: u64,
    pub queue_max_kbytes: u64,
}

/// Baseline and gateway at one batch size, in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    /// 1-based; each round runs every batch size once, so noise shows up as
    /// the spread between rounds.
    #[serde(default)]
    pub round: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub baseline: Run,
    pub gateway: Run,
}

impl BatchResult {
    /// Gateway acknowledged events/s ÷ raw producer events/s.
    pub fn ratio(&self) -> Option<f64> {
        (self.baseline.events_per_second > 0.0)
            .then(|| self.gateway.events_per_second / self.baseline.events_per_second)
    }

    /// Raw-producer CPU per event ÷ gateway CPU per event: the throughput
    /// ratio the two would have on equal CPU, and much less noisy than the
    /// wall-clock ratio on a shared machine.
    pub fn cpu_ratio(&self) -> Option<f64> {
        let raw = self
            .baseline
            .per_event_us(self.baseline.cpu.bench_seconds)?;
        let gateway = self.gateway.gateway_cpu_us_per_event()?;
        (gateway > 0.0).then(|| raw / gateway)
    }
}

/// Mean, lowest and highest of some per-round values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let values: Vec<f64> = values.into_iter().collect();
        if values.is_empty() {
            return None;
        }
        Some(Self {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n: values.len(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HalfLoad {
    /// The closed-loop maximum this rate is half of (events/s).
    pub max_events_per_second: f64,
    pub target_requests_per_second: f64,
    pub run: Run,
    /// The raw producer on the same schedule: the latency floor this broker
    /// and linger allow.
    #[serde(default)]
    pub baseline: Option<Run>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputResults {
    pub environment: Environment,
    pub workload: WorkloadInfo,
    pub producer: ProducerInfo,
    pub batches: Vec<BatchResult>,
    pub half_load: Option<HalfLoad>,
}

impl ThroughputResults {
    /// Every round's result at batch size `size`.
    pub fn rounds_of(&self, size: usize) -> impl Iterator<Item = &BatchResult> {
        self.batches.iter().filter(move |b| b.batch == size)
    }

    /// Batch sizes measured, in first-run order.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        for b in &self.batches {
            if !sizes.contains(&b.batch) {
                sizes.push(b.batch);
            }
        }
        sizes
    }

    /// The best gateway throughput at `size` over all rounds.
    pub fn max_gateway_events_per_second(&self, size: usize) -> Option<f64> {
        self.rounds_of(size)
            .map(|b| b.gateway.events_per_second)
            .reduce(f64::max)
            .filter(|eps| *eps > 0.0)
    }
}

/// The overload gateway's limits, as the script configured them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OverloadConfig {
    pub max_in_flight_requests: u64,
    pub memory_budget_bytes: u64,
    pub queue_max_kbytes: u64,
    pub max_body_bytes: u64,
    /// `admission.max_connections` (absent from runs before it was recorded).
    #[serde(default)]
    pub max_connections: u64,
    /// The resident-memory budget the gateway must stay under.
    pub rss_budget_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// From the last overload request being scheduled to the first 200.
    pub first_ok_after_ms: Option<f64>,
    pub probes: u64,
    /// A short normal closed-loop run right after.
    pub after: Run,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OverloadResults {
    pub environment: Environment,
    pub config: OverloadConfig,
    pub capacity_events_per_second: f64,
    pub factor: f64,
    pub target_requests_per_second: f64,
    /// How long overload was offered (the run's `seconds` adds the tail).
    pub offered_seconds: f64,
    pub client_max_in_flight: usize,
    pub idle_rss_bytes: u64,
    pub warm_rss_bytes: u64,
    /// Largest VmRSS seen by the 100 ms sampler.
    pub peak_sampled_rss_bytes: u64,
    /// The kernel's VmHWM at the end (covers the whole process life).
    pub peak_rss_bytes: u64,
    pub rss_samples: u64,
    pub run: Run,
    pub recovery: Recovery,
}
