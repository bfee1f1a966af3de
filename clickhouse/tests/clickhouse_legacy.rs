//! The ClickHouse layer against the real local server (Debian's 18.16, the
//! legacy layout): probing, migrations (twice, and concurrently), exact
//! read-back of inserted rows down to the RowBinary bytes, `loaded_offsets`,
//! retention by partition and error classification.
//!
//! Each test works in its own database `sluice_test_<uuid>`, dropped when the
//! test ends (also when it fails). The server comes from
//! `SLUICE_CLICKHOUSE_URL` (default the local stack's `http://127.0.0.1:18123`);
//! if it is not running the tests fail saying so (`scripts/stack up`).

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, Utc};
use clickhouse::Client;
use sluice_clickhouse::{
    Capabilities, EventRow, InsertError, LegacyRow, RowLayout, SchemaSettings, apply_retention,
    encode_rows, insert_batch, loaded_offsets, migrate, probe, row,
};
use sluice_core::{Event, Timestamp};

const TOPIC: &str = "events.raw";

fn url() -> String {
    std::env::var("SLUICE_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".to_owned())
}

fn server() -> Client {
    Client::default().with_url(url()).with_validation(false)
}

/// A fresh database name; the database itself is created by `migrate`.
struct TestDb {
    name: String,
}

