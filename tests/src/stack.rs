//! A stack of its own for tests that break things (stop a broker, restart
//! ClickHouse): started through `scripts/stack` with a private state dir and
//! free ports, so the shared stack other tests use is never disturbed, and
//! torn down (`down --purge`) when dropped.
//!
//! [`Services::ClickHouseCluster`] runs `scripts/stack cluster up`: ZooKeeper
//! and four ClickHouse nodes (cluster `sluice`, 2 shards x 2 replicas), each
//! node addressable by name for kill/pause/resume/start.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sluice_core::kafka::KafkaSettings;

/// Which services a dedicated stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    Kafka {
        brokers: u8,
    },
    ClickHouse,
    /// The S3-compatible server of the lake.
    S3,
    /// ZooKeeper and the four nodes of the ClickHouse cluster `sluice`.
    ClickHouseCluster,
}

/// One node of the ClickHouse cluster of a [`Services::ClickHouseCluster`]
/// stack; `name` is what `kill`/`pause`/`start_service` take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub name: &'static str,
    /// 1 or 2, as in the node's `{shard}` macro and `remote_servers` order.
    pub shard: u8,
    pub http_url: String,
}

/// The cluster name in every node's `remote_servers`.
pub const CLUSTER_NAME: &str = "sluice";
/// Node names in `remote_servers` order (shard 1, then shard 2).
pub const CLUSTER_NODES: [&str; 4] = ["ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"];

