//! Borrowed JSON for translation: an SDK body is read once into slices of
//! the request's own bytes (its top level and each message's fields where
//! they stand, Segment's `context` one level deeper, every value kept as
//! its [`RawValue`] text), the few mapped fields are read from those
//! slices, and the native event is written once from them. No
//! `serde_json::Value` tree is built on the way (`shared/FACTS.md`: a
//! value tree costs several times what borrowed decoding does).
//!
//! Duplicate names follow `serde_json::Map`, which translation used before:
//! the last copy of a name wins.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use sluice_core::Timestamp;

use crate::error::ApiError;

/// The top level of a JSON document.
#[derive(Debug)]
pub enum Doc<'a> {
    Object(Object<'a>),
    Array(Vec<Message<'a>>),
    /// A string, number, boolean or null.
    Other,
}

/// A body's `batch` member, read as the array it should be in the same
/// pass as the rest of the body (last copy wins, as for any name).
#[derive(Debug)]
pub enum Batch<'a> {
    Array(Vec<Message<'a>>),
    NotAnArray,
}

/// One SDK message as the body carried it: its text and, when it is a JSON
/// object, its fields, both read in the body's own pass.
#[derive(Debug)]
pub struct Message<'a> {
    sent: Sent<'a>,
    fields: Option<Object<'a>>,
    /// The member [`OPENED`], when the body was read with it opened (it is
    /// then not among `fields`).
    opened: Option<Opened<'a>>,
}

/// The member a protocol may have read one level deeper in the body's own
/// pass: Segment's `context`, whose fields translation copies around its
/// own `context.segment`, so its text need not be read a second time.
pub const OPENED: &str = "context";

/// What an opened member held.
#[derive(Debug)]
pub enum Opened<'a> {
    Object(Object<'a>),
    Null,
    /// Any other value; its text is read again from the message if needed.
    Other,
}

impl<'a> Message<'a> {
    /// A message read as raw text; its fields are read from that text.
    pub fn from_raw(raw: &'a RawValue) -> Self {
        Self {
            sent: Sent::Raw(raw),
            fields: Object::parse(raw),
            opened: None,
        }
    }

    /// A whole body that is one message object, its fields already read.
    pub fn whole(json: &'a [u8], fields: Object<'a>) -> Self {
        let start = skip_whitespace(json, 0);
        let end = json.len()
            - json[start..]
                .iter()
                .rev()
                .take_while(|b| is_whitespace(**b))
                .count();
        Self {
            sent: Sent::Text(&json[start..end]),
            fields: Some(fields),
            opened: None,
        }
    }

    /// Its fields; `None` when the message is not a JSON object.
    pub fn fields(&self) -> Option<&Object<'a>> {
        self.fields.as_ref()
    }

    pub fn sent(&self) -> Sent<'a> {
        self.sent
    }

    /// The member [`OPENED`] if it was read opened; `None` if it was not
    /// (it is then among the fields, if the message has it).
    pub fn opened(&self) -> Option<&Opened<'a>> {
        self.opened.as_ref()
    }

    /// All the message's fields, the opened member among them as sent:
    /// read again from its text (only a refused message needs them).
    pub fn all_fields(&self) -> Option<Object<'a>> {
        match self.sent.raw() {
            Cow::Borrowed(raw) => Object::parse(raw),
            Cow::Owned(_) => None,
        }
    }
}

/// A message's text as sent, for a dead-letter copy.
#[derive(Debug, Clone, Copy)]
pub enum Sent<'a> {
    Raw(&'a RawValue),
    /// Exactly one JSON value: the body's parse took it as one.
    Text(&'a [u8]),
}

impl<'a> Sent<'a> {
    /// As raw JSON. The text of an object read field by field is checked
    /// again here, which only a refused message pays.
    pub fn raw(self) -> Cow<'a, RawValue> {
        match self {
            Self::Raw(raw) => Cow::Borrowed(raw),
            Self::Text(text) => match serde_json::from_slice::<&RawValue>(text) {
                Ok(raw) => Cow::Borrowed(raw),
                // Unreachable (the same bytes parsed before); `null` rather
                // than a panic if it ever were not.
                Err(_) => Cow::Owned(Box::<RawValue>::default()),
            },
        }
    }
}

