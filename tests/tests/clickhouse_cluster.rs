//! ClickHouse 18.16 as a cluster, on the real servers: two shards of two
//! replicas (`scripts/stack cluster up`, a dedicated instance of this test's
//! own so that killing a node disturbs nobody), coordinated by ZooKeeper.
//! Part 2 of issue 22, first step: what the loader and aggregator will rely
//! on, shown before they are changed to use it.
//!
//! 1. `CREATE ... ON CLUSTER sluice` of a `ReplicatedMergeTree` table and a
//!    `Distributed` table over it reaches all four nodes, each replica
//!    registered under its shard's ZooKeeper path with its own name.
//! 2. Rows inserted through `Distributed` with `insert_distributed_sync=1`
//!    land on the shard the sharding key names (`id % 2`: even ids on shard
//!    1, odd on shard 2) and on both replicas of it; exact sets per node.
//! 3. Replicated insert-block deduplication: the identical block inserted
//!    twice into one replica, and once more into its twin, is stored once
//!    on both replicas (the block hashes live in the shard's ZooKeeper path,
//!    so a retry that lands on the other replica is caught too).
//! 4. One replica SIGKILLed while blocks are inserted into its twin: every
//!    insert keeps succeeding, also once ZooKeeper counts the replica
//!    inactive, and the restarted replica catches up to exactly the twin's
//!    rows, none missing, none doubled.
//! 5. A query through `Distributed` (from any node) answers what the union
//!    of the shards' local tables answers.
//!
//! Everything waits on conditions with deadlines; counts are exact.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sluice_tests::stack::{CLUSTER_NAME, ClusterNode, DedicatedStack, Services};
use tokio::sync::Mutex;

/// POSTs `sql` to a node; the body of the answer, or the server's error.
async fn query(http: &reqwest::Client, url: &str, sql: &str) -> anyhow::Result<String> {
    let response = http
        .post(format!("{url}/"))
        .body(sql.to_owned())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .with_context(|| format!("{url}: {sql}"))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{url}: {sql}: {status}: {body}");
    }
    Ok(body)
}

