//! The benchmark's own topics, recreated per run so every run starts from
//! empty partitions (same segment state, no disk growth across runs) and
//! never touches the `events.*` topics other work relies on.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use sluice_core::kafka::KafkaSettings;

fn admin(brokers: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    let settings = KafkaSettings {
        brokers: brokers.to_owned(),
        ..KafkaSettings::default()
    };
    settings
        .client_config()
        .create()
        .context("creating the Kafka admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)))
}

/// Deletes `topics` (absent ones are fine).
pub async fn delete(brokers: &str, topics: &[String]) -> anyhow::Result<()> {
    let admin = admin(brokers)?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    for result in admin.delete_topics(&names, &options()).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => bail!("deleting topic `{topic}`: {code}"),
        }
    }
    Ok(())
}

/// Deletes and creates `topics` with `partitions` partitions (compacted
/// logs when `compact`, like the gateway's registries). Deletion is
/// asynchronous in Kafka, so creation is retried while the old topic is still
/// going away (bounded to one minute).
pub async fn recreate(
    brokers: &str,
    topics: &[String],
    partitions: i32,
    compact: bool,
) -> anyhow::Result<()> {
    delete(brokers, topics).await?;
    let admin = admin(brokers)?;
    // Replicate like the stack's own topics: 1 with one broker, 3 with three.
    let replication = i32::try_from(broker_count(brokers)?.clamp(1, 3)).unwrap_or(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    for topic in topics {
        loop {
            let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
            if compact {
                new = new.set("cleanup.policy", "compact");
            }
            let result = admin.create_topics([&new], &options()).await?;
            match result.into_iter().next() {
                Some(Ok(_)) => break,
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists)))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Some(Err((_, code))) => bail!("creating topic `{topic}`: {code}"),
                None => bail!("creating topic `{topic}`: no answer"),
            }
        }
    }
    Ok(())
}

/// How many brokers the cluster has (for the report and replication).
pub fn broker_count(brokers: &str) -> anyhow::Result<usize> {
    let metadata = admin(brokers)?
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .context("fetching cluster metadata")?;
    Ok(metadata.brokers().len())
}
