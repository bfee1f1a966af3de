//! The loader: `events.raw` → ClickHouse `events` (and the lake), effectively
//! exactly once. See [`consumer`] for the guarantee and how it is kept.
//!
//! - [`config`]: typed configuration (file + environment), validated first.
//! - [`consumer`]: the load loop (batches per partition, commit after insert).
//! - [`batch`]: deterministic per-partition offset-range batches.
//! - [`sink`]: the loop's view of ClickHouse (insert, progress, errors, the
//!   retention job), on the `sluice-clickhouse` layer.
//! - [`lake`]: the immutable JSON-lines copy with per-range manifests, in a
//!   local directory or an S3-compatible store.
//! - [`replay`]: re-loading a time range from the lake, idempotently.
//! - [`status`]: readiness and Prometheus metrics.

pub mod batch;
pub mod config;
pub mod consumer;
pub mod lake;
pub mod replay;
pub mod sink;
pub mod status;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::LoaderConfig;
use status::Status;

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router(status: Arc<Status>) -> axum::Router {
    sluice_core::service::router(status)
}

/// Serves health and metrics on `listener` and loads until `shutdown`.
pub async fn serve(
    config: LoaderConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    sluice_core::telemetry::metrics();
    status::describe();
    let status = Arc::new(status::new_status());
    let backoff = sluice_core::backoff::Backoff::from_millis(
        config.batch.min_backoff_ms,
        config.batch.max_backoff_ms,
    );
    sluice_core::service::serve_consumer(
        "loading",
        listener,
        status.clone(),
        backoff,
        shutdown,
        || consumer::Loader::new(config.clone(), status.clone()),
        |loader, shutdown| loader.run(shutdown),
    )
    .await
}
