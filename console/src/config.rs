//! Console configuration: defaults < `--config` TOML file <
//! `SLUICE_CONSOLE_*` environment variables (nesting with `__`). Validated
//! before anything connects.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sluice_core::kafka::KafkaSettings;

pub const ENV_PREFIX: &str = "SLUICE_CONSOLE_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Address of the page, its API, `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    pub gateway: GatewaySettings,
    pub clickhouse: ClickHouseSettings,
    pub kafka: KafkaSettings,
    pub topics: TopicSettings,
    pub auth: AuthSettings,
    pub tracing: TracingSettings,
    pub live: LiveSettings,
    pub rejections: RejectionSettings,
    /// Serve the page's files from this folder instead of the copies built
    /// into the binary (front-end development: edit, reload).
    pub assets_dir: Option<PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            gateway: GatewaySettings::default(),
            clickhouse: ClickHouseSettings::default(),
            kafka: KafkaSettings::default(),
            topics: TopicSettings::default(),
            auth: AuthSettings::default(),
            tracing: TracingSettings::default(),
            live: LiveSettings::default(),
            rejections: RejectionSettings::default(),
            assets_dir: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// The gateway's admin listener (its `admin.listen`, or its only
    /// listener): who a key is, and the admin API the pages use.
    pub admin_url: String,
    /// Largest request body forwarded to it (a plugin upload); larger ones
    /// are refused with 413 before reaching the gateway. A little above the
    /// gateway's own limit for components (32 MiB by default), so the
    /// gateway gives its specific answer to what it would refuse.
    pub max_body_bytes: usize,
    pub timeout_ms: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            admin_url: "http://127.0.0.1:8080".to_owned(),
            max_body_bytes: 40 << 20,
            timeout_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseSettings {
    pub url: String,
    /// The loader's and aggregator's database.
    pub database: String,
    /// The cluster the loader and aggregator write to, if any: then every
    /// query reads the `Distributed` tables over all shards (`<table>_all`)
    /// from the node at `url`.
    pub cluster: String,
    pub user: String,
    pub password: String,
    /// Server-side limits on every console query, so one person's question
    /// cannot stall the server: seconds of execution, rows and bytes read.
    pub max_execution_time_secs: u32,
    pub max_rows_to_read: u64,
    pub max_bytes_to_read: u64,
}

impl Default for ClickHouseSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:18123".to_owned(),
            database: "sluice".to_owned(),
            cluster: String::new(),
            user: "default".to_owned(),
            password: String::new(),
            max_execution_time_secs: 10,
            max_rows_to_read: 200_000_000,
            max_bytes_to_read: 20 << 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicSettings {
    pub raw: String,
    pub rejected: String,
    /// Consumer groups whose lag the health page shows.
    pub consumer_groups: Vec<String>,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            raw: sluice_core::kafka::TOPIC_RAW.to_owned(),
            rejected: sluice_core::kafka::TOPIC_REJECTED.to_owned(),
            consumer_groups: vec!["sluice-loader".to_owned(), "sluice-aggregator".to_owned()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// How long the gateway's answer about a key is reused: a revoked key
    /// stops working in the console within this time.
    pub cache_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self { cache_ms: 2_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingSettings {
    /// Jaeger's query API (`scripts/stack env` prints it); empty: the traces
    /// page says tracing is not configured.
    pub jaeger_url: String,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self {
            jaeger_url: "http://127.0.0.1:16686".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSettings {
    /// Most open live views at once (each is a stream); more get 503.
    pub max_subscribers: usize,
    /// Records the tail keeps for a slow page before it tells that page it
    /// missed some.
    pub buffer: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            max_subscribers: 64,
            buffer: 4_096,
        }
    }
}

/// The in-memory counts of dead letters (see `rejections.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RejectionSettings {
    /// How far back they are read at start and kept.
    pub window_days: u32,
    /// Most (team, window, outcome, code) counts kept; the oldest windows
    /// go first.
    pub max_entries: usize,
}

impl Default for RejectionSettings {
    fn default() -> Self {
        Self {
            window_days: 31,
            max_entries: 1_000_000,
        }
    }
}

impl ConsoleConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.kafka.validate()?;
        sluice_core::config::check_http_url("gateway.admin_url", &self.gateway.admin_url)?;
        sluice_core::config::check_http_url("clickhouse.url", &self.clickhouse.url)?;
        if !self.tracing.jaeger_url.is_empty() {
            sluice_core::config::check_http_url("tracing.jaeger_url", &self.tracing.jaeger_url)?;
        }
        if !sluice_clickhouse::is_identifier(&self.clickhouse.database) {
            return Err(format!(
                "clickhouse.database `{}` must be an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                self.clickhouse.database
            ));
        }
        if self.clickhouse.max_execution_time_secs == 0 {
            return Err("clickhouse.max_execution_time_secs must be positive".to_owned());
        }
        if self.topics.raw.is_empty() || self.topics.rejected.is_empty() {
            return Err("topics.raw and topics.rejected must be set".to_owned());
        }
        if self.live.max_subscribers == 0 || self.live.buffer == 0 {
            return Err("live.max_subscribers and live.buffer must be positive".to_owned());
        }
        if self.rejections.window_days == 0 || self.rejections.max_entries == 0 {
            return Err(
                "rejections.window_days and rejections.max_entries must be positive".to_owned(),
            );
        }
        if self.gateway.max_body_bytes == 0 || self.gateway.timeout_ms == 0 {
            return Err(
                "gateway.max_body_bytes and gateway.timeout_ms must be positive".to_owned(),
            );
        }
        if let Some(dir) = &self.assets_dir
            && !dir.is_dir()
        {
            return Err(format!("assets_dir `{}` is not a folder", dir.display()));
        }
        Ok(())
    }
}

