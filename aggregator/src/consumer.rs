//! The aggregation loop: Kafka → windows per partition → ClickHouse → commit.
//!
//! ## Guarantee
//! Every record of `events.raw` is counted exactly once in `rollups_5m`
//! (and so in the views fed from it) through crashes at any point,
//! ClickHouse outages and rebalances:
//!
//! 1. Each partition's events are counted in offset order into windows
//!    ([`crate::window`]). A closed window is written as one row per key
//!    carrying the Kafka partition and the highest offset it covers.
//! 2. The offset committed to Kafka is the first one still held only in
//!    memory (the oldest open window's first event), and only after every
//!    row before it was acknowledged by ClickHouse.
//! 3. A partition's new owner (after a crash or a rebalance) re-reads from
//!    that commit. Before counting, it loads the rows already stored for
//!    the partition at or after the first offset it receives, and skips each
//!    event that such a row covers; the rest it counts again. The rows of a
//!    key cover a prefix of its events, so this is exact per event.
//! 4. After a failed insert (which the server may have applied anyway) the
//!    loop re-reads what is stored before retrying, and drops rows already
//!    there. Where the server has insert deduplication, the insert also
//!    carries a content token, so a retry racing a late-applied original is
//!    dropped by ClickHouse and its views.
//! 5. Rebalancing is eager and this loop never polls while an insert is in
//!    flight, so a revoked partition's rows are stored (or abandoned, to be
//!    re-read) before its new owner starts.
//!
//! ## Retries of an event
//! A record that repeats an event already kept ([`sluice_core::dedup`]: same
//! team and `event_id` within the window, first copy wins) is not counted.
//! The decision is the loader's, made by the same rule over the same
//! partition, so rollups and DAU count exactly the rows of `events`. On
//! assignment the state is rebuilt from the loader's `event_ids` below the
//! offset this loop resumes at; records from there on are decided again as
//! they are re-read. That needs the loader to have stored everything before
//! the resume point, so a partition waits for `loader_progress` to reach it
//! (`sluice_aggregator_partitions_waiting_for_loader`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use metrics::{counter, gauge, histogram};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use sluice_core::backoff::Backoff;
use sluice_core::clock::{Clock, SystemClock};
use sluice_core::dedup::{Seen, SeenIds};
use sluice_core::service::RebalanceLog;
use sluice_core::trace::TraceLinks;
use tracing::Instrument;

use crate::clickhouse::{InsertOutcome, RollupStore};
use crate::config::AggregatorConfig;
use crate::record;
use crate::status::{self, Status};
use crate::window::{Emission, Observed, PartitionWindows, WINDOW_MS};

/// Test hook (outside the `SLUICE_AGGREGATOR_` prefix, so it is never
/// configuration): abort the process right after this many inserts were
/// acknowledged, before the offsets are committed (the worst moment to crash).
pub const CRASH_AFTER_INSERTS_ENV: &str = "SLUICE_TEST_AGGREGATOR_CRASH_AFTER_INSERTS";

const LAG_PERIOD: Duration = Duration::from_secs(5);

/// One assigned partition.
#[derive(Debug)]
struct PartitionState {
    windows: PartitionWindows,
    /// Stored rows loaded (on the first record after assignment).
    recovered: bool,
    last_record: Instant,
    /// Next offset to read.
    position: i64,
    committed: i64,
    /// Requests that produced the events read since the last rollup insert.
    links: TraceLinks,
    /// Kept events of the deduplication window (when on), from recovery.
    seen: Option<SeenIds>,
}

/// Everything but the consumer, so a borrowed message and the state can be
/// used together.
struct Engine {
    config: AggregatorConfig,
    store: RollupStore,
    status: Arc<Status>,
    clock: Arc<dyn Clock>,
    partitions: BTreeMap<i32, PartitionState>,
    inserts: u64,
    crash_after_inserts: Option<u64>,
    counters: Counters,
}

