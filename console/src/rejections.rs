//! Counts of rejected and dead-lettered events per team, 5-minute window,
//! outcome and reason code, kept in memory from the dead-letter topic.
//!
//! Dead letters are not in ClickHouse; the topic is where they are. Reading
//! it for every question cost hundreds of milliseconds of Kafka client
//! set-up alone, so one consumer per console reads it once: from
//! `rejections.window_days` back at start (the console is not ready until it
//! has caught up), then as records arrive. It assigns partitions directly
//! (no group, no commits). Memory is bounded: windows older than the span
//! are dropped, and past `rejections.max_entries` the oldest window goes
//! first; a question reaching into what was dropped is answered
//! `truncated`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use sluice_clickhouse::rollups::WINDOW_MS;
use sluice_core::Timestamp;
use sluice_core::kafka::{KafkaSettings, header_text, headers};

/// Counts of one window: team → (dead-lettered?, code) → records.
type Window = HashMap<String, BTreeMap<(bool, String), u64>>;

/// What [`RejectionIndex::counts`] answers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub rejected: BTreeMap<String, u64>,
    pub dead_lettered: BTreeMap<String, u64>,
    /// Part of the range was dropped (memory bound) or not read yet.
    pub truncated: bool,
}

#[derive(Debug)]
pub struct RejectionIndex {
    windows: Mutex<BTreeMap<i64, Window>>,
    entries: Mutex<usize>,
    /// Start of the newest window dropped for memory, or `i64::MIN`.
    dropped_before: AtomicI64,
    caught_up: AtomicBool,
    span_ms: i64,
    max_entries: usize,
}

impl RejectionIndex {
    pub fn new(window_days: u32, max_entries: usize) -> Self {
        Self {
            windows: Mutex::new(BTreeMap::new()),
            entries: Mutex::new(0),
            dropped_before: AtomicI64::new(i64::MIN),
            caught_up: AtomicBool::new(false),
            span_ms: i64::from(window_days) * 86_400_000,
            max_entries,
        }
    }

    /// Whether the topic has been read up to where it ended at start.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Counts of `team`'s records in the 5-minute windows overlapping
    /// `[from, to)`, by reason code.
    pub fn counts(&self, team: &str, from: Timestamp, to: Timestamp) -> Counts {
        let first = floor(from.as_millis());
        let kept_since = Timestamp::now().as_millis() - self.span_ms;
        let mut counts = Counts {
            truncated: first <= self.dropped_before.load(Ordering::Acquire)
                || first < floor(kept_since)
                || !self.is_caught_up(),
            ..Counts::default()
        };
        let windows = lock(&self.windows);
        for window in windows.range(first..to.as_millis()).map(|(_, w)| w) {
            let Some(codes) = window.get(team) else {
                continue;
            };
            for ((dead_lettered, code), n) in codes {
                let into = if *dead_lettered {
                    &mut counts.dead_lettered
                } else {
                    &mut counts.rejected
                };
                *into.entry(code.clone()).or_default() += n;
            }
        }
        counts
    }

    /// Counts one dead letter.
    pub fn add(&self, team: &str, at_ms: i64, dead_lettered: bool, code: &str) {
        let start = floor(at_ms);
        let mut windows = lock(&self.windows);
        let mut entries = lock(&self.entries);
        let codes = windows
            .entry(start)
            .or_default()
            .entry(team.to_owned())
            .or_default();
        let key = (dead_lettered, code.to_owned());
        if !codes.contains_key(&key) {
            *entries += 1;
        }
        *codes.entry(key).or_default() += 1;
        // Too old for the span (by the newest time seen), or too many.
        let newest = windows.keys().next_back().copied().unwrap_or(start);
        while let Some((&oldest, _)) = windows.first_key_value() {
            if oldest >= newest - self.span_ms && *entries <= self.max_entries {
                break;
            }
            if let Some(window) = windows.remove(&oldest) {
                *entries -= window.values().map(BTreeMap::len).sum::<usize>();
            }
            if oldest >= newest - self.span_ms {
                self.dropped_before.fetch_max(oldest, Ordering::AcqRel);
            }
        }
    }