impl<'a> From<&'a RawValue> for Sent<'a> {
    fn from(raw: &'a RawValue) -> Self {
        Self::Raw(raw)
    }
}

impl<'a> Doc<'a> {
    /// A request body's top level; a `batch` member of an object body is
    /// returned on its own (and is not among the object's fields). A body
    /// that is not JSON gets the error the `Value` parser gave before (same
    /// message, same position): the borrowed parse only decides that it
    /// failed.
    ///
    /// With `open_context`, each message of a `batch` or top-level array
    /// has its member [`OPENED`] read opened (see [`Message::opened`]).
    pub fn parse_body(
        json: &'a [u8],
        open_context: bool,
    ) -> Result<(Self, Option<Batch<'a>>), ApiError> {
        if let Some(parsed) = read_body(json, open_context) {
            return Ok(parsed);
        }
        match serde_json::from_slice(json) {
            Ok(Body(doc, batch)) => Ok((doc, batch)),
            Err(err) => {
                let err = serde_json::from_slice::<serde_json::Value>(json)
                    .err()
                    .unwrap_or(err);
                Err(ApiError::from_body_json(&err))
            }
        }
    }
}

/// The body's usual shapes (an object, perhaps with a `batch` array, or an
/// array) read in one pass: each message is read field by field where it
/// stands, and its text is kept as the span it took, instead of being
/// skipped over as raw text first and read again. serde_json reads every
/// value, name and message; only the punctuation between them is followed
/// here. The body is checked as UTF-8 once, as the native route does, so
/// that serde_json need not check each string and raw value again. `None`
/// for anything else, valid or not (not UTF-8, a scalar body, a `batch` that
/// is not an array, a syntax error): [`Doc::parse_body`] then reads the body
/// the general way, which gives the same result and the same errors.
fn read_body(json: &[u8], open_context: bool) -> Option<(Doc<'_>, Option<Batch<'_>>)> {
    let text = std::str::from_utf8(json).ok()?;
    let start = skip_whitespace(json, 0);
    let (doc, batch, end) = match json.get(start)? {
        b'{' => {
            let (object, batch, end) = read_object(text, start, open_context)?;
            (Doc::Object(object), batch, end)
        }
        b'[' => {
            let (messages, end) = read_messages(text, start, open_context)?;
            (Doc::Array(messages), None, end)
        }
        _ => return None,
    };
    (skip_whitespace(json, end) == json.len()).then_some((doc, batch))
}

/// The object that opens at `text[open]`, its `batch` array apart (as
/// [`Body`] reads it), and the index after it.
fn read_object(
    text: &str,
    open: usize,
    open_context: bool,
) -> Option<(Object<'_>, Option<Batch<'_>>, usize)> {
    let json = text.as_bytes();
    let mut object = Object(Vec::with_capacity(8));
    let mut batch = None;
    let mut at = skip_whitespace(json, open + 1);
    if json.get(at) == Some(&b'}') {
        return Some((object, None, at + 1));
    }
    loop {
        if json.get(at) != Some(&b'"') {
            return None;
        }
        let (Name(name), len) = value_at::<Name<'_>>(text.get(at..)?)?;
        at = skip_whitespace(json, at + len);
        if json.get(at) != Some(&b':') {
            return None;
        }
        at = skip_whitespace(json, at + 1);
        if name == "batch" {
            if json.get(at) != Some(&b'[') {
                return None;
            }
            let (messages, end) = read_messages(text, at, open_context)?;
            batch = Some(Batch::Array(messages));
            at = end;
        } else {
            let (value, len) = value_at::<&RawValue>(text.get(at..)?)?;
            object.insert(name, value);
            at += len;
        }
        at = skip_whitespace(json, at);
        match json.get(at)? {
            b',' => at = skip_whitespace(json, at + 1),
            b'}' => return Some((object, batch, at + 1)),
            _ => return None,
        }
    }
}

