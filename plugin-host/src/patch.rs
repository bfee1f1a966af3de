//! Applying a `sluice:plugin@0.2.0` enricher's patch: a JSON merge patch
//! (RFC 7396) over the event object the plugin was sent.
//!
//! Only what an enricher may change can be patched (`name`, `user_id`,
//! `timestamp_ms`, `properties`, `context`); anything else is a breach of
//! the contract, reported as an error for the chain to count as the
//! plugin's failure. The merge works on raw JSON: members the patch does not
//! touch keep their text (spacing, number spelling, order), so an enricher
//! that adds one property does not re-serialise the others. The patched
//! event is checked against the event contract afterwards, like a client's
//! (`convert::OwnedEvent::from_wit`).

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::bindings::Event;

/// Why a patch cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("patch is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("patch may not change `{0}`")]
    Forbidden(String),
    #[error("patch gives `{field}` a {found}; it must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
}

/// `event` with `patch` applied.
pub fn apply(event: &Event, patch: &str) -> Result<Event, PatchError> {
    let members = members(patch).map_err(|e| PatchError::NotAnObject(e.to_string()))?;
    let mut patched = event.clone();
    for (key, value) in members {
        match key.as_str() {
            "name" => patched.name = string("name", value)?,
            "user_id" => patched.user_id = string("user_id", value)?,
            "timestamp_ms" => {
                patched.timestamp_ms =
                    serde_json::from_str(value.get()).map_err(|_| PatchError::WrongType {
                        field: "timestamp_ms",
                        expected: "an integer",
                        found: kind(value),
                    })?;
            }
            "properties" => {
                if kind(value) != "object" {
                    return Err(PatchError::WrongType {
                        field: "properties",
                        expected: "an object (its members are merged)",
                        found: kind(value),
                    });
                }
                patched.properties = merge(Some(&patched.properties), value)?;
            }
            "context" => match kind(value) {
                "null" => patched.context = None,
                "object" => patched.context = Some(merge(patched.context.as_deref(), value)?),
                found => {
                    return Err(PatchError::WrongType {
                        field: "context",
                        expected: "an object or null",
                        found,
                    });
                }
            },
            other => return Err(PatchError::Forbidden(other.to_owned())),
        }
    }
    Ok(patched)
}

fn string(field: &'static str, value: &RawValue) -> Result<String, PatchError> {
    serde_json::from_str(value.get()).map_err(|_| PatchError::WrongType {
        field,
        expected: "a string",
        found: kind(value),
    })
}

/// The JSON type of a (valid) raw value, from its first byte.
fn kind(value: &RawValue) -> &'static str {
    match value.get().trim_start().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "boolean",
        _ => "number",
    }
}

/// RFC 7396 `MergePatch(target, patch)` for an object `patch`, on raw text:
/// `target` is an object's text, or `None` (not an object: start empty).
/// Members borrow the target's text; only merged values are new.
fn merge(target: Option<&str>, patch: &RawValue) -> Result<String, PatchError> {
    let invalid = |e: serde_json::Error| PatchError::NotAnObject(e.to_string());
    let mut merged: Vec<(Key<'_>, Cow<'_, str>)> = match target {
        Some(text) => members(text)
            .map_err(invalid)?
            .into_iter()
            .map(|(k, v)| (k, Cow::Borrowed(v.get())))
            .collect(),
        None => Vec::new(),
    };
    for (key, value) in members(patch.get()).map_err(invalid)? {
        match kind(value) {
            "null" => merged.retain(|(k, _)| *k != key),
            "object" => {
                // A duplicate key: JSON parsers keep the last one.
                let current = merged.iter().rev().find(|(k, _)| *k == key);
                let nested = current
                    .map(|(_, v)| v.as_ref())
                    .filter(|v| v.trim_start().starts_with('{'));
                let inner = merge(nested, value)?;
                set(&mut merged, key, Cow::Owned(inner));
            }
            _ => set(&mut merged, key, Cow::Borrowed(value.get())),
        }
    }
    let size: usize = merged.iter().map(|(k, v)| k.0.len() + v.len() + 4).sum();
    let mut text = String::with_capacity(size + 2);
    text.push('{');
    for (i, (key, value)) in merged.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        key.write(&mut text);
        text.push(':');
        text.push_str(value);
    }
    text.push('}');
    Ok(text)
}

/// An object key, borrowed from the JSON text when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key<'a>(Cow<'a, str>);

impl Key<'_> {
    fn write(&self, text: &mut String) {
        match &self.0 {
            // Borrowed: the key's text between its quotes, as it came.
            Cow::Borrowed(raw) => {
                text.push('"');
                text.push_str(raw);
                text.push('"');
            }
            Cow::Owned(decoded) => {
                text.push_str(&serde_json::to_string(decoded).unwrap_or_default());
            }
        }
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Replaces the first member called `key` (dropping any later duplicate),
/// or appends it.
fn set<'a>(members: &mut Vec<(Key<'a>, Cow<'a, str>)>, key: Key<'a>, value: Cow<'a, str>) {
    match members.iter().position(|(k, _)| *k == key) {
        Some(first) => {
            members[first].1 = value;
            let mut at = 0;
            members.retain(|(k, _)| {
                at += 1;
                at - 1 <= first || *k != key
            });
        }
        None => members.push((key, value)),
    }
}

