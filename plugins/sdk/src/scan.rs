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

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

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

fn simple_escape(e: u8) -> Option<char> {
    Some(match e {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    })
}

/// The value of the four hex digits at `at`.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &b| {
        let d = char::from(b).to_digit(16)?;
        Some(acc << 4 | d)
    })
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

/// Whether some object in `text` may have a member named `key`: `false`
/// guarantees that none has (at any depth), without scanning the structure.
/// A cheap test before [`find_member`] when the key is usually absent: it
/// looks for `"key"` written out, and answers `true` at the first backslash
/// (an escape could spell the key differently).
pub fn may_contain_key(text: &str, key: &str) -> bool {
    let bytes = text.as_bytes();
    let key = key.as_bytes();
    if key.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        return bytes.contains(&b'\\'); // such a key is always written escaped
    }
    // Look for one byte of the key, preferably a rarer one than a
    // lower-case letter (`$` in `$user_agent`, `_` in `user_agent`).
    let Some(at) = key
        .iter()
        .position(|b| !b.is_ascii_lowercase())
        .or((!key.is_empty()).then_some(0))
    else {
        return bytes.windows(2).any(|w| w == b"\"\"") || bytes.contains(&b'\\');
    };
    let mut from = 0;
    while let Some(found) = find_any(bytes, from, [key[at], b'\\']) {
        if bytes[found] == b'\\' && key[at] != b'\\' {
            return true;
        }
        // `found - at - 1` is where the opening quote would be.
        if let Some(quote) = found.checked_sub(at + 1) {
            let end = quote + 1 + key.len();
            if bytes[quote] == b'"'
                && bytes.get(quote + 1..end) == Some(key)
                && bytes.get(end) == Some(&b'"')
            {
                return true;
            }
        }
        from = found + 1;
    }
    false
}

/// The offset of the first byte at or after `from` that is one of
/// `targets`, looking at eight bytes at a time: a quick way to the few
/// places of a text worth a closer look.
pub fn find_any_byte<const N: usize>(text: &str, from: usize, targets: [u8; N]) -> Option<usize> {
    find_any(text.as_bytes(), from, targets)
}

