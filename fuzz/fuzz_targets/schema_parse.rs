//! The schema parser and the Iglu/Segment importers, as schema registration
//! calls them (`gateway/src/admin/schemas/mod.rs`): the document read as
//! JSON, `Dialect::detect`, then `import` (and each dialect forced, since a
//! client chooses the document and so the dialect).
//!
//! Asserts: parsing is deterministic (the same document parses to an equal
//! schema or the same error); plain JSON Schema import is `Schema::parse`;
//! `Schema::from_text` agrees with parse-then-`Schema::parse`; an error names
//! a stable code and a JSON Pointer starting at `#`; an import's origin
//! matches the dialect asked for; an Iglu origin's version round-trips
//! through `SchemaVer::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_schemas::import::import;
use sluice_schemas::{Dialect, Origin, Schema, SchemaError, SchemaVer};

const CODES: [&str; 3] = [
    "invalid_schema",
    "unsupported_keyword",
    "schema_too_complex",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let from_text = Schema::from_text(text);
    let Ok(document) = serde_json::from_str::<Value>(text) else {
        assert_error(from_text.as_ref().expect_err("not JSON, yet parsed"));
        return;
    };
    let parsed = Schema::parse(&document);
    assert_eq!(
        parsed,
        Schema::parse(&document),
        "parse is not deterministic"
    );
    assert_eq!(parsed, from_text);
    if let Err(e) = &parsed {
        assert_error(e);
    }

    let detected = Dialect::detect(&document);
    for dialect in [
        detected,
        Dialect::JsonSchema,
        Dialect::Iglu,
        Dialect::Segment,
    ] {
        match import(dialect, &document, "Fuzzed Event") {
            Ok(imported) => {
                assert_eq!(imported.origin.dialect(), dialect);
                assert!(imported.origin.checked().starts_with('#'));
                if let Origin::Iglu(key) = &imported.origin {
                    let version = key.version.to_string();
                    assert_eq!(SchemaVer::parse(&version), Some(key.version));
                    assert!(key.uri().ends_with(&version));
                    assert!(!key.subject().is_empty());
                }
                if dialect == Dialect::JsonSchema {
                    assert_eq!(Ok(&imported.schema), parsed.as_ref());
                }
            }
            Err(e) => {
                assert_error(&e);
                if dialect == Dialect::JsonSchema {
                    assert_eq!(Err(&e), parsed.as_ref());
                }
            }
        }
    }
});

fn assert_error(e: &SchemaError) {
    assert!(CODES.contains(&e.code), "unknown code {}", e.code);
    assert!(e.path.starts_with('#'), "path {:?}", e.path);
    assert!(!e.message.is_empty());
}
