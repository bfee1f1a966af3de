//! [`Event`]: a borrowed view of one event of a batch, and [`EventBuf`], an
//! owned event for native tests.
//!
//! In `sluice:plugin@0.2.0` the host sends a batch as one JSON text plus,
//! for guests that ask for them (this SDK always does), the byte span of
//! each member's value. An [`Event`] is that text and the event's 16 span
//! numbers: reading a member is slicing the text, with nothing parsed or
//! copied until the plugin asks (strings are decoded only when they contain
//! an escape). `properties` and `context` come as their raw JSON text, for
//! [`scan`](crate::scan) (cheap) or [`serde_json`] (convenient).

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Fields;
use crate::scan::{self, Str};

/// A JSON object: what [`Event::properties_json`] and [`Event::context_json`]
/// return.
pub type JsonObject = Map<String, Value>;

/// How many span numbers each event has in `batch.spans`: a start and an
/// end offset for each of the eight members (see the WIT `batch` record).
pub(crate) const SPAN_NUMBERS: usize = 16;

/// The members in `batch.spans` order: slot `i` is numbers `2i` and `2i + 1`.
const EVENT_ID: usize = 0;
const NAME: usize = 1;
const USER_ID: usize = 2;
const TIMESTAMP_MS: usize = 3;
const RECEIVED_AT_MS: usize = 4;
const SCHEMA_VERSION: usize = 5;
const PROPERTIES: usize = 6;
const CONTEXT: usize = 7;

/// Member names by slot, for messages.
const MEMBER_NAMES: [&str; 8] = [
    "event_id",
    "name",
    "user_id",
    "timestamp_ms",
    "received_at_ms",
    "schema_version",
    "properties",
    "context",
];

/// One event of a batch (the host's JSON text, sliced by its spans).
///
/// `Copy` and cheap: a reference to the batch text and to the event's
/// spans. Accessors return slices of the batch text (`'a`), so values can be
/// kept while the batch lives.
///
/// `event_id` and `name` are always there. The other members are sent only
/// when the plugin declared them in its `FIELDS` ([`Fields`]); reading an
/// undeclared one **panics** (a trap in the component), with a message
/// naming the flag to declare, because a silent default (no properties, no
/// context) would let a forgotten declaration pass every event unnoticed.
/// Test plugins through [`Batch::encode`](crate::Batch::encode) with their
/// `FIELDS` to catch that natively.
///
/// For unit tests build events with [`EventBuf`].
#[derive(Clone, Copy)]
pub struct Event<'a> {
    text: &'a str,
    spans: &'a [u32; SPAN_NUMBERS],
    fields: Fields,
}

impl<'a> Event<'a> {
    /// The event whose members are at `spans` in `text`, with `fields` sent.
    pub(crate) fn new(text: &'a str, spans: &'a [u32; SPAN_NUMBERS], fields: Fields) -> Self {
        Self {
            text,
            spans,
            fields,
        }
    }

    /// The fields that were sent besides `event_id` and `name`.
    pub fn fields(&self) -> Fields {
        self.fields
    }

