//! Reading back what a topic received since a point in time, by offsets.
//!
//! Used by `sluice send-sample` to prove events reached Kafka, by `sluice
//! dlq` and the console to read the dead-letter topic ([`scan`]), and by the
//! integration tests to compare exactly what was acknowledged with what is in the topic.
//! It assigns partitions directly (no consumer group, no commits), so it
//! never disturbs the loader's or aggregator's offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::Timestamp;
use crate::kafka::{KafkaSettings, retry_retriable};

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    /// The record's Kafka timestamp (the producer's create time unless the
    /// topic says log-append time), if it has one.
    pub timestamp: Option<Timestamp>,
}

/// The end offset of every partition of `topic`: where new records will land.
pub fn end_offsets(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    Ok(watermarks(kafka, topic)?
        .into_iter()
        .map(|(partition, (_, end))| (partition, end))
        .collect())
}

/// The first and the end offset of every partition of `topic`: what it holds.
///
/// Kafka's "try again" answers (a topic created a moment ago, leadership
/// moving) are retried for up to [`RETRY_DEADLINE`]; a topic that still has
/// no partitions then is reported as missing.
pub fn watermarks(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
    let consumer = consumer(kafka)?;
    let started = std::time::Instant::now();
    let partitions: Vec<i32> = loop {
        let metadata = retry_retriable(RETRY_DEADLINE, || {
            consumer.fetch_metadata(Some(topic), Duration::from_secs(10))
        })
        .with_context(|| format!("fetching metadata of `{topic}` from {}", kafka.brokers))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .first()
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if !partitions.is_empty() {
            break partitions;
        }
        if started.elapsed() >= RETRY_DEADLINE {
            bail!("topic `{topic}` has no partitions (does it exist? run `scripts/stack up`)");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut ends = BTreeMap::new();
    for partition in partitions {
        let (low, high) = retry_retriable(RETRY_DEADLINE, || {
            consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))
        })
        .with_context(|| format!("fetching watermarks of {topic}/{partition}"))?;
        ends.insert(partition, (low, high));
    }
    Ok(ends)
}

/// For every partition of `topic`: the first offset whose record time is at
/// or after `time` (the end offset where there is none), and the end offset.
/// What [`scan`] reads to see the records since `time`.
pub fn ranges_since(
    kafka: &KafkaSettings,
    topic: &str,
    time: Timestamp,
) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
    let marks = watermarks(kafka, topic)?;
    let consumer = consumer(kafka)?;
    let mut query = TopicPartitionList::new();
    for &partition in marks.keys() {
        query.add_partition_offset(topic, partition, Offset::Offset(time.as_millis()))?;
    }
    let found = retry_retriable(RETRY_DEADLINE, || {
        consumer.offsets_for_times(query.clone(), Duration::from_secs(10))
    })
    .with_context(|| format!("finding offsets of `{topic}` at {time}"))?;
    let mut ranges = BTreeMap::new();
    for element in found.elements() {
        let (first, end) = marks[&element.partition()];
        let start = match element.offset() {
            Offset::Offset(offset) => offset.clamp(first, end),
            _ => end,
        };
        ranges.insert(element.partition(), (start, end));
    }
    Ok(ranges)
}

/// The offsets `group` committed on `topic`, per partition of `partitions`
/// (`None`: nothing committed yet). Reads them without joining the group.
pub fn committed_offsets(
    kafka: &KafkaSettings,
    group: &str,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let mut query = TopicPartitionList::new();
    for partition in partitions {
        query.add_partition(topic, partition);
    }
    let committed = retry_retriable(RETRY_DEADLINE, || {
        consumer.committed_offsets(query.clone(), Duration::from_secs(10))
    })
    .with_context(|| format!("reading the offsets of group `{group}` on `{topic}`"))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            (e.partition(), offset)
        })
        .collect())
}

/// How long metadata and offset calls retry Kafka's "try again" answers.
pub const RETRY_DEADLINE: Duration = Duration::from_secs(20);

