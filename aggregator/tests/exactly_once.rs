//! The aggregator's guarantee, tested with the real binary against real
//! Kafka and the real ClickHouse server (18.16): after crashes in the middle
//! of a flush (between one partition's insert and the commit, repeated, and a
//! `kill -9` at an arbitrary moment), after two instances rebalancing, and
//! with events later than the allowed lateness, the 5-minute rollups, the
//! hourly/daily views and daily active users equal the raw events exactly:
//! both the events we produced and the `events` table the loader filled.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sluice_aggregator::consumer::CRASH_AFTER_INSERTS_ENV;
use sluice_aggregator::window::{WINDOW_MS, window_start};
use sluice_core::Timestamp;
use sluice_core::kafka::KafkaSettings;
use sluice_tests::downstream::{clickhouse_url, sql};
use sluice_tests::{TestTopics, kafka};

fn fresh_db() -> String {
    format!("sluice_agg_{}", uuid::Uuid::new_v4().simple())
}

/// (team, event, user, window start in seconds) → events.
type Counts = BTreeMap<(String, String, String, u32), u64>;

/// One synthetic event: deterministic id, key and (out-of-order) event time.
struct Synthetic {
    id: u64,
    team: String,
    event: &'static str,
    user: String,
    at_ms: i64,
}

/// `n` events from `first_id`, spread over `windows` 5-minute windows
/// starting at `base_ms`, deliberately out of order.
fn synthetic(first_id: u64, n: u64, base_ms: i64, windows: i64) -> Vec<Synthetic> {
    const NAMES: [&str; 3] = ["Opened", "Clicked", "Bought"];
    (first_id..first_id + n)
        .map(|id| Synthetic {
            id,
            team: format!("team-{}", id % 3),
            event: NAMES[(id % 7 % 3) as usize],
            user: format!("user-{}", id % 41),
            // A multiplicative scramble: neighbours in offset order land
            // minutes apart, in both directions.
            at_ms: base_ms + ((id * 7_919_993) % (windows as u64 * WINDOW_MS as u64)) as i64,
        })
        .collect()
}

fn expected(events: &[Synthetic]) -> Counts {
    let mut counts = Counts::new();
    for e in events {
        *counts
            .entry((
                e.team.clone(),
                e.event.to_owned(),
                e.user.clone(),
                (window_start(e.at_ms) / 1000) as u32,
            ))
            .or_default() += 1;
    }
    counts
}

async fn produce(kafka: &KafkaSettings, topic: &str, events: &[Synthetic]) {
    let producer: FutureProducer = kafka.durable_producer_config(5, 30_000).create().unwrap();
    for chunk in events.chunks(1000) {
        let sends = chunk.iter().map(|e| {
            let at = Timestamp::from_millis(e.at_ms);
            let value = json!({
                "event_id": uuid::Uuid::from_u128(u128::from(e.id)),
                "team_id": e.team,
                "event": e.event,
                "user_id": e.user,
                "timestamp": at,
                "received_at": Timestamp::from_millis(e.at_ms + 1500),
                "schema_version": 1,
                "properties": { "id": e.id },
            })
            .to_string();
            let key = sluice_core::kafka::partition_key(&e.team, &e.user);
            let producer = producer.clone();
            let topic = topic.to_owned();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&value),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        });
        futures::future::join_all(sends).await;
    }
}

struct AggregatorProcess {
    child: Child,
}

impl AggregatorProcess {
    fn start(topic: &str, group: &str, db: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice-aggregator"));
        command
            .env("SLUICE_AGGREGATOR_LISTEN", "127.0.0.1:0")
            .env("SLUICE_AGGREGATOR_KAFKA__BROKERS", kafka().brokers)
            .env("SLUICE_AGGREGATOR_TOPIC", topic)
            .env("SLUICE_AGGREGATOR_GROUP_ID", group)
            .env("SLUICE_AGGREGATOR_SESSION_TIMEOUT_MS", "6000")
            .env("SLUICE_AGGREGATOR_CLICKHOUSE__URL", clickhouse_url())
            .env("SLUICE_AGGREGATOR_CLICKHOUSE__DATABASE", db)
            .env("SLUICE_AGGREGATOR_FLUSH__INTERVAL_MS", "200")
            .env("SLUICE_AGGREGATOR_FLUSH__MAX_BACKOFF_MS", "1000")
            .env("SLUICE_AGGREGATOR_WINDOW__IDLE_TIMEOUT_MS", "1000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        Self {
            child: command.spawn().unwrap(),
        }
    }