/// The array of messages that opens at `text[open]`, and the index after it.
fn read_messages(text: &str, open: usize, open_context: bool) -> Option<(Vec<Message<'_>>, usize)> {
    let json = text.as_bytes();
    // About one message per kilobyte: a batch grows its vector a few times
    // at most, and a single event does not pay for a hundred.
    let mut messages = Vec::with_capacity(((json.len() - open) / 1024).clamp(1, 1024));
    let mut at = skip_whitespace(json, open + 1);
    if json.get(at) == Some(&b']') {
        return Some((messages, at + 1));
    }
    loop {
        let rest = text.get(at..)?;
        let message = match rest.as_bytes().first() {
            Some(b'{') if open_context => {
                let (OpeningContext(fields, opened), len) = value_at::<OpeningContext<'_>>(rest)?;
                at += len;
                Message {
                    sent: Sent::Text(&rest.as_bytes()[..len]),
                    fields: Some(fields),
                    opened,
                }
            }
            Some(b'{') => {
                let (Doc::Object(fields), len) = value_at::<Doc<'_>>(rest)? else {
                    return None;
                };
                at += len;
                Message {
                    sent: Sent::Text(&rest.as_bytes()[..len]),
                    fields: Some(fields),
                    opened: None,
                }
            }
            _ => {
                let (raw, len) = value_at::<&RawValue>(rest)?;
                at += len;
                Message {
                    sent: Sent::Raw(raw),
                    fields: None,
                    opened: None,
                }
            }
        };
        messages.push(message);
        at = skip_whitespace(json, at);
        match json.get(at)? {
            b',' => at = skip_whitespace(json, at + 1),
            b']' => return Some((messages, at + 1)),
            _ => return None,
        }
    }
}

/// A message object with its member [`OPENED`] read opened (the last
/// copy, as for any name) and left out of its fields.
struct OpeningContext<'a>(Object<'a>, Option<Opened<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for OpeningContext<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageVisitor;
        impl<'de> Visitor<'de> for MessageVisitor {
            type Value = OpeningContext<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut object = Object(Vec::with_capacity(16));
                let mut opened = None;
                while let Some(Name(name)) = map.next_key()? {
                    if name == OPENED {
                        opened = Some(map.next_value::<OpenedValue<'de>>()?.0);
                    } else {
                        object.insert(name, map.next_value()?);
                    }
                }
                Ok(OpeningContext(object, opened))
            }
        }
        deserializer.deserialize_map(MessageVisitor)
    }
}

/// An opened member's value (any JSON value).
struct OpenedValue<'a>(Opened<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for OpenedValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OpenedVisitor;
        impl<'de> Visitor<'de> for OpenedVisitor {
            type Value = OpenedValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                match DocVisitor.visit_map(map)? {
                    Doc::Object(object) => Ok(OpenedValue(Opened::Object(object))),
                    _ => Ok(OpenedValue(Opened::Other)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OpenedValue(Opened::Other))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OpenedValue(Opened::Null))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(OpenedValue(Opened::Other))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(OpenedValue(Opened::Other))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(OpenedValue(Opened::Other))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(OpenedValue(Opened::Other))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(OpenedValue(Opened::Other))
            }
        }
        deserializer.deserialize_any(OpenedVisitor)
    }
}

/// The JSON value at the start of `text` (no whitespace before it), and
/// how many bytes it took; `None` when it is not a `T`.
fn value_at<'a, T: Deserialize<'a>>(text: &'a str) -> Option<(T, usize)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<T>();
    let value = stream.next()?.ok()?;
    Some((value, stream.byte_offset()))
}

/// JSON's four whitespace bytes, as serde_json skips them.
fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\t' | b'\r')
}

/// The index of the first byte at or after `from` that is not whitespace.
fn skip_whitespace(json: &[u8], from: usize) -> usize {
    from + json.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|b| is_whitespace(**b)).count()
    })
}

