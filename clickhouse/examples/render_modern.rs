//! Writes what the chdb suite (`tests/chdb/`) checks the modern dialect
//! against: the migrations rendered for a current server, a RowBinary batch
//! encoded by the loader, and the rows it holds as JSON.
//!
//! ```sh
//! cargo run -p sluice-loader --example render_modern -- OUTDIR
//! ```
//!
//! OUTDIR gets `manifest.json` (database, migrations, column structure, the
//! expected rows, the `loaded_offsets` query and its expected answer),
//! `batch.bin` (the RowBinary bytes) and `migrations.sql` (for reading).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;
use sluice_clickhouse::{
    Capabilities, EventRow, Migration, RowLayout, SchemaSettings, ServerVersion, encode_rows,
    loaded_offsets_sql, migrations, row,
};
use sluice_core::{Event, Timestamp};

const TOPIC: &str = "events.raw";

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: render_modern OUTDIR")?,
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    // chdb-core 26.9 is the modern engine the suite runs.
    let caps = Capabilities::from_version(ServerVersion::new(26, 9, 0));
    let settings = SchemaSettings {
        retention_days: Some(90),
        ..SchemaSettings::new("sluice")
    };
    let migrations = migrations(&caps, &settings);

    let wire = sample_events(Timestamp::now());
    let events: Vec<Event<'_>> = wire
        .iter()
        .map(|w| serde_json::from_str(w))
        .collect::<Result<_, _>>()
        .context("sample events are contract JSON")?;
    let rows = event_rows(&events, Timestamp::now());
    let offsets = expected_offsets(&rows);
    let expected_rows = expected_rows(&rows)?;

    std::fs::write(out.join("batch.bin"), encode_rows(&rows))?;
    std::fs::write(out.join("migrations.sql"), migrations_sql(&migrations))?;
    // A rebuild of partition 0 below offset 1000, all receive times.
    let scope = sluice_clickhouse::seen::Scope {
        topic: TOPIC,
        partition: 0,
        before_offset: Some(1_000),
    };
    let seen_sql = [
        sluice_clickhouse::seen::newest_sql(&scope),
        sluice_clickhouse::seen::ids_sql(&scope, 0),
    ];
    let manifest = json!({
        "server_version": caps.version.to_string(),
        "database": settings.database,
        "events_table": settings.events_table,
        "retention_days": settings.retention_days,
        "migrations": migrations.iter().map(|m| json!({
            "version": m.version,
            "name": m.name,
            "statements": m.statements,
        })).collect::<Vec<_>>(),
        "columns": RowLayout::Modern.column_list(),
        "structure": RowLayout::Modern.structure(),
        "batch": "batch.bin",
        "rows": expected_rows,
        "topic": TOPIC,
        "loaded_offsets_sql": loaded_offsets_sql(TOPIC),
        "record_loaded_sql": sluice_clickhouse::progress::record_loaded_sql(TOPIC, 0, 1_000),
        "seen_sql": seen_sql,
        "expected_offsets": offsets,
    });
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    println!(
        "wrote {} rows, {} migrations to {}",
        rows.len(),
        migrations.len(),
        out.display()
    );
    Ok(())
}

/// The events as the loader's rows, spread over three partitions from
/// offset 500.
fn event_rows<'e>(events: &'e [Event<'_>], loaded_at: Timestamp) -> Vec<EventRow<'e>> {
    // Offsets per partition, already in the order the suite reads them back
    // (kafka_partition, kafka_offset), so the stored bytes must equal the file.
    let mut rows: Vec<EventRow<'_>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let partition = i32::try_from(i % 3).unwrap_or(0);
            let offset = 500 + i64::try_from(i).unwrap_or(0);
            row(RowLayout::Modern, e, TOPIC, partition, offset, loaded_at)
        })
        .collect();
    rows.sort_by_key(|r| (r.kafka_partition(), r.kafka_offset()));
    rows
}

/// The highest offset per partition, as `loaded_offsets_sql` must answer.
fn expected_offsets(rows: &[EventRow<'_>]) -> BTreeMap<String, i64> {
    let mut offsets = BTreeMap::new();
    for r in rows {
        let max = offsets
            .entry(r.kafka_partition().to_string())
            .or_insert(i64::MIN);
        *max = (*max).max(r.kafka_offset());
    }
    offsets
}

/// The rows as JSON, as the suite reads them back.
fn expected_rows(rows: &[EventRow<'_>]) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(rows
        .iter()
        .map(|r| match r {
            EventRow::Modern(r) => serde_json::to_value(r),
            EventRow::Legacy(r) => serde_json::to_value(r),
        })
        .collect::<Result<_, _>>()?)
}

/// The migrations as one SQL file, for reading.
fn migrations_sql(migrations: &[Migration]) -> String {
    let sql: Vec<String> = migrations
        .iter()
        .map(|m| {
            format!(
                "-- {} {}\n{};\n",
                m.version,
                m.name,
                m.statements.join(";\n\n")
            )
        })
        .collect();
    sql.join("\n")
}

/// Contract events with the awkward cases: quotes, backslashes, non-ASCII,
/// long JSON (multi-byte string lengths), no context, millisecond edges,
/// several days (partitions) and the last storable instant.
///
/// Times are relative to `now` because the table keeps 90 days (TTL): a
/// current server drops already-expired rows at insert, so fixed past
/// instants would vanish as the calendar moves on. The 1970 edge is covered
/// by the 18.16 suite, whose tables have no TTL.
fn sample_events(now: Timestamp) -> Vec<String> {
    const DAY: i64 = 86_400_000;
    // A whole second, so the offsets below land on chosen milliseconds.
    let base = now.as_millis() / 1000 * 1000;
    let long = "y".repeat(400);
    let cases: [(i64, i64, String, Option<&str>); 7] = [
        (
            base + 123,
            base + 999,
            r#"{"plan":"pro","seats":3}"#.to_owned(),
            Some(r#"{"ip":"203.0.113.9"}"#),
        ),
        (
            base - DAY,
            base + 1,
            r#"{"quote":"it's \"x\"","path":"C:\\dir","emoji":"é🚀"}"#.to_owned(),
            None,
        ),
        (base - 2 * DAY + 999, base, "{}".to_owned(), Some("{}")),
        (
            4_291_660_800_000,
            4_291_660_799_999,
            format!(r#"{{"long":"{long}"}}"#),
            None,
        ),
        (
            base - 30 * DAY + 1,
            base + 500,
            r#"{"nested":{"a":[1,2,{"b":null}]}}"#.to_owned(),
            Some(r#"{"library":{"name":"sdk","version":"1.2.3"}}"#),
        ),
        (
            base - 3 * DAY - 1,
            base - 3 * DAY,
            r#"{"n":-1.5e3}"#.to_owned(),
            None,
        ),
        (
            base - 80 * DAY + 10,
            base + 20,
            r#"{"tab":"a\tb","nl":"a\nb"}"#.to_owned(),
            Some(r#"{"os":"linux"}"#),
        ),
    ];
    cases
        .iter()
        .enumerate()
        .map(|(i, (ts, received, properties, context))| {
            let context = context.map(|c| format!(r#","context":{c}"#)).unwrap_or_default();
            format!(
                r#"{{"event_id":"0190d6a8-{:04x}-7000-8000-{:012x}","team_id":"team-{}","event":"Button \"Clicked\" {i}","user_id":"üser-{i}","timestamp":{ts},"received_at":{received},"schema_version":{},"properties":{properties}{context}}}"#,
                i * 0x1111,
                0xfedc_ba98_0000_u64 + i as u64,
                i % 2,
                i + 1,
            )
        })
        .collect()
}
