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
//! returned `unchanged`; otherwise a merge patch of what changed (WIT
//! `sluice:plugin@0.2.0`; the event the host makes of it is the one the 0.1
//! plugin returned, as JSON values), e.g.
//! `{"properties":{"email":"sha256:…","profile":{"phone":null}},"context":{"ip":"sha256:…"}}`.
//!
//! How (for speed): the raw JSON is scanned, not parsed into a tree. One
//! quick pass over the raw properties first looks for anything an address
//! needs (an `@`, digits between two dots, a second colon after hex
//! digits, an escape, a configured field name); most properties have none
//! and are not scanned at all. Otherwise only string values that could hold
//! an address (an `@`, three dots or two colons) are searched exactly, and
//! replacements are spliced into the original text, so everything else (key
//! order, spacing, number spelling) stays as it came. The patch names only
//! the members that changed: a string or array as its spliced text, a
//! removed member as `null`, an object as a patch of its own (an object in
//! a merge patch is merged, not replaced). An object that repeats a key it
//! changes (the gateway passes such objects on as sent) is diffed as JSON
//! values instead, where the last member of a name counts; the one
//! difference from the 0.1 result: dropping a later member that uncovers an
//! earlier `null` one removes the name (a merge patch cannot set `null`).
//!
//! Text that is not JSON fails the event, except where it shows no `@`, no
//! escape, no IP-like text and no configured field name (properties) or no
//! `"ip"` and no escape (context): there was nothing to scrub, so it is
//! returned `unchanged` as before. (The gateway sends only JSON objects.)

mod find;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::ops::Range;

use find::may_hold_address;
pub use find::{find_ips, find_pii};
use sha2::{Digest, Sha256};
use sluice_plugin_sdk::scan::{self, Kind, Str};
use sluice_plugin_sdk::{
    Enriched, Enricher, Event, Fields, JsonObject, Patch, PluginError, export_enricher,
    parse_config, serde_json,
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
    const FIELDS: Fields = Fields::PROPERTIES.union(Fields::CONTEXT);

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

    fn enrich(&self, event: &Event<'_>) -> Enriched {
        let mut patch = Patch::new();
        if let Err(e) = self.scrub_properties(event.properties(), &mut patch) {
            return Enriched::failed(format!("properties are not JSON: {e}"));
        }
        if let Some(context) = event.context()
            && let Err(e) = self.scrub_context(context, &mut patch)
        {
            return Enriched::failed(format!("context is not JSON: {e}"));
        }
        if patch.is_empty() {
            Enriched::unchanged()
        } else {
            Enriched::patched(patch)
        }
    }
}

/// Where an object is, which decides what of it is scrubbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// In the properties: every string (at any depth), and `fields` whole.
    Properties,
    /// The context object: its top-level `ip`, whole.
    Context,
}

/// What scrubbing does to one member of an object, as a merge patch sees it.
#[derive(Debug)]
enum Change {
    Kept,
    /// `null`: the member is removed.
    Remove,
    /// The member's new value: JSON text (for an object: a merge patch of it).
    Set(String),
}

/// The members of an object's merge patch: decoded key, new JSON text
/// (`None`: `null`, remove).
type PatchMembers<'a> = Vec<(Cow<'a, str>, Option<String>)>;

