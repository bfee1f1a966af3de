//! A key-value table replicated through a compacted Kafka topic.
//!
//! Every gateway replica reads the whole topic at start and then tails it, so
//! state written through any replica (API keys, plugins and schemas)
//! reaches all of them within the consumer's poll interval, survives restarts,
//! and needs no shared filesystem. The latest record per key wins; a record
//! with no value (a tombstone) deletes the key, and Kafka's compaction keeps
//! the topic as small as the live table.
//!
//! Writes are produced with `acks=all`; [`ReplicatedTable::put`] then waits
//! until this replica's own reader has applied the write, so a caller that
//! creates a key can use it on the same replica immediately.
//!
//! A table need not hold its values: [`ReplicatedTable::start_with`] decides
//! per record what is kept, and a table of large records (plugin components)
//! keeps only where each one is ([`Location`]) and reads it back with
//! [`ReplicatedTable::fetch`] when it is needed, so every replica's memory
//! holds an index, not the bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::kafka::KafkaSettings;

/// How long a write waits for this replica to see it.
const READ_YOUR_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`ReplicatedTable::fetch`] waits for the broker to hand over one
/// record.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Pre-fetched bytes a table reader's client may queue (librdkafka's default
/// is 64 MiB per client): loading a topic of 700 KB records at start would
/// otherwise park tens of MiB in every replica for nothing.
const READER_QUEUE_KBYTES: &str = "8192";

/// Where a record sits in its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub partition: i32,
    pub offset: i64,
}

/// Turns a record's value into what the table keeps for its key; an error
/// skips the record (logged), as a record that does not decode.
pub type Decode<V> = fn(&[u8], Location) -> anyhow::Result<V>;

pub struct ReplicatedTable<V> {
    topic: String,
    entries: Arc<RwLock<HashMap<String, V>>>,
    kafka: KafkaSettings,
    /// The client [`Self::fetch`] reads single records with, made on first
    /// use (most tables never fetch).
    fetcher: Mutex<Option<BaseConsumer>>,
    /// Next offset to apply, per partition; advanced by the reader thread.
    applied: watch::Receiver<BTreeMap<i32, i64>>,
    caught_up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    producer: FutureProducer,
}

impl<V> std::fmt::Debug for ReplicatedTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedTable")
            .field("topic", &self.topic)
            .field("caught_up", &self.caught_up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<V> ReplicatedTable<V>
where
    V: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Starts reading `topic` from the beginning on a background thread; each
    /// record's value is the entry, as JSON.
    pub fn start(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<Self> {
        Self::start_with(kafka, topic, |bytes, _| Ok(serde_json::from_slice(bytes)?))
    }
}

impl<V> ReplicatedTable<V>
where
    V: Serialize + Clone + Send + Sync + 'static,
{
    /// Writes `value` under `key` and waits until this replica applied it.
    pub async fn put(&self, key: &str, value: &V) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(value)?;
        self.write(key, Some(&payload)).await
    }
}

