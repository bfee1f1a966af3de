//! Between the event contract ([`sluice_core::Event`]) and the WIT `event`
//! record plugins see. Events coming back from an enricher are checked like
//! client input: a plugin must not be able to put into Kafka what a client
//! could not.

use std::borrow::Cow;

use serde_json::value::RawValue;
use sluice_core::{Event, Limits, Reject, RejectCode, Timestamp};
use uuid::Uuid;

use crate::bindings;

/// A WIT event with every field empty (no allocation): a placeholder where
/// an event was moved out, and a base for test events.
pub(crate) fn empty_event() -> bindings::Event {
    bindings::Event {
        event_id: String::new(),
        team_id: String::new(),
        name: String::new(),
        user_id: String::new(),
        timestamp_ms: 0,
        received_at_ms: 0,
        schema_version: 0,
        properties: String::new(),
        context: None,
    }
}

pub fn to_wit(event: &Event<'_>) -> bindings::Event {
    bindings::Event {
        event_id: event.event_id.to_string(),
        team_id: event.team_id.to_string(),
        name: event.event.to_string(),
        user_id: event.user_id.to_string(),
        timestamp_ms: event.timestamp.as_millis(),
        received_at_ms: event.received_at.as_millis(),
        schema_version: event.schema_version,
        properties: event.properties.get().to_owned(),
        context: event.context.map(|c| c.get().to_owned()),
    }
}

/// Checks an event an enricher returned for `original` against the rules a
/// client's event must pass, so that the chain can count a breach as the
/// plugin's failure, with its name, before anything reaches Kafka. Fields
/// equal to the original's were checked at admission and are skipped, and
/// so is parsing `properties`/`context` when the host wrote them itself
/// (`json_from_host`: a 0.2 patch, merged by [`crate::patch`], which makes
/// them objects), since [`OwnedEvent::from_wit`] parses them once more when
/// the record is made. The reason says what broke.
pub fn check_enriched(
    original: &bindings::Event,
    changed: &bindings::Event,
    limits: &Limits,
    json_from_host: bool,
) -> Result<(), String> {
    if changed.event_id != original.event_id || changed.team_id != original.team_id {
        return Err("changed event_id or team_id".to_owned());
    }
    // What the gateway stamped is not the plugin's to change.
    if changed.received_at_ms != original.received_at_ms {
        return Err("changed received_at".to_owned());
    }
    if changed.schema_version != original.schema_version {
        return Err("changed schema_version".to_owned());
    }
    if changed.name != original.name {
        limits
            .check_event_name(&changed.name)
            .map_err(|r| format!("returned an invalid event name: {}", r.message))?;
    }
    if changed.user_id != original.user_id {
        limits
            .check_user_id(&changed.user_id)
            .map_err(|r| format!("returned an invalid user_id: {}", r.message))?;
    }
    if changed.timestamp_ms != original.timestamp_ms {
        let received_at = Timestamp::checked(original.received_at_ms)
            .map_err(|e| format!("the event's received_at is out of range: {e}"))?;
        let timestamp = Timestamp::checked(changed.timestamp_ms)
            .map_err(|e| format!("returned a bad timestamp: {e}"))?;
        limits
            .check_timestamp(timestamp, received_at)
            .map_err(|r| format!("returned a timestamp out of range: {}", r.message))?;
    }
    let json = |field: &str, text: &str| -> Result<(), String> {
        serde_json::from_str::<&RawValue>(text)
            .map_err(|e| format!("returned {field} that are not JSON: {e}"))?;
        limits
            .check_object(field, text)
            .map_err(|r| format!("returned invalid {field}: {}", r.message))
    };
    if json_from_host {
        return Ok(());
    }
    if changed.properties != original.properties {
        json("properties", &changed.properties)?;
    }
    if let Some(context) = &changed.context
        && original.context.as_ref() != Some(context)
    {
        json("context", context)?;
    }
    Ok(())
}

/// An event an enricher changed, checked against the contract. Its
/// `properties` and `context` borrow the admitted event's when the plugin
/// returned them unchanged (they were checked at admission), and own the
/// plugin's text when it changed them.
#[derive(Debug)]
pub struct OwnedEvent<'a> {
    event_id: Uuid,
    team_id: String,
    name: String,
    user_id: String,
    timestamp: Timestamp,
    received_at: Timestamp,
    schema_version: u32,
    properties: Cow<'a, RawValue>,
    context: Option<Cow<'a, RawValue>>,
}

fn contract(message: String) -> Reject {
    Reject::new(RejectCode::PluginFailed, message)
}

