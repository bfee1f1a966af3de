//! What the loader reports about itself: readiness and metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics::{counter, gauge, histogram};

pub const ROWS_INSERTED: &str = "sluice_loader_rows_inserted_total";
pub const INSERT_DURATION: &str = "sluice_loader_insert_duration_seconds";
pub const BATCH_ROWS: &str = "sluice_loader_batch_rows";
pub const DEAD_LETTERED: &str = "sluice_loader_dead_lettered_total";
pub const CLICKHOUSE_UP: &str = "sluice_loader_clickhouse_up";
pub const CONSUMER_LAG: &str = "sluice_loader_consumer_lag";
pub const ASSIGNED_PARTITIONS: &str = "sluice_loader_assigned_partitions";

#[derive(Debug, Default)]
pub struct Status {
    clickhouse_up: AtomicBool,
    assigned: Mutex<Vec<i32>>,
}

impl Status {
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
    }

    pub fn set_clickhouse_up(&self, up: bool) {
        self.clickhouse_up.store(up, Ordering::Relaxed);
        gauge!(CLICKHOUSE_UP).set(f64::from(u8::from(up)));
    }

    pub fn clickhouse_up(&self) -> bool {
        self.clickhouse_up.load(Ordering::Relaxed)
    }

    pub fn set_assigned(&self, partitions: Vec<i32>) {
        gauge!(ASSIGNED_PARTITIONS).set(partitions.len() as f64);
        if let Ok(mut assigned) = self.assigned.lock() {
            *assigned = partitions;
        }
    }

    pub fn assigned(&self) -> Vec<i32> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn record_insert(&self, rows: usize, took: Duration) {
        counter!(ROWS_INSERTED).increment(rows as u64);
        histogram!(INSERT_DURATION).record(took);
        histogram!(BATCH_ROWS).record(rows as f64);
    }

    pub fn record_dead_letter(&self) {
        counter!(DEAD_LETTERED).increment(1);
    }

    /// Ready: ClickHouse answers (the loop is not stuck retrying).
    pub fn is_ready(&self) -> bool {
        self.clickhouse_up()
    }
}