impl<V> ReplicatedTable<V>
where
    V: Clone + Send + Sync + 'static,
{
    /// Starts reading `topic` from the beginning on a background thread;
    /// `decode` makes each record's entry.
    pub fn start_with(
        kafka: &KafkaSettings,
        topic: &str,
        decode: Decode<V>,
    ) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = reader_config(kafka, topic).create()?;
        let producer: FutureProducer = kafka.durable_producer_config(0, 10_000).create()?;

        let entries = Arc::new(RwLock::new(HashMap::new()));
        let (applied_tx, applied) = watch::channel(BTreeMap::new());
        let caught_up = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            topic: topic.to_owned(),
            consumer,
            decode,
            entries: entries.clone(),
            applied: applied_tx,
            caught_up: caught_up.clone(),
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name(format!("table-{topic}"))
            .spawn(move || reader.run())
            .context("spawning the table reader thread")?;
        Ok(Self {
            topic: topic.to_owned(),
            entries,
            kafka: kafka.clone(),
            fetcher: Mutex::new(None),
            applied,
            caught_up,
            stop,
            producer,
        })
    }

    pub fn get(&self, key: &str) -> Option<V> {
        self.read(key, V::clone)
    }

    /// Applies `f` to the entry under `key` without cloning it (hot path).
    pub fn read<R>(&self, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        self.entries.read().ok()?.get(key).map(f)
    }

    /// All entries, in no particular order.
    pub fn entries(&self) -> Vec<(String, V)> {
        match self.entries.read() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A receiver that changes whenever the reader applies a record.
    pub fn changes(&self) -> watch::Receiver<BTreeMap<i32, i64>> {
        self.applied.clone()
    }

    /// True once the reader has applied everything that was in the topic when
    /// it started: before that, lookups may miss existing entries.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// Writes `payload` as the record under `key` (what [`Self::start_with`]'s
    /// decoder reads) and waits until this replica applied it.
    pub async fn put_bytes(&self, key: &str, payload: &[u8]) -> anyhow::Result<()> {
        self.write(key, Some(payload)).await
    }

    /// Deletes `key` (a tombstone) and waits until this replica applied it.
    pub async fn remove(&self, key: &str) -> anyhow::Result<()> {
        self.write(key, None).await
    }

    async fn write(&self, key: &str, payload: Option<&[u8]>) -> anyhow::Result<()> {
        let mut record = FutureRecord::<str, [u8]>::to(&self.topic).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        let delivery = self
            .producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(err, _)| anyhow::anyhow!("writing to `{}`: {err}", self.topic))?;
        let mut applied = self.applied.clone();
        let wait = applied.wait_for(|offsets| {
            offsets
                .get(&delivery.partition)
                .is_some_and(|next| *next > delivery.offset)
        });
        match tokio::time::timeout(READ_YOUR_WRITE_TIMEOUT, wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => bail!("the `{}` reader stopped", self.topic),
            Err(_) => bail!(
                "write to `{}` acknowledged but not yet visible after {:?}",
                self.topic,
                READ_YOUR_WRITE_TIMEOUT
            ),
        }
    }
}

impl<V> ReplicatedTable<V> {
    /// Reads the value of the record at `at`, which must be `key`'s. Blocking
    /// (a broker round trip): call it off the async workers.
    ///
    /// Compaction may have removed the record since its location was taken
    /// (a newer record of the same key replaced it): that is an error, and the
    /// caller asks again with the key's newer location.
    pub fn fetch(&self, key: &str, at: Location) -> anyhow::Result<Vec<u8>> {
        let mut fetcher = self
            .fetcher
            .lock()
            .map_err(|_| anyhow::anyhow!("the `{}` fetcher is poisoned", self.topic))?;
        if fetcher.is_none() {
            *fetcher = Some(reader_config(&self.kafka, &self.topic).create()?);
        }
        let consumer = fetcher.as_ref().expect("set above");
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, at.partition, Offset::Offset(at.offset))?;
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + FETCH_TIMEOUT;
        let found = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                bail!(
                    "no record at {}/{}@{} after {FETCH_TIMEOUT:?}",
                    self.topic,
                    at.partition,
                    at.offset
                );
            }
            match consumer.poll(left.min(Duration::from_millis(500))) {
                None => {}
                Some(Err(err)) => bail!("reading `{}`: {err}", self.topic),
                // Left over from an earlier fetch's read-ahead: not ours.
                Some(Ok(message))
                    if message.partition() != at.partition || message.offset() < at.offset => {}
                Some(Ok(message)) => {
                    if message.offset() != at.offset {
                        bail!(
                            "the record at {}/{}@{} is gone (compacted); found offset {}",
                            self.topic,
                            at.partition,
                            at.offset,
                            message.offset()
                        );
                    }
                    if message.key() != Some(key.as_bytes()) {
                        bail!(
                            "the record at {}/{}@{} is not `{key}`'s",
                            self.topic,
                            at.partition,
                            at.offset
                        );
                    }
                    break message.payload().map(<[u8]>::to_vec);
                }
            }
        };
        // Stop fetching ahead into records nobody asked for.
        consumer.unassign()?;
        found.ok_or_else(|| anyhow::anyhow!("`{key}` was deleted"))
    }
}

