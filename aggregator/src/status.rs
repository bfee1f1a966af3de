//! What the aggregator reports about itself: readiness and metrics.

use std::time::Duration;

use metrics::{counter, histogram};
use sluice_core::service::ConsumerStatus;

pub const EVENTS_AGGREGATED: &str = "sluice_aggregator_events_total";
pub const LATE_EVENTS: &str = "sluice_aggregator_late_events_total";
pub const SKIPPED_EVENTS: &str = "sluice_aggregator_already_stored_events_total";
pub const UNDECODABLE: &str = "sluice_aggregator_undecodable_records_total";
pub const ROWS_INSERTED: &str = "sluice_aggregator_rows_inserted_total";
pub const INSERT_DURATION: &str = "sluice_aggregator_insert_duration_seconds";
pub const WINDOW_DELAY: &str = "sluice_aggregator_window_delay_seconds";
pub const OPEN_KEYS: &str = "sluice_aggregator_open_keys";
pub const CLICKHOUSE_UP: &str = "sluice_aggregator_clickhouse_up";
pub const CONSUMER_LAG: &str = "sluice_aggregator_consumer_lag";
pub const ASSIGNED_PARTITIONS: &str = "sluice_aggregator_assigned_partitions";
pub const RETENTION_DROPPED: &str = "sluice_aggregator_retention_partitions_dropped_total";
pub const RETENTION_RUNS: &str = "sluice_aggregator_retention_runs_total";
pub const DUPLICATES: &str = "sluice_aggregator_duplicates_total";
pub const DEDUP_ENTRIES: &str = "sluice_aggregator_dedup_entries";
pub const DEDUP_BYTES: &str = "sluice_aggregator_dedup_bytes";
pub const WAITING_FOR_LOADER: &str = "sluice_aggregator_partitions_waiting_for_loader";

/// Readiness: ClickHouse answers, and the partitions held.
pub type Status = ConsumerStatus;

/// A fresh status reporting through this service's gauges.
pub fn new_status() -> Status {
    ConsumerStatus::new(CLICKHOUSE_UP, ASSIGNED_PARTITIONS)
}

/// Registers the descriptions of this service's metrics.
pub fn describe() {
    metrics::describe_counter!(EVENTS_AGGREGATED, "Events counted into windows.");
    metrics::describe_counter!(
        LATE_EVENTS,
        "Events that arrived after their window closed (written as corrections)."
    );
    metrics::describe_counter!(
        SKIPPED_EVENTS,
        "Re-read events skipped because a stored rollup row already counts them."
    );
    metrics::describe_counter!(UNDECODABLE, "Records that are not the event contract.");
    metrics::describe_counter!(
        DUPLICATES,
        "Records not counted because they repeat an event kept in the deduplication window, per team."
    );
    metrics::describe_gauge!(
        DEDUP_ENTRIES,
        "Kept events in the deduplication window, all assigned partitions."
    );
    metrics::describe_gauge!(
        DEDUP_BYTES,
        metrics::Unit::Bytes,
        "Memory of the deduplication state, all assigned partitions."
    );
    metrics::describe_gauge!(
        WAITING_FOR_LOADER,
        "Partitions whose deduplication state waits for the loader to store the records before the resume point."
    );
    metrics::describe_counter!(ROWS_INSERTED, "Rollup rows ClickHouse acknowledged.");
    metrics::describe_histogram!(
        INSERT_DURATION,
        metrics::Unit::Seconds,
        "Time of one flush's inserts."
    );
    metrics::describe_histogram!(
        WINDOW_DELAY,
        metrics::Unit::Seconds,
        "From a window's end plus allowed lateness to its rows stored."
    );
    metrics::describe_gauge!(OPEN_KEYS, "Keys held in open windows.");
    metrics::describe_gauge!(CLICKHOUSE_UP, "1 when the last ClickHouse call succeeded.");
    metrics::describe_gauge!(
        CONSUMER_LAG,
        "Records not yet read, per partition (high watermark - position)."
    );
    metrics::describe_gauge!(ASSIGNED_PARTITIONS, "Partitions this instance aggregates.");
    metrics::describe_counter!(
        RETENTION_DROPPED,
        "Expired day partitions of rollups_5m dropped (servers without TTL)."
    );
    metrics::describe_counter!(RETENTION_RUNS, "Retention passes, by outcome.");
}

pub fn record_insert(rows: usize, took: Duration) {
    counter!(ROWS_INSERTED).increment(rows as u64);
    histogram!(INSERT_DURATION).record(took);
}
