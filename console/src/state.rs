//! What every handler shares: configuration, the ClickHouse read path, the
//! gateway client, the key cache and the live tail.

use std::sync::Arc;
use std::time::Duration;

use sluice_clickhouse::dashboard::{Dashboard, QueryLimits};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::{Authenticator, Session, bearer};
use crate::config::ConsoleConfig;
use crate::error::ApiError;
use crate::live::Live;
use crate::rejections::RejectionIndex;

#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<ConsoleConfig>,
    pub dashboard: Dashboard,
    /// Calls to the gateway's admin listener and to Jaeger.
    pub http: reqwest::Client,
    pub auth: Arc<Authenticator>,
    pub live: Arc<Live>,
    pub rejections: Arc<RejectionIndex>,
}

impl AppState {
    /// Builds clients only; nothing connects until a request needs it.
    pub fn new(config: ConsoleConfig) -> anyhow::Result<Self> {
        let clickhouse = &config.clickhouse;
        let mut dashboard = Dashboard::new(&clickhouse.url, &clickhouse.database)?
            .with_credentials(&clickhouse.user, &clickhouse.password)
            .with_limits(QueryLimits {
                max_execution_time_secs: clickhouse.max_execution_time_secs,
                max_rows_to_read: clickhouse.max_rows_to_read,
                max_bytes_to_read: clickhouse.max_bytes_to_read,
            });
        if !clickhouse.cluster.is_empty() {
            dashboard = dashboard.over_cluster();
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.gateway.timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        let auth = Arc::new(Authenticator::new(
            &config.gateway.admin_url,
            http.clone(),
            Duration::from_millis(config.auth.cache_ms),
        ));
        let live = Arc::new(Live::new(
            config.kafka.clone(),
            (config.topics.raw.clone(), config.topics.rejected.clone()),
            config.live.max_subscribers,
            config.live.buffer,
        ));
        let rejections = Arc::new(RejectionIndex::new(
            config.rejections.window_days,
            config.rejections.max_entries,
        ));
        Ok(Self {
            config: Arc::new(config),
            dashboard,
            http,
            auth,
            live,
            rejections,
        })
    }
}

/// A handler that takes a [`Session`] is signed-in only: the key of the
/// request is resolved (401/403 otherwise) before the handler runs.
impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?;
        state.auth.session(key).await
    }
}