impl PiiScrubber {
    /// Adds to `patch` the top-level properties that scrubbing changes.
    fn scrub_properties(&self, text: &str, patch: &mut Patch) -> Result<(), scan::Error> {
        if !self.may_contain_pii(text) {
            return Ok(()); // the usual case: nothing to find, no need to scan
        }
        match self.object_patch(text, 0..text.len(), scan::members(text), Scope::Properties) {
            Ok(members) => {
                for (key, value) in members {
                    match value {
                        Some(json) => patch.set_property_raw(&key, json),
                        None => patch.remove_property(&key),
                    };
                }
                Ok(())
            }
            // Text that is not JSON but shows nothing to scrub passes
            // unchanged, as before.
            Err(_) if !self.looks_like_pii(text) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Adds to `patch` the context's top-level `ip`, scrubbed, if it changes.
    fn scrub_context(&self, text: &str, patch: &mut Patch) -> Result<(), scan::Error> {
        match self.object_patch(text, 0..text.len(), scan::members(text), Scope::Context) {
            Ok(members) => {
                for (key, value) in members {
                    match value {
                        Some(json) => patch.set_context_member_raw(&key, json),
                        None => patch.remove_context_member(&key),
                    };
                }
                Ok(())
            }
            // Valid JSON but not an object: nothing to scrub.
            Err(_) if scan::value(text).is_ok() => Ok(()),
            Err(_) if !text.contains("\"ip\"") && !text.contains('\\') => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The merge patch (its members) that scrubs the object `members`
    /// (at `span` of `doc`): empty when nothing changes. Only the members
    /// that change are in it: a scrubbed string or array as its new text
    /// (spliced into the original text), a removed one as `null`, and a
    /// nested object as a merge patch of its own (an object in a merge
    /// patch is merged, not replaced, so `{"k": 1}` would not remove a
    /// scrubbed sibling of `k`).
    fn object_patch<'a>(
        &self,
        doc: &'a str,
        span: Range<usize>,
        members: scan::Members<'a>,
        scope: Scope,
    ) -> Result<PatchMembers<'a>, scan::Error> {
        let all = members.clone();
        let mut keys = KeySeen::default();
        let mut changes: Vec<(Str<'a>, Option<String>)> = Vec::new();
        for member in members {
            let member = member?;
            keys.add(member.key);
            match self.member_change(doc, member.key, member.value, scope)? {
                Change::Kept => {}
                Change::Remove => changes.push((member.key, None)),
                Change::Set(json) => changes.push((member.key, Some(json))),
            }
        }
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        // A changed key that repeats: the members of one name are scrubbed
        // one by one (as in the text), but a patch has one value per name,
        // and the event's value is the last member's. Rare: diff the values.
        if changes.iter().any(|&(key, _)| keys.may_repeat(key)) && repeats(all.clone(), &changes) {
            return self.object_patch_by_value(doc, span, all, scope);
        }
        Ok(changes
            .into_iter()
            .map(|(key, value)| (key.decode(), value))
            .collect())
    }

    /// What scrubbing does to the member `key` of an object in `scope`.
    fn member_change(
        &self,
        doc: &str,
        key: Str<'_>,
        value: scan::Value<'_>,
        scope: Scope,
    ) -> Result<Change, scan::Error> {
        match scope {
            Scope::Context if key.eq_str("ip") => {
                text_change(doc, value, |out| self.scrub_whole(value, out))
            }
            Scope::Context => Ok(Change::Kept),
            Scope::Properties if self.is_field(key) => {
                text_change(doc, value, |out| self.scrub_whole(value, out))
            }
            Scope::Properties if value.kind() == Kind::Object => {
                let nested =
                    self.object_patch(doc, value.span(), value.members(), Scope::Properties)?;
                Ok(if nested.is_empty() {
                    Change::Kept
                } else {
                    Change::Set(object_text(&nested))
                })
            }
            Scope::Properties => text_change(doc, value, |out| self.scrub_value(value, out)),
        }
    }

    /// [`object_patch`](Self::object_patch) for an object with repeated
    /// keys: scrub its text as a whole, then diff the two as JSON values
    /// (where the last member of a name wins, as in the event).
    fn object_patch_by_value<'a>(
        &self,
        doc: &str,
        span: Range<usize>,
        members: scan::Members<'_>,
        scope: Scope,
    ) -> Result<PatchMembers<'a>, scan::Error> {
        let mut out = Rewriter::within(doc, span.clone());
        match scope {
            Scope::Properties => self.scrub_object(members, &mut out)?,
            Scope::Context => self.scrub_context_members(members, &mut out)?,
        };
        let Some(after) = out.finish() else {
            return Ok(Vec::new());
        };
        let parse = |text: &str| {
            serde_json::from_str::<JsonObject>(text).map_err(|_| scan::Error {
                offset: span.start,
                what: "invalid object",
            })
        };
        Ok(object_diff(&parse(&doc[span.clone()])?, &parse(&after)?))
    }

    /// Scrubs the context's top-level `ip` in the text.
    fn scrub_context_members(
        &self,
        members: scan::Members<'_>,
        out: &mut Rewriter<'_>,
    ) -> Result<Outcome, scan::Error> {
        let members = members.map(|m| m.map(|m| (m.key_offset, Some(m.key), m.value)));
        self.scrub_items(members, out, |key, value, out| {
            if key.is_some_and(|key| key.eq_str("ip")) {
                self.scrub_whole(value, out)
            } else {
                Ok(Outcome::Kept)
            }
        })
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

/// A copy of a part of a text (a value) with some byte ranges replaced,
/// built only once the first range is replaced. Ranges must come in order,
/// not overlap, and lie within the part.
#[derive(Debug)]
struct Rewriter<'a> {
    source: &'a str,
    out: Option<String>,
    /// `source` before this offset is in `out` (or replaced).
    copied: usize,
    /// The end of the part.
    end: usize,
}

impl<'a> Rewriter<'a> {
    /// Rewrites `span` of `source`.
    fn within(source: &'a str, span: Range<usize>) -> Self {
        Self {
            source,
            out: None,
            copied: span.start,
            end: span.end,
        }
    }

    /// Drops `range` of the source; what is pushed to the returned string
    /// takes its place.
    fn replace(&mut self, range: Range<usize>) -> &mut String {
        // Hashes make the text longer: room for a couple.
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.end - self.copied + 160));
        out.push_str(&self.source[self.copied..range.start]);
        self.copied = range.end;
        out
    }

