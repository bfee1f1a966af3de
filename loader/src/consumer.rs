//! The load loop: Kafka → batches per partition → lake → ClickHouse → commit.
//!
//! ## Guarantee
//! Every record of `events.raw` is stored in ClickHouse exactly once, through
//! crashes (`kill -9` at any point), ClickHouse outages and rebalances:
//!
//! 1. A batch is a contiguous offset range of one partition. It is inserted
//!    as one INSERT per run of events with the same UTC day (the table's
//!    partition key), in offset order: within one partition an INSERT is
//!    atomic (all rows or none), across partitions it is not.
//! 2. The Kafka offset is committed only after ClickHouse acknowledged the
//!    insert. A crash before the commit re-reads the range.
//! 3. Every insert also records its highest offset per partition in
//!    `loader_progress` (a materialised view, same insert). On assignment the
//!    loader reads those offsets and skips records at or below them, so a
//!    re-read range is not inserted twice, on every server version.
//! 4. After an ambiguous insert failure (timeout: the server may have applied
//!    it), the loader re-reads the partition's progress before retrying.
//! 5. Where the server supports it, the insert also carries
//!    `insert_deduplication_token = topic:partition:first-last`, so even a
//!    duplicate insert by a revoked instance is dropped by ClickHouse.
//! 6. Rebalancing is eager (all partitions revoked before any is assigned).
//!    One batch at a time per ClickHouse shard is stored by its own task
//!    while the loop keeps consuming (a partition is always on the same
//!    shard, so its batches stay in offset order); a revocation of its
//!    partition blocks (in the rebalance
//!    callback) until that batch is stored, so a revoked partition's insert
//!    has finished before its new owner reads `loader_progress`.
//!
//! Records that can never be inserted (not the event contract, or rejected
//! by ClickHouse as bad data) go to the dead-letter topic with a reason, so
//! one bad record cannot block its partition.
//!
//! ## Retries of an event
//! Exactly once per *record* is not enough: a client that resends a batch
//! produces the same `event_id` again. Each partition keeps the kept events
//! of the deduplication window ([`sluice_core::dedup`]); a record that
//! repeats one is dropped before the lake and ClickHouse, counted per team
//! and logged. The set is rebuilt from `event_ids` on assignment (what
//! ClickHouse holds, so a crash or a rebalance cannot reset it), and is
//! extended as a batch is decided: a batch that is then not stored is either
//! re-read by a new owner that rebuilds, or retried until stored.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use opentelemetry::trace::SpanContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sluice_clickhouse::InsertOutcome;
use sluice_core::backoff::Backoff;
use sluice_core::dedup::{Seen, SeenIds};
use sluice_core::kafka::headers;
use sluice_core::service::RebalanceLog;
use sluice_core::{Event, Timestamp};
use tracing::Instrument;

use crate::batch::{PartitionBatch, SourceRecord, dedup_token};
use crate::config::LoaderConfig;
use crate::lake::Lake;
use crate::sink::ClickHouseSink;
use crate::status::Status;

/// Splits offset-ordered events into maximal runs of the same UTC day of
/// `timestamp` (the table's partition key), each at most `max_rows` long:
/// one INSERT each. A batch can outgrow `batch.max_rows` while its shard is
/// busy (records fetched before its partition was paused), and one INSERT
/// must stay within [`sluice_clickhouse::MAX_BLOCK_ROWS`].
fn day_runs<'e, 'a>(
    events: &'e [(i64, Event<'a>)],
    max_rows: usize,
) -> impl Iterator<Item = &'e [(i64, Event<'a>)]> {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    events
        .chunk_by(|(_, a), (_, b)| {
            a.timestamp.as_millis().div_euclid(DAY_MS) == b.timestamp.as_millis().div_euclid(DAY_MS)
        })
        .flat_map(move |day| day.chunks(max_rows.max(1)))
}

/// Test hook (outside the `SLUICE_LOADER_` prefix, so it is never
/// configuration): abort the process right after this many inserts were
/// acknowledged, before the offsets are committed (a crash mid-load: rows
/// stored, the batch's later runs and the commit not).
pub const CRASH_AFTER_INSERTS_ENV: &str = "SLUICE_TEST_LOADER_CRASH_AFTER_INSERTS";

/// How often consumer lag is measured.
const LAG_PERIOD: Duration = Duration::from_secs(5);