    /// UUID of the event, kept across client retries (an enricher cannot
    /// change it).
    pub fn event_id(&self) -> &'a str {
        // A UUID: never escaped.
        self.string(EVENT_ID).raw()
    }

    /// Event name, e.g. `Button Clicked`: borrowed from the batch unless
    /// it contains a JSON escape.
    pub fn name(&self) -> Cow<'a, str> {
        self.string(NAME).decode()
    }

    /// The user the event belongs to (borrowed unless escaped).
    ///
    /// # Panics
    /// When [`Fields::USER_ID`] was not declared.
    pub fn user_id(&self) -> Cow<'a, str> {
        self.declared(Fields::USER_ID, USER_ID);
        self.string(USER_ID).decode()
    }

    /// Client event time, milliseconds since the Unix epoch (UTC).
    ///
    /// # Panics
    /// When [`Fields::TIMES`] was not declared.
    pub fn timestamp_ms(&self) -> i64 {
        self.declared(Fields::TIMES, TIMESTAMP_MS);
        self.integer(TIMESTAMP_MS)
    }

    /// Gateway receive time, milliseconds since the Unix epoch (UTC).
    ///
    /// # Panics
    /// When [`Fields::TIMES`] was not declared.
    pub fn received_at_ms(&self) -> i64 {
        self.declared(Fields::TIMES, RECEIVED_AT_MS);
        self.integer(RECEIVED_AT_MS)
    }

    /// Version of the team's schema for this event name.
    ///
    /// # Panics
    /// When [`Fields::SCHEMA_VERSION`] was not declared.
    pub fn schema_version(&self) -> u32 {
        self.declared(Fields::SCHEMA_VERSION, SCHEMA_VERSION);
        let value = self.required(SCHEMA_VERSION);
        value
            .parse()
            .unwrap_or_else(|_| bad_value(SCHEMA_VERSION, "u32", value))
    }

    /// The event's properties: the text of a JSON object, as the client sent
    /// it (the gateway checked it). Read it with [`scan`] (no allocation) or
    /// [`properties_json`](Self::properties_json).
    ///
    /// # Panics
    /// When [`Fields::PROPERTIES`] was not declared.
    pub fn properties(&self) -> &'a str {
        self.declared(Fields::PROPERTIES, PROPERTIES);
        self.required(PROPERTIES)
    }

    /// Device/library context: the text of a JSON object, `None` when the
    /// event has none.
    ///
    /// # Panics
    /// When [`Fields::CONTEXT`] was not declared.
    pub fn context(&self) -> Option<&'a str> {
        self.declared(Fields::CONTEXT, CONTEXT);
        self.value(CONTEXT)
    }

    /// The top-level property `key` (the last one if the key repeats, as
    /// parsers do), found by [`scan`]; `None` when absent or when the
    /// properties are not a valid object.
    ///
    /// # Panics
    /// When [`Fields::PROPERTIES`] was not declared.
    pub fn property(&self, key: &str) -> Option<scan::Value<'a>> {
        scan::find_member(self.properties(), key).ok().flatten()
    }

    /// The top-level context member `key`, as [`property`](Self::property).
    ///
    /// # Panics
    /// When [`Fields::CONTEXT`] was not declared.
    pub fn context_member(&self, key: &str) -> Option<scan::Value<'a>> {
        scan::find_member(self.context()?, key).ok().flatten()
    }

    /// Parses [`properties`](Self::properties) into a map (allocates a
    /// string per key and value: prefer [`scan`] on the hot path).
    ///
    /// # Errors
    /// When the text is not a JSON object (only for hand-built events).
    ///
    /// # Panics
    /// When [`Fields::PROPERTIES`] was not declared.
    pub fn properties_json(&self) -> Result<JsonObject, serde_json::Error> {
        serde_json::from_str(self.properties())
    }

    /// Deserializes [`properties`](Self::properties) into `T` (typed access).
    ///
    /// # Errors
    /// When the text does not fit `T`.
    ///
    /// # Panics
    /// When [`Fields::PROPERTIES`] was not declared.
    pub fn properties_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.properties())
    }

    /// Parses [`context`](Self::context) into a map; `None` when the event
    /// has no context.
    ///
    /// # Errors
    /// When the text is not a JSON object (only for hand-built events).
    ///
    /// # Panics
    /// When [`Fields::CONTEXT`] was not declared.
    pub fn context_json(&self) -> Result<Option<JsonObject>, serde_json::Error> {
        self.context().map(serde_json::from_str).transpose()
    }

    /// The value text in `slot`, `None` when the member was not sent.
    #[inline]
    fn value(&self, slot: usize) -> Option<&'a str> {
        let (start, end) = (self.spans[2 * slot], self.spans[2 * slot + 1]);
        if end == 0 {
            return None; // `0, 0`: not sent
        }
        match self.text.get(start as usize..end as usize) {
            Some(value) => Some(value),
            None => bad_span(slot, start, end, self.text.len()),
        }
    }

    /// The value text in `slot`, which the host must have sent.
    #[inline]
    fn required(&self, slot: usize) -> &'a str {
        self.value(slot).unwrap_or_else(|| not_sent(slot))
    }

    /// The JSON string in `slot`.
    #[inline]
    fn string(&self, slot: usize) -> Str<'a> {
        let value = self.required(slot);
        Str::from_quoted(value).unwrap_or_else(|| bad_value(slot, "string", value))
    }

    fn integer(&self, slot: usize) -> i64 {
        let value = self.required(slot);
        value
            .parse()
            .unwrap_or_else(|_| bad_value(slot, "integer", value))
    }

    #[inline]
    fn declared(&self, field: Fields, slot: usize) {
        if !self.fields.contains(field) {
            not_declared(field, slot);
        }
    }
}

