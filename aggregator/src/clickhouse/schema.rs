//! The aggregator's versioned migrations (component `aggregator` in the
//! shared `schema_migrations` table), rendered for a server's capabilities.
//!
//! | version | name | creates |
//! |---|---|---|
//! | 1 | `bootstrap` | the database and `schema_migrations` (shared with the loader) |
//! | 2 | `rollups_5m` | the 5-minute rollup table the aggregator writes |
//! | 3 | `rollups_hourly_daily` | `rollups_hourly`, `rollups_daily` and their views |
//! | 4 | `dau_daily` | `dau_daily` (unique users per team and day) and its view |
//! | 5 | `rollups_all` | on a cluster only: `Distributed` tables over the four, `<name>_all`, for reads |
//!
//! On a cluster every statement runs `ON CLUSTER` and every table is the
//! `Replicated` form of its engine, as the loader's (see
//! `sluice_clickhouse::schema`): a partition's rollups go to the shard that
//! holds its raw events (`sluice_clickhouse::shards`), so the views of each
//! shard roll up that shard's rows, and the `_all` tables add the shards up
//! (a user is in one partition, hence one shard, so DAU states merge across
//! shards without counting anyone twice).
//!
//! There the views also write each block's Kafka partition and the highest
//! offset it covers (`kafka_partition`, `covered`; read by nobody). A
//! replicated table drops an insert block identical to one it already has,
//! and on 18.16 that holds for the blocks a view writes too: without those
//! columns two different 5-minute inserts that roll up to the same
//! `(team, day, event, count)` would count once (the real-cluster test
//! caught it: 1,771 of 2,000). With them, distinct inserts give distinct
//! blocks, while a retried insert, being the same rows, still gives the
//! same blocks and is dropped as it should be.
//!
//! Same rules as the loader's: append, never edit; every statement idempotent.
//!
//! ## `rollups_5m`
//! A plain `MergeTree`: one row per emission (a closed window's count for one
//! key, or a late correction), partitioned by UTC day, ordered for the
//! dashboards' team/time/event queries. Not `SummingMergeTree`: each row keeps
//! the Kafka partition and the highest offset it covers, which a recovering
//! aggregator reads back to skip what is already stored (see
//! [`crate::window`]); summing would merge those away. Queries `sum(events)`.
//!
//! ## The views
//! Materialised views on `rollups_5m` feed `SummingMergeTree` tables by hour
//! and by day (events per team and event name) and an `AggregatingMergeTree`
//! of `uniqState(user_id)` per team and day (daily active users). A view
//! sees exactly the rows of each insert into `rollups_5m`, and the aggregator
//! never inserts a row twice (it re-reads what is stored before retrying), so
//! the views count every event once. Where the server has insert
//! deduplication, each insert also carries a token derived from its content
//! and `deduplicate_blocks_in_dependent_materialized_views`, so a retried
//! insert that the server had applied after all is dropped by the table and
//! by every view.
//!
//! With capabilities the DDL uses `LowCardinality(String)` for team, event and
//! topic, `CODEC(Delta, ZSTD(1))` on times and offsets, and a TTL on
//! `rollups_5m` when retention is set (hourly and daily rollups are small and
//! kept). `uniq` is exact up to 65,536 users per team and day and within
//! about 1% beyond.

use sluice_clickhouse::{Capabilities, Migration, SchemaSettings, bootstrap_for};

pub const COMPONENT: &str = "aggregator";
pub use sluice_clickhouse::rollups::{DAU_DAILY, ROLLUPS_5M, ROLLUPS_DAILY, ROLLUPS_HOURLY};

/// The columns of `rollups_5m`, in insert order, with their plain types.
pub const ROLLUP_COLUMNS: &[(&str, &str)] = &[
    ("window_start", "DateTime('UTC')"),
    ("team_id", "String"),
    ("event", "String"),
    ("user_id", "String"),
    ("events", "UInt64"),
    ("late", "UInt8"),
    ("kafka_topic", "String"),
    ("kafka_partition", "UInt32"),
    ("max_offset", "UInt64"),
    ("emitted_at", "DateTime('UTC')"),
];

const LOW_CARDINALITY: &[&str] = &["team_id", "event", "kafka_topic"];

fn codec(column: &str) -> Option<&'static str> {
    match column {
        "window_start" | "emitted_at" | "max_offset" => Some("CODEC(Delta, ZSTD(1))"),
        "user_id" => Some("CODEC(ZSTD(1))"),
        _ => None,
    }
}

