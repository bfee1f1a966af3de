//! The baseline: this machine's raw rdkafka producer sending the same records
//! the gateway would, with the gateway's producer settings, in-process.
//!
//! It is what the gateway could at best achieve on this machine and broker:
//! same `durable_producer_config` (acks=all, idempotence, zstd, linger), same
//! queue bound, same keys, headers and record values (pre-serialised), and
//! the same pattern as the gateway's producer — a "batch" enqueues all its
//! records, then awaits all acknowledgements together — with as many
//! batches in flight as the gateway run has HTTP clients. What it lacks is
//! exactly the gateway's work: HTTP, JSON decoding, validation, encoding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sluice_core::kafka::{KafkaSettings, headers};

use crate::load::{self, Answer, Counts, Schedule, Tally};
use crate::workload::{RecordPayload, TEAM, Workload};

/// The producer settings both sides use (the script passes the same values
/// to the gateway).
#[derive(Debug, Clone)]
pub struct ProducerSetup {
    pub brokers: String,
    pub topic: String,
    pub linger_ms: u64,
    pub delivery_timeout_ms: u64,
    pub queue_max_kbytes: u64,
}

impl ProducerSetup {
    /// The gateway's `KafkaProducer::new` configuration, rebuilt from the same
    /// shared `sluice_core` function.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        let settings = KafkaSettings {
            brokers: self.brokers.clone(),
            ..KafkaSettings::default()
        };
        let mut config = settings.durable_producer_config(self.linger_ms, self.delivery_timeout_ms);
        config.set(
            "queue.buffering.max.kbytes",
            self.queue_max_kbytes.to_string(),
        );
        config.create().context("creating the baseline producer")
    }
}

/// Enqueues `records` in order, then awaits every acknowledgement.
async fn send_batch(
    producer: &FutureProducer,
    topic: &str,
    records: impl Iterator<Item = &RecordPayload>,
) -> Counts {
    let mut counts = Counts::default();
    let mut pending = Vec::new();
    for record in records {
        // Headers built per record, as the gateway's producer does.
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header {
                key: headers::TEAM,
                value: Some(TEAM.as_bytes()),
            })
            .insert(Header {
                key: headers::SCHEMA_VERSION,
                value: Some(record.schema_version.as_bytes()),
            });
        let future_record = FutureRecord::to(topic)
            .key(record.key.as_bytes())
            .payload(record.value.as_slice())
            .headers(headers);
        match producer.send_result(future_record) {
            Ok(delivery) => pending.push(delivery),
            Err(_) => counts.failed += 1,
        }
    }
    for result in join_all(pending).await {
        match result {
            Ok(Ok(_)) => counts.accepted += 1,
            _ => counts.failed += 1,
        }
    }
    counts
}

/// A producer with its connection, metadata and idempotent producer id set
/// up, so that none of that lands inside the timed window.
async fn warm_producer(
    setup: &ProducerSetup,
    workload: &Workload,
) -> anyhow::Result<FutureProducer> {
    let producer = setup.producer()?;
    let warm = send_batch(&producer, &setup.topic, workload.records.iter().take(10)).await;
    anyhow::ensure!(
        warm.failed == 0,
        "baseline producer could not write to `{}` at {}",
        setup.topic,
        setup.brokers
    );
    Ok(producer)
}

/// Nothing should be left (every batch awaited its acks); flush anyway so
/// the next scenario starts from an empty queue.
async fn finish(setup: &ProducerSetup, producer: FutureProducer) -> anyhow::Result<()> {
    let flush = Duration::from_millis(setup.delivery_timeout_ms);
    tokio::task::spawn_blocking(move || producer.flush(flush))
        .await
        .context("joining the flush")?
        .context("flushing the baseline producer")
}

/// Batches of `batch` records sent on an open-loop `schedule`: the raw
/// producer's latency at the rate the gateway is measured at.
pub async fn open_loop(
    setup: &ProducerSetup,
    workload: &Arc<Workload>,
    batch: usize,
    schedule: Schedule,
) -> anyhow::Result<Tally> {
    let producer = warm_producer(setup, workload).await?;
    let tally = {
        let (producer, workload, topic) = (producer.clone(), workload.clone(), setup.topic.clone());
        load::open_loop_with(schedule, None, move |i| {
            let (producer, workload, topic) = (producer.clone(), workload.clone(), topic.clone());
            async move {
                let n = workload.records.len();
                let first = (i as usize).wrapping_mul(batch) % n;
                let records = (0..batch).map(|j| &workload.records[(first + j) % n]);
                let counts = send_batch(&producer, &topic, records).await;
                let status = if counts.failed == 0 { 200 } else { 503 };
                Answer::Http { status, counts }
            }
        })
        .await
    };
    finish(setup, producer).await?;
    Ok(tally)
}

/// Runs `concurrency` batch loops of `batch` records for `duration`.
pub async fn run(
    setup: &ProducerSetup,
    workload: &Arc<Workload>,
    batch: usize,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Tally> {
    let producer = warm_producer(setup, workload).await?;
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|worker| {
            let producer = producer.clone();
            let workload = workload.clone();
            let topic = setup.topic.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let n = workload.records.len();
                let mut next = worker * batch;
                while Instant::now() < deadline {
                    let first = next % n;
                    next += concurrency * batch;
                    let sent = Instant::now();
                    let records = (0..batch).map(|j| &workload.records[(first + j) % n]);
                    let counts = send_batch(&producer, &topic, records).await;
                    let took = sent.elapsed();
                    let status = if counts.failed == 0 { 200 } else { 503 };
                    tally.record(Answer::Http { status, counts }, took, took);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        if let Ok(tally) = worker.await {
            total.merge(&tally);
        }
    }
    total.elapsed = start.elapsed();
    finish(setup, producer).await?;
    Ok(total)
}
