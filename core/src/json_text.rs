//! One pass over JSON text the decoder already found well formed
//! (`properties`, `context`, kept as raw text and never turned into a tree):
//! what syntax alone lets through but no consumer can take.
//!
//! - nesting deeper than a limit (serde's own limit is 128, and only when it
//!   builds values; raw text passes at any depth);
//! - numbers that do not fit a double (`1e400`): every consumer reads
//!   numbers as doubles, and ClickHouse's JSON functions turn them into `inf`;
//! - lone UTF-16 surrogate escapes (`"\udc00"`): not Unicode, refused by
//!   every strict parser downstream (and by the plugin SDKs).
//!
//! Cost: most text has none of the three, so a few vectorised searches
//! decide first whether the full scan can find anything: no more opening
//! brackets than the depth limit, no backslash, no digit-`e`-digit and no
//! run of 200 digits (about 0.2 µs per kilobyte). Only text that has one gets
//! the full scan (string bodies skipped with `memchr`, numbers parsed only
//! when they could overflow, about 1 µs per kilobyte).

/// What the scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    TooDeep { limit: usize },
    NumberOutOfRange { number: String },
    LoneSurrogate { escape: String },
}

/// Checks well-formed JSON `text` (see the module docs).
pub fn check(text: &str, max_depth: usize) -> Result<(), Problem> {
    let bytes = text.as_bytes();
    let may_nest_deep = memchr::memchr2_iter(b'{', b'[', bytes)
        .nth(max_depth)
        .is_some();
    // Any escape, not only `\u`: one search instead of two, and text with
    // escapes is rarer than text without.
    let may_escape = memchr::memchr(b'\\', bytes).is_some();
    if !(may_nest_deep || may_escape || may_overflow(bytes)) {
        return Ok(());
    }
    scan(text, max_depth)
}