pub const OPTIONS_HELP: &str = "\
CONFIGURATION (file keys; environment: SLUICE_CONSOLE_<KEY>, `.` becomes `__`)
  listen                            address of the console and its API [127.0.0.1:8090]
  gateway.admin_url                 the gateway's admin listener [http://127.0.0.1:8080]
  gateway.max_body_bytes            largest body forwarded to it (uploads) [41943040]
  gateway.timeout_ms                per forwarded call [60000]
  clickhouse.url                    ClickHouse HTTP interface [http://127.0.0.1:18123]
  clickhouse.database               the loader's and aggregator's database [sluice]
  clickhouse.cluster                their cluster's name, if they write to one: read every shard through
                                    the Distributed tables (<table>_all) from the node at clickhouse.url []
  clickhouse.user                   [default]
  clickhouse.password               []
  clickhouse.max_execution_time_secs  per query, enforced by the server [10]
  clickhouse.max_rows_to_read       per query [200000000]
  clickhouse.max_bytes_to_read      per query [21474836480]
  kafka.brokers                     bootstrap servers [127.0.0.1:19092]
  kafka.extra                       table of extra librdkafka properties
  topics.raw                        accepted events [events.raw]
  topics.rejected                   rejected and dead-lettered events [events.rejected]
  topics.consumer_groups            groups whose lag the health page shows
                                    [[\"sluice-loader\", \"sluice-aggregator\"]]
  auth.cache_ms                     reuse of the gateway's answer about a key [2000]
  tracing.jaeger_url                Jaeger query API; empty: no traces page [http://127.0.0.1:16686]
  live.max_subscribers              open live views at once [64]
  live.buffer                       records held for a slow live view [4096]
  rejections.window_days            dead letters counted, days back [31]
  rejections.max_entries            (team, window, outcome, code) counts kept [1000000]
  assets_dir                        serve the page from this folder (development)

EXAMPLES
  sluice-console --config console.toml
  SLUICE_CONSOLE_GATEWAY__ADMIN_URL=http://127.0.0.1:8081 sluice-console
  sluice-console --print-config";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_key_is_documented() {
        let config = ConsoleConfig::default();
        config.validate().unwrap();
        let missing = sluice_core::config::undocumented_keys(&config, OPTIONS_HELP);
        assert!(missing.is_empty(), "undocumented keys: {missing:?}");
    }

    #[test]
    fn bad_urls_and_databases_are_refused_by_name() {
        let mut config = ConsoleConfig::default();
        config.gateway.admin_url = "localhost:8080".to_owned();
        assert!(config.validate().unwrap_err().contains("gateway.admin_url"));
        let mut config = ConsoleConfig::default();
        config.clickhouse.database = "x; DROP".to_owned();
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("clickhouse.database")
        );
    }
}
