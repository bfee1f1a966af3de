//! Admission control: who may use how much of the gateway right now.
//!
//! Three bounds on requests, each answered with `Retry-After` rather than a
//! queue:
//! - **rate per API key** (events/s with a burst, GCRA via `governor`) → 429;
//! - **requests in flight** (a semaphore; waiting for Kafka counts) → 503;
//! - **memory**: every request reserves its body bytes from a byte budget
//!   before reading, and grows the reservation while decompressing, so the
//!   bytes held by all in-flight requests never exceed
//!   `admission.memory_budget_bytes` → 503.
//!
//! And one on connections: at most `admission.max_connections` are open; past
//! it new ones wait in the listen backlog (see [`crate::connections`]).
//!
//! Together with the producer's bounded queue this keeps resident memory flat
//! under any offered load: excess load is refused early and cheaply. The
//! resident memory those bounds allow is at most [`resident_allowance`]; when
//! `admission.max_resident_bytes` is set, the configuration must fit in it and
//! a sampled [`ResidentLimit`] refuses requests (503) while the process is at
//! the limit anyway.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::memory::ResidentLimit;
use crate::metrics;

/// Budget accounting unit: permits are KiB so a `u32` covers terabytes.
const UNIT: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Sustained events per second allowed per API key.
    pub events_per_second_per_key: u32,
    /// Events a key may send at once above the sustained rate.
    pub burst_events_per_key: u32,
    /// Ingest requests processed at once (including those waiting for Kafka).
    pub max_in_flight_requests: usize,
    /// Bytes all in-flight request bodies may hold together.
    pub memory_budget_bytes: usize,
    /// HTTP connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Resident memory of the whole process; 0 = no limit.
    pub max_resident_bytes: u64,
}

/// Resident memory of a gateway with no traffic, with room for what warms up
/// on first use: code, the async runtime, the Kafka client and its threads,
/// the plugin engine, metrics. Measured: 22-48 MiB idle, 51-56 MiB after a
/// first load (docs/benchmarks.md).
pub const BASE_ALLOWANCE_BYTES: u64 = 64 * 1024 * 1024;

/// Resident memory of one open connection: hyper's read buffer (at most
/// [`crate::connections::READ_BUFFER_BYTES`]) and write buffer (8 KiB), the
/// connection's task and its request's state. Measured: about 26 KiB per idle
/// keep-alive connection.
pub const CONNECTION_ALLOWANCE_BYTES: u64 = 32 * 1024;

/// The most resident memory the static bounds allow: the base, the body
/// budget, the producer queue and every allowed connection. Plugin instances
/// are not in it (their linear memory is reserved, and touched only as used);
/// the sampled limit covers them.
pub fn resident_allowance(config: &AdmissionConfig, producer_queue_bytes: u64) -> u64 {
    BASE_ALLOWANCE_BYTES
        .saturating_add(config.memory_budget_bytes as u64)
        .saturating_add(producer_queue_bytes)
        .saturating_add((config.max_connections as u64).saturating_mul(CONNECTION_ALLOWANCE_BYTES))
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            events_per_second_per_key: 50_000,
            burst_events_per_key: 100_000,
            max_in_flight_requests: 1024,
            memory_budget_bytes: 512 * 1024 * 1024,
            max_connections: 4096,
            max_resident_bytes: 0,
        }
    }
}

#[derive(Debug)]
pub struct Admission {
    per_key: Option<DefaultKeyedRateLimiter<Arc<str>>>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    memory: Arc<Semaphore>,
    memory_units: usize,
    connections: Arc<Semaphore>,
    max_connections: usize,
    resident: Arc<ResidentLimit>,
}

/// What an admitted request holds until its response is sent.
#[derive(Debug)]
pub struct Ticket {
    _in_flight: OwnedSemaphorePermit,
    memory: OwnedSemaphorePermit,
    budget: Arc<Semaphore>,
}

impl Ticket {
    /// Bytes currently reserved.
    pub fn reserved(&self) -> usize {
        self.memory.num_permits() * UNIT
    }

    /// Grows the reservation to at least `bytes`; false if the budget is spent.
    pub fn reserve(&mut self, bytes: usize) -> bool {
        let have = self.memory.num_permits();
        let want = bytes.div_ceil(UNIT);
        if want <= have {
            return true;
        }
        let Ok(extra) = u32::try_from(want - have) else {
            return false;
        };
        match self.budget.clone().try_acquire_many_owned(extra) {
            Ok(permit) => {
                self.memory.merge(permit);
                true
            }
            Err(_) => false,
        }
    }
}

/// How long to tell clients to wait when the gateway itself is saturated.
const OVERLOADED_RETRY_SECS: u64 = 1;

