//! The native `/v1/events` body as the gateway decides it
//! (`gateway/src/ingest.rs`: `ingest_batch`, then `decode`): the batch read
//! borrowed, each event through `IncomingEvent::decode` and `admit`.
//!
//! Asserts, for every admitted event: it serialises to the `events.raw` wire
//! form, which decodes back to the same event and re-serialises to the same
//! bytes; the wire form is JSON every strict parser reads (a `Value` tree:
//! no lone surrogate, no number beyond a double, depth within serde's 128);
//! its name and `user_id` keep the contract (no control characters, name not
//! blank, lengths within the limits); its `properties` is an object within
//! the depth limit. Every rejection carries a non-empty message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_core::json_text;
use sluice_core::{Event, IncomingEvent, Limits, Timestamp};
use sluice_fuzz::{BatchBody, nesting_depth};
use uuid::Uuid;

/// A fixed receive time, so the timestamp window is the same on every run.
const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(batch) = serde_json::from_str::<BatchBody<'_>>(text) else {
        return;
    };
    let limits = Limits::default();
    for raw in &batch.events {
        let admitted = IncomingEvent::decode(raw, &limits)
            .and_then(|incoming| incoming.admit("team-f", NOW, &limits, || Uuid::from_u128(1)));
        let event = match admitted {
            Ok(event) => event,
            Err(reject) => {
                assert!(!reject.message.is_empty(), "{:?}", reject.code);
                continue;
            }
        };
        check_contract(&event, &limits);
        let wire = serde_json::to_string(&event).expect("an admitted event serialises");
        let back: Event<'_> = serde_json::from_str(&wire).expect("the wire form decodes");
        assert_eq!(back.event_id, event.event_id);
        assert_eq!(back.team_id, event.team_id);
        assert_eq!(back.event, event.event);
        assert_eq!(back.user_id, event.user_id);
        assert_eq!(back.timestamp, event.timestamp);
        assert_eq!(back.received_at, event.received_at);
        assert_eq!(back.schema_version, event.schema_version);
        assert_eq!(back.properties.get(), event.properties.get());
        assert_eq!(
            back.context.map(|c| c.get()),
            event.context.map(|c| c.get())
        );
        assert_eq!(serde_json::to_string(&back).expect("re-serialises"), wire);
        // What a strict consumer (the loader, ClickHouse, a plugin SDK) reads.
        let tree: Value = serde_json::from_str(&wire)
            .unwrap_or_else(|e| panic!("admitted event is not strict JSON ({e}): {wire}"));
        assert!(tree["properties"].is_object());
    }
});

fn check_contract(event: &Event<'_>, limits: &Limits) {
    for (field, text, max) in [
        ("event", &*event.event, limits.max_event_name_bytes),
        ("user_id", &*event.user_id, limits.max_user_id_bytes),
    ] {
        assert!(!text.is_empty() && text.len() <= max, "{field}: {text:?}");
        assert!(!text.chars().any(char::is_control), "{field}: {text:?}");
    }
    assert!(!event.event.trim().is_empty(), "blank name admitted");
    assert!(event.event_id != Uuid::nil());
    assert!(Timestamp::checked(event.timestamp.as_millis()).is_ok());
    for (field, raw) in [
        ("properties", Some(event.properties)),
        ("context", event.context),
    ] {
        let Some(raw) = raw else { continue };
        let text = raw.get();
        assert!(text.starts_with('{'), "{field} is not an object: {text}");
        assert!(
            nesting_depth(text) <= limits.max_json_depth,
            "{field} deeper than {}: {text}",
            limits.max_json_depth
        );
        assert_eq!(json_text::check(text, limits.max_json_depth), Ok(()));
    }
}
