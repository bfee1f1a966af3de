//! The compatibility matrix: every folder under `tests/cases/schema-compat`
//! is one schema change with the expected verdict and explanation for each
//! of the seven modes (format in that folder's README).

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_schemas::{Compatibility, Schema, compat};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases/schema-compat")
}

fn load(path: &Path) -> Schema {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Schema::from_text(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_case_has_the_expected_verdict_and_explanation_in_every_mode() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "only {} cases found", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let old = load(&case.join("old.json"));
        let new = load(&case.join("new.json"));
        let older = case.join("older.json");
        let older = older.exists().then(|| load(&older));
        let mut earlier: Vec<(u32, &Schema)> = Vec::new();
        if let Some(older) = &older {
            earlier.push((1, older));
        }
        earlier.push((earlier.len() as u32 + 1, &old));
        let expect: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expect.json")).unwrap())
                .unwrap();
        for mode in Compatibility::ALL {
            let expected = &expect[mode.as_str()];
            let found = compat::check(mode, &new, &earlier);
            let explanation: Vec<String> = found.iter().map(ToString::to_string).collect();
            let explanation = explanation.join("\n    ");
            match expected {
                Value::Bool(true) if found.is_empty() => {}
                Value::String(substring)
                    if !found.is_empty() && explanation.contains(substring.as_str()) => {}
                Value::Null => failures.push(format!("{name}: expect.json has no {mode}")),
                _ => failures.push(format!(
                    "{name} {mode}: expected {expected}, got {}",
                    if found.is_empty() {
                        "compatible".to_owned()
                    } else {
                        format!("incompatible:\n    {explanation}")
                    }
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases × 7 modes failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