pub struct Loader {
    config: LoaderConfig,
    consumer: StreamConsumer<RebalanceLog>,
    rebalances: RebalanceLog,
    storer: Arc<Storer>,
    batches: BTreeMap<i32, PartitionBatch>,
    /// Highest offset already in ClickHouse, per assigned partition.
    loaded: HashMap<i32, i64>,
    /// Partitions whose full batch waits for its shard: not fetched until
    /// the batch is on its way, so memory stays bounded while a shard is
    /// down and the other shards' partitions go on.
    paused: std::collections::BTreeSet<i32>,
}

/// What storing a batch needs (lake, ClickHouse, dead-letter topic), shared
/// with the task that stores it while the loop keeps consuming.
struct Storer {
    config: LoaderConfig,
    dlq: FutureProducer,
    sink: ClickHouseSink,
    lake: Option<Lake>,
    status: Arc<Status>,
    /// The deduplication state of each assigned partition (when on).
    seen: Mutex<HashMap<i32, SeenIds>>,
    /// Inserts acknowledged, and the crash hook's count ([`CRASH_AFTER_INSERTS_ENV`]).
    inserts: std::sync::atomic::AtomicU64,
    crash_after_inserts: Option<u64>,
}

/// The batch being stored by its own task, one per ClickHouse shard (one
/// server: one shard): a shard that is down holds only its own partitions.
struct Loading {
    task: tokio::task::JoinHandle<anyhow::Result<Option<(i32, i64)>>>,
}

type Joined = Result<anyhow::Result<Option<(i32, i64)>>, tokio::task::JoinError>;