    /// Waits for the process to end by itself (the crash hook aborts it).
    fn wait_for_crash(mut self, timeout: Duration) {
        sluice_tests::binary::wait_for_abort(&mut self.child, timeout);
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap();
    }
}

impl Drop for AggregatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Equality with a readable report: how many keys differ and the first few.
#[track_caller]
fn assert_same<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    got: &BTreeMap<K, V>,
    want: &BTreeMap<K, V>,
    what: &str,
) {
    let keys: BTreeSet<&K> = got.keys().chain(want.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(k) != want.get(k))
        .map(|k| format!("{k:?}: got {:?}, want {:?}", got.get(k), want.get(k)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} of {} keys differ, e.g.\n  {}",
        diffs.len(),
        want.len(),
        diffs
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

fn parse_counts(text: &str) -> Counts {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (
                (
                    f[0].to_owned(),
                    f[1].to_owned(),
                    f[2].to_owned(),
                    f[3].parse().unwrap(),
                ),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

async fn rollups(db: &str) -> Counts {
    match sql(&format!(
        "SELECT team_id, event, user_id, toUInt32(window_start), sum(events) FROM {db}.rollups_5m \
         GROUP BY team_id, event, user_id, window_start FORMAT TSV"
    ))
    .await
    {
        Ok(text) => parse_counts(&text),
        Err(_) => Counts::new(),
    }
}

/// Waits until the rollups hold `total` events, lingers so that a late
/// duplicate would show, and returns them.
async fn wait_for_total(db: &str, total: u64, timeout: Duration) -> Counts {
    let deadline = Instant::now() + timeout;
    loop {
        let seen: u64 = rollups(db).await.values().sum();
        if seen >= total || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return rollups(db).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs `query` (TSV, the number last) into a map keyed by `key` of the fields.
async fn by_key<K: Ord>(query: &str, key: impl Fn(&[&str]) -> K) -> BTreeMap<K, u64> {
    sql(query)
        .await
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let (value, rest) = fields.split_last().unwrap();
            (key(rest), value.parse().unwrap())
        })
        .collect()
}

/// The hourly, daily and DAU views agree with `expected`.
async fn assert_views(db: &str, expected: &Counts) {
    let mut hourly: BTreeMap<(String, u32), u64> = BTreeMap::new();
    let mut daily: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut users: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for ((team, _, user, window), n) in expected {
        *hourly
            .entry((team.clone(), window - window % 3600))
            .or_default() += n;
        let day = Timestamp::from_millis(i64::from(*window) * 1000).to_rfc3339()[..10].to_owned();
        *daily.entry((team.clone(), day.clone())).or_default() += n;
        users
            .entry((team.clone(), day))
            .or_default()
            .insert(user.clone());
    }
    let got_hourly = by_key(
        &format!("SELECT team_id, toUInt32(hour), sum(events) FROM {db}.rollups_hourly GROUP BY team_id, hour FORMAT TSV"),
        |f| (f[0].to_owned(), f[1].parse::<u32>().unwrap()),
    )
    .await;
    assert_same(&got_hourly, &hourly, "hourly view");
    let got_daily = by_key(
        &format!("SELECT team_id, toString(day), sum(events) FROM {db}.rollups_daily GROUP BY team_id, day FORMAT TSV"),
        |f| (f[0].to_owned(), f[1].to_owned()),
    )
    .await;
    assert_same(&got_daily, &daily, "daily view");
    let got_dau = by_key(
        &format!("SELECT team_id, toString(day), uniqMerge(users) FROM {db}.dau_daily GROUP BY team_id, day FORMAT TSV"),
        |f| (f[0].to_owned(), f[1].to_owned()),
    )
    .await;
    let want_dau: BTreeMap<(String, String), u64> = users
        .into_iter()
        .map(|(k, v)| (k, v.len() as u64))
        .collect();
    assert_same(&got_dau, &want_dau, "daily active users");
}

/// The dashboards' read path on the real server agrees with `expected`:
/// counts per day and per 5 minutes, daily active users, top events.
async fn assert_dashboard(db: &str, expected: &Counts) {
    use sluice_clickhouse::dashboard::{Dashboard, Granularity};
    let dashboard = Dashboard::new(&clickhouse_url(), db).unwrap();
    let (from, to) = (
        Timestamp::from_millis(two_hours_ago() - 86_400_000),
        Timestamp::now(),
    );
    let team = "team-1";
    let mut per_window: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_event: BTreeMap<String, u64> = BTreeMap::new();
    let mut users: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for ((t, event, user, window), n) in expected {
        if t != team {
            continue;
        }
        let at = Timestamp::from_millis(i64::from(*window) * 1000).to_rfc3339();
        *per_window
            .entry(at[..19].replacen('T', " ", 1))
            .or_default() += n;
        *per_event.entry(event.clone()).or_default() += n;
        users.entry(at[..10].to_owned()).or_default().insert(user);
    }
    let as_map = |points: Vec<sluice_clickhouse::dashboard::Point>| -> BTreeMap<String, u64> {
        points.into_iter().map(|p| (p.label, p.value)).collect()
    };
    let five = dashboard
        .event_counts(team, from, to, Granularity::FiveMinutes, None)
        .await
        .unwrap();
    assert_same(&as_map(five), &per_window, "5-minute counts");
    let dau = dashboard.dau(team, from, to).await.unwrap();
    let want_dau: BTreeMap<String, u64> = users
        .into_iter()
        .map(|(d, u)| (d, u.len() as u64))
        .collect();
    assert_same(&as_map(dau), &want_dau, "daily active users");
    let top = dashboard.top_events(team, from, to, 2).await.unwrap();
    let mut want_top: Vec<(String, u64)> = per_event.into_iter().collect();
    want_top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    want_top.truncate(2);
    let got_top: Vec<(String, u64)> = top.into_iter().map(|p| (p.label, p.value)).collect();
    assert_eq!(got_top, want_top, "top events");
}

/// The real loader (in-process) loading the topic into `db.events`: the
/// aggregator's deduplication state is rebuilt from its rows after a crash
/// or a rebalance, so it runs alongside, as in a deployment.
struct Loader {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Loader {
    async fn start(topic: &str, db: &str) -> Self {
        let mut config = sluice_loader::LoaderConfig {
            kafka: kafka(),
            topic: topic.to_owned(),
            group_id: format!("loader-{}", uuid::Uuid::new_v4().simple()),
            ..Default::default()
        };
        config.clickhouse.url = clickhouse_url();
        config.clickhouse.database = db.to_owned();
        config.batch.max_wait_ms = 200;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sluice_loader::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    /// Waits until `db.events` holds `total` rows, stops, and returns the raw
    /// events counted per rollup key: plain `count()` with merges stopped, so
    /// a row stored twice would be counted twice.
    async fn raw_counts(self, db: &str, total: u64) -> Counts {
        let query = format!(
            "SELECT team_id, event, user_id, toUInt32(toStartOfFiveMinute(timestamp)), count() \
             FROM {db}.events GROUP BY team_id, event, user_id, toStartOfFiveMinute(timestamp) FORMAT TSV"
        );
        let deadline = Instant::now() + Duration::from_secs(90);
        let raw = loop {
            let raw = sql(&query)
                .await
                .map(|t| parse_counts(&t))
                .unwrap_or_default();
            if raw.values().sum::<u64>() >= total || Instant::now() > deadline {
                break raw;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        raw
    }
}

/// Creates the loader's tables and stops merges on `events`, so that a
/// duplicate row cannot be merged away before it is counted.
async fn stop_merges(db: &str) {
    let mut settings = sluice_loader::config::ClickHouseSettings {
        url: clickhouse_url(),
        database: db.to_owned(),
        ..Default::default()
    };
    settings.table = "events".to_owned();
    sluice_loader::sink::ClickHouseSink::connect(&settings)
        .await
        .unwrap();
    sql(&format!("SYSTEM STOP MERGES {db}.events"))
        .await
        .unwrap();
}

/// Retries of the first `every`-th events: the same id, team and user (so
/// the same partition), received later with another timestamp and other
/// properties. The first copy must win.
fn retries(events: &[Synthetic], every: usize) -> Vec<Synthetic> {
    events
        .iter()
        .step_by(every)
        .map(|e| Synthetic {
            id: e.id,
            team: e.team.clone(),
            event: e.event,
            user: e.user.clone(),
            // Another window: a retry counted would show in the wrong place.
            at_ms: e.at_ms + 3 * WINDOW_MS,
        })
        .collect()
}

/// Events in correction rows.
async fn late_sum(db: &str) -> u64 {
    sql(&format!(
        "SELECT sum(events) FROM {db}.rollups_5m WHERE late = 1 FORMAT TSV"
    ))
    .await
    .unwrap()
    .trim()
    .parse()
    .unwrap()
}

/// A base time two hours ago on a window boundary: every window is in the
/// past, so idle partitions close them by the clock.
fn two_hours_ago() -> i64 {
    window_start(Timestamp::now().as_millis() - 2 * 3_600_000)
}

/// Every id of `events` is stored exactly once in `db.events` (plain
/// `count()` per id, merges stopped), and no other id is.
async fn assert_ids_once(db: &str, events: &[Synthetic]) {
    let got = by_key(
        &format!(
            "SELECT toString(event_id), count() FROM {db}.events GROUP BY event_id FORMAT TSV"
        ),
        |f| f[0].to_owned(),
    )
    .await;
    let want: BTreeMap<String, u64> = events
        .iter()
        .map(|e| (uuid::Uuid::from_u128(u128::from(e.id)).to_string(), 1))
        .collect();
    assert_same(&got, &want, "rows per event id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_in_the_middle_of_a_flush_with_retries_in_the_stream_count_every_event_once() {
    let topics = TestTopics::create(4).await.unwrap();
    let db = fresh_db();
    stop_merges(&db).await;
    let events = synthetic(1, 20_000, two_hours_ago(), 18);
    let want = expected(&events);
    // Each chunk of events is followed by retries of some of its events
    // (every 7th): 2,858 records that must not be counted.
    let mut stream = Vec::new();
    for chunk in events.chunks(2_000) {
        stream.extend(chunk.iter().map(|e| Synthetic {
            team: e.team.clone(),
            user: e.user.clone(),
            ..*e
        }));
        stream.extend(retries(chunk, 7));
    }
    assert!(stream.len() > 22_000);
    produce(&kafka(), &topics.raw, &stream).await;
    let loader = Loader::start(&topics.raw, &db).await;

    // First a SIGKILL right after the first insert (one partition's rows
    // stored, three partitions' and every commit not): mid-work by
    // construction. Then four aborts, each right after the n-th insert of a
    // run; each must have stored more than the last and not everything, so
    // every crash hit the middle of the work, not its end.
    let mut stored_before = 0;
    // Five crashes in all, six inserts: fewer than the rounds before a
    // victim finished the work in a CI run (seven inserts and more), and the
    // assertion below fails loudly if a crash ever comes after the end.
    let rounds = [
        ("1", "sigkill"),
        ("1", "abort"),
        ("1", "abort"),
        ("2", "abort"),
        ("1", "abort"),
    ];
    for (crash_after, how) in rounds {
        AggregatorProcess::start(
            &topics.raw,
            "agg-crash",
            &db,
            &[
                (CRASH_AFTER_INSERTS_ENV, crash_after),
                (sluice_core::service::CRASH_WITH_ENV, how),
            ],
        )
        .wait_for_crash(Duration::from_secs(90));
        let stored: u64 = rollups(&db).await.values().sum();
        assert!(
            stored > stored_before && stored < 20_000,
            "{how} after insert {crash_after} hit mid-work: {stored_before} -> {stored} of 20000 stored"
        );
        stored_before = stored;
    }

    let survivor = AggregatorProcess::start(&topics.raw, "agg-crash", &db, &[]);
    let got = wait_for_total(&db, 20_000, Duration::from_secs(90)).await;
    survivor.stop();
    assert_eq!(
        got.values().sum::<u64>(),
        20_000,
        "every event counted once, no retry counted"
    );
    assert_same(&got, &want, "per key and window, exactly the first copies");
    assert_views(&db, &want).await;
    assert_dashboard(&db, &want).await;

    let raw = loader.raw_counts(&db, 20_000).await;
    assert_same(&got, &raw, "rollups equal the raw events table");
    assert_ids_once(&db, &events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_rebalancing_count_every_event_once() {
    let topics = TestTopics::create(6).await.unwrap();
    let db = fresh_db();
    let events = synthetic(100_000, 24_000, two_hours_ago(), 12);
    let want = expected(&events);
    stop_merges(&db).await;
    let loader = Loader::start(&topics.raw, &db).await;
    // Retries of every 5th event follow each part: in flight while the
    // partitions move.
    let producing = tokio::spawn({
        let topic = topics.raw.clone();
        let parts: Vec<Vec<Synthetic>> = events
            .chunks(3000)
            .map(|part| {
                let mut with_retries: Vec<Synthetic> = part
                    .iter()
                    .map(|e| Synthetic {
                        team: e.team.clone(),
                        user: e.user.clone(),
                        ..*e
                    })
                    .collect();
                with_retries.extend(retries(part, 5));
                with_retries
            })
            .collect();
        async move {
            for part in parts {
                produce(&kafka(), &topic, &part).await;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
    });
    let a = AggregatorProcess::start(&topics.raw, "agg-rebalance", &db, &[]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = AggregatorProcess::start(&topics.raw, "agg-rebalance", &db, &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    a.stop(); // its partitions move to b
    producing.await.unwrap();
    let got = wait_for_total(&db, 24_000, Duration::from_secs(90)).await;
    b.stop();
    assert_eq!(got.values().sum::<u64>(), 24_000);
    assert_same(&got, &want, "per key and window");
    assert_views(&db, &want).await;
    let raw = loader.raw_counts(&db, 24_000).await;
    assert_same(&got, &raw, "rollups equal the raw events table");
    assert_ids_once(&db, &events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_later_than_the_lateness_are_corrections_and_totals_stay_exact() {
    let topics = TestTopics::create(2).await.unwrap();
    let db = fresh_db();
    let base = two_hours_ago();
    let on_time = synthetic(1, 3000, base, 4);
    let late = synthetic(50_000, 1000, base, 4);
    let agg = AggregatorProcess::start(
        &topics.raw,
        "agg-late",
        &db,
        &[("SLUICE_AGGREGATOR_WINDOW__ALLOWED_LATENESS_MS", "0")],
    );
    produce(&kafka(), &topics.raw, &on_time).await;
    let first = wait_for_total(&db, 3000, Duration::from_secs(60)).await;
    assert_same(
        &first,
        &expected(&on_time),
        "the windows closed and were stored",
    );
    let late_before = late_sum(&db).await;
    // The same windows again, long after they closed.
    produce(&kafka(), &topics.raw, &late).await;
    let all: Vec<Synthetic> = on_time.into_iter().chain(late).collect();
    let got = wait_for_total(&db, 4000, Duration::from_secs(60)).await;
    agg.stop();
    assert_same(&got, &expected(&all), "on time and late together");
    assert_eq!(
        late_sum(&db).await - late_before,
        1000,
        "every late event is in a correction row"
    );
    assert_views(&db, &expected(&all)).await;
}