/// Per-record counters, registered once: looking a metric up by name on
/// every record would cost more than counting the record.
struct Counters {
    counted: metrics::Counter,
    late: metrics::Counter,
    already_stored: metrics::Counter,
    undecodable: metrics::Counter,
}

impl Counters {
    fn new() -> Self {
        Self {
            counted: counter!(status::EVENTS_AGGREGATED),
            late: counter!(status::LATE_EVENTS),
            already_stored: counter!(status::SKIPPED_EVENTS),
            undecodable: counter!(status::UNDECODABLE),
        }
    }
}

pub struct Aggregator {
    consumer: StreamConsumer<RebalanceLog>,
    rebalances: RebalanceLog,
    engine: Engine,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("topic", &self.engine.config.topic)
            .finish_non_exhaustive()
    }
}

impl Aggregator {
    pub async fn new(config: AggregatorConfig, status: Arc<Status>) -> anyhow::Result<Self> {
        let store = RollupStore::connect(&config.clickhouse).await?;
        status.set_clickhouse_up(true);
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
        let crash_after_inserts = std::env::var(CRASH_AFTER_INSERTS_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        Ok(Self {
            consumer,
            rebalances,
            engine: Engine {
                config,
                store,
                status,
                clock: Arc::new(SystemClock),
                partitions: BTreeMap::new(),
                inserts: 0,
                crash_after_inserts,
                counters: Counters::new(),
            },
        })
    }

    /// Runs until `shutdown` resolves; then writes the windows that are
    /// closed and commits. Open windows are left to be re-read.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let _retention: Vec<_> = self
            .engine
            .store
            .retention()
            .into_iter()
            .map(|job| job.spawn(sluice_clickhouse::RETENTION_PERIOD))
            .collect();
        let interval = Duration::from_millis(self.engine.config.flush.interval_ms);
        let mut next_flush = Instant::now() + interval;
        let flush_timer = tokio::time::sleep_until(next_flush.into());
        tokio::pin!(flush_timer);
        let mut last_lag = Instant::now();
        loop {
            // One timer for the loop rather than one per record: under load a
            // record is always ready, and the clock check below does the rest.
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        apply_rebalances(&self.rebalances, &mut self.engine);
                        // Raced with shutdown: a partition's recovery may
                        // wait for the loader (see the module's docs).
                        tokio::select! {
                            biased;
                            () = &mut shutdown => break,
                            accepted = self.engine.accept(&message) => accepted?,
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "Kafka consumer error"),
                },
                () = &mut flush_timer => {}
            }
            if Instant::now() >= next_flush {
                apply_rebalances(&self.rebalances, &mut self.engine);
                if !self.engine.flush(&self.consumer, &mut shutdown).await? {
                    return Ok(());
                }
                next_flush = Instant::now() + interval;
                flush_timer.as_mut().reset(next_flush.into());
            }
            if last_lag.elapsed() >= LAG_PERIOD {
                self.engine.report_lag(&self.consumer);
                last_lag = Instant::now();
            }
        }
        tracing::info!("shutting down: writing closed windows");
        apply_rebalances(&self.rebalances, &mut self.engine);
        let never = std::future::pending::<()>();
        tokio::pin!(never);
        // Bounded: the store retries with backoff; a second signal is not
        // awaited here, the process manager's kill is the backstop.
        tokio::select! {
            flushed = self.engine.flush(&self.consumer, &mut never) => { flushed?; }
            () = tokio::time::sleep(Duration::from_secs(10)) => {
                tracing::warn!("ClickHouse did not take the closed windows in 10 s; they will be re-read");
            }
        }
        Ok(())
    }
}

