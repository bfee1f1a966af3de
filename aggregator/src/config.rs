//! Aggregator configuration: defaults < `--config` TOML file <
//! `SLUICE_AGGREGATOR_*` environment variables (nesting with `__`).
//! Validated before connecting.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use sluice_core::dedup::DedupSettings;
use sluice_core::kafka::KafkaSettings;

pub const ENV_PREFIX: &str = "SLUICE_AGGREGATOR_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// Address for `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    pub kafka: KafkaSettings,
    /// Consumer group: its own, so it reads `events.raw` independently of
    /// the loader.
    pub group_id: String,
    pub topic: String,
    pub session_timeout_ms: u64,
    pub clickhouse: ClickHouseSettings,
    pub window: WindowSettings,
    pub flush: FlushSettings,
    /// The loader's window: both must decide the same records are retries.
    pub dedup: DedupSettings,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8082)),
            kafka: KafkaSettings::default(),
            group_id: "sluice-aggregator".to_owned(),
            topic: sluice_core::kafka::TOPIC_RAW.to_owned(),
            session_timeout_ms: 10_000,
            clickhouse: ClickHouseSettings::default(),
            window: WindowSettings::default(),
            flush: FlushSettings::default(),
            dedup: DedupSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseSettings {
    pub url: String,
    /// A cluster instead of one server: each shard's replica endpoints, as
    /// the loader's `clickhouse.shards` (the same list: a partition's rollups
    /// go to the shard that holds its raw events).
    pub shards: Vec<Vec<String>>,
    /// The cluster's name in `remote_servers` (with `shards`).
    pub cluster: String,
    /// Database (created if missing); the loader's, so dashboards find raw
    /// events and rollups side by side.
    pub database: String,
    pub user: String,
    pub password: String,
    /// Days to keep 5-minute rollups (TTL where the server has it); 0 = forever.
    pub retention_days: u32,
}

impl ClickHouseSettings {
    /// The replicas of each shard: `shards`, or `url` as one shard of one.
    pub fn replicas(&self) -> Vec<Vec<String>> {
        sluice_clickhouse::shards::replicas(&self.url, &self.shards)
    }
}

impl Default for ClickHouseSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:18123".to_owned(),
            shards: Vec::new(),
            cluster: String::new(),
            database: "sluice".to_owned(),
            user: "default".to_owned(),
            password: String::new(),
            retention_days: 0,
        }
    }
}

/// Event-time windows (5 minutes, tumbling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSettings {
    /// How long after its end a window still takes events before it is
    /// written; later events become correction rows.
    pub allowed_lateness_ms: u64,
    /// A partition that received nothing for this long moves its watermark
    /// by the wall clock (to now minus this), so its windows still close.
    pub idle_timeout_ms: u64,
    /// Most keys held in open windows per partition; beyond it the oldest
    /// window is written early (memory stays bounded).
    pub max_open_keys: usize,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self {
            allowed_lateness_ms: 60_000,
            idle_timeout_ms: 5_000,
            max_open_keys: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushSettings {
    /// How often closed windows are written and offsets committed.
    pub interval_ms: u64,
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for FlushSettings {
    fn default() -> Self {
        Self {
            interval_ms: 1_000,
            min_backoff_ms: 200,
            max_backoff_ms: 10_000,
        }
    }
}

pub const OPTIONS_HELP: &str = "\
CONFIGURATION (file keys; environment: SLUICE_AGGREGATOR_<KEY>, `.` becomes `__`)
  listen                        address for /healthz, /readyz, /metrics [127.0.0.1:8082]
  kafka.brokers                 bootstrap servers [127.0.0.1:19092]
  kafka.extra                   table of extra librdkafka properties
  group_id                      consumer group [sluice-aggregator]
  topic                         topic to aggregate [events.raw]
  session_timeout_ms            time before a silent instance's partitions move [10000]
  clickhouse.url                ClickHouse HTTP endpoint [http://127.0.0.1:18123]
  clickhouse.shards             a cluster instead: each shard's replica endpoints, the loader's list [none]
  clickhouse.cluster            the cluster's name in remote_servers (required with shards) []
  clickhouse.database           database (created if missing) [sluice]
  clickhouse.user / clickhouse.password   credentials [default / empty]
  clickhouse.retention_days     days to keep 5-minute rollups (TTL, and expired day partitions dropped hourly), 0 = forever [0]
  window.allowed_lateness_ms    how long a window waits for late events after its end [60000]
  window.idle_timeout_ms        silence after which a partition's watermark follows the clock [5000]
  window.max_open_keys          keys held in open windows per partition before the oldest window is written early [1000000]
  flush.interval_ms             how often closed windows are written and offsets committed [1000]
  flush.min_backoff_ms / flush.max_backoff_ms   retry delays after a failed insert [200 / 10000]
  dedup.window_secs             a retry of an event kept less than this long ago is not counted again; the loader's value; 0 = off [86400]";

impl AggregatorConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.kafka.validate()?;
        self.dedup.validate()?;
        sluice_core::config::check_http_url("clickhouse.url", &self.clickhouse.url)?;
        sluice_clickhouse::shards::check_settings(
            "clickhouse",
            &self.clickhouse.shards,
            &self.clickhouse.cluster,
        )?;
        if !sluice_clickhouse::is_identifier(&self.clickhouse.database) {
            return Err(format!(
                "clickhouse.database `{}` must be an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                self.clickhouse.database
            ));
        }
        if self.window.idle_timeout_ms == 0 {
            return Err("window.idle_timeout_ms must be positive".to_owned());
        }
        if self.window.allowed_lateness_ms > 7 * 86_400_000 {
            return Err("window.allowed_lateness_ms must be at most 7 days".to_owned());
        }
        if self.window.max_open_keys == 0 {
            return Err("window.max_open_keys must be positive".to_owned());
        }
        if self.flush.interval_ms == 0 {
            return Err("flush.interval_ms must be positive".to_owned());
        }
        if self.flush.min_backoff_ms == 0 || self.flush.min_backoff_ms > self.flush.max_backoff_ms {
            return Err(
                "flush.min_backoff_ms must be positive and at most flush.max_backoff_ms".to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        AggregatorConfig::default().validate().unwrap();
        let missing =
            sluice_core::config::undocumented_keys(&AggregatorConfig::default(), OPTIONS_HELP);
        assert!(missing.is_empty(), "--help does not document {missing:?}");
    }

    #[test]
    fn bad_settings_are_explained() {
        let mut config = AggregatorConfig::default();
        config.clickhouse.database = "x; DROP".into();
        assert!(config.validate().unwrap_err().contains("identifier"));
        let mut config = AggregatorConfig::default();
        config.flush.interval_ms = 0;
        assert!(config.validate().unwrap_err().contains("flush.interval_ms"));
    }
}
