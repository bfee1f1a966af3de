//! Differential test against Python's `jsonschema` (the reference
//! implementation): `differential/corpus.json` holds generated schemas and
//! instances with its verdicts (`differential/generate.py` says how it was
//! made). Both walks of this crate must agree on every instance.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::Value;
use sluice_schemas::Schema;

#[test]
fn verdicts_agree_with_python_jsonschema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/corpus.json");
    let corpus: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases {
        let schema = match Schema::parse(&case["schema"]) {
            Ok(schema) => schema,
            Err(err) => {
                failures.push(format!("{}: refused: {err}", case["schema"]));
                continue;
            }
        };
        for pair in case["instances"].as_array().unwrap() {
            let (instance, expected) = (&pair[0], pair[1].as_bool().unwrap());
            let tree = schema.accepts(instance);
            let text = schema.validate_text(&instance.to_string(), "p").is_ok();
            checked += 1;
            if tree != expected || text != expected {
                failures.push(format!(
                    "schema {}\n  instance {instance}: jsonschema says {expected}, tree {tree}, text {text}",
                    case["schema"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} verdicts differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
