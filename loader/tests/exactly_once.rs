//! The loader's guarantee, tested with the real binary against real Kafka and
//! the real ClickHouse server: every event id exactly once in ClickHouse (and
//! in the lake, a local directory or an S3-compatible store) after `kill -9`
//! mid-batch (repeated), crashes proven mid-load with clients' retries in the
//! stream, a ClickHouse restart during load, an S3 outage, two instances
//! rebalancing with retries in flight, and a replay of a range already
//! loaded. Merges are stopped where rows are counted, so a row stored twice
//! cannot be merged away before `count()` sees it.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sluice_core::Timestamp;
use sluice_core::kafka::KafkaSettings;
use sluice_loader::config::ClickHouseSettings;
use sluice_loader::config::LakeSettings;
use sluice_loader::lake::Lake;
use sluice_loader::replay::{ReplayRange, replay};
use sluice_loader::sink::ClickHouseSink;
use sluice_tests::stack::{DedicatedStack, Services};
use sluice_tests::{TestTopics, kafka};

fn clickhouse_url() -> String {
    std::env::var("SLUICE_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".to_owned())
}

/// Runs one SQL statement over HTTP and returns the text answer.
async fn sql(url: &str, query: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(url)
        .body(query.to_owned())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "{query}: {status} {text}");
    Ok(text)
}

/// Produces `n` contract events with ids 1..=n to `topic`.
async fn produce(kafka: &KafkaSettings, topic: &str, range: std::ops::Range<u64>) {
    produce_copies(kafka, topic, range, false).await;
}

/// With `retry`, the same events as a client's retries: same id, team and
/// user (so the same partition), received half an hour later with another
/// timestamp and other properties. The first copy must win.
async fn produce_copies(
    kafka: &KafkaSettings,
    topic: &str,
    range: std::ops::Range<u64>,
    retry: bool,
) {
    let producer: FutureProducer = kafka.durable_producer_config(5, 30_000).create().unwrap();
    let mut pending = Vec::new();
    const NAMES: [&str; 3] = ["Opened", "Clicked", "Bought"];
    let now = Timestamp::now().as_millis();
    let received_at = Timestamp::from_millis(now - 3_600_000);
    let retried_at = Timestamp::from_millis(now - 1_800_000);
    for i in range {
        let name = NAMES[(i % 3) as usize];
        let event = json!({
            "event_id": uuid::Uuid::from_u128(u128::from(i)),
            "team_id": format!("team-{}", i % 3),
            "event": name,
            "user_id": format!("user-{}", i % 97),
            "timestamp": if retry { "2026-11-26T01:30:00.000Z" } else { "2026-11-26T01:00:00.123Z" },
            // Received recently: `event_ids` keeps 8 days of receive time.
            "received_at": if retry { retried_at } else { received_at },
            "schema_version": 1,
            "properties": { "i": i, "retry": retry, "pad": "x".repeat(200) },
        })
        .to_string();
        let key = format!("team-{}:user-{}", i % 3, i % 97);
        let producer = producer.clone();
        let topic = topic.to_owned();
        pending.push(async move {
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&event),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        });
        if pending.len() >= 1000 {
            futures::future::join_all(pending.drain(..)).await;
        }
    }
    futures::future::join_all(pending).await;
}

/// Where a test's lake lives: a fresh temp directory, or a fresh prefix in
/// the stack's S3-compatible store (`scripts/stack`: bucket `sluice-lake`).
#[derive(Debug, Clone)]
enum TestLake {
    Dir(std::path::PathBuf),
    S3 { url: String, endpoint: String },
}

const S3_KEY: (&str, &str) = ("sluice-test", "sluice-test-secret");

impl TestLake {
    fn dir() -> Self {
        Self::Dir(
            std::env::temp_dir().join(format!("sluice-lake-{}", uuid::Uuid::new_v4().simple())),
        )
    }

    fn s3() -> Self {
        Self::s3_at(
            std::env::var("SLUICE_S3_ENDPOINT")
                .unwrap_or_else(|_| "http://127.0.0.1:19400".to_owned()),
        )
    }

    fn s3_at(endpoint: String) -> Self {
        Self::S3 {
            url: format!("s3://sluice-lake/test-{}", uuid::Uuid::new_v4().simple()),
            endpoint,
        }
    }