struct Body<'a>(Doc<'a>, Option<Batch<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Body<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut object = Object(Vec::with_capacity(8));
                let mut batch = None;
                while let Some(Name(name)) = map.next_key()? {
                    if name == "batch" {
                        batch = Some(map.next_value::<BatchValue<'de>>()?.0);
                    } else {
                        object.insert(name, map.next_value()?);
                    }
                }
                Ok(Body(Doc::Object(object), batch))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                DocVisitor.visit_seq(seq).map(|doc| Body(doc, None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Body(Doc::Other, None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Body(Doc::Other, None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Body(Doc::Other, None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Body(Doc::Other, None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Body(Doc::Other, None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Body(Doc::Other, None))
            }
        }
        deserializer.deserialize_any(BodyVisitor)
    }
}

/// A `batch` member: its elements' raw text, or the note that it is none.
struct BatchValue<'a>(Batch<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for BatchValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BatchVisitor;
        impl<'de> Visitor<'de> for BatchVisitor {
            type Value = BatchValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(128));
                while let Some(item) = seq.next_element()? {
                    items.push(Message::from_raw(item));
                }
                Ok(BatchValue(Batch::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(BatchValue(Batch::NotAnArray))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(BatchValue(Batch::NotAnArray))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(BatchValue(Batch::NotAnArray))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(BatchValue(Batch::NotAnArray))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(BatchValue(Batch::NotAnArray))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(BatchValue(Batch::NotAnArray))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BatchValue(Batch::NotAnArray))
            }
        }
        deserializer.deserialize_any(BatchVisitor)
    }
}

/// Refuses, with the error the `Value` parser gave before, a body that the
/// borrowed parse accepted but `Value` would not: the borrowed parse skips
/// over passed-through values without `Value`'s limits (nesting deeper than
/// 128, a `\u` escape of a lone UTF-16 surrogate, a number too large for
/// an `f64`). A cheap scan finds the bodies that might break one of them
/// (it may err towards yes); only those are parsed again into a `Value`.
pub fn refuse_like_value(json: &[u8]) -> Result<(), ApiError> {
    if !might_refuse(json) {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(_) => Ok(()),
        Err(err) => Err(ApiError::from_body_json(&err)),
    }
}

/// serde_json's recursion limit: a document nested this deep is refused.
const VALUE_DEPTH_LIMIT: usize = 128;

