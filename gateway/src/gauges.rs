//! Gauges sampled once a period from the running gateway (in-flight
//! requests, memory, readiness, idle plugin instances), rather than updated
//! where they change. Kept apart from [`crate::metrics`], which only names
//! and describes metrics, so that naming a metric never depends on the
//! application state.

use std::sync::Arc;
use std::time::Duration;

use metrics::gauge;

use crate::memory;
use crate::metrics::{
    ALLOCATED_MEMORY, ALLOCATOR_RESIDENT, CONNECTIONS, IN_FLIGHT, KAFKA_REACHABLE,
    MEMORY_LIMIT_EXCEEDED, MEMORY_RESERVED, PRODUCER_QUEUE, READY, RESIDENT_MEMORY,
};
use crate::producer::EventProducer;
use crate::state::AppState;

/// Samples gauges and lets the exporter age its histograms, every `period`.
pub async fn upkeep(state: AppState, producer: Arc<dyn EventProducer>, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        let admission = state.admission();
        gauge!(IN_FLIGHT).set(admission.in_flight_used() as f64);
        gauge!(CONNECTIONS).set(admission.connections_open() as f64);
        gauge!(MEMORY_RESERVED).set(admission.memory_used() as f64);
        gauge!(PRODUCER_QUEUE).set(producer.queue_depth() as f64);
        if let Some(bytes) = memory::resident_bytes() {
            gauge!(RESIDENT_MEMORY).set(bytes as f64);
        }
        let limit = admission.resident_limit();
        gauge!(MEMORY_LIMIT_EXCEEDED).set(f64::from(u8::from(limit.is_exceeded())));
        if let Some(stats) = memory::allocator_stats() {
            gauge!(ALLOCATED_MEMORY).set(stats.allocated as f64);
            gauge!(ALLOCATOR_RESIDENT).set(stats.resident as f64);
        }
        let readiness = state.readiness();
        gauge!(KAFKA_REACHABLE).set(f64::from(u8::from(readiness.backend_reachable())));
        gauge!(READY).set(f64::from(u8::from(state.is_ready())));
        if let Some(plugins) = state.plugins() {
            sluice_plugin_host::metrics::sample(plugins.runtime().idle_instances());
        }
        sluice_core::telemetry::metrics().run_upkeep();
    }
}
