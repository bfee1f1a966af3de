//! `sluice send-sample`: a demo batch through a gateway, read back from Kafka.

use std::time::Duration;

use sluice_cli::sample::{self, SampleOptions};
use sluice_core::kafka::{KafkaSettings, TOPIC_RAW};

#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Gateway base URL.
    #[arg(
        long,
        env = "SLUICE_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    gateway: String,
    /// API key of the team to send as.
    #[arg(long, env = "SLUICE_API_KEY")]
    api_key: String,
    /// Kafka bootstrap servers to read back from.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
    brokers: String,
    /// Topic the gateway produces accepted events to.
    #[arg(long, default_value = TOPIC_RAW)]
    topic: String,
    /// Number of valid events (one invalid event is always added).
    #[arg(long, default_value_t = 10)]
    events: usize,
    /// Seconds to wait for the events to appear in Kafka.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

pub async fn run(args: SampleArgs) -> anyhow::Result<()> {
    let options = SampleOptions {
        gateway: args.gateway,
        api_key: args.api_key,
        kafka: KafkaSettings {
            brokers: args.brokers,
            ..KafkaSettings::default()
        },
        topic: args.topic,
        events: args.events,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    sample::run(&options).await?;
    Ok(())
}
