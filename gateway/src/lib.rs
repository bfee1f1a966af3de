//! The Sluice gateway: HTTP in, Kafka out, an honest answer per event.
//!
//! Module map:
//! - [`config`]: the typed, validated configuration (file + environment).
//! - [`routes`]: `router(state) -> Router`, the whole HTTP surface.
//! - [`ingest`]: the one ingest pipeline, from events to per-event outcomes.
//! - [`sdk`]: drop-in Segment and PostHog routes that translate into [`ingest`].
//! - [`auth`]: who is calling (ingest keys, team admins, the operator).
//! - [`keys`]: API key generation, hashed records, key stores.
//! - [`admin`]: the admin routes: keys, plugins and dead-letter replay
//!   (`/admin/v1`), schemas (`/schemas/v1`).
//! - [`admission`]: per-key rate limits, in-flight, memory and connection bounds.
//! - [`connections`]: the HTTP accept loop (connection cap, per-connection buffers).
//! - [`memory`]: the process's resident memory and the allocator's statistics.
//! - [`body`]: reading request bodies under size, decompression and time limits.
//! - [`producer`]: where accepted and rejected events go (Kafka, or memory in tests).
//! - [`schemas`]: the schema registry (storage, the per-batch view) and event validation.
//! - [`metrics`]: Prometheus metric names and help texts (`/metrics`).
//! - [`gauges`]: the gauges sampled once a second from the running gateway.
//! - [`readiness`]: whether this replica should get traffic (`/readyz`).
//! - [`error`]: the one error type of the HTTP boundary and its status mapping.
//! - [`state`]: what handlers share.
//!
//! [`serve`] runs the gateway until `shutdown` resolves, then drains in-flight
//! requests and flushes the producer, so no acknowledged-to-be event is lost.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod body;
pub mod config;
pub mod connections;
pub mod error;
pub mod gauges;
pub mod ingest;
pub mod keys;
pub mod memory;
pub mod metrics;
pub mod producer;
pub mod readiness;
pub mod routes;
pub mod schemas;
pub mod sdk;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::clock::SystemClock;
use tokio::net::TcpListener;

pub use config::GatewayConfig;
pub use routes::router;
pub use state::AppState;

/// Refuses to start on topics replicated less than `producer.min_replicas`
/// asks (when Kafka answers; a gateway started before Kafka checks nothing).
async fn check_topics(config: &GatewayConfig) -> anyhow::Result<()> {
    let kafka = config.kafka.clone();
    let topics = [
        config.producer.topic.clone(),
        config.producer.rejected_topic.clone(),
        config.auth.keys_topic.clone(),
        config.plugins.topic.clone(),
        config.plugins.blobs_topic.clone(),
        config.schemas.topic.clone(),
    ];
    let answer = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        producer::replication(&kafka, &names, std::time::Duration::from_secs(3))
    })
    .await?;
    match answer {
        Some((brokers, found)) => {
            producer::check_replication(&found, brokers, config.producer.min_replicas)
                .map_err(|err| anyhow::anyhow!("{err}"))
        }
        None => {
            tracing::warn!("Kafka did not answer at start; topic replication not checked");
            Ok(())
        }
    }
}

/// Builds the production state (Kafka producer, configured keys) and serves HTTP on
/// `listener` until `shutdown` completes.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    check_topics(&config).await?;
    let producer = Arc::new(producer::KafkaProducer::new(
        &config.kafka,
        &config.producer,
    )?);
    let keys = Arc::new(keys::KafkaKeys::start(
        keys::ConfiguredKeys::new(&config.auth.keys),
        &config.kafka,
        &config.auth.keys_topic,
    )?);
    let registry = Arc::new(sluice_plugin_host::registry::Registry::start(
        &config.kafka,
        &config.plugins.topic,
        &config.plugins.blobs_topic,
    )?);
    let plugin_host = sluice_plugin_host::PluginHost::new(&config.plugins, Some(registry))?;
    let plugin_sync = tokio::spawn(plugin_host.clone().sync());
    let schemas = Arc::new(schemas::SchemaRegistry::start(
        &config.kafka,
        &config.schemas.topic,
    )?);
    let schema_sync = tokio::spawn(schemas.clone().sync());
    let state = AppState::new(&config, keys, producer.clone(), Arc::new(SystemClock))
        .with_plugins(plugin_host)
        .with_schemas(schemas);
    let readiness = tokio::spawn(producer::watch_readiness(
        producer.clone(),
        state.readiness(),
        Duration::from_secs(2),
    ));

    let upkeep = tokio::spawn(gauges::upkeep(
        state.clone(),
        producer.clone(),
        Duration::from_secs(1),
    ));

    // Resident memory is sampled only when it is limited.
    let resident_limit = state.admission().resident_limit();
    let memory_watch = (resident_limit.limit() > 0)
        .then(|| tokio::spawn(resident_limit.watch(Duration::from_millis(50))));

    let draining = state.readiness();
    let permits = state.admission().connection_permits();
    // With `admin.listen`, the operator's routes are served there only.
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let operator = match config.admin.listen {
        Some(addr) => {
            let admin_listener = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("admin.listen {addr}: {e}"))?;
            tracing::info!(addr = %admin_listener.local_addr()?, "admin and metrics listening");
            let app = routes::operator_router(state.clone());
            let mut stopped = stopped.clone();
            Some(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                axum::serve(admin_listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }))
        }
        None => None,
    };
    let app = if config.admin.listen.is_some() {
        routes::ingest_router(state)
    } else {
        router(state)
    };
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    connections::serve(listener, app, permits, async move {
        shutdown.await;
        // Load balancers stop routing to us once /readyz fails; in-flight
        // requests keep running until they have their Kafka answer.
        draining.start_draining();
        tracing::info!("shutdown requested; draining in-flight requests");
    })
    .await;
    let _ = stopping.send(true);
    if let Some(operator) = operator {
        operator.await??;
    }
    readiness.abort();
    upkeep.abort();
    if let Some(watch) = memory_watch {
        watch.abort();
    }
    plugin_sync.abort();
    schema_sync.abort();

    let flush_timeout = Duration::from_millis(config.producer.delivery_timeout_ms);
    tokio::task::spawn_blocking(move || producer.flush(flush_timeout)).await??;
    tracing::info!("producer flushed; gateway stopped");
    Ok(())
}
