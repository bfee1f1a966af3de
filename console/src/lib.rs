//! `sluice-console`: the browser console of a Sluice deployment.
//!
//! - [`routes`]: the whole HTTP surface, `router(state)`, testable without
//!   a socket: the page's files ([`assets`]), its API ([`api`]), health
//!   and metrics.
//! - [`api`]: dashboards from the rollups, the explorer, rejections,
//!   pipeline health, traces; [`gateway`] forwards admin calls.
//! - [`live`]: the live view's Kafka tail, shared by every open page.
//! - [`rejections`]: dead letters counted in memory from their topic.
//! - [`auth`]: who a key belongs to, asked of the gateway.
//! - [`config`], [`error`], [`state`].
//!
//! A service of its own: it depends on the shared crates, never on the
//! gateway, loader or aggregator (see `docs/console.md`).

pub mod api;
pub mod assets;
pub mod auth;
pub mod config;
mod content_type;
pub mod error;
pub mod gateway;
pub mod live;
pub mod rejections;
pub mod routes;
pub mod state;
pub mod traces;

use std::future::Future;

pub use config::ConsoleConfig;
pub use routes::router;
pub use state::AppState;

/// Serves the console on `listener` until `shutdown` resolves; open live
/// views end with it.
pub async fn serve(
    config: ConsoleConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    sluice_core::telemetry::metrics();
    routes::describe_metrics();
    let address = listener.local_addr()?;
    let state = AppState::new(config)?;
    tracing::info!(%address, gateway = %state.config.gateway.admin_url, "console listening");
    // Counted from the start: /readyz waits until they are read.
    tokio::spawn(state.rejections.clone().follow(
        state.config.kafka.clone(),
        state.config.topics.rejected.clone(),
    ));
    let live = state.live.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Live views never end by themselves; the requests in flight do.
            live.close();
        })
        .await?;
    Ok(())
}