impl Admission {
    pub fn new(config: &AdmissionConfig) -> Self {
        let per_key = NonZeroU32::new(config.events_per_second_per_key).map(|rate| {
            let burst = NonZeroU32::new(config.burst_events_per_key).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let memory_units = (config.memory_budget_bytes / UNIT).min(Semaphore::MAX_PERMITS);
        let max_in_flight = config.max_in_flight_requests.min(Semaphore::MAX_PERMITS);
        let max_connections = config.max_connections.min(Semaphore::MAX_PERMITS);
        Self {
            per_key,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            memory: Arc::new(Semaphore::new(memory_units)),
            memory_units,
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            resident: Arc::new(ResidentLimit::new(config.max_resident_bytes)),
        }
    }

    /// The sampled resident-memory limit, shared with its sampler.
    pub fn resident_limit(&self) -> Arc<ResidentLimit> {
        self.resident.clone()
    }

    /// Admits a request expected to carry `body_bytes`, or refuses it now.
    pub fn admit(&self, body_bytes: usize) -> Result<Ticket, ApiError> {
        let overloaded = || ApiError::Overloaded {
            retry_after_secs: OVERLOADED_RETRY_SECS,
        };
        if self.resident.is_exceeded() {
            ::metrics::counter!(metrics::MEMORY_LIMIT_REFUSALS).increment(1);
            return Err(overloaded());
        }
        let in_flight = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| overloaded())?;
        let units = u32::try_from(body_bytes.div_ceil(UNIT).max(1)).map_err(|_| overloaded())?;
        let memory = self
            .memory
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| overloaded())?;
        Ok(Ticket {
            _in_flight: in_flight,
            memory,
            budget: self.memory.clone(),
        })
    }

    /// Charges `events` against `key`'s rate; refuses with the wait time.
    pub fn charge(&self, key: &Arc<str>, events: usize) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_key else {
            return Ok(());
        };
        let n =
            NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
            // More events than the burst: can never pass as one request.
            Err(_) => Err(ApiError::RateLimited {
                retry_after_secs: 1,
            }),
        }
    }

    /// Bytes of the memory budget not reserved by any request.
    pub fn memory_available(&self) -> usize {
        self.memory.available_permits() * UNIT
    }

    /// Bytes reserved by in-flight requests.
    pub fn memory_used(&self) -> usize {
        (self.memory_units - self.memory.available_permits()) * UNIT
    }

    pub fn in_flight_available(&self) -> usize {
        self.in_flight.available_permits()
    }

    pub fn in_flight_used(&self) -> usize {
        self.max_in_flight - self.in_flight.available_permits()
    }

    /// One permit per connection allowed open, for the listener.
    pub fn connection_permits(&self) -> Arc<Semaphore> {
        self.connections.clone()
    }

    pub fn connections_open(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdmissionConfig {
        AdmissionConfig {
            events_per_second_per_key: 10,
            burst_events_per_key: 20,
            max_in_flight_requests: 2,
            memory_budget_bytes: 64 * 1024,
            max_connections: 4,
            max_resident_bytes: 0,
        }
    }

    #[test]
    fn requests_are_refused_while_resident_memory_is_at_the_limit() {
        let admission = Admission::new(&AdmissionConfig {
            max_resident_bytes: 1000,
            ..config()
        });
        let limit = admission.resident_limit();
        limit.record(999);
        drop(admission.admit(1024).expect("admitted below the limit"));
        limit.record(1000);
        assert!(matches!(
            admission.admit(1024),
            Err(ApiError::Overloaded { .. })
        ));
        limit.record(500);
        assert!(admission.admit(1024).is_ok(), "admitted again once below");
    }

    #[test]
    fn the_allowance_counts_every_bound() {
        let config = AdmissionConfig {
            memory_budget_bytes: 16 << 20,
            max_connections: 2048,
            ..AdmissionConfig::default()
        };
        assert_eq!(
            resident_allowance(&config, 32 << 20),
            (64 << 20) + (16 << 20) + (32 << 20) + 2048 * (32 << 10)
        );
    }

    #[test]
    fn in_flight_and_memory_are_bounded_and_released() {
        let admission = Admission::new(&config());
        let a = admission.admit(1024).unwrap();
        let mut b = admission.admit(1024).unwrap();
        assert!(
            matches!(admission.admit(1), Err(ApiError::Overloaded { .. })),
            "third request refused"
        );
        assert!(b.reserve(32 * 1024));
        assert!(!b.reserve(128 * 1024), "cannot grow past the budget");
        drop(a);
        drop(b);
        assert_eq!(admission.memory_available(), 64 * 1024);
        assert_eq!(admission.in_flight_available(), 2);
        assert!(matches!(
            admission.admit(65 * 1024),
            Err(ApiError::Overloaded { .. })
        ));
    }

    #[test]
    fn keys_are_rate_limited_independently_with_a_retry_hint() {
        let admission = Admission::new(&config());
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        admission.charge(&a, 20).unwrap();
        match admission.charge(&a, 5) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        admission.charge(&b, 20).unwrap();
        assert!(matches!(
            admission.charge(&b, 21),
            Err(ApiError::RateLimited { .. })
        ));
    }
}