fn apply_rebalances(log: &RebalanceLog, engine: &mut Engine) {
    let log = log.take();
    if log.revoked.is_empty() && log.assigned.is_empty() {
        return;
    }
    for partition in &log.revoked {
        // Open windows are dropped: the new owner re-reads them from the
        // commit (guarantee, point 3).
        engine.partitions.remove(partition);
    }
    for partition in &log.assigned {
        engine.partitions.insert(
            *partition,
            PartitionState {
                windows: PartitionWindows::new(engine.config.window.allowed_lateness_ms as i64),
                recovered: false,
                last_record: Instant::now(),
                position: -1,
                committed: -1,
                links: TraceLinks::default(),
                seen: None,
            },
        );
    }
    tracing::info!(revoked = ?log.revoked, assigned = ?log.assigned, "rebalanced");
    engine
        .status
        .set_assigned(engine.partitions.keys().copied().collect());
}

/// Waits until the loader has stored every record of `partition` before
/// `offset`, so that its `event_ids` hold every kept event the state needs.
async fn wait_for_loader(
    store: &RollupStore,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut waiting = false;
    let mut last_log: Option<Instant> = None;
    let mut backoff = Backoff::from_millis(100, 2_000);
    let result = loop {
        match store.loader_progress(topic).await {
            Ok(progress) => {
                let loaded = progress.get(&partition).copied().unwrap_or(-1);
                if loaded >= offset - 1 {
                    break Ok(());
                }
                if last_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        partition,
                        resume_offset = offset,
                        loader_offset = loaded,
                        waited_s = started.elapsed().as_secs(),
                        "waiting for the loader to store the records before the resume point (deduplication state)"
                    );
                    last_log = Some(Instant::now());
                }
            }
            // Tables not created yet (no loader has started): wait as well.
            Err(err) => {
                tracing::debug!(partition, error = %format!("{err:#}"), "loader progress not readable yet")
            }
        }
        if !waiting {
            waiting = true;
            gauge!(status::WAITING_FOR_LOADER).increment(1.0);
        }
        tokio::time::sleep(backoff.next_delay()).await;
    };
    if waiting {
        gauge!(status::WAITING_FOR_LOADER).decrement(1.0);
    }
    result
}

impl Engine {
    async fn accept(&mut self, message: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        let (partition, offset) = (message.partition(), message.offset());
        let Some(state) = self.partitions.get_mut(&partition) else {
            // Fetched before a revocation: its new owner reads it.
            return Ok(());
        };
        if !state.recovered {
            let (store, topic) = (&self.store, self.config.topic.as_str());
            // A ClickHouse hiccup delays the partition's recovery instead of
            // ending the service (the same waits as a failed insert's).
            let flush = &self.config.flush;
            let backoff = Backoff::from_millis(flush.min_backoff_ms, flush.max_backoff_ms);
            let stored = backoff
                .clone()
                .retry("reading the stored rollups", || {
                    store.stored_since(topic, partition, offset)
                })
                .await;
            tracing::info!(
                partition,
                from_offset = offset,
                stored_rows = stored.len(),
                "resuming partition"
            );
            state.windows.skip_emitted(stored);
            if self.config.dedup.enabled() {
                let mut seen = self.config.dedup.new_set();
                if offset > 0 {
                    let started = Instant::now();
                    wait_for_loader(store, topic, partition, offset).await?;
                    let rows;
                    (seen, rows) = backoff
                        .retry("rebuilding the deduplication state", || async {
                            let mut seen = self.config.dedup.new_set();
                            let rows = store
                                .rebuild_seen(topic, partition, offset, &mut seen)
                                .await?;
                            anyhow::Ok((seen, rows))
                        })
                        .await;
                    tracing::info!(
                        partition,
                        before_offset = offset,
                        rows,
                        kept = seen.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "deduplication state rebuilt from the loader's rows"
                    );
                }
                state.seen = Some(seen);
            }
            state.recovered = true;
        }
        state.last_record = Instant::now();
        state.position = offset + 1;
        state
            .links
            .add_header(sluice_core::kafka::traceparent_header(message));
        let fields = match record::decode(message.payload().unwrap_or_default()) {
            Ok(fields) => fields,
            Err(err) => {
                // The loader dead-letters such records; here they only count.
                self.counters.undecodable.increment(1);
                tracing::debug!(partition, offset, error = %err, "record is not the event contract");
                return Ok(());
            }
        };
        if let Some(seen) = &mut state.seen {
            let key = seen.key(&fields.team_id, fields.event_id);
            let received = sluice_core::dedup::secs(fields.received_at.as_millis());
            if seen.observe(key, received) == Seen::Duplicate {
                counter!(status::DUPLICATES, "team" => fields.team_id.to_string()).increment(1);
                tracing::debug!(partition, offset, team = %fields.team_id, event_id = %fields.event_id, "retry of a kept event: not counted");
                return Ok(());
            }
        }
        match state.windows.observe(
            offset,
            fields.timestamp.as_millis(),
            fields.received_at.as_millis(),
            fields.key(),
        ) {
            Observed::Counted => self.counters.counted.increment(1),
            Observed::Late => {
                self.counters.counted.increment(1);
                self.counters.late.increment(1);
            }
            Observed::AlreadyEmitted => self.counters.already_stored.increment(1),
        }
        Ok(())
    }

