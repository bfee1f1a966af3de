//! [`Batch`]: the events of one call, as the host sends them (WIT record
//! `batch`), and the loops that give every event exactly one result.
//!
//! The export glue turns the host's batch into a [`Batch`] and runs the
//! plugin on it with [`Batch::validate_with`] / [`Batch::enrich_with`];
//! native tests and benchmarks can do the same with
//! [`Batch::encode`], which encodes events exactly as the host does.

use std::fmt;
use std::slice::ChunksExact;

use crate::event::SPAN_NUMBERS;
use crate::{Enriched, Enricher, Event, EventBuf, Fields, Validator, Verdict};

/// The events of one call: one JSON text (an array of objects, one per
/// event) and 16 span numbers per event (see the WIT `batch` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    events: String,
    spans: Vec<u32>,
    fields: Fields,
}

/// Why the host's batch cannot be read (a host fault: the glue traps with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    spans: usize,
    events_len: usize,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.spans == 0 {
            write!(
                f,
                "the batch has {} bytes of events but no spans (the plugin asked for them)",
                self.events_len
            )
        } else {
            write!(
                f,
                "the batch has {} span numbers, not {SPAN_NUMBERS} per event",
                self.spans
            )
        }
    }
}

impl std::error::Error for BatchError {}

impl Batch {
    /// The batch the host sent: `events` (the JSON text), `spans` (16
    /// numbers per event) and the `fields` the plugin declared (what the
    /// host sent besides `event_id` and `name`).
    ///
    /// # Errors
    /// When `spans` is not 16 numbers per event, or empty for a text that
    /// has events (anything but `[]`). Spans are checked when a member is
    /// read, not here.
    pub fn new(events: String, spans: Vec<u32>, fields: Fields) -> Result<Self, BatchError> {
        let empty = spans.is_empty() && matches!(events.trim(), "" | "[]");
        if !spans.len().is_multiple_of(SPAN_NUMBERS) || (spans.is_empty() && !empty) {
            return Err(BatchError {
                spans: spans.len(),
                events_len: events.len(),
            });
        }
        Ok(Self {
            events,
            spans,
            fields,
        })
    }

    /// `events` encoded as the host encodes them for a plugin that
    /// declared `fields`: for native tests (which then see exactly the
    /// members the plugin will get) and benchmarks.
    pub fn encode<'e>(events: impl IntoIterator<Item = &'e EventBuf>, fields: Fields) -> Self {
        let events: Vec<&EventBuf> = events.into_iter().collect();
        let size = events.iter().map(|e| e.encoded_len()).sum::<usize>();
        let mut text = String::with_capacity(size + 2);
        let mut spans = Vec::with_capacity(events.len() * SPAN_NUMBERS);
        text.push('[');
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            spans.extend(event.encode_into(&mut text, fields));
        }
        text.push(']');
        Self {
            events: text,
            spans,
            fields,
        }
    }

    /// How many events the batch has.
    pub fn len(&self) -> usize {
        self.spans.len() / SPAN_NUMBERS
    }

    /// Whether the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The JSON text of the events.
    pub fn events(&self) -> &str {
        &self.events
    }

    /// The fields sent besides `event_id` and `name`.
    pub fn fields(&self) -> Fields {
        self.fields
    }

    /// The events, in order.
    pub fn iter(&self) -> Events<'_> {
        Events {
            text: &self.events,
            spans: self.spans.chunks_exact(SPAN_NUMBERS),
            fields: self.fields,
        }
    }

    /// One verdict per event, in order: what the component returns.
    pub fn validate_with<V: Validator>(&self, plugin: &V) -> Vec<Verdict> {
        self.iter().map(|event| plugin.validate(&event)).collect()
    }

    /// One result per event, in order: what the component returns.
    pub fn enrich_with<E: Enricher>(&self, plugin: &E) -> Vec<Enriched> {
        self.iter().map(|event| plugin.enrich(&event)).collect()
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = Event<'a>;
    type IntoIter = Events<'a>;

    fn into_iter(self) -> Events<'a> {
        self.iter()
    }
}

/// The events of a [`Batch`], in order.
#[derive(Debug, Clone)]
pub struct Events<'a> {
    text: &'a str,
    spans: ChunksExact<'a, u32>,
    fields: Fields,
}

impl<'a> Iterator for Events<'a> {
    type Item = Event<'a>;

