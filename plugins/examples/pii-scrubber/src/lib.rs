//! Enricher: finds email addresses and IPv4/IPv6 addresses in string
//! property values (at any depth) and in `context.ip`, and hashes or drops them.
//!
//! Configuration:
//! `{"mode": "hash" | "drop", "salt": "...", "fields": ["phone", ...]}`
//!
//! * `hash` (default): each address found inside a string is replaced by
//!   `sha256:` + hex(sha256(salt + address)); other text in the string is
//!   kept. A non-empty `salt` is required (unsalted hashes of emails and IPv4
//!   addresses are easy to reverse).
//! * `drop`: a string value containing an address is removed (the object
//!   member, or the array element).
//! * `fields`: extra property names (matched at any depth) whose whole value
//!   is personal: hashed (non-strings as their JSON text) or dropped.
//! * `context.ip` is always treated like a `fields` entry.
//!
//! Values already starting with `sha256:` are left alone, so scrubbing twice
//! changes nothing. Unspecified and loopback IPs are not personal and are
//! kept. Object keys are not scanned. An event in which nothing is found is
//! returned `unchanged`.
//!
//! How (for speed): the raw JSON is scanned, not parsed into a tree. One
//! quick pass over the raw properties first looks for anything an address
//! needs (an `@`, digits between two dots, a second colon after hex
//! digits, an escape, a configured field name); most properties have none
//! and are not scanned at all. Otherwise only string values that could hold
//! an address (an `@`, three dots or two colons) are searched exactly, and
//! replacements are spliced into the original text, so everything else (key
//! order, spacing, number spelling) stays as it came. Text that is not JSON
//! fails the event, except where it shows no `@`, no escape, no IP-like text
//! and no configured field name (properties) or no `"ip"` and no escape
//! (context): there was nothing to scrub, so it is returned `unchanged` as
//! before.

mod find;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use std::ops::Range;

use find::may_hold_address;
pub use find::{find_ips, find_pii};
use sha2::{Digest, Sha256};
use sluice_plugin_sdk::scan::{self, Kind, Str};
use sluice_plugin_sdk::{
    Enriched, Enricher, Event, PluginError, export_enricher, parse_config, serde_json,
};

/// What to do with personal data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Replace it with a salted SHA-256.
    #[default]
    Hash,
    /// Remove the value holding it.
    Drop,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    salt: String,
    #[serde(default)]
    fields: Vec<String>,
}

/// The plugin.
#[derive(Debug)]
pub struct PiiScrubber {
    mode: Mode,
    salt: String,
    fields: Vec<String>,
}

/// What scrubbing did to one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Kept,
    Changed,
    Remove,
}

const HASH_PREFIX: &str = "sha256:";

impl Enricher for PiiScrubber {
    fn init(config: &str) -> Result<Self, PluginError> {
        let Config { mode, salt, fields } = parse_config(config)?;
        if mode == Mode::Hash && salt.is_empty() {
            return Err(PluginError::invalid_config(
                "`salt` is required in hash mode: unsalted hashes of emails and IPs are easy to reverse",
            ));
        }
        if fields.iter().any(String::is_empty) {
            return Err(PluginError::invalid_config(
                "`fields` must not contain empty names",
            ));
        }
        Ok(Self { mode, salt, fields })
    }

    fn enrich(&self, events: Vec<Event>) -> Vec<Enriched> {
        events
            .into_iter()
            .map(|event| self.scrub_event(event))
            .collect()
    }
}

