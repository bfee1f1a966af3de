//! Per-event rules and the stable reason codes a rejected event carries.
//!
//! Codes are part of the public API: clients branch on them, dashboards group
//! the dead-letter topic by them. Add new codes freely; never rename one.
//!
//! ## Clock-skew rule
//! The gateway stamps every event with `received_at` (its own clock). An event's
//! client `timestamp` may lie at most [`Limits::max_future_skew_ms`] after
//! `received_at` (default 1 hour: devices with wrong clocks exist, but an event
//! from tomorrow would corrupt rollups) and at most [`Limits::max_past_age_ms`]
//! before it (default 30 days: offline mobile queues flush late, but older data
//! would land in partitions whose rollups were already read). Events outside
//! the window are rejected, not corrected, so the client learns its clock is wrong.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Why an event was refused. Serialised in `snake_case` (e.g. `missing_field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The event is not a JSON object.
    NotAnObject,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    InvalidType,
    /// A field has the right type but an unusable value (bad UUID, bad timestamp).
    InvalidValue,
    /// A field the contract does not define (often a typo such as `propertes`).
    UnknownField,
    /// The `event` name is empty, too long or contains control characters.
    InvalidEventName,
    /// The `user_id` is empty or longer than the limit.
    InvalidUserId,
    /// `properties` (or `context`) is not a JSON object.
    PropertiesNotObject,
    /// The serialised event is larger than the per-event byte limit.
    EventTooLarge,
    /// The client timestamp lies too far after the gateway's clock.
    TimestampInFuture,
    /// The client timestamp lies too far before the gateway's clock.
    TimestampTooOld,
    /// Another event in the same batch already used this `event_id`.
    DuplicateEventId,
    /// A team plugin rejected the event.
    PluginRejected,
    /// A team plugin failed (trap, CPU or memory limit, broken contract) and
    /// its failure policy refuses the event. Retrying later may succeed.
    PluginFailed,
    /// The event's `properties` do not conform to the schema its
    /// `schema_version` names (the message names the failing path).
    SchemaViolation,
    /// The event name has schemas, but not the `schema_version` it names.
    UnknownSchemaVersion,
    /// The event name has no schema and the team rejects unregistered events.
    UnregisteredEvent,
    /// `properties` or `context` nests objects and arrays deeper than the limit.
    NestingTooDeep,
    /// A number in `properties` or `context` does not fit a double (`1e400`).
    NumberOutOfRange,
    /// A string in `properties` or `context` holds a lone UTF-16 surrogate
    /// escape (`"\udc00"`): not Unicode text, so no consumer can store it.
    InvalidUnicode,
}

impl RejectCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotAnObject => "not_an_object",
            Self::MissingField => "missing_field",
            Self::InvalidType => "invalid_type",
            Self::InvalidValue => "invalid_value",
            Self::UnknownField => "unknown_field",
            Self::InvalidEventName => "invalid_event_name",
            Self::InvalidUserId => "invalid_user_id",
            Self::PropertiesNotObject => "properties_not_object",
            Self::EventTooLarge => "event_too_large",
            Self::TimestampInFuture => "timestamp_in_future",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::DuplicateEventId => "duplicate_event_id",
            Self::PluginRejected => "plugin_rejected",
            Self::PluginFailed => "plugin_failed",
            Self::SchemaViolation => "schema_violation",
            Self::UnknownSchemaVersion => "unknown_schema_version",
            Self::UnregisteredEvent => "unregistered_event",
            Self::NestingTooDeep => "nesting_too_deep",
            Self::NumberOutOfRange => "number_out_of_range",
            Self::InvalidUnicode => "invalid_unicode",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused event: a stable code plus a human sentence naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub code: RejectCode,
    pub message: String,
}