impl fmt::Debug for Event<'_> {
    /// The members that were sent, as their JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Event");
        for (slot, name) in MEMBER_NAMES.iter().enumerate() {
            if let Some(value) = self.value(slot) {
                s.field(name, &format_args!("{value}"));
            }
        }
        s.finish()
    }
}

#[cold]
#[inline(never)]
fn not_declared(field: Fields, slot: usize) -> ! {
    panic!(
        "sluice plugin: `{}` was not sent: declare {field:?} in the plugin's `FIELDS`",
        MEMBER_NAMES[slot]
    );
}

#[cold]
#[inline(never)]
fn not_sent(slot: usize) -> ! {
    panic!(
        "sluice plugin: the host sent no `{}` although it was declared",
        MEMBER_NAMES[slot]
    );
}

#[cold]
#[inline(never)]
fn bad_span(slot: usize, start: u32, end: u32, len: usize) -> ! {
    panic!(
        "sluice plugin: the span {start}..{end} of `{}` is not within the batch text ({len} bytes)",
        MEMBER_NAMES[slot]
    );
}

#[cold]
#[inline(never)]
fn bad_value(slot: usize, expected: &str, value: &str) -> ! {
    let shown: String = value.chars().take(40).collect();
    panic!(
        "sluice plugin: `{}` is not a JSON {expected}: {shown}",
        MEMBER_NAMES[slot]
    );
}

/// An owned event with every field, for native unit tests (and benchmarks):
/// build it, then read it through [`event`](Self::event) as a plugin would,
/// or put several in a [`Batch`](crate::Batch) with
/// [`Batch::encode`](crate::Batch::encode).
///
/// ```
/// use sluice_plugin_sdk::EventBuf;
///
/// let buf = EventBuf::new("Signed Up")
///     .with_user_id("u1")
///     .with_property("plan", "pro")
///     .with_context_member("ip", "10.0.0.1");
/// let event = buf.event();
/// assert_eq!(event.name(), "Signed Up");
/// assert_eq!(event.properties(), r#"{"plan":"pro"}"#);
/// assert_eq!(event.context(), Some(r#"{"ip":"10.0.0.1"}"#));
/// ```
///
/// The raw setters ([`with_properties`](Self::with_properties),
/// [`with_context`](Self::with_context)) take any text, valid JSON or not,
/// to test what a plugin does with input the gateway would never send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBuf {
    event_id: String,
    name: String,
    user_id: String,
    timestamp_ms: i64,
    received_at_ms: i64,
    schema_version: u32,
    properties: String,
    context: Option<String>,
    /// The event encoded as the host encodes it, every field sent.
    text: String,
    spans: [u32; SPAN_NUMBERS],
}

impl EventBuf {
    /// An event called `name`, with an empty `event_id` and `user_id`, zero
    /// times and schema version, `{}` properties and no context.
    pub fn new(name: impl Into<String>) -> Self {
        let mut buf = Self {
            event_id: String::new(),
            name: name.into(),
            user_id: String::new(),
            timestamp_ms: 0,
            received_at_ms: 0,
            schema_version: 0,
            properties: "{}".to_owned(),
            context: None,
            text: String::new(),
            spans: [0; SPAN_NUMBERS],
        };
        buf.encode();
        buf
    }

