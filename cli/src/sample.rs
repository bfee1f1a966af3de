//! `sluice send-sample`: a demo batch through a gateway, then proof from Kafka.
//!
//! The batch mixes valid events for a few users with one event that breaks the
//! clock-skew rule, so the output shows both outcomes. Every accepted event is
//! then looked up in `events.raw` by its `event_id`; the command fails unless
//! each is found exactly once, keyed `team:user`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_core::Timestamp;
use sluice_core::kafka::KafkaSettings;
use uuid::Uuid;

use sluice_core::readback::{self, ReadRecord};

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub gateway: String,
    pub api_key: String,
    pub kafka: KafkaSettings,
    pub topic: String,
    pub events: usize,
    pub timeout: Duration,
}

/// What the command saw.
#[derive(Debug)]
pub struct SampleReport {
    pub accepted: Vec<Uuid>,
    pub rejected: usize,
    pub found: Vec<ReadRecord>,
}

#[derive(Debug, Deserialize)]
struct BatchResponse {
    accepted: usize,
    rejected: usize,
    failed: usize,
    results: Vec<Value>,
}

/// The demo batch: `n` valid events spread over three users, plus one event
/// dated a day ahead, which the gateway must reject.
pub fn sample_batch(n: usize, now: Timestamp) -> Value {
    let names = [
        "App Opened",
        "Button Clicked",
        "Signed Up",
        "Checkout Completed",
    ];
    let mut events: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "event_id": Uuid::new_v4(),
                "event": names[i % names.len()],
                "user_id": format!("user-{}", i % 3),
                "timestamp": Timestamp::from_millis(now.as_millis() - (n - i) as i64 * 1000),
                "properties": { "sample": true, "sequence": i },
            })
        })
        .collect();
    events.push(json!({
        "event_id": Uuid::new_v4(),
        "event": "Time Travelled",
        "user_id": "user-0",
        "timestamp": Timestamp::from_millis(now.as_millis() + 24 * 3600 * 1000),
    }));
    json!({ "events": events })
}

pub async fn run(options: &SampleOptions) -> anyhow::Result<SampleReport> {
    let kafka = options.kafka.clone();
    let topic = options.topic.clone();
    let start =
        tokio::task::spawn_blocking(move || readback::end_offsets(&kafka, &topic)).await??;
    let (body, accepted) = send(options).await?;
    let records = read_back(options, start, &accepted).await?;
    let found = exactly_once(options, &accepted, records)?;
    Ok(SampleReport {
        accepted,
        rejected: body.rejected,
        found,
    })
}

/// Posts the demo batch; returns the gateway's answer and the ids it accepted.
async fn send(options: &SampleOptions) -> anyhow::Result<(BatchResponse, Vec<Uuid>)> {
    let url = format!("{}/v1/events", options.gateway.trim_end_matches('/'));
    let batch = sample_batch(options.events, Timestamp::now());
    println!("==> sending {} events to {url}", options.events + 1);
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&options.api_key)
        .json(&batch)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("POST {url} (is the gateway running?)"))?;
    let status = response.status();
    let text = response.text().await?;
    let body: BatchResponse = serde_json::from_str(&text)
        .with_context(|| format!("gateway answered HTTP {status}: {text}"))?;
    println!(
        "    HTTP {}: {} accepted, {} rejected, {} failed (answered after Kafka acknowledged)",
        status.as_u16(),
        body.accepted,
        body.rejected,
        body.failed
    );
    let mut accepted = Vec::new();
    for (i, result) in body.results.iter().enumerate() {
        match result["status"].as_str() {
            Some("accepted") => {
                let id = result["event_id"].as_str().unwrap_or_default();
                accepted.push(
                    id.parse::<Uuid>()
                        .with_context(|| format!("bad event_id {id}"))?,
                );
            }
            Some(other) => println!(
                "    event #{i} {other}: {} ({})",
                result["code"].as_str().unwrap_or("?"),
                result["message"].as_str().unwrap_or("")
            ),
            None => bail!("unexpected result entry: {result}"),
        }
    }
    Ok((body, accepted))
}

/// The topic's records from `start` on, until every accepted event was read
/// or the timeout passed.
async fn read_back(
    options: &SampleOptions,
    start: BTreeMap<i32, i64>,
    accepted: &[Uuid],
) -> anyhow::Result<Vec<ReadRecord>> {
    println!(
        "==> reading them back from `{}` at {}",
        options.topic, options.kafka.brokers
    );
    let wanted: HashMap<Uuid, ()> = accepted.iter().map(|id| (*id, ())).collect();
    let kafka = options.kafka.clone();
    let topic = options.topic.clone();
    let timeout = options.timeout;
    let total = wanted.len();
    tokio::task::spawn_blocking(move || {
        readback::read_from(&kafka, &topic, &start, timeout, |read| {
            read.iter()
                .filter(|r| wanted.contains_key(&event_id(r).unwrap_or_default()))
                .count()
                >= total
        })
    })
    .await?
}

/// Prints the accepted events found and fails unless each is there exactly
/// once; returns their records.
fn exactly_once(
    options: &SampleOptions,
    accepted: &[Uuid],
    records: Vec<ReadRecord>,
) -> anyhow::Result<Vec<ReadRecord>> {
    let mut seen: BTreeMap<Uuid, usize> = BTreeMap::new();
    let mut found = Vec::new();
    for record in records {
        let Some(id) = event_id(&record) else {
            continue;
        };
        if !accepted.contains(&id) {
            continue;
        }
        *seen.entry(id).or_default() += 1;
        let value: Value = serde_json::from_slice(&record.payload).unwrap_or_default();
        println!(
            "    partition {} offset {:>6}  key {:<18} {:<20} {id}",
            record.partition,
            record.offset,
            record.key,
            value["event"].as_str().unwrap_or("?"),
        );
        found.push(record);
    }
    let missing: Vec<_> = accepted
        .iter()
        .filter(|id| !seen.contains_key(id))
        .collect();
    let duplicated: Vec<_> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    if !missing.is_empty() || !duplicated.is_empty() {
        bail!(
            "{} accepted events missing from Kafka ({missing:?}), {} duplicated ({duplicated:?})",
            missing.len(),
            duplicated.len()
        );
    }
    println!(
        "==> all {} accepted events are in `{}` exactly once",
        accepted.len(),
        options.topic
    );
    Ok(found)
}

fn event_id(record: &ReadRecord) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Id {
        event_id: Uuid,
    }
    serde_json::from_slice::<Id>(&record.payload)
        .ok()
        .map(|id| id.event_id)
}
