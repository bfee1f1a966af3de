//! The aggregator: `events.raw` → 5-minute rollups per (team, event, user)
//! in ClickHouse, counted exactly once; ClickHouse views roll them up by
//! hour and day and count daily active users. See [`consumer`] for the
//! guarantee and [`window`] for event time, watermarks and late events.
//!
//! - [`config`]: typed configuration (file + environment), validated first.
//! - [`window`]: tumbling event-time windows of one partition (pure logic).
//! - [`record`]: the few fields of an event the aggregator reads.
//! - [`consumer`]: the loop (windows per partition, insert, then commit).
//! - [`clickhouse`]: the rollup tables and views, inserts, stored rows.
//! - [`status`]: readiness and Prometheus metrics.

pub mod clickhouse;
pub mod config;
pub mod consumer;
pub mod record;
pub mod status;
pub mod window;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::AggregatorConfig;
use status::Status;

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router(status: Arc<Status>) -> axum::Router {
    sluice_core::service::router(status)
}

/// Serves health and metrics on `listener` and aggregates until `shutdown`.
pub async fn serve(
    config: AggregatorConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    sluice_core::telemetry::metrics();
    status::describe();
    let status = Arc::new(status::new_status());
    let backoff = sluice_core::backoff::Backoff::from_millis(
        config.flush.min_backoff_ms,
        config.flush.max_backoff_ms,
    );
    sluice_core::service::serve_consumer(
        "aggregating",
        listener,
        status.clone(),
        backoff,
        shutdown,
        || consumer::Aggregator::new(config.clone(), status.clone()),
        |aggregator, shutdown| aggregator.run(shutdown),
    )
    .await
}
