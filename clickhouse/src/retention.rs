//! Retention by dropping whole day partitions, for servers without `TTL`.
//!
//! `events` is partitioned by `toYYYYMMDD(timestamp)` (UTC), so a day's rows
//! sit in one partition named like `20261126`, and dropping it is a cheap
//! metadata operation. The rule matches the TTL modern servers get
//! (`toDate(timestamp) + INTERVAL n DAY`): day `d` expires once
//! `d + n <= today`. Where the table has a TTL, running this as well is
//! harmless (it only removes what TTL would).
//!
//! An operator can do the same by hand:
//!
//! ```sql
//! SELECT DISTINCT partition FROM system.parts
//! WHERE database = 'sluice' AND table = 'events' AND active ORDER BY partition;
//! ALTER TABLE sluice.events DROP PARTITION 20260801;
//! ```
//!
//! [`Retention`] is the scheduled job: it drops expired partitions at
//! start-up and then every [`PERIOD`], so `clickhouse.retention_days` holds
//! on servers without `TTL` (18.16). Several services (or replicas) may run
//! it: the second drop of a partition finds it no longer listed.

use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, Utc};

use super::schema::SchemaSettings;
use super::{Error, quote, select_client};

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
    /// Retention of `settings.events()`, counted in the caller's counters:
    /// `dropped` (partitions dropped) and `runs` (passes, by outcome).
    pub fn new(
        client: clickhouse::Client,
        settings: SchemaSettings,
        dropped: &'static str,
        runs: &'static str,
    ) -> Self {
        Self {
            client,
            settings,
            metrics: (dropped, runs),
        }
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

/// The `YYYYMMDD` partitions among `partitions` that hold only expired days.
pub fn expired_partitions(partitions: &[u32], retention_days: u32, today: NaiveDate) -> Vec<u32> {
    let Some(cutoff) = today.checked_sub_days(Days::new(u64::from(retention_days))) else {
        return Vec::new();
    };
    let cutoff = yyyymmdd(cutoff);
    let mut expired: Vec<u32> = partitions
        .iter()
        .copied()
        .filter(|&p| p <= cutoff)
        .collect();
    expired.sort_unstable();
    expired.dedup();
    expired
}

/// `ALTER TABLE db.events DROP PARTITION ...` for every expired partition;
/// nothing when retention is off.
pub fn retention_drop_statements(
    settings: &SchemaSettings,
    partitions: &[u32],
    today: NaiveDate,
) -> Vec<String> {
    let Some(days) = settings.retention_days else {
        return Vec::new();
    };
    expired_partitions(partitions, days, today)
        .into_iter()
        .map(|p| drop_statement(settings, p))
        .collect()
}

fn drop_statement(settings: &SchemaSettings, partition: u32) -> String {
    format!(
        "ALTER TABLE {} DROP PARTITION {partition}",
        settings.events()
    )
}

/// Lists the events table's partitions and drops the expired ones; returns
/// the partitions dropped. Run it daily (any loader may; dropping a partition
/// twice is harmless because the second run no longer lists it).
pub async fn apply_retention(
    client: &clickhouse::Client,
    settings: &SchemaSettings,
    today: NaiveDate,
) -> Result<Vec<u32>, Error> {
    settings.validate_names()?;
    let Some(days) = settings.retention_days else {
        return Ok(Vec::new());
    };
    let client = select_client(client).with_database("system");
    let names: Vec<String> = client
        .query_raw(&format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = {} AND table = {} AND active",
            quote(&settings.database),
            quote(&settings.events_table)
        ))
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("listing partitions failed", e))?;
    // Partition names of a UInt32 key are its decimal value; anything else is
    // not ours to drop.
    let partitions: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
    let expired = expired_partitions(&partitions, days, today);
    for &partition in &expired {
        let statement = drop_statement(settings, partition);
        client
            .query_raw(&statement)
            .execute()
            .await
            .map_err(|e| Error::clickhouse(format!("`{statement}` failed"), e))?;
    }
    Ok(expired)
}

fn yyyymmdd(day: NaiveDate) -> u32 {
    // Years before 0 cannot be partitions of ours; clamp instead of wrapping.
    let year = u32::try_from(day.year()).unwrap_or(0);
    year * 10_000 + day.month() * 100 + day.day()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_day_expires_once_it_is_retention_days_old() {
        let parts = [20261124, 20261125, 20261126, 20261030, 20261031, 20261101];
        // 26 days before 2026-11-26 is 2026-10-31: that day and older expire.
        assert_eq!(
            expired_partitions(&parts, 26, day(2026, 11, 26)),
            [20261030, 20261031]
        );
        assert_eq!(
            expired_partitions(&parts, 1, day(2026, 11, 26)),
            [20261030, 20261031, 20261101, 20261124, 20261125]
        );
        assert!(expired_partitions(&parts, 365, day(2026, 11, 26)).is_empty());
    }

    #[test]
    fn statements_name_the_table_and_partition() {
        let settings = SchemaSettings {
            retention_days: Some(7),
            ..SchemaSettings::new("sluice")
        };
        assert_eq!(
            retention_drop_statements(
                &settings,
                &[20261101, 20261120, 20261101],
                day(2026, 11, 26)
            ),
            ["ALTER TABLE sluice.events DROP PARTITION 20261101"]
        );
        let forever = SchemaSettings::new("sluice");
        assert!(retention_drop_statements(&forever, &[19700101], day(2026, 11, 26)).is_empty());
    }
}