impl TestDb {
    fn new() -> Self {
        Self {
            name: format!("sluice_test_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// A client whose default database is this one.
    fn client(&self) -> Client {
        server().with_database(&self.name)
    }

    fn settings(&self) -> SchemaSettings {
        SchemaSettings::new(&self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on itself:
        // a short-lived thread with its own runtime does the cleanup.
        let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async { server().query(&sql).execute().await })
        })
        .join();
    }
}

async fn caps() -> Capabilities {
    probe(&server()).await.unwrap_or_else(|e| {
        panic!(
            "ClickHouse at {} is not answering ({e}); start the local stack with `scripts/stack up`",
            url()
        )
    })
}

/// Contract events as `events.raw` carries them, with awkward content: quotes,
/// backslashes, non-ASCII, long properties (multi-byte string lengths), no
/// context, millisecond edges and the ends of the storable range.
fn wire_events() -> Vec<String> {
    let long = "x".repeat(300);
    [
        (1_764_125_907_123_i64, 1_764_125_907_999_i64, r#"{"plan":"pro","seats":3}"#.to_owned(), Some(r#"{"ip":"203.0.113.9"}"#)),
        (1_764_125_907_000, 1_764_125_908_001, r#"{"quote":"it's \"x\"","path":"C:\\dir","emoji":"é🚀"}"#.to_owned(), None),
        (0, 1, "{}".to_owned(), Some("{}")),
        (4_291_660_800_000, 4_291_660_799_999, format!(r#"{{"long":"{long}"}}"#), None),
        (1_764_039_507_001, 1_764_125_907_500, r#"{"nested":{"a":[1,2,{"b":null}]}}"#.to_owned(), Some(r#"{"library":{"name":"sdk","version":"1.2.3"}}"#)),
    ]
    .iter()
    .enumerate()
    .map(|(i, (ts, received, properties, context))| {
        let context = context.map(|c| format!(r#","context":{c}"#)).unwrap_or_default();
        format!(
            r#"{{"event_id":"0190d6a8-0000-7000-8000-{:012x}","team_id":"team-{}","event":"Button \"Clicked\" {i}","user_id":"üser-{i}","timestamp":{ts},"received_at":{received},"schema_version":{},"properties":{properties}{context}}}"#,
            0xabc0 + i,
            i % 2,
            i + 1,
        )
    })
    .collect()
}

fn parse(wire: &[String]) -> Vec<Event<'_>> {
    wire.iter()
        .map(|w| serde_json::from_str(w).unwrap())
        .collect()
}

const LOADED_AT: Timestamp = Timestamp::from_millis(1_764_200_000_789);

/// Rows for `events` at consecutive offsets from `first`, alternating two partitions.
fn rows<'a>(layout: RowLayout, events: &'a [Event<'a>], first: i64) -> Vec<EventRow<'a>> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let i = i as i64;
            row(layout, e, TOPIC, (i % 2) as i32, first + i, LOADED_AT)
        })
        .collect()
}

async fn rowbinary(client: &Client, sql: &str) -> Vec<u8> {
    let mut cursor = client.query(sql).fetch_bytes("RowBinary").unwrap();
    cursor.collect().await.unwrap().to_vec()
}

#[tokio::test]
async fn probe_sees_a_legacy_server() {
    let caps = caps().await;
    // The local stack runs Debian's 18.16: none of the modern features.
    if caps.version.major < 19 {
        assert_eq!(caps, Capabilities::from_version(caps.version));
        assert!(!caps.datetime64 && !caps.low_cardinality && !caps.codecs && !caps.ttl);
        assert!(!caps.insert_dedup_token && !caps.non_replicated_deduplication_window);
        assert!(!caps.json_extract);
    }
    assert_eq!(caps.layout() == RowLayout::Modern, caps.datetime64);
}

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let caps = caps().await;
    let db = TestDb::new();
    let first = migrate(&server(), &caps, &db.settings()).await.unwrap();
    assert_eq!(first.applied, [1, 2, 3, 4]);
    assert!(first.already_applied.is_empty());
    assert_eq!(first.layout, caps.layout());

    let second = migrate(&server(), &caps, &db.settings()).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.already_applied, [1, 2, 3, 4]);

    let client = db.client();
    let recorded: Vec<(u32, String)> = client
        .query("SELECT version, name FROM schema_migrations FINAL ORDER BY version")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        recorded,
        [
            (1, "bootstrap".to_owned()),
            (2, "events".to_owned()),
            (3, "loader_progress".to_owned()),
            (4, "event_ids".to_owned())
        ]
    );
    let ddl: String = client
        .query("SHOW CREATE TABLE events")
        .fetch_one()
        .await
        .unwrap();
    assert!(ddl.contains("ReplacingMergeTree"), "{ddl}");
    assert!(ddl.contains("PARTITION BY toYYYYMMDD(timestamp)"), "{ddl}");
    if caps.layout() == RowLayout::Legacy {
        assert!(ddl.contains("timestamp_ms UInt16"), "{ddl}");
        assert!(
            ddl.contains("ORDER BY (team_id, event, timestamp, timestamp_ms, event_id)"),
            "{ddl}"
        );
    }
}

#[tokio::test]
async fn loaders_starting_together_all_succeed() {
    let caps = caps().await;
    let db = TestDb::new();
    let settings = db.settings();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (caps, settings) = (caps, settings.clone());
            tokio::spawn(async move { migrate(&server(), &caps, &settings).await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    let versions: Vec<u32> = db
        .client()
        .query("SELECT DISTINCT version FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(versions, [1, 2, 3, 4]);
    assert!(
        migrate(&server(), &caps, &settings)
            .await
            .unwrap()
            .applied
            .is_empty()
    );
}

#[tokio::test]
async fn inserted_rows_read_back_exactly() {
    let caps = caps().await;
    let db = TestDb::new();
    let report = migrate(&server(), &caps, &db.settings()).await.unwrap();
    let client = db.client();
    let wire = wire_events();
    let events = parse(&wire);
    let mut batch = rows(report.layout, &events, 1000);
    // A dedup token is passed as the loader does; 18.16 would refuse the
    // setting outright, so this also proves it is only sent where supported.
    insert_batch(
        &client,
        &caps,
        "events",
        &batch,
        Some("events.raw:0:1000-1004"),
    )
    .await
    .unwrap();

    batch.sort_by_key(|r| (r.kafka_partition(), r.kafka_offset()));
    let columns = report.layout.column_list();
    let order = "ORDER BY kafka_partition, kafka_offset";

    // Byte for byte: what the server stored is what we encoded.
    let stored = rowbinary(&client, &format!("SELECT {columns} FROM events {order}")).await;
    assert_eq!(stored, encode_rows(&batch));

    // Field by field, through the crate's decoder.
    if report.layout == RowLayout::Legacy {
        let mut cursor = client
            .query(&format!("SELECT ?fields FROM events {order}"))
            .fetch::<LegacyRow<'_>>()
            .unwrap();
        let mut back = Vec::new();
        while let Some(r) = cursor.next().await.unwrap() {
            back.push(r.into_owned());
        }
        let sent: Vec<LegacyRow<'_>> = batch
            .iter()
            .map(|r| match r {
                EventRow::Legacy(r) => r.clone(),
                EventRow::Modern(_) => unreachable!(),
            })
            .collect();
        assert_eq!(back, sent);
    }

    // And as the server itself reads the values: UUID text, UTC times, the
    // exact millisecond, the UTC day (the partition), JSON text. (The day is
    // compared as toYYYYMMDD: 18.16 prints day 0 as `0000-00-00`.)
    let instant = match report.layout {
        RowLayout::Legacy => {
            "toInt64(timestamp) * 1000 + timestamp_ms, toInt64(received_at) * 1000 + received_at_ms"
        }
        RowLayout::Modern => {
            "toUnixTimestamp64Milli(timestamp), toUnixTimestamp64Milli(received_at)"
        }
    };
    // event_id, timestamp ms, received_at ms, day, properties, context, loaded_at
    type Seen = (String, i64, i64, u32, String, String, u32);
    let seen: Vec<Seen> = client
        .query(&format!(
            "SELECT toString(event_id), {instant}, toYYYYMMDD(timestamp), properties, context, loaded_at FROM events {order}"
        ))
        .fetch_all()
        .await
        .unwrap();
    let mut expected: Vec<(i32, i64, Seen)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let day = chrono::DateTime::from_timestamp_millis(e.timestamp.as_millis())
                .unwrap()
                .date_naive()
                .format("%Y%m%d")
                .to_string()
                .parse::<u32>()
                .unwrap();
            (
                (i % 2) as i32,
                1000 + i as i64,
                (
                    e.event_id.to_string(),
                    e.timestamp.as_millis(),
                    e.received_at.as_millis(),
                    day,
                    e.properties.get().to_owned(),
                    e.context.map(|c| c.get().to_owned()).unwrap_or_default(),
                    1_764_200_000,
                ),
            )
        })
        .collect();
    expected.sort_by_key(|(p, o, _)| (*p, *o));
    let expected: Vec<_> = expected.into_iter().map(|(_, _, v)| v).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_multi_megabyte_batch_streams_in_chunks_and_stores_exactly() {
    let caps = caps().await;
    let db = TestDb::new();
    let report = migrate(&server(), &caps, &db.settings()).await.unwrap();
    let client = db.client();
    // ~5 MB of RowBinary: several 1 MiB chunks (each its own LZ4 frame).
    let n = 20_000_u32;
    let pad = "p".repeat(200);
    let wire: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"event_id":"0190d6a8-0000-7000-8000-{i:012x}","team_id":"t{}","event":"e","user_id":"u{i}","timestamp":{},"received_at":1764125907000,"schema_version":1,"properties":{{"i":{i},"pad":"{pad}"}}}}"#,
                i % 7,
                1_764_125_907_000_i64 + i64::from(i),
            )
        })
        .collect();
    let events = parse(&wire);
    let batch: Vec<EventRow<'_>> = events
        .iter()
        .zip(0_i64..)
        .map(|(e, offset)| row(report.layout, e, TOPIC, 3, offset, LOADED_AT))
        .collect();
    assert!(encode_rows(&batch).len() > 4 << 20);
    insert_batch(&client, &caps, "events", &batch, None)
        .await
        .unwrap();

    let (count, distinct, last): (u64, u64, i64) = client
        .query("SELECT count(), uniqExact(event_id), max(kafka_offset) FROM events")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        (count, distinct, last),
        (u64::from(n), u64::from(n), i64::from(n) - 1)
    );
    assert_eq!(
        loaded_offsets(&client, TOPIC).await.unwrap(),
        BTreeMap::from([(3, i64::from(n) - 1)])
    );
    let stored = rowbinary(
        &client,
        &format!(
            "SELECT {} FROM events ORDER BY kafka_offset",
            report.layout.column_list()
        ),
    )
    .await;
    assert!(stored == encode_rows(&batch), "stored bytes differ");
}

