//! The few fields of an `events.raw` record the aggregator needs. Decoding
//! only these (serde skips `properties` and `context` without building
//! them) keeps the per-event cost low.

use std::borrow::Cow;

use serde::Deserialize;
use sluice_core::Timestamp;

use crate::window::KeyRef;

#[derive(Debug, Deserialize)]
pub struct EventFields<'a> {
    /// Retries of an event carry its id ([`sluice_core::dedup`]).
    pub event_id: uuid::Uuid,
    #[serde(borrow)]
    pub team_id: Cow<'a, str>,
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
}

impl EventFields<'_> {
    pub fn key(&self) -> KeyRef<'_> {
        KeyRef {
            team_id: &self.team_id,
            event: &self.event,
            user_id: &self.user_id,
        }
    }
}

pub fn decode(payload: &[u8]) -> Result<EventFields<'_>, serde_json::Error> {
    serde_json::from_slice(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contract_and_ignores_the_rest() {
        let payload = br#"{"event_id":"0190d6a8-0000-7000-8000-000000000001","team_id":"t","event":"Signed Up","user_id":"u-1","timestamp":"2026-11-26T00:04:59.999Z","received_at":"2026-11-26T00:05:00.000Z","schema_version":1,"properties":{"a":[1,2,{"b":null}]},"geo":"NL"}"#;
        let fields = decode(payload).unwrap();
        assert_eq!(fields.key().event, "Signed Up");
        assert_eq!(
            fields.timestamp.as_millis() + 1,
            fields.received_at.as_millis()
        );
    }

    #[test]
    fn a_record_without_the_contract_is_an_error() {
        assert!(decode(br#"{"team_id":"t"}"#).is_err());
        assert!(decode(b"not json").is_err());
    }
}