    fn settings(&self) -> LakeSettings {
        match self {
            Self::Dir(dir) => LakeSettings {
                dir: Some(dir.clone()),
                ..Default::default()
            },
            Self::S3 { url, endpoint } => LakeSettings {
                url: Some(url.clone()),
                endpoint: Some(endpoint.clone()),
                access_key_id: Some(S3_KEY.0.to_owned()),
                secret_access_key: Some(S3_KEY.1.to_owned()),
                ..Default::default()
            },
        }
    }

    fn open(&self) -> Lake {
        Lake::new(self.settings().store().unwrap().unwrap())
    }

    fn env(&self, command: &mut Command) {
        match self {
            Self::Dir(dir) => command.env("SLUICE_LOADER_LAKE__DIR", dir),
            Self::S3 { url, endpoint } => command
                .env("SLUICE_LOADER_LAKE__URL", url)
                .env("SLUICE_LOADER_LAKE__ENDPOINT", endpoint)
                .env("AWS_ACCESS_KEY_ID", S3_KEY.0)
                .env("AWS_SECRET_ACCESS_KEY", S3_KEY.1),
        };
    }
}

struct LoaderProcess {
    child: Child,
}

impl LoaderProcess {
    fn start(
        kafka: &KafkaSettings,
        topic: &str,
        group: &str,
        ch: &str,
        database: &str,
        lake: &TestLake,
    ) -> Self {
        Self::start_with(kafka, topic, group, ch, database, lake, &[])
    }

