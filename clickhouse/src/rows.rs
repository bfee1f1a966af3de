//! Rows of the `events` table, one struct per layout.
//!
//! The two layouts differ only in how time is stored:
//!
//! - [`RowLayout::Modern`] (servers with `DateTime64`): `timestamp` and
//!   `received_at` are `DateTime64(3, 'UTC')`, milliseconds since the epoch.
//! - [`RowLayout::Legacy`] (ClickHouse 18.16 and other pre-20.1 servers):
//!   `timestamp` / `received_at` are `DateTime('UTC')` seconds, each followed
//!   by a `*_ms UInt16` column holding the millisecond within that second.
//!   The exact instant is `toUInt64(timestamp) * 1000 + timestamp_ms`.
//!   Keeping a real `DateTime` (rather than one Int64 epoch-ms column) lets
//!   partitioning, the sort key and every date function work on `timestamp`
//!   exactly as in the modern layout, at a cost of 2 bytes per instant.
//!
//! Everything else is the same: `event_id` is a UUID (RowBinary: the high
//! and the low 64 bits, each little-endian), strings borrow from the decoded
//! [`Event`], `context` is `''` when the event has none.
//!
//! The structs derive [`clickhouse::Row`] and serde so the crate's own
//! `Insert`/`fetch` work with them too; the loader's inserts use
//! [`encode_rows`](super::encode_rows), which writes exactly these fields in
//! exactly this order (checked against the servers by the tests).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sluice_core::{Event, Timestamp};
use uuid::Uuid;

/// How a table stores time; fixed when the table is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowLayout {
    /// `DateTime64(3, 'UTC')` columns.
    Modern,
    /// `DateTime('UTC')` seconds plus `UInt16` milliseconds.
    Legacy,
}

const MODERN_COLUMNS: &[(&str, &str)] = &[
    ("event_id", "UUID"),
    ("team_id", "String"),
    ("event", "String"),
    ("user_id", "String"),
    ("timestamp", "DateTime64(3, 'UTC')"),
    ("received_at", "DateTime64(3, 'UTC')"),
    ("schema_version", "UInt32"),
    ("properties", "String"),
    ("context", "String"),
    ("kafka_topic", "String"),
    ("kafka_partition", "Int32"),
    ("kafka_offset", "Int64"),
    ("loaded_at", "DateTime('UTC')"),
];

const LEGACY_COLUMNS: &[(&str, &str)] = &[
    ("event_id", "UUID"),
    ("team_id", "String"),
    ("event", "String"),
    ("user_id", "String"),
    ("timestamp", "DateTime('UTC')"),
    ("timestamp_ms", "UInt16"),
    ("received_at", "DateTime('UTC')"),
    ("received_at_ms", "UInt16"),
    ("schema_version", "UInt32"),
    ("properties", "String"),
    ("context", "String"),
    ("kafka_topic", "String"),
    ("kafka_partition", "Int32"),
    ("kafka_offset", "Int64"),
    ("loaded_at", "DateTime('UTC')"),
];

