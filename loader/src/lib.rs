//! The loader: `events.raw` → ClickHouse `events` (and the lake), effectively
//! exactly once. See [`consumer`] for the guarantee and how it is kept.
//!
//! - [`config`]: typed configuration (file + environment), validated first.
//! - [`consumer`]: the load loop (batches per partition, commit after insert).
//! - [`batch`]: deterministic per-partition offset-range batches.
//! - [`sink`]: the loop's view of ClickHouse (insert, progress, errors).
//! - [`clickhouse`]: server probing, versioned migrations, RowBinary inserts.
//! - [`lake`]: the immutable JSON-lines copy with per-range manifests.
//! - [`replay`]: re-loading a time range from the lake, idempotently.
//! - [`status`]: readiness and Prometheus metrics.

pub mod batch;
pub mod clickhouse;
pub mod config;
pub mod consumer;
pub mod lake;
pub mod replay;
pub mod sink;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

pub use config::LoaderConfig;
use status::Status;

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router(status: Arc<Status>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    sluice_core::telemetry::metrics().render(),
                )
            }),
        )
        .with_state(status)
}

async fn readyz(State(status): State<Arc<Status>>) -> impl IntoResponse {
    if status.is_ready() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "partitions": status.assigned() })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": "clickhouse_unreachable" })),
        )
    }
}

/// Serves health and metrics on `listener` and loads until `shutdown`.
pub async fn serve(
    config: LoaderConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    sluice_core::telemetry::metrics();
    Status::describe();
    let status = Arc::new(Status::default());
    let http = tokio::spawn(axum::serve(listener, router(status.clone())).into_future());
    tokio::pin!(shutdown);

    // ClickHouse may start after us: keep trying, visibly, until it answers.
    let mut backoff = Duration::from_millis(config.batch.min_backoff_ms);
    let loader = loop {
        tokio::select! {
            () = &mut shutdown => {
                http.abort();
                return Ok(());
            }
            created = consumer::Loader::new(config.clone(), status.clone()) => match created {
                Ok(loader) => break loader,
                Err(err) => {
                    status.set_clickhouse_up(false);
                    tracing::warn!(error = %format!("{err:#}"), backoff_ms = backoff.as_millis() as u64, "cannot start loading yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(config.batch.max_backoff_ms));
                }
            }
        }
    };
    let result = loader.run(shutdown).await;
    http.abort();
    result
}
