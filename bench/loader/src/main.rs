//! `sluice-bench-loader`: how many rows per second one loader stores in
//! ClickHouse, against baselines measured in the same run, and how fresh the
//! rows are (producer ack → queryable). Run through `scripts/bench-loader`.
//!
//! 1. N events of about `--event-bytes` of contract JSON are produced to a
//!    fresh topic (untimed).
//! 2. Baseline "consume only": a plain consumer reads them all, touching
//!    each payload (what Kafka hands one process).
//! 3. Baseline "raw INSERT": the same events as the loader's RowBinary rows,
//!    in blocks of the loader's batch size, POSTed one block at a time to a
//!    fresh `events` table; only the POSTs are timed (what ClickHouse takes).
//! 4. The real `sluice-loader` binary (release, no lake) loads the topic
//!    into a fresh database from the start; done when `loader_progress`
//!    covers every offset. CPU seconds are read from `/proc/<pid>/stat`.
//! 5. Deduplication: the same load with `dedup.window_secs = 0` (the
//!    loader's own cost of the per-partition sets), a raw INSERT without the
//!    `event_ids` view (the server's cost of keeping the ids), the state's
//!    memory per event from the loader's gauges, `event_ids` bytes on disk
//!    per event, and a restarted loader rebuilding its state from
//!    `event_ids` (rows per second).
//! 6. Freshness: with the loader still running, events are produced at a
//!    fixed rate; each delivery report's time is kept per (partition,
//!    offset), and `loader_progress` is polled every 100 ms: an event is
//!    queryable at the first poll whose offset for its partition covers it
//!    (`loader_progress` is written by the same insert as the rows).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use serde::Serialize;
use sluice_clickhouse as ch;
use sluice_core::kafka::KafkaSettings;

mod report;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:19092")]
    brokers: String,
    #[arg(long, default_value = "http://127.0.0.1:18123")]
    clickhouse_url: String,
    /// The release `sluice-loader` binary.
    #[arg(long)]
    loader_bin: PathBuf,
    /// pid of the ClickHouse server, to report its CPU seconds per phase.
    #[arg(long)]
    clickhouse_pid: Option<u32>,
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 1000)]
    event_bytes: usize,
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Rows per loader insert (and per raw-INSERT block).
    #[arg(long, default_value_t = 50_000)]
    batch_rows: usize,
    /// Events per second during the freshness phase.
    #[arg(long, default_value_t = 20_000)]
    fresh_rate: u64,
    #[arg(long, default_value_t = 20)]
    fresh_seconds: u64,
    #[arg(long, default_value = "unknown")]
    commit: String,
    #[arg(long)]
    out: Option<PathBuf>,
    /// Splice the results into this Markdown file's loader section.
    #[arg(long)]
    doc: Option<PathBuf>,
    /// Also load into a ClickHouse cluster: each shard's replica URLs,
    /// replicas separated by `,`, shards by `;` (shard 1 first).
    #[arg(long)]
    cluster_shards: Option<String>,
    /// The cluster's name in `remote_servers`.
    #[arg(long, default_value = "sluice")]
    cluster_name: String,
    /// pids of the cluster's ClickHouse nodes, for their CPU seconds.
    #[arg(long, value_delimiter = ',')]
    cluster_pids: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub rows: u64,
    pub wall_s: f64,
    /// CPU of the process doing the work (this one, or the loader).
    pub cpu_s: Option<f64>,
    /// CPU of the ClickHouse server during the phase.
    pub clickhouse_cpu_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub measured_at: String,
    pub commit: String,
    pub events: u64,
    pub event_bytes: f64,
    pub partitions: i32,
    pub batch_rows: usize,
    pub consume_only: Phase,
    pub raw_insert: Phase,
    pub loader: Phase,
    /// Time the loader spent inside INSERTs (its own histogram), and how many.
    pub loader_insert_s: Option<f64>,
    pub loader_inserts: Option<f64>,
    /// The same load with `clickhouse.compression = none`.
    pub loader_uncompressed: Phase,
    /// The same load with deduplication off (`dedup.window_secs = 0`).
    pub loader_no_dedup: Phase,
    /// The raw INSERT baseline without the `event_ids` view.
    pub raw_insert_no_ids: Phase,
    /// The deduplication state after the default load: entries and bytes.
    pub dedup_entries: Option<f64>,
    pub dedup_bytes: Option<f64>,
    /// `event_ids` on disk: bytes and rows of its active parts.
    pub event_ids_disk: (u64, u64),
    /// A restarted loader rebuilding its state from `event_ids`.
    pub rebuild: Phase,
    pub loader_uncompressed_insert_s: Option<f64>,
    pub fresh_rate: u64,
    pub fresh_seconds: u64,
    pub fresh_events: u64,
    /// Seconds: p50, p90, p99, max.
    pub freshness_s: [f64; 4],
    pub cpus: usize,
    pub load_average: String,
    /// The default load into the ClickHouse cluster (`--cluster-shards`),
    /// with the cluster's shape; ClickHouse CPU summed over its nodes.
    pub cluster: Option<(String, Phase)>,
}

fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`, which may hold spaces: utime, stime are the
    // 14th and 15th fields overall, the 12th and 13th after the `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// The contract events, padded to about `bytes` of JSON each.
fn make_events(n: u64, bytes: usize, first_id: u64) -> Vec<(String, Vec<u8>)> {
    let now = sluice_core::Timestamp::now().as_millis();
    (first_id..first_id + n)
        .map(|i| {
            let team = format!("team-{}", i % 3);
            let user = format!("user-{}", i % 20_000);
            let mut event = serde_json::json!({
                "event_id": uuid::Uuid::from_u128(u128::from(i) + 1),
                "team_id": team,
                "event": format!("event-{}", i % 20),
                "user_id": user,
                "timestamp": now,
                "received_at": now,
                "schema_version": 1,
                "properties": { "i": i, "pad": "" },
            });
            let used = event.to_string().len();
            event["properties"]["pad"] = "x".repeat(bytes.saturating_sub(used)).into();
            (
                sluice_core::kafka::partition_key(&team, &user),
                event.to_string().into_bytes(),
            )
        })
        .collect()
}

/// Delivery reports with their arrival time, per partition in offset order.
#[derive(Default)]
struct AckLog {
    acks: Mutex<BTreeMap<i32, Vec<(i64, Instant)>>>,
    failed: std::sync::atomic::AtomicU64,
}

/// The producer context: records into a shared [`AckLog`].
#[derive(Clone)]
struct Acks(Arc<AckLog>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                if let Ok(mut acks) = self.0.acks.lock() {
                    acks.entry(message.partition())
                        .or_default()
                        .push((message.offset(), Instant::now()));
                }
            }
            Err(_) => {
                self.0
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

fn producer(kafka: &KafkaSettings, log: Arc<AckLog>) -> anyhow::Result<ThreadedProducer<Acks>> {
    Ok(kafka
        .durable_producer_config(5, 60_000)
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Acks(log))?)
}

