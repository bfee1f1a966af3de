//! The load loop's view of ClickHouse: connect (probe + migrate), insert one
//! batch, read the progress table. Wraps [`sluice_clickhouse`] and turns its
//! errors into what the loop decides on: done, retry later, or bad data.
//!
//! One server, or a cluster: each Kafka partition is stored on one shard
//! (`partition % shards`), so everything the exactly-once argument reads
//! and writes for a partition (its rows, `loader_progress`, `event_ids`)
//! lives in one shard's replicated tables, and one insert stays one atomic
//! block there. A shard is written through one replica at a time; when it
//! fails, the next attempt goes to its twin. A retry repeats the block byte
//! for byte (same rows, same `loaded_at`), so if the failed attempt did land,
//! the shard's replicated block deduplication (shared by its replicas in
//! ZooKeeper) drops the repeat whichever replica it reaches.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::Context;
use sluice_clickhouse::shards::{Shard, Shards};
use sluice_clickhouse::{
    self as ch, Capabilities, InsertError, InsertOutcome, RowLayout, SchemaSettings,
};
use sluice_core::{Event, Timestamp};

use crate::config::ClickHouseSettings;

pub struct ClickHouseSink {
    shards: Shards,
    caps: Capabilities,
    /// The existing table's layout, which may predate a server upgrade.
    layout: RowLayout,
    table: String,
    schema: SchemaSettings,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("table", &self.table)
            .field("shards", &self.shards.len())
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl ClickHouseSink {
    /// Probes the server (on a cluster: the first replica that answers) and
    /// applies the schema migrations it needs (on a cluster, `ON CLUSTER`).
    pub async fn connect(settings: &ClickHouseSettings) -> anyhow::Result<Self> {
        let client = |url: &str| {
            clickhouse::Client::default()
                .with_url(url)
                .with_user(&settings.user)
                .with_password(&settings.password)
                .with_compression(if settings.compression == "none" {
                    clickhouse::Compression::None
                } else {
                    clickhouse::Compression::Lz4
                })
                .with_validation(false)
        };
        let shards = Shards::new(&settings.replicas(), &settings.database, client);
        let schema = SchemaSettings {
            database: settings.database.clone(),
            events_table: settings.table.clone(),
            retention_days: (settings.retention_days > 0).then_some(settings.retention_days),
            cluster: (!settings.shards.is_empty()).then(|| settings.cluster.clone()),
        };
        let (first, caps) = shards.first_answer().await?;
        if let Some(cluster) = &schema.cluster {
            ch::shards::check_cluster(&first.root, cluster, shards.len()).await?;
        }
        let report = ch::migrate(&first.root, &caps, &schema)
            .await
            .context("applying ClickHouse migrations")?;
        if schema.cluster.is_some() {
            shards
                .check_same_schema(&schema.database, ch::shards::SCHEMA_AGREEMENT_GRACE)
                .await?;
        }
        tracing::info!(url = %first.url, shards = shards.len(), ?caps, ?report, "ClickHouse ready");
        Ok(Self {
            shards,
            layout: report.layout,
            caps,
            table: settings.table.clone(),
            schema,
        })
    }

    /// The shard that stores `partition`.
    fn shard(&self, partition: i32) -> &Shard {
        self.shards.for_partition(partition)
    }

    /// The index of the shard that stores `partition` (0 on one server).
    pub fn shard_of(&self, partition: i32) -> usize {
        self.shards.index_of(partition)
    }

    /// The retention job, when `retention_days` is set: one per shard (a
    /// partition dropped on one replica is dropped on its twin by
    /// replication).
    pub fn retention(&self) -> Vec<ch::Retention> {
        let Some(_) = self.schema.retention_days else {
            return Vec::new();
        };
        self.shards.retention(
            &self.schema,
            crate::status::RETENTION_DROPPED,
            crate::status::RETENTION_RUNS,
        )
    }

    /// Event ids already stored for `team` with a timestamp in `[from_ms, to_ms)`.
    pub async fn existing_ids(
        &self,
        team: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<HashSet<uuid::Uuid>> {
        // Whole seconds bound both layouts' `timestamp` column (DateTime on
        // 18.16, DateTime64 elsewhere); the events are filtered exactly by
        // the caller.
        let sql = format!(
            "SELECT toString(event_id) FROM {} WHERE team_id = {} AND timestamp >= toDateTime({}) AND timestamp < toDateTime({})",
            self.table,
            ch::quote_literal(team),
            from_ms.div_euclid(1000),
            to_ms.div_euclid(1000) + 1,
        );
        let mut ids = HashSet::new();
        for shard in self.shards.iter() {
            let found: Vec<String> = shard
                .each_replica(|client| {
                    let sql = &sql;
                    async move { client.query(sql).fetch_all().await }
                })
                .await
                .with_context(|| format!("reading existing ids of team {team}"))?;
            ids.extend(found.iter().filter_map(|id| id.parse::<uuid::Uuid>().ok()));
        }
        Ok(ids)
    }

    /// Fills `seen` with the partition's stored events that a retry could
    /// still match (see [`ch::seen`]); returns the rows read.
    pub async fn rebuild_seen(
        &self,
        topic: &str,
        partition: i32,
        seen: &mut sluice_core::dedup::SeenIds,
    ) -> anyhow::Result<u64> {
        let scope = ch::seen::Scope {
            topic,
            partition,
            before_offset: None,
        };
        let client = self.shard(partition).replica().client.clone();
        let rows = ch::seen::rebuild(&client, &scope, seen).await;
        if let Err(err) = &rows {
            self.shard(partition)
                .fail_over(self.shard(partition).replica(), &err.to_string());
        }
        rows.with_context(|| format!("rebuilding the event ids of {topic}/{partition}"))
    }

    /// Dropping expired day partitions of `event_ids` (the shared retention
    /// job), on every shard: it keeps [`ch::schema::EVENT_IDS_DAYS`],
    /// whatever the events' retention. A drop on one replica is replicated
    /// to its twin.
    pub fn event_ids_retention(&self) -> Vec<ch::Retention> {
        let settings = SchemaSettings {
            database: self.schema.database.clone(),
            events_table: ch::schema::EVENT_IDS_TABLE.to_owned(),
            retention_days: Some(ch::schema::EVENT_IDS_DAYS),
            cluster: None,
        };
        self.shards.retention(
            &settings,
            crate::status::RETENTION_DROPPED,
            crate::status::RETENTION_RUNS,
        )
    }

    /// See [`ch::record_loaded`].
    pub async fn record_loaded(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> anyhow::Result<()> {
        self.shard(partition)
            .each_replica(|client| async move {
                ch::record_loaded(&client, topic, partition, offset).await
            })
            .await
            .map_err(Into::into)
    }

    /// The highest stored offset per partition, over every shard (a
    /// partition's rows are on one shard; the maximum also covers a shard
    /// count changed since).
    pub async fn loaded_offsets(&self, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
        let mut all = BTreeMap::new();
        for shard in self.shards.iter() {
            let offsets = shard
                .each_replica(|client| async move { ch::loaded_offsets(&client, topic).await })
                .await?;
            for (partition, offset) in offsets {
                let max = all.entry(partition).or_insert(offset);
                *max = (*max).max(offset);
            }
        }
        Ok(all)
    }

    /// Inserts `events` (read from `topic`/`partition` at their offsets) as
    /// one block on the partition's shard. `loaded_at` is the same for every
    /// attempt of one block, so that a repeat is the identical block.
    ///
    /// `Err` means a bug on our side (an invalid call), not a data or server
    /// problem: the loader stops rather than dead-letter good events.
    pub async fn insert(
        &self,
        topic: &str,
        partition: i32,
        events: &[(i64, Event<'_>)],
        token: &str,
        loaded_at: Timestamp,
    ) -> anyhow::Result<InsertOutcome> {
        let layout = self.layout;
        let rows: Vec<_> = events
            .iter()
            .map(|(offset, event)| ch::row(layout, event, topic, partition, *offset, loaded_at))
            .collect();
        let started = Instant::now();
        let shard = self.shard(partition);
        let replica = shard.replica();
        Ok(
            match ch::insert_batch(&replica.client, &self.caps, &self.table, &rows, Some(token))
                .await
            {
                Ok(()) => InsertOutcome::Inserted {
                    rows: rows.len(),
                    took: started.elapsed(),
                },
                Err(err @ InsertError::InvalidBatch(_)) => return Err(err.into()),
                Err(err) => {
                    let outcome = InsertOutcome::failed(&err);
                    if matches!(outcome, InsertOutcome::Retryable(_)) {
                        shard.fail_over(replica, &err.to_string());
                    }
                    outcome
                }
            },
        )
    }
}