#[derive(Debug)]
pub struct DedicatedStack {
    state: PathBuf,
    env: Vec<(&'static str, String)>,
    pub kafka_port: u16,
    pub brokers: u8,
    pub clickhouse_http_port: u16,
    pub s3_port: u16,
    /// First port of the cluster nodes (node k: HTTP at +10k).
    pub cluster_port: u16,
    pub zookeeper_port: u16,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// True if every port is free right now (bind test on loopback).
fn ports_free(ports: &[u16]) -> bool {
    ports
        .iter()
        .all(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

/// A base port whose whole block (brokers at +0/+100/+200 with controllers
/// at +1, ClickHouse at +500/+501, S3 at +600, the cluster nodes at
/// +700..+732, ZooKeeper at +800) is free.
///
/// Blocks lie between 20000 and 31999: above the shared stack's ports and
/// below Linux's ephemeral range (32768-60999). A port in that range is
/// free when checked but can be taken by any outgoing connection while a
/// killed node is down, and its restart then fails with "address already
/// in use" (it did, with four cluster tests side by side).
fn free_block() -> anyhow::Result<u16> {
    let seed = u64::from(std::process::id()) ^ u64::from(uuid::Uuid::new_v4().as_fields().1);
    for attempt in 0..50u64 {
        let base = 20_000 + ((seed + attempt * 7) % 12) as u16 * 1000;
        let cluster = (0..4u16).flat_map(|k| (0..3u16).map(move |i| base + 700 + 10 * k + i));
        let block: Vec<u16> = [
            base,
            base + 1,
            base + 100,
            base + 101,
            base + 200,
            base + 201,
            base + 500,
            base + 501,
            base + 600,
            base + 800,
        ]
        .into_iter()
        .chain(cluster)
        .collect();
        if ports_free(&block) {
            return Ok(base);
        }
    }
    bail!("no free port block found for a dedicated stack")
}

impl DedicatedStack {
    pub fn start(services: Services) -> anyhow::Result<Self> {
        let base = free_block()?;
        let state = std::env::temp_dir().join(format!(
            "sluice-stack-{base}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let (only, brokers) = match services {
            Services::Kafka { brokers } => ("kafka", brokers),
            Services::ClickHouse => ("clickhouse", 1),
            Services::S3 => ("s3", 1),
            // The cluster runs beside the stack's services; `down` of a
            // stack of `--only clickhouse` stops it and touches nothing else.
            Services::ClickHouseCluster => ("clickhouse", 1),
        };
        let env = vec![
            ("SLUICE_STATE", state.display().to_string()),
            ("SLUICE_KAFKA_PORT", base.to_string()),
            ("SLUICE_CLICKHOUSE_HTTP_PORT", (base + 500).to_string()),
            ("SLUICE_CLICKHOUSE_TCP_PORT", (base + 501).to_string()),
            ("SLUICE_S3_PORT", (base + 600).to_string()),
            ("SLUICE_CLICKHOUSE_CLUSTER_PORT", (base + 700).to_string()),
            ("SLUICE_ZOOKEEPER_PORT", (base + 800).to_string()),
            ("SLUICE_STACK_BROKERS", brokers.to_string()),
            ("SLUICE_STACK_ONLY", only.to_owned()),
            ("SLUICE_KAFKA_HEAP", "512m".to_owned()),
        ];
        let stack = Self {
            state,
            env,
            kafka_port: base,
            brokers,
            clickhouse_http_port: base + 500,
            s3_port: base + 600,
            cluster_port: base + 700,
            zookeeper_port: base + 800,
        };
        if services == Services::ClickHouseCluster {
            stack.run(&["cluster", "up"])?;
        } else {
            stack.run(&["up"])?;
        }
        Ok(stack)
    }

    /// Runs `scripts/stack ARGS` against this stack.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new(repo_root().join("scripts/stack"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .with_context(|| format!("running scripts/stack {args:?}"))?;
        if !output.status.success() {
            bail!(
                "scripts/stack {args:?} failed: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    pub fn kafka(&self) -> KafkaSettings {
        let brokers = (0..u16::from(self.brokers))
            .map(|i| format!("127.0.0.1:{}", self.kafka_port + 100 * i))
            .collect::<Vec<_>>()
            .join(",");
        KafkaSettings {
            brokers,
            ..KafkaSettings::default()
        }
    }

    pub fn clickhouse_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.clickhouse_http_port)
    }

    /// The S3 endpoint (bucket `sluice-lake`) of a [`Services::S3`] stack.
    pub fn s3_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The four nodes of a [`Services::ClickHouseCluster`] stack, in
    /// `remote_servers` order.
    pub fn cluster_nodes(&self) -> Vec<ClusterNode> {
        CLUSTER_NODES
            .iter()
            .zip(0u16..)
            .map(|(name, k)| ClusterNode {
                name,
                shard: if k < 2 { 1 } else { 2 },
                http_url: format!("http://127.0.0.1:{}", self.cluster_port + 10 * k),
            })
            .collect()
    }

    /// Stops a service gracefully, keeping its data (`kafka`, `kafka-N`,
    /// `clickhouse`, `s3`; with the cluster `ch-sXrY`, `zookeeper`).
    pub fn stop(&self, service: &str) -> anyhow::Result<()> {
        self.run(&["stop", service])
    }

    /// Kills a service with SIGKILL, keeping its data.
    pub fn kill(&self, service: &str) -> anyhow::Result<()> {
        self.run(&["kill", service])
    }

    /// Freezes a service's process (SIGSTOP): a network-style stall, the
    /// process alive but silent (`kafka-N`, `clickhouse`, `s3`, `ch-sXrY`,
    /// `zookeeper`).
    pub fn pause(&self, service: &str) -> anyhow::Result<()> {
        self.signal(service, "STOP")
    }

    /// Thaws a paused service (SIGCONT).
    pub fn resume(&self, service: &str) -> anyhow::Result<()> {
        self.signal(service, "CONT")
    }

    fn signal(&self, service: &str, signal: &str) -> anyhow::Result<()> {
        let file = self.state.join("pids").join(format!("{service}.pid"));
        let pid = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.trim().to_owned()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{signal} {} ({service}) failed: {status}", pid.trim());
        }
        Ok(())
    }

    /// Starts a stopped service from its data and waits until it answers.
    pub fn start_service(&self, service: &str) -> anyhow::Result<()> {
        self.run(&["start", service])
    }
}

impl Drop for DedicatedStack {
    fn drop(&mut self) {
        if let Err(err) = self.run(&["down", "--purge"]) {
            eprintln!(
                "tearing down dedicated stack {}: {err}",
                self.state.display()
            );
        }
    }
}