    /// The event, every field sent (as if the plugin declared [`Fields::ALL`]).
    pub fn event(&self) -> Event<'_> {
        Event::new(&self.text, &self.spans, Fields::ALL)
    }

    /// Sets `event_id`.
    #[must_use]
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = event_id.into();
        self.encoded()
    }

    /// Sets `name`.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.encoded()
    }

    /// Sets `user_id`.
    #[must_use]
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self.encoded()
    }

    /// Sets `timestamp_ms`.
    #[must_use]
    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = timestamp_ms;
        self.encoded()
    }

    /// Sets `received_at_ms`.
    #[must_use]
    pub fn with_received_at_ms(mut self, received_at_ms: i64) -> Self {
        self.received_at_ms = received_at_ms;
        self.encoded()
    }

    /// Sets `schema_version`.
    #[must_use]
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self.encoded()
    }

    /// Replaces the properties with `text`, as it is (not checked).
    #[must_use]
    pub fn with_properties(mut self, text: impl Into<String>) -> Self {
        self.properties = text.into();
        self.encoded()
    }

    /// Replaces (or adds) the context with `text`, as it is (not checked).
    #[must_use]
    pub fn with_context(mut self, text: impl Into<String>) -> Self {
        self.context = Some(text.into());
        self.encoded()
    }

    /// Removes the context.
    #[must_use]
    pub fn without_context(mut self) -> Self {
        self.context = None;
        self.encoded()
    }

    /// Sets one top-level property (adding or replacing it).
    ///
    /// # Panics
    /// When the current properties are not a JSON object.
    #[must_use]
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties = with_member(&self.properties, key.into(), value.into(), "properties");
        self.encoded()
    }

    /// Sets one top-level context member (creating the context if absent).
    ///
    /// # Panics
    /// When the current context is not a JSON object.
    #[must_use]
    pub fn with_context_member(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let context = self.context.as_deref().unwrap_or("{}");
        self.context = Some(with_member(context, key.into(), value.into(), "context"));
        self.encoded()
    }

    fn encoded(mut self) -> Self {
        self.encode();
        self
    }

    fn encode(&mut self) {
        let mut text = String::with_capacity(self.encoded_len());
        self.spans = self.encode_into(&mut text, Fields::ALL);
        self.text = text;
    }

    /// An upper estimate of the encoded length, escapes aside.
    pub(crate) fn encoded_len(&self) -> usize {
        160 + self.event_id.len()
            + self.name.len()
            + self.user_id.len()
            + self.properties.len()
            + self.context.as_ref().map_or(0, String::len)
    }

    /// Appends the event to `out` as the host encodes it (only `fields`
    /// besides `event_id` and `name`, in the WIT's order, no whitespace
    /// outside the values), and returns its spans.
    pub(crate) fn encode_into(&self, out: &mut String, fields: Fields) -> [u32; SPAN_NUMBERS] {
        let mut spans = [0; SPAN_NUMBERS];
        out.push('{');
        let mut member = |out: &mut String, slot: usize, write: &dyn Fn(&mut String)| {
            if slot != EVENT_ID {
                out.push(',');
            }
            out.push('"');
            out.push_str(MEMBER_NAMES[slot]);
            out.push_str("\":");
            spans[2 * slot] = offset(out);
            write(out);
            spans[2 * slot + 1] = offset(out);
        };
        member(out, EVENT_ID, &|out| scan::push_string(out, &self.event_id));
        member(out, NAME, &|out| scan::push_string(out, &self.name));
        if fields.contains(Fields::USER_ID) {
            member(out, USER_ID, &|out| scan::push_string(out, &self.user_id));
        }
        if fields.contains(Fields::TIMES) {
            member(out, TIMESTAMP_MS, &|out| {
                out.push_str(&self.timestamp_ms.to_string());
            });
            member(out, RECEIVED_AT_MS, &|out| {
                out.push_str(&self.received_at_ms.to_string());
            });
        }
        if fields.contains(Fields::SCHEMA_VERSION) {
            member(out, SCHEMA_VERSION, &|out| {
                out.push_str(&self.schema_version.to_string());
            });
        }
        if fields.contains(Fields::PROPERTIES) {
            member(out, PROPERTIES, &|out| out.push_str(&self.properties));
        }
        if let Some(context) = &self.context
            && fields.contains(Fields::CONTEXT)
        {
            member(out, CONTEXT, &|out| out.push_str(context));
        }
        out.push('}');
        spans
    }
}

/// A span offset: batches are far below 4 GiB (the host bounds calls).
fn offset(text: &str) -> u32 {
    u32::try_from(text.len()).expect("an event batch under 4 GiB")
}

