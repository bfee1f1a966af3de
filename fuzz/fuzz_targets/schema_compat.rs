//! The compatibility checker (`sluice_schemas::compat`), on two schemas and
//! an instance from one input: `old \0 new \0 instance`.
//!
//! Asserts: every schema is compatible with itself in both directions and
//! under every mode; `check` under FULL finds what BACKWARD and FORWARD find
//! together; and the checker is sound on the instance: when it calls a pair
//! compatible in a direction, an instance the writer accepts the reader
//! accepts too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_fuzz::parts;
use sluice_schemas::compat::{check, check_pair};
use sluice_schemas::{Compatibility, Direction, Schema};

fuzz_target!(|data: &[u8]| {
    let Some([old, new, instance]) = parts::<3>(data) else {
        return;
    };
    let (Ok(old), Ok(new)) = (Schema::from_text(old), Schema::from_text(new)) else {
        return;
    };
    for schema in [&old, &new] {
        for mode in Compatibility::ALL {
            let found = check(mode, schema, &[(1, schema), (2, schema)]);
            assert!(
                found.is_empty(),
                "not compatible with itself under {mode}: {found:?}"
            );
        }
    }

    let backward = check_pair(Direction::Backward, &old, &new, 1);
    let forward = check_pair(Direction::Forward, &old, &new, 1);
    let full = check(Compatibility::Full, &new, &[(1, &old)]);
    assert_eq!(full.len(), backward.len() + forward.len());
    assert!(check(Compatibility::None, &new, &[(1, &old)]).is_empty());
    for found in backward.iter().chain(&forward) {
        assert!(found.path.starts_with('#'), "{found}");
        assert!(!found.rule.is_empty() && !found.message.is_empty());
    }

    let Ok(instance) = serde_json::from_str::<Value>(instance) else {
        return;
    };
    // Backward: the new schema reads what the old one accepted.
    if backward.is_empty() && old.accepts(&instance) {
        assert!(
            new.accepts(&instance),
            "BACKWARD compatible, yet new refuses {instance} which old accepts"
        );
    }
    if forward.is_empty() && new.accepts(&instance) {
        assert!(
            old.accepts(&instance),
            "FORWARD compatible, yet old refuses {instance} which new accepts"
        );
    }
});
