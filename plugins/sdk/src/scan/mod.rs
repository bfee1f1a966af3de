//! Allocation-free scanning of JSON text: find members of an object (or
//! elements of an array) and get each value's raw text and byte span,
//! without building a [`serde_json::Value`] tree.
//!
//! Plugins that look at a few members of an event's `properties` or
//! `context` (the common case) only need to know where those members are.
//! Parsing the whole text into a tree allocates a string per key and value;
//! scanning it allocates nothing, and is several times cheaper in wasm.
//!
//! The scanner checks the full JSON grammar (RFC 8259) of everything it
//! passes over, strings and nested values included: escapes, `\u` surrogate
//! pairs, control characters, number syntax, literals, trailing text. It
//! accepts exactly what `serde_json` accepts, its nesting limit
//! ([`MAX_DEPTH`]) included. An iterator that has yielded every member
//! without an error has therefore seen a valid object.
//!
//! ```
//! use sluice_plugin_sdk::scan;
//!
//! let text = r#"{"plan": "pro", "nested": {"plan": 1}, "seats": 3}"#;
//! let plan = scan::find_member(text, "plan").unwrap().unwrap();
//! assert_eq!(plan.as_str().unwrap().decode(), "pro");
//! assert_eq!(&text[plan.span()], r#""pro""#);
//!
//! let keys: Vec<_> = scan::members(text)
//!     .map(|m| m.unwrap().key.decode().into_owned())
//!     .collect();
//! assert_eq!(keys, ["plan", "nested", "seats"]); // top level only
//! ```

mod lex;
mod quick;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use lex::{hex4, scan_string, scan_value, simple_escape, skip_ws};
pub use quick::{count_bytes, find_any_byte, may_contain_key};

/// Deepest nesting of objects and arrays the scanner accepts, counting the
/// outermost container as level 1 (as `serde_json`'s recursion limit does).
pub const MAX_DEPTH: usize = 127;

/// Why the text is not valid JSON (of the expected shape), and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// Byte offset into the scanned text.
    pub offset: usize,
    /// What was wrong, e.g. `expected ':'`.
    pub what: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

impl std::error::Error for Error {}

/// The kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{…}`
    Object,
    /// `[…]`
    Array,
    /// `"…"`
    String,
    /// `-1.5e3`
    Number,
    /// `true` or `false`
    Bool,
    /// `null`
    Null,
}

/// The contents of a JSON string as written (between the quotes, escapes
/// not decoded), known to be valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str<'a> {
    /// The scanned document, and where the contents are in it: slicing a
    /// `&str` checks character boundaries, so it is left until asked for.
    doc: &'a str,
    start: usize,
    end: usize,
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The string whose text, quotes included, is `quoted` (not checked:
    /// the caller knows it is a valid JSON string). `None` when `quoted` is
    /// not even framed by quotes.
    pub(crate) fn from_quoted(quoted: &'a str) -> Option<Self> {
        let bytes = quoted.as_bytes();
        if bytes.len() < 2 || bytes[0] != b'"' || bytes[bytes.len() - 1] != b'"' {
            return None;
        }
        let (start, end) = (1, bytes.len() - 1);
        Some(Self {
            doc: quoted,
            start,
            end,
            escaped: bytes[start..end].contains(&b'\\'),
        })
    }

    /// The text between the quotes, escapes as written.
    pub fn raw(&self) -> &'a str {
        &self.doc[self.start..self.end]
    }

    /// The length of [`raw`](Self::raw) in bytes (without slicing it).
    #[inline]
    pub fn raw_len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the string contains a backslash escape (then
    /// [`raw`](Self::raw) differs from [`decode`](Self::decode)).
    pub fn has_escapes(&self) -> bool {
        self.escaped
    }

    /// The string's value: borrowed when it has no escapes.
    pub fn decode(&self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(self.chars().collect())
        } else {
            Cow::Borrowed(self.raw())
        }
    }

    /// The decoded characters, without allocating.
    pub fn chars(&self) -> Chars<'a> {
        Chars { rest: self.raw() }
    }

    /// Whether the decoded value equals `other`, without allocating.
    #[inline]
    pub fn eq_str(&self, other: &str) -> bool {
        if self.escaped {
            // Decoding only shortens the text: an escape is 2 to 12 bytes
            // for a character of 1 to 4.
            self.end - self.start >= other.len() && self.chars().eq(other.chars())
        } else {
            self.doc.as_bytes().get(self.start..self.end) == Some(other.as_bytes())
        }
    }
}

