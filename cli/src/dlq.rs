//! `sluice dlq`: the dead-letter topic (`events.rejected`) read back, and its
//! events re-driven through a gateway once the cause is fixed.
//!
//! A dead letter is one Kafka record: the event's JSON (as the client sent
//! it, or the admitted event for `plugin_failed` and the loader's own codes)
//! with the reason in headers (`sluice-team`, `sluice-reject-code`,
//! `sluice-reject-message`). The loader's records carry no team header; their
//! team is the `team_id` in their JSON.
//!
//! [`scan`] reads the topic by offsets (no consumer group, nothing
//! committed) from its first record to its end when the scan started, and
//! keeps what a [`Filter`] selects. [`replay()`] posts the selected events to
//! the gateway's `POST /admin/v1/teams/{team}/replay`, which runs them
//! through the team's current pipeline. Why a replay stores each event once:
//!
//! 1. The gateway keeps each event's `event_id`, and the loader and the
//!    aggregator drop a copy of an event they kept within their dedup window
//!    (`dedup.window_secs`, a day by default).
//! 2. Past that window, the ClickHouse pre-check ([`StoredCheck`]) skips the
//!    events `events` already holds, so a replay days later (or a second one)
//!    adds nothing.
//! 3. An event that had no `event_id` (a client rejection) gets one derived
//!    from its dead-letter record ([`derived_event_id`]), the same on every
//!    replay, so (1) and (2) apply to it too.
//! 4. Only `failed` events are retried, each with its `event_id`, so a retry
//!    after a lost answer is another copy that (1) drops.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::ensure;
use serde::Deserialize;
use sluice_core::Timestamp;
use sluice_core::kafka::{KafkaSettings, headers};
use uuid::Uuid;

use sluice_core::readback::{self, ReadRecord};

mod replay;

pub use replay::{
    MAX_BATCH_EVENTS, ReplayOptions, ReplayReport, StoredCheck, derived_event_id, ensure_complete,
    replay,
};

/// How long a scan waits for the broker before giving up.
const SCAN_IDLE: Duration = Duration::from_secs(30);

/// Which dead letters to keep.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this team's.
    pub team: Option<String>,
    /// Only these reject codes (any when empty).
    pub codes: Vec<String>,
    /// Kafka record time at or after this.
    pub from: Option<Timestamp>,
    /// Kafka record time before this.
    pub to: Option<Timestamp>,
    /// At most this many.
    pub limit: Option<usize>,
}

impl Filter {
    /// A filter from command-line text: `from` and `to` as `sluice stats`
    /// takes them (a UTC date or an RFC 3339 instant).
    pub fn new(
        team: Option<String>,
        codes: Vec<String>,
        from: Option<&str>,
        to: Option<&str>,
        limit: Option<usize>,
    ) -> anyhow::Result<Self> {
        let from = from.map(crate::stats::parse_time).transpose()?;
        let to = to.map(crate::stats::parse_time).transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            ensure!(from < to, "--from must be before --to");
        }
        Ok(Self {
            team,
            codes,
            from,
            to,
            limit,
        })
    }

    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let team = self
            .team
            .as_deref()
            .is_none_or(|team| letter.team.as_deref() == Some(team));
        let code = self.codes.is_empty() || self.codes.contains(&letter.code);
        // A record without a time cannot be placed in a range.
        let from = self
            .from
            .is_none_or(|from| letter.time.is_some_and(|t| t >= from));
        let to = self.to.is_none_or(|to| letter.time.is_some_and(|t| t < to));
        team && code && from && to
    }
}

/// One record of the dead-letter topic, decoded as far as it decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    /// The Kafka record time: when the event was dead-lettered.
    pub time: Option<Timestamp>,
    /// `sluice-team`, else the JSON's `team_id`.
    pub team: Option<String>,
    /// `sluice-reject-code` (`?` when absent).
    pub code: String,
    pub message: String,
    pub event_id: Option<Uuid>,
    /// The event name, when the JSON has one.
    pub event: Option<String>,
    /// The record's value as written.
    pub payload: Vec<u8>,
}