/// An object's members in order, values as raw text (duplicates kept).
fn members(text: &str) -> Result<Vec<(Key<'_>, &RawValue)>, serde_json::Error> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(Key<'de>, &'de RawValue)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
            while let Some(entry) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let out = (&mut de).deserialize_map(Members)?;
    de.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            event_id: "0190a0b0-0000-7000-8000-000000000001".to_owned(),
            team_id: "team-a".to_owned(),
            name: "Signed Up".to_owned(),
            user_id: "u1".to_owned(),
            timestamp_ms: 1_800_000_000_000,
            received_at_ms: 1_800_000_000_005,
            schema_version: 2,
            properties: r#"{"email": "a@b.c", "plan":"pro", "n": 1.50, "deep": {"a": 1, "b": 2}}"#
                .to_owned(),
            context: Some(r#"{"ip":"10.0.0.1","locale":"en"}"#.to_owned()),
        }
    }

    #[test]
    fn members_merge_and_untouched_text_is_kept() {
        let patched = apply(
            &event(),
            r#"{"properties":{"email":null,"email_hash":"sha256:ab","deep":{"a":null,"c":3}},"context":{"ip":"sha256:cd"}}"#,
        )
        .unwrap();
        assert_eq!(
            patched.properties,
            r#"{"plan":"pro","n":1.50,"deep":{"b":2,"c":3},"email_hash":"sha256:ab"}"#
        );
        assert_eq!(
            patched.context.as_deref(),
            Some(r#"{"ip":"sha256:cd","locale":"en"}"#)
        );
        assert_eq!(patched.event_id, event().event_id);
        assert_eq!(patched.name, "Signed Up");
    }

    #[test]
    fn names_times_and_the_context_can_be_replaced_or_removed() {
        let patched = apply(
            &event(),
            r#"{"name":"Account Created","user_id":"u2","timestamp_ms":1800000000001,"context":null}"#,
        )
        .unwrap();
        assert_eq!(
            (patched.name.as_str(), patched.user_id.as_str()),
            ("Account Created", "u2")
        );
        assert_eq!(patched.timestamp_ms, 1_800_000_000_001);
        assert_eq!(patched.context, None);
        let mut none = event();
        none.context = None;
        let patched = apply(&none, r#"{"context":{"ip":null,"source":"crm"}}"#).unwrap();
        assert_eq!(patched.context.as_deref(), Some(r#"{"source":"crm"}"#));
        assert_eq!(apply(&event(), "{}").unwrap(), event());
    }

    #[test]
    fn duplicates_collapse_to_the_patched_value() {
        let mut dup = event();
        dup.properties = r#"{"a":1,"b":2,"a":3}"#.to_owned();
        let patched = apply(&dup, r#"{"properties":{"a":4}}"#).unwrap();
        assert_eq!(patched.properties, r#"{"a":4,"b":2}"#);
        let patched = apply(&dup, r#"{"properties":{"a":null}}"#).unwrap();
        assert_eq!(patched.properties, r#"{"b":2}"#);
    }

    #[test]
    fn escaped_keys_are_compared_decoded_and_written_as_json() {
        let mut escaped = event();
        escaped.properties = r#"{"a\u0041":1,"q\"":2,"plain":3}"#.to_owned();
        let patched = apply(&escaped, r#"{"properties":{"q\"":4,"aA":null}}"#).unwrap();
        assert_eq!(patched.properties, r#"{"q\"":4,"plain":3}"#);
    }

    #[test]
    fn what_an_enricher_may_not_do_is_refused() {
        for (patch, why) in [
            (
                r#"{"event_id":"0190a0b0-0000-7000-8000-000000000002"}"#,
                "`event_id`",
            ),
            (r#"{"team_id":"team-b"}"#, "`team_id`"),
            (r#"{"received_at_ms":0}"#, "`received_at_ms`"),
            (r#"{"schema_version":4294967295}"#, "`schema_version`"),
            (r#"{"properties":null}"#, "`properties` a null"),
            (r#"{"properties":[1]}"#, "`properties` a array"),
            (r#"{"context":"x"}"#, "`context` a string"),
            (r#"{"name":7}"#, "`name` a number"),
            (r#"{"timestamp_ms":"soon"}"#, "`timestamp_ms` a string"),
            (r#"{"timestamp_ms":1.5}"#, "`timestamp_ms` a number"),
            ("[]", "not a JSON object"),
            (r#"{"name":"x"} trailing"#, "not a JSON object"),
            (r#"{"properties":{"a":1}"#, "not a JSON object"),
        ] {
            let err = apply(&event(), patch).unwrap_err().to_string();
            assert!(err.contains(why), "{patch}: {err}");
        }
    }
}
