//! The loader's versioned migrations, rendered for a server's capabilities.
//!
//! | version | name | creates |
//! |---|---|---|
//! | 1 | `bootstrap` | the database and `schema_migrations` |
//! | 2 | `events` | the raw `events` table |
//! | 3 | `loader_progress` | `loader_progress` and the view `loader_progress_mv` feeding it |
//! | 4 | `event_ids` | `event_ids` and the view `event_ids_mv` feeding it, filled from the last 8 days of `events` |
//!
//! | 5 | `events_all` | on a cluster only: `Distributed` over every shard's `events`, for reads |
//!
//! ## On a cluster
//! With [`SchemaSettings::cluster`] set, every statement runs `ON CLUSTER`
//! (ClickHouse's distributed DDL: one node queues it in ZooKeeper and every
//! node runs it, and one that was down runs it when it comes back), and each table is
//! the `Replicated` form of its engine, with its ZooKeeper path under the
//! node's `{shard}` macro and `{replica}` as the replica's name, so the two
//! replicas of a shard hold the same rows and share one insert-block
//! deduplication log. Writers insert into a shard's local tables
//! themselves (the loader: a Kafka partition always to the same shard),
//! readers use `events_all`. Migration 4's backfill of `event_ids` from
//! `events` is left out there: an `INSERT ... SELECT` runs on one node only,
//! and a new cluster has nothing to backfill.
//!
//! Rules for adding one: append a new version (never edit a released one:
//! servers that applied it will not apply it again), and make every statement
//! idempotent (`IF NOT EXISTS`, `IF EXISTS`), because a crash between running
//! a migration and recording it runs it again, and loaders starting together
//! may both run it.
//!
//! ## `events`
//! `ReplacingMergeTree`, partitioned by UTC day (`toYYYYMMDD(timestamp)`),
//! ordered by `(team_id, event, timestamp, event_id)` for the dashboards'
//! team/event/time queries. The legacy layout adds `timestamp_ms` before
//! `event_id` so rows stay in millisecond order.
//!
//! Why Replacing: the progress table ([`super::progress`]) makes re-reads
//! after a crash idempotent, but two windows remain in which one batch can
//! land twice: a server crash after `events` got the block but before the view
//! wrote `loader_progress`, and an insert spanning several day partitions that
//! failed after some of them were written (MergeTree commits per partition).
//! A duplicate has the same sort key (same `event_id`, hence same team, event
//! and time), so merges collapse it; exact counts over not-yet-merged data use
//! `FINAL` or `uniqExact(event_id)`. Where the server has it, the
//! `insert_deduplication_token` closes both windows at insert time.
//!
//! With capabilities the DDL also uses `LowCardinality(String)` for
//! `team_id`, `event` and `kafka_topic`, `CODEC(Delta, ZSTD(1))` on times and
//! offsets, `CODEC(ZSTD(3))` on the JSON text, `TTL toDate(timestamp) +
//! INTERVAL n DAY` when retention is set, and `non_replicated_deduplication_window
//! = 1000` so dedup tokens work on this non-replicated table. Without TTL,
//! retention is done by dropping whole day partitions: see [`super::retention`].
//!
//! ## `loader_progress`
//! `AggregatingMergeTree` keyed by `(kafka_topic, kafka_partition)`, fed by a
//! materialised view on every insert into `events`: per insert block and
//! partition, `maxState(kafka_offset)`, `countState()` and
//! `maxState(loaded_at)`. Merges fold it to one row per partition, so reading
//! it never touches `events`. `rows` is informational: on servers without
//! dedup it also counts rows of a batch inserted twice (see above).
//!
//! ## `event_ids`
//! What the deduplication state of a partition is rebuilt from after a
//! restart or rebalance ([`super::seen`], rule in `sluice_core::dedup`): per
//! stored event its topic, partition, offset, `received_at` (whole seconds),
//! `team_id` and `event_id`, written by the view `event_ids_mv` in the same
//! insert as `events`. `MergeTree` ordered by `(kafka_topic,
//! kafka_partition, kafka_offset)` and partitioned by the UTC day of
//! `received_at`, so a rebuild reads one partition's last day or so and
//! nothing else; about 20 bytes per event on disk. Kept
//! [`EVENT_IDS_DAYS`] days (dropped by the retention job on every server),
//! which bounds the deduplication window.

use super::probe::Capabilities;
use super::rows::RowLayout;
use super::{Error, is_identifier};