    fn delete(&mut self, range: Range<usize>) {
        self.replace(range);
    }

    /// The part's new text, `None` when nothing was replaced.
    fn finish(self) -> Option<String> {
        let mut out = self.out?;
        out.push_str(&self.source[self.copied..self.end]);
        Some(out)
    }
}

/// What `scrub` (text mode, on a [`Rewriter`] of `value`) does to `value`.
fn text_change(
    doc: &str,
    value: scan::Value<'_>,
    scrub: impl FnOnce(&mut Rewriter<'_>) -> Result<Outcome, scan::Error>,
) -> Result<Change, scan::Error> {
    let mut out = Rewriter::within(doc, value.span());
    Ok(match scrub(&mut out)? {
        Outcome::Kept => Change::Kept,
        Outcome::Remove => Change::Remove,
        Outcome::Changed => Change::Set(out.finish().unwrap_or_else(|| value.text().to_owned())),
    })
}

/// The JSON text of a merge patch's object.
fn object_text(members: &PatchMembers<'_>) -> String {
    let mut out = String::with_capacity(
        2 + members
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(4, String::len) + 4)
            .sum::<usize>(),
    );
    out.push('{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        scan::push_string(&mut out, key);
        out.push(':');
        out.push_str(value.as_deref().unwrap_or("null"));
    }
    out.push('}');
    out
}

/// The merge patch that turns `before` into `after` (which has no `null`
/// members the patch would need to set: scrubbing never makes one).
fn object_diff<'a>(before: &JsonObject, after: &JsonObject) -> PatchMembers<'a> {
    let mut members: PatchMembers<'a> = before
        .keys()
        .filter(|key| !after.contains_key(*key))
        .map(|key| (Cow::Owned(key.clone()), None))
        .collect();
    for (key, value) in after {
        let change = match (before.get(key), value) {
            (Some(old), new) if old == new => continue,
            (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) => {
                object_text(&object_diff(old, new))
            }
            _ => value.to_string(),
        };
        members.push((Cow::Owned(key.clone()), Some(change)));
    }
    members
}

/// Which keys an object has, roughly: 64 buckets by length and end bytes,
/// enough to rule out a repeated key without comparing keys.
#[derive(Debug, Default)]
struct KeySeen {
    once: u64,
    twice: u64,
    /// Escaped keys spell a name differently: any makes every key suspect.
    escaped: bool,
}

impl KeySeen {
    fn add(&mut self, key: Str<'_>) {
        let bit = Self::bit(key);
        self.twice |= self.once & bit;
        self.once |= bit;
        self.escaped |= key.has_escapes();
    }

    /// `false` guarantees that `key` (added) occurs once.
    fn may_repeat(&self, key: Str<'_>) -> bool {
        self.escaped || self.twice & Self::bit(key) != 0
    }

    fn bit(key: Str<'_>) -> u64 {
        let raw = key.raw().as_bytes();
        let ends = match raw {
            [] => 0,
            [first, .., last] => usize::from(*first) * 7 + usize::from(*last) * 13,
            [only] => usize::from(*only) * 20,
        };
        1 << ((raw.len() + ends) % 64)
    }
}

/// Whether a key of `changes` occurs more than once among `members`.
fn repeats(members: scan::Members<'_>, changes: &[(Str<'_>, Option<String>)]) -> bool {
    let mut counts = vec![0u32; changes.len()];
    for member in members.flatten() {
        for (count, (key, _)) in counts.iter_mut().zip(changes) {
            if same_key(member.key, *key) {
                *count += 1;
            }
        }
    }
    counts.iter().any(|&count| count > 1)
}

fn same_key(a: Str<'_>, b: Str<'_>) -> bool {
    if a.has_escapes() || b.has_escapes() {
        a.chars().eq(b.chars())
    } else {
        a.raw() == b.raw()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

export_enricher!(PiiScrubber);
