//! Writes what the chdb suite (`tests/chdb/test_aggregator_modern.py`)
//! checks the modern dialect against: the aggregator's migrations rendered
//! for a current server, a RowBinary insert of rollup rows exactly as the
//! aggregator encodes it, its dedup token, the recovery query and the
//! dashboard queries, each with the answer it must give.
//!
//! ```sh
//! cargo run -p sluice-aggregator --example render_rollups -- OUTDIR
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;
use sluice_aggregator::clickhouse::rows::{RollupRow, encode_row, seconds};
use sluice_aggregator::clickhouse::schema::{ROLLUP_COLUMNS, ROLLUPS_5M, migrations};
use sluice_aggregator::clickhouse::store::{dedup_token, stored_since_sql};
use sluice_aggregator::window::{Emission, RollupKey, WINDOW_MS, window_start};
use sluice_clickhouse::dashboard::{Granularity, dau_sql, event_counts_sql, top_events_sql};
use sluice_clickhouse::{Capabilities, ServerVersion};
use sluice_core::Timestamp;

const DATABASE: &str = "sluice_agg";
const TOPIC: &str = "events.raw";
const PARTITION: i32 = 3;
const DAY_MS: i64 = 86_400_000;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: render_rollups OUTDIR")?,
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let caps = Capabilities::from_version(ServerVersion::new(26, 9, 0));
    let migrations = migrations(&caps, &sluice_clickhouse::SchemaSettings::new(DATABASE), 90);

    // Windows relative to today (the table keeps 90 days): yesterday 23:55
    // and today 00:00 and 00:05, so hours and days both split.
    let today = Timestamp::now().as_millis().div_euclid(DAY_MS) * DAY_MS;
    let emissions = emissions(today);
    std::fs::write(out.join("batch.bin"), encode(&emissions, today))?;
    let refs: Vec<&Emission> = emissions.iter().collect();

    // Expected answers.
    let from_offset = 1010;
    let table = format!("{DATABASE}.{ROLLUPS_5M}");
    let manifest = json!({
        "database": DATABASE,
        "retention_days": 90,
        "migrations": migrations.iter().map(|m| json!({
            "version": m.version, "name": m.name, "statements": m.statements,
        })).collect::<Vec<_>>(),
        "columns": ROLLUP_COLUMNS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        "structure": ROLLUP_COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect::<Vec<_>>().join(", "),
        "batch": "batch.bin",
        "rows": emissions.len(),
        "events": emissions.iter().map(|e| e.events).sum::<u64>(),
        "dedup_token": dedup_token(TOPIC, PARTITION, &refs),
        "stored_since_sql": stored_since_sql(&table, TOPIC, PARTITION, from_offset),
        "stored_since_expected": stored_since(&emissions, from_offset),
        "queries": dashboard_queries(&emissions, today),
        "window_start_check": window_start(today + 1) == today,
    });
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    println!("wrote {} rollup rows to {}", emissions.len(), out.display());
    Ok(())
}

/// Rollup rows of two teams in three windows from `today - WINDOW_MS`, in
/// the table's sort order.
fn emissions(today: i64) -> Vec<Emission> {
    let windows = [today - WINDOW_MS, today, today + WINDOW_MS];
    let mut emissions = Vec::new();
    let mut offset = 1000;
    for (i, start) in windows.iter().enumerate() {
        for (team, event, user, events) in [
            ("team-a", "Signed Up", "u-1", 2),
            ("team-a", "Clicked", "u-1", 5 + i as u64),
            ("team-a", "Clicked", "u-2", 1),
            ("team-b", "Clicked", "ü-ñ 'quoted'", 3),
        ] {
            offset += events as i64;
            emissions.push(Emission {
                window_start_ms: *start,
                key: RollupKey {
                    team_id: team.to_owned(),
                    event: event.to_owned(),
                    user_id: user.to_owned(),
                },
                events,
                max_offset: offset,
                late: i == 2 && team == "team-b",
            });
        }
    }
    // The table's sort order, so the stored bytes read back equal the file.
    emissions.sort_by(|a, b| {
        (
            &a.key.team_id,
            a.window_start_ms,
            &a.key.event,
            &a.key.user_id,
        )
            .cmp(&(
                &b.key.team_id,
                b.window_start_ms,
                &b.key.event,
                &b.key.user_id,
            ))
    });
    emissions
}

/// The rows as the aggregator encodes them for its RowBinary insert.
fn encode(emissions: &[Emission], today: i64) -> Vec<u8> {
    let emitted_at = seconds(today + 2 * WINDOW_MS);
    let mut batch = Vec::new();
    for emission in emissions {
        encode_row(
            &RollupRow {
                emission,
                topic: TOPIC,
                partition: PARTITION,
                emitted_at_secs: emitted_at,
            },
            &mut batch,
        );
    }
    batch
}

/// What the recovery query answers from `from_offset` on: each row's key and
/// `max_offset`.
fn stored_since(emissions: &[Emission], from_offset: i64) -> BTreeMap<String, i64> {
    emissions
        .iter()
        .filter(|e| e.max_offset >= from_offset)
        .map(|e| {
            (
                format!(
                    "{}|{}|{}|{}",
                    e.window_start_ms / 1000,
                    e.key.team_id,
                    e.key.event,
                    e.key.user_id
                ),
                e.max_offset,
            )
        })
        .collect()
}

/// The dashboard queries over team-a from yesterday to tomorrow, each with
/// the answer the rows must give.
fn dashboard_queries(emissions: &[Emission], today: i64) -> serde_json::Value {
    let from = Timestamp::from_millis(today - DAY_MS);
    let to = Timestamp::from_millis(today + DAY_MS);
    let label = |ms: i64, day: bool| {
        let text = Timestamp::from_millis(ms).to_rfc3339();
        if day {
            text[..10].to_owned()
        } else {
            text[..19].replacen('T', " ", 1)
        }
    };
    let mut per_5m: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_hour: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    let mut users: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut top: BTreeMap<&str, u64> = BTreeMap::new();
    for e in emissions.iter().filter(|e| e.key.team_id == "team-a") {
        let start = e.window_start_ms;
        *per_5m.entry(label(start, false)).or_default() += e.events;
        *per_hour
            .entry(label(start.div_euclid(3_600_000) * 3_600_000, false))
            .or_default() += e.events;
        *per_day.entry(label(start, true)).or_default() += e.events;
        users
            .entry(label(start, true))
            .or_default()
            .insert(&e.key.user_id);
        *top.entry(&e.key.event).or_default() += e.events;
    }
    let mut top: Vec<(&str, u64)> = top.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let points = |m: BTreeMap<String, u64>| {
        m.into_iter()
            .map(|(label, value)| json!({"label": label, "value": value}))
            .collect::<Vec<_>>()
    };
    json!([
        {"sql": event_counts_sql(DATABASE, "team-a", from, to, Granularity::FiveMinutes, None), "expected": points(per_5m)},
        {"sql": event_counts_sql(DATABASE, "team-a", from, to, Granularity::Hour, None), "expected": points(per_hour)},
        {"sql": event_counts_sql(DATABASE, "team-a", from, to, Granularity::Day, None), "expected": points(per_day)},
        {"sql": dau_sql(DATABASE, "team-a", from, to), "expected": users.into_iter().map(|(d, u)| json!({"label": d, "value": u.len()})).collect::<Vec<_>>()},
        {"sql": top_events_sql(DATABASE, "team-a", from, to, 10), "expected": top.iter().map(|(e, n)| json!({"label": e, "value": n})).collect::<Vec<_>>()},
    ])
}
