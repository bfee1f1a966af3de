//! `sluice tail`: the last records of a topic.

use std::time::Duration;

use sluice_core::kafka::KafkaSettings;

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Topic to read, e.g. events.raw or events.rejected.
    topic: String,
    /// Records per partition.
    #[arg(long, default_value_t = 5)]
    last: i64,
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
    brokers: String,
}

/// Prints each record: partition, offset, key and headers, then the value.
pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let TailArgs {
        topic,
        last,
        brokers,
    } = args;
    let kafka = KafkaSettings {
        brokers,
        ..KafkaSettings::default()
    };
    let records = tokio::task::spawn_blocking(move || {
        sluice_core::readback::tail(&kafka, &topic, last, Duration::from_secs(10))
    })
    .await??;
    for record in records {
        let headers: Vec<String> = record
            .headers
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "p{} @{} key={} {}\n    {}",
            record.partition,
            record.offset,
            record.key,
            headers.join(" "),
            String::from_utf8_lossy(&record.payload)
        );
    }
    Ok(())
}
