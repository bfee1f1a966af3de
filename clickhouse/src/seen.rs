//! Rebuilding a partition's deduplication state ([`SeenIds`]) from the
//! events already stored, after a restart, a crash or a rebalance.
//!
//! The state is never persisted by the process that holds it: it is what
//! `event_ids` says was kept (written by the view `event_ids_mv` in the same
//! insert as `events`, see [`super::schema`]), so it cannot disagree with
//! ClickHouse and a `kill -9` loses nothing. The loader rebuilds from every
//! stored row of the partition (it resumes right after them); the aggregator
//! from the rows before the offset it resumes at, once the loader has stored
//! them ([`super::loaded_offsets`]).
//!
//! Cost: two queries, reading the partition's rows of the last `window +
//! slack` through the table's `(kafka_topic, kafka_partition, kafka_offset)`
//! order and its day partitions.

use serde::Deserialize;
use sluice_core::dedup::SeenIds;

use super::schema::EVENT_IDS_TABLE;
use super::{Error, quote, select_client};

/// Which of a partition's stored rows to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// Only rows below this offset (the aggregator's resume point); `None`
    /// for all of them.
    pub before_offset: Option<i64>,
}

impl Scope<'_> {
    fn filter(&self) -> String {
        let mut sql = format!(
            "kafka_topic = {} AND kafka_partition = {}",
            quote(self.topic),
            self.partition
        );
        if let Some(offset) = self.before_offset {
            sql.push_str(&format!(" AND kafka_offset < {offset}"));
        }
        sql
    }
}

/// `(newest received_at in seconds, rows)` of the scope.
pub fn newest_sql(scope: &Scope<'_>) -> String {
    format!(
        "SELECT toUInt32(max(received_at)) AS newest, count() AS rows FROM {EVENT_IDS_TABLE} WHERE {}",
        scope.filter()
    )
}

/// The kept events of the scope received at or after `from_secs`, in offset order.
pub fn ids_sql(scope: &Scope<'_>, from_secs: u32) -> String {
    format!(
        "SELECT team_id, event_id, toUInt32(received_at) AS received FROM {EVENT_IDS_TABLE} \
         WHERE {} AND received_at >= toDateTime({from_secs}) ORDER BY kafka_offset",
        scope.filter()
    )
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Newest {
    newest: u32,
    rows: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct IdRow<'a> {
    #[serde(borrow)]
    team_id: &'a str,
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: uuid::Uuid,
    received: u32,
}

/// Fills `seen` with the kept events of `scope` that can still match a
/// record; returns how many rows were read. `client` must point at the
/// loader's database.
pub async fn rebuild(
    client: &clickhouse::Client,
    scope: &Scope<'_>,
    seen: &mut SeenIds,
) -> Result<u64, Error> {
    let client = select_client(client);
    let newest: Newest = client
        .query(&newest_sql(scope))
        .fetch_one()
        .await
        .map_err(|e| Error::clickhouse("reading the newest stored event id failed", e))?;
    if newest.rows == 0 {
        return Ok(0);
    }
    let from = SeenIds::horizon(seen.window_secs(), newest.newest);
    let mut cursor = client
        .query(&ids_sql(scope, from))
        .fetch::<IdRow<'_>>()
        .map_err(|e| Error::clickhouse("reading stored event ids failed", e))?;
    let mut rows = 0;
    while let Some(row) = cursor
        .next()
        .await
        .map_err(|e| Error::clickhouse("reading stored event ids failed", e))?
    {
        let key = seen.key(row.team_id, row.event_id);
        seen.insert(key, row.received);
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_partition_and_the_resume_point() {
        let all = Scope {
            topic: "events.raw",
            partition: 3,
            before_offset: None,
        };
        let sql = ids_sql(&all, 1_000);
        assert!(
            sql.contains("kafka_topic = 'events.raw' AND kafka_partition = 3 AND received_at >= toDateTime(1000) ORDER BY kafka_offset"),
            "{sql}"
        );
        let before = Scope {
            before_offset: Some(42),
            ..all
        };
        assert!(newest_sql(&before).ends_with("kafka_partition = 3 AND kafka_offset < 42"));
    }
}
