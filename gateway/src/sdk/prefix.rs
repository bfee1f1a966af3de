//! Finding the key in the first bytes of a decoded body, for bodies that
//! carry their key inside (PostHog's `api_key`/`token`, Segment's
//! `writeKey`) and decode to more than `ingest.max_pre_auth_decoded_bytes`:
//! the key is checked before the rest is decoded ([`crate::body::PreAuth`]).
//!
//! The bytes are a prefix, so any value may be cut off; a value cut off is
//! not a key. Only the punctuation is followed (no value is decoded but the
//! names and the key itself), in one pass without recursion past the four
//! levels where a key may stand, so the cost is linear in the prefix
//! whatever it holds. What is found is only a gate: the request is then
//! authenticated again with the key the full parse finds, as any request.

use std::borrow::Cow;

/// Where a protocol's key may stand.
#[derive(Debug, Clone, Copy)]
pub struct Places {
    /// The key's names, in the body's top object (and, with `in_messages`,
    /// in each message and its `properties`).
    pub names: &'static [&'static str],
    /// The key may also stand in the messages: the elements of a top-level
    /// array or of the top object's `batch`, or the top object as one
    /// message; and in their `properties` (posthog-js's `properties.token`).
    pub in_messages: bool,
}

/// The first non-empty key in `text` at one of `places`, if the prefix
/// holds one whole.
pub fn find_key(text: &[u8], places: Places) -> Option<String> {
    let mut scan = Scan { text, at: 0 };
    scan.ws();
    let found = match scan.peek() {
        Some(b'{') if places.in_messages => scan.object(places.names, Level::TopMessage),
        Some(b'{') => scan.object(places.names, Level::Top),
        Some(b'[') if places.in_messages => scan.messages(places.names),
        _ => return None,
    };
    found.ok().flatten()
}

/// The object being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The body, when only it may hold the key (Segment).
    Top,
    /// The body, which may also be one message or hold a `batch` (PostHog).
    TopMessage,
    Message,
    Properties,
}

/// The prefix ended (or stopped being JSON) before the answer.
#[derive(Debug)]
struct Cut;

struct Scan<'t> {
    text: &'t [u8],
    at: usize,
}

impl<'t> Scan<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Cut> {
        if self.peek() != Some(byte) {
            return Err(Cut);
        }
        self.at += 1;
        Ok(())
    }

    /// A whole string literal, quotes included.
    fn string(&mut self) -> Result<&'t [u8], Cut> {
        let start = self.at;
        self.expect(b'"')?;
        loop {
            match self.peek().ok_or(Cut)? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    return self.text.get(start..self.at).ok_or(Cut);
                }
                _ => self.at += 1,
            }
        }
    }

    /// Skips one value. Nesting is counted, not recursed into.
    fn skip_value(&mut self) -> Result<(), Cut> {
        match self.peek().ok_or(Cut)? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek().ok_or(Cut)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                // A number, `true`, `false` or `null`: it ends at a delimiter
                // (at the end of the prefix it may go on).
                let start = self.at;
                while !matches!(
                    self.peek().ok_or(Cut)?,
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                ) {
                    self.at += 1;
                }
                if self.at == start {
                    return Err(Cut);
                }
                Ok(())
            }
        }
    }

    /// Reads an object's members, looking for the key where `level` allows.
    fn object(&mut self, names: &[&str], level: Level) -> Result<Option<String>, Cut> {
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(None);
        }
        loop {
            self.ws();
            let name = text_of(self.string()?).ok_or(Cut)?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let next = self.peek().ok_or(Cut)?;
            let message = matches!(level, Level::TopMessage | Level::Message);
            if names.contains(&&*name) && next == b'"' {
                let key = text_of(self.string()?).ok_or(Cut)?;
                if !key.is_empty() {
                    return Ok(Some(key.into_owned()));
                }
            } else if name == "batch" && level == Level::TopMessage && next == b'[' {
                if let Some(key) = self.messages(names)? {
                    return Ok(Some(key));
                }
            } else if name == "properties" && message && next == b'{' {
                if let Some(key) = self.object(names, Level::Properties)? {
                    return Ok(Some(key));
                }
            } else {
                self.skip_value()?;
            }
            self.ws();
            match self.peek().ok_or(Cut)? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Ok(None);
                }
                _ => return Err(Cut),
            }
        }
    }

    /// Reads an array of messages, looking for the key in each.
    fn messages(&mut self, names: &[&str]) -> Result<Option<String>, Cut> {
        self.expect(b'[')?;
        loop {
            self.ws();
            match self.peek().ok_or(Cut)? {
                b']' => {
                    self.at += 1;
                    return Ok(None);
                }
                b'{' => {
                    if let Some(key) = self.object(names, Level::Message)? {
                        return Ok(Some(key));
                    }
                }
                _ => self.skip_value()?,
            }
            self.ws();
            match self.peek().ok_or(Cut)? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Ok(None);
                }
                _ => return Err(Cut),
            }
        }
    }
}

