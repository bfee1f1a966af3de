//! Scheduled retention: drops expired day partitions of the events table at
//! start-up and then every [`PERIOD`], so `clickhouse.retention_days` holds
//! on servers without `TTL` (18.16). Where the table has a TTL it only
//! removes what TTL would remove anyway. Several loaders may run it: the
//! second drop of a partition finds it no longer listed.

use std::time::Duration;

use chrono::Utc;

use crate::clickhouse::{SchemaSettings, apply_retention};

/// How often expired partitions are looked for; a day partition expires at
/// midnight UTC, so an hour late at most.
pub const PERIOD: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Retention {
    client: clickhouse::Client,
    settings: SchemaSettings,
    /// Counter names: partitions dropped, and passes by outcome.
    metrics: (&'static str, &'static str),
}

impl Retention {
    /// Retention of `settings.events_table`, counted in the loader's metrics.
    pub fn new(client: clickhouse::Client, settings: SchemaSettings) -> Self {
        Self {
            client,
            settings,
            metrics: (
                crate::status::RETENTION_DROPPED,
                crate::status::RETENTION_RUNS,
            ),
        }
    }

    /// Counts in other metrics (another service running it for its table).
    pub fn with_metrics(mut self, dropped: &'static str, runs: &'static str) -> Self {
        self.metrics = (dropped, runs);
        self
    }

    fn record(&self, dropped: usize, ok: bool) {
        metrics::counter!(self.metrics.0).increment(dropped as u64);
        metrics::counter!(self.metrics.1, "outcome" => if ok { "ok" } else { "error" })
            .increment(1);
    }

    /// One pass: drops the partitions expired today (UTC), logs and counts
    /// them. A failure is logged and retried at the next tick.
    pub async fn tick(&self) -> Vec<u32> {
        let today = Utc::now().date_naive();
        match apply_retention(&self.client, &self.settings, today).await {
            Ok(dropped) => {
                self.record(dropped.len(), true);
                if !dropped.is_empty() {
                    tracing::info!(
                        table = %self.settings.events(),
                        retention_days = self.settings.retention_days,
                        partitions = ?dropped,
                        "dropped expired day partitions"
                    );
                }
                dropped
            }
            Err(err) => {
                self.record(0, false);
                tracing::warn!(table = %self.settings.events(), error = %err, "retention pass failed; retrying next period");
                Vec::new()
            }
        }
    }

    /// Ticks now and then every `period`, until the handle is dropped.
    pub fn spawn(self, period: Duration) -> AbortOnDrop {
        AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                self.tick().await;
            }
        }))
    }
}

/// Stops the task when its service stops.
#[derive(Debug)]
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