    /// Reads `topic` from `window_days` back, then follows it; marks the
    /// index caught up once every partition reached its end at start.
    /// Runs until the process ends, retrying Kafka failures.
    pub async fn follow(self: std::sync::Arc<Self>, kafka: KafkaSettings, topic: String) {
        loop {
            match self.clone().read(&kafka, &topic).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(topic, error = %format!("{err:#}"), "reading dead letters failed; retrying in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }

    async fn read(
        self: std::sync::Arc<Self>,
        kafka: &KafkaSettings,
        topic: &str,
    ) -> anyhow::Result<()> {
        let since = Timestamp::from_millis(Timestamp::now().as_millis() - self.span_ms);
        let (settings, name) = (kafka.clone(), topic.to_owned());
        let ranges = tokio::task::spawn_blocking(move || {
            sluice_core::readback::ranges_since(&settings, &name, since)
        })
        .await??;
        // A restart of this loop starts over: forget what was counted.
        lock(&self.windows).clear();
        *lock(&self.entries) = 0;
        let mut pending: BTreeMap<i32, i64> = ranges
            .iter()
            .filter(|(_, (start, end))| start < end)
            .map(|(&partition, &(_, end))| (partition, end))
            .collect();
        let mut assignment = TopicPartitionList::new();
        for (&partition, &(start, _)) in &ranges {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
        }
        let mut config = kafka.client_config();
        config
            .set("group.id", "sluice-console-rejections")
            .set("enable.auto.commit", "false");
        let consumer: StreamConsumer = config.create()?;
        consumer.assign(&assignment)?;
        let total: i64 = ranges.values().map(|(start, end)| end - start).sum();
        tracing::info!(topic, records = total, "reading dead letters");
        self.mark_if_done(&pending);
        loop {
            let message = consumer.recv().await?;
            self.count(&message);
            if let Some(&end) = pending.get(&message.partition())
                && message.offset() + 1 >= end
            {
                pending.remove(&message.partition());
                self.mark_if_done(&pending);
            }
        }
    }

    fn mark_if_done(&self, pending: &BTreeMap<i32, i64>) {
        if pending.is_empty() && !self.caught_up.swap(true, Ordering::AcqRel) {
            tracing::info!("dead letters read; following new ones");
        }
    }

    fn count(&self, message: &BorrowedMessage<'_>) {
        let header = |name| header_text(message, name);
        // A record without a team (written before teams were recorded)
        // cannot be shown to anyone.
        let Some(team) = header(headers::TEAM).filter(|t| !t.is_empty()) else {
            return;
        };
        let at = message
            .timestamp()
            .to_millis()
            .unwrap_or_else(|| Timestamp::now().as_millis());
        let dead_lettered = header(headers::OUTCOME) == Some("dead_lettered");
        let code = header(headers::REJECT_CODE).unwrap_or("unknown");
        self.add(team, at, dead_lettered, code);
    }
}

fn floor(ms: i64) -> i64 {
    ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counting cannot leave the maps half-updated in a way that matters.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn counts_by_team_outcome_and_code_in_the_windows_of_a_range() {
        let index = RejectionIndex::new(31, 1_000);
        index.caught_up.store(true, Ordering::Release);
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % WINDOW_MS;
        index.add("a", t0 + MIN, false, "schema_violation");
        index.add("a", t0 + 2 * MIN, false, "schema_violation");
        index.add("a", t0 + 6 * MIN, true, "plugin_failed");
        index.add("b", t0 + MIN, false, "schema_violation");
        index.add("a", t0 + 20 * MIN, false, "invalid_event_name");
        let counts = index.counts("a", ts(t0 + 3 * MIN), ts(t0 + 10 * MIN));
        // The window of t0 overlaps the range: its two records count.
        assert_eq!(
            counts.rejected,
            BTreeMap::from([("schema_violation".to_owned(), 2)])
        );
        assert_eq!(
            counts.dead_lettered,
            BTreeMap::from([("plugin_failed".to_owned(), 1)])
        );
        assert!(!counts.truncated);
        assert_eq!(
            index.counts("c", ts(t0), ts(t0 + 30 * MIN)),
            Counts::default()
        );
    }

    #[test]
    fn memory_stays_bounded_and_answers_reaching_into_dropped_windows_say_so() {
        let index = RejectionIndex::new(31, 3);
        index.caught_up.store(true, Ordering::Release);
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % WINDOW_MS;
        for i in 0..10 {
            index.add("a", t0 + i * WINDOW_MS, false, "x");
        }
        assert!(*lock(&index.entries) <= 3);
        assert!(index.counts("a", ts(t0), ts(t0 + 10 * WINDOW_MS)).truncated);
        let recent = index.counts("a", ts(t0 + 8 * WINDOW_MS), ts(t0 + 10 * WINDOW_MS));
        assert!(!recent.truncated);
        assert_eq!(recent.rejected, BTreeMap::from([("x".to_owned(), 2)]));
        // Older than the span: dropped without making newer answers partial.
        let index = RejectionIndex::new(1, 1_000);
        index.add("a", t0, false, "old");
        index.add("a", t0 + 2 * 86_400_000, false, "new");
        assert_eq!(lock(&index.windows).len(), 1);
    }
}
