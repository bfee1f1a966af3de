//! Between the event contract ([`sluice_core::Event`]) and the WIT `event`
//! record plugins see. Events coming back from an enricher are checked like
//! client input: a plugin must not be able to put into Kafka what a client
//! could not.

use std::borrow::Cow;

use serde_json::value::RawValue;
use sluice_core::{Event, Limits, Reject, RejectCode, Timestamp};
use uuid::Uuid;

use super::bindings;

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

/// An event that came back from the plugin chain, owning its JSON.
#[derive(Debug)]
pub struct OwnedEvent {
    event_id: Uuid,
    team_id: String,
    name: String,
    user_id: String,
    timestamp: Timestamp,
    received_at: Timestamp,
    schema_version: u32,
    properties: Box<RawValue>,
    context: Option<Box<RawValue>>,
}

fn contract(message: String) -> Reject {
    Reject::new(RejectCode::PluginFailed, message)
}

impl OwnedEvent {
    /// Checks an event returned by a plugin against the contract.
    pub fn from_wit(event: bindings::Event, limits: &Limits) -> Result<Self, Reject> {
        let event_id = event.event_id.parse().map_err(|_| {
            contract(format!(
                "plugin returned an invalid event_id `{}`",
                event.event_id
            ))
        })?;
        limits.check_event_name(&event.name)?;
        limits.check_user_id(&event.user_id)?;
        let timestamp = Timestamp::checked(event.timestamp_ms)
            .map_err(|e| contract(format!("plugin returned a bad timestamp: {e}")))?;
        let received_at = Timestamp::checked(event.received_at_ms)
            .map_err(|e| contract(format!("plugin returned a bad received_at: {e}")))?;
        let properties = RawValue::from_string(event.properties)
            .map_err(|e| contract(format!("plugin returned properties that are not JSON: {e}")))?;
        limits.check_object("properties", properties.get())?;
        let context = match event.context {
            Some(text) => {
                let raw = RawValue::from_string(text).map_err(|e| {
                    contract(format!("plugin returned a context that is not JSON: {e}"))
                })?;
                limits.check_object("context", raw.get())?;
                Some(raw)
            }
            None => None,
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
