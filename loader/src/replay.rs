//! Replay: re-load a time range from the lake into ClickHouse, idempotently.
//!
//! For every lake file whose hour overlaps the range, the events inside the
//! range are compared with what ClickHouse already holds for that team and
//! hour (by `event_id`), and only the missing ones are inserted, one insert
//! per file (a file is one team and one hour, so one table partition: the
//! insert is atomic). Replaying a range twice, or a range the loader already
//! loaded, inserts nothing the second time.
//!
//! Replayed rows carry `kafka_topic = "lake-replay"`, so they never move the
//! loader's own progress for `events.raw`.

use std::collections::HashSet;

use anyhow::Context;
use chrono::DateTime;
use sluice_clickhouse::InsertOutcome;
use sluice_core::{Event, Timestamp};

use crate::lake::Lake;
use crate::sink::ClickHouseSink;

/// The pseudo-topic replayed rows are stored under.
pub const REPLAY_TOPIC: &str = "lake-replay";

#[derive(Debug, Clone)]
pub struct ReplayRange {
    /// Inclusive start, event time.
    pub from: Timestamp,
    /// Exclusive end, event time.
    pub to: Timestamp,
    /// Only this team, if set.
    pub team: Option<String>,
}

/// What a replay did, for the progress display and the final summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub files: usize,
    pub events_in_range: usize,
    pub already_present: usize,
    pub inserted: usize,
}

const HOUR_MS: i64 = 3_600_000;

/// The lake files that may hold events of `range`, as (path, team, hour start).
pub async fn files_in_range(
    lake: &Lake,
    range: &ReplayRange,
) -> anyhow::Result<Vec<(String, String, i64)>> {
    let mut files = Vec::new();
    for manifest in lake.manifests().await? {
        for file in manifest.files {
            let hour = DateTime::parse_from_rfc3339(&file.hour)
                .with_context(|| format!("manifest hour `{}`", file.hour))?
                .timestamp_millis();
            let overlaps = hour < range.to.as_millis() && hour + HOUR_MS > range.from.as_millis();
            let team_ok = range.team.as_deref().is_none_or(|t| t == file.team_id);
            if overlaps && team_ok {
                files.push((file.path, file.team_id, hour));
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Replays `range`; `on_file` is called after each file with the running report.
pub async fn replay(
    lake: &Lake,
    sink: &ClickHouseSink,
    range: &ReplayRange,
    mut on_file: impl FnMut(&ReplayReport),
) -> anyhow::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    for (path, team, hour) in files_in_range(lake, range).await? {
        let text = String::from_utf8(lake.read_file(&path).await?)
            .with_context(|| format!("{path} is not UTF-8"))?;
        let mut events = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let event: Event<'_> =
                serde_json::from_str(line).with_context(|| format!("a line of {path}"))?;
            let t = event.timestamp.as_millis();
            if t >= range.from.as_millis() && t < range.to.as_millis() {
                events.push(event);
            }
        }
        report.files += 1;
        report.events_in_range += events.len();
        if !events.is_empty() {
            let in_file = events.len();
            let present: HashSet<uuid::Uuid> =
                sink.existing_ids(&team, hour, hour + HOUR_MS).await?;
            let missing: Vec<(i64, Event<'_>)> = events
                .into_iter()
                .filter(|e| !present.contains(&e.event_id))
                .enumerate()
                .map(|(i, e)| (i as i64, e))
                .collect();
            report.already_present += in_file - missing.len();
            if !missing.is_empty() {
                let token = format!("{REPLAY_TOPIC}:{path}:{}", missing.len());
                match sink
                    .insert(
                        REPLAY_TOPIC,
                        0,
                        &missing,
                        &token,
                        sluice_core::Timestamp::now(),
                    )
                    .await?
                {
                    InsertOutcome::Inserted { rows, .. } => report.inserted += rows,
                    InsertOutcome::Retryable(reason) | InsertOutcome::Permanent(reason) => {
                        anyhow::bail!("inserting the events of {path}: {reason}");
                    }
                }
            }
        }
        on_file(&report);
    }
    Ok(report)
}