    /// Writes every closed window and commits what is safe. `Ok(false)` when
    /// `shutdown` fired while waiting for ClickHouse.
    async fn flush(
        &mut self,
        consumer: &StreamConsumer<RebalanceLog>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> anyhow::Result<bool> {
        let now_ms = self.clock.now().as_millis();
        let idle = Duration::from_millis(self.config.window.idle_timeout_ms);
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        let mut open_keys = 0;
        for partition in partitions {
            let Some(state) = self.partitions.get_mut(&partition) else {
                continue;
            };
            if !state.recovered {
                continue;
            }
            if state.last_record.elapsed() >= idle {
                state
                    .windows
                    .advance_to(now_ms - self.config.window.idle_timeout_ms as i64);
            }
            let emissions = state.windows.take_closed(self.config.window.max_open_keys);
            let commit = state.windows.commit_offset();
            open_keys += state.windows.open_keys();
            if !emissions.is_empty() {
                // Linked to the requests whose events were read since the
                // last insert (capped, see `sluice_core::trace::MAX_LINKS`).
                let span = tracing::info_span!(
                    "rollup_batch",
                    messaging.destination.name = %self.config.topic,
                    partition,
                    rows = emissions.len() as i64,
                    max_offset = emissions.iter().map(|e| e.max_offset).max(),
                    table = crate::clickhouse::schema::ROLLUPS_5M,
                    linked_traces = state.links.len() as i64,
                );
                state.links.attach(&span);
                if !self
                    .store_rows(partition, emissions, shutdown)
                    .instrument(span)
                    .await?
                {
                    return Ok(false);
                }
            }
            let Some(state) = self.partitions.get_mut(&partition) else {
                continue;
            };
            if let Some(commit) = commit
                && commit > state.committed
            {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&self.config.topic, partition, Offset::Offset(commit))?;
                // Async is enough: a lost commit only means more re-reading,
                // which the stored rows make exact (guarantee, point 3).
                match consumer.commit(&tpl, CommitMode::Async) {
                    Ok(()) => state.committed = commit,
                    Err(err) => {
                        tracing::warn!(partition, error = %err, "offset commit failed; will retry")
                    }
                }
            }
        }
        gauge!(status::OPEN_KEYS).set(open_keys as f64);
        let sets = self.partitions.values().filter_map(|p| p.seen.as_ref());
        let (entries, bytes) = sets.fold((0, 0), |(n, b), s| (n + s.len(), b + s.memory_bytes()));
        gauge!(status::DEDUP_ENTRIES).set(entries as f64);
        gauge!(status::DEDUP_BYTES).set(bytes as f64);
        Ok(true)
    }