impl Reject {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Classifies a serde error from decoding one event into a stable code.
    ///
    /// serde's derive emits a small, fixed set of messages ("missing field `x`",
    /// "invalid type: ...", "unknown field `x`", ...); mapping them here keeps
    /// the hot path on the fast borrowed decoder instead of a generic value tree.
    pub fn from_decode_error(err: &serde_json::Error) -> Self {
        let text = err.to_string();
        // Drop serde_json's " at line 1 column 42" suffix: positions inside one
        // event mean nothing to a client that sent a whole batch.
        let message = match text.rfind(" at line ") {
            Some(pos) => text[..pos].to_owned(),
            None => text,
        };
        let code = if message.starts_with("missing field") {
            RejectCode::MissingField
        } else if message.starts_with("unknown field") {
            RejectCode::UnknownField
        } else if message.starts_with("invalid type") {
            RejectCode::InvalidType
        } else {
            RejectCode::InvalidValue
        };
        Self { code, message }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Limits applied to every event. Defaults suit mobile and web analytics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted event, in bytes of its JSON text as sent.
    pub max_event_bytes: usize,
    /// Longest accepted `user_id`, in bytes.
    pub max_user_id_bytes: usize,
    /// Longest accepted `event` name, in bytes.
    pub max_event_name_bytes: usize,
    /// How far a client timestamp may lie after the gateway's clock.
    pub max_future_skew_ms: i64,
    /// How far a client timestamp may lie before the gateway's clock.
    pub max_past_age_ms: i64,
    /// Deepest nesting of objects and arrays in `properties` and `context`
    /// (the object itself is level 1). The plugin SDKs read 127 levels; a
    /// lower limit keeps an event the same with and without plugins.
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 32 * 1024,
            max_user_id_bytes: 256,
            max_event_name_bytes: 200,
            max_future_skew_ms: 60 * 60 * 1000,
            max_past_age_ms: 30 * 24 * 60 * 60 * 1000,
            max_json_depth: 64,
        }
    }
}

