//! Scheduled retention on the real server (Debian's 18.16 in the stack, no
//! TTL): the loader's retention task drops expired day partitions when it
//! starts, and keeps the recent ones.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use sluice_clickhouse::InsertOutcome;
use sluice_core::{Event, Timestamp};
use sluice_loader::config::ClickHouseSettings;
use sluice_loader::sink::ClickHouseSink;

fn event(i: u128, at_ms: i64) -> Event<'static> {
    Event {
        event_id: uuid::Uuid::from_u128(i),
        team_id: "t".into(),
        event: "e".into(),
        user_id: "u".into(),
        timestamp: Timestamp::from_millis(at_ms),
        received_at: Timestamp::from_millis(at_ms),
        schema_version: 1,
        properties: sluice_core::event::empty_object(),
        context: None,
    }
}

/// The `YYYYMMDD` day partitions of the events table that hold rows.
async fn days(sink_db: &clickhouse::Client) -> Vec<u32> {
    sink_db
        .query("SELECT DISTINCT toYYYYMMDD(timestamp) AS d FROM events ORDER BY d")
        .fetch_all()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_scheduled_task_drops_expired_partitions_and_keeps_recent_ones() {
    let url =
        std::env::var("SLUICE_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".into());
    let database = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
    let settings = ClickHouseSettings {
        url: url.clone(),
        database: database.clone(),
        retention_days: 3,
        ..Default::default()
    };
    let sink = ClickHouseSink::connect(&settings).await.unwrap();
    let today = Utc::now().date_naive();
    let day = |age: u64| today.checked_sub_days(Days::new(age)).unwrap();
    let ages = [30_u64, 10, 3, 2, 0];
    for (i, age) in ages.iter().enumerate() {
        let ms = day(*age)
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let outcome = sink
            .insert(
                "events.raw",
                0,
                &[(i as i64, event(i as u128 + 1, ms))],
                &format!("t{i}"),
                Timestamp::now(),
            )
            .await
            .unwrap();
        assert!(
            matches!(outcome, InsertOutcome::Inserted { .. }),
            "{outcome:?}"
        );
    }
    let yyyymmdd = |age: u64| {
        day(age)
            .format("%Y%m%d")
            .to_string()
            .parse::<u32>()
            .unwrap()
    };
    let client = clickhouse::Client::default()
        .with_url(&url)
        .with_database(&database)
        .with_validation(false);
    assert_eq!(days(&client).await, ages.map(yyyymmdd));

    // The task ticks at once, then every period (long here: one tick).
    let mut jobs = sink.retention();
    assert_eq!(jobs.len(), 1, "one server: one shard");
    let job = jobs.pop().expect("retention_days is set");
    let task = job.clone().spawn(Duration::from_secs(3600));
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected = [yyyymmdd(2), yyyymmdd(0)];
    while days(&client).await != expected {
        assert!(Instant::now() < deadline, "still {:?}", days(&client).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(task);
    // Another pass (another loader, the next hour) finds nothing to drop.
    assert!(job.tick().await.is_empty());
    assert_eq!(days(&client).await, expected);

    let off = ClickHouseSink::connect(&ClickHouseSettings {
        retention_days: 0,
        ..settings
    })
    .await
    .unwrap();
    assert!(
        off.retention().is_empty(),
        "retention_days = 0 keeps everything"
    );
    clickhouse::Client::default()
        .with_url(&url)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .unwrap();
}
