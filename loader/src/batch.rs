//! Deterministic batches: each batch is a contiguous offset range of ONE
//! partition. After a crash the loader re-reads from the committed offset and
//! rebuilds the same ranges, so a batch that was already inserted is
//! recognised by its range (insert deduplication token on modern servers,
//! the `loader_progress` offsets everywhere).

use std::time::{Duration, Instant};

use sluice_core::trace::TraceLinks;

/// One Kafka record, owned (its bytes outlive the consumer's buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}

/// Records of one partition waiting to be inserted.
#[derive(Debug)]
pub struct PartitionBatch {
    pub partition: i32,
    pub records: Vec<SourceRecord>,
    pub bytes: usize,
    /// The requests that produced these records, for the batch span.
    pub links: TraceLinks,
    started: Instant,
}

impl PartitionBatch {
    pub fn new(partition: i32) -> Self {
        Self {
            partition,
            records: Vec::new(),
            bytes: 0,
            links: TraceLinks::default(),
            started: Instant::now(),
        }
    }

    pub fn push(&mut self, record: SourceRecord) {
        if self.records.is_empty() {
            self.started = Instant::now();
        }
        self.bytes += record.payload.len();
        self.records.push(record);
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// `(first, last)` offsets, inclusive.
    pub fn range(&self) -> Option<(i64, i64)> {
        Some((self.records.first()?.offset, self.records.last()?.offset))
    }

    /// Full by rows or bytes, or old enough to go.
    pub fn is_due(&self, max_rows: usize, max_bytes: usize, max_wait: Duration) -> bool {
        !self.is_empty()
            && (self.records.len() >= max_rows
                || self.bytes >= max_bytes
                || self.started.elapsed() >= max_wait)
    }

    /// How long its oldest record has waited (zero when empty).
    pub fn age(&self) -> Duration {
        if self.is_empty() {
            Duration::ZERO
        } else {
            self.started.elapsed()
        }
    }

    /// Time until the oldest record's batch must be flushed.
    pub fn due_in(&self, max_wait: Duration) -> Option<Duration> {
        (!self.is_empty()).then(|| max_wait.saturating_sub(self.started.elapsed()))
    }
}

/// The deduplication token of a range: stable across retries and restarts.
pub fn dedup_token(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!("{topic}:{partition}:{first}-{last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, size: usize) -> SourceRecord {
        SourceRecord {
            partition: 3,
            offset,
            payload: vec![b'x'; size],
        }
    }

    #[test]
    fn a_batch_is_due_by_rows_bytes_or_age() {
        let mut batch = PartitionBatch::new(3);
        assert!(
            !batch.is_due(2, 100, Duration::ZERO),
            "an empty batch is never due"
        );
        batch.push(record(10, 10));
        assert!(!batch.is_due(2, 100, Duration::from_secs(60)));
        assert!(batch.is_due(2, 10, Duration::from_secs(60)), "bytes");
        batch.push(record(11, 10));
        assert!(batch.is_due(2, 100, Duration::from_secs(60)), "rows");
        assert!(batch.is_due(100, 1000, Duration::ZERO), "age");
        assert_eq!(batch.range(), Some((10, 11)));
    }

    #[test]
    fn tokens_name_the_range() {
        assert_eq!(dedup_token("events.raw", 3, 10, 11), "events.raw:3:10-11");
    }
}
