//! Gateway configuration: defaults < `--config` TOML file < `SLUICE_GATEWAY_*`
//! environment variables. Validated before any connection is made.
//!
//! Every section of the gateway's configuration is defined here, named
//! `*Settings` (the whole file is [`GatewayConfig`]); the plugin host's own
//! section is its crate's [`PluginSettings`], re-exported.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use sluice_core::Limits;

use sluice_core::kafka::KafkaSettings;
pub use sluice_plugin_host::PluginSettings;

/// Environment variable prefix; nesting uses `__` (`SLUICE_GATEWAY_KAFKA__BROKERS`).
pub const ENV_PREFIX: &str = "SLUICE_GATEWAY_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address to serve HTTP on.
    pub listen: SocketAddr,
    pub kafka: KafkaSettings,
    pub producer: ProducerSettings,
    pub ingest: IngestSettings,
    pub auth: AuthSettings,
    pub admin: AdminSettings,
    pub admission: AdmissionSettings,
    pub plugins: PluginSettings,
    pub schemas: SchemaRegistrySettings,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            kafka: KafkaSettings::default(),
            producer: ProducerSettings::default(),
            ingest: IngestSettings::default(),
            auth: AuthSettings::default(),
            admin: AdminSettings::default(),
            admission: AdmissionSettings::default(),
            plugins: PluginSettings::default(),
            schemas: SchemaRegistrySettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerSettings {
    /// How long the producer waits to fill a batch. Higher values trade
    /// latency for fewer, larger (better compressed) Kafka requests.
    pub linger_ms: u64,
    /// Upper bound on waiting for Kafka's acknowledgement of an event; past it
    /// the client gets 503 with `Retry-After` instead of a hanging request.
    pub delivery_timeout_ms: u64,
    /// Memory librdkafka may hold for records not yet acknowledged; when full,
    /// new events fail fast as `overloaded` instead of queueing without bound.
    pub queue_max_kbytes: u64,
    /// Topic for accepted events.
    pub topic: String,
    /// Topic for rejected events (dead-letter queue).
    pub rejected_topic: String,
    /// The fewest replicas each partition of the gateway's topics (events,
    /// dead letters, keys, plugins, schemas) must have, checked at start;
    /// 0: as many as the cluster has brokers, up to 3. An acknowledged
    /// event is only as safe as its topic's replication, so a topic created
    /// with fewer is refused rather than used silently.
    pub min_replicas: u32,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        Self {
            linger_ms: 50,
            delivery_timeout_ms: 10_000,
            queue_max_kbytes: 256 * 1024,
            topic: sluice_core::kafka::TOPIC_RAW.to_owned(),
            rejected_topic: sluice_core::kafka::TOPIC_REJECTED.to_owned(),
            min_replicas: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Most events accepted in one batch request.
    pub max_events_per_batch: usize,
    /// Largest accepted request body as sent (compressed), in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted request body after decompression, in bytes.
    pub max_decompressed_bytes: usize,
    /// Most bytes of a compressed body decoded before its key has been
    /// checked, on routes that carry the key inside the body (PostHog,
    /// Segment's `writeKey`); capped by `max_decompressed_bytes`.
    pub max_pre_auth_decoded_bytes: usize,
    /// A client must finish uploading its body within this time.
    pub body_timeout_ms: u64,
    /// Per-event rules (sizes, clock skew).
    pub event: Limits,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_events_per_batch: 1000,
            max_body_bytes: 5 * 1024 * 1024,
            max_decompressed_bytes: 20 * 1024 * 1024,
            max_pre_auth_decoded_bytes: 1024 * 1024,
            body_timeout_ms: 10_000,
            event: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// API key → team id, role `ingest`. For development and tests; production
    /// keys are created through the admin API and stored hashed in Kafka.
    pub keys: BTreeMap<String, String>,
    /// Compacted topic holding API key records, shared by all replicas.
    pub keys_topic: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            keys: BTreeMap::new(),
            keys_topic: "sluice.keys".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Operator token for the admin API (all teams). Empty disables it; team
    /// admin keys still work.
    pub token: String,
    /// A second listener for the operator's routes (`/metrics`, the admin
    /// and schema APIs, health); when set, the public listener serves only
    /// ingest (native and SDK routes) and health. Unset: one listener
    /// serves everything (development). The production setting: see
    /// `docs/operations.md`.
    pub listen: Option<std::net::SocketAddr>,
}

/// The options reference printed by `--help`. A test checks it names every key.
pub const OPTIONS_HELP: &str = "\
CONFIGURATION (file keys; environment: SLUICE_GATEWAY_<KEY>, `.` becomes `__`)
  listen                          address to serve HTTP on [127.0.0.1:8080]
  kafka.brokers                   bootstrap servers, host:port,... [127.0.0.1:19092]
  kafka.extra                     table of extra librdkafka properties (TLS, SASL, ...)
  producer.linger_ms              producer batching delay [50]
  producer.delivery_timeout_ms    longest wait for Kafka's ack before answering 503 [10000]
  producer.queue_max_kbytes       producer memory for unacknowledged records [262144]
  producer.topic                  topic for accepted events [events.raw]
  producer.rejected_topic         dead-letter topic for rejected events [events.rejected]
  producer.min_replicas           fewest replicas every partition of the gateway's topics must have, checked
                                  at start; 0 = the brokers in the cluster, up to 3 [0]
  ingest.max_events_per_batch     events per request [1000]
  ingest.max_body_bytes           request body size as sent [5242880]
  ingest.max_decompressed_bytes   request body size after gzip/zstd decoding [20971520]
  ingest.max_pre_auth_decoded_bytes  bytes of a compressed body decoded before a key carried in the
                                  body (PostHog, Segment writeKey) is checked [1048576]
  ingest.body_timeout_ms          time allowed to upload the body, else 408 [10000]
  ingest.event.max_event_bytes    JSON size of one event [32768]
  ingest.event.max_user_id_bytes  user_id length [256]
  ingest.event.max_event_name_bytes  event name length [200]
  ingest.event.max_future_skew_ms how far a timestamp may be ahead of the gateway [3600000]
  ingest.event.max_past_age_ms    how far a timestamp may be behind the gateway [2592000000]
  ingest.event.max_json_depth     deepest nesting of objects and arrays in properties and context [64]
  auth.keys                       table of API key = team id (development keys)
  auth.keys_topic                 compacted topic of API key records [sluice.keys]
  admin.token                     operator token for /admin/v1 (all teams); empty disables []
  admin.listen                    separate address for /metrics and the admin and schema APIs (the public listener then serves only ingest and health); unset = all on listen []
  admission.events_per_second_per_key  sustained events/s per API key, 0 = unlimited [50000]
  admission.burst_events_per_key  events a key may send at once above the rate [100000]
  admission.max_in_flight_requests  ingest requests processed at once, else 503 [1024]
  admission.memory_budget_bytes   bytes all in-flight bodies may hold, else 503 [536870912]
  admission.max_connections       open HTTP connections; more wait in the listen backlog [4096]
  admission.max_resident_bytes    process memory ceiling (503 at it); 0 = none [0]
  plugins.topic                   compacted topic of plugin records [sluice.plugins]
  plugins.blobs_topic             compacted topic of component bytes [sluice.plugin-blobs]
  plugins.disable_after_failures  consecutive failed calls before a plugin is disabled [5]
  plugins.runtime.cpu_budget_ms   CPU time (not elapsed time) one plugin may spend on one batch [100]
  plugins.runtime.max_memory_bytes  linear memory of one plugin instance [67108864]
  plugins.runtime.max_component_bytes  largest accepted upload [33554432]
  plugins.runtime.max_instances   plugin chains running at once; more batches wait [64]
  plugins.runtime.max_instances_per_team  of those, the most one team's batches hold; its others wait; 0 = half the cores [0]
  plugins.runtime.max_idle_instances  initialised instances kept for reuse, all plugins; 0 = fresh per batch [64]
  plugins.runtime.max_events_per_call  events per plugin call; larger batches are split [128]
  plugins.runtime.max_bytes_per_call  event bytes per plugin call [65536]
  plugins.runtime.max_log_lines_per_call  log lines a plugin may write per batch [100]
  plugins.runtime.max_log_lines_per_minute  log lines one plugin may write per minute on a replica [600]
  plugins.runtime.perf_map        write /tmp/perf-<pid>.map so perf names plugin code [false]
  plugins.runtime.artifact_dir    directory of compiled components kept across restarts; empty = none []
  plugins.runtime.artifact_key    secret signing those files (same on every replica); empty = a key file in the directory []
  schemas.topic                   compacted topic of schema versions and settings [sluice.schemas]

Example: SLUICE_GATEWAY_KAFKA__BROKERS=kafka-1:9092,kafka-2:9092 sluice-gateway --config gateway.toml";

/// Per-key rates and the bounds on in-flight work, memory and connections
/// ([`crate::admission`] enforces them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionSettings {
    /// Sustained events per second allowed per API key.
    pub events_per_second_per_key: u32,
    /// Events a key may send at once above the sustained rate.
    pub burst_events_per_key: u32,
    /// Ingest requests processed at once (including those waiting for Kafka).
    pub max_in_flight_requests: usize,
    /// Bytes all in-flight request bodies may hold together.
    pub memory_budget_bytes: usize,
    /// HTTP connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Resident memory of the whole process; 0 = no limit.
    pub max_resident_bytes: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            events_per_second_per_key: 50_000,
            burst_events_per_key: 100_000,
            max_in_flight_requests: 1024,
            memory_budget_bytes: 512 * 1024 * 1024,
            max_connections: 4096,
            max_resident_bytes: 0,
        }
    }
}

