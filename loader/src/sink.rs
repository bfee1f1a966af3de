//! The load loop's view of ClickHouse: connect (probe + migrate), insert one
//! batch, read the progress table. Wraps [`sluice_clickhouse`] and turns its
//! errors into what the loop decides on: done, retry later, or bad data.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::Context;
use sluice_clickhouse::{
    self as ch, Capabilities, InsertError, InsertOutcome, RowLayout, SchemaSettings,
};
use sluice_core::{Event, Timestamp};

use crate::config::ClickHouseSettings;

pub struct ClickHouseSink {
    client: clickhouse::Client,
    caps: Capabilities,
    /// The existing table's layout, which may predate a server upgrade.
    layout: RowLayout,
    table: String,
    /// The unqualified client and schema, for retention.
    root: clickhouse::Client,
    schema: SchemaSettings,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("table", &self.table)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl ClickHouseSink {
    /// Probes the server and applies the schema migrations it needs.
    pub async fn connect(settings: &ClickHouseSettings) -> anyhow::Result<Self> {
        let client = clickhouse::Client::default()
            .with_url(&settings.url)
            .with_user(&settings.user)
            .with_password(&settings.password)
            .with_compression(if settings.compression == "none" {
                clickhouse::Compression::None
            } else {
                clickhouse::Compression::Lz4
            })
            .with_validation(false);
        let caps = ch::probe(&client)
            .await
            .with_context(|| format!("probing ClickHouse at {}", settings.url))?;
        let schema = SchemaSettings {
            database: settings.database.clone(),
            events_table: settings.table.clone(),
            retention_days: (settings.retention_days > 0).then_some(settings.retention_days),
        };
        let report = ch::migrate(&client, &caps, &schema)
            .await
            .context("applying ClickHouse migrations")?;
        tracing::info!(url = %settings.url, ?caps, ?report, "ClickHouse ready");
        Ok(Self {
            client: client.clone().with_database(&settings.database),
            layout: report.layout,
            caps,
            table: settings.table.clone(),
            root: client,
            schema,
        })
    }

    /// The retention job, when `retention_days` is set.
    pub fn retention(&self) -> Option<ch::Retention> {
        self.schema.retention_days.map(|_| {
            ch::Retention::new(
                self.root.clone(),
                self.schema.clone(),
                crate::status::RETENTION_DROPPED,
                crate::status::RETENTION_RUNS,
            )
        })
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
        let ids: Vec<String> = self
            .client
            .query(&sql)
            .fetch_all()
            .await
            .with_context(|| format!("reading existing ids of team {team}"))?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
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
        ch::seen::rebuild(&self.client, &scope, seen)
            .await
            .with_context(|| format!("rebuilding the event ids of {topic}/{partition}"))
    }

    /// Dropping expired day partitions of `event_ids` (the shared retention
    /// job): it keeps [`ch::schema::EVENT_IDS_DAYS`], whatever the events' retention.
    pub fn event_ids_retention(&self) -> ch::Retention {
        let settings = SchemaSettings {
            database: self.schema.database.clone(),
            events_table: ch::schema::EVENT_IDS_TABLE.to_owned(),
            retention_days: Some(ch::schema::EVENT_IDS_DAYS),
        };
        ch::Retention::new(
            self.root.clone(),
            settings,
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
        Ok(ch::record_loaded(&self.client, topic, partition, offset).await?)
    }

    pub async fn loaded_offsets(&self, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
        Ok(ch::loaded_offsets(&self.client, topic).await?)
    }

    /// Inserts `events` (read from `topic`/`partition` at their offsets) as one block.
    ///
    /// `Err` means a bug on our side (an invalid call), not a data or server
    /// problem: the loader stops rather than dead-letter good events.
    pub async fn insert(
        &self,
        topic: &str,
        partition: i32,
        events: &[(i64, Event<'_>)],
        token: &str,
    ) -> anyhow::Result<InsertOutcome> {
        let loaded_at = Timestamp::now();
        let layout = self.layout;
        let rows: Vec<_> = events
            .iter()
            .map(|(offset, event)| ch::row(layout, event, topic, partition, *offset, loaded_at))
            .collect();
        let started = Instant::now();
        Ok(
            match ch::insert_batch(&self.client, &self.caps, &self.table, &rows, Some(token)).await
            {
                Ok(()) => InsertOutcome::Inserted {
                    rows: rows.len(),
                    took: started.elapsed(),
                },
                Err(err @ InsertError::InvalidBatch(_)) => return Err(err.into()),
                Err(err) => InsertOutcome::failed(&err),
            },
        )
    }
}
