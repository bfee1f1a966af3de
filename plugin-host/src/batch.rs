//! Encoding a batch for a `sluice:plugin@0.2.0` call: every event as one
//! JSON text (only the fields the plugin declared), and, for guests that
//! slice rather than parse, the byte span of each member's value.
//!
//! One text per call is the point of 0.2: the canonical ABI copies it into
//! the guest with one allocation, where 0.1's record of strings took six
//! per event. `properties` and `context` were checked as JSON objects at
//! admission (or by the patch that changed them), so they are copied in
//! as they are; strings are escaped by `serde_json`.

use std::fmt::Write as _;

use crate::bindings::Event;
use crate::bindings::v0_2::{Batch, Fields, Needs};

/// Members per event in `Batch::spans`, two numbers each (see the WIT).
pub const SPAN_SLOTS: usize = 8;

/// The batch a 0.2 plugin with `needs` receives for `events`.
pub fn encode(events: &[Event], needs: Needs) -> Batch {
    let fields = needs.fields;
    let size: usize = events.iter().map(|e| encoded_size(e, fields)).sum();
    let mut out = Encoder {
        text: String::with_capacity(size + 2),
        spans: if needs.spans {
            Vec::with_capacity(events.len() * SPAN_SLOTS * 2)
        } else {
            Vec::new()
        },
        with_spans: needs.spans,
    };
    out.text.push('[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.text.push(',');
        }
        out.event(event, fields);
    }
    out.text.push(']');
    Batch {
        events: out.text,
        spans: out.spans,
    }
}

/// An upper estimate of an event's encoded length (escapes aside), to
/// allocate the text once.
fn encoded_size(event: &Event, fields: Fields) -> usize {
    let mut n = 32 + event.event_id.len() + event.name.len();
    if fields.contains(Fields::USER_ID) {
        n += 12 + event.user_id.len();
    }
    if fields.contains(Fields::TIMES) {
        n += 60;
    }
    if fields.contains(Fields::SCHEMA_VERSION) {
        n += 30;
    }
    if fields.contains(Fields::PROPERTIES) {
        n += 14 + event.properties.len();
    }
    if fields.contains(Fields::CONTEXT) {
        n += 11 + event.context.as_ref().map_or(0, String::len);
    }
    n
}

struct Encoder {
    text: String,
    spans: Vec<u32>,
    with_spans: bool,
}

impl Encoder {
    fn event(&mut self, event: &Event, fields: Fields) {
        let mut slots = [(0u32, 0u32); SPAN_SLOTS];
        self.text.push('{');
        slots[0] = self.member("event_id", true, |t| string(t, &event.event_id));
        slots[1] = self.member("name", false, |t| string(t, &event.name));
        if fields.contains(Fields::USER_ID) {
            slots[2] = self.member("user_id", false, |t| string(t, &event.user_id));
        }
        if fields.contains(Fields::TIMES) {
            slots[3] = self.member("timestamp_ms", false, |t| number(t, event.timestamp_ms));
            slots[4] = self.member("received_at_ms", false, |t| number(t, event.received_at_ms));
        }
        if fields.contains(Fields::SCHEMA_VERSION) {
            let version = i64::from(event.schema_version);
            slots[5] = self.member("schema_version", false, |t| number(t, version));
        }
        if fields.contains(Fields::PROPERTIES) {
            slots[6] = self.member("properties", false, |t| t.push_str(&event.properties));
        }
        if let Some(context) = event
            .context
            .as_deref()
            .filter(|_| fields.contains(Fields::CONTEXT))
        {
            slots[7] = self.member("context", false, |t| t.push_str(context));
        }
        self.text.push('}');
        if self.with_spans {
            for (start, end) in slots {
                self.spans.extend([start, end]);
            }
        }
    }

    /// Writes `"key":value` (after a comma unless `first`) and returns the
    /// value's byte span.
    fn member(&mut self, key: &str, first: bool, value: impl FnOnce(&mut String)) -> (u32, u32) {
        if !first {
            self.text.push(',');
        }
        self.text.push('"');
        self.text.push_str(key);
        self.text.push_str("\":");
        let start = self.text.len();
        value(&mut self.text);
        // A batch is far below 4 GiB: calls are bounded by
        // `max_bytes_per_call` (and a component's memory by its limit).
        (start as u32, self.text.len() as u32)
    }
}