/// Nesting within one level of the limit, a `\u` escape of a lone
/// surrogate in a string, or a number with a three-digit exponent or
/// hundreds of digits: one pass over the body, which runs on every SDK
/// request. `text` is valid JSON (the borrowed parse took it), so quotes,
/// escapes and brackets can be followed without checking them again.
fn might_refuse(text: &[u8]) -> bool {
    let hex4 = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(text.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut in_string = false;
    let mut digits = 0usize;
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        if in_string {
            // Most bytes are inside strings: jump to the next quote or backslash.
            i = next_quote_or_backslash(text, i);
            let Some(&b) = text.get(i) else {
                break;
            };
            match b {
                b'"' => in_string = false,
                b'\\' if text.get(i + 1) == Some(&b'u') => {
                    match hex4(i + 2) {
                        Some(0xD800..=0xDBFF) => {
                            let paired = text.get(i + 6) == Some(&b'\\')
                                && text.get(i + 7) == Some(&b'u')
                                && matches!(hex4(i + 8), Some(0xDC00..=0xDFFF));
                            if !paired {
                                return true;
                            }
                            i += 12;
                        }
                        Some(0xDC00..=0xDFFF) => return true,
                        _ => i += 6,
                    }
                    continue;
                }
                // Any other escape: skip the escaped byte (it may be a quote).
                b'\\' => i += 1,
                _ => {}
            }
            i += 1;
            continue;
        }
        match text[i] {
            b'"' => {
                in_string = true;
                digits = 0;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth + 1 >= VALUE_DEPTH_LIMIT {
                    return true;
                }
                digits = 0;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                digits = 0;
            }
            b'0'..=b'9' => {
                digits += 1;
                if digits >= 300 {
                    return true;
                }
            }
            b'e' | b'E' if digits > 0 => {
                let mut at = i + 1;
                if matches!(text.get(at), Some(b'+' | b'-')) {
                    at += 1;
                }
                let exponent = text[at.min(text.len())..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if exponent >= 3 {
                    return true;
                }
                digits = 0;
                i = at + exponent;
                continue;
            }
            _ => digits = 0,
        }
        i += 1;
    }
    false
}

/// The index of the first `"` or `\\` at or after `from` (or the length),
/// eight bytes at a time.
fn next_quote_or_backslash(text: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each zero byte of `x` (and perhaps of bytes above one).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut i = from;
    while let Some(chunk) = text.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found = zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            // The lowest marked byte is exact (only the bytes above a zero
            // byte can be marked wrongly), and the bytes are little-endian.
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < text.len() && text[i] != b'"' && text[i] != b'\\' {
        i += 1;
    }
    i
}

/// One level of a JSON object: its names (unescaped, borrowed when they
/// need no unescaping) and their values as raw JSON text, in order, each
/// name once.
#[derive(Debug, Default)]
pub struct Object<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Object<'a> {
    /// The object in `raw`, or `None` when `raw` holds another kind of value.
    pub fn parse(raw: &'a RawValue) -> Option<Self> {
        if !raw.get().starts_with('{') {
            return None;
        }
        match serde_json::from_str(raw.get()) {
            Ok(Doc::Object(object)) => Some(object),
            _ => None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .find_map(|(field, value)| (field == name).then_some(*value))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(field, _)| field == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.0.iter().map(|(name, value)| (name.as_ref(), *value))
    }

    fn insert(&mut self, name: Cow<'a, str>, value: &'a RawValue) {
        match self.0.iter_mut().find(|(field, _)| *field == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Doc<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Object(Vec::with_capacity(map.size_hint().unwrap_or(16)));
        while let Some(Name(name)) = map.next_key()? {
            object.insert(name, map.next_value()?);
        }
        Ok(Doc::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
        while let Some(item) = seq.next_element()? {
            items.push(Message::from_raw(item));
        }
        Ok(Doc::Array(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Doc::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Doc::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Doc::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Doc::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Doc::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Doc::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Doc::Other)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Doc::Other)
    }
}

/// A string, borrowed from the input when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// True when no object in `raw` can have a member called `quoted_name` (a
/// plain ASCII name, given with its quotes): it appears nowhere and no `\u`
/// escape could spell it. A substring search that lets a large object be
/// passed on without reading its names.
pub fn cannot_have_name(raw: &RawValue, quoted_name: &str) -> bool {
    let text = raw.get();
    !text.contains(quoted_name) && !text.contains("\\u")
}

pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// `Some` unless the value is JSON `null`.
pub fn non_null(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|raw| !is_null(raw))
}

pub fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Name<'_>>(raw.get())
        .ok()
        .map(|name| name.0)
}

fn as_number(raw: &RawValue) -> Option<serde_json::Number> {
    let first = raw.get().as_bytes().first()?;
    if *first != b'-' && !first.is_ascii_digit() {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// As `Value::as_i64`: an integer that fits, else `None`.
pub fn as_i64(raw: &RawValue) -> Option<i64> {
    as_number(raw)?.as_i64()
}

/// A non-empty string, or a number as text (some SDKs send numeric user ids).
pub fn text_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    match as_str(raw) {
        Some(text) => (!text.is_empty()).then_some(text),
        None => as_number(raw).map(|n| Cow::Owned(n.to_string())),
    }
}

/// The first candidate that is usable text (see [`text_of`]).
pub fn first_text<'a>(
    candidates: impl IntoIterator<Item = Option<&'a RawValue>>,
) -> Option<Cow<'a, str>> {
    candidates.into_iter().find_map(|raw| text_of(raw?))
}

/// RFC 3339 text or epoch milliseconds.
pub fn parse_time(raw: &RawValue) -> Option<Timestamp> {
    match as_str(raw) {
        Some(text) => Timestamp::parse_rfc3339(&text).ok(),
        None => as_i64(raw).and_then(|ms| Timestamp::checked(ms).ok()),
    }
}

