//! `sluice_core::json_text::check`, the one-pass check of raw `properties`
//! and `context` text, against two oracles: a bracket count for depth, and
//! serde_json building a `Value` (which refuses lone surrogates and numbers
//! beyond a double, and reads up to 128 levels).
//!
//! The first byte picks the depth limit (1 to 100), the rest is the text; only
//! text serde_json accepts as raw JSON (the check's precondition) is checked.
//! Asserts: `Ok` exactly when the text is within the limit, a `Value`
//! parses and every number is a finite double correctly rounded; `TooDeep`
//! only when it is deeper; a number or surrogate problem only when a `Value`
//! does not parse or a number rounds to infinity (serde_json's fast parsing
//! and correct rounding disagree just above `f64::MAX`, and every reader
//! must take what passes). So the vectorised pre-filter can never let
//! through what the full scan would refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;
use sluice_core::json_text::{Problem, check};
use sluice_fuzz::{nesting_depth, numbers_finite};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max_depth = usize::from(first % 100) + 1;
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if serde_json::from_str::<&RawValue>(text).is_err() {
        return;
    }
    let depth = nesting_depth(text);
    let strict = serde_json::from_str::<Value>(text);
    match check(text, max_depth) {
        Ok(()) => {
            assert!(depth <= max_depth, "depth {depth} > {max_depth} passed");
            if let Err(e) = strict {
                panic!("passed, but a strict parser refuses it: {e}");
            }
            assert!(
                numbers_finite(text),
                "passed, but a number rounds to infinity"
            );
        }
        Err(Problem::TooDeep { limit }) => {
            assert_eq!(limit, max_depth);
            assert!(depth > max_depth, "depth {depth} <= {max_depth} refused");
        }
        Err(problem @ (Problem::NumberOutOfRange { .. } | Problem::LoneSurrogate { .. })) => {
            assert!(
                strict.is_err() || !numbers_finite(text),
                "{problem:?} refused, but a strict parser reads it and its numbers are finite"
            );
        }
    }
});