/// Whether `bytes` holds something that could be a number beyond a double.
/// A number overflows only with an exponent (digit, `e`/`E`, digit or sign:
/// maybe inside a string, the full scan decides) or with more than 300
/// digits before it; with at most two exponent digits it needs more than 200
/// (1e200 × 1e99 is still finite). Written as a branch-free fold, which the
/// compiler vectorises: ~0.1 ns per byte.
fn may_overflow(bytes: &[u8]) -> bool {
    let n = bytes.len();
    if n < 3 {
        return false;
    }
    let (a, b, c) = (&bytes[..n - 2], &bytes[1..n - 1], &bytes[2..]);
    let exponent = a.iter().zip(b).zip(c).fold(false, |acc, ((&x, &y), &z)| {
        acc | (x.is_ascii_digit()
            & ((y | 0x20) == b'e')
            & (z.is_ascii_digit() | (z == b'+') | (z == b'-')))
    });
    // A run of 200 digits covers one of every 100th byte; look around those.
    const STRIDE: usize = 100;
    exponent
        || (STRIDE..n).step_by(STRIDE).any(|at| {
            if !bytes[at].is_ascii_digit() {
                return false;
            }
            let before = bytes[..at]
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let after = bytes[at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            before + after > 200
        })
}

fn scan(text: &str, max_depth: usize) -> Result<(), Problem> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Problem::TooDeep { limit: max_depth });
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' => i = skip_string(bytes, i + 1)?,
            b'-' | b'0'..=b'9' => {
                let start = i;
                let mut exponent = false;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    exponent |= matches!(bytes[i], b'e' | b'E');
                    i += 1;
                }
                let number = &text[start..i];
                // Only an exponent or a very long mantissa can overflow.
                if (exponent || number.len() > 300) && !fits_a_double(number) {
                    return Err(Problem::NumberOutOfRange {
                        number: number.chars().take(40).collect(),
                    });
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Whether every reader takes `number` as a finite double. Correct rounding
/// (`str::parse`, ClickHouse, JavaScript) and serde_json's default, faster
/// parsing (the loader, the aggregator, the Rust plugin SDK) disagree just
/// below the largest double: `1.7976931348623158e308` rounds to `f64::MAX`,
/// but serde_json calls it out of range. Both must accept it (found by
/// fuzz/fuzz_targets/json_text.rs). serde_json is asked the way those
/// readers ask it, for a `Value`: its `f64` path takes
/// `1.79769313486231581e+308` (one more digit) where the `Value` path
/// refuses it (found by the same target, later).
fn fits_a_double(number: &str) -> bool {
    number.parse::<f64>().is_ok_and(f64::is_finite)
        && serde_json::from_str::<serde_json::Value>(number).is_ok_and(|v| v.is_number())
}

/// From just after an opening quote to just after its closing quote,
/// checking `\u` escapes for lone surrogates.
fn skip_string(bytes: &[u8], mut i: usize) -> Result<usize, Problem> {
    // A high surrogate waiting for its low half.
    let mut pending_high: Option<usize> = None;
    loop {
        let Some(offset) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else {
            return Ok(bytes.len());
        };
        let at = i + offset;
        if at > i && pending_high.is_some() {
            // Text between a high surrogate and the next escape.
            return Err(lone(bytes, pending_high.unwrap_or(at)));
        }
        if bytes[at] == b'"' {
            if let Some(high) = pending_high {
                return Err(lone(bytes, high));
            }
            return Ok(at + 1);
        }
        // An escape: `\x` or `\uXXXX`.
        match bytes.get(at + 1) {
            Some(b'u') => {
                let unit = bytes
                    .get(at + 2..at + 6)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                    .unwrap_or(0);
                match (unit, pending_high) {
                    (0xD800..=0xDBFF, None) => pending_high = Some(at),
                    (0xD800..=0xDBFF, Some(high)) => return Err(lone(bytes, high)),
                    (0xDC00..=0xDFFF, Some(_)) => pending_high = None,
                    (0xDC00..=0xDFFF, None) => return Err(lone(bytes, at)),
                    (_, Some(high)) => return Err(lone(bytes, high)),
                    (_, None) => {}
                }
                i = at + 6;
            }
            _ => {
                if let Some(high) = pending_high {
                    return Err(lone(bytes, high));
                }
                i = at + 2;
            }
        }
    }
}

fn lone(bytes: &[u8], at: usize) -> Problem {
    let end = (at + 6).min(bytes.len());
    Problem::LoneSurrogate {
        escape: String::from_utf8_lossy(&bytes[at..end]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_consumers_can_take_passes() {
        for text in [
            r#"{}"#,
            r#"{"a": [1, -2.5, 3e10, 1E-300, 0], "b": {"c": null}, "d": true}"#,
            r#"{"emoji": "\ud83d\ude80", "quote": "\"\\", "é": "été", "u": "\u00e9"}"#,
            r#"{"big": 1.7976931348623157e308, "small": 5e-324, "neg": -1e308}"#,
            r#"{"s": "not a number: 1e400", "k": "[[[[[[[["}"#,
        ] {
            assert_eq!(check(text, 64), Ok(()), "{text}");
        }
    }

    #[test]
    fn too_deep_is_refused_at_the_limit() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert_eq!(check(&format!("{{\"a\":{}}}", nested(63)), 64), Ok(()));
        assert_eq!(
            check(&format!("{{\"a\":{}}}", nested(64)), 64),
            Err(Problem::TooDeep { limit: 64 })
        );
        assert_eq!(
            check(&format!("{{\"a\":{}}}", nested(5_000)), 64),
            Err(Problem::TooDeep { limit: 64 })
        );
    }

    #[test]
    fn numbers_beyond_a_double_are_refused() {
        let long_mantissa = format!("1{}e90", "0".repeat(250));
        let padded = format!(
            "{{\"pad\": \"{}\", \"x\": {long_mantissa}}}",
            "y".repeat(97)
        );
        assert!(matches!(
            check(&padded, 64),
            Err(Problem::NumberOutOfRange { .. })
        ));
        for number in [
            "1e400",
            "-1e400",
            "1E309",
            "1e0400",
            "2e+308",
            // Rounds to f64::MAX, but serde_json's parser refuses it.
            "1.7976931348623158e308",
            "-1.7976931348623158e308",
            // serde_json's `f64` path takes it; its `Value` path does not.
            "1.79769313486231581e+308",
            &"9".repeat(400),
            &long_mantissa,
        ] {
            let text = format!(r#"{{"x": [1, {number}]}}"#);
            assert!(
                matches!(check(&text, 64), Err(Problem::NumberOutOfRange { .. })),
                "{number}"
            );
        }
    }

    #[test]
    fn lone_surrogates_are_refused_and_pairs_pass() {
        for text in [
            r#"{"a": "\udc00"}"#,
            r#"{"a": "x\ud800"}"#,
            r#"{"a": "\ud800x"}"#,
            r#"{"a": "\ud800\n"}"#,
            r#"{"a": "\ud800\ud800"}"#,
            r#"{"\udfff": 1}"#,
        ] {
            assert!(
                matches!(check(text, 64), Err(Problem::LoneSurrogate { .. })),
                "{text}"
            );
        }
        assert_eq!(check(r#"{"a": "\uD83D\uDE80 ok"}"#, 64), Ok(()));
    }
}