/// Resident memory of a gateway with no traffic, with room for what warms up
/// on first use: code, the async runtime, the Kafka client and its threads,
/// the plugin engine, metrics. Measured: 22-48 MiB idle, 51-56 MiB after a
/// first load (docs/benchmarks.md).
pub const BASE_ALLOWANCE_BYTES: u64 = 64 * 1024 * 1024;

/// Resident memory of one open connection: hyper's read buffer (at most
/// [`crate::connections::READ_BUFFER_BYTES`]) and write buffer (8 KiB), the
/// connection's task and its request's state. Measured: about 26 KiB per idle
/// keep-alive connection.
pub const CONNECTION_ALLOWANCE_BYTES: u64 = 32 * 1024;

impl AdmissionSettings {
    /// The most resident memory the static bounds allow: the base, the body
    /// budget, the producer queue and every allowed connection. Plugin instances
    /// are not in it (their linear memory is reserved, and touched only as used);
    /// the sampled limit covers them.
    pub fn resident_allowance(&self, producer_queue_bytes: u64) -> u64 {
        BASE_ALLOWANCE_BYTES
            .saturating_add(self.memory_budget_bytes as u64)
            .saturating_add(producer_queue_bytes)
            .saturating_add(
                (self.max_connections as u64).saturating_mul(CONNECTION_ALLOWANCE_BYTES),
            )
    }
}