    fn start_with(
        kafka: &KafkaSettings,
        topic: &str,
        group: &str,
        ch: &str,
        database: &str,
        lake: &TestLake,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice-loader"));
        lake.env(&mut command);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .env("SLUICE_LOADER_LISTEN", "127.0.0.1:0")
            .env("SLUICE_LOADER_KAFKA__BROKERS", &kafka.brokers)
            .env("SLUICE_LOADER_TOPIC", topic)
            .env("SLUICE_LOADER_GROUP_ID", group)
            .env("SLUICE_LOADER_SESSION_TIMEOUT_MS", "6000")
            .env("SLUICE_LOADER_CLICKHOUSE__URL", ch)
            .env("SLUICE_LOADER_CLICKHOUSE__DATABASE", database)
            .env("SLUICE_LOADER_BATCH__MAX_ROWS", "700")
            .env("SLUICE_LOADER_BATCH__MAX_WAIT_MS", "150")
            .env("SLUICE_LOADER_BATCH__MAX_BACKOFF_MS", "1000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self { child }
    }

    /// Waits for the process to end by itself (the crash hook aborts it).
    fn wait_for_crash(mut self, timeout: Duration) {
        sluice_tests::binary::wait_for_abort(&mut self.child, timeout);
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    fn stop(mut self) {
        // SIGTERM: the graceful path.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap();
    }
}

impl Drop for LoaderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(rows, distinct ids)` in the events table.
async fn counts(ch: &str, database: &str) -> (u64, u64) {
    match sql(
        ch,
        &format!("SELECT count(), uniqExact(event_id) FROM {database}.events FORMAT TSV"),
    )
    .await
    {
        Ok(text) => {
            let mut parts = text
                .split_whitespace()
                .map(|v| v.parse::<u64>().unwrap_or(0));
            (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
        }
        Err(_) => (0, 0),
    }
}

async fn wait_for_rows(ch: &str, database: &str, n: u64, timeout: Duration) -> (u64, u64) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = counts(ch, database).await;
        if seen.0 >= n || Instant::now() > deadline {
            // Linger: a late duplicate must have the chance to show up.
            tokio::time::sleep(Duration::from_secs(2)).await;
            return counts(ch, database).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn lake_rows(lake: &Lake) -> BTreeMap<i32, (usize, Vec<(i64, i64)>)> {
    let mut out: BTreeMap<i32, (usize, Vec<(i64, i64)>)> = BTreeMap::new();
    for manifest in lake.manifests().await.unwrap() {
        let entry = out.entry(manifest.partition).or_default();
        entry.0 += manifest.files.iter().map(|f| f.rows).sum::<usize>();
        entry.1.push((manifest.first_offset, manifest.last_offset));
    }
    out
}

fn fresh_db() -> String {
    format!("sluice_test_{}", uuid::Uuid::new_v4().simple())
}

/// Creates the loader's tables in `database` and stops merges on `events`,
/// so a row inserted twice stays two rows for `count()` to see.
async fn stop_merges(ch: &str, database: &str) {
    ClickHouseSink::connect(&ClickHouseSettings {
        url: ch.to_owned(),
        database: database.to_owned(),
        ..Default::default()
    })
    .await
    .unwrap();
    sql(ch, &format!("SYSTEM STOP MERGES {database}.events"))
        .await
        .unwrap();
}

/// Rows per event id that are not exactly one, against ids `1..=n`
/// (missing ids show as 0): empty when every event is stored once.
async fn ids_not_once(ch: &str, database: &str, n: u64) -> Vec<(u64, u64)> {
    let text = sql(
        ch,
        &format!(
            "SELECT toString(event_id), count() FROM {database}.events GROUP BY event_id FORMAT TSV"
        ),
    )
    .await
    .unwrap();
    let mut per_id: BTreeMap<u64, u64> = (1..=n).map(|i| (i, 0)).collect();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (id, rows) = line.split_once('\t').unwrap();
        let id = uuid::Uuid::parse_str(id).unwrap().as_u128() as u64;
        *per_id.entry(id).or_default() += rows.parse::<u64>().unwrap();
    }
    per_id.into_iter().filter(|(_, rows)| *rows != 1).collect()
}

/// Rows whose properties are a retry's: the first copy must win.
async fn retry_rows(ch: &str, database: &str) -> u64 {
    sql(
        ch,
        &format!("SELECT count() FROM {database}.events WHERE properties LIKE '%\"retry\":true%' FORMAT TSV"),
    )
    .await
    .unwrap()
    .trim()
    .parse()
    .unwrap()
}

/// Ids `1..=n` each stored once, none as a retry's copy; then drops `database`.
async fn first_copies_once_then_drop(ch: &str, database: &str, n: u64) {
    assert_eq!(
        ids_not_once(ch, database, n).await,
        [],
        "ids stored other than once"
    );
    assert_eq!(
        retry_rows(ch, database).await,
        0,
        "a retry's copy replaced the first"
    );
    sql(ch, &format!("DROP DATABASE IF EXISTS {database}"))
        .await
        .unwrap();
}

/// One loader run per `(inserts, how)` in `rounds`, each crashing right
/// after that many acknowledged inserts (rows in ClickHouse, offsets not
/// committed) by `how` (`abort` or `sigkill`). Each must have stored more
/// than the run before and not all `n` events: every crash hit mid-load.
async fn crash_mid_load(
    topic: &str,
    group: &str,
    (ch, db, lake): (&str, &str, &TestLake),
    n: u64,
    rounds: &[(&str, &str)],
) {
    let mut stored_before = 0;
    for (inserts, how) in rounds {
        LoaderProcess::start_with(
            &kafka(),
            topic,
            group,
            ch,
            db,
            lake,
            &[
                (sluice_loader::consumer::CRASH_AFTER_INSERTS_ENV, inserts),
                (sluice_core::service::CRASH_WITH_ENV, how),
            ],
        )
        .wait_for_crash(Duration::from_secs(60));
        let (stored, _) = counts(ch, db).await;
        assert!(
            stored > stored_before && stored < n,
            "{how} after insert {inserts} hit mid-load: {stored_before} -> {stored} of {n}"
        );
        stored_before = stored;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_mid_load_with_retries_in_the_stream_store_every_event_once() {
    let topics = TestTopics::create(4).await.unwrap();
    let (ch, db, lake) = (clickhouse_url(), fresh_db(), TestLake::dir());
    stop_merges(&ch, &db).await;
    let group = format!("loader-crash-{}", uuid::Uuid::new_v4().simple());
    let n = 10_000;
    // Originals, then retries of the first 3,000 interleaved with the rest.
    produce(&kafka(), &topics.raw, 1..5_001).await;
    produce_copies(&kafka(), &topics.raw, 1..3_001, true).await;
    produce(&kafka(), &topics.raw, 5_001..n + 1).await;
    produce_copies(&kafka(), &topics.raw, 4_001..4_501, true).await;

    let rounds = [
        ("1", "abort"),
        ("2", "abort"),
        ("1", "abort"),
        ("2", "abort"),
        ("1", "abort"),
    ];
    crash_mid_load(&topics.raw, &group, (&ch, &db, &lake), n, &rounds).await;
    let loader = LoaderProcess::start(&kafka(), &topics.raw, &group, &ch, &db, &lake);
    let (rows, distinct) = wait_for_rows(&ch, &db, n, Duration::from_secs(90)).await;
    loader.stop();
    assert_eq!(
        (rows, distinct),
        (n, n),
        "every event once, no retry stored"
    );
    first_copies_once_then_drop(&ch, &db, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_repeatedly_loses_and_duplicates_nothing() {
    kill_9_then_replay(TestLake::dir()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_with_an_s3_lake_then_replay_from_s3() {
    kill_9_then_replay(TestLake::s3()).await;
}

/// Three `kill -9` proven mid-load, then: every event once in ClickHouse and in
/// the lake's manifests (no overlapping ranges); a replay from the lake adds
/// nothing to the loaded database and restores an empty one exactly.
async fn kill_9_then_replay(lake: TestLake) {
    let topics = TestTopics::create(4).await.unwrap();
    let (ch, db) = (clickhouse_url(), fresh_db());
    stop_merges(&ch, &db).await;
    // A group per test: they run side by side.
    let group = format!("loader-kill-{}", uuid::Uuid::new_v4().simple());
    let n = 12_000;
    let producing = tokio::spawn({
        let (kafka, topic) = (kafka(), topics.raw.clone());
        async move { produce(&kafka, &topic, 1..n + 1).await }
    });
    // Three SIGKILLs, each right after the second acknowledged insert of
    // its run, while the events are still being produced.
    let rounds = [("2", "sigkill"); 3];
    crash_mid_load(&topics.raw, &group, (&ch, &db, &lake), n, &rounds).await;
    producing.await.unwrap();
    let loader = LoaderProcess::start(&kafka(), &topics.raw, &group, &ch, &db, &lake);
    let (rows, distinct) = wait_for_rows(&ch, &db, n, Duration::from_secs(90)).await;
    loader.stop();
    assert_eq!(
        (rows, distinct),
        (n, n),
        "every event exactly once after three kill -9"
    );

    let manifests = lake_rows(&lake.open()).await;
    let total: usize = manifests.values().map(|(rows, _)| rows).sum();
    assert_eq!(total as u64, n, "the lake holds every event once");
    for (partition, (_, mut ranges)) in manifests {
        ranges.sort();
        assert!(
            ranges.windows(2).all(|w| w[0].1 < w[1].0),
            "partition {partition}: overlapping lake ranges {ranges:?}"
        );
    }

    // Replaying a range the loader already loaded adds nothing; into an empty
    // database it restores everything, and a second replay adds nothing.
    let range = ReplayRange {
        from: Timestamp::parse_rfc3339("2026-11-26T00:00:00Z").unwrap(),
        to: Timestamp::parse_rfc3339("2026-11-27T00:00:00Z").unwrap(),
        team: None,
    };
    let lake = lake.open();
    let sink = |database: &str| ClickHouseSettings {
        url: ch.clone(),
        database: database.to_owned(),
        ..Default::default()
    };
    let loaded = ClickHouseSink::connect(&sink(&db)).await.unwrap();
    let report = replay(&lake, &loaded, &range, |_| {}).await.unwrap();
    assert_eq!(
        (
            report.events_in_range,
            report.inserted,
            report.already_present
        ),
        (n as usize, 0, n as usize)
    );
    let restored_db = fresh_db();
    let restored = ClickHouseSink::connect(&sink(&restored_db)).await.unwrap();
    let first = replay(&lake, &restored, &range, |_| {}).await.unwrap();
    assert_eq!(first.inserted, n as usize);
    let second = replay(&lake, &restored, &range, |_| {}).await.unwrap();
    assert_eq!((second.inserted, second.already_present), (0, n as usize));
    assert_eq!(
        counts(&ch, &restored_db).await,
        (n, n),
        "the replayed copy is exact"
    );
    assert_eq!(
        counts(&ch, &db).await,
        (n, n),
        "replay did not duplicate the loaded rows"
    );
    for database in [&db, &restored_db] {
        sql(&ch, &format!("DROP DATABASE IF EXISTS {database}"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clickhouse_restart_during_load_is_ridden_out() {
    let stack = tokio::task::spawn_blocking(|| DedicatedStack::start(Services::ClickHouse))
        .await
        .unwrap()
        .unwrap();
    let (ch, lake) = (stack.clickhouse_url(), TestLake::dir());
    ride_out_an_outage(&stack, "clickhouse", &ch, &lake, false).await;
}

/// Half the events, a loader, `service` of `stack` stopped, the other half,
/// `service` back: every event exactly once in ClickHouse. `holds`: the
/// outage must stop loading (nothing new reaches ClickHouse meanwhile).
async fn ride_out_an_outage(
    stack: &DedicatedStack,
    service: &str,
    ch: &str,
    lake: &TestLake,
    holds: bool,
) {
    let topics = TestTopics::create(3).await.unwrap();
    let db = fresh_db();
    let n = 6_000;
    produce(&kafka(), &topics.raw, 1..n / 2 + 1).await;
    // A group of its own: tests run side by side.
    let group = format!("loader-{service}-outage");
    let loader = LoaderProcess::start(&kafka(), &topics.raw, &group, ch, &db, lake);
    wait_for_rows(ch, &db, 1, Duration::from_secs(30)).await;

    tokio::task::block_in_place(|| stack.stop(service)).unwrap();
    produce(&kafka(), &topics.raw, n / 2 + 1..n + 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    if holds {
        let during = counts(ch, &db).await.0;
        assert!(during < n, "all {n} rows loaded while {service} was down");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(counts(ch, &db).await.0, during, "loaded past the outage");
    }
    tokio::task::block_in_place(|| stack.start_service(service)).unwrap();

    let (rows, distinct) = wait_for_rows(ch, &db, n, Duration::from_secs(90)).await;
    loader.stop();
    assert_eq!((rows, distinct), (n, n));
    sql(ch, &format!("DROP DATABASE IF EXISTS {db}")).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_rebalancing_load_everything_once() {
    let topics = TestTopics::create(6).await.unwrap();
    let (ch, db, lake) = (clickhouse_url(), fresh_db(), TestLake::dir());
    stop_merges(&ch, &db).await;
    let n = 12_000;
    // Retries of every event of a part follow it, in flight while the
    // partitions move between the instances.
    let producing = tokio::spawn({
        let (kafka, topic) = (kafka(), topics.raw.clone());
        async move {
            for part in 0..4 {
                let range = part * n / 4 + 1..(part + 1) * n / 4 + 1;
                produce(&kafka, &topic, range.clone()).await;
                produce_copies(&kafka, &topic, range, true).await;
            }
        }
    });
    let a = LoaderProcess::start(&kafka(), &topics.raw, "loader-rebalance", &ch, &db, &lake);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = LoaderProcess::start(&kafka(), &topics.raw, "loader-rebalance", &ch, &db, &lake);
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.kill_9();
    producing.await.unwrap();
    let (rows, distinct) = wait_for_rows(&ch, &db, n, Duration::from_secs(120)).await;
    b.stop();
    assert_eq!(
        (rows, distinct),
        (n, n),
        "exactly once across two instances and a crash"
    );
    first_copies_once_then_drop(&ch, &db, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_holds_the_load_and_loses_nothing() {
    let stack = tokio::task::spawn_blocking(|| DedicatedStack::start(Services::S3))
        .await
        .unwrap()
        .unwrap();
    let (ch, lake) = (clickhouse_url(), TestLake::s3_at(stack.s3_endpoint()));
    // The lake comes first: nothing new reaches ClickHouse while it is down.
    ride_out_an_outage(&stack, "s3", &ch, &lake, true).await;
    let manifests = lake_rows(&lake.open()).await;
    let total: usize = manifests.values().map(|(rows, _)| rows).sum();
    assert_eq!(total, 6_000, "the lake holds every event once");
}
