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
//! How (for speed): the raw JSON is scanned, not parsed into a tree. Only
//! string values that could hold an address (an `@`, three dots or two
//! colons) are searched exactly, and replacements are spliced into the
//! original text, so everything else (key order, spacing, number spelling)
//! stays as it came. Text that is not JSON fails the event, except where it
//! shows no `@`, no escape, no IP-like text and no configured field name
//! (properties) or no `"ip"` and no escape (context): there was nothing to
//! scrub, so it is returned `unchanged` as before.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

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

/// Whether `text` can hold an address at all: an email needs an `@`, an IPv4
/// address three dots, an IPv6 address two colons. Most strings have none
/// of these and skip the exact search.
fn may_hold_address(text: &str) -> bool {
    let [at, dots, colons] = scan::count_bytes(text, [b'@', b'.', b':']);
    at > 0 || dots >= 3 || colons >= 2
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Byte ranges of the email and IP addresses in `text`: sorted and
/// non-overlapping (an email wins over an IP inside it).
pub fn find_pii(text: &str) -> Vec<Range<usize>> {
    let mut spans = find_emails(text);
    for ip in find_ips(text) {
        if !spans.iter().any(|s| s.start < ip.end && ip.start < s.end) {
            spans.push(ip);
        }
    }
    spans.sort_by_key(|s| s.start);
    spans
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// `local@domain.tld`: local part of `[A-Za-z0-9._%+-]`, domain labels of
/// `[A-Za-z0-9-]` (not starting or ending with `-`), an alphabetic TLD of two
/// or more letters.
fn find_emails(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut search_from = 0;
    while let Some(offset) = text[search_from..].find('@') {
        let at = search_from + offset;
        search_from = at + 1;
        let mut start = at;
        while start > 0 && is_local_byte(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_byte(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start == at || found.last().is_some_and(|r: &Range<usize>| r.end > start) {
            continue;
        }
        let domain = &text[at + 1..end];
        let labels: Vec<&str> = domain.split('.').collect();
        let valid_labels = labels
            .iter()
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        let tld_ok = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
        if labels.len() >= 2 && valid_labels && tld_ok {
            found.push(start..end);
            search_from = end;
        }
    }
    found
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Maximal runs of bytes matching `in_run`, as ranges.
fn runs(bytes: &[u8], in_run: impl Fn(u8) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if in_run(bytes[i]) {
            let start = i;
            while i < bytes.len() && in_run(bytes[i]) {
                i += 1;
            }
            out.push(start..i);
        } else {
            i += 1;
        }
    }
    out
}

/// IPv4 (dotted quad) and IPv6 addresses standing on their own (not glued
/// to letters, digits or `_`), except unspecified and loopback addresses.
pub fn find_ips(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let standalone = |r: &Range<usize>| {
        (r.start == 0 || !is_word_byte(bytes[r.start - 1]))
            && (r.end == bytes.len() || !is_word_byte(bytes[r.end]))
    };
    let personal = |ip: IpAddr| !ip.is_unspecified() && !ip.is_loopback();
    let mut found = Vec::new();

    // IPv6 first: its runs may contain an embedded IPv4 (`::ffff:10.0.0.1`).
    for run in runs(bytes, |b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
        let mut candidate = run.clone();
        // Trailing punctuation (`…fe80::1.` or `…::1:`) is not part of it.
        if candidate.len() > 2 && matches!(bytes[candidate.end - 1], b'.' | b':') {
            let trimmed = candidate.start..candidate.end - 1;
            if text[trimmed.clone()].parse::<Ipv6Addr>().is_ok() {
                candidate = trimmed;
            }
        }
        let text_of = &text[candidate.clone()];
        if text_of.bytes().filter(|&b| b == b':').count() >= 2
            && standalone(&candidate)
            && text_of
                .parse::<Ipv6Addr>()
                .is_ok_and(|ip| personal(IpAddr::V6(ip)))
        {
            found.push(candidate);
        }
    }

    for run in runs(bytes, |b| b.is_ascii_digit() || b == b'.') {
        let mut candidate = run;
        while candidate.end > candidate.start && bytes[candidate.end - 1] == b'.' {
            candidate.end -= 1;
        }
        while candidate.start < candidate.end && bytes[candidate.start] == b'.' {
            candidate.start += 1;
        }
        if candidate.is_empty()
            || found
                .iter()
                .any(|r| r.start < candidate.end && candidate.start < r.end)
        {
            continue;
        }
        // Not a piece of a longer token such as `v1.2.3.4` (`10.0.0.1:8080` is fine).
        if standalone(&candidate)
            && text[candidate.clone()]
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| personal(IpAddr::V4(ip)))
        {
            found.push(candidate);
        }
    }
    found.sort_by_key(|r| r.start);
    found
}

export_enricher!(PiiScrubber);

/// The plugin's previous implementation (parse into a `serde_json` tree,
/// scrub, re-serialise), kept to check the scanning one against.
#[cfg(test)]
mod reference {
    use super::*;
    use sluice_plugin_sdk::Value;

    pub struct Reference<'a>(pub &'a PiiScrubber);

    impl Reference<'_> {
        pub fn scrub_event(&self, mut event: Event) -> Enriched {
            let mut changed = false;

            if self.may_contain_pii(&event.properties) {
                let mut properties: Value = match serde_json::from_str(&event.properties) {
                    Ok(value) => value,
                    Err(e) => return Enriched::failed(format!("properties are not JSON: {e}")),
                };
                if self.scrub_value(&mut properties) != Outcome::Kept {
                    event.properties = properties.to_string();
                    changed = true;
                }
            }

            if let Some(context) = &event.context
                && (context.contains("\"ip\"") || context.contains('\\'))
            {
                let mut context: Value = match serde_json::from_str(context) {
                    Ok(value) => value,
                    Err(e) => return Enriched::failed(format!("context is not JSON: {e}")),
                };
                if let Some(object) = context.as_object_mut()
                    && let Some(ip) = object.get_mut("ip")
                {
                    let outcome = self.scrub_whole(ip);
                    if outcome == Outcome::Remove {
                        object.remove("ip");
                    }
                    if outcome != Outcome::Kept {
                        event.context = Some(context.to_string());
                        changed = true;
                    }
                }
            }

            if changed {
                Enriched::changed(event)
            } else {
                Enriched::unchanged()
            }
        }

        /// Cheap pre-check on the raw JSON text: `false` guarantees that parsing
        /// and scanning would find nothing. (Escapes could hide an `@` or split
        /// an address, so any backslash means "look closer".)
        fn may_contain_pii(&self, raw: &str) -> bool {
            raw.contains('@')
                || raw.contains('\\')
                || !find_ips(raw).is_empty()
                || self
                    .0
                    .fields
                    .iter()
                    .any(|field| raw.contains(&format!("\"{field}\"")))
        }

        fn scrub_value(&self, value: &mut Value) -> Outcome {
            match value {
                Value::String(text) => {
                    let found = find_pii(text);
                    if found.is_empty() {
                        Outcome::Kept
                    } else if self.0.mode == Mode::Drop {
                        Outcome::Remove
                    } else {
                        *text = self.0.hash_spans(text, &found);
                        Outcome::Changed
                    }
                }
                Value::Array(items) => {
                    let mut outcome = Outcome::Kept;
                    items.retain_mut(|item| match self.scrub_value(item) {
                        Outcome::Kept => true,
                        Outcome::Changed => {
                            outcome = Outcome::Changed;
                            true
                        }
                        Outcome::Remove => {
                            outcome = Outcome::Changed;
                            false
                        }
                    });
                    outcome
                }
                Value::Object(members) => {
                    let mut outcome = Outcome::Kept;
                    members.retain(|key, member| {
                        let member_outcome = if self.0.fields.iter().any(|f| f == key) {
                            self.scrub_whole(member)
                        } else {
                            self.scrub_value(member)
                        };
                        match member_outcome {
                            Outcome::Kept => true,
                            Outcome::Changed => {
                                outcome = Outcome::Changed;
                                true
                            }
                            Outcome::Remove => {
                                outcome = Outcome::Changed;
                                false
                            }
                        }
                    });
                    outcome
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => Outcome::Kept,
            }
        }

        /// A value that is personal as a whole (`fields`, `context.ip`).
        fn scrub_whole(&self, value: &mut Value) -> Outcome {
            match value {
                Value::Null => Outcome::Kept,
                Value::String(text) if text.starts_with(HASH_PREFIX) => Outcome::Kept,
                _ if self.0.mode == Mode::Drop => Outcome::Remove,
                Value::String(text) => {
                    *text = self.0.hash(text);
                    Outcome::Changed
                }
                other => {
                    *other = Value::String(self.0.hash(&other.to_string()));
                    Outcome::Changed
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::{Value, json};

    fn found(text: &str) -> Vec<&str> {
        find_pii(text).into_iter().map(|r| &text[r]).collect()
    }

    fn scrubber(config: Value) -> PiiScrubber {
        PiiScrubber::init(&config.to_string()).unwrap()
    }

    fn event(properties: Value, context: Option<Value>) -> Event {
        Event {
            event_id: "e1".into(),
            team_id: "t1".into(),
            properties: properties.to_string(),
            context: context.map(|c| c.to_string()),
            ..Event::new("Signed Up")
        }
    }

    fn changed(result: Enriched) -> Event {
        match result {
            Enriched::Changed(event) => event,
            other => panic!("expected changed, got {other:?}"),
        }
    }

    #[test]
    fn finds_emails() {
        assert_eq!(found("a@b.co"), ["a@b.co"]);
        assert_eq!(
            found("Mail jane.doe+x@mail.example.com, or bob@ex-ample.org."),
            ["jane.doe+x@mail.example.com", "bob@ex-ample.org"]
        );
        assert_eq!(found("<.x@y.io>"), ["x@y.io"]);
        for none in [
            "@",
            "a@b",
            "a@b.c",
            "a@-b.com",
            "a@b..com",
            "@b.com",
            "a@b.c0m",
            "x @ y.com",
        ] {
            assert!(found(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn finds_ipv4() {
        assert_eq!(found("10.0.0.1"), ["10.0.0.1"]);
        assert_eq!(
            found("from 192.168.1.20, then 8.8.8.8."),
            ["192.168.1.20", "8.8.8.8"]
        );
        assert_eq!(found("[203.0.113.9]:443"), ["203.0.113.9"]);
        assert_eq!(found("peer=198.51.100.4:8080"), ["198.51.100.4"]);
        for none in [
            "1.2.3",
            "v1.2.3.4",
            "1.2.3.4.5",
            "256.1.1.1",
            "0.0.0.0",
            "127.0.0.1",
            "1.2.3.4x",
            "01.2.3.4",
        ] {
            assert!(found(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn finds_ipv6() {
        assert_eq!(found("2001:db8::1"), ["2001:db8::1"]);
        assert_eq!(
            found("[2001:db8:0:0:1:0:0:1]:443"),
            ["2001:db8:0:0:1:0:0:1"]
        );
        assert_eq!(
            found("peer fe80::1ff:fe23:4567:890a."),
            ["fe80::1ff:fe23:4567:890a"]
        );
        assert_eq!(found("mapped ::ffff:10.1.2.3"), ["::ffff:10.1.2.3"]);
        for none in [
            "::",
            "::1",
            "12:30:45",
            "aa:bb:cc:dd:ee:ff",
            "Foo::bar",
            "std::fs",
            "sha256:abcdef0123",
        ] {
            assert!(found(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn emails_win_over_ips_inside_them() {
        assert_eq!(found("x@10.0.0.1"), ["10.0.0.1"]);
        assert_eq!(found("a@b.io 10.0.0.1"), ["a@b.io", "10.0.0.1"]);
    }

    #[test]
    fn hash_mode_replaces_addresses_recursively_and_keeps_other_text() {
        let plugin = scrubber(json!({"salt": "s3"}));
        let input = event(
            json!({
                "email": "jane@example.com",
                "note": "call 10.0.0.7 now",
                "nested": {"list": ["ok", "2001:db8::5", 3]},
                "plan": "pro"
            }),
            None,
        );
        let out = changed(plugin.scrub_event(input));
        let props = out.properties_json().unwrap();
        assert_eq!(props["email"], json!(plugin.hash("jane@example.com")));
        assert_eq!(
            props["note"],
            json!(format!("call {} now", plugin.hash("10.0.0.7")))
        );
        assert_eq!(
            props["nested"],
            json!({"list": ["ok", plugin.hash("2001:db8::5"), 3]})
        );
        assert_eq!(props["plan"], json!("pro"));
        assert_eq!((out.event_id.as_str(), out.team_id.as_str()), ("e1", "t1"));
    }

    #[test]
    fn hash_is_salted_sha256_hex() {
        let plugin = scrubber(json!({"salt": "pepper"}));
        // sha256("pepper" + "a@b.io")
        let expected = {
            let digest = Sha256::digest(b"peppera@b.io");
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        };
        assert_eq!(plugin.hash("a@b.io"), expected);
        assert_eq!(plugin.hash("a@b.io").len(), 7 + 64);
        assert_ne!(
            plugin.hash("a@b.io"),
            scrubber(json!({"salt": "salt"})).hash("a@b.io")
        );
    }

    #[test]
    fn drop_mode_removes_members_and_elements() {
        let plugin = scrubber(json!({"mode": "drop"}));
        let input = event(
            json!({"email": "jane@example.com", "tags": ["a", "from 10.0.0.7"], "deep": {"ip": "10.1.1.1", "k": 1}}),
            Some(json!({"ip": "203.0.113.1", "user_agent": "UA"})),
        );
        let out = changed(plugin.scrub_event(input));
        assert_eq!(
            out.properties_json().unwrap(),
            *json!({"tags": ["a"], "deep": {"k": 1}})
                .as_object()
                .unwrap()
        );
        assert_eq!(
            out.context_json().unwrap(),
            *json!({"user_agent": "UA"}).as_object().unwrap()
        );
    }

    #[test]
    fn context_ip_and_extra_fields_are_scrubbed_whole() {
        let plugin = scrubber(json!({"salt": "s", "fields": ["phone", "address"]}));
        let input = event(
            json!({"phone": "+1 555 0100", "profile": {"address": {"city": "Oslo"}}, "n": 1}),
            Some(json!({"ip": "10.9.8.7", "locale": "en"})),
        );
        let out = changed(plugin.scrub_event(input));
        let props = out.properties_json().unwrap();
        assert_eq!(props["phone"], json!(plugin.hash("+1 555 0100")));
        assert_eq!(
            props["profile"]["address"],
            json!(plugin.hash(r#"{"city":"Oslo"}"#))
        );
        assert_eq!(
            out.context_json().unwrap()["ip"],
            json!(plugin.hash("10.9.8.7"))
        );
        assert_eq!(out.context_json().unwrap()["locale"], json!("en"));
    }

    #[test]
    fn nothing_found_is_unchanged_and_scrubbing_is_idempotent() {
        let plugin = scrubber(json!({"salt": "s", "fields": ["phone"]}));
        let clean = event(
            json!({"plan": "pro", "version": "1.2.3", "at": "12:30:45"}),
            Some(json!({"locale": "en"})),
        );
        assert_eq!(plugin.scrub_event(clean), Enriched::Unchanged);

        let dirty = event(
            json!({"email": "a@b.io", "phone": "123"}),
            Some(json!({"ip": "10.0.0.1"})),
        );
        let once = changed(plugin.scrub_event(dirty));
        assert_eq!(plugin.scrub_event(once), Enriched::Unchanged);
    }

    #[test]
    fn escaped_text_is_still_found() {
        let plugin = scrubber(json!({"salt": "s"}));
        let input = Event {
            properties: r#"{"e": "a\u0040b.io"}"#.to_owned(),
            ..Event::new("x")
        };
        let out = changed(plugin.scrub_event(input));
        assert_eq!(out.property("e"), Some(json!(plugin.hash("a@b.io"))));
    }

    #[test]
    fn broken_properties_fail_the_event() {
        let plugin = scrubber(json!({"salt": "s"}));
        let input = Event {
            properties: "{\"e\": \"a@b.io\"".to_owned(),
            ..Event::new("x")
        };
        assert!(matches!(plugin.scrub_event(input), Enriched::Failed(_)));
    }

    #[test]
    fn enrich_returns_one_result_per_event() {
        let plugin = scrubber(json!({"salt": "s"}));
        let results = plugin.enrich(vec![
            event(json!({"a": 1}), None),
            event(json!({"e": "x@y.io"}), None),
        ]);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0], Enriched::Unchanged);
        assert!(matches!(results[1], Enriched::Changed(_)));
    }

    /// Deterministic pseudo-random numbers for the comparison below.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as usize % n
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }

        fn space(&mut self) -> &'static str {
            self.pick(&["", "", " ", "\n  "])
        }

        /// A JSON value as raw text (escapes and spacing included).
        fn value(&mut self, depth: usize) -> String {
            const SCALARS: &[&str] = &[
                r#""a@b.io""#,
                r#""x \u0040y.io, z@w.org""#,
                r#""call 10.0.0.7 now""#,
                r#""2001:db8::5""#,
                r#""sha256:abc""#,
                r#""plain text""#,
                r#""q\"uote 10.0.0.9 \\ end""#,
                r#""tab\t8.8.8.8\n""#,
                r#""\u00e9 10.0.0.1 \ud83d\ude00""#,
                r#""1.2.3.4.5""#,
                r#""::ffff:10.1.2.3""#,
                r#""v1.2.3 12:30:45""#,
                r#""https://shop.example.com/p/x?y=1""#,
                r#""127.0.0.1""#,
                r#""""#,
                "1.50",
                "-0",
                "1e3",
                "12345678901234567890",
                "true",
                "null",
            ];
            const KEYS: &[&str] = &[
                r#""email""#,
                r#""phone""#,
                r#""ph\u006fne""#,
                r#""address""#,
                r#""ip""#,
                r#""note""#,
                r#""tags""#,
                r#""n""#,
            ];
            match self.below(if depth == 0 { 1 } else { 4 }) {
                0 | 1 => self.pick(SCALARS).to_owned(),
                2 => {
                    let items: Vec<String> = (0..self.below(4))
                        .map(|_| {
                            format!("{}{}{}", self.space(), self.value(depth - 1), self.space())
                        })
                        .collect();
                    format!("[{}]", items.join(","))
                }
                _ => {
                    let mut keys: Vec<&str> = Vec::new();
                    let mut members = Vec::new();
                    for _ in 0..self.below(5) {
                        let key = self.pick(KEYS);
                        // Distinct keys: with repeats the old code kept only the last.
                        if keys.contains(&key)
                            || (key.contains("ph") && keys.iter().any(|k| k.contains("ph")))
                        {
                            continue;
                        }
                        keys.push(key);
                        let value = self.value(depth - 1);
                        members.push(format!(
                            "{}{key}{}:{}{value}{}",
                            self.space(),
                            self.space(),
                            self.space(),
                            self.space()
                        ));
                    }
                    format!("{{{}}}", members.join(","))
                }
            }
        }
    }

    #[test]
    fn same_results_as_parsing_and_reserialising() {
        let plugins = [
            scrubber(json!({"salt": "s"})),
            scrubber(json!({"salt": "s", "fields": ["phone", "address"]})),
            scrubber(json!({"mode": "drop"})),
            scrubber(json!({"mode": "drop", "fields": ["phone", "address", "tags"]})),
        ];
        let mut random = Random(7);
        let (mut changed, mut unchanged) = (0, 0);
        for _ in 0..4000 {
            let mut properties = random.value(4);
            if !properties.starts_with('{') {
                properties = format!(r#"{{"v": {properties}}}"#);
            }
            let context = match random.below(4) {
                0 => None,
                1 => Some(format!(r#"{{"locale": "en", "ip": {}}}"#, random.value(1))),
                2 => Some(format!(r#"{{ "ip" : {} , "n": [1]}}"#, random.value(0))),
                _ => Some(r#"{"locale": "en"}"#.to_owned()),
            };
            let event = Event {
                properties,
                context,
                ..Event::new("x")
            };
            for plugin in &plugins {
                let ours = plugin.scrub_event(event.clone());
                let theirs = reference::Reference(plugin).scrub_event(event.clone());
                let text = format!("{event:?}\n{ours:?}\n{theirs:?}");
                match (&ours, &theirs) {
                    (Enriched::Unchanged, Enriched::Unchanged) => unchanged += 1,
                    (Enriched::Changed(ours), Enriched::Changed(theirs)) => {
                        changed += 1;
                        let parse = |t: &str| serde_json::from_str::<Value>(t).expect(&text);
                        assert_eq!(parse(&ours.properties), parse(&theirs.properties), "{text}");
                        assert_eq!(
                            ours.context.as_deref().map(parse),
                            theirs.context.as_deref().map(parse),
                            "{text}"
                        );
                        // Scrubbing twice changes nothing.
                        assert_eq!(
                            plugin.scrub_event(ours.clone()),
                            Enriched::Unchanged,
                            "{text}"
                        );
                    }
                    _ => panic!("different outcomes:\n{text}"),
                }
            }
        }
        assert!(
            changed > 1000 && unchanged > 1000,
            "{changed} changed, {unchanged} unchanged"
        );
    }

    #[test]
    fn replacements_are_spliced_into_the_original_text() {
        let plugin = scrubber(json!({"salt": "s", "fields": ["phone"]}));
        let input = Event {
            properties: "{ \"z\": 1.50,\n  \"note\": \"mail a@b.io or 10.0.0.7\", \"phone\": [1, 2], \"a\": {} }".to_owned(),
            context: Some(r#"{"locale": "en", "ip": "10.9.8.7", "x": 1e3}"#.to_owned()),
            ..Event::new("x")
        };
        let out = changed(plugin.scrub_event(input));
        assert_eq!(
            out.properties,
            format!(
                "{{ \"z\": 1.50,\n  \"note\": \"mail {} or {}\", \"phone\": \"{}\", \"a\": {{}} }}",
                plugin.hash("a@b.io"),
                plugin.hash("10.0.0.7"),
                plugin.hash("[1,2]")
            )
        );
        assert_eq!(
            out.context.unwrap(),
            format!(
                r#"{{"locale": "en", "ip": "{}", "x": 1e3}}"#,
                plugin.hash("10.9.8.7")
            )
        );
    }

    #[test]
    fn drop_mode_removes_with_one_comma() {
        let plugin = scrubber(json!({"mode": "drop"}));
        for (input, expected) in [
            (r#"{"a": "x@y.io"}"#, r#"{}"#),
            (r#"{"a": "x@y.io", "b": 1}"#, r#"{"b": 1}"#),
            (r#"{"b": 1, "a": "x@y.io"}"#, r#"{"b": 1}"#),
            (
                r#"{"a": "x@y.io", "c": "10.0.0.1", "b": 1, "d": "x@y.io", "e": 2, "f": "x@y.io"}"#,
                r#"{"b": 1, "e": 2}"#,
            ),
            (
                r#"{ "l" : [ "x@y.io" , "10.0.0.1" ] }"#,
                r#"{ "l" : [  ] }"#,
            ),
            (r#"{"l": [1, "x@y.io", 2, "x@y.io"]}"#, r#"{"l": [1, 2]}"#),
        ] {
            let event = Event {
                properties: input.to_owned(),
                ..Event::new("x")
            };
            assert_eq!(
                changed(plugin.scrub_event(event)).properties,
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn invalid_text_without_anything_to_scrub_is_unchanged() {
        let plugin = scrubber(json!({"salt": "s"}));
        let event = Event {
            properties: r#"{"plan": "pro""#.to_owned(),
            context: Some(r#"{"locale": "#.to_owned()),
            ..Event::new("x")
        };
        assert_eq!(plugin.scrub_event(event.clone()), Enriched::Unchanged);
        let context_with_ip = Event {
            context: Some(r#"{"ip": "10.0.0.1""#.to_owned()),
            ..event
        };
        assert!(matches!(
            plugin.scrub_event(context_with_ip),
            Enriched::Failed(_)
        ));
    }

    #[test]
    fn the_quick_look_never_misses_an_address() {
        let plugin = scrubber(json!({"salt": "s"}));
        let mut random = Random(11);
        const ALPHABET: &[&str] = &[
            "0", "1", "25", "9", "a", "f", "g", ":", ".", " ", "@", "x", "::",
        ];
        for _ in 0..20_000 {
            let text: String = (0..random.below(14))
                .map(|_| random.pick(ALPHABET))
                .collect();
            let raw = json!({"k": text, "n": 1.5}).to_string();
            if !find_pii(&text).is_empty() {
                assert!(plugin.may_contain_pii(&raw), "{raw}");
            }
            assert!(
                plugin.may_contain_pii(&raw) || !plugin.looks_like_pii(&raw),
                "{raw}"
            );
        }
        for clean in [
            r#"{"price":89.99,"url":"https://shop.example.com/p?x=1","v":"1.2","t":"12:30"}"#,
            r#"{ "a" : -1.5e3 , "b" : [0.1, 2.25] }"#,
        ] {
            assert!(!plugin.may_contain_pii(clean), "{clean}");
        }
    }

    #[test]
    fn config_validation() {
        for bad in [
            json!({}),
            json!({"mode": "hash", "salt": ""}),
            json!({"mode": "shred", "salt": "s"}),
            json!({"salt": "s", "fields": [""]}),
            json!({"salt": "s", "feilds": []}),
        ] {
            assert!(
                matches!(
                    PiiScrubber::init(&bad.to_string()),
                    Err(PluginError::InvalidConfig(_))
                ),
                "{bad}"
            );
        }
        assert!(PiiScrubber::init(r#"{"mode": "drop"}"#).is_ok());
    }
}
