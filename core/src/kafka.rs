//! Kafka names and client settings every Sluice process shares.

use std::collections::BTreeMap;

#[cfg(feature = "runtime")]
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Accepted events, keyed `team:user`, value = [`crate::Event`] JSON.
pub const TOPIC_RAW: &str = "events.raw";
/// Rejected events with the reason in headers (dead-letter topic).
pub const TOPIC_REJECTED: &str = "events.rejected";

/// Record headers. Consumers route on these without parsing the value.
pub mod headers {
    /// W3C trace context of the request that produced the record.
    pub const TRACEPARENT: &str = "traceparent";
    pub const TEAM: &str = "sluice-team";
    pub const SCHEMA_VERSION: &str = "sluice-schema-version";
    /// On `events.rejected`: the [`crate::RejectCode`] string.
    pub const REJECT_CODE: &str = "sluice-reject-code";
    /// On `events.rejected`: the human-readable reason.
    pub const REJECT_MESSAGE: &str = "sluice-reject-message";
    /// On `events.rejected`: `rejected` (the event broke a rule; resending
    /// it cannot help) or `dead_lettered` (kept for replay once its cause is
    /// fixed). The console's live view and counts tell them apart by it.
    pub const OUTCOME: &str = "sluice-outcome";
    /// On `events.rejected`: the id the client was answered with, when the
    /// event had one (what it sent, or what the gateway gave it); the
    /// payload is the text the client sent, which may not contain it.
    pub const EVENT_ID: &str = "sluice-event-id";
}

#[cfg(feature = "runtime")]
/// The value of header `name` of a consumed record, if it has one.
pub fn header<'m, M: rdkafka::Message>(message: &'m M, name: &str) -> Option<&'m [u8]> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|header| header.key == name)?
        .value
}

#[cfg(feature = "runtime")]
/// Header `name` of a consumed record as text, if it has one in UTF-8.
pub fn header_text<'m, M: rdkafka::Message>(message: &'m M, name: &str) -> Option<&'m str> {
    header(message, name).and_then(|value| std::str::from_utf8(value).ok())
}

#[cfg(feature = "runtime")]
/// The `traceparent` header of a consumed record, if it has one.
pub fn traceparent_header<M: rdkafka::Message>(message: &M) -> Option<&[u8]> {
    header(message, headers::TRACEPARENT)
}

/// One record to produce: the gateway's unit of work for its producer, and
/// what the plugin benchmark builds to measure the same work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

#[cfg(feature = "runtime")]
/// Whether Kafka says "try again" with this error: leadership moving, a
/// topic created a moment ago whose metadata has not reached every broker,
/// a broker restarting or a request that timed out. Metadata and offset
/// calls retry these ([`retry_retriable`]); anything else is reported.
pub fn is_retriable(err: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        err.rdkafka_error_code(),
        Some(
            Code::NotLeaderForPartition
                | Code::LeaderNotAvailable
                | Code::UnknownTopicOrPartition
                | Code::UnknownPartition
                | Code::RequestTimedOut
                | Code::OperationTimedOut
                | Code::BrokerNotAvailable
                | Code::NetworkException
                | Code::NotCoordinator
                | Code::CoordinatorLoadInProgress
                | Code::CoordinatorNotAvailable
                | Code::AllBrokersDown
                | Code::BrokerTransportFailure
        )
    )
}

#[cfg(feature = "runtime")]
/// Runs `call` until it succeeds, fails with an error that is not
/// [`is_retriable`], or `deadline` passes (then the last error is returned),
/// waiting a little longer between attempts (50 ms doubling to 1 s).
pub fn retry_retriable<T>(
    deadline: std::time::Duration,
    mut call: impl FnMut() -> rdkafka::error::KafkaResult<T>,
) -> rdkafka::error::KafkaResult<T> {
    let started = std::time::Instant::now();
    let mut backoff = crate::backoff::Backoff::from_millis(50, 1_000);
    loop {
        match call() {
            Err(err) if is_retriable(&err) && started.elapsed() < deadline => {
                std::thread::sleep(backoff.next_delay());
            }
            result => return result,
        }
    }
}

