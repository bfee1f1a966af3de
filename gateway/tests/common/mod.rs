//! The router-test harness shared by `router.rs` and `compat.rs`: a gateway
//! state with one key, a fixed clock and an in-memory producer.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Arc;

use sluice_core::Timestamp;
use sluice_core::clock::FixedClock;
use sluice_gateway::keys::{ConfiguredKeys, MemoryKeys};
use sluice_gateway::producer::MemoryProducer;
use sluice_gateway::{AppState, GatewayConfig};

pub const KEY: &str = "sk_test_team_a";
pub const NOW: i64 = 1_800_000_000_000;
pub const OPERATOR: &str = "operator-token-0123456789";

pub struct Harness {
    pub state: AppState,
    pub producer: Arc<MemoryProducer>,
}

pub fn harness() -> Harness {
    harness_with(|_| {})
}

/// A harness whose configuration `adjust` changed first.
pub fn harness_with(adjust: impl FnOnce(&mut GatewayConfig)) -> Harness {
    let mut config = GatewayConfig::default();
    config.auth.keys.insert(KEY.into(), "team-a".into());
    config.admin.token = OPERATOR.into();
    config.ingest.max_events_per_batch = 3;
    config.ingest.max_body_bytes = 64 * 1024;
    adjust(&mut config);
    let producer = Arc::new(MemoryProducer::default());
    let state = AppState::new(
        &config,
        Arc::new(MemoryKeys::new(ConfiguredKeys::new(&config.auth.keys))),
        producer.clone(),
        Arc::new(FixedClock::new(Timestamp::from_millis(NOW))),
    );
    Harness { state, producer }
}
