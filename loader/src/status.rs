//! What the loader reports about itself: readiness and metrics.

use std::time::Duration;

use metrics::{counter, histogram};
use sluice_core::service::ConsumerStatus;

pub const ROWS_INSERTED: &str = "sluice_loader_rows_inserted_total";
pub const INSERT_DURATION: &str = "sluice_loader_insert_duration_seconds";
pub const BATCH_ROWS: &str = "sluice_loader_batch_rows";
pub const DEAD_LETTERED: &str = "sluice_loader_dead_lettered_total";
pub const CLICKHOUSE_UP: &str = "sluice_loader_clickhouse_up";
pub const CONSUMER_LAG: &str = "sluice_loader_consumer_lag";
pub const ASSIGNED_PARTITIONS: &str = "sluice_loader_assigned_partitions";
pub const RETENTION_DROPPED: &str = "sluice_loader_retention_partitions_dropped_total";
pub const RETENTION_RUNS: &str = "sluice_loader_retention_runs_total";

/// Readiness: ClickHouse answers, and the partitions held.
pub type Status = ConsumerStatus;

/// A fresh status reporting through this service's gauges.
pub fn new_status() -> Status {
    ConsumerStatus::new(CLICKHOUSE_UP, ASSIGNED_PARTITIONS)
}

/// Registers the descriptions of this service's metrics.
pub fn describe() {
    metrics::describe_counter!(ROWS_INSERTED, "Rows ClickHouse acknowledged.");
    metrics::describe_histogram!(
        INSERT_DURATION,
        metrics::Unit::Seconds,
        "Time of one insert."
    );
    metrics::describe_histogram!(BATCH_ROWS, "Rows per insert.");
    metrics::describe_counter!(DEAD_LETTERED, "Records sent to the dead-letter topic.");
    metrics::describe_gauge!(CLICKHOUSE_UP, "1 when the last ClickHouse call succeeded.");
    metrics::describe_gauge!(CONSUMER_LAG, "Records not yet loaded, per partition.");
    metrics::describe_gauge!(ASSIGNED_PARTITIONS, "Partitions this instance loads.");
    metrics::describe_counter!(
        RETENTION_DROPPED,
        "Expired day partitions dropped by scheduled retention."
    );
    metrics::describe_counter!(
        RETENTION_RUNS,
        "Scheduled retention passes, by outcome (ok, error)."
    );
}

pub fn record_insert(rows: usize, took: Duration) {
    counter!(ROWS_INSERTED).increment(rows as u64);
    histogram!(INSERT_DURATION).record(took);
    histogram!(BATCH_ROWS).record(rows as f64);
}

pub fn record_dead_letter() {
    counter!(DEAD_LETTERED).increment(1);
}
