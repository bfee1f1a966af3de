//! What every handler shares. Cheap to clone (one `Arc`).

use std::sync::Arc;

use sluice_core::clock::Clock;
use sluice_plugin_host::PluginHost;

use crate::admission::Admission;
use crate::config::{GatewayConfig, IngestSettings, ProducerSettings};
use crate::keys::KeyStore;
use crate::producer::EventProducer;
use crate::readiness::Readiness;
use crate::schemas::SchemaRegistry;

#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ingest: IngestSettings,
    producer_settings: ProducerSettings,
    operator_token: Option<String>,
    admission: Admission,
    keys: Arc<dyn KeyStore>,
    producer: Arc<dyn EventProducer>,
    clock: Arc<dyn Clock>,
    readiness: Readiness,
    plugins: Option<Arc<PluginHost>>,
    schemas: Option<Arc<SchemaRegistry>>,
}

impl AppState {
    pub fn new(
        config: &GatewayConfig,
        keys: Arc<dyn KeyStore>,
        producer: Arc<dyn EventProducer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // Metrics recorded before the recorder exists are lost; install it
        // with the first state so every gateway, in tests too, is measured.
        sluice_core::telemetry::metrics();
        crate::metrics::describe();
        Self {
            inner: Arc::new(Inner {
                ingest: config.ingest.clone(),
                producer_settings: config.producer.clone(),
                operator_token: Some(config.admin.token.clone()).filter(|t| !t.is_empty()),
                admission: Admission::new(&config.admission),
                keys,
                producer,
                clock,
                readiness: Readiness::default(),
                plugins: None,
                schemas: None,
            }),
        }
    }

    /// Adds the plugin host. Call before the state is shared.
    pub fn with_plugins(mut self, plugins: Arc<PluginHost>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.plugins = Some(plugins);
        }
        self
    }

    /// Adds the schema registry. Call before the state is shared.
    pub fn with_schemas(mut self, schemas: Arc<SchemaRegistry>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.schemas = Some(schemas);
        }
        self
    }

    pub fn schemas(&self) -> Option<&Arc<SchemaRegistry>> {
        self.inner.schemas.as_ref()
    }

    pub fn plugins(&self) -> Option<&Arc<PluginHost>> {
        self.inner.plugins.as_ref()
    }

    pub fn ingest(&self) -> &IngestSettings {
        &self.inner.ingest
    }

    pub fn producer_settings(&self) -> &ProducerSettings {
        &self.inner.producer_settings
    }

    pub fn operator_token(&self) -> Option<&str> {
        self.inner.operator_token.as_deref()
    }

    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    pub fn keys(&self) -> &dyn KeyStore {
        self.inner.keys.as_ref()
    }

    pub fn producer(&self) -> &dyn EventProducer {
        self.inner.producer.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// What `/readyz` reports: Kafka reachable, keys and schemas loaded,
    /// the teams' plugins compiled, not draining.
    pub fn is_ready(&self) -> bool {
        self.not_ready_because().is_none()
    }

    /// Why `/readyz` answers 503, as its `reason`.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        let readiness = &self.inner.readiness;
        if readiness.is_draining() {
            Some("draining")
        } else if !readiness.is_ready() {
            Some("kafka_unreachable")
        } else if !self.inner.keys.is_loaded() {
            Some("keys_loading")
        } else if !self.inner.plugins.as_ref().is_none_or(|p| p.is_loaded()) {
            // Registry still being read, or its active plugins compiling.
            Some("plugins_loading")
        } else if !self.inner.schemas.as_ref().is_none_or(|s| s.is_loaded()) {
            Some("schemas_loading")
        } else {
            None
        }
    }

    pub fn readiness(&self) -> Readiness {
        self.inner.readiness.clone()
    }
}