/// Where the schema registry lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaRegistrySettings {
    /// Compacted topic of schema versions and configuration.
    pub topic: String,
}

impl Default for SchemaRegistrySettings {
    fn default() -> Self {
        Self {
            topic: "sluice.schemas".to_owned(),
        }
    }
}

impl GatewayConfig {
    /// Rejects settings that would fail later or behave surprisingly.
    pub fn validate(&self) -> Result<(), String> {
        self.kafka.validate()?;
        if self.producer.delivery_timeout_ms < 1000 {
            return Err("producer.delivery_timeout_ms must be at least 1000".to_owned());
        }
        if self.producer.linger_ms > 1000 {
            return Err("producer.linger_ms must be at most 1000".to_owned());
        }
        if self.ingest.max_events_per_batch == 0 {
            return Err("ingest.max_events_per_batch must be at least 1".to_owned());
        }
        if self.ingest.max_pre_auth_decoded_bytes < 1024 {
            return Err("ingest.max_pre_auth_decoded_bytes must be at least 1024".to_owned());
        }
        if self.ingest.event.max_event_bytes > self.ingest.max_body_bytes {
            return Err(
                "ingest.event.max_event_bytes must not exceed ingest.max_body_bytes".to_owned(),
            );
        }
        // Kafka's default max.message.bytes is 1 MiB; larger events would be
        // accepted here and then fail to produce.
        if self.ingest.event.max_event_bytes > 900 * 1024 {
            return Err("ingest.event.max_event_bytes must be at most 921600 (Kafka's 1 MiB record limit with headroom)".to_owned());
        }
        let admission = &self.admission;
        if admission.events_per_second_per_key > 0
            && (admission.burst_events_per_key as usize) < self.ingest.max_events_per_batch
        {
            return Err("admission.burst_events_per_key must be at least ingest.max_events_per_batch, or a full batch could never pass".to_owned());
        }
        if admission.max_in_flight_requests == 0 {
            return Err("admission.max_in_flight_requests must be at least 1".to_owned());
        }
        if admission.max_connections == 0 {
            return Err("admission.max_connections must be at least 1".to_owned());
        }
        if admission.memory_budget_bytes < 2 * self.ingest.max_decompressed_bytes {
            return Err("admission.memory_budget_bytes must be at least twice ingest.max_decompressed_bytes".to_owned());
        }
        if admission.max_resident_bytes > 0 {
            let queue_bytes = self.producer.queue_max_kbytes.saturating_mul(1024);
            let needed = admission.resident_allowance(queue_bytes);
            if admission.max_resident_bytes < needed {
                return Err(format!(
                    "admission.max_resident_bytes ({}) is below what the other limits allow ({needed}: \
                     {} base + admission.memory_budget_bytes {} + producer.queue_max_kbytes {} KiB + \
                     admission.max_connections {} x {} per connection); raise it or lower those",
                    admission.max_resident_bytes,
                    BASE_ALLOWANCE_BYTES,
                    admission.memory_budget_bytes,
                    self.producer.queue_max_kbytes,
                    admission.max_connections,
                    CONNECTION_ALLOWANCE_BYTES,
                ));
            }
        }
        if self.admin.listen.is_some_and(|admin| admin == self.listen) {
            return Err("admin.listen must differ from listen".to_owned());
        }
        if !self.admin.token.is_empty() && self.admin.token.len() < 16 {
            return Err(
                "admin.token must be at least 16 characters (or empty to disable)".to_owned(),
            );
        }
        for (key, team) in &self.auth.keys {
            if key.len() < 8 {
                return Err(format!(
                    "auth.keys: key for team `{team}` is shorter than 8 characters"
                ));
            }
            if team.is_empty() || team.contains(':') {
                return Err(format!(
                    "auth.keys: team id `{team}` must be non-empty and contain no `:`"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        GatewayConfig::default().validate().unwrap();
    }

    #[test]
    fn help_documents_every_key() {
        let missing =
            sluice_core::config::undocumented_keys(&GatewayConfig::default(), OPTIONS_HELP);
        assert!(missing.is_empty(), "--help does not document {missing:?}");
    }

    #[test]
    fn bad_settings_are_explained() {
        let mut config = GatewayConfig::default();
        config.auth.keys.insert("short".into(), "team".into());
        assert!(config.validate().unwrap_err().contains("shorter than 8"));
        let mut config = GatewayConfig::default();
        config.ingest.event.max_event_bytes = 2 * 1024 * 1024;
        assert!(config.validate().unwrap_err().contains("max_event_bytes"));
    }

    #[test]
    fn a_resident_limit_must_fit_the_other_limits() {
        let mut config = GatewayConfig::default();
        config.admission.memory_budget_bytes = 64 << 20;
        config.ingest.max_decompressed_bytes = 16 << 20;
        config.producer.queue_max_kbytes = 32 << 10;
        config.admission.max_connections = 1024;
        // 64 MiB base + 64 MiB bodies + 32 MiB queue + 1024 x 32 KiB = 192 MiB.
        config.admission.max_resident_bytes = 192 << 20;
        config.validate().unwrap();
        config.admission.max_resident_bytes = (192 << 20) - 1;
        let err = config.validate().unwrap_err();
        assert!(err.contains("admission.max_resident_bytes"), "{err}");
        assert!(err.contains("admission.max_connections 1024"), "{err}");
    }
}