fn find_any<const N: usize>(bytes: &[u8], mut pos: usize, targets: [u8; N]) -> Option<usize> {
    while let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let mask = targets.iter().fold(0, |mask, &t| {
            mask | zero_bytes(word ^ (ONES * u64::from(t)))
        });
        if mask != 0 {
            return Some(pos + (mask.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    let rest = bytes.get(pos..)?;
    rest.iter()
        .position(|b| targets.contains(b))
        .map(|i| pos + i)
}

/// How many bytes of `text` are each of `targets` (exact counts, eight
/// bytes at a time): a quick look at what a string could contain.
pub fn count_bytes<const N: usize>(text: &str, targets: [u8; N]) -> [usize; N] {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let mut counts = [0; N];
    let (chunks, rest) = text.as_bytes().as_chunks::<8>();
    for chunk in chunks {
        let word = u64::from_le_bytes(*chunk);
        for (count, target) in counts.iter_mut().zip(targets) {
            // Exact per byte: the high bit is set where the byte is `target`.
            let x = word ^ (ONES * u64::from(target));
            let equal = !(((x & LOW7) + LOW7) | x) & HIGHS;
            *count += equal.count_ones() as usize;
        }
    }
    if !rest.is_empty() {
        // The last few bytes as one zero-padded word, padding masked off.
        // (Byte by byte: a `copy_from_slice` of a variable length is a
        // `memory.copy`, which wasmtime runs as a call out of the guest.)
        let word = rest
            .iter()
            .rev()
            .fold(0u64, |word, &byte| word << 8 | u64::from(byte));
        let valid = HIGHS >> (8 * (8 - rest.len()));
        for (count, target) in counts.iter_mut().zip(targets) {
            let x = word ^ (ONES * u64::from(target));
            let equal = !(((x & LOW7) + LOW7) | x) & valid;
            *count += equal.count_ones() as usize;
        }
    }
    counts
}

/// Iterator over an object's members (see [`members`]).
#[derive(Debug, Clone)]
pub struct Members<'a>(Cursor<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = Result<Member<'a>, Error>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let c = &mut self.0;
        let result = c.next_item().and_then(|found| {
            let Some(key_at) = found else {
                return Ok(None);
            };
            let (end, escaped) = scan_string(c.bytes, key_at)?;
            let colon = skip_ws(c.bytes, end);
            if c.bytes.get(colon) != Some(&b':') {
                return Err(c.error(colon, "expected ':'"));
            }
            let value = c.value_at(skip_ws(c.bytes, colon + 1))?;
            Ok(Some(Member {
                key: Str {
                    doc: c.doc,
                    start: key_at + 1,
                    end: end - 1,
                    escaped,
                },
                key_offset: key_at,
                value,
            }))
        });
        c.finish(result)
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

#[inline]
fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    // Compact JSON has none: one test for the common case.
    if bytes.get(at).is_some_and(|&b| b > b' ') {
        return at;
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

fn err(offset: usize, what: &'static str) -> Error {
    Error { offset, what }
}

/// The value starting at `at`: its kind, the offset just past it, and (for
/// strings) whether it has escapes. `enclosing` containers enclose it.
#[inline(always)]
fn scan_value(bytes: &[u8], at: usize, enclosing: usize) -> Result<(Kind, usize, bool), Error> {
    match bytes.get(at) {
        Some(b'"') => scan_string(bytes, at).map(|(end, escaped)| (Kind::String, end, escaped)),
        Some(b'{') => skip_container(bytes, at, enclosing).map(|end| (Kind::Object, end, false)),
        Some(b'[') => skip_container(bytes, at, enclosing).map(|end| (Kind::Array, end, false)),
        Some(b't') => literal(bytes, at, b"true").map(|end| (Kind::Bool, end, false)),
        Some(b'f') => literal(bytes, at, b"false").map(|end| (Kind::Bool, end, false)),
        Some(b'n') => literal(bytes, at, b"null").map(|end| (Kind::Null, end, false)),
        Some(b'-' | b'0'..=b'9') => scan_number(bytes, at).map(|end| (Kind::Number, end, false)),
        Some(_) => Err(err(at, "expected a value")),
        None => Err(err(at, "unexpected end of text")),
    }
}

#[inline]
fn literal(bytes: &[u8], at: usize, word: &[u8]) -> Result<usize, Error> {
    if bytes.get(at..at + word.len()) == Some(word) {
        Ok(at + word.len())
    } else {
        Err(err(at, "invalid literal"))
    }
}

#[inline]
fn digits(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b'0'..=b'9') = bytes.get(at) {
        at += 1;
    }
    at
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
#[inline]
fn scan_number(bytes: &[u8], start: usize) -> Result<usize, Error> {
    let mut at = start;
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match bytes.get(at) {
        Some(b'0') => at + 1,
        Some(b'1'..=b'9') => digits(bytes, at + 1),
        _ => return Err(err(at, "invalid number")),
    };
    if bytes.get(at) == Some(&b'.') {
        let end = digits(bytes, at + 1);
        if end == at + 1 {
            return Err(err(end, "invalid number"));
        }
        at = end;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = bytes.get(at) {
            at += 1;
        }
        let end = digits(bytes, at);
        if end == at {
            return Err(err(end, "invalid number"));
        }
        at = end;
    }
    Ok(at)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit is the high bit of the first byte of `word`
/// (little-endian) that is `"`, `\` or a control character, 0 if none.
/// (Bits above the first such byte may be spurious; the lowest is exact.)
#[inline]
fn special_bytes(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    zero_bytes(quote) | zero_bytes(backslash) | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
}

/// A mask whose lowest set bit is the high bit of the first zero byte of
/// `word` (little-endian), 0 if none (higher bits may be spurious).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// The string starting with the quote at `at`: the offset just past its
/// closing quote, and whether it has escapes.
#[inline(always)]
fn scan_string(bytes: &[u8], at: usize) -> Result<(usize, bool), Error> {
    let mut pos = at + 1;
    let mut escaped = false;
    loop {
        // Eight bytes at a time up to the next special byte, taken from the
        // word itself (no second look-up).
        let special = match bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
            Some(chunk) => {
                let word = u64::from_le_bytes(*chunk);
                let mask = special_bytes(word);
                if mask == 0 {
                    pos += 8;
                    continue;
                }
                let shift = mask.trailing_zeros() & !7;
                pos += (shift / 8) as usize;
                (word >> shift) as u8
            }
            // The last few bytes of the text, one at a time.
            None => match bytes.get(pos) {
                None => return Err(err(pos, "unterminated string")),
                Some(&b) if b == b'"' || b == b'\\' || b < 0x20 => b,
                Some(_) => {
                    pos += 1;
                    continue;
                }
            },
        };
        match special {
            b'"' => return Ok((pos + 1, escaped)),
            b'\\' => {
                escaped = true;
                pos = scan_escape(bytes, pos)?;
            }
            _ => return Err(err(pos, "control character in string")),
        }
    }
}

/// The escape starting with the backslash at `at`: the offset past it.
fn scan_escape(bytes: &[u8], at: usize) -> Result<usize, Error> {
    match bytes.get(at + 1) {
        Some(b'u') => {
            let code = hex4(bytes, at + 2).ok_or(err(at, "invalid \\u escape"))?;
            match code {
                0xD800..0xDC00 => {
                    let low = match bytes.get(at + 6..at + 8) {
                        Some(b"\\u") => hex4(bytes, at + 8),
                        _ => None,
                    };
                    match low {
                        Some(0xDC00..0xE000) => Ok(at + 12),
                        _ => Err(err(at, "lone leading surrogate in \\u escape")),
                    }
                }
                0xDC00..0xE000 => Err(err(at, "lone trailing surrogate in \\u escape")),
                _ => Ok(at + 6),
            }
        }
        Some(&e) if simple_escape(e).is_some() => Ok(at + 2),
        _ => Err(err(at, "invalid escape")),
    }
}

/// The object or array starting at `at` (checked, iteratively): the offset
/// just past its closing bracket. `enclosing` containers enclose it.
fn skip_container(bytes: &[u8], at: usize, enclosing: usize) -> Result<usize, Error> {
    // Bit d of `arrays`: whether nesting level d is an array. (Two words,
    // not a `u128`: wasm32 has no 128-bit shifts, they are library calls.)
    let mut arrays = [0u64; MAX_DEPTH.div_ceil(64)];
    let mut depth = 0usize;
    let mut pos = at;
    loop {
        // `pos` is at the start of a value.
        match bytes.get(pos) {
            Some(&open @ (b'{' | b'[')) => {
                if enclosing + depth >= MAX_DEPTH {
                    return Err(err(pos, "nesting too deep"));
                }
                let is_array = open == b'[';
                let (word, bit) = (depth / 64, 1 << (depth % 64));
                if is_array {
                    arrays[word] |= bit;
                } else {
                    arrays[word] &= !bit;
                }
                depth += 1;
                pos = skip_ws(bytes, pos + 1);
                let close = if is_array { b']' } else { b'}' };
                if bytes.get(pos) == Some(&close) {
                    pos += 1;
                    depth -= 1;
                } else {
                    if !is_array {
                        pos = key_and_colon(bytes, pos)?;
                    }
                    continue;
                }
            }
            // Scalars only: containers are handled above.
            _ => pos = scan_value(bytes, pos, MAX_DEPTH)?.1,
        }
        // After a value: close containers, or move on to the next value.
        loop {
            if depth == 0 {
                return Ok(pos);
            }
            let is_array = arrays[(depth - 1) / 64] & (1 << ((depth - 1) % 64)) != 0;
            pos = skip_ws(bytes, pos);
            match (bytes.get(pos), is_array) {
                (Some(b','), _) => {
                    pos = skip_ws(bytes, pos + 1);
                    if !is_array {
                        pos = key_and_colon(bytes, pos)?;
                    }
                    break;
                }
                (Some(b']'), true) | (Some(b'}'), false) => {
                    pos += 1;
                    depth -= 1;
                }
                (_, true) => return Err(err(pos, "expected ',' or ']'")),
                (_, false) => return Err(err(pos, "expected ',' or '}'")),
            }
        }
    }
}

/// `"key" :` at `at`; the offset of the value after it.
#[inline(always)]
fn key_and_colon(bytes: &[u8], at: usize) -> Result<usize, Error> {
    if bytes.get(at) != Some(&b'"') {
        return Err(err(at, "expected a key"));
    }
    let colon = skip_ws(bytes, scan_string(bytes, at)?.0);
    if bytes.get(colon) != Some(&b':') {
        return Err(err(colon, "expected ':'"));
    }
    Ok(skip_ws(bytes, colon + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<Vec<String>, Error> {
        members(text)
            .map(|m| m.map(|m| m.key.decode().into_owned()))
            .collect()
    }

    /// Whatever the scanner says about validity, serde_json agrees.
    fn agrees_with_serde(text: &str) {
        let ours = value(text).is_ok();
        let serde = serde_json::from_str::<serde_json::Value>(text).is_ok();
        assert_eq!(ours, serde, "validity of {text:?}");
        if text.trim_start().starts_with('{') {
            assert_eq!(keys(text).is_ok(), serde, "members of {text:?}");
        }
    }

    #[test]
    fn top_level_members_with_spans() {
        let text = r#" { "a" : 1 , "b":{"a":2,"c":[1,{"a":3}]}, "c": "x" } "#;
        let found: Vec<_> = members(text).map(Result::unwrap).collect();
        let names: Vec<_> = found.iter().map(|m| m.key.raw()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(&text[found[0].value.span()], "1");
        assert_eq!(found[0].value.kind(), Kind::Number);
        assert_eq!(&text[found[0].span()], r#""a" : 1"#);
        assert_eq!(&text[found[1].value.span()], r#"{"a":2,"c":[1,{"a":3}]}"#);
        assert_eq!(found[1].value.kind(), Kind::Object);
        assert_eq!(found[2].value.text(), r#""x""#);
        assert_eq!(found[2].value.as_str().unwrap().decode(), "x");
    }

    #[test]
    fn keys_inside_nested_values_or_strings_do_not_match_top_level_lookups() {
        let text = r#"{"outer": {"user_agent": "nested"}, "s": "\"user_agent\": \"fake\"", "l": [{"user_agent": 1}]}"#;
        assert_eq!(find_member(text, "user_agent"), Ok(None));
        let outer = find_member(text, "outer").unwrap().unwrap();
        assert_eq!(outer.kind(), Kind::Object);
        let nested: Vec<_> = outer.members().map(Result::unwrap).collect();
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0].key.raw(), "user_agent");
        // Nested spans stay relative to the whole document.
        assert_eq!(&text[nested[0].value.span()], r#""nested""#);
    }

    #[test]
    fn strings_with_braces_quotes_and_escapes() {
        let text = r#"{"a": "}{][,:", "b\"c": "q\"uo\\te\\", "d": "\/\b\f\n\r\t", "e": 1}"#;
        assert_eq!(keys(text).unwrap(), ["a", "b\"c", "d", "e"]);
        let b = find_member(text, "b\"c")
            .unwrap()
            .unwrap()
            .as_str()
            .unwrap();
        assert!(b.has_escapes());
        assert_eq!(b.decode(), "q\"uo\\te\\");
        let d = find_member(text, "d").unwrap().unwrap().as_str().unwrap();
        assert_eq!(d.decode(), "/\u{8}\u{c}\n\r\t");
        assert_eq!(
            find_member(text, "e").unwrap().unwrap().kind(),
            Kind::Number
        );
    }

    #[test]
    fn unicode_escapes_decode_and_compare() {
        let text =
            r#"{"user\u005fagent": "Google\u0062ot \u00e9\u20AC\ud83d\ude00", "plain": "é€😀"}"#;
        let ua = find_member(text, "user_agent").unwrap().unwrap();
        let s = ua.as_str().unwrap();
        assert_eq!(s.decode(), "Googlebot é€😀");
        assert!(s.eq_str("Googlebot é€😀"));
        assert!(!s.eq_str("Googlebot é€"));
        assert!(!s.eq_str("Googlebot é€😀!"));
        let plain = find_member(text, "plain")
            .unwrap()
            .unwrap()
            .as_str()
            .unwrap();
        assert!(!plain.has_escapes());
        assert!(matches!(plain.decode(), Cow::Borrowed("é€😀")));
    }

    #[test]
    fn last_duplicate_wins_like_serde_json() {
        let text = r#"{"k": 1, "x": 0, "k": null}"#;
        assert!(find_member(text, "k").unwrap().unwrap().is_null());
        let serde: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).unwrap();
        assert!(serde["k"].is_null());
    }

    #[test]
    fn elements_of_arrays() {
        let text = r#"[1, "two", [3], {"four": 4}, null, true, -0.5e+3]"#;
        let kinds: Vec<_> = elements(text).map(|v| v.unwrap().kind()).collect();
        assert_eq!(
            kinds,
            [
                Kind::Number,
                Kind::String,
                Kind::Array,
                Kind::Object,
                Kind::Null,
                Kind::Bool,
                Kind::Number
            ]
        );
        assert_eq!(elements("[]").count(), 0);
        assert!(elements("{}").next().unwrap().is_err());
        assert!(members("[]").next().unwrap().is_err());
    }

    #[test]
    fn errors_end_the_iteration() {
        let mut it = members(r#"{"a": 1, "b" 2, "c": 3}"#);
        assert!(it.next().unwrap().is_ok());
        let e = it.next().unwrap().unwrap_err();
        assert_eq!(e.what, "expected ':'");
        assert_eq!(e.offset, 13);
        assert!(it.next().is_none());
    }

    #[test]
    fn empty_objects_and_whitespace() {
        assert_eq!(keys("{}").unwrap(), Vec::<String>::new());
        assert_eq!(keys(" \n{ \t}\r\n").unwrap(), Vec::<String>::new());
        assert_eq!(find_member("{}", "a"), Ok(None));
    }

    #[test]
    fn long_strings_cross_word_boundaries() {
        // Quotes, escapes and control characters at every position modulo 8.
        for pad in 0..20 {
            let filler = "x".repeat(pad);
            let text = format!(r#"{{"k{filler}": "{filler}\"{filler}\\{filler}", "z": 1}}"#);
            let k = format!("k{filler}");
            let v = find_member(&text, &k).unwrap().unwrap();
            assert_eq!(
                v.as_str().unwrap().decode(),
                format!("{filler}\"{filler}\\{filler}")
            );
            assert_eq!(keys(&text).unwrap().len(), 2);
            let bad = format!("{{\"k\": \"{filler}\u{1}\"}}");
            assert!(find_member(&bad, "k").is_err(), "{bad:?}");
            let unterminated = format!("{{\"k\": \"{filler}");
            assert!(find_member(&unterminated, "k").is_err());
        }
    }

    #[test]
    fn validity_matches_serde_json() {
        for text in [
            "{}",
            "[]",
            r#"{"a":1}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{,"a":1}"#,
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{a:1}"#,
            r#"{"a":1}}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a":[1,2}"#,
            r#"{"a":{"b":[1,2]}}"#,
            r#"{"a":[1,2,]}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+}"#,
            r#"{"a":-0.0e-0}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":true}"#,
            r#"{"a":nul}"#,
            r#"{"a":NaN}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\u12G4"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":"\ud800\udc00"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"\u{7f}\"}",
            r#"{"a":"\""}"#,
            r#"{"a":"\\"}"#,
            r#"{"a":"\\\"}"#,
            r#"{"\\":1}"#,
            r#""just a string""#,
            "12",
            "",
            "   ",
            "{",
            "[[[]]]",
            "[[[]]",
            "[1,[2,{\"k\":[3]}],4]",
            "[1,[2,{\"k\":[3]]],4]",
        ] {
            agrees_with_serde(text);
        }
    }

    #[test]
    fn depth_is_limited_like_serde_json() {
        for n in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1] {
            let nested = format!("{}{}", "[".repeat(n), "]".repeat(n));
            agrees_with_serde(&nested);
            agrees_with_serde(&format!(r#"{{"a":{nested}}}"#));
            agrees_with_serde(&format!(r#"{{"a":{{"b":{nested}}}}}"#));
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(value(&deep).unwrap_err().what, "nesting too deep");
        // Descending with `members` keeps counting.
        let inner = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        let text = format!(r#"{{"a":{{"b":{inner}}}}}"#);
        let a = find_member(&text, "a");
        assert_eq!(a.unwrap_err().what, "nesting too deep");
        let text = format!(r#"{{"a":{{"b":1}}, "c": {inner}}}"#);
        assert!(find_member(&text, "a").is_ok());
        let a = find_member(&text, "a").unwrap().unwrap();
        assert!(a.members().all(|m| m.is_ok()));
    }

    /// Random edits of JSON documents: the scanner and serde_json agree on
    /// validity, on the top-level members and on every string's value.
    #[test]
    fn mutations_agree_with_serde_json() {
        const SEEDS: &[&str] = &[
            r#"{"a": "x\"y", "b": [1, -2.5e3, {"c": null}], "d\u0041": "\ud83d\ude00\n", "e": true}"#,
            r#"{"k": {"k": {"k": []}}, "s": "}{", "n": 0.1}"#,
            r#"[{"a": 1}, "b", [[], {}], false]"#,
        ];
        const ALPHABET: &[u8] = br#"{}[]:,"\ u0123456789abcdefnrtlsE.-+ "#;
        let mut state: u64 = 0x5eed;
        let mut random = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for _ in 0..20_000 {
            let mut bytes = SEEDS[random(SEEDS.len())].as_bytes().to_vec();
            for _ in 0..=random(3) {
                let at = random(bytes.len() + 1);
                let b = ALPHABET[random(ALPHABET.len())];
                match random(3) {
                    0 if at < bytes.len() => bytes[at] = b,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, b),
                }
            }
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            agrees_with_serde(&text);
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) else {
                continue;
            };
            for (key, expected) in &map {
                let found = find_member(&text, key).unwrap().unwrap();
                let parsed: serde_json::Value = serde_json::from_str(found.text()).unwrap();
                assert_eq!(&parsed, expected, "{text}");
                if let Some(s) = found.as_str() {
                    assert_eq!(Some(&*s.decode()), expected.as_str(), "{text}");
                    assert!(s.eq_str(expected.as_str().unwrap()));
                }
            }
            assert!(keys(&text).unwrap().len() >= map.len());
        }
    }

    #[test]
    fn push_string_escapes_like_serde_json() {
        let mut every: String = (0u8..0x80).map(char::from).collect();
        every.push_str("é€😀 \u{7f} / \\ \"");
        for text in [every.as_str(), "", "plain", "\"", "a\\b", "\u{1f}x\u{0}"] {
            let mut ours = String::from("prefix");
            push_string(&mut ours, text);
            assert_eq!(ours, format!("prefix{}", serde_json::Value::from(text)));
            let v = value(&ours["prefix".len()..]).unwrap();
            assert_eq!(v.as_str().unwrap().decode(), text);
        }
    }

    #[test]
    fn may_contain_key_is_never_wrong_when_it_says_no() {
        let text = r#"{"a": {"$user_agent": 1}, "b": "$user_agent", "c": "x\"$user_agent\"y"}"#;
        assert!(may_contain_key(text, "$user_agent")); // nested: a maybe
        assert!(!may_contain_key(
            r#"{"a": {"user_agent": 1}, "b": "$user_agentx"}"#,
            "$user_agent"
        ));
        assert!(!may_contain_key(r#"{"a": "$user_agent"#, "$user_agent"));
        assert!(may_contain_key(r#"{"$user_agent": 1}"#, "$user_agent"));
        assert!(may_contain_key(r#"{"\u0024user_agent": 1}"#, "$user_agent"));
        assert!(!may_contain_key("", "k"));
        for pad in 0..12 {
            let filler = "x".repeat(pad);
            let text = format!(r#"{{"{filler}": 1, "k": 2}}"#);
            assert!(may_contain_key(&text, "k"), "{text}");
            assert!(!may_contain_key(&text, "j"), "{text}");
            assert!(find_member(&text, "k").unwrap().is_some());
        }
    }

    #[test]
    fn may_contain_key_with_other_keys() {
        for (text, key, expected) in [
            (r#"{"user_agent": 1}"#, "user_agent", true),
            (
                r#"{"user_agents": 1, "x_user_agent": 2}"#,
                "user_agent",
                false,
            ),
            (r#"{"ip": 1}"#, "ip", true),
            (r#"{"zip": "ip"}"#, "ip", true), // a string, but "ip" is written out
            (r#"{"zip": 1}"#, "ip", false),
            (r#"{"a_b": 1}"#, "_b", false),
            (r#"{"_b": 1}"#, "_b", true),
            (r#"{"": 1}"#, "", true),
            (r#"{"a": 1}"#, "", false),
            (r#"{"a\\b": 1}"#, "a\\b", true),
            (r#"{"a\"b": 1}"#, "a\"b", true),
            (r#"{"ab": 1}"#, "a\"b", false),
        ] {
            assert_eq!(may_contain_key(text, key), expected, "{text} {key}");
        }
    }

    #[test]
    fn count_bytes_counts_exactly() {
        for len in 0..40 {
            let text: String = "a.b:@..:\u{80}é".chars().cycle().take(len).collect();
            let expected =
                [b'.', b':', b'@', 0xC3].map(|t| text.bytes().filter(|&b| b == t).count());
            assert_eq!(
                count_bytes(&text, [b'.', b':', b'@', 0xC3]),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn find_any_byte_finds_the_first() {
        for len in 0..30 {
            let text: String = "abcdefgh".chars().cycle().take(len).collect();
            for from in 0..=len {
                let expected = text
                    .bytes()
                    .enumerate()
                    .skip(from)
                    .find(|&(_, b)| b == b'c' || b == b'h')
                    .map(|(i, _)| i);
                assert_eq!(
                    find_any_byte(&text, from, [b'c', b'h']),
                    expected,
                    "{text} {from}"
                );
            }
        }
        assert_eq!(find_any_byte("abc", 10, [b'a']), None);
    }

    #[test]
    fn value_reports_kind_and_span() {
        let v = value("  \"a\\nb\" ").unwrap();
        assert_eq!(v.kind(), Kind::String);
        assert_eq!(v.span(), 2..8);
        assert_eq!(v.as_str().unwrap().decode(), "a\nb");
        assert_eq!(value("-12.5e3").unwrap().kind(), Kind::Number);
        assert_eq!(value("false").unwrap().kind(), Kind::Bool);
        assert!(value("1 2").is_err());
    }
}
