//! The schema validator on `schema \0 instance`: `Schema::validate` on a
//! `Value` and `Schema::validate_text`, the gateway's one-pass check of an
//! event's raw `properties` (`gateway/src/schemas/registry.rs`).
//!
//! Asserts: the two agree on valid/invalid for the instance (compared on its
//! canonical text, since a `Value` keeps only the last of duplicate keys while
//! the text walk sees each); `accepts` agrees with `validate`; a violation's
//! path starts at the root name given. The instance's own text goes through
//! `validate_text` too, and must be refused when it is not JSON at all (text
//! that is well formed but strict readers refuse, a lone surrogate or `1e400`
//! in a member the schema does not constrain, is `json_text`'s to refuse, and
//! the gateway checks that first).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;
use sluice_fuzz::parts;
use sluice_schemas::Schema;

fuzz_target!(|data: &[u8]| {
    let Some([schema, instance]) = parts::<2>(data) else {
        return;
    };
    let Ok(schema) = Schema::from_text(schema) else {
        return;
    };
    let from_text = schema.validate_text(instance, "properties");
    let Ok(value) = serde_json::from_str::<Value>(instance) else {
        if serde_json::from_str::<&RawValue>(instance).is_err() {
            assert!(from_text.is_err(), "not JSON, yet valid: {instance:?}");
        }
        return;
    };
    let tree = schema.validate(&value, "properties");
    assert_eq!(tree.is_ok(), schema.accepts(&value));
    let canonical = serde_json::to_string(&value).expect("a Value serialises");
    let walk = schema.validate_text(&canonical, "properties");
    assert_eq!(
        tree.is_ok(),
        walk.is_ok(),
        "validate says {tree:?}, validate_text says {walk:?} on {canonical}"
    );
    for violation in [tree.err(), walk.err(), from_text.err()]
        .into_iter()
        .flatten()
    {
        assert!(violation.path.starts_with("properties"), "{violation:?}");
        assert!(!violation.message.is_empty());
    }
});
