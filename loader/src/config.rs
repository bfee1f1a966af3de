//! Loader configuration: defaults < `--config` TOML file < `SLUICE_LOADER_*`
//! environment variables (nesting with `__`). Validated before connecting.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sluice_core::dedup::DedupSettings;
use sluice_core::kafka::KafkaSettings;

use crate::lake::s3::{S3Location, S3Store};
use crate::lake::store::ObjectStore;

pub const ENV_PREFIX: &str = "SLUICE_LOADER_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoaderConfig {
    /// Address for `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    pub kafka: KafkaSettings,
    /// Consumer group; every loader instance of one deployment shares it.
    pub group_id: String,
    /// Topic to load.
    pub topic: String,
    /// How long the group waits for a silent instance before giving its
    /// partitions to another (the broker allows 6000 to 1800000).
    pub session_timeout_ms: u64,
    /// Dead-letter topic for records that can never be inserted.
    pub rejected_topic: String,
    pub clickhouse: ClickHouseSettings,
    pub batch: BatchSettings,
    pub lake: LakeSettings,
    pub dedup: DedupSettings,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            kafka: KafkaSettings::default(),
            group_id: "sluice-loader".to_owned(),
            topic: sluice_core::kafka::TOPIC_RAW.to_owned(),
            session_timeout_ms: 10_000,
            rejected_topic: sluice_core::kafka::TOPIC_REJECTED.to_owned(),
            clickhouse: ClickHouseSettings::default(),
            batch: BatchSettings::default(),
            lake: LakeSettings::default(),
            dedup: DedupSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseSettings {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123` (one server; see `shards`).
    pub url: String,
    /// A cluster instead of one server: the HTTP endpoints of each shard's
    /// replicas, shards in the order of the cluster's `remote_servers`.
    /// Kafka partition `p` is stored on shard `p % shards` (see
    /// `docs/architecture.md`, "On a ClickHouse cluster"); `url` is unused.
    pub shards: Vec<Vec<String>>,
    /// The cluster's name in the servers' `remote_servers`, for the schema's
    /// `ON CLUSTER` DDL and the `Distributed` read table (with `shards`).
    pub cluster: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// Table for raw events.
    pub table: String,
    /// Days to keep raw events (TTL on servers that have it); 0 = forever.
    pub retention_days: u32,
    /// Insert compression: `lz4` (the server's native block compression)
    /// or `none` (cheaper for both sides on loopback).
    pub compression: String,
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
            table: "events".to_owned(),
            retention_days: 0,
            compression: "lz4".to_owned(),
        }
    }
}

impl ClickHouseSettings {
    /// The replicas of each shard: `shards`, or `url` as one shard of one.
    pub fn replicas(&self) -> Vec<Vec<String>> {
        sluice_clickhouse::shards::replicas(&self.url, &self.shards)
    }

    fn check_shards(&self) -> Result<(), String> {
        sluice_clickhouse::shards::check_settings("clickhouse", &self.shards, &self.cluster)
    }
}

/// When a partition's batch is inserted: whichever limit is reached first.
/// ClickHouse wants few, large inserts (about one per second per table,
/// 10k–100k rows each); these defaults follow that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSettings {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_wait_ms: u64,
    /// First retry delay after a failed insert; doubles up to `max_backoff_ms`.
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_rows: 50_000,
            max_bytes: 64 * 1024 * 1024,
            max_wait_ms: 1000,
            min_backoff_ms: 200,
            max_backoff_ms: 10_000,
        }
    }
}

/// Where the immutable lake copy goes: `dir` (a local directory) or `url`
/// (`s3://bucket/prefix` on an S3-compatible store at `endpoint`); neither
/// disables the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSettings {
    pub dir: Option<PathBuf>,
    pub url: Option<String>,
    /// `http://host:port` of the S3-compatible server.
    pub endpoint: Option<String>,
    pub region: String,
    /// S3 credentials; unset: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Default for LakeSettings {
    fn default() -> Self {
        Self {
            dir: None,
            url: None,
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

impl LakeSettings {
    /// The configured store, `None` without a lake; `Err` explains a bad setting.
    pub fn store(&self) -> Result<Option<ObjectStore>, String> {
        match (&self.dir, &self.url) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err("set lake.dir or lake.url, not both".to_owned()),
            (Some(dir), None) => Ok(Some(ObjectStore::local(dir.clone()))),
            (None, Some(url)) => {
                let (bucket, prefix) = S3Location::parse_url(url)?;
                let endpoint = self.endpoint.clone().ok_or_else(|| {
                    format!("lake.url `{url}` needs lake.endpoint (http://host:port)")
                })?;
                let from_env = |configured: &Option<String>, var: &str| {
                    configured
                        .clone()
                        .or_else(|| std::env::var(var).ok())
                        .filter(|v| !v.is_empty())
                };
                let (Some(access_key_id), Some(secret_access_key)) = (
                    from_env(&self.access_key_id, "AWS_ACCESS_KEY_ID"),
                    from_env(&self.secret_access_key, "AWS_SECRET_ACCESS_KEY"),
                ) else {
                    return Err("lake.url needs credentials: lake.access_key_id and \
                         lake.secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .to_owned());
                };
                let location = S3Location {
                    bucket,
                    prefix,
                    endpoint,
                    region: self.region.clone(),
                    access_key_id,
                    secret_access_key,
                };
                S3Store::new(location)
                    .map(|s3| Some(ObjectStore::S3(s3)))
                    .map_err(|e| format!("{e:#}"))
            }
        }
    }
}

pub const OPTIONS_HELP: &str = "\
CONFIGURATION (file keys; environment: SLUICE_LOADER_<KEY>, `.` becomes `__`)
  listen                      address for /healthz, /readyz, /metrics [127.0.0.1:8081]
  kafka.brokers               bootstrap servers [127.0.0.1:19092]
  kafka.extra                 table of extra librdkafka properties
  group_id                    consumer group [sluice-loader]
  topic                       topic to load [events.raw]
  session_timeout_ms          time before a silent instance's partitions move [10000]
  rejected_topic              dead-letter topic for records that cannot be inserted [events.rejected]
  clickhouse.url              ClickHouse HTTP endpoint [http://127.0.0.1:18123]
  clickhouse.shards           a cluster instead: each shard's replica endpoints, e.g.
                              [[\"http://a:8123\", \"http://b:8123\"], [\"http://c:8123\", \"http://d:8123\"]];
                              partition p goes to shard p % shards [none: clickhouse.url]
  clickhouse.cluster          the cluster's name in remote_servers (required with shards) []
  clickhouse.database         database (created if missing) [sluice]
  clickhouse.user / clickhouse.password   credentials [default / empty]
  clickhouse.table            raw events table [events]
  clickhouse.retention_days   days to keep raw events, 0 = forever [0]
  clickhouse.compression      insert compression, lz4 or none [lz4]
  batch.max_rows              rows per insert [50000]
  batch.max_bytes             bytes per insert [67108864]
  batch.max_wait_ms           longest a record waits before its batch is inserted [1000]
  batch.min_backoff_ms / batch.max_backoff_ms  retry delays after a failed insert [200 / 10000]
  lake.dir                    directory for the immutable lake copy; unset = no lake
  lake.url                    or an S3-compatible store: s3://bucket/prefix
  lake.endpoint               its server, http://host:port (required with lake.url)
  lake.region                 its region [us-east-1]
  lake.access_key_id / lake.secret_access_key  its credentials [AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY]
  dedup.window_secs           a retry of an event kept less than this long ago is not stored again; 0 = off [86400]";

impl LoaderConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.kafka.validate()?;
        self.dedup.validate()?;
        if self.batch.max_rows == 0 || self.batch.max_rows > 1_000_000 {
            return Err("batch.max_rows must be 1 to 1000000 (one insert block)".to_owned());
        }
        if self.batch.max_wait_ms == 0 {
            return Err("batch.max_wait_ms must be positive".to_owned());
        }
        if self.batch.min_backoff_ms == 0 || self.batch.min_backoff_ms > self.batch.max_backoff_ms {
            return Err(
                "batch.min_backoff_ms must be positive and at most batch.max_backoff_ms".to_owned(),
            );
        }
        sluice_core::config::check_http_url("clickhouse.url", &self.clickhouse.url)?;
        self.clickhouse.check_shards()?;
        let ident =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ident(&self.clickhouse.database) || !ident(&self.clickhouse.table) {
            return Err(
                "clickhouse.database and clickhouse.table must be identifiers (A-Z, a-z, 0-9, _)"
                    .to_owned(),
            );
        }
        if !matches!(self.clickhouse.compression.as_str(), "lz4" | "none") {
            return Err(format!(
                "clickhouse.compression must be lz4 or none, not `{}`",
                self.clickhouse.compression
            ));
        }
        self.lake.store()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        LoaderConfig::default().validate().unwrap();
        let missing =
            sluice_core::config::undocumented_keys(&LoaderConfig::default(), OPTIONS_HELP);
        assert!(missing.is_empty(), "--help does not document {missing:?}");
    }

    #[test]
    fn bad_settings_are_explained() {
        let mut config = LoaderConfig::default();
        config.clickhouse.table = "events; DROP".into();
        assert!(config.validate().unwrap_err().contains("identifiers"));
    }

    #[test]
    fn shards_need_a_cluster_name_and_urls() {
        let mut config = LoaderConfig::default();
        config.clickhouse.shards = vec![vec!["http://a:8123".into()], vec![]];
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("clickhouse.cluster")
        );
        config.clickhouse.cluster = "sluice".into();
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("shards[1] lists no replica")
        );
        config.clickhouse.shards[1] = vec!["ftp://c".into()];
        assert!(config.validate().unwrap_err().contains("shards[1]"));
        config.clickhouse.shards[1] = vec!["http://c:8123".into(), "http://d:8123".into()];
        config.validate().unwrap();
        assert_eq!(config.clickhouse.replicas().len(), 2);
        let single = ClickHouseSettings::default();
        assert_eq!(single.replicas(), vec![vec![single.url.clone()]]);
    }

    #[test]
    fn lake_settings_are_checked() {
        let mut lake = LakeSettings {
            url: Some("s3://lake/sluice".into()),
            ..LakeSettings::default()
        };
        assert!(lake.store().unwrap_err().contains("lake.endpoint"));
        lake.endpoint = Some("https://s3.example.com".into());
        lake.access_key_id = Some("k".into());
        lake.secret_access_key = Some("s".into());
        assert!(lake.store().unwrap_err().contains("only http://"));
        lake.endpoint = Some("http://127.0.0.1:19400".into());
        assert!(matches!(lake.store(), Ok(Some(ObjectStore::S3(_)))));
        lake.dir = Some("/tmp/lake".into());
        assert!(lake.store().unwrap_err().contains("not both"));
    }
}