/// Resolves when a batch in flight is stored, with its shard; never when
/// there is none.
async fn stored(loading: &mut HashMap<usize, Loading>) -> (usize, Joined) {
    // Polled in place: this runs once per record received, so no allocation.
    std::future::poll_fn(|cx| {
        for (shard, loading) in loading.iter_mut() {
            if let std::task::Poll::Ready(joined) = std::pin::Pin::new(&mut loading.task).poll(cx) {
                return std::task::Poll::Ready((*shard, joined));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("topic", &self.config.topic)
            .finish_non_exhaustive()
    }
}

impl Loader {
    pub async fn new(config: LoaderConfig, status: Arc<Status>) -> anyhow::Result<Self> {
        let sink = ClickHouseSink::connect(&config.clickhouse).await?;
        status.set_clickhouse_up(true);
        // The lake before the consumer: a bad lake fails before joining the group.
        let lake = match config.lake.store().map_err(anyhow::Error::msg)? {
            Some(store) => {
                store
                    .check()
                    .await
                    .with_context(|| format!("the lake at {} is not usable", store.describe()))?;
                tracing::info!(lake = %store.describe(), "lake ready");
                Some(Lake::new(store))
            }
            None => None,
        };
        let rebalances = RebalanceLog::new(&config.topic);
        let client = sluice_core::service::manual_commit_consumer(
            &config.kafka,
            &config.group_id,
            config.session_timeout_ms,
        );
        let consumer: StreamConsumer<RebalanceLog> =
            client.create_with_context(rebalances.clone())?;
        consumer
            .subscribe(&[config.topic.as_str()])
            .with_context(|| format!("subscribing to `{}`", config.topic))?;
        let dlq: FutureProducer = config.kafka.durable_producer_config(5, 30_000).create()?;
        Ok(Self {
            storer: Arc::new(Storer {
                config: config.clone(),
                dlq,
                sink,
                lake,
                status,
                seen: Mutex::new(HashMap::new()),
                inserts: std::sync::atomic::AtomicU64::new(0),
                crash_after_inserts: std::env::var(CRASH_AFTER_INSERTS_ENV)
                    .ok()
                    .and_then(|v| v.parse().ok()),
            }),
            config,
            consumer,
            rebalances,
            batches: BTreeMap::new(),
            loaded: HashMap::new(),
            paused: std::collections::BTreeSet::new(),
        })
    }

    /// Runs until `shutdown` resolves; then inserts and commits what it holds.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let _retention: Vec<_> = self
            .storer
            .sink
            .retention()
            .into_iter()
            .map(|job| job.spawn(sluice_clickhouse::RETENTION_PERIOD))
            .collect();
        let _event_ids_retention: Vec<_> = self
            .storer
            .sink
            .event_ids_retention()
            .into_iter()
            .map(|job| job.spawn(sluice_clickhouse::RETENTION_PERIOD))
            .collect();
        let max_wait = Duration::from_millis(self.config.batch.max_wait_ms);
        let mut last_lag = std::time::Instant::now();
        let mut loading: HashMap<usize, Loading> = HashMap::new();
        loop {
            let mut joined = None;
            // Batches waiting for a busy shard are not due yet: their turn
            // comes when that shard's batch is stored (`joined`).
            let wait = self
                .batches
                .values()
                .filter(|b| !loading.contains_key(&self.storer.sink.shard_of(b.partition)))
                .filter_map(|b| b.due_in(max_wait))
                .min()
                .unwrap_or(max_wait);
            tokio::select! {
                () = &mut shutdown => break,
                result = stored(&mut loading) => joined = Some(result),
                received = tokio::time::timeout(wait, self.consumer.recv()) => {
                    match received {
                        Ok(Ok(message)) => {
                            let link = sluice_core::kafka::traceparent_header(&message)
                                .and_then(sluice_core::trace::parse_traceparent);
                            let record = SourceRecord {
                                partition: message.partition(),
                                offset: message.offset(),
                                payload: message.payload().unwrap_or_default().to_vec(),
                            };
                            self.apply_rebalances().await?;
                            self.accept(record, link);
                        }
                        Ok(Err(err)) => tracing::warn!(error = %err, "Kafka consumer error"),
                        Err(_) => {}
                    }
                }
            }
            if let Some((shard, result)) = joined {
                loading.remove(&shard);
                self.on_stored(result)?;
            }
            self.apply_rebalances().await?;
            self.flush_due(false, &mut loading).await?;
            if last_lag.elapsed() >= LAG_PERIOD {
                self.report_lag();
                last_lag = std::time::Instant::now();
            }
        }
        tracing::info!("shutting down: inserting what is batched");
        self.apply_rebalances().await?;
        self.flush_due(true, &mut loading).await?;
        Ok(())
    }

    /// Publishes, per assigned partition, how many records are not loaded yet
    /// (high watermark minus the next offset to load).
    fn report_lag(&self) {
        let topic = &self.config.topic;
        for (partition, loaded) in &self.loaded {
            // A metadata round trip on the local network; block_in_place keeps
            // the runtime's other tasks (the HTTP endpoints) running meanwhile.
            let watermarks = tokio::task::block_in_place(|| {
                self.consumer
                    .fetch_watermarks(topic, *partition, Duration::from_secs(1))
            });
            if let Ok((_, high)) = watermarks {
                let lag = (high - loaded - 1).max(0);
                metrics::gauge!(crate::status::CONSUMER_LAG, "partition" => partition.to_string())
                    .set(lag as f64);
            }
        }
    }

    fn accept(&mut self, record: SourceRecord, link: Option<SpanContext>) {
        if self
            .loaded
            .get(&record.partition)
            .is_some_and(|loaded| record.offset <= *loaded)
        {
            // Already in ClickHouse (inserted before a crash, not committed).
            return;
        }
        let batch = self
            .batches
            .entry(record.partition)
            .or_insert_with(|| PartitionBatch::new(record.partition));
        if let Some(link) = link {
            batch.links.add(link);
        }
        batch.push(record);
    }

    async fn apply_rebalances(&mut self) -> anyhow::Result<()> {
        let log = self.rebalances.take();
        for partition in &log.revoked {
            // Not inserted yet: the new owner re-reads them from the commit.
            self.batches.remove(partition);
            // A pause ends with the assignment it was made in.
            self.paused.remove(partition);
            metrics::gauge!(crate::status::PAUSED_PARTITIONS).set(self.paused.len() as f64);
            self.loaded.remove(partition);
            self.storer.seen().remove(partition);
        }
        if !log.assigned.is_empty() {
            // Whatever the client kept of an earlier assignment's pause.
            let mut tpl = TopicPartitionList::new();
            for partition in &log.assigned {
                tpl.add_partition(&self.config.topic, *partition);
            }
            if let Err(err) = self.consumer.resume(&tpl) {
                tracing::warn!(error = %err, "resuming newly assigned partitions failed");
            }
            let (sink, topic) = (&self.storer.sink, self.config.topic.as_str());
            let progress = self
                .storer
                .backoff()
                .retry("reading the loader's progress", || {
                    sink.loaded_offsets(topic)
                })
                .await;
            for partition in &log.assigned {
                let loaded = progress.get(partition).copied().unwrap_or(-1);
                self.loaded.insert(*partition, loaded);
                if self.config.dedup.enabled() {
                    // Before any record of the partition is decided: rebuilt
                    // from what ClickHouse holds, so it matches every row up
                    // to `loaded` (progress and ids are written by one insert).
                    let started = Instant::now();
                    let dedup = &self.config.dedup;
                    let (seen, rows) = self
                        .storer
                        .backoff()
                        .retry("rebuilding the deduplication state", || async {
                            let mut seen = dedup.new_set();
                            let rows = sink.rebuild_seen(topic, *partition, &mut seen).await?;
                            anyhow::Ok((seen, rows))
                        })
                        .await;
                    tracing::info!(
                        partition,
                        rows,
                        kept = seen.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "deduplication state rebuilt"
                    );
                    self.storer.seen().insert(*partition, seen);
                }
            }
            tracing::info!(partitions = ?log.assigned, ?progress, "partitions assigned");
        }
        if self.config.dedup.enabled() && !(log.assigned.is_empty() && log.revoked.is_empty()) {
            crate::status::record_dedup_state(&self.storer.seen());
        }
        self.storer
            .status
            .set_assigned(self.loaded.keys().copied().collect());
        Ok(())
    }

    /// Starts storing every due batch, one at a time per ClickHouse shard:
    /// the loop keeps consuming while batches are in flight (decoding
    /// overlaps the INSERT), and a partition's next batch starts only after
    /// the one before it is stored, so its batches are stored in offset
    /// order. A due batch whose shard is busy waits; once it is full its
    /// partition is paused until it is on its way, so memory stays bounded
    /// and a shard that is down holds up only its own partitions. With
    /// `all`, waits for the busy shards and the last batches (shutdown).
    async fn flush_due(
        &mut self,
        all: bool,
        loading: &mut HashMap<usize, Loading>,
    ) -> anyhow::Result<()> {
        let settings = &self.config.batch;
        let max_wait = Duration::from_millis(settings.max_wait_ms);
        let (max_rows, max_bytes) = (settings.max_rows, settings.max_bytes);
        // Oldest first: a shard takes one batch at a time, and in partition
        // order a busy low partition, always due again, would starve the
        // others of its shard.
        let mut due: Vec<(Duration, i32, bool)> = self
            .batches
            .values()
            .filter(|b| !b.is_empty() && (all || b.is_due(max_rows, max_bytes, max_wait)))
            .map(|b| {
                let full = b.is_due(max_rows, max_bytes, Duration::MAX);
                (b.age(), b.partition, full)
            })
            .collect();
        due.sort_by_key(|d| std::cmp::Reverse(d.0));
        let due = due
            .into_iter()
            .map(|(_, partition, full)| (partition, full));
        for (partition, full) in due {
            let shard = self.storer.sink.shard_of(partition);
            if let Some(previous) = loading.remove(&shard) {
                if all {
                    let result = previous.task.await;
                    self.on_stored(result)?;
                } else {
                    loading.insert(shard, previous);
                    if full {
                        self.pause(partition, true)?;
                    }
                    continue;
                }
            }
            if let Some(batch) = self.batches.remove(&partition) {
                // The guard keeps a revocation of this partition waiting
                // until the batch is stored (guarantee, point 6).
                let guard = self.rebalances.in_flight().begin(partition);
                let storer = self.storer.clone();
                loading.insert(
                    shard,
                    Loading {
                        task: tokio::spawn(async move {
                            let _guard = guard;
                            storer.flush(batch).await
                        }),
                    },
                );
                self.pause(partition, false)?;
            }
        }
        if all {
            for (_, previous) in loading.drain() {
                let result = previous.task.await;
                self.on_stored(result)?;
            }
        }
        Ok(())
    }

    /// Pauses (or resumes) fetching `partition`, if not so already.
    fn pause(&mut self, partition: i32, pause: bool) -> anyhow::Result<()> {
        if self.paused.contains(&partition) == pause {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.config.topic, partition);
        if pause {
            self.consumer.pause(&tpl)?;
            self.paused.insert(partition);
            tracing::info!(
                partition,
                "batch full while its ClickHouse shard is busy; partition paused"
            );
        } else {
            self.consumer.resume(&tpl)?;
            self.paused.remove(&partition);
        }
        metrics::gauge!(crate::status::PAUSED_PARTITIONS).set(self.paused.len() as f64);
        Ok(())
    }

    /// Records a stored batch and commits its offset (if the partition is
    /// still ours: a revoked one's new owner reads `loader_progress`).
    fn on_stored(&mut self, joined: Joined) -> anyhow::Result<()> {
        let stored = joined.map_err(|e| anyhow::anyhow!("the storing task failed: {e}"))??;
        let Some((partition, last)) = stored else {
            return Ok(());
        };
        if !self.loaded.contains_key(&partition) {
            return Ok(());
        }
        self.loaded.insert(partition, last);
        let topic = &self.config.topic;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(last + 1))?;
        // Async is enough: if the commit is lost, `loader_progress` still
        // tells the next owner where ClickHouse is.
        if let Err(err) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(%topic, partition, error = %err, "offset commit failed; progress is safe in ClickHouse");
        }
        Ok(())
    }
}