/// `team:user`. A user's events share a partition, so they stay in order.
pub fn partition_key(team: &str, user: &str) -> String {
    let mut key = String::with_capacity(team.len() + 1 + user.len());
    key.push_str(team);
    key.push(':');
    key.push_str(user);
    key
}

/// Connection settings common to producers and consumers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma separated (`host:port,host:port`).
    pub brokers: String,
    /// Extra librdkafka properties (e.g. `security.protocol`), applied last.
    pub extra: BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:19092".to_owned(),
            extra: BTreeMap::new(),
        }
    }
}

#[cfg(feature = "runtime")]
impl KafkaSettings {
    /// A client config with the brokers and extras set.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    /// Producer settings for events that were promised to a client: acks from
    /// all in-sync replicas, idempotence (no duplicates or reordering on
    /// internal retries), zstd, and a bounded delivery timeout so a dead broker
    /// turns into an error instead of a hang.
    pub fn durable_producer_config(
        &self,
        linger_ms: u64,
        delivery_timeout_ms: u64,
    ) -> ClientConfig {
        let mut config = self.client_config();
        config
            // Java clients hash keys with murmur2; matching them keeps a user
            // on the same partition whichever client produced the event.
            .set("partitioner", "murmur2_random")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", "zstd")
            .set("linger.ms", linger_ms.to_string())
            .set("message.timeout.ms", delivery_timeout_ms.to_string());
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }
}

impl KafkaSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.brokers.trim().is_empty() {
            return Err("kafka.brokers must list at least one host:port".to_owned());
        }
        for broker in self.brokers.split(',') {
            let broker = broker.trim();
            let port = broker.rsplit_once(':').map(|(_, port)| port);
            if port.and_then(|p| p.parse::<u16>().ok()).is_none() {
                return Err(format!("kafka.brokers entry `{broker}` must be host:port"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "runtime")]
    #[test]
    fn try_again_answers_are_retried_until_they_pass_or_the_deadline() {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
        let mut calls = 0;
        let result = retry_retriable(std::time::Duration::from_secs(5), || {
            calls += 1;
            if calls < 3 {
                Err(KafkaError::MetadataFetch(Code::NotLeaderForPartition))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.unwrap(), 3);

        let mut calls = 0;
        let result: rdkafka::error::KafkaResult<()> =
            retry_retriable(std::time::Duration::from_secs(5), || {
                calls += 1;
                Err(KafkaError::MetadataFetch(Code::TopicAuthorizationFailed))
            });
        assert!(result.is_err());
        assert_eq!(
            calls, 1,
            "an error that is not 'try again' is reported at once"
        );

        let mut calls = 0;
        let result: rdkafka::error::KafkaResult<()> =
            retry_retriable(std::time::Duration::ZERO, || {
                calls += 1;
                Err(KafkaError::MetadataFetch(Code::LeaderNotAvailable))
            });
        assert!(result.is_err());
        assert_eq!(calls, 1, "past the deadline the last error is returned");
    }

    #[test]
    fn key_is_team_colon_user() {
        assert_eq!(partition_key("acme", "u:1"), "acme:u:1");
    }

    #[cfg(feature = "runtime")]
    #[test]
    fn producer_config_is_durable_and_extras_win() {
        let mut settings = KafkaSettings::default();
        settings.extra.insert("linger.ms".into(), "5".into());
        let config = settings.durable_producer_config(50, 10_000);
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("compression.type"), Some("zstd"));
        assert_eq!(config.get("linger.ms"), Some("5"));
    }

    #[test]
    fn brokers_are_validated() {
        let bad = KafkaSettings {
            brokers: "localhost".into(),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("host:port"));
        assert!(KafkaSettings::default().validate().is_ok());
    }
}
