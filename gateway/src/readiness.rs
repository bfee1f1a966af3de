//! Whether this replica should get traffic: the backend (Kafka) answered the
//! last probe and the gateway is not draining. Shared by the producer's
//! probe, which sets it, and `/readyz`, which reports it with the tables'
//! loading state ([`AppState::is_ready`](crate::state::AppState::is_ready)).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Ready = the backend answered the last probe and we are not draining.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<ReadinessFlags>);

#[derive(Debug, Default)]
struct ReadinessFlags {
    backend_reachable: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.backend_reachable() && !self.is_draining()
    }

    pub fn backend_reachable(&self) -> bool {
        self.0.backend_reachable.load(Ordering::Relaxed)
    }

    pub fn set_backend_reachable(&self, reachable: bool) {
        self.0.backend_reachable.store(reachable, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.0.draining.store(true, Ordering::Relaxed);
    }
}