/// A value written into the native event.
#[derive(Debug)]
pub enum Out<'x, 'a> {
    /// JSON text passed through as it was sent.
    Raw(&'a RawValue),
    Str(&'x str),
    Int(i64),
    Object(Fields<'x, 'a>),
}

impl Serialize for Out<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Raw(raw) => raw.serialize(serializer),
            Self::Str(text) => serializer.serialize_str(text),
            Self::Int(n) => serializer.serialize_i64(*n),
            Self::Object(fields) => fields.serialize(serializer),
        }
    }
}

/// An object written field by field; the builder keeps each name once.
#[derive(Debug, Default)]
pub struct Fields<'x, 'a>(Vec<(&'x str, Out<'x, 'a>)>);

impl<'x, 'a> Fields<'x, 'a> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(field, _)| *field == name)
    }

    /// Adds a field; the caller knows the name is not there yet.
    pub fn push(&mut self, name: &'x str, value: Out<'x, 'a>) {
        self.0.push((name, value));
    }

    /// Adds a field unless one of that name is there (`Map::entry().or_insert`).
    pub fn or_insert(&mut self, name: &'x str, value: Out<'x, 'a>) {
        if !self.contains(name) {
            self.0.push((name, value));
        }
    }

    /// The fields of `object` whose names `keep` accepts, as sent.
    pub fn copy_from(object: &'x Object<'a>, keep: impl Fn(&str) -> bool) -> Self {
        Self(
            object
                .iter()
                .filter(|(name, _)| keep(name))
                .map(|(name, value)| (name, Out::Raw(value)))
                .collect(),
        )
    }
}