/// The few fields a listing shows; any of them may be absent or odd.
#[derive(Debug, Default, Deserialize)]
struct Peek {
    #[serde(default)]
    event_id: Option<serde_json::Value>,
    #[serde(default)]
    team_id: Option<serde_json::Value>,
    #[serde(default)]
    event: Option<serde_json::Value>,
}

impl From<ReadRecord> for DeadLetter {
    fn from(mut record: ReadRecord) -> Self {
        let peek: Peek = serde_json::from_slice(&record.payload).unwrap_or_default();
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        let team = record
            .headers
            .remove(headers::TEAM)
            .or_else(|| text(peek.team_id));
        Self {
            partition: record.partition,
            offset: record.offset,
            time: record.timestamp,
            team,
            code: record
                .headers
                .remove(headers::REJECT_CODE)
                .unwrap_or_else(|| "?".to_owned()),
            message: record
                .headers
                .remove(headers::REJECT_MESSAGE)
                .unwrap_or_default(),
            event_id: text(peek.event_id).and_then(|id| id.parse().ok()),
            event: text(peek.event),
            payload: record.payload,
        }
    }
}

impl DeadLetter {
    /// One line: time, partition/offset, team, code, event id, event name,
    /// message.
    pub fn line(&self) -> String {
        format!(
            "{}  {}/{}  {}  {}  {}  {:?}  {}",
            self.time.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
            self.partition,
            self.offset,
            self.team.as_deref().unwrap_or("?"),
            self.code,
            self.event_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            self.event.as_deref().unwrap_or("-"),
            // One line per record, whatever the message holds.
            self.message.replace(['\n', '\r'], " "),
        )
    }
}

/// Reads the whole topic as it is now and hands each dead letter `filter`
/// selects to `each`, up to its limit. Blocking (run it off the async
/// workers). Returns how many were selected.
pub fn scan(
    kafka: &KafkaSettings,
    topic: &str,
    filter: &Filter,
    mut each: impl FnMut(DeadLetter),
) -> anyhow::Result<usize> {
    let ranges = readback::watermarks(kafka, topic)?;
    let limit = filter.limit.unwrap_or(usize::MAX);
    let mut selected = 0;
    if limit == 0 {
        return Ok(0);
    }
    readback::scan(kafka, topic, &ranges, SCAN_IDLE, |record| {
        let letter = DeadLetter::from(record);
        if filter.matches(&letter) {
            each(letter);
            selected += 1;
        }
        selected < limit
    })?;
    Ok(selected)
}

/// Every dead letter `filter` selects, by partition and offset.
pub fn select(
    kafka: &KafkaSettings,
    topic: &str,
    filter: &Filter,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters = Vec::new();
    scan(kafka, topic, filter, |letter| letters.push(letter))?;
    letters.sort_by_key(|l| (l.partition, l.offset));
    Ok(letters)
}

/// Dead letters counted by team and code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(pub BTreeMap<(String, String), usize>);

impl Tally {
    pub fn add(&mut self, letter: &DeadLetter) {
        let team = letter.team.clone().unwrap_or_else(|| "?".to_owned());
        *self.0.entry((team, letter.code.clone())).or_default() += 1;
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    /// `count  team  code` lines, then the total.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ((team, code), n) in &self.0 {
            out.push_str(&format!("{n:>8}  {team}  {code}\n"));
        }
        out.push_str(&format!("{:>8}  dead letters selected", self.total()));
        out
    }
}