/// Every migration in version order, for the database (and cluster, if
/// any) of `place`, whose name must be an identifier.
pub fn migrations(
    caps: &Capabilities,
    place: &SchemaSettings,
    retention_days: u32,
) -> Vec<Migration> {
    let mut all = vec![
        bootstrap_for(place),
        Migration {
            version: 2,
            name: "rollups_5m",
            statements: vec![rollups_5m(caps, place, retention_days)],
        },
        Migration {
            version: 3,
            name: "rollups_hourly_daily",
            statements: vec![
                summing(caps, place, ROLLUPS_HOURLY, "hour", "DateTime('UTC')"),
                summing_view(place, ROLLUPS_HOURLY, "hour", "toStartOfHour(window_start)"),
                summing(caps, place, ROLLUPS_DAILY, "day", "Date"),
                summing_view(place, ROLLUPS_DAILY, "day", "toDate(window_start)"),
            ],
        },
        Migration {
            version: 4,
            name: "dau_daily",
            statements: vec![dau_table(caps, place), dau_view(place)],
        },
    ];
    let readers: Vec<String> = [ROLLUPS_5M, ROLLUPS_HOURLY, ROLLUPS_DAILY, DAU_DAILY]
        .iter()
        .filter_map(|table| place.all_shards_table(table))
        .collect();
    if !readers.is_empty() {
        all.push(Migration {
            version: 5,
            name: "rollups_all",
            statements: readers,
        });
    }
    all
}

fn column(caps: &Capabilities, name: &str, ty: &str) -> String {
    let mut sql = if caps.low_cardinality && LOW_CARDINALITY.contains(&name) {
        format!("    {name} LowCardinality({ty})")
    } else {
        format!("    {name} {ty}")
    };
    if caps.codecs
        && let Some(codec) = codec(name)
    {
        sql.push(' ');
        sql.push_str(codec);
    }
    sql
}

fn rollups_5m(caps: &Capabilities, place: &SchemaSettings, retention_days: u32) -> String {
    let database = &place.database;
    let columns = ROLLUP_COLUMNS
        .iter()
        .map(|(name, ty)| column(caps, name, ty))
        .collect::<Vec<_>>()
        .join(",\n");
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {database}.{ROLLUPS_5M}{}\n(\n{columns}\n)\n\
         ENGINE = {}\nPARTITION BY toYYYYMMDD(window_start)\n\
         ORDER BY (team_id, window_start, event, user_id)",
        place.on_cluster(),
        place.engine("MergeTree", ROLLUPS_5M),
    );
    if caps.ttl && retention_days > 0 {
        sql.push_str(&format!(
            "\nTTL window_start + INTERVAL {retention_days} DAY"
        ));
    }
    dedup_window(caps, place, &mut sql);
    sql
}

/// Insert-token deduplication on a table that is not replicated (a
/// replicated one deduplicates through ZooKeeper anyway).
fn dedup_window(caps: &Capabilities, place: &SchemaSettings, sql: &mut String) {
    if caps.non_replicated_deduplication_window && place.cluster.is_none() {
        sql.push_str("\nSETTINGS non_replicated_deduplication_window = 1000");
    }
}

/// On a cluster, the columns that make each view block unique per source
/// insert (see the module docs): in the table, in the view's select, and
/// in its `GROUP BY`. `state`: the table keeps aggregate states.
fn block_identity(place: &SchemaSettings, state: bool) -> (String, &'static str, &'static str) {
    match (&place.cluster, state) {
        (None, _) => (String::new(), "", ""),
        (Some(_), true) => (
            ",\n    kafka_partition UInt32,\n    covered AggregateFunction(max, UInt64)".to_owned(),
            ", kafka_partition, maxState(max_offset) AS covered",
            ", kafka_partition",
        ),
        (Some(_), false) => (
            ",\n    kafka_partition UInt32,\n    covered UInt64".to_owned(),
            ", kafka_partition, max(max_offset) AS covered",
            ", kafka_partition",
        ),
    }
}

fn summing(
    caps: &Capabilities,
    place: &SchemaSettings,
    table: &str,
    time: &str,
    ty: &str,
) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}.{table}{}\n(\n{},\n    {time} {ty},\n{},\n    events UInt64{}\n)\n\
         ENGINE = {}\nPARTITION BY toYYYYMM({time})\n\
         ORDER BY (team_id, {time}, event)",
        place.database,
        place.on_cluster(),
        column(caps, "team_id", "String"),
        column(caps, "event", "String"),
        block_identity(place, false).0,
        place.engine("SummingMergeTree(events)", table),
    );
    dedup_window(caps, place, &mut sql);
    sql
}

