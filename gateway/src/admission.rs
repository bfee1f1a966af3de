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
//! resident memory those bounds allow is at most
//! [`AdmissionSettings::resident_allowance`]; when
//! `admission.max_resident_bytes` is set, the configuration must fit in it and
//! a sampled [`ResidentLimit`] refuses requests (503) while the process is at
//! the limit anyway.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AdmissionSettings;
use crate::memory::ResidentLimit;
use crate::metrics;

/// Budget accounting unit: permits are KiB so a `u32` covers terabytes.
const UNIT: usize = 1024;

/// Why a request was not admitted. The HTTP boundary turns it into
/// [`ApiError`](crate::error::ApiError) in one place (`From`), so this module
/// knows nothing of HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// In-flight, memory budget or resident memory spent (503).
    #[error("the gateway is at capacity; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// The API key's event rate is spent (429).
    #[error("too many requests for this API key; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
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
    pub fn new(config: &AdmissionSettings) -> Self {
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
    pub fn admit(&self, body_bytes: usize) -> Result<Ticket, Refusal> {
        let overloaded = || Refusal::Overloaded {
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
    pub fn charge(&self, key: &Arc<str>, events: usize) -> Result<(), Refusal> {
        let Some(limiter) = &self.per_key else {
            return Ok(());
        };
        let n =
            NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(Refusal::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
            // More events than the burst: can never pass as one request.
            Err(_) => Err(Refusal::RateLimited {
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

    fn config() -> AdmissionSettings {
        AdmissionSettings {
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
        let admission = Admission::new(&AdmissionSettings {
            max_resident_bytes: 1000,
            ..config()
        });
        let limit = admission.resident_limit();
        limit.record(999);
        drop(admission.admit(1024).expect("admitted below the limit"));
        limit.record(1000);
        assert!(matches!(
            admission.admit(1024),
            Err(Refusal::Overloaded { .. })
        ));
        limit.record(500);
        assert!(admission.admit(1024).is_ok(), "admitted again once below");
    }

    #[test]
    fn the_allowance_counts_every_bound() {
        let config = AdmissionSettings {
            memory_budget_bytes: 16 << 20,
            max_connections: 2048,
            ..AdmissionSettings::default()
        };
        assert_eq!(
            config.resident_allowance(32 << 20),
            (64 << 20) + (16 << 20) + (32 << 20) + 2048 * (32 << 10)
        );
    }

    #[test]
    fn in_flight_and_memory_are_bounded_and_released() {
        let admission = Admission::new(&config());
        let a = admission.admit(1024).unwrap();
        let mut b = admission.admit(1024).unwrap();
        assert!(
            matches!(admission.admit(1), Err(Refusal::Overloaded { .. })),
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
            Err(Refusal::Overloaded { .. })
        ));
    }

    #[test]
    fn keys_are_rate_limited_independently_with_a_retry_hint() {
        let admission = Admission::new(&config());
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        admission.charge(&a, 20).unwrap();
        match admission.charge(&a, 5) {
            Err(Refusal::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        admission.charge(&b, 20).unwrap();
        assert!(matches!(
            admission.charge(&b, 21),
            Err(Refusal::RateLimited { .. })
        ));
    }
}
