//! Where events go once the gateway has decided their fate.
//!
//! [`EventProducer::send`] takes a whole batch, enqueues every record in order (so
//! a user's events keep their order within a partition) and then awaits all
//! acknowledgements together: awaiting one by one would serialise on the
//! linger delay. Each record gets its own result, so the HTTP answer can be
//! exact per event.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sluice_core::kafka::KafkaSettings;
use tokio::sync::Mutex;

use crate::config::ProducerSettings;
use crate::readiness::Readiness;

pub use sluice_core::kafka::Record;

/// Why a record was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProduceError {
    /// The broker did not acknowledge in time or is unreachable; retry later.
    #[error("Kafka unavailable: {0}")]
    Unavailable(String),
    /// The producer's local queue is full: the gateway is overloaded.
    #[error("producer queue full")]
    QueueFull,
    /// The broker refuses the record as too large; retrying cannot help.
    #[error("record too large for Kafka")]
    TooLarge,
}

impl ProduceError {
    fn classify(err: &KafkaError) -> Self {
        match err.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => Self::QueueFull,
            Some(RDKafkaErrorCode::MessageSizeTooLarge)
            | Some(RDKafkaErrorCode::InvalidMessageSize) => Self::TooLarge,
            _ => Self::Unavailable(err.to_string()),
        }
    }
}

pub trait EventProducer: Send + Sync + std::fmt::Debug {
    /// Produces `records` in order; resolves once every record is acknowledged
    /// or has failed. The result vector matches `records` index by index.
    fn send(&self, records: Vec<Record>) -> BoxFuture<'_, Vec<Result<(), ProduceError>>>;

    /// Can the producer reach its backend right now? Used by `/readyz`.
    fn probe(&self) -> BoxFuture<'_, bool>;

    /// Records handed over and not yet acknowledged.
    fn queue_depth(&self) -> usize {
        0
    }
}

/// The production producer: an idempotent, acks=all, zstd producer.
pub struct KafkaProducer {
    producer: FutureProducer,
    delivery_timeout: Duration,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer").finish_non_exhaustive()
    }
}

impl KafkaProducer {
    pub fn new(kafka: &KafkaSettings, settings: &ProducerSettings) -> anyhow::Result<Self> {
        let mut config =
            kafka.durable_producer_config(settings.linger_ms, settings.delivery_timeout_ms);
        config.set(
            "queue.buffering.max.kbytes",
            settings.queue_max_kbytes.to_string(),
        );
        Ok(Self {
            producer: config.create()?,
            delivery_timeout: Duration::from_millis(settings.delivery_timeout_ms),
        })
    }

    /// Blocks until queued records are delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> anyhow::Result<()> {
        self.producer.flush(timeout)?;
        Ok(())
    }
}