/// The object `text` with `key` set to `value`.
fn with_member(text: &str, key: String, value: Value, what: &str) -> String {
    let mut object: JsonObject = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("EventBuf: the {what} are not a JSON object ({e}): {text}"));
    object.insert(key, value);
    Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Batch;
    use serde_json::json;

    #[test]
    fn a_new_event_has_every_field_with_defaults() {
        let buf = EventBuf::new("Signed Up");
        let event = buf.event();
        assert_eq!(event.event_id(), "");
        assert_eq!(event.name(), "Signed Up");
        assert_eq!(event.user_id(), "");
        assert_eq!((event.timestamp_ms(), event.received_at_ms()), (0, 0));
        assert_eq!(event.schema_version(), 0);
        assert_eq!(event.properties(), "{}");
        assert_eq!(event.context(), None);
        assert_eq!(event.context_json().unwrap(), None);
        assert_eq!(event.fields(), Fields::ALL);
    }

    #[test]
    fn every_member_reads_back() {
        let buf = EventBuf::new("x")
            .with_event_id("0190a0b0-0000-7000-8000-000000000001")
            .with_name("Signed \"Up\" \u{e9}\n")
            .with_user_id("u\\1")
            .with_timestamp_ms(1_800_000_000_000)
            .with_received_at_ms(-5)
            .with_schema_version(u32::MAX)
            .with_property("plan", "pro")
            .with_property("seats", 3)
            .with_context_member("ip", "10.0.0.1");
        let event = buf.event();
        assert_eq!(event.event_id(), "0190a0b0-0000-7000-8000-000000000001");
        assert_eq!(event.name(), "Signed \"Up\" \u{e9}\n");
        assert!(matches!(event.name(), Cow::Owned(_)), "escaped: decoded");
        assert_eq!(event.user_id(), "u\\1");
        assert_eq!(event.timestamp_ms(), 1_800_000_000_000);
        assert_eq!(event.received_at_ms(), -5);
        assert_eq!(event.schema_version(), u32::MAX);
        assert_eq!(event.property("seats").unwrap().text(), "3");
        assert_eq!(
            event.properties_json().unwrap(),
            *json!({"plan": "pro", "seats": 3}).as_object().unwrap()
        );
        assert_eq!(event.context_member("ip").unwrap().text(), "\"10.0.0.1\"");
        assert_eq!(event.property("ip"), None);
        #[derive(serde::Deserialize)]
        struct Props {
            plan: String,
        }
        assert_eq!(event.properties_as::<Props>().unwrap().plan, "pro");
        let debug = format!("{event:?}");
        assert!(
            debug.contains(r#"properties: {"plan":"pro","seats":3}"#),
            "{debug}"
        );
    }

    #[test]
    fn unescaped_strings_are_borrowed_from_the_batch() {
        let buf = EventBuf::new("Page Viewed").with_user_id("u1");
        assert!(matches!(buf.event().name(), Cow::Borrowed("Page Viewed")));
        assert!(matches!(buf.event().user_id(), Cow::Borrowed("u1")));
    }

    #[test]
    fn raw_text_is_kept_as_given() {
        let buf = EventBuf::new("x")
            .with_properties("not json")
            .with_context("[1, 2]");
        let event = buf.event();
        assert_eq!(event.properties(), "not json");
        assert_eq!(event.context(), Some("[1, 2]"));
        assert!(event.properties_json().is_err());
        assert_eq!(event.property("a"), None);
        assert!(event.context_json().is_err());
        assert_eq!(event.context_member("a"), None);
        let buf = buf.without_context();
        assert_eq!(buf.event().context(), None);
    }

    #[test]
    #[should_panic(expected = "the properties are not a JSON object")]
    fn with_property_on_broken_properties_panics() {
        let _ = EventBuf::new("x")
            .with_properties("[]")
            .with_property("a", 1);
    }

    #[test]
    fn only_declared_members_are_sent() {
        let buf = EventBuf::new("x")
            .with_user_id("u1")
            .with_context_member("ip", "1");
        let batch = Batch::encode([&buf], Fields::PROPERTIES);
        assert_eq!(
            batch.events(),
            r#"[{"event_id":"","name":"x","properties":{}}]"#
        );
        let event = batch.iter().next().unwrap();
        assert_eq!(event.properties(), "{}");
        assert_eq!(event.fields(), Fields::PROPERTIES);
        assert_eq!(
            format!("{event:?}"),
            r#"Event { event_id: "", name: "x", properties: {} }"#
        );
        let reads: [fn(&Event<'_>) -> String; 6] = [
            |e| e.user_id().into_owned(),
            |e| e.timestamp_ms().to_string(),
            |e| e.received_at_ms().to_string(),
            |e| e.schema_version().to_string(),
            |e| format!("{:?}", e.context()),
            |e| format!("{:?}", e.context_member("ip")),
        ];
        for read in reads {
            let panic = std::panic::catch_unwind(|| read(&event)).unwrap_err();
            let message = panic.downcast_ref::<String>().unwrap();
            assert!(
                message.contains("was not sent: declare Fields("),
                "{message}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "declare Fields(CONTEXT)")]
    fn an_undeclared_context_is_not_taken_for_an_absent_one() {
        let buf = EventBuf::new("x");
        let batch = Batch::encode([&buf], Fields::PROPERTIES);
        let _ = batch.iter().next().unwrap().context();
    }
}