    #[inline]
    fn next(&mut self) -> Option<Event<'a>> {
        let spans = self.spans.next()?.first_chunk()?;
        Some(Event::new(self.text, spans, self.fields))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Events<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Patch, PluginError};

    struct NameLength;

    impl Validator for NameLength {
        const FIELDS: Fields = Fields::NONE;

        fn init(_config: &str) -> Result<Self, PluginError> {
            Ok(Self)
        }

        fn validate(&self, event: &Event<'_>) -> Verdict {
            match event.name().len() {
                0 => Verdict::reject("empty_name", "no name"),
                _ => Verdict::accept(),
            }
        }
    }

    struct Tagger;

    impl Enricher for Tagger {
        const FIELDS: Fields = Fields::PROPERTIES;

        fn init(_config: &str) -> Result<Self, PluginError> {
            Ok(Self)
        }

        fn enrich(&self, event: &Event<'_>) -> Enriched {
            if event.property("tagged").is_some() {
                return Enriched::Unchanged;
            }
            let mut patch = Patch::new();
            patch.set_property("tagged", true);
            Enriched::Patched(patch)
        }
    }

    #[test]
    fn one_result_per_event_in_order() {
        let events = [
            EventBuf::new("a"),
            EventBuf::new(""),
            EventBuf::new("c").with_property("tagged", 1),
        ];
        let batch = Batch::encode(&events, Fields::NONE);
        assert_eq!((batch.len(), batch.is_empty()), (3, false));
        let names: Vec<_> = batch.iter().map(|e| e.name().into_owned()).collect();
        assert_eq!(names, ["a", "", "c"]);
        assert_eq!(batch.iter().len(), 3);
        assert_eq!(
            batch.validate_with(&NameLength),
            [
                Verdict::accept(),
                Verdict::reject("empty_name", "no name"),
                Verdict::accept()
            ]
        );
        let batch = Batch::encode(&events, Tagger::FIELDS);
        let results = batch.enrich_with(&Tagger);
        assert_eq!(results.len(), 3);
        assert!(
            matches!(&results[0], Enriched::Patched(p) if p.to_json() == r#"{"properties":{"tagged":true}}"#)
        );
        assert_eq!(results[2], Enriched::Unchanged);
    }

    #[test]
    fn the_hosts_text_and_spans_are_read_as_they_come() {
        let text = r#"[{"event_id":"e1","name":"A","properties":{"x":1}},{"event_id":"e2","name":"B\u0021","properties":{}}]"#;
        // The value after `"key":` at its `n`th occurrence, `len` bytes long.
        let span = |key: &str, n: usize, len: usize| {
            let member = format!("\"{key}\":");
            let (at, _) = text.match_indices(&member).nth(n).unwrap();
            let start = (at + member.len()) as u32;
            [start, start + len as u32]
        };
        let mut spans = Vec::new();
        for (n, name_len, properties_len) in [(0, 3, 7), (1, 9, 2)] {
            let mut event = [0; SPAN_NUMBERS];
            event[0..2].copy_from_slice(&span("event_id", n, 4));
            event[2..4].copy_from_slice(&span("name", n, name_len));
            event[12..14].copy_from_slice(&span("properties", n, properties_len));
            spans.extend(event);
        }
        let batch = Batch::new(text.to_owned(), spans, Fields::PROPERTIES).unwrap();
        let events: Vec<_> = batch
            .iter()
            .map(|e| (e.event_id(), e.name().into_owned(), e.properties()))
            .collect();
        assert_eq!(
            events,
            [
                ("e1", "A".to_owned(), r#"{"x":1}"#),
                ("e2", "B!".to_owned(), "{}")
            ]
        );
    }

    #[test]
    fn empty_batches_and_bad_spans() {
        for (text, spans) in [("[]", 0), ("", 0)] {
            let batch = Batch::new(text.to_owned(), vec![0; spans], Fields::NONE).unwrap();
            assert!(batch.is_empty());
            assert_eq!(batch.validate_with(&NameLength), []);
        }
        let error = Batch::new("[{}]".to_owned(), Vec::new(), Fields::NONE).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the batch has 4 bytes of events but no spans (the plugin asked for them)"
        );
        let error = Batch::new("[{}]".to_owned(), vec![0; 17], Fields::NONE).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the batch has 17 span numbers, not 16 per event"
        );
    }

    #[test]
    #[should_panic(expected = "the span 5..900 of `name` is not within the batch text")]
    fn a_span_outside_the_text_panics_when_read() {
        let mut spans = vec![0; SPAN_NUMBERS];
        spans[0..4].copy_from_slice(&[1, 3, 5, 900]);
        let batch = Batch::new("[\"\"]".to_owned(), spans, Fields::NONE).unwrap();
        let _ = batch.iter().next().unwrap().name();
    }
}