    /// Stores `emissions` of one partition, retrying until ClickHouse has
    /// them. `Ok(false)` if `shutdown` fired first (they are then re-read by
    /// the next owner).
    async fn store_rows(
        &mut self,
        partition: i32,
        mut emissions: Vec<Emission>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> anyhow::Result<bool> {
        let flush = &self.config.flush;
        let mut backoff = Backoff::from_millis(flush.min_backoff_ms, flush.max_backoff_ms);
        // Chosen once: a retry must repeat the block exactly, so that a
        // replicated table recognises it if the failed attempt landed.
        let emitted_at = self.clock.now().as_millis();
        loop {
            let outcome = self
                .store
                .insert(
                    &self.config.topic,
                    partition,
                    &emissions,
                    crate::clickhouse::rows::seconds(emitted_at),
                )
                .await;
            let retryable = matches!(outcome, InsertOutcome::Retryable(_));
            match outcome {
                InsertOutcome::Inserted { rows, took } => {
                    self.status.set_clickhouse_up(true);
                    crate::status::record_insert(rows, took);
                    let lateness = self.config.window.allowed_lateness_ms as i64;
                    for e in emissions.iter().filter(|e| !e.late) {
                        let due = e.window_start_ms + WINDOW_MS + lateness;
                        histogram!(status::WINDOW_DELAY)
                            .record(((emitted_at - due).max(0) as f64) / 1000.0);
                    }
                    self.inserts += 1;
                    if self.crash_after_inserts == Some(self.inserts) {
                        sluice_core::service::crash_now(&format!(
                            "{CRASH_AFTER_INSERTS_ENV}={} reached, before the commit",
                            self.inserts
                        ));
                    }
                    return Ok(true);
                }
                InsertOutcome::Retryable(reason) | InsertOutcome::Permanent(reason) => {
                    self.status.set_clickhouse_up(false);
                    let delay = backoff.next_delay();
                    if retryable {
                        tracing::warn!(partition, %reason, backoff_ms = delay.as_millis() as u64, "rollup insert failed; retrying");
                    } else {
                        tracing::error!(partition, %reason, backoff_ms = delay.as_millis() as u64, "ClickHouse refused rollup rows; retrying until an operator fixes the cause");
                    }
                    tokio::select! {
                        () = &mut *shutdown => return Ok(false),
                        () = tokio::time::sleep(delay) => {}
                    }
                    // The failed insert may have been applied: keep only what
                    // is not stored (guarantee, point 4).
                    let from = emissions.iter().map(|e| e.max_offset).min().unwrap_or(0);
                    match self
                        .store
                        .stored_since(&self.config.topic, partition, from)
                        .await
                    {
                        Ok(stored) => {
                            let stored: std::collections::HashMap<_, _> = stored
                                .into_iter()
                                .map(|(start, key, max)| ((start, key), max))
                                .collect();
                            emissions.retain(|e| {
                                stored
                                    .get(&(e.window_start_ms, e.key.clone()))
                                    .is_none_or(|max| *max < e.max_offset)
                            });
                            if emissions.is_empty() {
                                tracing::info!(partition, "rows were stored before the failure");
                                return Ok(true);
                            }
                        }
                        Err(err) => {
                            tracing::warn!(partition, error = %format!("{err:#}"), "cannot read stored rollups yet")
                        }
                    }
                }
            }
        }
    }

    fn report_lag(&self, consumer: &StreamConsumer<RebalanceLog>) {
        for (partition, state) in &self.partitions {
            let watermarks = tokio::task::block_in_place(|| {
                consumer.fetch_watermarks(&self.config.topic, *partition, Duration::from_secs(1))
            });
            if let Ok((low, high)) = watermarks {
                let position = if state.position < 0 {
                    state.committed.max(low)
                } else {
                    state.position
                };
                let lag = (high - position).max(0);
                gauge!(status::CONSUMER_LAG, "partition" => partition.to_string()).set(lag as f64);
            }
        }
    }
}