/// Tag of this crate's rows in `schema_migrations` (the aggregator can keep
/// its own migrations in the same table under another tag).
pub const COMPONENT: &str = "loader";
pub const MIGRATIONS_TABLE: &str = "schema_migrations";
pub const PROGRESS_TABLE: &str = "loader_progress";
pub const PROGRESS_VIEW: &str = "loader_progress_mv";
pub const EVENT_IDS_TABLE: &str = "event_ids";
pub const EVENT_IDS_VIEW: &str = "event_ids_mv";
/// Days `event_ids` keeps: the longest window (7 days) and the day in progress.
pub const EVENT_IDS_DAYS: u32 = 8;
/// Suffix of the `Distributed` table over the events tables of a cluster.
pub const ALL_SHARDS_SUFFIX: &str = "_all";

/// Where the schema lives and how long raw events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSettings {
    /// Created if missing.
    pub database: String,
    /// The raw events table, `events` by default.
    pub events_table: String,
    /// Days to keep raw events; `None` keeps them forever.
    pub retention_days: Option<u32>,
    /// The cluster (a name in the servers' `remote_servers`) the schema is
    /// created on, replicated per shard; `None`: one server.
    pub cluster: Option<String>,
}

impl SchemaSettings {
    pub fn new(database: impl Into<String>) -> Self {
        Self {
            database: database.into(),
            events_table: "events".to_owned(),
            retention_days: None,
            cluster: None,
        }
    }

    /// ` ON CLUSTER name` on a cluster, else nothing: for every statement.
    pub fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map(|name| format!(" ON CLUSTER {name}"))
            .unwrap_or_default()
    }

    /// The engine of `table`: `family` (e.g. `ReplacingMergeTree`, or with
    /// its arguments, `SummingMergeTree(events)`) on one server, its
    /// replicated form on a cluster (the ZooKeeper path and replica name
    /// first, then the family's own arguments).
    pub fn engine(&self, family: &str, table: &str) -> String {
        let Some(_) = &self.cluster else {
            return family.to_owned();
        };
        let (name, args) = match family.split_once('(') {
            Some((name, rest)) => (name, format!(", {}", rest.trim_end_matches(')'))),
            None => (family, String::new()),
        };
        format!(
            "Replicated{name}('/clickhouse/tables/{{shard}}/{}/{table}', '{{replica}}'{args})",
            self.database
        )
    }

    /// `CREATE TABLE ... {table}_all` over every shard's `table` (on a
    /// cluster; `None` on one server): what readers of the whole cluster use.
    pub fn all_shards_table(&self, table: &str) -> Option<String> {
        let cluster = self.cluster.as_ref()?;
        let local = self.qualified(table);
        Some(format!(
            "CREATE TABLE IF NOT EXISTS {local}{ALL_SHARDS_SUFFIX}{} AS {local}\nENGINE = Distributed({cluster}, {}, {table}, rand())",
            self.on_cluster(),
            self.database,
        ))
    }

    /// Names are pasted into DDL, so they must be plain identifiers.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_names()?;
        if [
            MIGRATIONS_TABLE,
            PROGRESS_TABLE,
            PROGRESS_VIEW,
            EVENT_IDS_TABLE,
            EVENT_IDS_VIEW,
        ]
        .contains(&self.events_table.as_str())
        {
            return Err(Error::InvalidSettings(format!(
                "events_table `{}` is one of the loader's own tables",
                self.events_table
            )));
        }
        Ok(())
    }

    /// Identifiers and retention only: what the retention job needs of a
    /// table that may be one of the loader's own (`event_ids`).
    pub(crate) fn validate_names(&self) -> Result<(), Error> {
        let cluster = self.cluster.clone().unwrap_or_else(|| "none".to_owned());
        for (what, name) in [
            ("database", &self.database),
            ("events_table", &self.events_table),
            ("cluster", &cluster),
        ] {
            if !is_identifier(name) {
                return Err(Error::InvalidSettings(format!(
                    "{what} `{name}` must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"
                )));
            }
        }
        if self.retention_days == Some(0) {
            return Err(Error::InvalidSettings(
                "retention_days must be at least 1 (None keeps events forever)".to_owned(),
            ));
        }
        Ok(())
    }

    /// `database.events_table`.
    pub fn events(&self) -> String {
        self.qualified(&self.events_table)
    }

    pub(crate) fn qualified(&self, table: &str) -> String {
        format!("{}.{}", self.database, table)
    }
}

/// One versioned step: statements run in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: Vec<String>,
}

