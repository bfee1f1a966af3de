//! The live view: records of `events.raw` (accepted) and `events.rejected`
//! (rejected, dead-lettered) from the moment a page asks, per team.
//!
//! One Kafka consumer per console process serves every open page: it reads
//! both topics from their ends and broadcasts a small summary of each record
//! (the team from its header, so other teams' records are skipped without
//! parsing). It starts with the first page and stops a minute after the last
//! one closed, so a console nobody watches reads nothing. It assigns
//! partitions directly (no consumer group, no commits): watching never
//! disturbs the loader's or aggregator's offsets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use sluice_core::kafka::{KafkaSettings, header_text, headers};
use tokio::sync::{Mutex, broadcast};

use crate::error::ApiError;

/// How long the tail keeps reading after the last page closed.
const IDLE_STOP: Duration = Duration::from_secs(60);

/// One record as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEvent {
    pub outcome: String,
    pub event: Option<String>,
    pub event_id: Option<String>,
    pub user_id: Option<String>,
    pub timestamp: Option<String>,
    pub received_at: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub trace_id: Option<String>,
}

/// A record on the way to the pages: its team, and the event summarised.
#[derive(Debug)]
pub struct Published {
    pub team: String,
    pub event: LiveEvent,
}

#[derive(Debug)]
pub struct Live {
    kafka: KafkaSettings,
    raw: String,
    rejected: String,
    max_subscribers: usize,
    sender: broadcast::Sender<Arc<Published>>,
    tail: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set when the console stops: open views end, so the graceful shutdown
    /// does not wait for pages that never close.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Live {
    pub fn new(
        kafka: KafkaSettings,
        (raw, rejected): (String, String),
        max_subscribers: usize,
        buffer: usize,
    ) -> Self {
        Self {
            kafka,
            raw,
            rejected,
            max_subscribers,
            sender: broadcast::channel(buffer).0,
            tail: Mutex::new(None),
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// Ends every open view (and refuses new ones).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when [`Live::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            // An error means the sender is gone: closing too.
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    /// Open pages right now.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// A receiver of every record written from now on. Returns once the
    /// tail is positioned, so a record produced after this returns is seen.
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Arc<Published>>, ApiError> {
        if *self.closing.borrow() {
            return Err(ApiError::KafkaUnavailable(anyhow::anyhow!(
                "the console is stopping"
            )));
        }
        if self.subscribers() >= self.max_subscribers {
            return Err(ApiError::TooManyLiveViews(self.max_subscribers));
        }
        // Subscribed before a new tail takes the end offsets: nothing
        // written between the two is lost.
        let receiver = self.sender.subscribe();
        let mut tail = self.tail.lock().await;
        if tail
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            let consumer = self.positioned_consumer().await?;
            let sender = self.sender.clone();
            *tail = Some(tokio::spawn(run(consumer, sender)));
        }
        Ok(receiver)
    }

    /// A consumer assigned to the current end of every partition of both
    /// topics.
    async fn positioned_consumer(&self) -> Result<StreamConsumer, ApiError> {
        let kafka = self.kafka.clone();
        let topics = [self.raw.clone(), self.rejected.clone()];
        let assignment = tokio::task::spawn_blocking(move || {
            let mut assignment = TopicPartitionList::new();
            for topic in &topics {
                for (partition, end) in sluice_core::readback::end_offsets(&kafka, topic)? {
                    assignment.add_partition_offset(topic, partition, Offset::Offset(end))?;
                }
            }
            anyhow::Ok(assignment)
        })
        .await
        .map_err(|e| ApiError::KafkaUnavailable(e.into()))?
        .map_err(ApiError::KafkaUnavailable)?;
        let mut config = self.kafka.client_config();
        config
            .set("group.id", "sluice-console-live")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100");
        let consumer: StreamConsumer = config
            .create()
            .map_err(|e| ApiError::KafkaUnavailable(e.into()))?;
        consumer
            .assign(&assignment)
            .map_err(|e| ApiError::KafkaUnavailable(e.into()))?;
        Ok(consumer)
    }
}

async fn run(consumer: StreamConsumer, sender: broadcast::Sender<Arc<Published>>) {
    let mut idle_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            message = consumer.recv() => match message {
                Ok(message) => {
                    if sender.receiver_count() > 0
                        && let Some(published) = summarise(&message)
                    {
                        // No receiver left: nothing to do, the tick stops us.
                        let _ = sender.send(Arc::new(published));
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "live view: reading Kafka failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = tick.tick() => {
                if sender.receiver_count() > 0 {
                    idle_since = None;
                } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= IDLE_STOP {
                    tracing::info!("live view: no page open for a minute; tail stopped");
                    return;
                }
            }
        }
    }
}

/// The fields of an event the page shows; any may be missing in what a
/// client sent and was rejected for.
#[derive(Deserialize, Default)]
struct Fields {
    event: Option<serde_json::Value>,
    event_id: Option<serde_json::Value>,
    user_id: Option<serde_json::Value>,
    timestamp: Option<serde_json::Value>,
    received_at: Option<serde_json::Value>,
    team_id: Option<serde_json::Value>,
}

fn text(value: Option<serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// A record of either topic as the page shows it; `None` when it names no
/// team.
pub fn summarise(message: &BorrowedMessage<'_>) -> Option<Published> {
    let payload = message.payload().unwrap_or_default();
    let fields: Fields = serde_json::from_slice(payload).unwrap_or_default();
    let code = header_text(message, headers::REJECT_CODE).map(str::to_owned);
    let outcome = match (header_text(message, headers::OUTCOME), &code) {
        (Some(outcome), _) => outcome.to_owned(),
        (None, Some(_)) => "rejected".to_owned(),
        (None, None) => "accepted".to_owned(),
    };
    let team = header_text(message, headers::TEAM)
        .map(str::to_owned)
        .or_else(|| text(fields.team_id))?;
    // What the client sent may lack the id it was answered with, and never
    // has a receive time: the gateway's header and the record's time.
    let event_id = text(fields.event_id)
        .or_else(|| header_text(message, headers::EVENT_ID).map(str::to_owned));
    let received_at = text(fields.received_at).or_else(|| {
        message
            .timestamp()
            .to_millis()
            .map(|ms| sluice_core::Timestamp::from_millis(ms).to_rfc3339())
    });
    let trace_id = header_text(message, headers::TRACEPARENT)
        .and_then(|tp| tp.split('-').nth(1))
        .map(str::to_owned);
    Some(Published {
        team,
        event: LiveEvent {
            outcome,
            event: text(fields.event),
            event_id,
            user_id: text(fields.user_id),
            timestamp: text(fields.timestamp),
            received_at,
            code,
            message: header_text(message, headers::REJECT_MESSAGE).map(str::to_owned),
            trace_id,
        },
    })
}