#[tokio::test]
async fn the_crates_own_insert_agrees_with_the_encoder() {
    let caps = caps().await;
    let db = TestDb::new();
    let report = migrate(&server(), &caps, &db.settings()).await.unwrap();
    if report.layout != RowLayout::Legacy {
        return;
    }
    let client = db.client();
    let wire = wire_events();
    let events = parse(&wire);
    let batch = rows(RowLayout::Legacy, &events, 0);
    let mut insert = client.insert::<LegacyRow<'_>>("events").await.unwrap();
    for r in &batch {
        let EventRow::Legacy(r) = r else {
            unreachable!()
        };
        insert.write(r).await.unwrap();
    }
    insert.end().await.unwrap();
    let mut sorted = batch.clone();
    sorted.sort_by_key(|r| (r.kafka_partition(), r.kafka_offset()));
    let stored = rowbinary(
        &client,
        &format!(
            "SELECT {} FROM events ORDER BY kafka_partition, kafka_offset",
            RowLayout::Legacy.column_list()
        ),
    )
    .await;
    assert_eq!(stored, encode_rows(&sorted));
}

#[tokio::test]
async fn loaded_offsets_is_the_highest_offset_per_partition() {
    let caps = caps().await;
    let db = TestDb::new();
    let report = migrate(&server(), &caps, &db.settings()).await.unwrap();
    let client = db.client();
    assert!(loaded_offsets(&client, TOPIC).await.unwrap().is_empty());

    let wire = wire_events();
    let events = parse(&wire);
    // Three inserts: partitions 0 and 1 from offset 10, then 0 and 1 from 20,
    // then an older range (a replay) that must not lower anything.
    for first in [10, 20, 2] {
        let batch = rows(report.layout, &events, first);
        insert_batch(&client, &caps, "events", &batch, None)
            .await
            .unwrap();
    }
    // rows(): partition 0 gets first, first+2, first+4; partition 1 first+1, first+3.
    let expected = BTreeMap::from([(0, 24), (1, 23)]);
    assert_eq!(loaded_offsets(&client, TOPIC).await.unwrap(), expected);
    assert!(
        loaded_offsets(&client, "other.topic")
            .await
            .unwrap()
            .is_empty()
    );

    // After merging, the progress table is one row per partition.
    client
        .query("OPTIMIZE TABLE loader_progress FINAL")
        .execute()
        .await
        .unwrap();
    assert_eq!(loaded_offsets(&client, TOPIC).await.unwrap(), expected);
    let (stored_rows, rows_loaded): (u64, u64) = client
        .query(
            "SELECT count(), (SELECT countMerge(rows) FROM loader_progress) FROM loader_progress",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((stored_rows, rows_loaded), (2, 15));
}

#[tokio::test]
async fn event_ids_rebuild_a_partitions_kept_events_below_an_offset() {
    use sluice_clickhouse::seen::{Scope, rebuild};
    use sluice_core::dedup::{Seen, SeenIds, secs};

    let caps = caps().await;
    let db = TestDb::new();
    let report = migrate(&server(), &caps, &db.settings()).await.unwrap();
    let client = db.client();
    let wire = wire_events();
    let now = Timestamp::now().as_millis();
    // Received a minute apart, the last two days before the others: out
    // of a one-hour window's reach.
    let mut events = parse(&wire);
    for (i, event) in events.iter_mut().enumerate() {
        let back = if i < 2 { 2 * 86_400_000 } else { 0 };
        event.received_at = Timestamp::from_millis(now - back - 60_000 * (5 - i as i64));
    }
    // Offsets 10..=14, partitions 0, 1, 0, 1, 0 (see `rows`).
    let batch = rows(report.layout, &events, 10);
    insert_batch(&client, &caps, "events", &batch, None)
        .await
        .unwrap();
    let partition = |p, before| Scope {
        topic: TOPIC,
        partition: p,
        before_offset: before,
    };
    let key_of = |seen: &SeenIds, i: usize| seen.key(&events[i].team_id, events[i].event_id);
    let at = |i: usize| secs(events[i].received_at.as_millis());

    // A day's window reaches back to every row of partition 0 (offsets 10,
    // 12, 14; the first is two days older than the newest, beyond it).
    let mut seen = SeenIds::new(86_400);
    let read = rebuild(&client, &partition(0, None), &mut seen)
        .await
        .unwrap();
    assert_eq!((read, seen.len()), (2, 2), "offsets 12 and 14");
    assert_eq!(seen.check(key_of(&seen, 2), at(2) + 10), Seen::Duplicate);
    assert_eq!(seen.check(key_of(&seen, 4), at(4)), Seen::Duplicate);
    assert_eq!(
        seen.check(key_of(&seen, 1), at(1)),
        Seen::First,
        "partition 1"
    );
    // Below offset 14 only: the aggregator's resume point.
    let mut seen = SeenIds::new(86_400);
    rebuild(&client, &partition(0, Some(14)), &mut seen)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen.check(key_of(&seen, 2), at(2)), Seen::Duplicate);
    assert_eq!(seen.check(key_of(&seen, 4), at(4)), Seen::First);
    // A three-day window reaches the older row too; an empty partition reads nothing.
    let mut seen = SeenIds::new(3 * 86_400);
    assert_eq!(
        rebuild(&client, &partition(0, None), &mut seen)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        rebuild(&client, &partition(7, None), &mut seen)
            .await
            .unwrap(),
        0
    );

    // Progress for records that left no row: the maximum moves, no row counted.
    sluice_clickhouse::record_loaded(&client, TOPIC, 0, 40)
        .await
        .unwrap();
    sluice_clickhouse::record_loaded(&client, TOPIC, 1, 5)
        .await
        .unwrap();
    assert_eq!(
        loaded_offsets(&client, TOPIC).await.unwrap(),
        BTreeMap::from([(0, 40), (1, 13)]),
        "a lower offset never lowers the progress"
    );
    let rows_loaded: u64 = client
        .query("SELECT countMerge(rows) FROM loader_progress")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(rows_loaded, 5);
}