/// Every migration, in version order, rendered for `caps`. Call
/// [`SchemaSettings::validate`] first (`migrate` does).
pub fn migrations(caps: &Capabilities, settings: &SchemaSettings) -> Vec<Migration> {
    let mut event_ids = vec![event_ids_table(caps, settings), event_ids_view(settings)];
    if settings.cluster.is_none() {
        event_ids.push(event_ids_backfill(settings));
    }
    let mut all = vec![
        bootstrap_for(settings),
        Migration {
            version: 2,
            name: "events",
            statements: vec![events_table(caps, settings)],
        },
        Migration {
            version: 3,
            name: "loader_progress",
            statements: vec![progress_table(caps, settings), progress_view(settings)],
        },
        Migration {
            version: 4,
            name: "event_ids",
            statements: event_ids,
        },
    ];
    if let Some(events_all) = settings.all_shards_table(&settings.events_table) {
        all.push(Migration {
            version: 5,
            name: "events_all",
            statements: vec![events_all],
        });
    }
    all
}

/// Migration 1 of every component: the database and `schema_migrations`.
/// `database` must be an identifier.
pub fn bootstrap(database: &str) -> Migration {
    bootstrap_for(&SchemaSettings::new(database))
}

/// [`bootstrap`], on the cluster of `settings` if it has one (each node
/// keeps its own `schema_migrations`).
pub fn bootstrap_for(settings: &SchemaSettings) -> Migration {
    let database = &settings.database;
    let on_cluster = settings.on_cluster();
    Migration {
        version: 1,
        name: "bootstrap",
        statements: vec![
            format!("CREATE DATABASE IF NOT EXISTS {database}{on_cluster}"),
            migrations_table(database, &on_cluster),
        ],
    }
}

fn migrations_table(database: &str, on_cluster: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}{on_cluster}
(
    component String,
    version UInt32,
    name String,
    statements String,
    server_version String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (component, version)",
        format_args!("{database}.{MIGRATIONS_TABLE}")
    )
}

/// Columns whose values repeat a lot: worth a dictionary where the server has one.
const LOW_CARDINALITY: &[&str] = &["team_id", "event", "kafka_topic"];

fn codec(column: &str) -> Option<&'static str> {
    match column {
        // Close together within a granule (sorted, or arriving in order).
        "timestamp" | "received_at" | "loaded_at" | "kafka_offset" => Some("CODEC(Delta, ZSTD(1))"),
        // JSON text: the bulk of the table, compresses well.
        "properties" | "context" => Some("CODEC(ZSTD(3))"),
        _ => None,
    }
}

fn events_table(caps: &Capabilities, settings: &SchemaSettings) -> String {
    let layout = caps.layout();
    let columns = layout
        .columns()
        .iter()
        .map(|(name, wire_type)| {
            let mut column = if caps.low_cardinality && LOW_CARDINALITY.contains(name) {
                format!("    {name} LowCardinality({wire_type})")
            } else {
                format!("    {name} {wire_type}")
            };
            if caps.codecs
                && let Some(codec) = codec(name)
            {
                column.push(' ');
                column.push_str(codec);
            }
            column
        })
        .collect::<Vec<_>>()
        .join(",\n");
    let order_by = match layout {
        RowLayout::Modern => "(team_id, event, timestamp, event_id)",
        RowLayout::Legacy => "(team_id, event, timestamp, timestamp_ms, event_id)",
    };
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n{columns}\n)\nENGINE = {}\nPARTITION BY toYYYYMMDD(timestamp)\nORDER BY {order_by}",
        settings.events(),
        settings.on_cluster(),
        settings.engine("ReplacingMergeTree", &settings.events_table),
    );
    if caps.ttl
        && let Some(days) = settings.retention_days
    {
        sql.push_str(&format!("\nTTL toDate(timestamp) + INTERVAL {days} DAY"));
    }
    if caps.non_replicated_deduplication_window && settings.cluster.is_none() {
        sql.push_str("\nSETTINGS non_replicated_deduplication_window = 1000");
    }
    sql
}

