//! HTTP load against the gateway: closed loop (fixed concurrency, as fast as
//! answers come back) and open loop (requests at a fixed rate whatever the
//! answers do).
//!
//! Closed loop finds the maximum throughput; its latencies understate what a
//! client sees under a given rate, because a slow answer also delays the
//! next request ("coordinated omission"). Open loop measures latency at a
//! chosen rate honestly: each request's latency counts from the moment it
//! was *scheduled*, so a gateway (or a starved load generator) that falls
//! behind shows up in the numbers instead of hiding in a lower rate.
//!
//! Every loop is bounded by a deadline and every request by a timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use tokio::sync::{Semaphore, oneshot};

use crate::workload::Route;

/// Latencies are recorded in microseconds up to this bound (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;

/// Where and as whom to send.
#[derive(Debug, Clone)]
pub struct Target {
    client: reqwest::Client,
    events_url: String,
    base_url: String,
    /// `None` when the key travels in the body (PostHog routes).
    authorization: Option<HeaderValue>,
}

impl Target {
    /// `max_connections` bounds idle pooled connections; `timeout` bounds
    /// each request (above the gateway's delivery timeout, so the gateway's
    /// own 503 is seen rather than our give-up).
    pub fn new(
        base_url: &str,
        api_key: &str,
        max_connections: usize,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(max_connections)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            client,
            events_url: format!("{base_url}/v1/events"),
            base_url,
            authorization: Some(
                HeaderValue::from_str(&format!("Bearer {api_key}"))
                    .context("API key is not a valid header value")?,
            ),
        })
    }

    /// The same client aimed at another ingest route of the gateway, sending
    /// the key the way that route's SDK does: Bearer (native), HTTP Basic with
    /// the key as user (Segment), or in the body (PostHog: no header); the
    /// path is the one requests of `batch` events go to ([`Route::path`]).
    pub fn for_route(&self, route: Route, batch: usize, api_key: &str) -> anyhow::Result<Self> {
        let authorization = match route {
            Route::Native => self.authorization.clone(),
            Route::Segment => Some(
                HeaderValue::from_str(&format!(
                    "Basic {}",
                    base64(format!("{api_key}:").as_bytes())
                ))
                .context("API key is not a valid header value")?,
            ),
            Route::PostHog => None,
        };
        Ok(Self {
            client: self.client.clone(),
            events_url: format!("{}{}", self.base_url, route.path(batch)),
            base_url: self.base_url.clone(),
            authorization,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GET `path` (e.g. `/metrics`); `None` when it does not answer 200.
    pub async fn get_text(&self, path: &str) -> Option<String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    /// Waits until `/readyz` answers 200, at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(response) = self
                .client
                .get(format!("{}/readyz", self.base_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "gateway at {} not ready after {}s",
                    self.base_url,
                    limit.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// POSTs one batch body and classifies the answer.
    pub async fn post(&self, body: Bytes) -> Answer {
        let mut request = self.client.post(&self.events_url);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let sent = request
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return Answer::Transport(Failure::of(&err)),
        };
        let status = response.status().as_u16();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(err) => return Answer::Transport(Failure::of(&err)),
        };
        // Per-event counts are in 200 and 503 bodies; error bodies have none.
        let counts = serde_json::from_slice::<Counts>(&bytes).unwrap_or_default();
        Answer::Http { status, counts }
    }
}

/// Standard base64 with padding (for a Basic header; not worth a dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The top of a batch response; `results` is skipped without being built.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Counts {
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub failed: u64,
}

#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Http {
        status: u16,
        counts: Counts,
    },
    /// No HTTP answer.
    Transport(Failure),
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// Could not connect (refused, or the connect timeout).
    Connect,
    /// Our request timeout.
    Timeout,
    /// The server closed or reset the connection mid-request (for example
    /// after answering early without reading the body).
    Reset,
    Other,
}

impl Failure {
    fn of(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            return Self::Timeout;
        }
        if err.is_connect() {
            return Self::Connect;
        }
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
                if matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted) {
                    return Self::Reset;
                }
            }
            if cause.to_string().contains("connection closed") {
                return Self::Reset;
            }
            source = cause.source();
        }
        Self::Other
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Reset => "reset/closed",
            Self::Other => "other",
        }
    }
}

/// Everything one scenario observed.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Per-request latency, µs (open loop: from the scheduled send time).
    pub latency: Histogram<u64>,
    /// Open loop only: from the actual send time (service time).
    pub service: Histogram<u64>,
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// `transport_errors` by [`Failure::name`].
    pub failures: BTreeMap<&'static str, u64>,
    pub accepted: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Open loop only: sends skipped because the client's own in-flight cap
    /// was reached (the load generator could not keep the schedule).
    pub not_sent: u64,
    /// First send to last answer.
    pub elapsed: Duration,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latency: new_histogram(),
            service: new_histogram(),
            requests: 0,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            failures: BTreeMap::new(),
            accepted: 0,
            rejected: 0,
            failed: 0,
            not_sent: 0,
            elapsed: Duration::ZERO,
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits: 0.1 % resolution, small and fast. Constant,
    // valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(MAX_LATENCY_US)
        .clamp(1, MAX_LATENCY_US)
}

impl Tally {
    pub fn record(&mut self, answer: Answer, latency: Duration, service: Duration) {
        self.requests += 1;
        match answer {
            Answer::Http { status, counts } => {
                *self.statuses.entry(status).or_default() += 1;
                self.accepted += counts.accepted;
                self.rejected += counts.rejected;
                self.failed += counts.failed;
            }
            Answer::Transport(failure) => {
                self.transport_errors += 1;
                *self.failures.entry(failure.name()).or_default() += 1;
            }
        }
        // Saturating: a value past the bound is clamped, never an error.
        self.latency.saturating_record(micros(latency));
        self.service.saturating_record(micros(service));
    }

