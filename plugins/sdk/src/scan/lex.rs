//! The grammar: scanning one value, string, number or container at a byte
//! offset, checking it as it goes.

use super::{Error, Kind, MAX_DEPTH};

/// The character a one-letter escape (`\n`, ...) stands for.
pub(super) fn simple_escape(e: u8) -> Option<char> {
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
pub(super) fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &b| {
        let d = char::from(b).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

#[inline]
pub(super) fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    // Compact JSON has none: one test for the common case.
    if bytes.get(at).is_some_and(|&b| b > b' ') {
        return at;
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

pub(super) fn err(offset: usize, what: &'static str) -> Error {
    Error { offset, what }
}

/// The value starting at `at`: its kind, the offset just past it, and (for
/// strings) whether it has escapes. `enclosing` containers enclose it.
#[inline(always)]
pub(super) fn scan_value(
    bytes: &[u8],
    at: usize,
    enclosing: usize,
) -> Result<(Kind, usize, bool), Error> {
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
pub(super) fn literal(bytes: &[u8], at: usize, word: &[u8]) -> Result<usize, Error> {
    if bytes.get(at..at + word.len()) == Some(word) {
        Ok(at + word.len())
    } else {
        Err(err(at, "invalid literal"))
    }
}

#[inline]
pub(super) fn digits(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b'0'..=b'9') = bytes.get(at) {
        at += 1;
    }
    at
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
#[inline]
pub(super) fn scan_number(bytes: &[u8], start: usize) -> Result<usize, Error> {
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

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
pub(super) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit is the high bit of the first byte of `word`
/// (little-endian) that is `"`, `\` or a control character, 0 if none.
/// (Bits above the first such byte may be spurious; the lowest is exact.)
#[inline]
pub(super) fn special_bytes(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    zero_bytes(quote) | zero_bytes(backslash) | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
}

/// A mask whose lowest set bit is the high bit of the first zero byte of
/// `word` (little-endian), 0 if none (higher bits may be spurious).
#[inline]
pub(super) fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// The string starting with the quote at `at`: the offset just past its
/// closing quote, and whether it has escapes.
#[inline(always)]
pub(super) fn scan_string(bytes: &[u8], at: usize) -> Result<(usize, bool), Error> {
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
pub(super) fn scan_escape(bytes: &[u8], at: usize) -> Result<usize, Error> {
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
pub(super) fn skip_container(bytes: &[u8], at: usize, enclosing: usize) -> Result<usize, Error> {
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
pub(super) fn key_and_colon(bytes: &[u8], at: usize) -> Result<usize, Error> {
    if bytes.get(at) != Some(&b'"') {
        return Err(err(at, "expected a key"));
    }
    let colon = skip_ws(bytes, scan_string(bytes, at)?.0);
    if bytes.get(colon) != Some(&b':') {
        return Err(err(colon, "expected ':'"));
    }
    Ok(skip_ws(bytes, colon + 1))
}