fn progress_table(caps: &Capabilities, settings: &SchemaSettings) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}{}
(
    kafka_topic String,
    kafka_partition Int32,
    max_offset AggregateFunction(max, Int64),
    rows AggregateFunction(count),
    last_loaded_at AggregateFunction(max, DateTime('UTC'))
)
ENGINE = {}
ORDER BY (kafka_topic, kafka_partition)",
        settings.qualified(PROGRESS_TABLE),
        settings.on_cluster(),
        settings.engine("AggregatingMergeTree", PROGRESS_TABLE),
    );
    // A retried insert that `events` drops by its dedup token still reaches
    // the view; with a window here the view's block is dropped too, so
    // `rows` does not count it twice. (`max_offset` is idempotent anyway.)
    if caps.non_replicated_deduplication_window && settings.cluster.is_none() {
        sql.push_str("\nSETTINGS non_replicated_deduplication_window = 1000");
    }
    sql
}

fn progress_view(settings: &SchemaSettings) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{} TO {}
AS SELECT
    kafka_topic,
    kafka_partition,
    maxState(kafka_offset) AS max_offset,
    countState() AS rows,
    maxState(loaded_at) AS last_loaded_at
FROM {}
GROUP BY kafka_topic, kafka_partition",
        settings.qualified(PROGRESS_VIEW),
        settings.on_cluster(),
        settings.qualified(PROGRESS_TABLE),
        settings.events()
    )
}

fn event_ids_table(caps: &Capabilities, settings: &SchemaSettings) -> String {
    let text = |name: &str| {
        if caps.low_cardinality && LOW_CARDINALITY.contains(&name) {
            "LowCardinality(String)"
        } else {
            "String"
        }
    };
    let delta = |name: &str| match (caps.codecs, codec(name)) {
        (true, Some(codec)) => format!(" {codec}"),
        _ => String::new(),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {}{}
(
    kafka_topic {},
    kafka_partition Int32,
    kafka_offset Int64{},
    received_at DateTime('UTC'){},
    team_id {},
    event_id UUID
)
ENGINE = {}
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset)",
        settings.qualified(EVENT_IDS_TABLE),
        settings.on_cluster(),
        text("kafka_topic"),
        delta("kafka_offset"),
        delta("received_at"),
        text("team_id"),
        settings.engine("MergeTree", EVENT_IDS_TABLE),
    )
}

/// Columns named so that the view works on both layouts (`received_at` is a
/// `DateTime` on 18.16 and a `DateTime64(3)` elsewhere: whole seconds here).
const EVENT_IDS_COLUMNS: &str = "kafka_topic, kafka_partition, kafka_offset, toDateTime(received_at) AS received_at, team_id, event_id";

fn event_ids_view(settings: &SchemaSettings) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{} TO {}\nAS SELECT {EVENT_IDS_COLUMNS}\nFROM {}",
        settings.qualified(EVENT_IDS_VIEW),
        settings.on_cluster(),
        settings.qualified(EVENT_IDS_TABLE),
        settings.events()
    )
}