/// Sends `events`, at most `rate` per second when set; waits for every ack.
async fn produce(
    producer: &ThreadedProducer<Acks>,
    topic: &str,
    events: &[(String, Vec<u8>)],
    rate: Option<u64>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for (i, (key, payload)) in events.iter().enumerate() {
        if let Some(rate) = rate
            && i % 100 == 0
        {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
    }
    tokio::task::block_in_place(|| producer.flush(Duration::from_secs(120)))?;
    Ok(())
}

async fn consume_only(kafka: &KafkaSettings, topic: &str, n: u64) -> anyhow::Result<Phase> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set(
            "group.id",
            format!("bench-consume-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let (cpu0, t0) = (cpu_seconds(None), Instant::now());
    let (mut seen, mut bytes) = (0_u64, 0_usize);
    while seen < n {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("consume-only: no message for 60 s")??;
        bytes += message.payload().map_or(0, <[u8]>::len);
        seen += 1;
    }
    std::hint::black_box(bytes);
    Ok(Phase {
        name: "consume only (Kafka → this process, baseline)".into(),
        rows: n,
        wall_s: t0.elapsed().as_secs_f64(),
        cpu_s: delta(cpu0, cpu_seconds(None)),
        clickhouse_cpu_s: None,
    })
}

async fn raw_insert(
    args: &Args,
    events: &[(String, Vec<u8>)],
    database: &str,
    with_ids: bool,
) -> anyhow::Result<Phase> {
    let client = clickhouse::Client::default()
        .with_url(&args.clickhouse_url)
        .with_validation(false);
    let caps = ch::probe(&client).await?;
    let settings = ch::SchemaSettings::new(database);
    let report = ch::migrate(&client, &caps, &settings).await?;
    if !with_ids {
        client
            .query(&format!(
                "DROP TABLE {database}.{}",
                ch::schema::EVENT_IDS_VIEW
            ))
            .execute()
            .await?;
    }
    let parsed: Vec<sluice_core::Event<'_>> = events
        .iter()
        .map(|(_, payload)| serde_json::from_slice(payload))
        .collect::<Result<_, _>>()?;
    let loaded_at = sluice_core::Timestamp::now();
    let query = format!(
        "INSERT INTO {database}.events ({}) FORMAT RowBinary",
        report.layout.column_list()
    );
    let url = reqwest::Url::parse_with_params(&args.clickhouse_url, [("query", &query)])?;
    let http = reqwest::Client::new();
    // Only the POSTs are timed: each block is encoded before its clock starts.
    let mut took = Duration::ZERO;
    let ch0 = cpu_seconds(args.clickhouse_pid);
    for chunk in parsed.chunks(args.batch_rows) {
        let rows: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| ch::row(report.layout, e, "bench", 0, i as i64, loaded_at))
            .collect();
        let block = bytes::Bytes::from(ch::encode_rows(&rows));
        let t0 = Instant::now();
        let response = http.post(url.clone()).body(block).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "raw insert: {}",
            response.text().await.unwrap_or_default()
        );
        took += t0.elapsed();
    }
    Ok(Phase {
        name: if with_ids {
            "raw INSERT of pre-encoded RowBinary (ClickHouse alone, baseline)".into()
        } else {
            "raw INSERT, without the `event_ids` view (the server's cost of the ids)".into()
        },
        rows: events.len() as u64,
        wall_s: took.as_secs_f64(),
        cpu_s: None,
        clickhouse_cpu_s: delta(ch0, cpu_seconds(args.clickhouse_pid)),
    })
}

struct LoaderProcess(Child);

impl Drop for LoaderProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn start_loader(
    args: &Args,
    topic: &str,
    database: &str,
    listen: std::net::SocketAddr,
    compression: &str,
    dedup_window_secs: Option<u32>,
) -> anyhow::Result<LoaderProcess> {
    start_loader_with(
        args,
        topic,
        database,
        listen,
        compression,
        dedup_window_secs,
        &[],
    )
}

/// [`start_loader`] with extra environment (the cluster settings).
fn start_loader_with(
    args: &Args,
    topic: &str,
    database: &str,
    listen: std::net::SocketAddr,
    compression: &str,
    dedup_window_secs: Option<u32>,
    env: &[(&str, String)],
) -> anyhow::Result<LoaderProcess> {
    let mut command = Command::new(&args.loader_bin);
    if let Some(window) = dedup_window_secs {
        command.env("SLUICE_LOADER_DEDUP__WINDOW_SECS", window.to_string());
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command
        .env("SLUICE_LOADER_LISTEN", listen.to_string())
        .env("SLUICE_LOADER_KAFKA__BROKERS", &args.brokers)
        .env("SLUICE_LOADER_TOPIC", topic)
        .env(
            "SLUICE_LOADER_GROUP_ID",
            format!("bench-loader-{}", uuid::Uuid::new_v4().simple()),
        )
        .env("SLUICE_LOADER_CLICKHOUSE__URL", &args.clickhouse_url)
        .env("SLUICE_LOADER_CLICKHOUSE__DATABASE", database)
        .env("SLUICE_LOADER_BATCH__MAX_ROWS", args.batch_rows.to_string())
        .env("SLUICE_LOADER_CLICKHOUSE__COMPRESSION", compression)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", args.loader_bin.display()))?;
    Ok(LoaderProcess(child))
}

/// Highest loaded offset per partition, from `loader_progress` (empty while
/// the loader has not created the database yet).
async fn progress(client: &clickhouse::Client, topic: &str) -> BTreeMap<i32, i64> {
    ch::loaded_offsets(client, topic).await.unwrap_or_default()
}

/// The value of an unlabelled sample in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn admin_topic(
    kafka: &KafkaSettings,
    topic: &str,
    partitions: i32,
    create: bool,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    if create {
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for result in admin.create_topics([&new], &options).await? {
            result.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
        }
    } else {
        admin.delete_topics(&[topic], &options).await?;
    }
    Ok(())
}

