//! `pattern` and `patternProperties` names, compiled once at registration
//! by the `regex` crate: finite automata, no backtracking, so matching is
//! linear in the string whatever the pattern (`^(a+)+$` costs what `^a+$`
//! costs), and a lazy DFA makes the common case a few ns per byte.
//! ECMA-262's ASCII `\d`/`\w`/`\b` and its `\s` set are translated
//! (the crate's are Unicode-aware); other differences are in
//! docs/schemas.md.

use std::fmt;

use super::{SchemaError, too_complex};

/// A compiled `pattern`: equal when the source text is equal (the
/// compatibility checker compares regexes only by their text).
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

/// Longest `pattern` source accepted, in bytes. Real patterns (IDs, SKUs,
/// currency codes) are tens of bytes; the limit keeps compile time and
/// memory per schema small whatever a team registers.
pub const MAX_PATTERN_BYTES: usize = 4096;
/// Compiled-program limit for one pattern (`size_limit`): `a{1000}{1000}`
/// is short text but a huge program.
const MAX_PATTERN_PROGRAM: usize = 256 * 1024;
/// Lazy DFA cache per pattern (the crate's default is 2 MiB; past it the
/// search falls back to a slower but still linear engine).
const MAX_PATTERN_CACHE: usize = 256 * 1024;

/// ECMA-262's `\s`: WhiteSpace and LineTerminator.
const ECMA_SPACE: &str = "\\t\\n\\x0B\\x0C\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}";

/// Rewrites ECMA-262 escapes whose meaning differs in the `regex` crate:
/// `\d`, `\w`, `\s` (and negations) become explicit classes (nested
/// classes are allowed inside `[...]`), `\b`/`\B` ASCII word boundaries,
/// `[\b]` a backspace, and `[`, `&`, `~` in a class literals.
fn translate(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut in_class = false;
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {}
            // Inside a class ECMA-262 reads `[`, `&`, `~` as literals; the
            // crate would read a nested class or a set operation (`&&`).
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
                continue;
            }
            '[' => {
                in_class = true;
                out.push(c);
                continue;
            }
            ']' => {
                in_class = false;
                out.push(c);
                continue;
            }
            _ => {
                out.push(c);
                continue;
            }
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => {
                out.push('[');
                out.push_str(ECMA_SPACE);
                out.push(']');
            }
            Some('S') => {
                out.push_str("[^");
                out.push_str(ECMA_SPACE);
                out.push(']');
            }
            Some('b') if in_class => out.push_str("\\x08"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

impl Pattern {
    /// Compiles `source` (ECMA-262 syntax, translated) with the
    /// linear-time engine and its limits.
    pub fn new(source: &str, path: &str) -> Result<Self, SchemaError> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(too_complex(
                path,
                format!(
                    "the pattern is {} bytes; at most {MAX_PATTERN_BYTES} are accepted",
                    source.len()
                ),
            ));
        }
        let regex = regex::RegexBuilder::new(&translate(source))
            .size_limit(MAX_PATTERN_PROGRAM)
            .dfa_size_limit(MAX_PATTERN_CACHE)
            .nest_limit(64)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(limit) => too_complex(
                    path,
                    format!("the pattern compiles to a program larger than {limit} bytes"),
                ),
                other => SchemaError {
                    code: "unsupported_keyword",
                    path: path.to_owned(),
                    message: format!(
                        "the pattern is not supported by the linear-time regex engine (no backreferences or lookaround; see docs/schemas.md): {other}"
                    ),
                },
            })?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Unanchored, as in JSON Schema: `a+` matches `xxaayy`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The ECMA-262 differences docs/schemas.md lists, pinned.
    #[test]
    fn patterns_follow_the_documented_dialect() {
        let matches = |p: &str, s: &str| Pattern::new(p, "#").unwrap().is_match(s);
        assert!(
            matches("^\\d+$", "123") && !matches("^\\d+$", "١٢٣"),
            "\\d is ASCII"
        );
        assert!(!matches("^\\w$", "é"), "\\w is ASCII");
        assert!(
            matches("^\\s$", "\u{a0}") && !matches("^\\s$", "\u{85}"),
            "\\s is ECMA's"
        );
        assert!(matches("^[\\d_]+$", "1_2") && !matches("^[^\\d]$", "5"));
        assert!(
            matches("^\\p{L}+$", "été"),
            "Unicode properties, as with the u flag"
        );
        assert!(matches("\\bab\\b", "x ab y"));
        assert!(!matches("^a$", "a\n"), "$ only at the end");
        assert!(!matches("^.$", "\n") && matches("^.$", "é"));
        assert!(matches("(?i)^abc$", "ABC"));
        assert!(
            matches("^[a[]+$", "a[") && matches("^[a&&b]+$", "&"),
            "literal in a class"
        );
        assert!(matches("^[\\b]$", "\u{8}"));
        assert!(matches("a+", "xxaayy"), "unanchored");
        for refused in ["(a)\\1", "(?=a)", "(?!a)", "(?<=a)b", "\\cJ"] {
            let err = Pattern::new(refused, "#").unwrap_err();
            assert_eq!(err.code, "unsupported_keyword", "{refused}: {err}");
        }
    }
}
