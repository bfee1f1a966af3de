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
//! returned `unchanged` (properties whose raw text shows no `@`, no escape,
//! no IP-like text and no configured field name are not even parsed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use sha2::{Digest, Sha256};
use sluice_plugin_sdk::{
    Enriched, Enricher, Event, PluginError, Value, export_enricher, parse_config, serde_json,
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
                } else if self.mode == Mode::Drop {
                    Outcome::Remove
                } else {
                    *text = self.hash_spans(text, &found);
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
                    let member_outcome = if self.fields.iter().any(|f| f == key) {
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
            _ if self.mode == Mode::Drop => Outcome::Remove,
            Value::String(text) => {
                *text = self.hash(text);
                Outcome::Changed
            }
            other => {
                *other = Value::String(self.hash(&other.to_string()));
                Outcome::Changed
            }
        }
    }

    fn hash_spans(&self, text: &str, spans: &[Range<usize>]) -> String {
        let mut out = String::with_capacity(text.len() + spans.len() * 71);
        let mut last = 0;
        for span in spans {
            out.push_str(&text[last..span.start]);
            out.push_str(&self.hash(&text[span.clone()]));
            last = span.end;
        }
        out.push_str(&text[last..]);
        out
    }

    /// `sha256:` + lower-case hex of sha256(salt + value).
    pub fn hash(&self, value: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.salt.as_bytes())
            .chain_update(value.as_bytes())
            .finalize();
        let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
        out.push_str(HASH_PREFIX);
        for byte in digest.iter() {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::json;

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