/// The decoded characters of a [`Str`].
#[derive(Debug, Clone)]
pub struct Chars<'a> {
    rest: &'a str,
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next()?;
        if c != '\\' {
            self.rest = chars.as_str();
            return Some(c);
        }
        let bytes = self.rest.as_bytes();
        let (c, used) = match bytes.get(1) {
            Some(b'u') => {
                let high = hex4(bytes, 2).unwrap_or(0xFFFD);
                if (0xD800..0xDC00).contains(&high)
                    && bytes.get(6) == Some(&b'\\')
                    && bytes.get(7) == Some(&b'u')
                {
                    let low = hex4(bytes, 8).unwrap_or(0);
                    let code =
                        0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                    (char::from_u32(code).unwrap_or('\u{FFFD}'), 12)
                } else {
                    (char::from_u32(high).unwrap_or('\u{FFFD}'), 6)
                }
            }
            Some(&e) => (simple_escape(e).unwrap_or('\u{FFFD}'), 2),
            None => ('\u{FFFD}', 1),
        };
        // Valid strings (the only ones a `Str` holds) have `used` bytes here;
        // `get` keeps a hand-made bad one from panicking.
        self.rest = self.rest.get(used..).unwrap_or("");
        Some(c)
    }
}

/// One JSON value found in a text: its kind and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    /// The scanned document, and where the value is in it (quotes and
    /// brackets included).
    doc: &'a str,
    start: usize,
    end: usize,
    kind: Kind,
    /// Strings: whether they contain an escape.
    escaped: bool,
    /// How many containers enclose it.
    depth: usize,
}

impl<'a> Value<'a> {
    /// The value's text as written (a string with its quotes).
    pub fn text(&self) -> &'a str {
        &self.doc[self.start..self.end]
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its byte range in the scanned document.
    #[inline]
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Whether it is `null`.
    #[inline]
    pub fn is_null(&self) -> bool {
        self.kind == Kind::Null
    }

    /// The string, if it is one.
    #[inline]
    pub fn as_str(&self) -> Option<Str<'a>> {
        (self.kind == Kind::String).then_some(Str {
            doc: self.doc,
            start: self.start + 1,
            end: self.end - 1,
            escaped: self.escaped,
        })
    }

    /// The members of this object (spans stay relative to the document).
    /// An error on the first item when it is not an object.
    pub fn members(&self) -> Members<'a> {
        Members(Cursor::new(
            self.doc,
            self.start..self.end,
            self.depth,
            b'{',
        ))
    }

    /// The elements of this array (spans stay relative to the document).
    /// An error on the first item when it is not an array.
    pub fn elements(&self) -> Elements<'a> {
        Elements(Cursor::new(
            self.doc,
            self.start..self.end,
            self.depth,
            b'[',
        ))
    }
}

/// One member of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Its name.
    pub key: Str<'a>,
    /// Offset of the key's opening quote in the document.
    pub key_offset: usize,
    /// Its value.
    pub value: Value<'a>,
}

impl Member<'_> {
    /// From the key's opening quote to the end of the value.
    #[inline]
    pub fn span(&self) -> Range<usize> {
        self.key_offset..self.value.span().end
    }
}

/// The single JSON value that is the whole of `text` (whitespace around it
/// allowed), checked to the end.
///
/// # Errors
/// When `text` is not exactly one valid JSON value.
pub fn value(text: &str) -> Result<Value<'_>, Error> {
    let bytes = text.as_bytes();
    let start = skip_ws(bytes, 0);
    let (kind, end, escaped) = scan_value(bytes, start, 0)?;
    if skip_ws(bytes, end) != bytes.len() {
        return Err(Error {
            offset: skip_ws(bytes, end),
            what: "trailing characters",
        });
    }
    Ok(Value {
        doc: text,
        start,
        end,
        kind,
        escaped,
        depth: 0,
    })
}

/// The members of the object that is the whole of `text`, in order. Yields
/// an error (and then ends) where the text stops being a valid object;
/// running to the end checks all of it.
pub fn members(text: &str) -> Members<'_> {
    Members(Cursor::new(text, 0..text.len(), 0, b'{'))
}

/// The elements of the array that is the whole of `text`, in order (errors
/// as for [`members`]).
pub fn elements(text: &str) -> Elements<'_> {
    Elements(Cursor::new(text, 0..text.len(), 0, b'['))
}

/// The value of the top-level member `key` of the object `text` (the last
/// one if the key repeats, as `serde_json` does), `None` when absent. Scans
/// (and so checks) the whole object.
///
/// # Errors
/// When `text` is not a valid JSON object.
pub fn find_member<'a>(text: &'a str, key: &str) -> Result<Option<Value<'a>>, Error> {
    let mut found = None;
    for member in members(text) {
        let member = member?;
        if member.key.eq_str(key) {
            found = Some(member.value);
        }
    }
    Ok(found)
}

/// Iterator over an object's members (see [`members`]).
#[derive(Debug, Clone)]
pub struct Members<'a>(Cursor<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = Result<Member<'a>, Error>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        // Straight-line (no closures): this is the hot loop of every plugin.
        let result = match self.0.next_item() {
            Ok(Some(key_at)) => match self.0.member_at(key_at) {
                Ok(member) => Ok(Some(member)),
                Err(e) => Err(e),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.0.finish(result)
    }
}