impl RowLayout {
    /// `(name, type)` of every column, in table and RowBinary order. The
    /// types are the wire types; the DDL may wrap them (`LowCardinality`) and
    /// add codecs, neither of which changes the RowBinary encoding.
    pub fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Modern => MODERN_COLUMNS,
            Self::Legacy => LEGACY_COLUMNS,
        }
    }

    /// `event_id, team_id, ...` for `INSERT INTO t (...)`.
    pub fn column_list(self) -> String {
        self.columns()
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `event_id UUID, team_id String, ...`: the structure argument of
    /// `file()`/`input()` for reading a RowBinary batch.
    pub fn structure(self) -> String {
        self.columns()
            .iter()
            .map(|(name, ty)| format!("{name} {ty}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A row of a [`RowLayout::Modern`] table.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct ModernRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub team_id: Cow<'a, str>,
    pub event: Cow<'a, str>,
    pub user_id: Cow<'a, str>,
    /// Milliseconds since the epoch (`DateTime64(3)`).
    pub timestamp: i64,
    pub received_at: i64,
    pub schema_version: u32,
    /// JSON object text.
    pub properties: Cow<'a, str>,
    /// JSON object text, or `''` when the event has no context.
    pub context: Cow<'a, str>,
    pub kafka_topic: Cow<'a, str>,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// Seconds since the epoch (`DateTime`).
    pub loaded_at: u32,
}

/// A row of a [`RowLayout::Legacy`] table.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct LegacyRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub team_id: Cow<'a, str>,
    pub event: Cow<'a, str>,
    pub user_id: Cow<'a, str>,
    /// Seconds since the epoch (`DateTime`).
    pub timestamp: u32,
    /// Millisecond within `timestamp`'s second, 0..=999.
    pub timestamp_ms: u16,
    pub received_at: u32,
    pub received_at_ms: u16,
    pub schema_version: u32,
    pub properties: Cow<'a, str>,
    pub context: Cow<'a, str>,
    pub kafka_topic: Cow<'a, str>,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub loaded_at: u32,
}

/// A row in either layout. One batch holds one layout (checked by
/// [`insert_batch`](super::insert_batch)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRow<'a> {
    Modern(ModernRow<'a>),
    Legacy(LegacyRow<'a>),
}

impl EventRow<'_> {
    pub fn layout(&self) -> RowLayout {
        match self {
            Self::Modern(_) => RowLayout::Modern,
            Self::Legacy(_) => RowLayout::Legacy,
        }
    }

    pub fn kafka_partition(&self) -> i32 {
        match self {
            Self::Modern(row) => row.kafka_partition,
            Self::Legacy(row) => row.kafka_partition,
        }
    }

    pub fn kafka_offset(&self) -> i64 {
        match self {
            Self::Modern(row) => row.kafka_offset,
            Self::Legacy(row) => row.kafka_offset,
        }
    }

    pub fn into_owned(self) -> EventRow<'static> {
        match self {
            Self::Modern(row) => EventRow::Modern(row.into_owned()),
            Self::Legacy(row) => EventRow::Legacy(row.into_owned()),
        }
    }
}

fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

impl ModernRow<'_> {
    /// A copy that owns its strings, e.g. to outlive the Kafka messages.
    pub fn into_owned(self) -> ModernRow<'static> {
        ModernRow {
            team_id: owned(self.team_id),
            event: owned(self.event),
            user_id: owned(self.user_id),
            properties: owned(self.properties),
            context: owned(self.context),
            kafka_topic: owned(self.kafka_topic),
            ..self
        }
    }
}

impl LegacyRow<'_> {
    /// A copy that owns its strings, e.g. to outlive the Kafka messages.
    pub fn into_owned(self) -> LegacyRow<'static> {
        LegacyRow {
            team_id: owned(self.team_id),
            event: owned(self.event),
            user_id: owned(self.user_id),
            properties: owned(self.properties),
            context: owned(self.context),
            kafka_topic: owned(self.kafka_topic),
            ..self
        }
    }
}

/// The row for `event`, read from `topic`/`partition` at `offset`, loaded at
/// `loaded_at` (stored with second precision). Borrows every string from
/// `event` and `topic`.
pub fn row<'a>(
    layout: RowLayout,
    event: &'a Event<'_>,
    topic: &'a str,
    partition: i32,
    offset: i64,
    loaded_at: Timestamp,
) -> EventRow<'a> {
    let context = Cow::Borrowed(event.context.map_or("", |raw| raw.get()));
    let (loaded_at, _) = split_millis(loaded_at);
    match layout {
        RowLayout::Modern => EventRow::Modern(ModernRow {
            event_id: event.event_id,
            team_id: Cow::Borrowed(&event.team_id),
            event: Cow::Borrowed(&event.event),
            user_id: Cow::Borrowed(&event.user_id),
            timestamp: event.timestamp.as_millis(),
            received_at: event.received_at.as_millis(),
            schema_version: event.schema_version,
            properties: Cow::Borrowed(event.properties.get()),
            context,
            kafka_topic: Cow::Borrowed(topic),
            kafka_partition: partition,
            kafka_offset: offset,
            loaded_at,
        }),
        RowLayout::Legacy => {
            let (timestamp, timestamp_ms) = split_millis(event.timestamp);
            let (received_at, received_at_ms) = split_millis(event.received_at);
            EventRow::Legacy(LegacyRow {
                event_id: event.event_id,
                team_id: Cow::Borrowed(&event.team_id),
                event: Cow::Borrowed(&event.event),
                user_id: Cow::Borrowed(&event.user_id),
                timestamp,
                timestamp_ms,
                received_at,
                received_at_ms,
                schema_version: event.schema_version,
                properties: Cow::Borrowed(event.properties.get()),
                context,
                kafka_topic: Cow::Borrowed(topic),
                kafka_partition: partition,
                kafka_offset: offset,
                loaded_at,
            })
        }
    }
}