/// A string literal's text: borrowed unless it has escapes.
fn text_of(literal: &[u8]) -> Option<Cow<'_, str>> {
    if literal.contains(&b'\\') {
        return serde_json::from_slice::<String>(literal)
            .ok()
            .map(Cow::Owned);
    }
    let inner = literal.get(1..literal.len().checked_sub(1)?)?;
    std::str::from_utf8(inner).ok().map(Cow::Borrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTHOG: Places = Places {
        names: &["api_key", "token"],
        in_messages: true,
    };
    const SEGMENT: Places = Places {
        names: &["writeKey"],
        in_messages: false,
    };

    fn key(text: &str, places: Places) -> Option<String> {
        find_key(text.as_bytes(), places)
    }

    #[test]
    fn finds_the_key_where_each_sdk_puts_it() {
        // posthog-node and posthog-js: first; then cut off mid-batch.
        let node = r#"{"api_key":"sk_a","batch":[{"event":"e","properties":{"n":1"#;
        assert_eq!(key(node, POSTHOG).as_deref(), Some("sk_a"));
        // Older posthog-js: a bare array, the token in the first event's properties.
        let js = r#"[ {"event":"e","properties":{"$os":"Linux","x":[1,{"y":"}"}],"token":"sk_b"}}, {"event":"#;
        assert_eq!(key(js, POSTHOG).as_deref(), Some("sk_b"));
        // A single event with the key at its top; escapes in names and values.
        let single = r#"{"event":"e","api\u005fkey":"sk_\u0063"}"#;
        assert_eq!(key(single, POSTHOG).as_deref(), Some("sk_c"));
        // In a message of `batch`, after an empty one.
        let inner = r#"{"batch":[{"api_key":""},{"event":"e","token":"sk_d"}]"#;
        assert_eq!(key(inner, POSTHOG).as_deref(), Some("sk_d"));
        // Segment: only at the top.
        let segment = r#"{"writeKey":"sk_e","batch":[{"writeKey":"sk_f"}]}"#;
        assert_eq!(key(segment, SEGMENT).as_deref(), Some("sk_e"));
        let nested = r#"{"batch":[{"writeKey":"sk_f"}],"writeKey":"sk_g"}"#;
        assert_eq!(key(nested, SEGMENT).as_deref(), Some("sk_g"));
    }

    #[test]
    fn a_key_cut_off_or_past_the_prefix_is_not_found() {
        // posthog-python puts `api_key` last.
        let python = r#"{"batch": [{"event": "e", "properties": {"n": 1}}, {"event": "#;
        assert_eq!(key(python, POSTHOG), None);
        assert_eq!(key(r#"{"api_key":"sk_cut"#, POSTHOG), None);
        assert_eq!(key(r#"{"n":12"#, POSTHOG), None);
        assert_eq!(key(&" ".repeat(4096), POSTHOG), None);
        assert_eq!(key(&"[".repeat(100_000), POSTHOG), None);
        assert_eq!(key(r#"{"api_key":42,"token":null}"#, POSTHOG), None);
        assert_eq!(key(r#"{"a":}"#, POSTHOG), None);
        assert_eq!(key("not json", POSTHOG), None);
        // Not where Segment reads it.
        assert_eq!(key(r#"[{"writeKey":"sk"}]"#, SEGMENT), None);
        assert_eq!(key(r#"{"properties":{"writeKey":"sk"}}"#, SEGMENT), None);
    }
}
