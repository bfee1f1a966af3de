//! The process's own memory, as the operating system and the allocator see it.
//!
//! Resident size comes from `/proc/self/statm`: it counts everything, Rust
//! allocations, librdkafka's buffers, wasmtime's instance memory, stacks and
//! code, which is what a container limit or the OOM killer sees. What the
//! allocator holds (bytes in live allocations versus pages it keeps) comes from
//! a probe the binary installs, because only the binary knows which global
//! allocator it links.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

/// What the allocator reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes in live allocations.
    pub allocated: u64,
    /// Bytes in pages the allocator holds resident (live data, fragmentation
    /// and freed pages not yet given back).
    pub resident: u64,
}

/// Reads the allocator's statistics; `None` when they are unavailable.
pub type AllocatorProbe = fn() -> Option<AllocatorStats>;

static ALLOCATOR_PROBE: OnceLock<AllocatorProbe> = OnceLock::new();

/// Installs the allocator probe for the whole process; later calls are ignored.
pub fn install_allocator_probe(probe: AllocatorProbe) {
    let _ = ALLOCATOR_PROBE.set(probe);
}

/// The allocator's statistics, when the binary installed a probe.
pub fn allocator_stats() -> Option<AllocatorStats> {
    ALLOCATOR_PROBE.get().and_then(|probe| probe())
}

/// Bytes of this process resident in memory, or `None` off Linux.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = parse_statm_resident(&statm)?;
    Some(pages * rustix::param::page_size() as u64)
}

/// The second field of `/proc/<pid>/statm`: resident pages.
fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// A ceiling on the process's resident memory (`admission.max_resident_bytes`),
/// watched by sampling.
///
/// The static bounds (body budget, producer queue, connection cap) keep memory
/// flat by construction; this is the safety net for what they do not model:
/// allocator fragmentation, plugin instances, unusually large headers. While
/// resident memory is at or above the limit the gateway refuses new ingest
/// requests with 503 and stops accepting connections, the two things that
/// would make it grow, until it is back below. Zero means no limit.
#[derive(Debug, Default)]
pub struct ResidentLimit {
    limit: u64,
    resident: AtomicU64,
    within: Notify,
}

impl ResidentLimit {
    pub fn new(limit_bytes: u64) -> Self {
        Self {
            limit: limit_bytes,
            ..Self::default()
        }
    }

    /// The configured ceiling in bytes; zero when there is none.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Resident bytes at the last sample.
    pub fn resident(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    /// Whether the last sample was at or above the limit.
    pub fn is_exceeded(&self) -> bool {
        self.limit > 0 && self.resident() >= self.limit
    }

    /// Records a sample of resident bytes; wakes waiters when within the limit.
    pub fn record(&self, resident_bytes: u64) {
        self.resident.store(resident_bytes, Ordering::Relaxed);
        if !self.is_exceeded() {
            self.within.notify_waiters();
        }
    }

    /// Returns once the last sample is within the limit.
    pub async fn wait_until_within(&self) {
        loop {
            let mut notified = pin!(self.within.notified());
            // Registered before checking, so a sample recorded in between
            // still wakes us.
            notified.as_mut().enable();
            if !self.is_exceeded() {
                return;
            }
            notified.await;
        }
    }

    /// Samples the process's resident memory every `period`, forever.
    /// Reading `/proc/self/statm` costs microseconds, so a short period is
    /// cheap and keeps the reaction to a burst quick.
    pub async fn watch(self: Arc<Self>, period: Duration) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Some(bytes) = resident_bytes() {
                self.record(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_resident_is_the_second_field() {
        assert_eq!(
            parse_statm_resident("5000 1200 300 10 0 900 0\n"),
            Some(1200)
        );
        assert_eq!(parse_statm_resident("5000"), None);
        assert_eq!(parse_statm_resident(""), None);
    }

    #[test]
    fn no_limit_is_never_exceeded() {
        let limit = ResidentLimit::new(0);
        limit.record(u64::MAX);
        assert!(!limit.is_exceeded());
    }

    #[tokio::test]
    async fn waiters_resume_once_a_sample_is_within_the_limit() {
        let limit = Arc::new(ResidentLimit::new(100));
        limit.record(150);
        assert!(limit.is_exceeded());
        let waiter = tokio::spawn({
            let limit = limit.clone();
            async move { limit.wait_until_within().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "resumed while over the limit");
        limit.record(120);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "resumed while still over the limit");
        limit.record(99);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("resumed once within the limit")
            .unwrap();
        assert!(!limit.is_exceeded());
    }

    #[test]
    fn this_process_is_resident() {
        let bytes = resident_bytes().expect("linux has /proc/self/statm");
        // A test binary holds at least its own code and stacks.
        assert!(bytes > 1024 * 1024, "{bytes} bytes resident");
    }
}