/// The client settings of a table's readers: no group (every replica reads
/// every record; nothing is committed) and a bounded pre-fetch queue.
fn reader_config(kafka: &KafkaSettings, topic: &str) -> rdkafka::ClientConfig {
    let mut config = kafka.client_config();
    config
        .set(
            "group.id",
            format!("sluice-table-{topic}-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", READER_QUEUE_KBYTES);
    config
}

impl<V> Drop for ReplicatedTable<V> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Reader<V> {
    topic: String,
    consumer: BaseConsumer,
    decode: Decode<V>,
    entries: Arc<RwLock<HashMap<String, V>>>,
    applied: watch::Sender<BTreeMap<i32, i64>>,
    caught_up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl<V> Reader<V> {
    fn run(self) {
        // Retry the start-up until the broker answers: a gateway started before
        // Kafka must come up by itself once Kafka does.
        let mut targets = loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            match self.assign() {
                Ok(targets) => break targets,
                Err(err) => {
                    tracing::warn!(topic = %self.topic, error = %err, "table reader cannot start yet; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        self.check_caught_up(&mut targets);
        while !self.stop.load(Ordering::Relaxed) {
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(err)) => {
                    tracing::warn!(topic = %self.topic, error = %err, "table reader error");
                }
                Some(Ok(message)) => {
                    self.apply(&message);
                    let (partition, next) = (message.partition(), message.offset() + 1);
                    self.applied.send_modify(|offsets| {
                        offsets.insert(partition, next);
                    });
                    self.check_caught_up(&mut targets);
                }
            }
        }
    }

    /// Assigns every partition from the beginning; returns each partition's
    /// end offset at start (what "caught up" means).
    fn assign(&self) -> anyhow::Result<BTreeMap<i32, i64>> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(5))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            bail!("topic `{}` does not exist", self.topic);
        }
        let mut assignment = TopicPartitionList::new();
        let mut targets = BTreeMap::new();
        for partition in partitions {
            assignment.add_partition_offset(&self.topic, partition, Offset::Beginning)?;
            let (_, high) =
                self.consumer
                    .fetch_watermarks(&self.topic, partition, Duration::from_secs(5))?;
            targets.insert(partition, high);
        }
        self.consumer.assign(&assignment)?;
        Ok(targets)
    }

    fn check_caught_up(&self, targets: &mut BTreeMap<i32, i64>) {
        if self.caught_up.load(Ordering::Relaxed) {
            return;
        }
        let applied = self.applied.borrow();
        targets.retain(|partition, high| applied.get(partition).copied().unwrap_or(0) < *high);
        if targets.is_empty() {
            tracing::info!(topic = %self.topic, "table loaded");
            self.caught_up.store(true, Ordering::Relaxed);
        }
    }

    fn apply(&self, message: &rdkafka::message::BorrowedMessage<'_>) {
        let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            tracing::warn!(topic = %self.topic, offset = message.offset(), "skipping record without a UTF-8 key");
            return;
        };
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        match message.payload() {
            None => {
                entries.remove(key);
            }
            Some(bytes) => match (self.decode)(
                bytes,
                Location {
                    partition: message.partition(),
                    offset: message.offset(),
                },
            ) {
                Ok(value) => {
                    entries.insert(key.to_owned(), value);
                }
                Err(err) => {
                    tracing::warn!(topic = %self.topic, key, offset = message.offset(), error = %err, "skipping undecodable record");
                }
            },
        }
    }
}
