//! Millisecond-precision UTC timestamps.
//!
//! On the wire (Kafka values, API responses) a timestamp is always the RFC 3339
//! string with exactly three fractional digits and a `Z` suffix, for example
//! `2026-11-26T02:58:27.123Z`: readable in `kcat`, sortable as text, and parsed
//! by every language. Clients may also send an integer of milliseconds since
//! the Unix epoch, or RFC 3339 with any offset and precision; finer precision
//! is truncated to milliseconds.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Earliest accepted instant: 1970-01-01. Older values cannot be stored in
/// ClickHouse `DateTime` columns, so they are rejected at the door.
const MIN_MILLIS: i64 = 0;
/// Latest accepted instant: 2105-12-31, inside ClickHouse `DateTime`'s range.
const MAX_MILLIS: i64 = 4_291_660_800_000;

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (any offset, any fractional precision) into UTC milliseconds.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let parsed = DateTime::parse_from_rfc3339(text).map_err(|_| TimestampError::Format)?;
        Self::checked(parsed.timestamp_millis())
    }

    /// Accepts milliseconds inside the storable range.
    pub fn checked(ms: i64) -> Result<Self, TimestampError> {
        if (MIN_MILLIS..=MAX_MILLIS).contains(&ms) {
            Ok(Self(ms))
        } else {
            Err(TimestampError::OutOfRange)
        }
    }

    /// The canonical wire form, e.g. `2026-11-26T02:58:27.123Z`.
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_millis(self.0) {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
            // Unreachable for values built through `checked`; keep output total anyway.
            None => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error(
        "timestamp must be an RFC 3339 string (e.g. 2026-11-26T02:58:27.123Z) or integer milliseconds since the Unix epoch"
    )]
    Format,
    #[error("timestamp must lie between 1970-01-01 and 2105-12-31")]
    OutOfRange,
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;

        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 string or integer milliseconds since the Unix epoch")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Timestamp::checked(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                let ms = i64::try_from(v).map_err(|_| E::custom(TimestampError::OutOfRange))?;
                Timestamp::checked(ms).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(TimestampVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_has_millis_and_z() {
        let ts = Timestamp::from_millis(1_764_125_907_123);
        assert_eq!(ts.to_rfc3339(), "2025-11-26T02:58:27.123Z");
        assert_eq!(
            serde_json::to_string(&ts).unwrap(),
            "\"2025-11-26T02:58:27.123Z\""
        );
    }

    #[test]
    fn parses_offsets_and_truncates_precision() {
        let a: Timestamp = serde_json::from_str("\"2025-11-26T03:58:27.123456+01:00\"").unwrap();
        assert_eq!(a, Timestamp::from_millis(1_764_125_907_123));
        let b: Timestamp = serde_json::from_str("1764125907123").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        for bad in [
            "\"yesterday\"",
            "\"2025-11-26 03:58\"",
            "-1",
            "true",
            "99999999999999999",
        ] {
            assert!(
                serde_json::from_str::<Timestamp>(bad).is_err(),
                "{bad} should fail"
            );
        }
        assert_eq!(
            Timestamp::checked(MAX_MILLIS + 1),
            Err(TimestampError::OutOfRange)
        );
    }
}