impl<'a> OwnedEvent<'a> {
    /// Checks an event returned by a plugin for `original` against the
    /// contract. A JSON field identical to the original's is not parsed
    /// again (comparing is far cheaper than parsing).
    pub fn from_wit(
        event: bindings::Event,
        original: &Event<'a>,
        limits: &Limits,
    ) -> Result<Self, Reject> {
        let event_id = event.event_id.parse().map_err(|_| {
            contract(format!(
                "plugin returned an invalid event_id `{}`",
                event.event_id
            ))
        })?;
        limits.check_event_name(&event.name)?;
        limits.check_user_id(&event.user_id)?;
        // What the gateway stamped is not the plugin's to change (a 0.2
        // patch cannot; a 0.1 plugin returns whole events, so check).
        if event.received_at_ms != original.received_at.as_millis() {
            return Err(contract("plugin changed received_at".to_owned()));
        }
        if event.schema_version != original.schema_version {
            return Err(contract("plugin changed schema_version".to_owned()));
        }
        let received_at = original.received_at;
        // The same bounds as a client's timestamp, against the same
        // receive time: a plugin may not date an event into 2100 or 1971.
        let timestamp = Timestamp::checked(event.timestamp_ms)
            .map_err(|e| contract(format!("plugin returned a bad timestamp: {e}")))?;
        limits
            .check_timestamp(timestamp, received_at)
            .map_err(|e| {
                contract(format!(
                    "plugin returned a timestamp out of range: {}",
                    e.message
                ))
            })?;
        let properties = if event.properties == original.properties.get() {
            Cow::Borrowed(original.properties)
        } else {
            let raw = RawValue::from_string(event.properties).map_err(|e| {
                contract(format!("plugin returned properties that are not JSON: {e}"))
            })?;
            limits.check_object("properties", raw.get())?;
            Cow::Owned(raw)
        };
        let context = match (event.context, original.context) {
            (Some(text), Some(before)) if text == before.get() => Some(Cow::Borrowed(before)),
            (Some(text), _) => {
                let raw = RawValue::from_string(text).map_err(|e| {
                    contract(format!("plugin returned a context that is not JSON: {e}"))
                })?;
                limits.check_object("context", raw.get())?;
                Some(Cow::Owned(raw))
            }
            (None, _) => None,
        };
        Ok(Self {
            event_id,
            team_id: event.team_id,
            name: event.name,
            user_id: event.user_id,
            timestamp,
            received_at,
            schema_version: event.schema_version,
            properties,
            context,
        })
    }

    pub fn event_id(&self) -> Uuid {
        self.event_id
    }

    pub fn as_event(&self) -> Event<'_> {
        Event {
            event_id: self.event_id,
            team_id: Cow::Borrowed(&self.team_id),
            event: Cow::Borrowed(&self.name),
            user_id: Cow::Borrowed(&self.user_id),
            timestamp: self.timestamp,
            received_at: self.received_at,
            schema_version: self.schema_version,
            properties: &self.properties,
            context: self.context.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted<'a>(properties: &'a RawValue, context: Option<&'a RawValue>) -> Event<'a> {
        Event {
            event_id: Uuid::nil(),
            team_id: Cow::Borrowed("team-a"),
            event: Cow::Borrowed("Signed Up"),
            user_id: Cow::Borrowed("u1"),
            timestamp: Timestamp::checked(1_800_000_000_000).unwrap(),
            received_at: Timestamp::checked(1_800_000_000_000).unwrap(),
            schema_version: 1,
            properties,
            context,
        }
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn unchanged_fields_are_borrowed_and_changed_ones_checked() {
        let (properties, context) = (raw(r#"{"plan":"pro"}"#), raw(r#"{"ip":"10.0.0.1"}"#));
        let original = admitted(&properties, Some(&context));
        let limits = Limits::default();

        let mut same = to_wit(&original);
        same.context = Some(r#"{"ip":"sha256:ab"}"#.to_owned());
        let owned = OwnedEvent::from_wit(same, &original, &limits).unwrap();
        assert!(matches!(owned.properties, Cow::Borrowed(_)));
        assert!(matches!(owned.context, Some(Cow::Owned(_))));
        let event = owned.as_event();
        assert_eq!(event.properties.get(), r#"{"plan":"pro"}"#);
        assert_eq!(event.context.unwrap().get(), r#"{"ip":"sha256:ab"}"#);

        let mut broken = to_wit(&original);
        broken.properties = r#"{"plan": "#.to_owned();
        let err = OwnedEvent::from_wit(broken, &original, &limits).unwrap_err();
        assert!(
            err.message.contains("properties that are not JSON"),
            "{err}"
        );

        let mut not_object = to_wit(&original);
        not_object.context = Some("[1]".to_owned());
        assert!(OwnedEvent::from_wit(not_object, &original, &limits).is_err());

        let mut dropped = to_wit(&original);
        dropped.context = None;
        let owned = OwnedEvent::from_wit(dropped, &original, &limits).unwrap();
        assert!(owned.as_event().context.is_none());
    }

    #[test]
    fn a_plugin_may_not_restamp_or_misdate_an_event() {
        let properties = raw("{}");
        let original = admitted(&properties, None);
        let limits = Limits::default();
        let received = original.received_at.as_millis();
        let refused = |change: fn(&mut bindings::Event, i64)| {
            let mut event = to_wit(&original);
            change(&mut event, received);
            OwnedEvent::from_wit(event, &original, &limits)
                .unwrap_err()
                .message
        };
        assert!(refused(|e, _| e.received_at_ms = 0).contains("received_at"));
        assert!(refused(|e, _| e.schema_version = u32::MAX).contains("schema_version"));
        // 2100 and 1971: out of the client bounds around the receive time.
        assert!(refused(|e, _| e.timestamp_ms = 4_102_444_800_000).contains("out of range"));
        assert!(refused(|e, _| e.timestamp_ms = 31_536_000_000).contains("out of range"));
        // Within the bounds a plugin may move the time.
        let mut earlier = to_wit(&original);
        earlier.timestamp_ms = received - 60_000;
        assert!(OwnedEvent::from_wit(earlier, &original, &limits).is_ok());
    }
}
