//! Shared harness for the suites in `tests/tests/`, which run against the real
//! local stack (`scripts/stack up`): real Kafka, real ClickHouse.
//!
//! Each test gets fresh topics (deleted when dropped) and its own in-process
//! gateway on an ephemeral port, so suites run in parallel without sharing
//! state. If the stack is not running, tests fail with a message saying so;
//! they never skip silently.

pub mod binary;
pub mod console;
pub mod downstream;
pub mod plugin_admin;
pub mod stack;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use sluice_core::kafka::KafkaSettings;
use sluice_core::readback;
use sluice_gateway::GatewayConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Kafka of the shared local stack (`SLUICE_KAFKA_BROKERS`, default the stack's port).
pub fn kafka() -> KafkaSettings {
    KafkaSettings {
        brokers: std::env::var("SLUICE_KAFKA_BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:19092".to_owned()),
        ..KafkaSettings::default()
    }
}

/// Fresh topics standing in for `events.raw`, `events.rejected` and the
/// compacted tables (keys, plugins, schemas).
#[derive(Debug)]
pub struct TestTopics {
    pub raw: String,
    pub rejected: String,
    /// Compacted, like `sluice.keys`.
    pub keys: String,
    /// Compacted, like `sluice.plugins` and `sluice.plugin-blobs`.
    pub plugins: String,
    pub plugin_blobs: String,
    /// Compacted, like `sluice.schemas`.
    pub schemas: String,
    kafka: KafkaSettings,
}

/// The operator token test gateways accept.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

impl TestTopics {
    pub async fn create(partitions: i32) -> anyhow::Result<Self> {
        Self::create_on(kafka(), partitions, 1).await
    }

    /// Creates the topics on `kafka` with the given replication factor.
    pub async fn create_on(
        kafka: KafkaSettings,
        partitions: i32,
        replication: i32,
    ) -> anyhow::Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let topics = Self {
            raw: format!("test.raw.{suffix}"),
            rejected: format!("test.rejected.{suffix}"),
            keys: format!("test.keys.{suffix}"),
            plugins: format!("test.plugins.{suffix}"),
            plugin_blobs: format!("test.plugin-blobs.{suffix}"),
            schemas: format!("test.schemas.{suffix}"),
            kafka,
        };
        let admin = admin(&topics.kafka)?;
        let new = [
            NewTopic::new(
                &topics.raw,
                partitions,
                TopicReplication::Fixed(replication),
            ),
            NewTopic::new(&topics.rejected, 1, TopicReplication::Fixed(replication)),
            NewTopic::new(&topics.keys, 1, TopicReplication::Fixed(replication))
                .set("cleanup.policy", "compact"),
            NewTopic::new(&topics.plugins, 1, TopicReplication::Fixed(replication))
                .set("cleanup.policy", "compact"),
            NewTopic::new(
                &topics.plugin_blobs,
                1,
                TopicReplication::Fixed(replication),
            )
            .set("cleanup.policy", "compact"),
            NewTopic::new(&topics.schemas, 1, TopicReplication::Fixed(replication))
                .set("cleanup.policy", "compact"),
        ];
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin.create_topics(&new, &options).await.with_context(|| {
            format!(
                "creating test topics on {} — is the local stack up? run `scripts/stack up`",
                topics.kafka.brokers
            )
        })?;
        for result in results {
            result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
        }
        Ok(topics)
    }

    /// A gateway config producing to these topics, with one team key.
    pub fn gateway_config(&self, api_key: &str, team: &str) -> GatewayConfig {
        let mut config = GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kafka: self.kafka.clone(),
            ..GatewayConfig::default()
        };
        config.producer.topic = self.raw.clone();
        config.producer.rejected_topic = self.rejected.clone();
        config.auth.keys.insert(api_key.to_owned(), team.to_owned());
        config.auth.keys_topic = self.keys.clone();
        config.plugins.topic = self.plugins.clone();
        config.plugins.blobs_topic = self.plugin_blobs.clone();
        config.schemas.topic = self.schemas.clone();
        config.admin.token = OPERATOR_TOKEN.to_owned();
        config
    }
}

impl Drop for TestTopics {
    fn drop(&mut self) {
        // Best effort: a leftover test topic costs disk, not correctness.
        let kafka = self.kafka.clone();
        let names = [
            self.raw.clone(),
            self.rejected.clone(),
            self.keys.clone(),
            self.plugins.clone(),
            self.plugin_blobs.clone(),
            self.schemas.clone(),
        ];
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(admin) = admin(&kafka) {
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
                }
            });
        })
        .join();
    }
}

/// Every record in `topic` as JSON, read up to the end offsets at the time
/// of the call (for a topic whose writers have finished).
pub async fn read_all(topic: &str, partitions: i32) -> Vec<serde_json::Value> {
    read_records(topic, partitions)
        .await
        .into_iter()
        .map(|r| {
            serde_json::from_slice(&r.payload)
                .unwrap_or_else(|e| panic!("a record in {topic} is not JSON: {e}"))
        })
        .collect()
}

/// Every record in `topic`, with its key and headers, read up to the end
/// offsets at the time of the call.
pub async fn read_records(topic: &str, partitions: i32) -> Vec<readback::ReadRecord> {
    let (settings, name) = (kafka(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let topic = name;
        let ends = readback::end_offsets(&settings, &topic).unwrap_or_default();
        let total: i64 = ends.values().sum();
        let start: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
        readback::read_from(&settings, &topic, &start, Duration::from_secs(60), |r| {
            r.len() as i64 >= total
        })
        .unwrap_or_else(|e| panic!("reading {topic}: {e:#}"))
    })
    .await
    .unwrap_or_else(|e| panic!("reading {topic}: {e}"))
}

fn admin(kafka: &KafkaSettings) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(kafka.client_config().create()?)
}

/// A gateway running in this process on an ephemeral port.
#[derive(Debug)]
pub struct RunningGateway {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningGateway {
    pub async fn start(config: GatewayConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(sluice_gateway::serve(config, listener, async move {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Starts a gateway and waits until it is ready.
    pub async fn start_ready(config: GatewayConfig) -> anyhow::Result<Self> {
        let gateway = Self::start(config).await?;
        gateway.wait_ready(Duration::from_secs(20)).await?;
        Ok(gateway)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until `/readyz` answers 200 (Kafka reachable, keys loaded).
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ready = reqwest::get(self.url("/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("gateway at {} not ready after {timeout:?}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Graceful shutdown: drains in-flight requests and flushes the producer.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}
