//! `sluice dlq replay`: selected dead letters posted to the gateway's
//! replay route in batches, after the ClickHouse pre-check, with the failed
//! events retried. The module docs of [`super`] say why a replay stores
//! each event once.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::DeadLetter;

/// Events per replay request: half the gateway's default batch limit.
pub const MAX_BATCH_EVENTS: usize = 500;
/// JSON bytes per replay request, under the gateway's default 5 MiB body limit.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Event ids per ClickHouse pre-check query (about 40 KB of SQL).
const CHECK_BATCH: usize = 1000;

/// The event id a dead letter without one is replayed under: a UUID v8
/// from its record's partition and offset and a hash of its value, so every
/// replay of the same record names the same event (and a recreated topic's
/// reused offsets name other events).
pub fn derived_event_id(partition: i32, offset: i64, payload: &[u8]) -> Uuid {
    // FNV-1a: stable across builds and Rust versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in payload {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut bytes = [0_u8; 16];
    bytes[..8].copy_from_slice(&hash.to_be_bytes());
    bytes[8..10].copy_from_slice(&(partition as u16).to_be_bytes());
    bytes[10..].copy_from_slice(&offset.to_be_bytes()[2..]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A dead letter as it is sent to the replay route, with the event id it
/// will be stored under; `None` when its value is not JSON (nothing can
/// replay it).
fn prepare(letter: &DeadLetter) -> Option<(Uuid, Box<RawValue>)> {
    if let Some(id) = letter.event_id {
        let raw = serde_json::from_slice::<Box<RawValue>>(&letter.payload).ok()?;
        return Some((id, raw));
    }
    let id = derived_event_id(letter.partition, letter.offset, &letter.payload);
    match serde_json::from_slice::<BTreeMap<String, Box<RawValue>>>(&letter.payload) {
        // An object without a usable `event_id`; an unusable one (not a
        // UUID) is kept, and the gateway rejects it as it did before.
        Ok(mut fields) if !fields.contains_key("event_id") => {
            let quoted = format!("\"{id}\"");
            fields.insert("event_id".to_owned(), RawValue::from_string(quoted).ok()?);
            let text = serde_json::to_string(&fields).ok()?;
            Some((id, RawValue::from_string(text).ok()?))
        }
        _ => {
            let raw = serde_json::from_slice::<Box<RawValue>>(&letter.payload).ok()?;
            Some((id, raw))
        }
    }
}

/// The ClickHouse table whose event ids a replay skips.
#[derive(Debug, Clone)]
pub struct StoredCheck {
    pub url: String,
    pub database: String,
    pub table: String,
}

impl StoredCheck {
    /// The ids of `ids` that `team`'s stored events have.
    pub async fn stored(
        &self,
        http: &reqwest::Client,
        team: &str,
        ids: &[Uuid],
    ) -> anyhow::Result<HashSet<Uuid>> {
        ensure!(
            sluice_clickhouse::is_identifier(&self.database)
                && sluice_clickhouse::is_identifier(&self.table),
            "--database and --table must be plain identifiers"
        );
        let mut stored = HashSet::new();
        for chunk in ids.chunks(CHECK_BATCH) {
            let list = chunk
                .iter()
                .map(|id| sluice_clickhouse::quote_literal(&id.to_string()))
                .collect::<Vec<_>>()
                .join(",");
            let query = format!(
                "SELECT toString(event_id) FROM {}.{} WHERE team_id = {} AND toString(event_id) IN ({list}) FORMAT TSV",
                self.database,
                self.table,
                sluice_clickhouse::quote_literal(team)
            );
            let response = http
                .post(&self.url)
                .body(query)
                .send()
                .await
                .with_context(|| format!("querying ClickHouse at {}", self.url))?;
            let status = response.status();
            let text = response.text().await?;
            ensure!(
                status.is_success(),
                "ClickHouse at {} answered {status}: {}",
                self.url,
                text.trim()
            );
            for line in text.lines().filter(|l| !l.is_empty()) {
                stored.insert(line.parse().with_context(|| format!("event id `{line}`"))?);
            }
        }
        Ok(stored)
    }
}

/// How `sluice dlq replay` reaches the gateway and what it checks first.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Gateway base URL.
    pub gateway: String,
    /// The operator token, or an admin key of the team.
    pub token: String,
    /// Skip events ClickHouse already stores.
    pub stored: Option<StoredCheck>,
    /// Select and check, send nothing.
    pub dry_run: bool,
    /// Events per request (at most [`MAX_BATCH_EVENTS`]).
    pub batch_size: usize,
    /// Tries per event answered `failed` (and per request refused with 429
    /// or 503), the first included.
    pub attempts: u32,
    /// The first wait before a retry; it doubles, and the gateway's
    /// `Retry-After` is honoured when longer.
    pub backoff: Duration,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a replay did, event by event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Dead letters the filter selected.
    pub selected: usize,
    /// Not JSON: nothing can replay them.
    pub unreadable: usize,
    /// The same event as an earlier selected one (dead-lettered twice):
    /// sent once.
    pub duplicates: usize,
    /// Skipped: ClickHouse already stores their event id.
    pub already_stored: usize,
    /// Sent to the gateway (or, in a dry run, would have been).
    pub sent: usize,
    /// Nothing was sent.
    pub dry_run: bool,
    pub accepted: usize,
    /// Rejected again by the team's current pipeline, by code.
    pub rejected: BTreeMap<String, usize>,
    pub dead_lettered: usize,
    /// Still not in Kafka after every attempt: run the replay again.
    pub failed: usize,
    /// The event ids the gateway accepted, in the order sent.
    pub accepted_ids: Vec<Uuid>,
}

impl ReplayReport {
    pub fn render(&self) -> String {
        let rejected: usize = self.rejected.values().sum();
        if self.dry_run {
            return format!(
                "dry run: selected {}, not JSON {}, duplicates {}, already stored {}, would send {}",
                self.selected, self.unreadable, self.duplicates, self.already_stored, self.sent
            );
        }
        let mut out = format!(
            "selected {}, not JSON {}, duplicates {}, already stored {}, sent {}: accepted {}, rejected {}, dead_lettered {}, failed {}",
            self.selected,
            self.unreadable,
            self.duplicates,
            self.already_stored,
            self.sent,
            self.accepted,
            rejected,
            self.dead_lettered,
            self.failed
        );
        for (code, n) in &self.rejected {
            out.push_str(&format!("\n  rejected {code}: {n}"));
        }
        out
    }
}

/// One event's answer from the replay route (its codes include the route's
/// own `team_mismatch`, so they stay text).
#[derive(Debug, Deserialize)]
struct Answered {
    status: String,
    #[serde(default)]
    event_id: Option<Uuid>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    results: Vec<Answered>,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    events: Vec<&'a RawValue>,
}

/// Why a request got no per-event answer.
enum Refused {
    /// Try again later (429, 503, no connection): after at least this long.
    Retry(Option<Duration>, String),
    Fatal(anyhow::Error),
}

/// `sluice dlq replay`: re-drives `team`'s `letters` through the gateway.
pub async fn replay(
    team: &str,
    letters: &[DeadLetter],
    options: &ReplayOptions,
) -> anyhow::Result<ReplayReport> {
    ensure!(
        (1..=MAX_BATCH_EVENTS).contains(&options.batch_size),
        "the batch size must be 1 to {MAX_BATCH_EVENTS}"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut report = ReplayReport {
        selected: letters.len(),
        ..Default::default()
    };
    let mut events: Vec<(Uuid, Box<RawValue>)> = Vec::with_capacity(letters.len());
    let mut seen = HashSet::new();
    for letter in letters {
        match prepare(letter) {
            // The same event dead-lettered twice (say, by two replays while
            // the plugin still failed) is sent once.
            Some((id, _)) if !seen.insert(id) => report.duplicates += 1,
            Some(event) => events.push(event),
            None => report.unreadable += 1,
        }
    }
    if let Some(check) = &options.stored {
        let ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
        let stored = check.stored(&http, team, &ids).await?;
        let before = events.len();
        events.retain(|(id, _)| !stored.contains(id));
        report.already_stored += before - events.len();
    }
    report.sent = events.len();
    report.dry_run = options.dry_run;
    if options.dry_run || events.is_empty() {
        return Ok(report);
    }

    let bar = if options.progress {
        indicatif::ProgressBar::new(events.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let url = format!(
        "{}/admin/v1/teams/{team}/replay",
        options.gateway.trim_end_matches('/')
    );
    for batch in batches(&events, options.batch_size) {
        send_batch(&http, &url, options, batch, &mut report, &bar).await?;
        bar.set_message(format!(
            "{} accepted, {} rejected, {} failed",
            report.accepted,
            report.rejected.values().sum::<usize>(),
            report.failed
        ));
    }
    bar.finish();
    Ok(report)
}

/// Consecutive runs of at most `size` events and [`MAX_BATCH_BYTES`].
fn batches(events: &[(Uuid, Box<RawValue>)], size: usize) -> Vec<&[(Uuid, Box<RawValue>)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, raw)) in events.iter().enumerate() {
        let len = raw.get().len() + 1;
        if i > start && (i - start == size || bytes + len > MAX_BATCH_BYTES) {
            out.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// Sends one batch, then its `failed` events again until none is left or
/// the attempts are spent; adds the outcomes to `report`.
async fn send_batch(
    http: &reqwest::Client,
    url: &str,
    options: &ReplayOptions,
    batch: &[(Uuid, Box<RawValue>)],
    report: &mut ReplayReport,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut wait = options.backoff;
    let mut last_problem = String::new();
    for attempt in 1..=options.attempts.max(1) {
        let body = Body {
            events: pending.iter().map(|&i| &*batch[i].1).collect(),
        };
        let mut retry_after = None;
        match post(http, url, &options.token, &body).await {
            Ok(answer) => {
                ensure!(
                    answer.results.len() == pending.len(),
                    "the gateway answered {} results for {} events",
                    answer.results.len(),
                    pending.len()
                );
                let mut still = Vec::new();
                for (&i, result) in pending.iter().zip(answer.results) {
                    match result.status.as_str() {
                        "accepted" => {
                            report.accepted += 1;
                            report
                                .accepted_ids
                                .push(result.event_id.unwrap_or(batch[i].0));
                        }
                        "rejected" => {
                            let code = result.code.unwrap_or_else(|| "?".to_owned());
                            *report.rejected.entry(code).or_default() += 1;
                        }
                        "dead_lettered" => report.dead_lettered += 1,
                        _ => {
                            still.push(i);
                            continue;
                        }
                    }
                    bar.inc(1);
                }
                if !still.is_empty() {
                    last_problem = format!("{} events answered failed", still.len());
                }
                pending = still;
            }
            Err(Refused::Retry(after, why)) => {
                retry_after = after;
                last_problem = why;
            }
            Err(Refused::Fatal(err)) => return Err(err),
        }
        if pending.is_empty() {
            return Ok(());
        }
        if attempt < options.attempts {
            bar.suspend(|| {
                eprintln!(
                    "{last_problem}; retrying {} events (attempt {}/{})",
                    pending.len(),
                    attempt + 1,
                    options.attempts
                );
            });
            tokio::time::sleep(retry_after.map_or(wait, |after| after.max(wait))).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
    bar.suspend(|| eprintln!("{last_problem}; giving up on {} events", pending.len()));
    report.failed += pending.len();
    bar.inc(pending.len() as u64);
    Ok(())
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Body<'_>,
) -> Result<Answer, Refused> {
    let response = match http.post(url).bearer_auth(token).json(body).send().await {
        Ok(response) => response,
        Err(err) => return Err(Refused::Retry(None, format!("calling {url}: {err}"))),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map(Duration::from_secs);
    let text = match response.text().await {
        Ok(text) => text,
        Err(err) => return Err(Refused::Retry(None, format!("reading the answer: {err}"))),
    };
    // 200, or 503 naming the failed events.
    if let Ok(answer) = serde_json::from_str::<Answer>(&text) {
        return Ok(answer);
    }
    let error: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let code = error["error"]["code"].as_str().unwrap_or("?");
    let message = error["error"]["message"].as_str().unwrap_or(text.trim());
    let why = format!("HTTP {}: {code}: {message}", status.as_u16());
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            Err(Refused::Retry(retry_after, why))
        }
        StatusCode::PAYLOAD_TOO_LARGE => Err(Refused::Fatal(anyhow::anyhow!(
            "{why} (lower --batch-size to the gateway's limit)"
        ))),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Err(Refused::Fatal(
            anyhow::anyhow!("{why}: does this gateway have the replay route?"),
        )),
        _ => Err(Refused::Fatal(anyhow::anyhow!(why))),
    }
}

/// Fails when events are still `failed` after a replay, so scripts notice.
pub fn ensure_complete(report: &ReplayReport) -> anyhow::Result<()> {
    if report.failed > 0 {
        bail!(
            "{} events were not taken by Kafka after every attempt; run the replay again (it skips what is stored)",
            report.failed
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sluice_core::kafka::headers;

    use super::*;
    use crate::dlq::tests::record;

    const ID: &str = "0190d6a8-0000-7000-8000-000000000001";

    #[test]
    fn an_event_without_an_id_is_replayed_under_the_same_derived_id_every_time() {
        let letter = DeadLetter::from(record(
            2,
            70_000,
            &[
                (headers::TEAM, "team-a"),
                (headers::REJECT_CODE, "schema_violation"),
            ],
            r#"{"event":"Clicked","user_id":"u","properties":{"n":1.50}}"#,
        ));
        let (id, raw) = prepare(&letter).unwrap();
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(prepare(&letter).unwrap().0, id);
        assert_eq!(
            raw.get(),
            format!(
                r#"{{"event":"Clicked","event_id":"{id}","properties":{{"n":1.50}},"user_id":"u"}}"#
            )
        );
        assert_ne!(derived_event_id(2, 70_001, &letter.payload), id);
        assert_ne!(derived_event_id(2, 70_000, b"{}"), id);

        // With an id, the value is sent as written.
        let kept = DeadLetter::from(record(
            0,
            1,
            &[],
            &format!(r#"{{"event_id":"{ID}","n":1.50}}"#),
        ));
        let (id, raw) = prepare(&kept).unwrap();
        assert_eq!(
            (id.to_string().as_str(), raw.get()),
            (ID, &*String::from_utf8(kept.payload.clone()).unwrap())
        );
        assert!(prepare(&DeadLetter::from(record(0, 1, &[], "not json"))).is_none());
    }

    #[test]
    fn batches_respect_the_count_and_the_byte_budget() {
        let event = |n: usize| {
            (
                Uuid::new_v4(),
                RawValue::from_string(format!("\"{}\"", "x".repeat(n))).unwrap(),
            )
        };
        let small: Vec<_> = (0..1201).map(|_| event(10)).collect();
        let sizes: Vec<usize> = batches(&small, 500).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [500, 500, 201]);
        let big: Vec<_> = (0..5).map(|_| event(MAX_BATCH_BYTES / 2)).collect();
        let sizes: Vec<usize> = batches(&big, 500).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 1, 1, 1, 1]);
        assert!(batches(&[], 500).is_empty());
    }
}