#[tokio::test]
async fn retention_drops_expired_day_partitions() {
    let caps = caps().await;
    let db = TestDb::new();
    let settings = SchemaSettings {
        retention_days: Some(3),
        ..db.settings()
    };
    let report = migrate(&server(), &caps, &settings).await.unwrap();
    let client = db.client();
    let today: NaiveDate = Utc::now().date_naive();
    let wire: Vec<String> = [10_u64, 3, 2, 0]
        .iter()
        .enumerate()
        .map(|(i, age)| {
            let day = today.checked_sub_days(Days::new(*age)).unwrap();
            let ms = day.and_hms_milli_opt(12, 0, 0, 5).unwrap().and_utc().timestamp_millis();
            format!(
                r#"{{"event_id":"0190d6a8-0000-7000-8000-00000000000{i}","team_id":"t","event":"e","user_id":"u","timestamp":{ms},"received_at":{ms},"schema_version":1,"properties":{{}}}}"#
            )
        })
        .collect();
    let events = parse(&wire);
    insert_batch(
        &client,
        &caps,
        "events",
        &rows(report.layout, &events, 0),
        None,
    )
    .await
    .unwrap();

    let day = |age: u64| {
        today
            .checked_sub_days(Days::new(age))
            .unwrap()
            .format("%Y%m%d")
            .to_string()
            .parse::<u32>()
            .unwrap()
    };
    let dropped = apply_retention(&server(), &settings, today).await.unwrap();
    assert_eq!(dropped, [day(10), day(3)]);
    let left: Vec<u32> = client
        .query("SELECT DISTINCT toYYYYMMDD(timestamp) AS d FROM events ORDER BY d")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(left, [day(2), day(0)]);
    assert!(
        apply_retention(&server(), &settings, today)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn incompatible_column_types_are_permanent() {
    let caps = caps().await;
    let db = TestDb::new();
    let report = migrate(&server(), &caps, &db.settings()).await.unwrap();
    let client = db.client();
    // Same column names, but `loaded_at` declared 8 bytes wide instead of 4:
    // the server runs out of input mid-row.
    let columns = report
        .layout
        .columns()
        .iter()
        .map(|(name, ty)| {
            let ty = if *name == "loaded_at" { "UInt64" } else { ty };
            format!("{name} {ty}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    client
        .query(&format!(
            "CREATE TABLE events_wrong ({columns}) ENGINE = MergeTree ORDER BY event_id"
        ))
        .execute()
        .await
        .unwrap();
    let wire = wire_events();
    let events = parse(&wire);
    let batch = rows(report.layout, &events[..1], 0);
    let err = insert_batch(&client, &caps, "events_wrong", &batch, None)
        .await
        .unwrap_err();
    assert!(matches!(err, InsertError::Permanent { .. }), "{err}");
    assert!(!err.is_retryable());

    // Nothing reached the real table or the progress table on the way.
    let count: u64 = client
        .query("SELECT count() FROM events_wrong")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    let caps = caps().await;
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::default()
        .with_url(format!("http://127.0.0.1:{port}"))
        .with_validation(false);
    let wire = wire_events();
    let events = parse(&wire);
    let batch = rows(caps.layout(), &events, 0);
    let err = insert_batch(&client, &caps, "events", &batch, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, InsertError::Retryable { code: None, .. }),
        "{err}"
    );

    // A missing table is not the data's fault either: retry, never dead-letter.
    let db = TestDb::new();
    migrate(&server(), &caps, &db.settings()).await.unwrap();
    let err = insert_batch(&db.client(), &caps, "no_such_table", &batch, None)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.code(), Some(60));
}

#[tokio::test]
async fn malformed_calls_send_nothing() {
    let caps = caps().await;
    let wire = wire_events();
    let events = parse(&wire);
    let mut mixed = rows(RowLayout::Legacy, &events, 0);
    mixed.extend(rows(RowLayout::Modern, &events, 10));
    // The server is never contacted for these, so any client will do.
    let client = server();
    for (table, batch) in [("events", &mixed[..]), ("events; DROP", &mixed[..1])] {
        let err = insert_batch(&client, &caps, table, batch, None)
            .await
            .unwrap_err();
        assert!(matches!(err, InsertError::InvalidBatch(_)), "{err}");
    }
    insert_batch(&client, &caps, "events", &[], None)
        .await
        .unwrap();
}