/// Minimal percent-encoding for a query string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `INSERT INTO table FORMAT TSV` with `tsv` as the data, plus URL settings
/// (`&name=value`).
async fn insert(
    http: &reqwest::Client,
    url: &str,
    table: &str,
    tsv: String,
    settings: &str,
) -> anyhow::Result<()> {
    let sql = format!("INSERT INTO {table} FORMAT TSV");
    let response = http
        .post(format!("{url}/?query={}{settings}", encode(&sql)))
        .body(tsv)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .with_context(|| format!("{url}: {sql}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("{url}: {sql}: {status}: {}", response.text().await?);
    }
    Ok(())
}

/// Rows `id \t payload` for the given ids.
fn rows(ids: impl IntoIterator<Item = u64>) -> String {
    ids.into_iter()
        .map(|id| format!("{id}\tpayload-{id}\n"))
        .collect()
}

/// The ids in a node's local table, ascending.
async fn ids(http: &reqwest::Client, node: &ClusterNode, table: &str) -> Vec<u64> {
    query(
        http,
        &node.http_url,
        &format!("SELECT id FROM {table} ORDER BY id"),
    )
    .await
    .unwrap()
    .lines()
    .map(|l| l.parse().unwrap())
    .collect()
}

/// `name\tengine` of every table of `db` on `node`, one per line, by name.
async fn tables(http: &reqwest::Client, node: &ClusterNode, db: &str) -> String {
    let sql =
        format!("SELECT name, engine FROM system.tables WHERE database = '{db}' ORDER BY name");
    query(http, &node.http_url, &sql).await.unwrap()
}

/// Polls `check` until it is true; panics after `timeout`.
async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `db.{name}_local` (replicated, per shard) and `db.{name}`
/// (Distributed over it, sharded by `id % 2`) on the whole cluster.
async fn create_tables(http: &reqwest::Client, node: &ClusterNode, db: &str, name: &str) {
    let local = query(
        http,
        &node.http_url,
        &format!(
            "CREATE TABLE {db}.{name}_local ON CLUSTER {CLUSTER_NAME} (id UInt64, payload String) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{db}/{name}_local', '{{replica}}') \
             ORDER BY id"
        ),
    )
    .await
    .unwrap();
    // One line per host, host and port first, status (0 = done) third.
    assert_eq!(local.lines().count(), 4, "ON CLUSTER answered: {local}");
    for line in local.lines() {
        assert_eq!(
            line.split('\t').nth(2),
            Some("0"),
            "ON CLUSTER host failed: {line}"
        );
    }
    query(
        http,
        &node.http_url,
        &format!(
            "CREATE TABLE {db}.{name} ON CLUSTER {CLUSTER_NAME} (id UInt64, payload String) \
             ENGINE = Distributed({CLUSTER_NAME}, {db}, {name}_local, id)"
        ),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_two_replicas_shard_replicate_deduplicate_and_survive_a_killed_replica() {
    let t0 = Instant::now();
    let stack = cluster().await;
    eprintln!("cluster up in {:.1}s", t0.elapsed().as_secs_f64());
    let nodes = stack.cluster_nodes();
    let [s1r1, s1r2, s2r1, s2r2] = [&nodes[0], &nodes[1], &nodes[2], &nodes[3]];
    assert_eq!(
        (s1r1.shard, s1r2.shard, s2r1.shard, s2r2.shard),
        (1, 1, 2, 2)
    );
    let http = reqwest::Client::new();
    let db = format!("cluster_proof_{}", uuid::Uuid::new_v4().simple());

    // -- 1. ON CLUSTER DDL ------------------------------------------------
    query(
        &http,
        &s1r1.http_url,
        &format!("CREATE DATABASE {db} ON CLUSTER {CLUSTER_NAME}"),
    )
    .await
    .unwrap();
    create_tables(&http, s1r1, &db, "events").await;
    for node in &nodes {
        let tables = tables(&http, node, &db).await;
        assert_eq!(
            tables, "events\tDistributed\nevents_local\tReplicatedMergeTree\n",
            "{}",
            node.name
        );
        let replica = query(
            &http,
            &node.http_url,
            &format!(
                "SELECT zookeeper_path, replica_name, total_replicas, active_replicas \
                 FROM system.replicas WHERE database = '{db}' AND table = 'events_local'"
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            replica,
            format!(
                "/clickhouse/tables/{}/{db}/events_local\t{}\t2\t2\n",
                node.shard, node.name
            )
        );
    }

    // -- 2. Distributed insert: right shard, both replicas -----------------
    let all: Vec<u64> = (1..=1000).collect();
    let even: Vec<u64> = all.iter().copied().filter(|id| id % 2 == 0).collect();
    let odd: Vec<u64> = all.iter().copied().filter(|id| id % 2 == 1).collect();
    insert(
        &http,
        &s2r2.http_url,
        &format!("{db}.events"),
        rows(all.iter().copied()),
        "&insert_distributed_sync=1",
    )
    .await
    .unwrap();
    let local = format!("{db}.events_local");
    for node in &nodes {
        let expected = if node.shard == 1 { &even } else { &odd };
        // The synchronous insert returns once one replica per shard has
        // the rows; the other one fetches them through replication.
        wait_for(
            &format!("{} to hold its shard's 500 rows", node.name),
            Duration::from_secs(60),
            async || ids(&http, node, &local).await.len() >= expected.len(),
        )
        .await;
        assert_eq!(&ids(&http, node, &local).await, expected, "{}", node.name);
    }

    // -- 5. Distributed query == union of the shards -----------------------
    let summary = "SELECT count(), sum(id), uniqExact(id), min(id), max(id)";
    let by_key = "SELECT id % 7 AS k, count(), sum(id) FROM";
    let union = query(
        &http,
        &s1r1.http_url,
        &format!(
            "{summary} FROM (SELECT id FROM remote('127.0.0.1:{}', {local}) \
             UNION ALL SELECT id FROM remote('127.0.0.1:{}', {local}))",
            stack.cluster_port + 1,
            stack.cluster_port + 21
        ),
    )
    .await
    .unwrap();
    assert_eq!(union, "1000\t500500\t1000\t1\t1000\n");
    let union_by_key = query(
        &http,
        &s1r1.http_url,
        &format!(
            "{by_key} (SELECT id FROM remote('127.0.0.1:{}', {local}) \
             UNION ALL SELECT id FROM remote('127.0.0.1:{}', {local})) GROUP BY k ORDER BY k",
            stack.cluster_port + 11,
            stack.cluster_port + 31
        ),
    )
    .await
    .unwrap();
    for node in &nodes {
        let through = query(
            &http,
            &node.http_url,
            &format!("{summary} FROM {db}.events"),
        )
        .await
        .unwrap();
        assert_eq!(through, union, "Distributed on {}", node.name);
        let through = query(
            &http,
            &node.http_url,
            &format!("{by_key} {db}.events GROUP BY k ORDER BY k"),
        )
        .await
        .unwrap();
        assert_eq!(
            through, union_by_key,
            "Distributed GROUP BY on {}",
            node.name
        );
    }

    // -- 3. Replicated insert-block deduplication --------------------------
    create_tables(&http, s1r1, &db, "dedup").await;
    let dedup = format!("{db}.dedup_local");
    let block = rows(1..=100);
    for node in [s1r1, s1r1, s1r2] {
        // Each answers 200: a deduplicated block is acknowledged, not refused.
        insert(&http, &node.http_url, &dedup, block.clone(), "")
            .await
            .unwrap();
    }
    // A different block afterwards, so that the wait below has something
    // to see even where deduplication works (110 rows; 210 or 310 if not).
    insert(&http, &s1r1.http_url, &dedup, rows(1001..=1010), "")
        .await
        .unwrap();
    let expected: Vec<u64> = (1..=100).chain(1001..=1010).collect();
    for node in [s1r1, s1r2] {
        wait_for(
            &format!("{} to hold the marker block", node.name),
            Duration::from_secs(60),
            async || {
                let ids = ids(&http, node, &dedup).await;
                ids.len() >= expected.len() && ids.contains(&1010)
            },
        )
        .await;
        assert_eq!(ids(&http, node, &dedup).await, expected, "{}", node.name);
    }
    for node in [s2r1, s2r2] {
        assert!(ids(&http, node, &dedup).await.is_empty(), "{}", node.name);
    }

    // -- 4. SIGKILL a replica mid-inserts ----------------------------------
    create_tables(&http, s1r1, &db, "kill").await;
    let kill = format!("{db}.kill_local");
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let inserter = {
        let (http, url, table) = (http.clone(), s1r1.http_url.clone(), kill.clone());
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut block = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ids: Vec<u64> = (block * 100..block * 100 + 100).collect();
                // Every insert to the live twin must succeed: no error is
                // tolerated, so a failure ends the task with a panic.
                insert(&http, &url, &table, rows(ids.iter().copied()), "")
                    .await
                    .unwrap();
                acked.lock().await.extend(ids);
                block += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            block
        })
    };
    let blocks = async || acked.lock().await.len() / 100;
    wait_for(
        "the twin replicating",
        Duration::from_secs(60),
        async || blocks().await >= 5 && !ids(&http, s1r2, &kill).await.is_empty(),
    )
    .await;
    tokio::task::block_in_place(|| stack.kill(s1r2.name)).unwrap();
    let at_kill = blocks().await;
    // Inserts go on while ZooKeeper itself counts the replica as gone (its
    // session expired), not only in the moment after the kill.
    let active = async || {
        query(
            &http,
            &s1r1.http_url,
            &format!(
                "SELECT active_replicas FROM system.replicas \
                 WHERE database = '{db}' AND table = 'kill_local'"
            ),
        )
        .await
        .unwrap()
        .trim()
        .to_owned()
    };
    wait_for(
        "ZooKeeper to see one active replica",
        Duration::from_secs(60),
        async || active().await == "1",
    )
    .await;
    let at_gone = blocks().await;
    wait_for(
        "20 more blocks with the replica dead",
        Duration::from_secs(60),
        async || blocks().await >= at_gone + 20,
    )
    .await;
    let restart = Instant::now();
    tokio::task::block_in_place(|| stack.start_service(s1r2.name)).unwrap();
    let at_restart = blocks().await;
    wait_for(
        "both replicas active again",
        Duration::from_secs(60),
        async || active().await == "2",
    )
    .await;
    wait_for(
        "10 more blocks after the restart",
        Duration::from_secs(60),
        async || blocks().await >= at_restart + 10,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let total_blocks = inserter.await.expect("no insert to the twin failed");
    let acked: Vec<u64> = acked.lock().await.clone();
    assert_eq!(acked.len() as u64, total_blocks * 100);
    assert_eq!(
        acked.iter().copied().collect::<BTreeSet<_>>().len(),
        acked.len()
    );
    wait_for(
        "the restarted replica to catch up",
        Duration::from_secs(120),
        async || ids(&http, s1r2, &kill).await.len() >= acked.len(),
    )
    .await;
    let caught_up = restart.elapsed();
    for node in [s1r1, s1r2] {
        assert_eq!(ids(&http, node, &kill).await, acked, "{}", node.name);
    }
    eprintln!(
        "killed {} after {at_kill} blocks, inactive in ZooKeeper after {at_gone}, restarted \
         after {at_restart}; {total_blocks} blocks ({} rows) inserted into {} without an \
         error; {} caught up {:.1}s after its restart began",
        s1r2.name,
        acked.len(),
        s1r1.name,
        s1r2.name,
        caught_up.as_secs_f64()
    );
    // Through Distributed (both replicas of shard 1 alive again): the same
    // rows, once.
    let through = query(
        &http,
        &s2r1.http_url,
        &format!("SELECT count(), uniqExact(id) FROM {db}.kill"),
    )
    .await
    .unwrap();
    assert_eq!(through, format!("{0}\t{0}\n", acked.len()));
    eprintln!("total {:.1}s", t0.elapsed().as_secs_f64());
}

/// Event ids as the cluster holds them: every `event_id` of `table` on one
/// node, with how often it is there.
async fn stored_ids(
    http: &reqwest::Client,
    node: &ClusterNode,
    table: &str,
) -> std::collections::BTreeMap<String, u64> {
    query(
        http,
        &node.http_url,
        &format!("SELECT toString(event_id), count() FROM {table} GROUP BY event_id"),
    )
    .await
    .unwrap()
    .lines()
    .map(|line| {
        let (id, n) = line.split_once('\t').unwrap();
        (id.to_owned(), n.parse().unwrap())
    })
    .collect()
}

/// `batches` batches of 50 events through the gateway; the ids it accepted.
async fn send_events(
    gateway: &sluice_tests::RunningGateway,
    key: &str,
    batches: usize,
) -> BTreeSet<String> {
    let http = reqwest::Client::new();
    let mut accepted = BTreeSet::new();
    // A quarter of an hour ago: the aggregator closes those windows as soon
    // as the partitions are idle, instead of at the next 5-minute boundary.
    let at = sluice_core::Timestamp::from_millis(
        sluice_core::Timestamp::now().as_millis() - 15 * 60_000,
    )
    .to_rfc3339();
    for b in 0..batches {
        let events: Vec<serde_json::Value> = (0..50)
            .map(|i| {
                serde_json::json!({
                    "event_id": uuid::Uuid::new_v4(),
                    "event": "Cluster Load",
                    "user_id": format!("user-{b}-{i}"),
                    "timestamp": at,
                })
            })
            .collect();
        let body: serde_json::Value = http
            .post(gateway.url("/v1/events"))
            .bearer_auth(key)
            .json(&serde_json::json!({ "events": events }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["accepted"], 50, "{body}");
        accepted.extend(
            events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        );
    }
    accepted
}

const KEY: &str = "sk_test_cluster_loader";
const TEAM: &str = "team-cluster";

/// A service running in this process until `stop`.
struct Service {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// `http://host:port` of its health endpoints.
    url: String,
}

impl Service {
    async fn end(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A 2x2 ClickHouse cluster with ZooKeeper of this test's own.
async fn cluster() -> DedicatedStack {
    tokio::task::spawn_blocking(|| DedicatedStack::start(Services::ClickHouseCluster))
        .await
        .unwrap()
        .unwrap()
}

/// The loader's `clickhouse` settings for the 2x2 cluster of `nodes`, in
/// database `db`: shard 1 is the first two nodes, shard 2 the last two.
fn loader_settings(nodes: &[ClusterNode], db: &str) -> sluice_loader::config::ClickHouseSettings {
    sluice_loader::config::ClickHouseSettings {
        shards: vec![
            vec![nodes[0].http_url.clone(), nodes[1].http_url.clone()],
            vec![nodes[2].http_url.clone(), nodes[3].http_url.clone()],
        ],
        cluster: CLUSTER_NAME.to_owned(),
        database: db.to_owned(),
        ..Default::default()
    }
}

/// The pipeline on a cluster of its own: the real gateway producing to a
/// 4-partition topic of the shared Kafka, the loader (and, if asked, the
/// aggregator) writing to the 2x2 cluster through `clickhouse.shards`, the
/// schema created `ON CLUSTER` before any row, merges stopped on `events`.
struct Pipeline {
    stack: DedicatedStack,
    nodes: Vec<ClusterNode>,
    http: reqwest::Client,
    db: String,
    gateway: sluice_tests::RunningGateway,
    loader: Service,
    aggregator: Option<Service>,
    topics: sluice_tests::TestTopics,
}

impl Pipeline {
    async fn start(with_aggregator: bool) -> Self {
        Self::start_with(with_aggregator, 50_000).await
    }

    /// With the loader's `batch.max_rows` at `max_rows`.
    async fn start_with(with_aggregator: bool, max_rows: usize) -> Self {
        let stack = cluster().await;
        let nodes = stack.cluster_nodes();
        let http = reqwest::Client::new();
        let db = format!("cluster_pipeline_{}", uuid::Uuid::new_v4().simple());
        let topics = sluice_tests::TestTopics::create(4).await.unwrap();
        let gateway = sluice_tests::RunningGateway::start_ready(topics.gateway_config(KEY, TEAM))
            .await
            .unwrap();
        let settings = loader_settings(&nodes, &db);
        sluice_loader::sink::ClickHouseSink::connect(&settings)
            .await
            .unwrap();
        for node in &nodes {
            let tables = tables(&http, node, &db).await;
            assert!(
                tables.contains("events\tReplicatedReplacingMergeTree\n")
                    && tables.contains("events_all\tDistributed\n")
                    && tables.contains("loader_progress\tReplicatedAggregatingMergeTree\n"),
                "{}: {tables}",
                node.name
            );
            query(
                &http,
                &node.http_url,
                &format!("SYSTEM STOP MERGES {db}.events"),
            )
            .await
            .unwrap();
        }
        let aggregator = if with_aggregator {
            let mut config = sluice_aggregator::AggregatorConfig {
                kafka: sluice_tests::kafka(),
                topic: topics.raw.clone(),
                group_id: format!("aggregator-{}", uuid::Uuid::new_v4().simple()),
                ..Default::default()
            };
            config.clickhouse.shards = settings.shards.clone();
            config.clickhouse.cluster = CLUSTER_NAME.to_owned();
            config.clickhouse.database = db.clone();
            config.flush.interval_ms = 200;
            config.flush.min_backoff_ms = 100;
            config.flush.max_backoff_ms = 1000;
            config.window.idle_timeout_ms = 1000;
            config.window.allowed_lateness_ms = 1000;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(sluice_aggregator::serve(config, listener, async {
                let _ = stopped.await;
            }));
            Some(Service { stop, task, url })
        } else {
            None
        };
        let mut config = sluice_loader::LoaderConfig {
            kafka: sluice_tests::kafka(),
            topic: topics.raw.clone(),
            group_id: format!("loader-{}", uuid::Uuid::new_v4().simple()),
            clickhouse: settings,
            ..Default::default()
        };
        config.batch.max_wait_ms = 200;
        config.batch.max_rows = max_rows;
        config.batch.min_backoff_ms = 100;
        config.batch.max_backoff_ms = 1000;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sluice_loader::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Self {
            stack,
            nodes,
            http,
            db,
            gateway,
            loader: Service { stop, task, url },
            aggregator,
            topics,
        }
    }

    /// Rows stored, through `events_all` asked on `node`.
    async fn stored(&self, node: &ClusterNode) -> Option<u64> {
        let sql = format!("SELECT count() FROM {}.events_all", self.db);
        let n = query(&self.http, &node.http_url, &sql).await.ok()?;
        n.trim().parse().ok()
    }

    /// Waits until both replicas of each shard hold the same rows (a
    /// replica that was away catches up from its twin).
    async fn wait_replicas_agree(&self) {
        let local = format!("{}.events", self.db);
        for (a, b) in [
            (&self.nodes[0], &self.nodes[1]),
            (&self.nodes[2], &self.nodes[3]),
        ] {
            wait_for("the replicas agree", Duration::from_secs(60), async || {
                stored_ids(&self.http, a, &local).await == stored_ids(&self.http, b, &local).await
            })
            .await;
        }
    }

    /// Each accepted id is on both replicas of its shard exactly once, on no
    /// other shard; each node holds only its shard's partitions; the union
    /// is exactly `accepted`.
    async fn assert_stored_once(&self, accepted: &BTreeSet<String>) {
        let local = format!("{}.events", self.db);
        let mut union = BTreeSet::new();
        for (shard, a, b) in [
            (0, &self.nodes[0], &self.nodes[1]),
            (1, &self.nodes[2], &self.nodes[3]),
        ] {
            let (on_a, on_b) = (
                stored_ids(&self.http, a, &local).await,
                stored_ids(&self.http, b, &local).await,
            );
            assert_eq!(on_a, on_b, "{} and {} differ", a.name, b.name);
            let twice: Vec<_> = on_b.iter().filter(|(_, n)| **n > 1).collect();
            assert!(twice.is_empty(), "stored twice on {}: {twice:?}", b.name);
            let partitions = query(
                &self.http,
                &b.http_url,
                &format!("SELECT DISTINCT kafka_partition % 2 FROM {local}"),
            )
            .await
            .unwrap();
            assert_eq!(
                partitions.trim(),
                shard.to_string(),
                "{}: partitions of the other shard",
                b.name
            );
            for id in on_b.into_keys() {
                assert!(union.insert(id), "an id on both shards");
            }
        }
        assert_eq!(&union, accepted, "stored ids = accepted ids");
    }

    /// Counted once: waits until the rollups hold `n` events, then holds
    /// them, group by group (team, event, user, window), to a recomputation
    /// from the stored events, both read through `Distributed` on `node`. A
    /// window counted twice and another missed would leave the sum right;
    /// the groups would differ.
    async fn assert_counted_once(&self, node: &ClusterNode, n: u64) {
        let db = &self.db;
        wait_for(
            "every event rolled up",
            Duration::from_secs(180),
            async || {
                query(
                    &self.http,
                    &node.http_url,
                    &format!("SELECT sum(events) FROM {db}.rollups_5m_all"),
                )
                .await
                .is_ok_and(|sum| sum.trim() == n.to_string())
            },
        )
        .await;
        // A replica that was down serves `Distributed` reads as soon as it
        // is back, before it has fetched its twin's parts: the sum above may
        // have been read from the twin. Wait until both replicas of each
        // shard hold the same rollups (what is stored on a replica only
        // grows, so agreement after the sum above means both hold all).
        let local_sum = format!("SELECT sum(events) FROM {db}.rollups_5m");
        for (a, b) in [
            (&self.nodes[0], &self.nodes[1]),
            (&self.nodes[2], &self.nodes[3]),
        ] {
            wait_for(
                "the replicas' rollups agree",
                Duration::from_secs(60),
                async || {
                    let on_a = query(&self.http, &a.http_url, &local_sum).await;
                    let on_b = query(&self.http, &b.http_url, &local_sum).await;
                    matches!((on_a, on_b), (Ok(x), Ok(y)) if x == y)
                },
            )
            .await;
        }
        // Sorted here: 18.16 reads `ORDER BY 1` as a constant.
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let rolled = query(
            &self.http,
            &node.http_url,
            &format!(
                "SELECT team_id, event, user_id, toUInt32(window_start), sum(events) \
                 FROM {db}.rollups_5m_all GROUP BY team_id, event, user_id, window_start"
            ),
        )
        .await
        .unwrap();
        let recomputed = query(
            &self.http,
            &node.http_url,
            &format!(
                "SELECT team_id, event, user_id, toUInt32(toStartOfFiveMinute(timestamp)) AS w, count() \
                 FROM {db}.events_all GROUP BY team_id, event, user_id, w"
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            sorted(rolled),
            sorted(recomputed),
            "the 5-minute rollups differ from the stored events"
        );
    }

    async fn stop(self) {
        if let Some(aggregator) = self.aggregator {
            aggregator.end().await;
        }
        self.loader.end().await;
        self.gateway.stop().await.unwrap();
    }
}

/// The loader and the aggregator on the cluster (`clickhouse.shards`): the
/// schema created `ON CLUSTER`, each Kafka partition stored and rolled up on
/// shard `partition % 2` through one replica; the replica both write shard 1
/// through is SIGKILLed mid-load, they go on through its twin, and the
/// killed replica comes back and catches up. Every accepted event is stored
/// exactly once: on its shard's two replicas, nowhere else, with merges
/// stopped so that a duplicate cannot be collapsed out of sight; and counted
/// once: the rollups and the dashboards read through the `Distributed`
/// tables equal the raw events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_and_aggregator_store_and_count_every_event_once_through_a_killed_replica() {
    let p = Pipeline::start(true).await;
    let [s1r1, s1r2, s2r1, _] = [&p.nodes[0], &p.nodes[1], &p.nodes[2], &p.nodes[3]];
    let (http, db) = (&p.http, &p.db);
    let local = format!("{db}.events");
    let mut accepted = send_events(&p.gateway, KEY, 20).await;
    // Shard 1 is being written through its first replica, by both.
    let rollups = format!("{db}.rollups_5m");
    wait_for(
        "rows and rollups on ch-s1r1",
        Duration::from_secs(60),
        async || {
            !stored_ids(http, s1r1, &local).await.is_empty()
                && query(
                    http,
                    &s1r1.http_url,
                    &format!("SELECT count() FROM {rollups}"),
                )
                .await
                .is_ok_and(|n| n.trim() != "0")
        },
    )
    .await;
    tokio::task::block_in_place(|| p.stack.kill(s1r1.name)).unwrap();
    let s1r2_at_kill = stored_ids(http, s1r2, &local).await.len();
    accepted.extend(send_events(&p.gateway, KEY, 20).await);

    // Everything arrives, shard 1 through its twin alone.
    let n = accepted.len() as u64;
    wait_for(
        "every accepted event stored",
        Duration::from_secs(120),
        async || p.stored(s2r1).await == Some(n),
    )
    .await;
    assert!(
        stored_ids(http, s1r2, &local).await.len() > s1r2_at_kill,
        "shard 1 was written after its first replica died"
    );

    tokio::task::block_in_place(|| p.stack.start_service(s1r1.name)).unwrap();
    let restarted = Instant::now();
    let twin = stored_ids(http, s1r2, &local).await;
    wait_for("ch-s1r1 caught up", Duration::from_secs(120), async || {
        stored_ids(http, s1r1, &local).await == twin
    })
    .await;
    let caught_up = restarted.elapsed();
    p.assert_stored_once(&accepted).await;

    // Counted once: the rollups (through `Distributed`, asked on a node of
    // the other shard) equal the raw events group by group, and the
    // dashboards add up to them.
    p.assert_counted_once(s2r1, n).await;
    let dashboard = sluice_clickhouse::dashboard::Dashboard::new(&s2r1.http_url, db)
        .unwrap()
        .over_cluster();
    let now = sluice_core::Timestamp::now();
    let day_ago = sluice_core::Timestamp::from_millis(now.as_millis() - 86_400_000);
    let tomorrow = sluice_core::Timestamp::from_millis(now.as_millis() + 86_400_000);
    // A replica that was down serves reads as soon as it is back, before
    // it has fetched every part of the views' tables: wait for agreement,
    // then hold it to the exact numbers.
    let daily = async || {
        dashboard
            .event_counts(
                TEAM,
                day_ago,
                tomorrow,
                sluice_clickhouse::dashboard::Granularity::Day,
                None,
            )
            .await
            .unwrap()
            .iter()
            .map(|p| p.value)
            .sum::<u64>()
    };
    let users: u64 = query(
        http,
        &s2r1.http_url,
        &format!("SELECT uniqExact(user_id) FROM {db}.events_all WHERE team_id = '{TEAM}'"),
    )
    .await
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let dau = async || {
        dashboard
            .dau(TEAM, day_ago, tomorrow)
            .await
            .unwrap()
            .iter()
            .map(|p| p.value)
            .sum::<u64>()
    };
    wait_for(
        "the dashboards to agree",
        Duration::from_secs(60),
        async || daily().await == n && dau().await == users,
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            daily().await,
            n,
            "daily events through the Distributed tables"
        );
        assert_eq!(dau().await, users, "DAU through the Distributed tables");
    }
    eprintln!(
        "fault: the written replica of shard 1 SIGKILLed mid-load; acknowledged {n}; stored {n}, each once on both replicas; counted {n} (rollups, daily, DAU through Distributed); the replica caught up {:.1} s after its restart",
        caught_up.as_secs_f64()
    );
    p.stop().await;
}

/// ZooKeeper away for a while under load: replicated inserts are refused
/// (the loader reports ClickHouse down and holds its batches), nothing is
/// stored meanwhile, and once ZooKeeper is back every accepted event is
/// stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_outage_holds_the_loader_and_loses_or_doubles_nothing() {
    let p = Pipeline::start(false).await;
    let node = &p.nodes[2];
    let mut accepted = send_events(&p.gateway, KEY, 10).await;
    let first = accepted.len() as u64;
    wait_for(
        "the first events stored",
        Duration::from_secs(60),
        async || p.stored(node).await == Some(first),
    )
    .await;

    tokio::task::block_in_place(|| p.stack.kill("zookeeper")).unwrap();
    accepted.extend(send_events(&p.gateway, KEY, 10).await);
    // The outage is met mid-work: the loader holds batches it cannot store.
    let readyz = format!("{}/readyz", p.loader.url);
    wait_for(
        "the loader to report ClickHouse down",
        Duration::from_secs(90),
        async || reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 503),
    )
    .await;
    assert_eq!(
        p.stored(node).await,
        Some(first),
        "nothing stored without ZooKeeper"
    );

    tokio::task::block_in_place(|| p.stack.start_service("zookeeper")).unwrap();
    let restarted = Instant::now();
    let n = accepted.len() as u64;
    wait_for(
        "every accepted event stored",
        Duration::from_secs(180),
        async || p.stored(node).await == Some(n),
    )
    .await;
    let recovered = restarted.elapsed();
    // Replicas may lag a moment behind the one written.
    p.wait_replicas_agree().await;
    p.assert_stored_once(&accepted).await;
    eprintln!(
        "fault: ZooKeeper SIGKILLed mid-load; acknowledged {n}; stored {n}, each once on both replicas; nothing stored while it was down; all stored {:.1} s after its restart",
        recovered.as_secs_f64()
    );
    wait_for(
        "the loader ready again",
        Duration::from_secs(30),
        async || reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200),
    )
    .await;
    p.stop().await;
}

/// The lines of a service's `/metrics` (none while it does not answer).
async fn metric_lines(url: &str) -> Vec<String> {
    let Ok(response) = reqwest::get(url).await else {
        return Vec::new();
    };
    let text = response.text().await.unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

/// Event ids in `topic` by the shard their partition maps to (`p % 2`).
async fn ids_by_shard(topic: &str) -> [BTreeSet<String>; 2] {
    let mut by_shard = [BTreeSet::new(), BTreeSet::new()];
    for record in sluice_tests::read_records(topic, 4).await {
        let event: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        let id = event["event_id"].as_str().unwrap().to_owned();
        by_shard[(record.partition % 2) as usize].insert(id);
    }
    by_shard
}

/// A whole shard down under load: the loader goes on storing the other
/// shard's partitions (it stores one batch at a time per shard, and pauses
/// a partition whose batch is full while its shard is busy: batches of 100
/// rows here, so that they fill), reports the down shard's partitions
/// lagging and paused, and once the shard is back stores everything, each
/// event once. The aggregator runs too and, once the shard is back, has
/// counted every event once (it stores its partitions one after another and
/// retries a down shard in place, so during the outage it holds all of them:
/// docs/operations.md says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_down_holds_only_its_own_partitions() {
    let p = Pipeline::start_with(true, 100).await;
    let [s1r1, _, s2r1, s2r2] = [&p.nodes[0], &p.nodes[1], &p.nodes[2], &p.nodes[3]];
    let local = format!("{}.events", p.db);
    let mut accepted = send_events(&p.gateway, KEY, 10).await;
    let first = accepted.len() as u64;
    wait_for(
        "the first events stored",
        Duration::from_secs(60),
        async || p.stored(s1r1).await == Some(first),
    )
    .await;

    for node in [s2r1, s2r2] {
        tokio::task::block_in_place(|| p.stack.kill(node.name)).unwrap();
    }
    accepted.extend(send_events(&p.gateway, KEY, 20).await);
    let [shard1, shard2] = ids_by_shard(&p.topics.raw).await;
    assert_eq!(shard1.len() + shard2.len(), accepted.len());
    assert!(!shard2.is_empty(), "some events are for the down shard");
    // Shard 1 gets all of its events while shard 2 is down ...
    wait_for(
        "shard 1 complete while shard 2 is down",
        Duration::from_secs(90),
        async || {
            stored_ids(&p.http, s1r1, &local)
                .await
                .into_keys()
                .collect::<BTreeSet<_>>()
                == shard1
        },
    )
    .await;
    // ... and the loader says shard 2's partitions are behind.
    let metrics = format!("{}/metrics", p.loader.url);
    let lagging = async || {
        metric_lines(&metrics).await.iter().any(|line| {
            line.starts_with("sluice_loader_consumer_lag{")
                && (line.contains("partition=\"1\"") || line.contains("partition=\"3\""))
                && line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|lag| lag > 0.0)
        })
    };
    wait_for(
        "lag reported for shard 2's partitions",
        Duration::from_secs(30),
        lagging,
    )
    .await;
    let paused = async || {
        metric_lines(&metrics).await.iter().any(|line| {
            line.strip_prefix("sluice_loader_paused_partitions ")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|n| n > 0.0)
        })
    };
    wait_for(
        "shard 2's full batches paused",
        Duration::from_secs(30),
        paused,
    )
    .await;

    for node in [s2r1, s2r2] {
        tokio::task::block_in_place(|| p.stack.start_service(node.name)).unwrap();
    }
    let restarted = Instant::now();
    let n = accepted.len() as u64;
    wait_for(
        "every accepted event stored",
        Duration::from_secs(180),
        async || p.stored(s1r1).await == Some(n),
    )
    .await;
    let recovered = restarted.elapsed();
    p.wait_replicas_agree().await;
    p.assert_stored_once(&accepted).await;
    p.assert_counted_once(s1r1, n).await;
    let counted = restarted.elapsed();
    eprintln!(
        "fault: both replicas of shard 2 SIGKILLed mid-load; acknowledged {n}; stored {n}, each once on both replicas; shard 1 loaded throughout; all stored {:.1} s and counted once {:.1} s after the shard's restart",
        recovered.as_secs_f64(),
        counted.as_secs_f64()
    );
    p.stop().await;
}

