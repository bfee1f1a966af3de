//! The aggregator's view of ClickHouse: connect (probe + migrate), insert
//! emissions, and read back what is already stored for a partition.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sluice_clickhouse::{self as ch, Capabilities, InsertError, InsertOutcome};

use super::rows::{RollupRow, encode_row};
use super::schema::{COMPONENT, ROLLUP_COLUMNS, ROLLUPS_5M, migrations};
use crate::config::ClickHouseSettings;
use crate::window::{Emission, RollupKey, WINDOW_MS};

#[derive(Clone)]
pub struct RollupStore {
    client: clickhouse::Client,
    caps: Capabilities,
    table: String,
    database: String,
    retention_days: u32,
}

impl std::fmt::Debug for RollupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollupStore")
            .field("table", &self.table)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct StoredRow {
    window_start: u32,
    team_id: String,
    event: String,
    user_id: String,
    /// `max(max_offset)`: aliased, because 18.16 would read the column name
    /// in `WHERE` as this aggregate.
    covered: u64,
}

impl RollupStore {
    /// Probes the server and applies the aggregator's migrations.
    pub async fn connect(settings: &ClickHouseSettings) -> anyhow::Result<Self> {
        let client = clickhouse::Client::default()
            .with_url(&settings.url)
            .with_user(&settings.user)
            .with_password(&settings.password)
            .with_validation(false);
        let caps = ch::probe(&client)
            .await
            .with_context(|| format!("probing ClickHouse at {}", settings.url))?;
        let all = migrations(&caps, &settings.database, settings.retention_days);
        let (applied, _) =
            ch::apply_migrations(&client, &caps, &settings.database, COMPONENT, &all)
                .await
                .context("applying the aggregator's ClickHouse migrations")?;
        tracing::info!(url = %settings.url, ?caps, ?applied, "ClickHouse ready");
        Ok(Self {
            client: client.with_database(&settings.database),
            caps,
            table: format!("{}.{ROLLUPS_5M}", settings.database),
            database: settings.database.clone(),
            retention_days: settings.retention_days,
        })
    }

    /// Dropping expired day partitions of `rollups_5m` (the shared
    /// retention job, our metrics): needed where the server has no TTL, and
    /// harmless where it has one. `None` when rollups are kept forever.
    pub fn retention(&self) -> Option<ch::Retention> {
        (self.retention_days > 0).then(|| {
            let settings = ch::SchemaSettings {
                events_table: ROLLUPS_5M.to_owned(),
                retention_days: Some(self.retention_days),
                ..ch::SchemaSettings::new(self.database.clone())
            };
            ch::Retention::new(
                self.client.clone(),
                settings,
                crate::status::RETENTION_DROPPED,
                crate::status::RETENTION_RUNS,
            )
        })
    }

