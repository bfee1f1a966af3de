//! `sluice`: parse the command line and dispatch to the library.

use std::time::Duration;

use clap::{Parser, Subcommand};
use sluice_cli::sample::{self, SampleOptions};
use sluice_core::kafka::{KafkaSettings, TOPIC_RAW};

/// Sluice: a WebAssembly-extensible analytics ingest pipeline.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a sample batch through a gateway and read it back from Kafka.
    ///
    /// Exits non-zero unless every event the gateway acknowledged is found in
    /// the topic exactly once.
    SendSample {
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
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::SendSample {
            gateway,
            api_key,
            brokers,
            topic,
            events,
            timeout_secs,
        } => {
            let options = SampleOptions {
                gateway,
                api_key,
                kafka: KafkaSettings {
                    brokers,
                    ..KafkaSettings::default()
                },
                topic,
                events,
                timeout: Duration::from_secs(timeout_secs),
            };
            sample::run(&options).await?;
        }
    }
    Ok(())
}