/// Time in INSERTs and their number, from the loader's own histogram.
type InsertProfile = (Option<f64>, Option<f64>);

/// Runs a fresh loader on `topic` (every event, from the first offset) into
/// `database` until `loader_progress` covers all of it; returns it running.
async fn bulk_load(
    args: &Args,
    topic: &str,
    database: &str,
    compression: &str,
    dedup_window_secs: Option<u32>,
) -> anyhow::Result<(Phase, InsertProfile, LoaderProcess, String)> {
    let client = clickhouse::Client::default()
        .with_url(&args.clickhouse_url)
        .with_database(database)
        .with_validation(false);
    let ch0 = cpu_seconds(args.clickhouse_pid);
    let t0 = Instant::now();
    // A free port for the loader's /metrics (released just before it binds).
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let loader = start_loader(
        args,
        topic,
        database,
        listen,
        compression,
        dedup_window_secs,
    )?;
    let pid = loader.0.id();
    let cpu0 = cpu_seconds(Some(pid));
    let loaded = |p: &BTreeMap<i32, i64>| p.values().map(|o| (o + 1) as u64).sum::<u64>();
    while loaded(&progress(&client, topic).await) < args.events {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "loader: not done after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dedup = if dedup_window_secs == Some(0) {
        ", dedup.window_secs = 0"
    } else {
        ""
    };
    let phase = Phase {
        name: format!(
            "sluice-loader, clickhouse.compression = {compression}{dedup} (Kafka → decode → RowBinary → ClickHouse)"
        ),
        rows: args.events,
        wall_s: t0.elapsed().as_secs_f64(),
        cpu_s: delta(cpu0, cpu_seconds(Some(pid))),
        clickhouse_cpu_s: delta(ch0, cpu_seconds(args.clickhouse_pid)),
    };
    let metrics = reqwest::get(format!("http://{listen}/metrics"))
        .await?
        .text()
        .await?;
    let profile = (
        metric(&metrics, "sluice_loader_insert_duration_seconds_sum"),
        metric(&metrics, "sluice_loader_insert_duration_seconds_count"),
    );
    Ok((phase, profile, loader, metrics))
}

/// Each shard's replica URLs from `--cluster-shards`.
fn cluster_shards(text: &str) -> Vec<Vec<String>> {
    text.split(';')
        .map(|shard| shard.split(',').map(|url| url.trim().to_owned()).collect())
        .collect()
}