impl Limits {
    pub fn check_event_name(&self, name: &str) -> Result<(), Reject> {
        if name.is_empty() || name.len() > self.max_event_name_bytes {
            return Err(Reject::new(
                RejectCode::InvalidEventName,
                format!(
                    "`event` must be 1 to {} bytes, got {}",
                    self.max_event_name_bytes,
                    name.len()
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Reject::new(
                RejectCode::InvalidEventName,
                "`event` must not contain control characters",
            ));
        }
        if name.trim().is_empty() {
            return Err(Reject::new(
                RejectCode::InvalidEventName,
                "`event` must not be only whitespace",
            ));
        }
        Ok(())
    }

    pub fn check_user_id(&self, user_id: &str) -> Result<(), Reject> {
        if user_id.is_empty() || user_id.len() > self.max_user_id_bytes {
            return Err(Reject::new(
                RejectCode::InvalidUserId,
                format!(
                    "`user_id` must be 1 to {} bytes, got {}",
                    self.max_user_id_bytes,
                    user_id.len()
                ),
            ));
        }
        // NUL, newlines and other controls would end up in the Kafka key
        // `team:user`, in ClickHouse rows and in terminals reading them.
        if user_id.chars().any(char::is_control) {
            return Err(Reject::new(
                RejectCode::InvalidUserId,
                "`user_id` must not contain control characters",
            ));
        }
        Ok(())
    }

    pub fn check_size(&self, bytes: usize) -> Result<(), Reject> {
        if bytes > self.max_event_bytes {
            return Err(Reject::new(
                RejectCode::EventTooLarge,
                format!(
                    "event is {bytes} bytes, the limit is {}",
                    self.max_event_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Applies the clock-skew rule described in the module docs.
    pub fn check_timestamp(&self, ts: Timestamp, received_at: Timestamp) -> Result<(), Reject> {
        let delta = ts.as_millis() - received_at.as_millis();
        if delta > self.max_future_skew_ms {
            return Err(Reject::new(
                RejectCode::TimestampInFuture,
                format!(
                    "`timestamp` {ts} is {} s after the gateway clock ({received_at}); at most {} s is allowed",
                    delta / 1000,
                    self.max_future_skew_ms / 1000
                ),
            ));
        }
        if -delta > self.max_past_age_ms {
            return Err(Reject::new(
                RejectCode::TimestampTooOld,
                format!(
                    "`timestamp` {ts} is {} s before the gateway clock ({received_at}); at most {} s is allowed",
                    -delta / 1000,
                    self.max_past_age_ms / 1000
                ),
            ));
        }
        Ok(())
    }

    /// Checks a JSON text is an object (`properties`, `context`).
    pub fn check_object(&self, field: &str, raw: &str) -> Result<(), Reject> {
        if !raw.trim_start().starts_with('{') {
            return Err(Reject::new(
                RejectCode::PropertiesNotObject,
                format!("`{field}` must be a JSON object"),
            ));
        }
        crate::json_text::check(raw, self.max_json_depth)
            .map_err(|problem| json_reject(field, problem))
    }
}

/// The refusal for what [`crate::json_text::check`] found in `field`.
fn json_reject(field: &str, problem: crate::json_text::Problem) -> Reject {
    use crate::json_text::Problem;
    match problem {
        Problem::TooDeep { limit } => Reject::new(
            RejectCode::NestingTooDeep,
            format!("`{field}` nests objects and arrays deeper than {limit} levels"),
        ),
        Problem::NumberOutOfRange { number } => Reject::new(
            RejectCode::NumberOutOfRange,
            format!("`{field}` holds the number {number}, which does not fit a double"),
        ),
        Problem::LoneSurrogate { escape } => Reject::new(
            RejectCode::InvalidUnicode,
            format!("`{field}` holds the lone UTF-16 surrogate escape {escape}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_users_with_controls_or_only_spaces_are_refused() {
        let limits = Limits::default();
        for name in ["   ", "\t", "a\u{0}b", "line\nbreak"] {
            assert_eq!(
                limits.check_event_name(name).unwrap_err().code,
                RejectCode::InvalidEventName,
                "{name:?}"
            );
        }
        assert!(limits.check_event_name(" Signed Up ").is_ok());
        for user in ["u\0", "u\n1", "\u{1b}[2K"] {
            assert_eq!(
                limits.check_user_id(user).unwrap_err().code,
                RejectCode::InvalidUserId,
                "{user:?}"
            );
        }
        assert!(limits.check_user_id("ü-1 @x").is_ok());
    }

    #[test]
    fn properties_are_checked_for_depth_numbers_and_unicode() {
        let limits = Limits::default();
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        for (text, code) in [
            (deep.as_str(), RejectCode::NestingTooDeep),
            (r#"{"n": 1e400}"#, RejectCode::NumberOutOfRange),
            (r#"{"s": "\udc00"}"#, RejectCode::InvalidUnicode),
            ("[1]", RejectCode::PropertiesNotObject),
        ] {
            let reject = limits.check_object("properties", text).unwrap_err();
            assert_eq!(reject.code, code, "{text}");
            assert!(
                reject.message.contains("`properties`"),
                "{}",
                reject.message
            );
        }
    }

    #[test]
    fn codes_serialise_as_their_stable_names() {
        for code in [
            RejectCode::MissingField,
            RejectCode::TimestampInFuture,
            RejectCode::DuplicateEventId,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn skew_window_is_inclusive_and_explained() {
        let limits = Limits::default();
        let now = Timestamp::from_millis(1_800_000_000_000);
        let at = |d: i64| Timestamp::from_millis(now.as_millis() + d);
        assert!(
            limits
                .check_timestamp(at(limits.max_future_skew_ms), now)
                .is_ok()
        );
        assert!(
            limits
                .check_timestamp(at(-limits.max_past_age_ms), now)
                .is_ok()
        );
        let future = limits
            .check_timestamp(at(limits.max_future_skew_ms + 1), now)
            .unwrap_err();
        assert_eq!(future.code, RejectCode::TimestampInFuture);
        assert!(
            future.message.contains("after the gateway clock"),
            "{}",
            future.message
        );
        let old = limits
            .check_timestamp(at(-limits.max_past_age_ms - 1), now)
            .unwrap_err();
        assert_eq!(old.code, RejectCode::TimestampTooOld);
    }

    #[test]
    fn names_and_user_ids_are_bounded() {
        let limits = Limits::default();
        assert_eq!(
            limits.check_event_name("").unwrap_err().code,
            RejectCode::InvalidEventName
        );
        assert_eq!(
            limits.check_event_name("a\u{7}b").unwrap_err().code,
            RejectCode::InvalidEventName
        );
        assert!(limits.check_event_name("Button Clicked").is_ok());
        let long = "u".repeat(limits.max_user_id_bytes + 1);
        assert_eq!(
            limits.check_user_id(&long).unwrap_err().code,
            RejectCode::InvalidUserId
        );
        assert!(limits.check_user_id("user-1").is_ok());
    }

    #[test]
    fn decode_errors_map_to_stable_codes() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Probe {
            a: u32,
        }
        let cases = [
            ("{}", RejectCode::MissingField),
            ("{\"a\":\"x\"}", RejectCode::InvalidType),
            ("{\"a\":1,\"b\":2}", RejectCode::UnknownField),
        ];
        for (json, code) in cases {
            let err = serde_json::from_str::<Probe>(json).unwrap_err();
            let reject = Reject::from_decode_error(&err);
            assert_eq!(reject.code, code, "{json}: {}", reject.message);
            assert!(!reject.message.contains(" at line "), "{}", reject.message);
        }
    }
}