impl Serialize for Fields<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Writes `value` once, as the raw JSON text of one record's event.
pub fn to_raw(value: &impl Serialize) -> Result<Box<RawValue>, ApiError> {
    serde_json::value::to_raw_value(value).map_err(|e| ApiError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn objects_keep_the_last_copy_of_a_name_and_borrow_their_names() {
        let text = r#"{"a":1,"b\u0020c":{"x":[1]},"a":"two"}"#;
        let object = Object::parse(raw(text)).unwrap();
        assert_eq!(object.get("a").unwrap().get(), r#""two""#);
        assert_eq!(object.get("b c").unwrap().get(), r#"{"x":[1]}"#);
        assert_eq!(object.iter().count(), 2);
        assert!(Object::parse(raw("[1]")).is_none());
    }

    #[test]
    fn a_name_is_ruled_out_only_when_no_spelling_of_it_is_there() {
        assert!(cannot_have_name(raw(r#"{"a":{"tokens":1}}"#), "\"token\""));
        assert!(!cannot_have_name(raw(r#"{"a":{"token":1}}"#), "\"token\""));
        assert!(!cannot_have_name(raw(r#"{"a":"token"}"#), "\"token\""));
        assert!(!cannot_have_name(raw(r#"{"tok\u0065n":1}"#), "\"token\""));
    }

    #[test]
    fn scalars_read_like_value_did() {
        assert_eq!(text_of(raw(r#""a\"b""#)).unwrap(), "a\"b");
        assert_eq!(text_of(raw("12")).unwrap(), "12");
        assert_eq!(text_of(raw("1.50")).unwrap(), "1.5");
        assert!(text_of(raw(r#""""#)).is_none());
        assert!(text_of(raw("true")).is_none());
        assert_eq!(as_i64(raw("-3")), Some(-3));
        assert_eq!(as_i64(raw("3.0")), None);
        assert_eq!(as_i64(raw("18446744073709551615")), None);
        assert!(is_null(raw("null")));
        assert_eq!(
            parse_time(raw(r#""2027-01-15T08:00:00Z""#)).map(Timestamp::as_millis),
            Some(1_800_000_000_000)
        );
        assert_eq!(
            parse_time(raw("1800000000000")).map(Timestamp::as_millis),
            Some(1_800_000_000_000)
        );
        assert!(parse_time(raw(r#""soon""#)).is_none());
    }

    #[test]
    fn what_value_refused_is_still_refused_with_its_error() {
        let deep = format!(
            "{{\"batch\":[{{\"p\":{}1{}}}]}}",
            "[".repeat(130),
            "]".repeat(130)
        );
        let surrogate = r#"{"batch":[{"p":"\ud83d x"}]}"#;
        let low = r#"{"batch":[{"p":"\udc00"}]}"#;
        let huge = r#"{"batch":[{"p":1e400}]}"#;
        let long = format!("{{\"batch\":[{{\"p\":{}}}]}}", "9".repeat(400));
        for body in [deep.as_str(), surrogate, low, huge, long.as_str()] {
            let Ok((Doc::Object(_), Some(Batch::Array(_)))) =
                Doc::parse_body(body.as_bytes(), false)
            else {
                panic!("the borrowed parse refused {body}");
            };
            let expected = serde_json::from_str::<serde_json::Value>(body).unwrap_err();
            let Err(err) = refuse_like_value(body.as_bytes()) else {
                panic!("accepted {body}");
            };
            assert_eq!(
                err.to_string(),
                ApiError::from_body_json(&expected).to_string()
            );
        }
        // What `Value` takes passes, the usual escapes, pairs and numbers included.
        for body in [
            r#"{"batch":[{"p":"\ud83d\ude00 \\ud800 \u00e9","n":[1e10,2.5E-7,123456789012]}]}"#,
            r#"{"batch":[{"p":"3e456"}]}"#,
        ] {
            assert!(refuse_like_value(body.as_bytes()).is_ok(), "{body}");
        }
        assert!(!might_refuse(
            br#"{"batch":[{"p":"\ud83d\ude00","n":1e10}]}"#
        ));
        // Ids and hex in strings are not numbers, and escaped quotes do not
        // end a string.
        assert!(!might_refuse(
            br#"{"id":"0190d6a8-3e45-7000","h":"9e1234","q":"a\"1e999\"","n":[12,1.5e-7]}"#
        ));
        assert!(might_refuse(br#"{"q":"a\"","n":1e999}"#));
        // Brackets count only outside strings; 127 levels is where `Value`
        // may start to refuse.
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(!might_refuse(nested(126).as_bytes()));
        assert!(might_refuse(nested(127).as_bytes()));
        assert!(serde_json::from_str::<serde_json::Value>(&nested(127)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nested(128)).is_err());
        assert!(!might_refuse(
            format!("[\"{}\"]", "[".repeat(300)).as_bytes()
        ));
    }

    #[test]
    fn the_string_skip_stops_at_every_quote_and_backslash() {
        let text = br#"abcdefghijklmnopq"rstuvwxyz0123456\789"#;
        let at = next_quote_or_backslash(text, 0);
        assert_eq!(text[at], b'"');
        let at = next_quote_or_backslash(text, at + 1);
        assert_eq!(text[at], b'\\');
        assert_eq!(next_quote_or_backslash(text, at + 1), text.len());
        for from in 0..text.len() {
            let expected = (from..text.len())
                .find(|&i| text[i] == b'"' || text[i] == b'\\')
                .unwrap_or(text.len());
            assert_eq!(next_quote_or_backslash(text, from), expected);
        }
    }

    #[test]
    fn a_body_that_is_not_json_gets_the_value_parsers_error() {
        let Err(ApiError::MalformedJson(message)) = Doc::parse_body(b"{\"a\":[1,", false) else {
            panic!("not malformed");
        };
        let expected = serde_json::from_slice::<serde_json::Value>(b"{\"a\":[1,").unwrap_err();
        assert_eq!(message, expected.to_string());
    }

    /// A message as the general reading sees it: its text and every field
    /// (an opened `context` put back as the text it was read from).
    fn seen(message: &Message<'_>) -> (String, Option<Vec<(String, String)>>) {
        let text = message.sent().raw().get().to_owned();
        let Some(fields) = message.fields() else {
            return (text, None);
        };
        let mut all: Vec<(String, String)> = fields
            .iter()
            .map(|(name, value)| (name.to_owned(), value.get().to_owned()))
            .collect();
        if let Some(opened) = message.opened() {
            // The opened member agrees with the message's own text.
            let again = message.all_fields().unwrap();
            let sent = again.get(OPENED).unwrap();
            match opened {
                Opened::Object(members) => {
                    let members: Vec<_> = members.iter().map(|(n, v)| (n, v.get())).collect();
                    let sent_members = Object::parse(sent).unwrap();
                    let expected: Vec<_> = sent_members.iter().map(|(n, v)| (n, v.get())).collect();
                    assert_eq!(members, expected);
                }
                Opened::Null => assert!(is_null(sent)),
                Opened::Other => assert!(!is_null(sent) && Object::parse(sent).is_none()),
            }
            all = again
                .iter()
                .map(|(name, value)| (name.to_owned(), value.get().to_owned()))
                .collect();
        }
        (text, Some(all))
    }

    type Seen = (
        Vec<(String, String)>,
        Vec<(String, Option<Vec<(String, String)>>)>,
    );

    fn summary(doc: &Doc<'_>, batch: Option<&Batch<'_>>) -> Seen {
        let (fields, mut messages) = match doc {
            Doc::Object(object) => (
                object
                    .iter()
                    .map(|(name, value)| (name.to_owned(), value.get().to_owned()))
                    .collect(),
                Vec::new(),
            ),
            Doc::Array(messages) => (Vec::new(), messages.iter().map(seen).collect()),
            Doc::Other => (Vec::new(), Vec::new()),
        };
        if let Some(Batch::Array(batch)) = batch {
            messages.extend(batch.iter().map(seen));
        }
        (fields, messages)
    }

    #[test]
    fn the_one_pass_reading_finds_what_the_general_one_finds() {
        let same = [
            r#"{"batch":[{"a":1,"context":{"x":[1,{"y":"}"}],"z":"s"}},{"b":"\u00e9","context":null},3,"s",[1,{}],{"context":[1]},{"context":5,"context":{"w":1}},{},{"c":{"context":2}}],"sentAt":"t","writeKey":"k"}"#,
            " \t{ \"batch\" :\n[ { \"a\" : 1 , \"a\" : 2 } , { } , -1.5e3 , true ] , \"x\" : null }\r\n",
            r#"[{"event":"e"},{"event":"f","properties":{"token":"t"}},null]"#,
            r#"{"batch":[{"a":1}],"batch":[{"b":2}],"k":"v"}"#,
            r#"{"b\u0061tch":[{"n\u00e9":1,"context":{"\u0063":2}}],"k\u0065y":"v"}"#,
            r#"{"event":"one","context":{"a":1},"api_key":"k"}"#,
            r#"{"batch":[]}"#,
            "[]",
            "{}",
        ];
        for body in same {
            let general: Body<'_> = serde_json::from_str(body).unwrap();
            for open_context in [false, true] {
                let (doc, batch) = read_body(body.as_bytes(), open_context)
                    .unwrap_or_else(|| panic!("not read in one pass: {body}"));
                assert_eq!(
                    summary(&doc, batch.as_ref()),
                    summary(&general.0, general.1.as_ref()),
                    "{body}"
                );
            }
        }
        // Not JSON: left to the general reading, which gives the error.
        let broken: [&[u8]; 13] = [
            br#"{"batch":[{"a":1},]}"#,
            br#"{"batch":[{"a":1}]"#,
            br#"{"batch":[{"a":1}]} x"#,
            br#"{"batch":[{"a":1}]}}"#,
            b"[1 2]",
            br#"{"a" 1}"#,
            br#"{"a":1,}"#,
            br#"{,"a":1}"#,
            b"[,1]",
            br#"{"batch":[{"a":01}]}"#,
            br#"{"batch":[tru]}"#,
            br#"{"batch":[{"a":1}1]}"#,
            b"{\"batch\":[{\"a\":\"\xff\"}]}",
        ];
        for body in broken {
            assert!(serde_json::from_slice::<Body<'_>>(body).is_err());
            assert!(read_body(body, true).is_none(), "{body:?}");
            assert!(matches!(
                Doc::parse_body(body, true),
                Err(ApiError::MalformedJson(_))
            ));
        }
        // JSON in a shape the one pass leaves to the general reading.
        for body in [r#"{"batch":{"a":1}}"#, "42", r#""s""#] {
            assert!(read_body(body.as_bytes(), true).is_none());
            assert!(Doc::parse_body(body.as_bytes(), true).is_ok());
        }
    }
}