/// A replica whose tables differ from its cluster's (created by hand from
/// other DDL, or left behind by an older version) stops the loader's and
/// the aggregator's start-up with a message naming the setting of that
/// replica, once the grace for DDL still on its way has passed; nothing
/// falls back to writing into another shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_another_schema_is_refused_at_start() {
    let stack = cluster().await;
    let nodes = stack.cluster_nodes();
    let http = reqwest::Client::new();
    let db = format!("cluster_schema_{}", uuid::Uuid::new_v4().simple());
    let loader = loader_settings(&nodes, &db);
    let aggregator = sluice_aggregator::config::ClickHouseSettings {
        shards: loader.shards.clone(),
        cluster: CLUSTER_NAME.to_owned(),
        database: db.clone(),
        ..Default::default()
    };
    // The same schema everywhere: both start.
    sluice_loader::sink::ClickHouseSink::connect(&loader)
        .await
        .unwrap();
    sluice_aggregator::clickhouse::store::RollupStore::connect(&aggregator)
        .await
        .unwrap();

    // The second replica of shard 2 loses a table (dropped there only, as
    // a hand-made replica would lack it); its migrations are recorded, so
    // nothing recreates it.
    query(
        &http,
        &nodes[3].http_url,
        &format!("DROP TABLE {db}.event_ids"),
    )
    .await
    .unwrap();
    let (loader, aggregator) = tokio::join!(
        sluice_loader::sink::ClickHouseSink::connect(&loader),
        sluice_aggregator::clickhouse::store::RollupStore::connect(&aggregator),
    );
    for (service, refused) in [
        ("loader", loader.map(|_| ()).unwrap_err()),
        ("aggregator", aggregator.map(|_| ()).unwrap_err()),
    ] {
        let message = format!("{refused:#}");
        assert!(
            message.contains("clickhouse.shards[1][1]")
                && message.contains(&nodes[3].http_url)
                && message.contains("event_ids"),
            "{service}: {message}"
        );
        eprintln!("{service} refused: {message}");
    }
}