impl EventProducer for KafkaProducer {
    fn send(&self, records: Vec<Record>) -> BoxFuture<'_, Vec<Result<(), ProduceError>>> {
        Box::pin(async move {
            let mut pending = Vec::with_capacity(records.len());
            for record in &records {
                let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
                for (name, value) in &record.headers {
                    headers = headers.insert(Header {
                        key: name,
                        value: Some(value.as_bytes()),
                    });
                }
                let future_record = FutureRecord::to(&record.topic)
                    .key(record.key.as_bytes())
                    .payload(record.payload.as_slice())
                    .headers(headers);
                match self.producer.send_result(future_record) {
                    Ok(delivery) => pending.push(Ok(delivery)),
                    Err((err, _)) => pending.push(Err(ProduceError::classify(&err))),
                }
            }
            // librdkafka enforces message.timeout.ms; this one deadline for the
            // whole batch only guards against a lost callback, so a request
            // can never hang. Acks arrive together, so awaiting them in order
            // costs nothing, and one timer per batch (not per record) keeps
            // the hot path cheap.
            let guard = self.delivery_timeout + Duration::from_secs(5);
            let mut results: Vec<Option<Result<(), ProduceError>>> =
                Vec::with_capacity(pending.len());
            let mut deliveries = Vec::with_capacity(pending.len());
            for (i, p) in pending.into_iter().enumerate() {
                match p {
                    Ok(delivery) => {
                        results.push(None);
                        deliveries.push((i, delivery));
                    }
                    Err(err) => results.push(Some(Err(err))),
                }
            }
            let mut partitions: Vec<i32> = Vec::new();
            let collect = async {
                for (i, delivery) in deliveries {
                    results[i] = Some(match delivery.await {
                        Ok(Ok(Delivery { partition, .. })) => {
                            if !partitions.contains(&partition) {
                                partitions.push(partition);
                            }
                            Ok(())
                        }
                        Ok(Err((err, _))) => Err(ProduceError::classify(&err)),
                        Err(_canceled) => {
                            Err(ProduceError::Unavailable("producer shut down".to_owned()))
                        }
                    });
                }
            };
            let _ = tokio::time::timeout(guard, collect).await;
            let results: Vec<Result<(), ProduceError>> = results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        Err(ProduceError::Unavailable("delivery timed out".to_owned()))
                    })
                })
                .collect();
            // The caller's `produce` span, when tracing is on.
            let span = tracing::Span::current();
            if !span.is_disabled() {
                partitions.sort_unstable();
                let partitions: Vec<String> = partitions.iter().map(i32::to_string).collect();
                span.record("partitions", partitions.join(","));
                span.record(
                    "failed",
                    results.iter().filter(|r| r.is_err()).count() as i64,
                );
            }
            results
        })
    }

    fn queue_depth(&self) -> usize {
        usize::try_from(self.producer.in_flight_count()).unwrap_or(0)
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            // A clone shares the same librdkafka handle.
            let producer = self.producer.clone();
            // Metadata fetches block; keep them off the async workers.
            tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(None, Duration::from_secs(2))
                    .map(|md| !md.brokers().is_empty())
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false)
        })
    }
}

/// Why a topic cannot be used as it is.
#[derive(Debug, PartialEq, Eq)]
pub struct UnderReplicated {
    pub topic: String,
    pub replicas: usize,
    pub required: usize,
    pub brokers: usize,
}

impl std::fmt::Display for UnderReplicated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "topic `{}` has partitions with {} replica(s), fewer than the {} required (producer.min_replicas; \
             0 requires as many as the cluster's {} broker(s), up to 3): recreate it with more replicas, \
             or set producer.min_replicas to {} to accept it",
            self.topic, self.replicas, self.required, self.brokers, self.replicas
        )
    }
}

/// The replicas `topics` must have given `min_replicas` (0: the brokers, up
/// to 3), checked against what Kafka reports: `(topic, fewest replicas of
/// its partitions)` for each topic that exists. Topics that do not exist are
/// not judged here (producing to them fails on its own).
pub fn check_replication(
    found: &[(String, usize)],
    brokers: usize,
    min_replicas: u32,
) -> Result<(), UnderReplicated> {
    let required = match min_replicas {
        0 => brokers.clamp(1, 3),
        n => n as usize,
    };
    match found.iter().find(|(_, replicas)| *replicas < required) {
        Some((topic, replicas)) => Err(UnderReplicated {
            topic: topic.clone(),
            replicas: *replicas,
            required,
            brokers,
        }),
        None => Ok(()),
    }
}

/// Asks Kafka how many brokers it has and how many replicas each of
/// `topics` has (the fewest over its partitions). Blocking. `None` when Kafka
/// does not answer within `timeout`: the check is then left to a later start
/// (the gateway does not wait for Kafka to start).
pub fn replication(
    kafka: &KafkaSettings,
    topics: &[&str],
    timeout: Duration,
) -> Option<(usize, Vec<(String, usize)>)> {
    use rdkafka::consumer::Consumer as _;
    let consumer: rdkafka::consumer::BaseConsumer = kafka.client_config().create().ok()?;
    let metadata = consumer.fetch_metadata(None, timeout).ok()?;
    let found = metadata
        .topics()
        .iter()
        .filter(|t| topics.contains(&t.name()) && !t.partitions().is_empty())
        .map(|t| {
            let fewest = t.partitions().iter().map(|p| p.replicas().len()).min();
            (t.name().to_owned(), fewest.unwrap_or(0))
        })
        .collect();
    Some((metadata.brokers().len(), found))
}