/// The default load (LZ4, deduplication on) into the ClickHouse cluster:
/// until `events_all` holds every event; ClickHouse CPU over all its nodes.
async fn cluster_load(
    args: &Args,
    topic: &str,
    database: &str,
    shards_text: &str,
) -> anyhow::Result<(String, Phase)> {
    let shards = cluster_shards(shards_text);
    let first = shards
        .first()
        .and_then(|s| s.first())
        .context("--cluster-shards names no node")?
        .clone();
    let nodes_cpu = || -> Option<f64> {
        args.cluster_pids
            .iter()
            .map(|pid| cpu_seconds(Some(*pid)))
            .sum::<Option<f64>>()
    };
    let toml = format!(
        "[{}]",
        shards
            .iter()
            .map(|replicas| format!(
                "[{}]",
                replicas
                    .iter()
                    .map(|u| format!("\"{u}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let env = [
        ("SLUICE_LOADER_CLICKHOUSE__SHARDS", toml),
        (
            "SLUICE_LOADER_CLICKHOUSE__CLUSTER",
            args.cluster_name.clone(),
        ),
    ];
    let ch0 = nodes_cpu();
    let t0 = Instant::now();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let loader = start_loader_with(args, topic, database, listen, "lz4", None, &env)?;
    let pid = loader.0.id();
    let cpu0 = cpu_seconds(Some(pid));
    let http = reqwest::Client::new();
    let count = format!("SELECT count() FROM {database}.events_all");
    loop {
        let stored: u64 = match http.post(&first).body(count.clone()).send().await {
            Ok(response) if response.status().is_success() => {
                response.text().await?.trim().parse().unwrap_or(0)
            }
            _ => 0,
        };
        if stored >= args.events {
            break;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(900),
            "loader into the cluster: {stored} of {} after 900 s",
            args.events
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let phase = Phase {
        name: "sluice-loader into the ClickHouse cluster (same load, clickhouse.shards)".into(),
        rows: args.events,
        wall_s: t0.elapsed().as_secs_f64(),
        cpu_s: delta(cpu0, cpu_seconds(Some(pid))),
        clickhouse_cpu_s: delta(ch0, nodes_cpu()),
    };
    drop(loader);
    let shape = format!(
        "{} shards × {} replicas",
        shards.len(),
        shards.first().map_or(0, Vec::len)
    );
    let _ = http
        .post(&first)
        .body(format!(
            "DROP DATABASE IF EXISTS {database} ON CLUSTER {}",
            args.cluster_name
        ))
        .send()
        .await;
    Ok((shape, phase))
}

/// A second loader on a loaded database (its own group, so it reads the
/// topic from the start and skips it all by `loader_progress`): the time
/// until its deduplication state holds every stored event, rebuilt from
/// `event_ids`.
async fn rebuild(args: &Args, topic: &str, database: &str) -> anyhow::Result<Phase> {
    let ch0 = cpu_seconds(args.clickhouse_pid);
    let t0 = Instant::now();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let loader = start_loader(args, topic, database, listen, "lz4", None)?;
    let pid = loader.0.id();
    let cpu0 = cpu_seconds(Some(pid));
    loop {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(300),
            "rebuild: not done after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(response) = reqwest::get(format!("http://{listen}/metrics")).await else {
            continue;
        };
        let text = response.text().await.unwrap_or_default();
        if metric(&text, "sluice_loader_dedup_entries").unwrap_or(0.0) >= args.events as f64 {
            break;
        }
    }
    Ok(Phase {
        name: "restart: deduplication state rebuilt from `event_ids` (start-up included)".into(),
        rows: args.events,
        wall_s: t0.elapsed().as_secs_f64(),
        cpu_s: delta(cpu0, cpu_seconds(Some(pid))),
        clickhouse_cpu_s: delta(ch0, cpu_seconds(args.clickhouse_pid)),
    })
}

/// Bytes and rows of `database.event_ids`'s active parts.
async fn event_ids_disk(args: &Args, database: &str) -> anyhow::Result<(u64, u64)> {
    let client = clickhouse::Client::default()
        .with_url(&args.clickhouse_url)
        .with_validation(false);
    Ok(client
        .query(&format!(
            "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE database = '{database}' AND table = 'event_ids' AND active"
        ))
        .fetch_one::<(u64, u64)>()
        .await?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let kafka = KafkaSettings {
        brokers: args.brokers.clone(),
        ..Default::default()
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("bench-loader-{run}");
    let (raw_db, loader_db) = (format!("bench_raw_{run}"), format!("bench_loader_{run}"));
    let (no_ids_db, plain_db, no_dedup_db) = (
        format!("{raw_db}_no_ids"),
        format!("{loader_db}_plain"),
        format!("{loader_db}_no_dedup"),
    );
    admin_topic(&kafka, &topic, args.partitions, true).await?;

    eprintln!("producing {} events to {topic}", args.events);
    let events = make_events(args.events, args.event_bytes, 0);
    let event_bytes =
        events.iter().map(|(_, p)| p.len()).sum::<usize>() as f64 / events.len().max(1) as f64;
    let bulk_acks = Arc::new(AckLog::default());
    produce(&producer(&kafka, bulk_acks.clone())?, &topic, &events, None).await?;
    let baselines = baselines(&args, &kafka, &topic, &events, &raw_db, &no_ids_db).await?;
    drop(events);
    let loads = loads(&args, &topic, &loader_db, &plain_db, &no_dedup_db).await?;
    let mut samples = freshness(&args, &kafka, &topic, &loader_db).await?;
    drop(loads.running);
    samples.sort_by(f64::total_cmp);
    let cluster = match &args.cluster_shards {
        Some(shards) => {
            eprintln!("loader: bulk load into the ClickHouse cluster");
            let loaded =
                cluster_load(&args, &topic, &format!("{loader_db}_cluster"), shards).await?;
            eprintln!("  {:.2} s", loaded.1.wall_s);
            Some(loaded)
        }
        None => None,
    };

    let results = Results {
        measured_at: sluice_core::Timestamp::now().to_rfc3339(),
        commit: args.commit.clone(),
        events: args.events,
        event_bytes,
        partitions: args.partitions,
        batch_rows: args.batch_rows,
        consume_only: baselines.consume_only,
        raw_insert: baselines.raw_insert,
        loader: loads.loader,
        loader_insert_s: loads.profile.0,
        loader_inserts: loads.profile.1,
        loader_uncompressed: loads.plain,
        loader_uncompressed_insert_s: loads.plain_profile.0,
        loader_no_dedup: loads.no_dedup,
        raw_insert_no_ids: baselines.raw_insert_no_ids,
        dedup_entries: loads.dedup_entries,
        dedup_bytes: loads.dedup_bytes,
        event_ids_disk: loads.event_ids_disk,
        rebuild: loads.rebuild,
        fresh_rate: args.fresh_rate,
        fresh_seconds: args.fresh_seconds,
        fresh_events: args.fresh_rate * args.fresh_seconds,
        freshness_s: [
            quantile(&samples, 0.5),
            quantile(&samples, 0.9),
            quantile(&samples, 0.99),
            samples.last().copied().unwrap_or(f64::NAN),
        ],
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        cluster,
    };

    let http = reqwest::Client::new();
    for database in [&raw_db, &no_ids_db, &loader_db, &plain_db, &no_dedup_db] {
        let _ = http
            .post(&args.clickhouse_url)
            .body(format!("DROP DATABASE IF EXISTS {database}"))
            .send()
            .await;
    }
    let _ = admin_topic(&kafka, &topic, 0, false).await;
    publish(&args, &results)
}

/// The same-run baselines: consume only, and the raw INSERT with and
/// without the `event_ids` view.
struct Baselines {
    consume_only: Phase,
    raw_insert: Phase,
    raw_insert_no_ids: Phase,
}

async fn baselines(
    args: &Args,
    kafka: &KafkaSettings,
    topic: &str,
    events: &[(String, Vec<u8>)],
    raw_db: &str,
    no_ids_db: &str,
) -> anyhow::Result<Baselines> {
    eprintln!("baseline: consume only");
    let consume_only = consume_only(kafka, topic, args.events).await?;
    eprintln!("  {:.2} s", consume_only.wall_s);
    let raw_insert_no_ids = {
        eprintln!("baseline: raw INSERT without the event_ids view");
        raw_insert(args, events, no_ids_db, false).await?
    };
    eprintln!("  {:.2} s", raw_insert_no_ids.wall_s);
    eprintln!("baseline: raw INSERT");
    let raw_insert = raw_insert(args, events, raw_db, true).await?;
    eprintln!("  {:.2} s", raw_insert.wall_s);
    Ok(Baselines {
        consume_only,
        raw_insert,
        raw_insert_no_ids,
    })
}

/// The loader's bulk loads and the restart, with the default load's loader
/// left running for the freshness phase.
struct Loads {
    plain: Phase,
    plain_profile: InsertProfile,
    no_dedup: Phase,
    loader: Phase,
    profile: InsertProfile,
    running: LoaderProcess,
    dedup_entries: Option<f64>,
    dedup_bytes: Option<f64>,
    event_ids_disk: (u64, u64),
    rebuild: Phase,
}

async fn loads(
    args: &Args,
    topic: &str,
    loader_db: &str,
    plain_db: &str,
    no_dedup_db: &str,
) -> anyhow::Result<Loads> {
    // Uncompressed first, then the default (LZ4), which stays running for
    // the freshness phase.
    eprintln!("loader: bulk load, clickhouse.compression = none");
    let (plain, plain_profile, plain_loader, _) =
        bulk_load(args, topic, plain_db, "none", None).await?;
    drop(plain_loader);
    eprintln!("  {:.2} s", plain.wall_s);
    eprintln!("loader: bulk load, dedup.window_secs = 0");
    let (no_dedup, _, no_dedup_loader, _) =
        bulk_load(args, topic, no_dedup_db, "lz4", Some(0)).await?;
    drop(no_dedup_loader);
    eprintln!("  {:.2} s", no_dedup.wall_s);
    eprintln!("loader: bulk load, clickhouse.compression = lz4 (default)");
    let (loader, profile, running, metrics) =
        bulk_load(args, topic, loader_db, "lz4", None).await?;
    eprintln!("  {:.2} s", loader.wall_s);
    let dedup_entries = metric(&metrics, "sluice_loader_dedup_entries");
    let dedup_bytes = metric(&metrics, "sluice_loader_dedup_bytes");
    let event_ids_disk = event_ids_disk(args, loader_db).await?;
    eprintln!("loader: restart, rebuilding the deduplication state");
    let rebuild = rebuild(args, topic, loader_db).await?;
    eprintln!("  {:.2} s", rebuild.wall_s);
    Ok(Loads {
        plain,
        plain_profile,
        no_dedup,
        loader,
        profile,
        running,
        dedup_entries,
        dedup_bytes,
        event_ids_disk,
        rebuild,
    })
}

/// Produces at `--fresh-rate` while the loader runs; returns each event's
/// seconds from its delivery report to the first poll of `loader_progress`
/// that covers it.
async fn freshness(
    args: &Args,
    kafka: &KafkaSettings,
    topic: &str,
    loader_db: &str,
) -> anyhow::Result<Vec<f64>> {
    let client = clickhouse::Client::default()
        .with_url(&args.clickhouse_url)
        .with_database(loader_db)
        .with_validation(false);
    eprintln!(
        "freshness: {} events/s for {} s",
        args.fresh_rate, args.fresh_seconds
    );
    let fresh_n = args.fresh_rate * args.fresh_seconds;
    let fresh_events = make_events(fresh_n, args.event_bytes, args.events);
    let acks = Arc::new(AckLog::default());
    let live = producer(kafka, acks.clone())?;
    let producing = {
        let topic = topic.to_owned();
        let rate = args.fresh_rate;
        tokio::spawn(async move { produce(&live, &topic, &fresh_events, Some(rate)).await })
    };
    let mut cursors: BTreeMap<i32, usize> = BTreeMap::new();
    let mut samples: Vec<f64> = Vec::with_capacity(fresh_n as usize);
    let deadline = Instant::now() + Duration::from_secs(args.fresh_seconds + 120);
    while (samples.len() as u64) < fresh_n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "freshness: {} of {fresh_n} events seen",
            samples.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = progress(&client, topic).await;
        let now = Instant::now();
        let acks = acks
            .acks
            .lock()
            .map_err(|_| anyhow::anyhow!("ack log poisoned"))?;
        for (partition, list) in acks.iter() {
            let cursor = cursors.entry(*partition).or_default();
            let covered = seen.get(partition).copied().unwrap_or(-1);
            while let Some((offset, acked)) = list.get(*cursor) {
                if *offset > covered {
                    break;
                }
                samples.push(now.saturating_duration_since(*acked).as_secs_f64());
                *cursor += 1;
            }
        }
    }
    producing.await??;
    anyhow::ensure!(
        acks.failed.load(std::sync::atomic::Ordering::Relaxed) == 0,
        "some live events were not acknowledged"
    );
    Ok(samples)
}

/// Prints the Markdown, and writes the results to `--out` and the Markdown
/// into `--doc`'s loader section.
fn publish(args: &Args, results: &Results) -> anyhow::Result<()> {
    let markdown = report::render(results);
    println!("{markdown}");
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_vec_pretty(results)?)?;
    }
    if let Some(doc) = &args.doc {
        let text = std::fs::read_to_string(doc)?;
        std::fs::write(doc, report::splice(&text, &markdown)?)?;
    }
    Ok(())
}