/// Iterator over an array's elements (see [`elements`]).
#[derive(Debug, Clone)]
pub struct Elements<'a>(Cursor<'a>);

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Value<'a>, Error>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let c = &mut self.0;
        let result = c
            .next_item()
            .and_then(|found| found.map(|at| c.value_at(at)).transpose());
        c.finish(result)
    }
}

/// Appends `value` to `out` as a JSON string: quoted, and escaped as
/// `serde_json` writes it (`"`, `\\` and control characters only).
pub fn push_string(out: &mut String, value: &str) {
    out.push('"');
    let mut clean = 0;
    for (at, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&value[clean..at]);
        clean = at + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&value[clean..]);
    out.push('"');
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Next,
    Done,
}

/// Shared state of [`Members`] and [`Elements`].
#[derive(Debug, Clone)]
struct Cursor<'a> {
    doc: &'a str,
    /// The document up to the end of this container: offsets are the
    /// document's, and the container's end is the end of `bytes`.
    bytes: &'a [u8],
    /// How many containers enclose the items (this one included).
    depth: usize,
    pos: usize,
    open: u8,
    state: State,
}

impl<'a> Cursor<'a> {
    fn new(doc: &'a str, span: Range<usize>, enclosing: usize, open: u8) -> Self {
        Self {
            doc,
            bytes: doc.as_bytes().get(..span.end).unwrap_or_default(),
            depth: enclosing + 1,
            pos: span.start,
            open,
            state: State::Start,
        }
    }

    fn close(&self) -> u8 {
        if self.open == b'{' { b'}' } else { b']' }
    }

    fn error(&self, at: usize, what: &'static str) -> Error {
        Error { offset: at, what }
    }

    /// Moves to the next item: `Some(offset of its first byte)` (for an
    /// object: the key's quote), or `None` after the closing bracket (and
    /// nothing but whitespace after it).
    #[inline(always)]
    fn next_item(&mut self) -> Result<Option<usize>, Error> {
        let close = self.close();
        let mut at = skip_ws(self.bytes, self.pos);
        match self.state {
            State::Done => return Ok(None),
            State::Start => {
                if self.bytes.get(at) != Some(&self.open) {
                    return Err(self.error(
                        at,
                        if self.open == b'{' {
                            "expected an object"
                        } else {
                            "expected an array"
                        },
                    ));
                }
                at = skip_ws(self.bytes, at + 1);
                if self.bytes.get(at) == Some(&close) {
                    return self.end(at + 1);
                }
            }
            State::Next => match self.bytes.get(at) {
                Some(b',') => at = skip_ws(self.bytes, at + 1),
                Some(&b) if b == close => return self.end(at + 1),
                _ => {
                    return Err(self.error(
                        at,
                        if close == b'}' {
                            "expected ',' or '}'"
                        } else {
                            "expected ',' or ']'"
                        },
                    ));
                }
            },
        }
        if self.open == b'{' && self.bytes.get(at) != Some(&b'"') {
            return Err(self.error(at, "expected a key"));
        }
        Ok(Some(at))
    }

    fn end(&mut self, after: usize) -> Result<Option<usize>, Error> {
        let rest = skip_ws(self.bytes, after);
        if rest != self.bytes.len() {
            return Err(self.error(rest, "trailing characters"));
        }
        self.pos = rest;
        self.state = State::Done;
        Ok(None)
    }

    /// The member whose key starts at `key_at`.
    #[inline(always)]
    fn member_at(&mut self, key_at: usize) -> Result<Member<'a>, Error> {
        let (end, escaped) = scan_string(self.bytes, key_at)?;
        let colon = skip_ws(self.bytes, end);
        if self.bytes.get(colon) != Some(&b':') {
            return Err(self.error(colon, "expected ':'"));
        }
        let value = self.value_at(skip_ws(self.bytes, colon + 1))?;
        Ok(Member {
            key: Str {
                doc: self.doc,
                start: key_at + 1,
                end: end - 1,
                escaped,
            },
            key_offset: key_at,
            value,
        })
    }

    #[inline(always)]
    fn value_at(&mut self, at: usize) -> Result<Value<'a>, Error> {
        let (kind, end, escaped) = scan_value(self.bytes, at, self.depth)?;
        self.pos = end;
        self.state = State::Next;
        Ok(Value {
            doc: self.doc,
            start: at,
            end,
            kind,
            escaped,
            depth: self.depth,
        })
    }

    #[inline(always)]
    fn finish<T>(&mut self, result: Result<Option<T>, Error>) -> Option<Result<T, Error>> {
        if result.is_err() {
            self.state = State::Done;
        }
        result.transpose()
    }
}