fn summing_view(place: &SchemaSettings, table: &str, time: &str, expr: &str) -> String {
    let database = &place.database;
    let (_, identity, by) = block_identity(place, false);
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_mv{} TO {database}.{table}\n\
         AS SELECT team_id, {expr} AS {time}, event, sum(events) AS events{identity}\n\
         FROM {database}.{ROLLUPS_5M}\nGROUP BY team_id, {time}, event{by}",
        place.on_cluster()
    )
}

fn dau_table(caps: &Capabilities, place: &SchemaSettings) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}.{DAU_DAILY}{}\n(\n{},\n    day Date,\n    users AggregateFunction(uniq, String){}\n)\n\
         ENGINE = {}\nPARTITION BY toYYYYMM(day)\nORDER BY (team_id, day)",
        place.database,
        place.on_cluster(),
        column(caps, "team_id", "String"),
        block_identity(place, true).0,
        place.engine("AggregatingMergeTree", DAU_DAILY),
    );
    dedup_window(caps, place, &mut sql);
    sql
}

fn dau_view(place: &SchemaSettings) -> String {
    let database = &place.database;
    let (_, identity, by) = block_identity(place, true);
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{DAU_DAILY}_mv{} TO {database}.{DAU_DAILY}\n\
         AS SELECT team_id, toDate(window_start) AS day, uniqState(user_id) AS users{identity}\n\
         FROM {database}.{ROLLUPS_5M}\nGROUP BY team_id, day{by}",
        place.on_cluster()
    )
}

#[cfg(test)]
mod tests {
    use sluice_clickhouse::ServerVersion;

    use super::*;

    fn caps(major: u32) -> Capabilities {
        Capabilities::from_version(ServerVersion::new(major, 1, 0))
    }

    #[test]
    fn old_servers_get_plain_types_and_modern_ones_the_features() {
        let db = SchemaSettings::new("db");
        let old = migrations(&caps(18), &db, 30).concat_sql();
        assert!(!old.contains("LowCardinality") && !old.contains("CODEC") && !old.contains("TTL"));
        let modern = migrations(&caps(26), &db, 30).concat_sql();
        assert!(modern.contains("team_id LowCardinality(String)"));
        assert!(modern.contains("max_offset UInt64 CODEC(Delta, ZSTD(1))"));
        assert!(modern.contains("TTL window_start + INTERVAL 30 DAY"));
        assert!(modern.contains("non_replicated_deduplication_window"));
    }

    #[test]
    fn versions_are_consecutive_and_statements_idempotent() {
        let all = migrations(&caps(26), &SchemaSettings::new("db"), 0);
        for (i, m) in all.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            for statement in &m.statements {
                assert!(statement.contains("IF NOT EXISTS"), "{statement}");
            }
        }
    }

    #[test]
    fn on_a_cluster_tables_are_replicated_and_read_through_distributed_ones() {
        let place = SchemaSettings {
            cluster: Some("sluice".to_owned()),
            ..SchemaSettings::new("db")
        };
        let all = migrations(&caps(18), &place, 0);
        assert_eq!(
            all.iter().map(|m| m.version).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        for statement in all.iter().flat_map(|m| &m.statements) {
            let first = statement.lines().next().unwrap();
            assert!(first.contains(" ON CLUSTER sluice"), "{first}");
        }
        let sql = all.concat_sql();
        assert!(sql.contains(
            "ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/rollups_hourly', '{replica}', events)"
        ));
        assert!(sql.contains(
            "ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/dau_daily', '{replica}')"
        ));
        assert!(sql.contains("ENGINE = Distributed(sluice, db, dau_daily, rand())"));
        // View blocks carry what makes them unique per source insert.
        assert!(sql.contains(
            "sum(events) AS events, kafka_partition, max(max_offset) AS covered\nFROM db.rollups_5m\nGROUP BY team_id, day, event, kafka_partition"
        ));
        assert!(sql.contains("covered AggregateFunction(max, UInt64)"));
        let single = migrations(&caps(18), &SchemaSettings::new("db"), 0).concat_sql();
        assert!(
            !single.contains("covered"),
            "one server's schema is unchanged"
        );
        assert!(
            !migrations(&caps(26), &place, 0)
                .concat_sql()
                .contains("non_replicated")
        );
    }

    trait ConcatSql {
        fn concat_sql(&self) -> String;
    }

    impl ConcatSql for Vec<Migration> {
        fn concat_sql(&self) -> String {
            self.iter()
                .flat_map(|m| m.statements.iter().cloned())
                .collect::<Vec<_>>()
                .join(";\n")
        }
    }
}