impl PiiScrubber {
    /// Scrubs one event.
    pub fn scrub_event(&self, mut event: Event) -> Enriched {
        let properties = match self.scrub_properties(&event.properties) {
            Ok(properties) => properties,
            Err(e) => return Enriched::failed(format!("properties are not JSON: {e}")),
        };
        let context = match event.context.as_deref().map(|c| self.scrub_context(c)) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(context))) => Some(context),
            Some(Err(e)) => return Enriched::failed(format!("context is not JSON: {e}")),
        };
        if properties.is_none() && context.is_none() {
            return Enriched::unchanged();
        }
        if let Some(properties) = properties {
            event.properties = properties;
        }
        if context.is_some() {
            event.context = context;
        }
        Enriched::changed(event)
    }

    /// The scrubbed properties text, `None` when nothing changed.
    fn scrub_properties(&self, text: &str) -> Result<Option<String>, scan::Error> {
        if !self.may_contain_pii(text) {
            return Ok(None); // the usual case: nothing to find, no need to scan
        }
        let mut out = Rewriter::new(text);
        // An object (what the gateway sends) or array is checked as its
        // items are scanned, not in a pass of its own first.
        let scrubbed = match text.trim_start().as_bytes().first() {
            Some(b'{') => self.scrub_object(scan::members(text), &mut out),
            Some(b'[') => self.scrub_array(scan::elements(text), &mut out),
            _ => scan::value(text).and_then(|value| self.scrub_value(value, &mut out)),
        };
        match scrubbed {
            // A top-level string to drop (properties that are not an object)
            // has no member to remove: it is kept.
            Ok(_) => Ok(out.finish()),
            Err(_) if !self.looks_like_pii(text) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The context with its top-level `ip` scrubbed, `None` when nothing
    /// changed (no `ip`, or a context that is not an object).
    fn scrub_context(&self, text: &str) -> Result<Option<String>, scan::Error> {
        let mut out = Rewriter::new(text);
        let members = scan::members(text).map(|m| m.map(|m| (m.key_offset, Some(m.key), m.value)));
        let scrubbed = self.scrub_items(members, &mut out, |key, value, out| {
            if key.is_some_and(|key| key.eq_str("ip")) {
                self.scrub_whole(value, out)
            } else {
                Ok(Outcome::Kept)
            }
        });
        match scrubbed {
            Ok(_) => Ok(out.finish()),
            // Valid JSON but not an object: nothing to scrub.
            Err(_) if scan::value(text).is_ok() => Ok(None),
            Err(_) if !text.contains("\"ip\"") && !text.contains('\\') => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A quick look at the raw text: `false` guarantees that scanning would
    /// find nothing to scrub. Every address needs an `@` (emails), two dots
    /// with only one to three digits between them (IPv4), or a second colon
    /// after a colon with only hex digits and dots between them (IPv6), as
    /// written in the raw text unless there is an escape (any backslash
    /// means "look closer"); a configured field needs its name written out.
    /// JSON numbers have at most one dot and structural colons sit next to
    /// quotes, so most properties pass with one pass over their bytes.
    fn may_contain_pii(&self, raw: &str) -> bool {
        let bytes = raw.as_bytes();
        let mut from = 0;
        while let Some(at) = scan::find_any_byte(raw, from, [b'@', b'\\', b'.', b':']) {
            let rest = &bytes[at + 1..];
            match bytes[at] {
                b'.' => {
                    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                    if (1..=3).contains(&digits) && rest.get(digits) == Some(&b'.') {
                        return true;
                    }
                }
                b':' => {
                    let run = rest
                        .iter()
                        .take_while(|&&b| b.is_ascii_hexdigit() || b == b'.')
                        .count();
                    if rest.get(run) == Some(&b':') {
                        return true;
                    }
                }
                _ => return true, // `@` or `\`
            }
            from = at + 1;
        }
        self.fields
            .iter()
            .any(|field| raw.contains(&format!("\"{field}\"")))
    }

    /// The pre-check the plugin used to run on the raw text before parsing
    /// it (stricter than [`may_contain_pii`](Self::may_contain_pii)): text
    /// that is not JSON but passes it was returned `unchanged`, and still is.
    fn looks_like_pii(&self, raw: &str) -> bool {
        raw.contains('@')
            || raw.contains('\\')
            || !find_ips(raw).is_empty()
            || self
                .fields
                .iter()
                .any(|field| raw.contains(&format!("\"{field}\"")))
    }

    fn is_field(&self, key: Str<'_>) -> bool {
        self.fields.iter().any(|field| key.eq_str(field))
    }

    fn scrub_value(
        &self,
        value: scan::Value<'_>,
        out: &mut Rewriter<'_>,
    ) -> Result<Outcome, scan::Error> {
        match value.kind() {
            Kind::String => Ok(self.scrub_string(value, out)),
            Kind::Object => self.scrub_object(value.members(), out),
            Kind::Array => self.scrub_array(value.elements(), out),
            Kind::Number | Kind::Bool | Kind::Null => Ok(Outcome::Kept),
        }
    }

    fn scrub_object(
        &self,
        members: scan::Members<'_>,
        out: &mut Rewriter<'_>,
    ) -> Result<Outcome, scan::Error> {
        let members = members.map(|m| m.map(|m| (m.key_offset, Some(m.key), m.value)));
        self.scrub_items(members, out, |key, member, out| match key {
            Some(key) if self.is_field(key) => self.scrub_whole(member, out),
            _ => self.scrub_value(member, out),
        })
    }

    fn scrub_array(
        &self,
        elements: scan::Elements<'_>,
        out: &mut Rewriter<'_>,
    ) -> Result<Outcome, scan::Error> {
        let elements = elements.map(|e| e.map(|e| (e.span().start, None, e)));
        self.scrub_items(elements, out, |_, element, out| {
            self.scrub_value(element, out)
        })
    }

    /// Scrubs the members (or elements) of one object (or array) with
    /// `scrub_item`, and removes those it says to remove, each with one
    /// separating comma. Items come as (offset of their first byte, key for
    /// members, value).
    fn scrub_items<'a>(
        &self,
        items: impl Iterator<Item = Result<(usize, Option<Str<'a>>, scan::Value<'a>), scan::Error>>,
        out: &mut Rewriter<'_>,
        mut scrub_item: impl FnMut(
            Option<Str<'a>>,
            scan::Value<'a>,
            &mut Rewriter<'_>,
        ) -> Result<Outcome, scan::Error>,
    ) -> Result<Outcome, scan::Error> {
        let mut outcome = Outcome::Kept;
        let mut kept_one = false;
        // Start of the removed items before the first kept one: they go with
        // the comma after them, up to the next item's start.
        let mut leading_removed: Option<usize> = None;
        let mut previous_end = 0;
        for item in items {
            let (start, key, value) = item?;
            let end = value.span().end;
            if let Some(from) = leading_removed.take() {
                out.delete(from..start);
            }
            match scrub_item(key, value, out)? {
                Outcome::Kept => kept_one = true,
                Outcome::Changed => {
                    kept_one = true;
                    outcome = Outcome::Changed;
                }
                Outcome::Remove => {
                    outcome = Outcome::Changed;
                    if kept_one {
                        // With the comma before it.
                        out.delete(previous_end..end);
                    } else {
                        leading_removed = Some(start);
                    }
                }
            }
            previous_end = end;
        }
        if let Some(from) = leading_removed {
            out.delete(from..previous_end); // every item was removed
        }
        Ok(outcome)
    }

    /// A string value: hashes (in place) or drops the addresses it holds.
    fn scrub_string(&self, value: scan::Value<'_>, out: &mut Rewriter<'_>) -> Outcome {
        let Some(string) = value.as_str() else {
            return Outcome::Kept;
        };
        let text = string.decode();
        if !may_hold_address(&text) {
            return Outcome::Kept;
        }
        let found = find_pii(&text);
        if found.is_empty() {
            return Outcome::Kept;
        }
        if self.mode == Mode::Drop {
            return Outcome::Remove;
        }
        if string.has_escapes() {
            let replaced = self.hash_spans(&text, &found);
            scan::push_string(out.replace(value.span()), &replaced);
        } else {
            // The decoded text is the raw text: splice the hashes in.
            let contents = value.span().start + 1;
            for span in found {
                let address = &text[span.clone()];
                self.push_hash(
                    out.replace(contents + span.start..contents + span.end),
                    address,
                );
            }
        }
        Outcome::Changed
    }

    /// A value that is personal as a whole (`fields`, `context.ip`).
    fn scrub_whole(
        &self,
        value: scan::Value<'_>,
        out: &mut Rewriter<'_>,
    ) -> Result<Outcome, scan::Error> {
        let text = match value.as_str() {
            _ if value.is_null() => return Ok(Outcome::Kept),
            Some(string) => {
                let text = string.decode();
                if text.starts_with(HASH_PREFIX) {
                    return Ok(Outcome::Kept);
                }
                text
            }
            None => {
                if self.mode == Mode::Drop {
                    return Ok(Outcome::Remove);
                }
                // Hashed as serde_json writes it (compact, keys sorted), as
                // when the plugin parsed the whole text: rare, so parse.
                let parsed: serde_json::Value =
                    serde_json::from_str(value.text()).map_err(|_| scan::Error {
                        offset: value.span().start,
                        what: "invalid value",
                    })?;
                parsed.to_string().into()
            }
        };
        if self.mode == Mode::Drop {
            return Ok(Outcome::Remove);
        }
        let out = out.replace(value.span());
        out.push('"');
        self.push_hash(out, &text);
        out.push('"');
        Ok(Outcome::Changed)
    }

    fn hash_spans(&self, text: &str, spans: &[Range<usize>]) -> String {
        let mut out = String::with_capacity(text.len() + spans.len() * 71);
        let mut last = 0;
        for span in spans {
            out.push_str(&text[last..span.start]);
            self.push_hash(&mut out, &text[span.clone()]);
            last = span.end;
        }
        out.push_str(&text[last..]);
        out
    }

    /// `sha256:` + lower-case hex of sha256(salt + value).
    pub fn hash(&self, value: &str) -> String {
        let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
        self.push_hash(&mut out, value);
        out
    }

    fn push_hash(&self, out: &mut String, value: &str) {
        let digest = Sha256::new()
            .chain_update(self.salt.as_bytes())
            .chain_update(value.as_bytes())
            .finalize();
        let mut text = [0u8; HASH_PREFIX.len() + 64];
        text[..HASH_PREFIX.len()].copy_from_slice(HASH_PREFIX.as_bytes());
        for (pair, byte) in text[HASH_PREFIX.len()..]
            .chunks_exact_mut(2)
            .zip(digest.iter())
        {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        // One append instead of 71 (each checks the capacity).
        out.push_str(std::str::from_utf8(&text).unwrap_or_default());
    }
}

/// A copy of a text with some byte ranges replaced, built only once the
/// first range is replaced. Ranges must come in order and not overlap.
#[derive(Debug)]
struct Rewriter<'a> {
    source: &'a str,
    out: Option<String>,
    /// `source` before this offset is in `out` (or replaced).
    copied: usize,
}

impl<'a> Rewriter<'a> {
    fn new(source: &'a str) -> Self {
        Self {
            source,
            out: None,
            copied: 0,
        }
    }

    /// Drops `range` of the source; what is pushed to the returned string
    /// takes its place.
    fn replace(&mut self, range: Range<usize>) -> &mut String {
        // Hashes make the text longer: room for a few.
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.source.len() + 256));
        out.push_str(&self.source[self.copied..range.start]);
        self.copied = range.end;
        out
    }

    fn delete(&mut self, range: Range<usize>) {
        self.replace(range);
    }

    /// The new text, `None` when nothing was replaced.
    fn finish(self) -> Option<String> {
        let mut out = self.out?;
        out.push_str(&self.source[self.copied..]);
        Some(out)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

export_enricher!(PiiScrubber);
