//! How far the loader has already got, per partition.
//!
//! Every insert into `events` also writes, through the materialised view
//! `loader_progress_mv`, the highest Kafka offset of that insert per
//! partition into `loader_progress` (same insert, no extra round trip). After
//! a crash or rebalance the loader asks [`loaded_offsets`] and skips every
//! record at or below the answer, which makes re-reading a range idempotent
//! on servers without insert deduplication. The table holds one row per
//! partition once merged (a few per partition before), so the query is cheap
//! however large `events` grows.

use std::collections::BTreeMap;

use super::schema::PROGRESS_TABLE;
use super::{Error, quote, select_client};

/// The query [`loaded_offsets`] runs, against the client's database:
/// `(kafka_partition Int32, max_offset Int64)` per partition of `topic`.
pub fn loaded_offsets_sql(topic: &str) -> String {
    format!(
        "SELECT kafka_partition, maxMerge(max_offset) AS max_offset \
         FROM {PROGRESS_TABLE} WHERE kafka_topic = {} \
         GROUP BY kafka_partition ORDER BY kafka_partition",
        quote(topic)
    )
}

/// The highest offset already stored per partition of `topic`; partitions
/// never loaded are absent. `client` must point at the loader's database
/// (`Client::with_database`).
pub async fn loaded_offsets(
    client: &clickhouse::Client,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, Error> {
    let rows: Vec<(i32, i64)> = select_client(client)
        .query_raw(&loaded_offsets_sql(topic))
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("loaded offsets query failed", e))?;
    Ok(rows.into_iter().collect())
}

/// The statement [`record_loaded`] runs: one state row saying `offset` is
/// covered, counting no rows.
pub fn record_loaded_sql(topic: &str, partition: i32, offset: i64) -> String {
    format!(
        "INSERT INTO {PROGRESS_TABLE} SELECT {}, {partition}, maxState(toInt64({offset})), \
         countStateIf(0), maxState(toDateTime(now(), 'UTC'))",
        quote(topic)
    )
}

/// Records that every record of `partition` up to `offset` is handled,
/// when the last of them produced no row (retries dropped, dead-lettered
/// records): otherwise `loader_progress` would stop at the last row, a
/// restart would re-read (and re-decide) the tail, and the aggregator,
/// which waits for the loader to pass its resume point, would wait for the
/// next stored row. Idempotent (a maximum).
pub async fn record_loaded(
    client: &clickhouse::Client,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), Error> {
    client
        .query(&record_loaded_sql(topic, partition, offset))
        .execute()
        .await
        .map_err(|e| Error::clickhouse("recording load progress failed", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_is_quoted() {
        let sql = loaded_offsets_sql("it's");
        assert!(sql.contains("kafka_topic = 'it\\'s'"), "{sql}");
        assert!(sql.starts_with("SELECT kafka_partition, maxMerge(max_offset)"));
    }
}
