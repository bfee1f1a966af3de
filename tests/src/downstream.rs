//! The consumers of `events.raw` in this process — the real loader and the
//! real aggregator on a fresh ClickHouse database — and the checks that every
//! acknowledged event is stored once and counted once: by id in `events`
//! (plain `count()`, with merges stopped so a second row cannot be merged
//! away first), and in `rollups_5m`, the hourly and daily views and DAU,
//! each compared with a recomputation from the stored (distinct) events.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::kafka;

/// The stack's ClickHouse (`SLUICE_CLICKHOUSE_URL`, default the stack's port).
pub fn clickhouse_url() -> String {
    std::env::var("SLUICE_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".to_owned())
}

/// Runs one statement over HTTP and returns the text answer.
pub async fn sql(query: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(clickhouse_url())
        .body(query.to_owned())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(status.is_success(), "{query}: {status} {text}");
    Ok(text)
}

#[derive(Debug)]
struct Service {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    /// Where its health and metrics are served.
    addr: std::net::SocketAddr,
}

impl Service {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }

    /// Its metric lines that say where work is (lag, waits, pauses, errors),
    /// for a failure message.
    async fn metrics(&self, wanted: &[&str]) -> String {
        let text = match reqwest::get(format!("http://{}/metrics", self.addr)).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(e) => return format!("metrics unavailable: {e}"),
        };
        text.lines()
            .filter(|l| !l.starts_with('#') && wanted.iter().any(|w| l.contains(w)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A loader and an aggregator consuming one topic into one database.
#[derive(Debug)]
pub struct Downstream {
    db: String,
    loader: Service,
    aggregator: Service,
}

impl Downstream {
    /// A fresh database with the loader's tables, merges on `events`
    /// stopped, and both services consuming `topic` of the shared stack's
    /// Kafka from the start.
    pub async fn start(topic: &str) -> anyhow::Result<Self> {
        Self::start_on(kafka(), topic).await
    }

    /// The same on another Kafka cluster (a dedicated stack's brokers).
    pub async fn start_on(
        kafka: sluice_core::kafka::KafkaSettings,
        topic: &str,
    ) -> anyhow::Result<Self> {
        // The in-process services log nowhere unless asked: `SLUICE_TEST_LOG`
        // takes a `RUST_LOG`-style filter (e.g. `sluice_loader=debug`).
        if let Ok(filter) = std::env::var("SLUICE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let db = format!("sluice_ds_{}", Uuid::new_v4().simple());
        let settings = sluice_loader::config::ClickHouseSettings {
            url: clickhouse_url(),
            database: db.clone(),
            ..Default::default()
        };
        sluice_loader::sink::ClickHouseSink::connect(&settings).await?;
        sql(&format!("SYSTEM STOP MERGES {db}.events")).await?;

        let mut loader = sluice_loader::LoaderConfig {
            kafka: kafka.clone(),
            topic: topic.to_owned(),
            group_id: format!("loader-{}", Uuid::new_v4().simple()),
            clickhouse: settings,
            ..Default::default()
        };
        // Not the loader's smallest wait: with merges stopped every insert
        // stays a part, and a fault test of several minutes at 200 ms made
        // thousands, which the server then took minutes to drop.
        loader.batch.max_wait_ms = 1000;
        let mut aggregator = sluice_aggregator::AggregatorConfig {
            kafka,
            topic: topic.to_owned(),
            group_id: format!("aggregator-{}", Uuid::new_v4().simple()),
            ..Default::default()
        };
        aggregator.clickhouse.url = clickhouse_url();
        aggregator.clickhouse.database = db.clone();
        aggregator.flush.interval_ms = 200;
        aggregator.window.idle_timeout_ms = 1000;
        // Windows close a little after their end, so a test sees its counts soon.
        aggregator.window.allowed_lateness_ms = 1000;

        let loader = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(sluice_loader::serve(loader, listener, async {
                let _ = stopped.await;
            }));
            Service { stop, task, addr }
        };
        let aggregator = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(sluice_aggregator::serve(aggregator, listener, async {
                let _ = stopped.await;
            }));
            Service { stop, task, addr }
        };
        Ok(Self {
            db,
            loader,
            aggregator,
        })
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    async fn number(&self, query: &str) -> u64 {
        sql(query)
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Rows in `events`, and events in `rollups_5m`.
    pub async fn totals(&self) -> (u64, u64) {
        let db = &self.db;
        (
            self.number(&format!("SELECT count() FROM {db}.events FORMAT TSV"))
                .await,
            self.number(&format!(
                "SELECT sum(events) FROM {db}.rollups_5m FORMAT TSV"
            ))
            .await,
        )
    }

    /// Waits until both tables hold at least `n` events, then lingers (a
    /// late duplicate row must have the chance to show).
    pub async fn wait_for(&self, n: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let (rows, counted) = self.totals().await;
            if rows >= n && counted >= n {
                tokio::time::sleep(Duration::from_secs(2)).await;
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "after {timeout:?}: {rows} rows and {counted} counted, want {n}\n{}",
                    self.whereabouts().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Where each service stands, per partition: what the loader stored
    /// (rows, highest offset), and what both report about themselves. What
    /// a timed-out wait prints, so a failure says which partition stopped and
    /// whether a service was waiting, paused or failing.
    async fn whereabouts(&self) -> String {
        let db = &self.db;
        let stored = sql(&format!(
            "SELECT kafka_partition, count(), max(kafka_offset) FROM {db}.event_ids \
             GROUP BY kafka_partition ORDER BY kafka_partition FORMAT TSV"
        ))
        .await
        .unwrap_or_else(|e| e.to_string());
        let loader = self
            .loader
            .metrics(&[
                "lag",
                "paused",
                "error",
                "retr",
                "assigned",
                "clickhouse_up",
            ])
            .await;
        let aggregator = self
            .aggregator
            .metrics(&[
                "lag",
                "waiting",
                "assigned",
                "clickhouse_up",
                "events_total",
            ])
            .await;
        format!(
            "stored per partition (partition, rows, highest offset):\n{stored}\
             loader metrics:\n{loader}\naggregator metrics:\n{aggregator}"
        )
    }

    /// Every id of `acknowledged` is one row of `events` and no other id is
    /// there; the rollups, views and DAU equal a recomputation from those rows.
    pub async fn assert_once(&self, acknowledged: &BTreeSet<Uuid>) -> anyhow::Result<()> {
        let db = &self.db;
        let rows = sql(&format!(
            "SELECT toString(event_id), count() FROM {db}.events GROUP BY event_id FORMAT TSV"
        ))
        .await?;
        let mut stored: BTreeMap<Uuid, u64> = BTreeMap::new();
        for line in rows.lines().filter(|l| !l.is_empty()) {
            let (id, n) = line.split_once('\t').context("a TSV row")?;
            stored.insert(id.parse()?, n.parse()?);
        }
        let twice: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
        ensure!(twice.is_empty(), "ids stored more than once: {twice:?}");
        let ids: BTreeSet<Uuid> = stored.keys().copied().collect();
        let missing: Vec<_> = acknowledged.difference(&ids).collect();
        let extra: Vec<_> = ids.difference(acknowledged).collect();
        ensure!(
            missing.is_empty() && extra.is_empty(),
            "acknowledged but not stored: {missing:?}; stored but not acknowledged: {extra:?}"
        );

        for (what, got, want) in [
            (
                "5-minute rollups",
                format!(
                    "SELECT team_id, event, user_id, toUInt32(window_start), sum(events) FROM {db}.rollups_5m \
                     GROUP BY team_id, event, user_id, window_start FORMAT TSV"
                ),
                format!(
                    "SELECT team_id, event, user_id, toUInt32(toStartOfFiveMinute(timestamp)) AS w, count() FROM {db}.events \
                     GROUP BY team_id, event, user_id, w FORMAT TSV"
                ),
            ),
            (
                "hourly view",
                format!(
                    "SELECT team_id, toUInt32(hour), sum(events) FROM {db}.rollups_hourly \
                     GROUP BY team_id, hour FORMAT TSV"
                ),
                format!(
                    "SELECT team_id, toUInt32(toStartOfHour(timestamp)) AS h, count() FROM {db}.events \
                     GROUP BY team_id, h FORMAT TSV"
                ),
            ),
            (
                "daily view",
                format!(
                    "SELECT team_id, toString(day), sum(events) FROM {db}.rollups_daily \
                     GROUP BY team_id, day FORMAT TSV"
                ),
                format!(
                    "SELECT team_id, toString(toDate(timestamp)) AS d, count() FROM {db}.events \
                     GROUP BY team_id, d FORMAT TSV"
                ),
            ),
            (
                "daily active users",
                format!(
                    "SELECT team_id, toString(day), uniqMerge(users) FROM {db}.dau_daily \
                     GROUP BY team_id, day FORMAT TSV"
                ),
                format!(
                    "SELECT team_id, toString(toDate(timestamp)) AS d, uniqExact(user_id) FROM {db}.events \
                     GROUP BY team_id, d FORMAT TSV"
                ),
            ),
        ] {
            // Sorted here: 18.16 reads `ORDER BY 1` as a constant.
            let sorted = |text: String| {
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                lines.sort();
                lines.join("\n")
            };
            let (got, want) = (sorted(sql(&got).await?), sorted(sql(&want).await?));
            ensure!(
                got == want,
                "{what} differ from the stored events:\n got:\n{got}\n want:\n{want}"
            );
        }
        Ok(())
    }

    /// Stops both services and drops the database (cleanup only: a drop
    /// that takes over two minutes is left to the server and reported, not
    /// waited for).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.loader.stop().await?;
        self.aggregator.stop().await?;
        let query = format!("DROP DATABASE IF EXISTS {}", self.db);
        match tokio::time::timeout(Duration::from_secs(120), sql(&query)).await {
            Ok(dropped) => dropped.map(|_| ()),
            Err(_) => {
                eprintln!(
                    "DROP DATABASE {} still running after 120 s; left to the server",
                    self.db
                );
                Ok(())
            }
        }
    }
}
