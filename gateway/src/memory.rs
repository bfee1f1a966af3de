//! The process's own memory, as the operating system and the allocator see it.
//!
//! Resident size comes from `/proc/self/statm`: it counts everything, Rust
//! allocations, librdkafka's buffers, wasmtime's instance memory, stacks and
//! code, which is what a container limit or the OOM killer sees. What the
//! allocator holds (bytes in live allocations versus pages it keeps) comes from
//! a probe the binary installs, because only the binary knows which global
//! allocator it links.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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
/// requests with 503, until it is back below. Connections are still accepted
/// (up to `admission.max_connections`, which the static bounds count), so
/// health probes and `/metrics` keep answering. Zero means no limit.
#[derive(Debug, Default)]
pub struct ResidentLimit {
    limit: u64,
    resident: AtomicU64,
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

    /// Records a sample of resident bytes.
    pub fn record(&self, resident_bytes: u64) {
        self.resident.store(resident_bytes, Ordering::Relaxed);
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

    #[test]
    fn exceeded_from_the_limit_on_until_back_below() {
        let limit = ResidentLimit::new(100);
        limit.record(99);
        assert!(!limit.is_exceeded());
        limit.record(100);
        assert!(limit.is_exceeded());
        limit.record(150);
        assert!(limit.is_exceeded());
        limit.record(80);
        assert!(!limit.is_exceeded());
        assert_eq!(limit.resident(), 80);
    }

    #[test]
    fn this_process_is_resident() {
        let bytes = resident_bytes().expect("linux has /proc/self/statm");
        // A test binary holds at least its own code and stacks.
        assert!(bytes > 1024 * 1024, "{bytes} bytes resident");
    }
}