/// Reads `topic` from `start` offsets until `done` says enough was read or
/// `timeout` passes; returns what was read in arrival order.
pub fn read_from(
    kafka: &KafkaSettings,
    topic: &str,
    start: &BTreeMap<i32, i64>,
    timeout: Duration,
    mut done: impl FnMut(&[ReadRecord]) -> bool,
) -> anyhow::Result<Vec<ReadRecord>> {
    let consumer = consumer(kafka)?;
    let mut assignment = TopicPartitionList::new();
    for (&partition, &offset) in start {
        assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer.assign(&assignment)?;

    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while !done(&records) && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.with_context(|| format!("reading `{topic}`"))?;
        records.push(read_record(&message));
    }
    Ok(records)
}

/// Reads every record of `topic` in the offset ranges `[first, end)` of
/// `ranges` (as [`watermarks`] gives them), in order within each partition,
/// handing each to `each` until it returns false. Fails when `idle` passes
/// without a record or a partition's end.
///
/// A partition is done at its end offset or when the broker says there is
/// nothing more (its end can be a transaction marker, never delivered).
pub fn scan(
    kafka: &KafkaSettings,
    topic: &str,
    ranges: &BTreeMap<i32, (i64, i64)>,
    idle: Duration,
    mut each: impl FnMut(ReadRecord) -> bool,
) -> anyhow::Result<()> {
    let mut pending: BTreeMap<i32, i64> = ranges
        .iter()
        .filter(|(_, (first, end))| first < end)
        .map(|(&partition, &(_, end))| (partition, end))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut config = consumer_config(kafka, true);
    // Retention may have removed the first records since `ranges` was
    // taken: start at what is left, never at the end.
    config.set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    for &partition in pending.keys() {
        let first = ranges[&partition].0;
        assignment.add_partition_offset(topic, partition, Offset::Offset(first))?;
    }
    consumer.assign(&assignment)?;

    let mut last_progress = Instant::now();
    while !pending.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            if last_progress.elapsed() > idle {
                bail!(
                    "reading `{topic}`: nothing for {idle:?} with partitions {:?} unfinished",
                    pending.keys().collect::<Vec<_>>()
                );
            }
            continue;
        };
        last_progress = Instant::now();
        let message = match message {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(partition)) => {
                pending.remove(&partition);
                continue;
            }
            Err(err) => return Err(err).with_context(|| format!("reading `{topic}`")),
        };
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&end) = pending.get(&partition) else {
            continue;
        };
        // Records that arrived after `ranges` was taken are not read.
        if offset >= end {
            pending.remove(&partition);
            continue;
        }
        if offset + 1 >= end {
            pending.remove(&partition);
        }
        if !each(read_record(&message)) {
            return Ok(());
        }
    }
    Ok(())
}

fn read_record(message: &BorrowedMessage<'_>) -> ReadRecord {
    let mut headers = BTreeMap::new();
    if let Some(hs) = message.headers() {
        for header in hs.iter() {
            let value = header
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned());
            headers.insert(header.key.to_owned(), value.unwrap_or_default());
        }
    }
    ReadRecord {
        partition: message.partition(),
        offset: message.offset(),
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        payload: message.payload().unwrap_or_default().to_vec(),
        headers,
        timestamp: message.timestamp().to_millis().map(Timestamp::from_millis),
    }
}

/// The last `n` records of each partition of `topic`.
pub fn tail(
    kafka: &KafkaSettings,
    topic: &str,
    n: i64,
    timeout: Duration,
) -> anyhow::Result<Vec<ReadRecord>> {
    let ends = end_offsets(kafka, topic)?;
    let start: BTreeMap<i32, i64> = ends.iter().map(|(p, end)| (*p, (end - n).max(0))).collect();
    let want: i64 = ends.iter().map(|(p, end)| end - start[p]).sum();
    let mut records = read_from(kafka, topic, &start, timeout, |r| r.len() as i64 >= want)?;
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

fn consumer(kafka: &KafkaSettings) -> anyhow::Result<BaseConsumer> {
    Ok(consumer_config(kafka, false).create()?)
}

/// A throwaway group that never commits: reading back disturbs no one.
fn consumer_config(kafka: &KafkaSettings, eof: bool) -> rdkafka::ClientConfig {
    let mut config = kafka.client_config();
    config
        .set(
            "group.id",
            format!("sluice-readback-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", if eof { "true" } else { "false" });
    config
}