impl Storer {
    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<i32, SeenIds>> {
        // A panic while holding it leaves a consistent map (every change is
        // one insert or remove), so a poisoned lock is still usable.
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the records that repeat a kept event (first copy wins) and
    /// records the rest as kept; counts and logs what it dropped.
    fn drop_duplicates<'a>(
        &self,
        partition: i32,
        events: Vec<(i64, Event<'a>)>,
    ) -> Vec<(i64, Event<'a>)> {
        if !self.config.dedup.enabled() {
            return events;
        }
        let mut sets = self.seen();
        let Some(seen) = sets.get_mut(&partition) else {
            // Every assigned partition gets its set before its first batch,
            // and a revocation waits for the batch in flight.
            tracing::error!(
                partition,
                "no deduplication state for an assigned partition; storing without it"
            );
            return events;
        };
        let mut dropped: Vec<(i64, String, uuid::Uuid)> = Vec::new();
        let kept: Vec<_> = events
            .into_iter()
            .filter(|(offset, event)| {
                let key = seen.key(&event.team_id, event.event_id);
                let received = sluice_core::dedup::secs(event.received_at.as_millis());
                match seen.observe(key, received) {
                    Seen::First => true,
                    Seen::Duplicate => {
                        dropped.push((*offset, event.team_id.to_string(), event.event_id));
                        false
                    }
                }
            })
            .collect();
        crate::status::record_dedup_state(&sets);
        drop(sets);
        if !dropped.is_empty() {
            crate::status::record_duplicates(dropped.iter().map(|(_, team, _)| team.as_str()));
            let sample: Vec<String> = dropped
                .iter()
                .take(5)
                .map(|(offset, team, id)| format!("{team}/{id}@{offset}"))
                .collect();
            tracing::info!(
                partition,
                code = "duplicate_event",
                duplicates = dropped.len(),
                ?sample,
                "dropped retries of events already kept (first copy wins)"
            );
        }
        kept
    }

    fn crash_hook(&self) {
        let inserts = self
            .inserts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if self.crash_after_inserts == Some(inserts) {
            sluice_core::service::crash_now(&format!(
                "{CRASH_AFTER_INSERTS_ENV}={inserts} reached, before the commit"
            ));
        }
    }

    /// Waits between retries of one write, from `batch.*_backoff_ms`.
    fn backoff(&self) -> Backoff {
        Backoff::from_millis(
            self.config.batch.min_backoff_ms,
            self.config.batch.max_backoff_ms,
        )
    }

    /// Lake, then ClickHouse, in one `load_batch` span linked to the requests
    /// that produced the batch. Returns the partition and the last offset now
    /// stored, if any; the loop commits it ([`Loader::on_stored`]).
    async fn flush(&self, mut batch: PartitionBatch) -> anyhow::Result<Option<(i32, i64)>> {
        let Some((first, last)) = batch.range() else {
            return Ok(None);
        };
        let partition = batch.partition;
        let span = tracing::info_span!(
            "load_batch",
            messaging.destination.name = %self.config.topic,
            partition = batch.partition,
            first_offset = first,
            last_offset = last,
            records = batch.records.len() as i64,
            table = %self.config.clickhouse.table,
            linked_traces = batch.links.len() as i64,
        );
        batch.links.attach(&span);
        self.load(batch, first, last).instrument(span).await?;
        Ok(Some((partition, last)))
    }

    /// Retries until it succeeds.
    async fn load(&self, batch: PartitionBatch, first: i64, last: i64) -> anyhow::Result<()> {
        let topic = self.config.topic.clone();
        let partition = batch.partition;
        let mut events = Vec::with_capacity(batch.records.len());
        for record in &batch.records {
            match serde_json::from_slice::<Event<'_>>(&record.payload) {
                Ok(event) => events.push((record.offset, event)),
                Err(err) => {
                    self.dead_letter(
                        record,
                        "undecodable_event",
                        &format!("not the event contract: {err}"),
                    )
                    .await?;
                }
            }
        }
        let events = self.drop_duplicates(partition, events);
        if let Some(lake) = &self.lake {
            // The lake before ClickHouse: a range in ClickHouse is always in
            // the lake too. A store outage holds the partition, like a
            // ClickHouse outage does.
            let mut backoff = self.backoff();
            while let Err(err) = lake
                .write_range(&topic, partition, first, last, &events)
                .await
            {
                let delay = backoff.next_delay();
                tracing::warn!(%topic, partition, first, last, error = format!("{err:#}"), backoff_ms = delay.as_millis() as u64, "lake write failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
        // One INSERT is atomic only within one table partition (a UTC day of
        // `timestamp`): insert day runs, each a contiguous stretch of offsets,
        // in offset order, so `loader_progress` only ever moves forward over
        // fully stored stretches.
        let mut stored_through = None;
        for run in day_runs(&events, self.config.batch.max_rows) {
            let span = tracing::info_span!(
                "insert",
                table = %self.config.clickhouse.table,
                rows = run.len() as i64,
                first_offset = run.first().map(|(offset, _)| *offset),
                last_offset = run.last().map(|(offset, _)| *offset),
            );
            let stored = self
                .insert_run(&topic, partition, &batch, run)
                .instrument(span)
                .await?;
            stored_through = stored_through.max(stored);
        }
        if stored_through != Some(last) {
            // The batch's last records left no row (retries dropped, records
            // dead-lettered): say they are handled (see `record_loaded`).
            let mut backoff = self.backoff();
            while let Err(err) = self.sink.record_loaded(&topic, partition, last).await {
                self.status.set_clickhouse_up(false);
                let delay = backoff.next_delay();
                tracing::warn!(%topic, partition, last, error = format!("{err:#}"), backoff_ms = delay.as_millis() as u64, "recording progress failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
        self.status.set_clickhouse_up(true);
        Ok(())
    }

    /// Inserts one day run, retrying until ClickHouse has it. Returns the
    /// highest offset now stored as a row.
    async fn insert_run(
        &self,
        topic: &str,
        partition: i32,
        batch: &PartitionBatch,
        run: &[(i64, Event<'_>)],
    ) -> anyhow::Result<Option<i64>> {
        let (Some((first, _)), Some((last, _))) = (run.first(), run.last()) else {
            return Ok(None);
        };
        let (first, last) = (*first, *last);
        let token = dedup_token(topic, partition, first, last);
        // Chosen once: a retry must repeat the block exactly (see `sink`).
        let loaded_at = Timestamp::now();
        let mut backoff = self.backoff();
        loop {
            match self
                .sink
                .insert(topic, partition, run, &token, loaded_at)
                .await?
            {
                InsertOutcome::Inserted { rows, took } => {
                    crate::status::record_insert(rows, took);
                    self.crash_hook();
                    return Ok(Some(last));
                }
                InsertOutcome::Retryable(reason) => {
                    self.status.set_clickhouse_up(false);
                    let delay = backoff.next_delay();
                    tracing::warn!(topic, partition, first, last, %reason, backoff_ms = delay.as_millis() as u64, "insert failed; retrying");
                    tokio::time::sleep(delay).await;
                    // The failed insert may have been applied (e.g. a timeout
                    // after the server wrote it): check before inserting again.
                    if let Ok(progress) = self.sink.loaded_offsets(topic).await {
                        self.status.set_clickhouse_up(true);
                        if progress
                            .get(&partition)
                            .is_some_and(|loaded| *loaded >= last)
                        {
                            tracing::info!(
                                topic,
                                partition,
                                first,
                                last,
                                "run was applied before the failure; not inserting again"
                            );
                            return Ok(Some(last));
                        }
                    }
                }
                InsertOutcome::Permanent(reason) => {
                    tracing::warn!(topic, partition, first, last, %reason, "run refused as bad data; inserting row by row");
                    return self.insert_one_by_one(topic, partition, batch, run).await;
                }
            }
        }
    }

    /// Isolates the bad rows of a refused batch: each row is its own insert;
    /// rows refused as bad data go to the dead-letter topic. Returns the
    /// highest offset stored as a row.
    async fn insert_one_by_one(
        &self,
        topic: &str,
        partition: i32,
        batch: &PartitionBatch,
        events: &[(i64, Event<'_>)],
    ) -> anyhow::Result<Option<i64>> {
        let mut stored = None;
        for (offset, event) in events {
            let token = dedup_token(topic, partition, *offset, *offset);
            let loaded_at = Timestamp::now();
            let mut backoff = self.backoff();
            loop {
                match self
                    .sink
                    .insert(
                        topic,
                        partition,
                        std::slice::from_ref(&(*offset, event.clone())),
                        &token,
                        loaded_at,
                    )
                    .await?
                {
                    InsertOutcome::Inserted { rows, took } => {
                        crate::status::record_insert(rows, took);
                        stored = Some(*offset);
                        break;
                    }
                    InsertOutcome::Permanent(reason) => {
                        if let Some(record) = batch.records.iter().find(|r| r.offset == *offset) {
                            self.dead_letter(record, "clickhouse_rejected", &reason)
                                .await?;
                        }
                        break;
                    }
                    InsertOutcome::Retryable(reason) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(topic, partition, offset, %reason, backoff_ms = delay.as_millis() as u64, "row insert failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        Ok(stored)
    }

    async fn dead_letter(
        &self,
        record: &SourceRecord,
        code: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        crate::status::record_dead_letter();
        let offset = record.offset.to_string();
        let partition = record.partition.to_string();
        // The team from the stored event, so per-team readers of the
        // dead-letter topic (the console, `sluice dlq list --team`) see it.
        let team = team_of(&record.payload).unwrap_or_default();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: headers::TEAM,
                value: Some(&team),
            })
            .insert(Header {
                key: headers::OUTCOME,
                value: Some("dead_lettered"),
            })
            .insert(Header {
                key: headers::REJECT_CODE,
                value: Some(code),
            })
            .insert(Header {
                key: headers::REJECT_MESSAGE,
                value: Some(message),
            })
            .insert(Header {
                key: "sluice-source-partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "sluice-source-offset",
                value: Some(&offset),
            });
        let key = format!("{}:{partition}:{offset}", self.config.topic);
        let future = FutureRecord::to(&self.config.rejected_topic)
            .key(key.as_bytes())
            .payload(record.payload.as_slice())
            .headers(headers);
        self.dlq
            .send(future, Duration::from_secs(30))
            .await
            .map_err(|(err, _)| anyhow::anyhow!("writing to the dead-letter topic: {err}"))?;
        tracing::warn!(
            partition = record.partition,
            offset = record.offset,
            code,
            message,
            "record sent to the dead-letter topic"
        );
        Ok(())
    }
}

/// `team_id` of a stored event's JSON, if it has one.
fn team_of(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Team {
        team_id: String,
    }
    serde_json::from_slice::<Team>(payload)
        .ok()
        .map(|t| t.team_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> (i64, Event<'static>) {
        (
            ms,
            Event {
                event_id: uuid::Uuid::from_u128(ms as u128 + 1),
                team_id: "t".into(),
                event: "e".into(),
                user_id: "u".into(),
                timestamp: sluice_core::Timestamp::from_millis(ms),
                received_at: sluice_core::Timestamp::from_millis(ms),
                schema_version: 1,
                properties: sluice_core::event::empty_object(),
                context: None,
            },
        )
    }

    #[test]
    fn runs_break_at_every_change_of_utc_day() {
        let day = 86_400_000;
        let events = [at(day - 1), at(day - 2), at(day), at(day + 5), at(day - 3)];
        let runs: Vec<usize> = day_runs(&events, 1000).map(<[_]>::len).collect();
        assert_eq!(runs, [2, 2, 1]);
        let runs: Vec<usize> = day_runs(&events, 1).map(<[_]>::len).collect();
        assert_eq!(runs, [1, 1, 1, 1, 1], "and at most max_rows long");
    }
}