/// Seconds (`DateTime`) and the millisecond within the second.
///
/// Timestamps decoded from `events.raw` always lie in 1970..=2105
/// (`Timestamp::checked`), which `DateTime` holds; the clamp only keeps a
/// hand-built out-of-range value from wrapping around.
fn split_millis(ts: Timestamp) -> (u32, u16) {
    const MAX_MILLIS: i64 = u32::MAX as i64 * 1000 + 999;
    let ms = ts.as_millis().clamp(0, MAX_MILLIS);
    let secs = u32::try_from(ms / 1000).unwrap_or(u32::MAX);
    let frac = u16::try_from(ms % 1000).unwrap_or(0);
    (secs, frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event<'_> {
        serde_json::from_str(json).unwrap()
    }

    const WIRE: &str = r#"{"event_id":"0190d6a8-0000-7000-8000-000000000001","team_id":"team-a",
        "event":"Signed Up","user_id":"u-1","timestamp":"2025-11-26T02:58:27.123Z",
        "received_at":"2025-11-26T02:58:28.001Z","schema_version":3,
        "properties":{"plan":"pro"},"context":{"ip":"203.0.113.9"}}"#;

    #[test]
    fn modern_rows_keep_milliseconds() {
        let e = event(WIRE);
        let EventRow::Modern(r) = row(
            RowLayout::Modern,
            &e,
            "events.raw",
            4,
            77,
            Timestamp::from_millis(1_764_125_999_999),
        ) else {
            panic!("layout")
        };
        assert_eq!(r.timestamp, 1_764_125_907_123);
        assert_eq!(r.received_at, 1_764_125_908_001);
        assert_eq!(r.loaded_at, 1_764_125_999);
        assert_eq!(r.properties, r#"{"plan":"pro"}"#);
        assert_eq!(r.context, r#"{"ip":"203.0.113.9"}"#);
        assert_eq!(
            (r.kafka_topic.as_ref(), r.kafka_partition, r.kafka_offset),
            ("events.raw", 4, 77)
        );
        assert!(matches!(r.team_id, Cow::Borrowed("team-a")));
    }

    #[test]
    fn legacy_rows_split_seconds_and_milliseconds() {
        let e = event(WIRE);
        let EventRow::Legacy(r) = row(
            RowLayout::Legacy,
            &e,
            "events.raw",
            0,
            1,
            Timestamp::from_millis(1_764_125_999_999),
        ) else {
            panic!("layout")
        };
        assert_eq!((r.timestamp, r.timestamp_ms), (1_764_125_907, 123));
        assert_eq!((r.received_at, r.received_at_ms), (1_764_125_908, 1));
        assert_eq!(r.loaded_at, 1_764_125_999);
    }

    #[test]
    fn missing_context_is_empty_text() {
        let e = event(
            r#"{"event_id":"0190d6a8-0000-7000-8000-000000000001","team_id":"t","event":"e",
            "user_id":"u","timestamp":0,"received_at":0,"schema_version":1,"properties":{}}"#,
        );
        let r = row(RowLayout::Legacy, &e, "t", 0, 0, Timestamp::from_millis(0));
        let EventRow::Legacy(r) = r else { panic!() };
        assert_eq!(r.context, "");
        assert_eq!((r.timestamp, r.timestamp_ms), (0, 0));
    }

    #[test]
    fn out_of_range_instants_clamp_instead_of_wrapping() {
        assert_eq!(split_millis(Timestamp::from_millis(-1)), (0, 0));
        assert_eq!(
            split_millis(Timestamp::from_millis(i64::MAX)),
            (u32::MAX, 999)
        );
        assert_eq!(
            split_millis(Timestamp::from_millis(4_291_660_800_000)),
            (4_291_660_800, 0)
        );
    }

    #[test]
    fn struct_fields_match_the_column_lists() {
        use clickhouse::Row;
        let names =
            |layout: RowLayout| layout.columns().iter().map(|(n, _)| *n).collect::<Vec<_>>();
        assert_eq!(ModernRow::COLUMN_NAMES, names(RowLayout::Modern).as_slice());
        assert_eq!(LegacyRow::COLUMN_NAMES, names(RowLayout::Legacy).as_slice());
        assert!(
            RowLayout::Legacy
                .structure()
                .starts_with("event_id UUID, team_id String, ")
        );
        assert!(
            RowLayout::Modern
                .column_list()
                .ends_with("kafka_offset, loaded_at")
        );
    }
}