    /// The highest offset the loader has stored per partition of `topic`
    /// (its `loader_progress`, in the same database).
    pub async fn loader_progress(
        &self,
        topic: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<i32, i64>> {
        ch::loaded_offsets(&self.client, topic)
            .await
            .with_context(|| format!("reading the loader's progress on {topic}"))
    }

    /// Fills `seen` with the events the loader kept in `partition` below
    /// `before_offset` that a retry could still match; returns the rows read.
    pub async fn rebuild_seen(
        &self,
        topic: &str,
        partition: i32,
        before_offset: i64,
        seen: &mut sluice_core::dedup::SeenIds,
    ) -> anyhow::Result<u64> {
        let scope = ch::seen::Scope {
            topic,
            partition,
            before_offset: Some(before_offset),
        };
        ch::seen::rebuild(&self.client, &scope, seen)
            .await
            .with_context(|| format!("rebuilding the event ids of {topic}/{partition}"))
    }

    /// Rows stored for `topic`/`partition` covering offsets at or after
    /// `from_offset`: (window start ms, key, highest offset covered).
    pub async fn stored_since(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
    ) -> anyhow::Result<Vec<(i64, RollupKey, i64)>> {
        let sql = stored_since_sql(&self.table, topic, partition, from_offset);
        let rows: Vec<StoredRow> = self
            .client
            .query(&sql)
            .fetch_all()
            .await
            .with_context(|| format!("reading stored rollups of {topic}/{partition}"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    i64::from(r.window_start) * 1000,
                    RollupKey {
                        team_id: r.team_id,
                        event: r.event,
                        user_id: r.user_id,
                    },
                    r.covered as i64,
                )
            })
            .collect())
    }

    /// Inserts `emissions` of one partition, one INSERT per UTC day of
    /// `window_start` (the table's partition key). Stops at the first failure.
    pub async fn insert(
        &self,
        topic: &str,
        partition: i32,
        emissions: &[Emission],
        emitted_at_secs: u32,
    ) -> InsertOutcome {
        let started = Instant::now();
        let mut sorted: Vec<&Emission> = emissions.iter().collect();
        sorted.sort_by_key(|e| e.window_start_ms);
        const DAY_MS: i64 = 86_400_000;
        for day in sorted.chunk_by(|a, b| {
            a.window_start_ms.div_euclid(DAY_MS) == b.window_start_ms.div_euclid(DAY_MS)
        }) {
            if let Err(err) = self
                .insert_day(topic, partition, day, emitted_at_secs)
                .await
            {
                return InsertOutcome::failed(&err);
            }
        }
        InsertOutcome::Inserted {
            rows: emissions.len(),
            took: started.elapsed(),
        }
    }

    async fn insert_day(
        &self,
        topic: &str,
        partition: i32,
        day: &[&Emission],
        emitted_at_secs: u32,
    ) -> Result<(), InsertError> {
        let columns = ROLLUP_COLUMNS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = self.client.insert_formatted_with(format!(
            "INSERT INTO {} ({columns}) FORMAT RowBinary",
            self.table
        ));
        if self.caps.insert_dedup_token {
            insert = insert
                .with_setting(
                    "insert_deduplication_token",
                    dedup_token(topic, partition, day),
                )
                .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1");
        }
        let mut buf = Vec::with_capacity(day.len() * 64);
        for emission in day {
            encode_row(
                &RollupRow {
                    emission,
                    topic,
                    partition,
                    emitted_at_secs,
                },
                &mut buf,
            );
        }
        insert
            .send(Bytes::from(buf))
            .await
            .map_err(InsertError::classify)?;
        insert.end().await.map_err(InsertError::classify)
    }
}

/// The query behind [`RollupStore::stored_since`]: per (window, key) of
/// `topic`/`partition`, the highest offset covered, for rows covering
/// offsets at or after `from_offset`.
pub fn stored_since_sql(table: &str, topic: &str, partition: i32, from_offset: i64) -> String {
    format!(
        "SELECT toUInt32(window_start) AS window_start, team_id, event, user_id, max(max_offset) AS covered \
         FROM {table} WHERE kafka_topic = {} AND kafka_partition = {} AND max_offset >= {} \
         GROUP BY window_start, team_id, event, user_id",
        ch::quote_literal(topic),
        partition.max(0),
        from_offset.max(0),
    )
}

/// A token that depends only on what the rows say (not when they were
/// emitted), so an identical retry is recognised by the server.
pub fn dedup_token(topic: &str, partition: i32, rows: &[&Emission]) -> String {
    let mut hash = Sha256::new();
    let mut buf = Vec::with_capacity(128);
    for emission in rows {
        buf.clear();
        encode_row(
            &RollupRow {
                emission,
                topic,
                partition,
                emitted_at_secs: 0,
            },
            &mut buf,
        );
        hash.update(&buf);
    }
    let digest = hash.finalize();
    let first = rows.first().map_or(0, |e| e.window_start_ms / WINDOW_MS);
    format!("{topic}:{partition}:{first}:{}", hex::encode(&digest[..12]))
}
