//! The aggregator's view of ClickHouse: connect (probe + migrate), insert
//! emissions, and read back what is already stored for a partition.
//!
//! On a cluster a partition's rollups go to the shard that holds its raw
//! events (`sluice_clickhouse::shards`), and everything read for a partition
//! (the loader's progress and event ids, the rollups stored) is read there,
//! from one replica, moving to its twin when it fails. A retry repeats the
//! block exactly (the caller keeps `emitted_at`), so the shard's replicated
//! deduplication drops it if the failed attempt landed after all.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sluice_clickhouse::shards::Shards;
use sluice_clickhouse::{self as ch, Capabilities, InsertError, InsertOutcome};

use super::rows::{RollupRow, encode_row};
use super::schema::{COMPONENT, ROLLUP_COLUMNS, ROLLUPS_5M, migrations};
use crate::config::ClickHouseSettings;
use crate::window::{Emission, RollupKey, WINDOW_MS};

#[derive(Clone)]
pub struct RollupStore {
    shards: std::sync::Arc<Shards>,
    caps: Capabilities,
    table: String,
    database: String,
    retention_days: u32,
}

impl std::fmt::Debug for RollupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollupStore")
            .field("table", &self.table)
            .field("shards", &self.shards.len())
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
    /// Probes the server (on a cluster: the first replica that answers) and
    /// applies the aggregator's migrations (on a cluster, `ON CLUSTER`).
    pub async fn connect(settings: &ClickHouseSettings) -> anyhow::Result<Self> {
        let shards = Shards::new(&settings.replicas(), &settings.database, |url| {
            clickhouse::Client::default()
                .with_url(url)
                .with_user(&settings.user)
                .with_password(&settings.password)
                .with_validation(false)
        });
        let (first, caps) = shards.first_answer().await?;
        let place = ch::SchemaSettings {
            cluster: (!settings.shards.is_empty()).then(|| settings.cluster.clone()),
            ..ch::SchemaSettings::new(settings.database.clone())
        };
        if let Some(cluster) = &place.cluster {
            ch::shards::check_cluster(&first.root, cluster, shards.len()).await?;
        }
        let all = migrations(&caps, &place, settings.retention_days);
        let (applied, _) =
            ch::apply_migrations(&first.root, &caps, &settings.database, COMPONENT, &all)
                .await
                .context("applying the aggregator's ClickHouse migrations")?;
        if place.cluster.is_some() {
            shards
                .check_same_schema(&settings.database, ch::shards::SCHEMA_AGREEMENT_GRACE)
                .await?;
        }
        tracing::info!(url = %first.url, shards = shards.len(), ?caps, ?applied, "ClickHouse ready");
        Ok(Self {
            shards: std::sync::Arc::new(shards),
            caps,
            table: format!("{}.{ROLLUPS_5M}", settings.database),
            database: settings.database.clone(),
            retention_days: settings.retention_days,
        })
    }

    /// Dropping expired day partitions of `rollups_5m` (the shared
    /// retention job, our metrics), one job per shard: needed where the
    /// server has no TTL, and harmless where it has one. None when rollups
    /// are kept forever.
    pub fn retention(&self) -> Vec<ch::Retention> {
        if self.retention_days == 0 {
            return Vec::new();
        }
        let settings = ch::SchemaSettings {
            events_table: ROLLUPS_5M.to_owned(),
            retention_days: Some(self.retention_days),
            ..ch::SchemaSettings::new(self.database.clone())
        };
        self.shards.retention(
            &settings,
            crate::status::RETENTION_DROPPED,
            crate::status::RETENTION_RUNS,
        )
    }

    /// The highest offset the loader has stored per partition of `topic`
    /// (its `loader_progress`, in the same database).
    pub async fn loader_progress(
        &self,
        topic: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<i32, i64>> {
        let mut all = std::collections::BTreeMap::new();
        for shard in self.shards.iter() {
            let offsets = shard
                .each_replica(|client| async move { ch::loaded_offsets(&client, topic).await })
                .await
                .with_context(|| format!("reading the loader's progress on {topic}"))?;
            for (partition, offset) in offsets {
                let max = all.entry(partition).or_insert(offset);
                *max = (*max).max(offset);
            }
        }
        Ok(all)
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
        let shard = self.shards.for_partition(partition);
        let replica = shard.replica();
        let rows = ch::seen::rebuild(&replica.client, &scope, seen).await;
        if let Err(err) = &rows {
            shard.fail_over(replica, &err.to_string());
        }
        rows.with_context(|| format!("rebuilding the event ids of {topic}/{partition}"))
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
            .shards
            .for_partition(partition)
            .each_replica(|client| {
                let sql = &sql;
                async move { client.query(sql).fetch_all().await }
            })
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
        let shard = self.shards.for_partition(partition);
        let replica = shard.replica();
        let mut insert = replica.client.insert_formatted_with(format!(
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
        let sent = match insert.send(Bytes::from(buf)).await {
            Ok(()) => insert.end().await,
            Err(err) => Err(err),
        }
        .map_err(InsertError::classify);
        if let Err(err) = &sent
            && matches!(InsertOutcome::failed(err), InsertOutcome::Retryable(_))
        {
            shard.fail_over(replica, &err.to_string());
        }
        sent
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
