//! Rollup retention on the real server (Debian's 18.16, no TTL): the
//! aggregator's retention pass drops expired day partitions of `rollups_5m`
//! and keeps the recent ones (the hourly and daily views are kept).

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use sluice_aggregator::clickhouse::{InsertOutcome, RollupStore};
use sluice_aggregator::config::ClickHouseSettings;
use sluice_aggregator::window::{Emission, RollupKey};
use sluice_core::Timestamp;

const DAY_MS: i64 = 86_400_000;

async fn days(url: &str, database: &str) -> Vec<String> {
    let text = reqwest::Client::new()
        .post(url)
        .body(format!(
            "SELECT DISTINCT toString(toDate(window_start)) FROM {database}.rollups_5m FORMAT TSV"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut days: Vec<String> = text.lines().map(str::to_owned).collect();
    days.sort();
    days
}

#[tokio::test]
async fn expired_rollup_days_are_dropped_and_recent_ones_kept() {
    let url =
        std::env::var("SLUICE_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".into());
    let database = format!("sluice_agg_{}", uuid::Uuid::new_v4().simple());
    let store = RollupStore::connect(&ClickHouseSettings {
        url: url.clone(),
        database: database.clone(),
        retention_days: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let today = Timestamp::now().as_millis().div_euclid(DAY_MS) * DAY_MS;
    let emissions: Vec<Emission> = [30_i64, 10, 3, 2, 0]
        .iter()
        .enumerate()
        .map(|(i, age)| Emission {
            window_start_ms: today - age * DAY_MS + 12 * 3_600_000,
            key: RollupKey {
                team_id: "t".into(),
                event: "e".into(),
                user_id: "u".into(),
            },
            events: 1,
            max_offset: i as i64,
            late: false,
        })
        .collect();
    let outcome = store.insert("raw", 0, &emissions, 0).await;
    assert!(
        matches!(outcome, InsertOutcome::Inserted { rows: 5, .. }),
        "{outcome:?}"
    );
    let label =
        |age: i64| Timestamp::from_millis(today - age * DAY_MS).to_rfc3339()[..10].to_owned();
    assert_eq!(days(&url, &database).await.len(), 5);

    let mut jobs = store.retention();
    assert_eq!(jobs.len(), 1, "one server: one shard");
    let retention = jobs.pop().expect("retention_days is set");
    let dropped = retention.tick().await;
    assert_eq!(dropped.len(), 3, "30, 10 and 3 days old: {dropped:?}");
    assert_eq!(days(&url, &database).await, vec![label(2), label(0)]);
    assert!(
        retention.tick().await.is_empty(),
        "a second pass drops nothing"
    );
}