/// `sluice dlq list`: one line per selected dead letter as it is read, then
/// the counts per team and code.
pub fn list(
    kafka: &KafkaSettings,
    topic: &str,
    filter: &Filter,
    out: &mut impl Write,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut write_error = None;
    scan(kafka, topic, filter, |letter| {
        tally.add(&letter);
        if write_error.is_none()
            && let Err(e) = writeln!(out, "{}", letter.line())
        {
            write_error = Some(e);
        }
    })?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    writeln!(out, "\n{}", tally.render())?;
    Ok(tally)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    pub(super) fn record(
        partition: i32,
        offset: i64,
        headers: &[(&str, &str)],
        payload: &str,
    ) -> ReadRecord {
        ReadRecord {
            partition,
            offset,
            key: String::new(),
            payload: payload.as_bytes().to_vec(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            timestamp: Some(Timestamp::from_millis(1_800_000_000_000)),
        }
    }

    const ID: &str = "0190d6a8-0000-7000-8000-000000000001";

    #[test]
    fn a_dead_letter_takes_its_team_from_the_header_else_from_the_json() {
        let gateway = DeadLetter::from(record(
            0,
            3,
            &[
                (headers::TEAM, "team-a"),
                (headers::REJECT_CODE, "plugin_failed"),
                (headers::REJECT_MESSAGE, "trap\nin plugin"),
            ],
            &format!(r#"{{"event_id":"{ID}","team_id":"team-a","event":"Clicked","user_id":"u"}}"#),
        ));
        assert_eq!(gateway.team.as_deref(), Some("team-a"));
        assert_eq!(gateway.event_id, Some(ID.parse().unwrap()));
        assert_eq!(
            gateway.line(),
            format!(
                "2027-01-15T08:00:00.000Z  0/3  team-a  plugin_failed  {ID}  \"Clicked\"  trap in plugin"
            )
        );

        let loader = DeadLetter::from(record(
            1,
            9,
            &[(headers::REJECT_CODE, "clickhouse_rejected")],
            &format!(r#"{{"event_id":"{ID}","team_id":"team-b","event":"x"}}"#),
        ));
        assert_eq!(loader.team.as_deref(), Some("team-b"));
        let garbage = DeadLetter::from(record(0, 4, &[], "\u{1}not json"));
        assert_eq!((garbage.team, garbage.code.as_str()), (None, "?"));
    }

    #[test]
    fn filters_combine_team_code_and_time() {
        let letter = DeadLetter::from(record(
            0,
            1,
            &[
                (headers::TEAM, "team-a"),
                (headers::REJECT_CODE, "plugin_failed"),
            ],
            "{}",
        ));
        let f = |team: Option<&str>, codes: &[&str], from: Option<&str>, to: Option<&str>| {
            Filter::new(
                team.map(str::to_owned),
                codes.iter().map(|c| (*c).to_owned()).collect(),
                from,
                to,
                None,
            )
            .unwrap()
            .matches(&letter)
        };
        assert!(f(None, &[], None, None));
        assert!(f(
            Some("team-a"),
            &["schema_violation", "plugin_failed"],
            None,
            None
        ));
        assert!(!f(Some("team-b"), &[], None, None));
        assert!(!f(None, &["schema_violation"], None, None));
        assert!(f(None, &[], Some("2027-01-15"), Some("2027-01-16")));
        assert!(!f(None, &[], Some("2027-01-15T08:00:00.001Z"), None));
        assert!(!f(None, &[], None, Some("2027-01-15T08:00:00Z")));
        assert!(Filter::new(None, vec![], Some("2027-01-16"), Some("2027-01-15"), None).is_err());
    }

    #[test]
    fn the_tally_counts_by_team_and_code() {
        let mut tally = Tally::default();
        for (team, code) in [("a", "x"), ("a", "x"), ("b", "x"), ("a", "y")] {
            tally.add(&DeadLetter::from(record(
                0,
                0,
                &[(headers::TEAM, team), (headers::REJECT_CODE, code)],
                "{}",
            )));
        }
        assert_eq!(tally.total(), 4);
        assert_eq!(
            tally.render(),
            "       2  a  x\n       1  a  y\n       1  b  x\n       4  dead letters selected"
        );
    }
}
