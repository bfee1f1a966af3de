//! Helpers the fuzz targets share (`fuzz_targets/*.rs`; what each asserts is
//! in `fuzz/README.md`).

use serde::Deserialize;
use serde_json::value::RawValue;

/// The native batch body as `gateway/src/ingest.rs` (`BatchBody`) reads it:
/// each event kept as raw text, borrowed. A copy, because the gateway's is
/// private and linking `sluice-gateway` would bring wasmtime and librdkafka
/// into every fuzz build (see the README).
#[derive(Debug, Deserialize)]
pub struct BatchBody<'a> {
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
}

/// Splits a fuzz input into up to `N` UTF-8 parts at NUL bytes (never valid
/// inside JSON text, so a part is never cut inside a string). Missing parts
/// are empty; `None` if a part is not UTF-8.
pub fn parts<const N: usize>(data: &[u8]) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut rest = data;
    for (i, slot) in out.iter_mut().enumerate() {
        let end = if i + 1 == N {
            rest.len()
        } else {
            memchr_nul(rest).unwrap_or(rest.len())
        };
        *slot = std::str::from_utf8(&rest[..end]).ok()?;
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    Some(out)
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

/// Follows JSON strings byte by byte, the slow, obvious way.
#[derive(Default)]
struct Strings {
    inside: bool,
    escaped: bool,
}

impl Strings {
    /// Takes the next byte; true if it belongs to a string (its quotes
    /// included).
    fn step(&mut self, b: u8) -> bool {
        if self.inside {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.inside = false,
                _ => {}
            }
            return true;
        }
        self.inside = b == b'"';
        self.inside
    }
}

/// The deepest nesting of objects and arrays in well-formed JSON `text`
/// (brackets outside strings).
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut strings = Strings::default();
    for b in text.bytes() {
        if strings.step(b) {
            continue;
        }
        match b {
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The number tokens of well-formed JSON `text` (outside strings), as
/// written.
pub fn numbers(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    let mut strings = Strings::default();
    while i < bytes.len() {
        let b = bytes[i];
        if !strings.step(b) && (b == b'-' || b.is_ascii_digit()) {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            out.push(&text[start..i]);
        } else {
            i += 1;
        }
    }
    out
}

/// Whether every number of `text` is a finite double when correctly
/// rounded (`str::parse`, as ClickHouse and JavaScript read it).
pub fn numbers_finite(text: &str) -> bool {
    numbers(text)
        .iter()
        .all(|n| n.parse::<f64>().is_ok_and(f64::is_finite))
}