    pub fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides, so `add` cannot fail; ignore defensively.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.requests += other.requests;
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        for (name, n) in &other.failures {
            *self.failures.entry(name).or_default() += n;
        }
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.not_sent += other.not_sent;
    }

    pub fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }
}

/// `concurrency` clients, each sending the next body as soon as the previous
/// answer arrived, until `duration` has passed.
pub async fn closed_loop(
    target: &Target,
    bodies: &Arc<Vec<Bytes>>,
    concurrency: usize,
    duration: Duration,
) -> Tally {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|worker| {
            let target = target.clone();
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut next = worker;
                while Instant::now() < deadline {
                    let body = bodies[next % bodies.len()].clone();
                    next += concurrency;
                    let sent = Instant::now();
                    let answer = target.post(body).await;
                    let took = sent.elapsed();
                    tally.record(answer, took, took);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        if let Ok(tally) = worker.await {
            total.merge(&tally);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// An open-loop schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub requests_per_second: f64,
    pub duration: Duration,
    /// Most requests the generator keeps open at once; beyond it a scheduled
    /// send is counted in `not_sent` instead of queueing without bound.
    pub max_in_flight: usize,
}

/// Sends `bodies` at `schedule`'s rate. `stopped`, if given, is told the
/// instant the last request was scheduled (before in-flight ones finish), so
/// a caller can probe recovery while the tail drains.
pub async fn open_loop(
    target: &Target,
    bodies: &Arc<Vec<Bytes>>,
    schedule: Schedule,
    stopped: Option<oneshot::Sender<Instant>>,
) -> Tally {
    let (target, bodies) = (target.clone(), bodies.clone());
    open_loop_with(schedule, stopped, move |i| {
        let target = target.clone();
        let body = bodies[(i as usize) % bodies.len()].clone();
        async move { target.post(body).await }
    })
    .await
}

/// The open-loop schedule around any unit of work: `send(i)` is started at
/// the i-th scheduled instant (also used for the raw-producer baseline).
pub async fn open_loop_with<F, Fut>(
    schedule: Schedule,
    stopped: Option<oneshot::Sender<Instant>>,
    send: F,
) -> Tally
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let tally = Arc::new(Mutex::new(Tally::default()));
    let permits = Arc::new(Semaphore::new(schedule.max_in_flight.max(1)));
    let interval = Duration::from_secs_f64(1.0 / schedule.requests_per_second.max(0.001));
    let start = tokio::time::Instant::now();
    let deadline = start + schedule.duration;
    let mut not_sent = 0;
    for i in 0u64.. {
        let Some(scheduled) = u32::try_from(i).ok().map(|i| start + interval * i) else {
            break;
        };
        if scheduled >= deadline {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            not_sent += 1;
            continue;
        };
        let work = send(i);
        let tally = tally.clone();
        tokio::spawn(async move {
            let sent = Instant::now();
            let answer = work.await;
            let service = sent.elapsed();
            let latency = scheduled.into_std().elapsed();
            lock(&tally).record(answer, latency, service);
            drop(permit);
        });
    }
    if let Some(stopped) = stopped {
        let _ = stopped.send(Instant::now());
    }
    // Wait for the tail: every permit back means every request answered (or
    // timed out; the client and delivery timeouts bound this).
    let all = u32::try_from(schedule.max_in_flight.max(1)).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    let mut total = lock(&tally).clone();
    total.not_sent = not_sent;
    total.elapsed = start.elapsed();
    total
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    // A panicking request task cannot leave a Tally half-updated in a way
    // that matters for counting; keep going with what is there.
    tally
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_like_the_standard_alphabet() {
        assert_eq!(base64(b"sk_test_team_a:"), "c2tfdGVzdF90ZWFtX2E6");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn tallies_merge_and_count_statuses() {
        let mut a = Tally::default();
        let ok = Answer::Http {
            status: 200,
            counts: Counts {
                accepted: 100,
                rejected: 0,
                failed: 0,
            },
        };
        a.record(ok, Duration::from_millis(60), Duration::from_millis(60));
        let mut b = Tally::default();
        b.record(
            Answer::Http {
                status: 503,
                counts: Counts::default(),
            },
            Duration::from_millis(1),
            Duration::from_millis(1),
        );
        b.record(
            Answer::Transport(Failure::Timeout),
            Duration::from_secs(30),
            Duration::from_secs(30),
        );
        a.merge(&b);
        assert_eq!(a.requests, 3);
        assert_eq!(a.accepted, 100);
        assert_eq!(a.status(200), 1);
        assert_eq!(a.status(503), 1);
        assert_eq!(a.transport_errors, 1);
        assert_eq!(a.failures.get("timeout"), Some(&1));
        assert_eq!(a.latency.len(), 3);
    }

    #[test]
    fn counts_ignore_results_and_error_bodies() {
        let body = br#"{"accepted":2,"rejected":1,"failed":0,"results":[{"status":"accepted"}]}"#;
        let counts: Counts = serde_json::from_slice(body).unwrap();
        assert_eq!((counts.accepted, counts.rejected), (2, 1));
        let error = br#"{"error":{"code":"overloaded","message":"x"}}"#;
        let counts: Counts = serde_json::from_slice(error).unwrap();
        assert_eq!(counts.accepted, 0);
    }
}
