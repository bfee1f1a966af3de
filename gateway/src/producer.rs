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