fn string(text: &mut String, value: &str) {
    // Ids, names and user ids rarely need escaping: copy those straight in,
    // without the allocation of a serialised copy (this runs for every
    // event, per plugin).
    let plain = value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        text.push('"');
        text.push_str(value);
        text.push('"');
    } else {
        // Writing JSON into a String cannot fail.
        text.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
}

fn number(text: &mut String, value: i64) {
    let _ = write!(text, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            event_id: "0190a0b0-0000-7000-8000-000000000001".to_owned(),
            team_id: "team-a".to_owned(),
            name: "Signed \"Up\"".to_owned(),
            user_id: "u1".to_owned(),
            timestamp_ms: 1_800_000_000_000,
            received_at_ms: 1_800_000_000_005,
            schema_version: 2,
            properties: r#"{"plan":"pro"}"#.to_owned(),
            context: Some(r#"{"ip":"10.0.0.1"}"#.to_owned()),
        }
    }

    #[test]
    fn only_declared_fields_are_sent_in_the_documented_order() {
        let needs = Needs {
            fields: Fields::empty(),
            spans: false,
        };
        let batch = encode(&[event()], needs);
        assert_eq!(
            batch.events,
            r#"[{"event_id":"0190a0b0-0000-7000-8000-000000000001","name":"Signed \"Up\""}]"#
        );
        assert!(batch.spans.is_empty());

        let all = Needs {
            fields: Fields::all(),
            spans: false,
        };
        let batch = encode(&[event(), event()], all);
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&batch.events).unwrap();
        assert_eq!(parsed.len(), 2);
        let keys: Vec<&str> = parsed[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // serde_json's map sorts keys; the text order is checked below.
        assert_eq!(keys.len(), 8);
        assert!(batch.events.starts_with(
            r#"[{"event_id":"0190a0b0-0000-7000-8000-000000000001","name":"Signed \"Up\"","user_id":"u1","timestamp_ms":1800000000000,"received_at_ms":1800000000005,"schema_version":2,"properties":{"plan":"pro"},"context":{"ip":"10.0.0.1"}}"#
        ));
        assert_eq!(parsed[1]["properties"]["plan"], "pro");
    }

    #[test]
    fn spans_point_at_each_value() {
        let mut second = event();
        second.context = None;
        let needs = Needs {
            fields: Fields::PROPERTIES | Fields::CONTEXT | Fields::USER_ID,
            spans: true,
        };
        let batch = encode(&[event(), second], needs);
        assert_eq!(batch.spans.len(), 2 * SPAN_SLOTS * 2);
        let value = |event: usize, slot: usize| {
            let at = (event * SPAN_SLOTS + slot) * 2;
            let (start, end) = (batch.spans[at] as usize, batch.spans[at + 1] as usize);
            &batch.events[start..end]
        };
        assert_eq!(value(0, 0), "\"0190a0b0-0000-7000-8000-000000000001\"");
        assert_eq!(value(0, 1), r#""Signed \"Up\"""#);
        assert_eq!(value(0, 2), "\"u1\"");
        assert_eq!(value(0, 3), "", "times were not declared");
        assert_eq!(value(0, 6), r#"{"plan":"pro"}"#);
        assert_eq!(value(0, 7), r#"{"ip":"10.0.0.1"}"#);
        assert_eq!(value(1, 6), r#"{"plan":"pro"}"#);
        assert_eq!(value(1, 7), "", "no context, no member");
        assert!(!batch.events[batch.events.len() / 2..].contains("context"));
    }

    #[test]
    fn strings_that_need_escaping_are_escaped() {
        let mut odd = event();
        odd.name = "tab\there \"quoted\" back\\slash \u{1}".to_owned();
        odd.user_id = "plain é ✓".to_owned();
        let needs = Needs {
            fields: Fields::USER_ID,
            spans: false,
        };
        let parsed: serde_json::Value =
            serde_json::from_str(&encode(&[odd.clone()], needs).events).unwrap();
        assert_eq!(parsed[0]["name"], odd.name.as_str());
        assert_eq!(parsed[0]["user_id"], odd.user_id.as_str());
    }
}