/// An in-memory producer for unit tests of the HTTP layer. It can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryProducer {
    records: Mutex<Vec<Record>>,
    fail_with: std::sync::Mutex<Option<ProduceError>>,
    /// Fail only the records of this topic (with `fail_with`'s error).
    fail_topic: std::sync::Mutex<Option<String>>,
}

impl MemoryProducer {
    pub async fn records(&self) -> Vec<Record> {
        self.records.lock().await.clone()
    }

    /// The records kept since the last call, which forgets them: for tests
    /// that send many requests and look at each one's records alone.
    pub async fn take_records(&self) -> Vec<Record> {
        std::mem::take(&mut *self.records.lock().await)
    }

    pub fn fail_with(&self, error: Option<ProduceError>) {
        if let Ok(mut guard) = self.fail_with.lock() {
            *guard = error;
        }
    }

    /// Fails the records of `topic` only, with `error`; the others are kept.
    pub fn fail_topic(&self, topic: &str, error: ProduceError) {
        if let Ok(mut guard) = self.fail_topic.lock() {
            *guard = Some(topic.to_owned());
        }
        self.fail_with(Some(error));
    }

    fn failure(&self) -> Option<ProduceError> {
        self.fail_with.lock().ok().and_then(|g| g.clone())
    }

    fn failed_topic(&self) -> Option<String> {
        self.fail_topic.lock().ok().and_then(|g| g.clone())
    }
}

impl EventProducer for MemoryProducer {
    fn send(&self, records: Vec<Record>) -> BoxFuture<'_, Vec<Result<(), ProduceError>>> {
        Box::pin(async move {
            let Some(err) = self.failure() else {
                let results = records.iter().map(|_| Ok(())).collect();
                self.records.lock().await.extend(records);
                return results;
            };
            let Some(topic) = self.failed_topic() else {
                return records.iter().map(|_| Err(err.clone())).collect();
            };
            let mut results = Vec::with_capacity(records.len());
            let mut kept = self.records.lock().await;
            for record in records {
                if record.topic == topic {
                    results.push(Err(err.clone()));
                } else {
                    results.push(Ok(()));
                    kept.push(record);
                }
            }
            results
        })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.failure().is_none() || self.failed_topic().is_some() })
    }
}

/// Probes the producer every `period` and publishes the result for `/readyz`.
pub async fn watch_readiness(
    producer: Arc<dyn EventProducer>,
    readiness: Readiness,
    period: Duration,
) {
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        let reachable = producer.probe().await;
        if reachable != readiness.backend_reachable() {
            tracing::info!(reachable, "Kafka reachability changed");
        }
        readiness.set_backend_reachable(reachable);
    }
}

#[cfg(test)]
mod replication_tests {
    use super::*;

    #[test]
    fn topics_with_fewer_replicas_than_required_are_refused_naming_the_setting() {
        let found = vec![("events.raw".to_owned(), 3), ("sluice.keys".to_owned(), 1)];
        // Three brokers: 3 required by default.
        let err = check_replication(&found, 3, 0).unwrap_err();
        assert_eq!(
            (err.topic.as_str(), err.replicas, err.required),
            ("sluice.keys", 1, 3)
        );
        assert!(err.to_string().contains("producer.min_replicas"), "{err}");
        // One broker: one replica is all there can be.
        assert!(check_replication(&found, 1, 0).is_ok());
        // Five brokers: still 3 by default; an explicit setting wins.
        assert!(check_replication(&[("t".to_owned(), 3)], 5, 0).is_ok());
        assert!(check_replication(&found, 3, 1).is_ok());
        assert!(check_replication(&found, 1, 2).is_err());
    }
}
