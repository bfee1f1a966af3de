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
pub const PAUSED_PARTITIONS: &str = "sluice_loader_paused_partitions";
pub const RETENTION_DROPPED: &str = "sluice_loader_retention_partitions_dropped_total";
pub const RETENTION_RUNS: &str = "sluice_loader_retention_runs_total";
pub const DUPLICATES: &str = "sluice_loader_duplicates_total";
pub const DEDUP_ENTRIES: &str = "sluice_loader_dedup_entries";
pub const DEDUP_BYTES: &str = "sluice_loader_dedup_bytes";

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
    metrics::describe_counter!(
        DUPLICATES,
        "Records not stored because they repeat an event kept in the deduplication window, per team."
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
    metrics::describe_gauge!(CLICKHOUSE_UP, "1 when the last ClickHouse call succeeded.");
    metrics::describe_gauge!(CONSUMER_LAG, "Records not yet loaded, per partition.");
    metrics::describe_gauge!(ASSIGNED_PARTITIONS, "Partitions this instance loads.");
    metrics::describe_gauge!(
        PAUSED_PARTITIONS,
        "Partitions not fetched: their batch is full and waits for a busy (or down) ClickHouse shard."
    );
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

/// Counts dropped duplicates per team.
pub fn record_duplicates<'t>(teams: impl Iterator<Item = &'t str>) {
    let mut per_team: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for team in teams {
        *per_team.entry(team).or_default() += 1;
    }
    for (team, n) in per_team {
        counter!(DUPLICATES, "team" => team.to_owned()).increment(n);
    }
}

/// Publishes the size of the deduplication state.
pub fn record_dedup_state(sets: &std::collections::HashMap<i32, sluice_core::dedup::SeenIds>) {
    let entries: usize = sets.values().map(sluice_core::dedup::SeenIds::len).sum();
    let bytes: usize = sets
        .values()
        .map(sluice_core::dedup::SeenIds::memory_bytes)
        .sum();
    metrics::gauge!(DEDUP_ENTRIES).set(entries as f64);
    metrics::gauge!(DEDUP_BYTES).set(bytes as f64);
}