/// Events stored before this migration, so retries of them are recognised
/// after an upgrade. A crash that runs it twice only repeats ids, which the
/// rebuild reads as a set.
fn event_ids_backfill(settings: &SchemaSettings) -> String {
    format!(
        "INSERT INTO {} SELECT {EVENT_IDS_COLUMNS} FROM {} \
         WHERE received_at >= toDateTime(now() - {})",
        settings.qualified(EVENT_IDS_TABLE),
        settings.events(),
        u64::from(EVENT_IDS_DAYS) * 86_400,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerVersion;

    fn caps(major: u32, minor: u32) -> Capabilities {
        Capabilities::from_version(ServerVersion::new(major, minor, 1))
    }

    fn settings(retention: Option<u32>) -> SchemaSettings {
        SchemaSettings {
            retention_days: retention,
            ..SchemaSettings::new("sluice")
        }
    }

    fn events_sql(c: &Capabilities, s: &SchemaSettings) -> String {
        migrations(c, s)
            .into_iter()
            .find(|m| m.name == "events")
            .unwrap()
            .statements
            .concat()
    }

    #[test]
    fn versions_are_increasing_and_named() {
        let all = migrations(&caps(18, 16), &settings(None));
        let versions: Vec<u32> = all.iter().map(|m| m.version).collect();
        assert_eq!(versions, [1, 2, 3, 4]);
        assert!(all.iter().all(|m| !m.statements.is_empty()));
        for m in &all {
            for s in &m.statements {
                // An INSERT may repeat rows only where they are read as a set.
                let idempotent = s.contains("IF NOT EXISTS")
                    || s.starts_with(&format!("INSERT INTO sluice.{EVENT_IDS_TABLE} "));
                assert!(idempotent, "not idempotent: {s}");
            }
        }
    }

    #[test]
    fn on_a_cluster_every_statement_runs_on_cluster_and_tables_are_replicated() {
        let settings = SchemaSettings {
            cluster: Some("sluice".to_owned()),
            ..SchemaSettings::new("db")
        };
        let all = migrations(&caps(18, 16), &settings);
        assert_eq!(
            all.iter().map(|m| m.version).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        for statement in all.iter().flat_map(|m| &m.statements) {
            let first = statement.lines().next().unwrap();
            assert!(first.contains(" ON CLUSTER sluice"), "{first}");
            assert!(!statement.starts_with("INSERT"), "no backfill: {statement}");
        }
        let engines: Vec<&str> = all
            .iter()
            .flat_map(|m| &m.statements)
            .filter_map(|s| s.lines().find(|l| l.starts_with("ENGINE = ")))
            .collect();
        assert_eq!(
            engines,
            [
                "ENGINE = ReplacingMergeTree",
                "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/events', '{replica}')",
                "ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/loader_progress', '{replica}')",
                "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/event_ids', '{replica}')",
                "ENGINE = Distributed(sluice, db, events, rand())",
            ],
            "each node keeps its own schema_migrations"
        );
        let modern = migrations(&caps(26, 9), &settings);
        assert!(
            !modern
                .iter()
                .flat_map(|m| &m.statements)
                .any(|s| s.contains("non_replicated")),
            "replicated tables deduplicate through ZooKeeper"
        );
        assert_eq!(
            settings.engine("SummingMergeTree(events)", "t"),
            "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/t', '{replica}', events)"
        );
        let bad = SchemaSettings {
            cluster: Some("a b".to_owned()),
            ..SchemaSettings::new("db")
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn legacy_events_ddl_uses_only_18_16_features() {
        let sql = events_sql(&caps(18, 16), &settings(Some(30)));
        assert!(sql.contains("timestamp DateTime('UTC'),\n    timestamp_ms UInt16"));
        assert!(sql.contains("received_at_ms UInt16"));
        assert!(sql.contains("ORDER BY (team_id, event, timestamp, timestamp_ms, event_id)"));
        assert!(sql.contains("PARTITION BY toYYYYMMDD(timestamp)"));
        for absent in ["DateTime64", "LowCardinality", "CODEC", "TTL", "SETTINGS"] {
            assert!(!sql.contains(absent), "{absent} in {sql}");
        }
    }

    #[test]
    fn modern_events_ddl_uses_everything() {
        let sql = events_sql(&caps(26, 9), &settings(Some(90)));
        assert!(sql.contains("timestamp DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))"));
        assert!(sql.contains("team_id LowCardinality(String)"));
        assert!(sql.contains("kafka_topic LowCardinality(String)"));
        assert!(sql.contains("user_id String,"));
        assert!(sql.contains("properties String CODEC(ZSTD(3))"));
        assert!(sql.contains("TTL toDate(timestamp) + INTERVAL 90 DAY"));
        assert!(sql.contains("SETTINGS non_replicated_deduplication_window = 1000"));
        assert!(sql.contains("ORDER BY (team_id, event, timestamp, event_id)"));
        assert!(!sql.contains("timestamp_ms"));
        assert!(!events_sql(&caps(26, 9), &settings(None)).contains("TTL"));
    }

    #[test]
    fn progress_table_dedups_where_the_server_can() {
        let all = |c: &Capabilities| {
            migrations(c, &settings(Some(5)))
                .into_iter()
                .flat_map(|m| m.statements)
                .collect::<Vec<_>>()
                .join(";\n")
        };
        let legacy = all(&caps(18, 16));
        for absent in ["DateTime64", "LowCardinality", "CODEC", "TTL", "SETTINGS"] {
            assert!(!legacy.contains(absent), "{absent} in {legacy}");
        }
        let modern = all(&caps(26, 9));
        assert_eq!(
            modern
                .matches("SETTINGS non_replicated_deduplication_window = 1000")
                .count(),
            2
        );
        assert!(modern.contains("TO sluice.loader_progress\nAS SELECT"));
    }

    #[test]
    fn names_are_validated() {
        assert!(settings(None).validate().is_ok());
        let mut bad = settings(None);
        bad.events_table = "events; DROP TABLE x".into();
        assert!(bad.validate().is_err());
        bad.events_table = "loader_progress".into();
        assert!(bad.validate().is_err());
        assert!(settings(Some(0)).validate().is_err());
        assert!(SchemaSettings::new("1db").validate().is_err());
    }
}
