//! Conformance against the official JSON Schema Test Suite (draft 2020-12),
//! vendored under `tests/suite/` (see its README for the package, version
//! and licence). Every case of every vendored keyword file is run through
//! both walks (`validate` on a tree, `validate_text` while parsing). A case
//! either passes, or is skipped because its schema uses a keyword this
//! engine refuses (the refusal's message is the reason), or is listed in
//! [`KNOWN`] with the reason it deliberately differs. Anything else fails.
//!
//! `cargo test -p sluice-schemas --test suite -- --nocapture` prints the
//! per-keyword table published in docs/schemas.md.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_schemas::Schema;

/// (file, group description, test description, why it deliberately fails).
const KNOWN: &[(&str, &str, &str, &str)] = &[
    known_email("a quoted string with a space in the local part is valid"),
    known_email("a quoted string with a @ in the local part is valid"),
    known_email("dot before local part is not valid"),
    known_email("dot after local part is not valid"),
    known_email("two subsequent dots inside local part are not valid"),
    known_email("an invalid domain"),
    known_email("an invalid IPv4-address-literal"),
];

/// `email` keeps its documented rule (one `@`, both sides non-empty, no
/// whitespace; docs/schemas.md): tightening it to RFC 5321 would start
/// rejecting events that already-registered schemas accept, and loosening
/// it for quoted local parts would let through `@` twice.
const fn known_email(
    test: &'static str,
) -> (&'static str, &'static str, &'static str, &'static str) {
    (
        "format/email",
        "validation of e-mail addresses",
        test,
        "documented lax email rule: one @, non-empty parts, no whitespace",
    )
}

#[derive(Default)]
struct Tally {
    passed: usize,
    skipped: usize,
    known: usize,
    failed: usize,
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite/draft2020-12")
}

#[test]
fn the_official_suite_passes_for_every_supported_keyword() {
    // `format/` holds the suite's optional format files: this engine
    // asserts formats (an event with a bad `date-time` is rejected).
    let mut files: Vec<PathBuf> = [suite_dir(), suite_dir().join("format")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "only {} suite files found", files.len());
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut skips = Vec::new();
    let mut known_seen = Vec::new();
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let keyword = if file.parent().unwrap().ends_with("format") {
            format!("format/{stem}")
        } else {
            stem
        };
        let groups: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let tally = tallies.entry(keyword.clone()).or_default();
        for group in &groups {
            let description = group["description"].as_str().unwrap();
            let tests = group["tests"].as_array().unwrap();
            let schema = match Schema::parse(&group["schema"]) {
                Ok(schema) => schema,
                Err(err) => {
                    let known = KNOWN
                        .iter()
                        .find(|k| k.0 == keyword && k.1 == description && k.2 == "*");
                    if let Some(k) = known {
                        tally.known += tests.len();
                        known_seen.push(k);
                    } else if err.code == "unsupported_keyword" {
                        tally.skipped += tests.len();
                        skips.push(format!("{keyword}: {description}: {err}"));
                    } else {
                        tally.failed += tests.len();
                        failures.push(format!("{keyword}: {description}: schema refused: {err}"));
                    }
                    continue;
                }
            };
            for test in tests {
                let name = test["description"].as_str().unwrap();
                let data = &test["data"];
                let expected = test["valid"].as_bool().unwrap();
                let tree = schema.validate(data, "instance");
                let text = schema.validate_text(&data.to_string(), "instance");
                let ok = tree.is_ok() == expected && text.is_ok() == expected;
                let known = KNOWN
                    .iter()
                    .find(|k| k.0 == keyword && k.1 == description && k.2 == name);
                match (ok, known) {
                    (true, None) => tally.passed += 1,
                    (false, Some(k)) => {
                        tally.known += 1;
                        known_seen.push(k);
                    }
                    (true, Some(_)) => failures.push(format!(
                        "{keyword}: {description}: {name}: listed in KNOWN but passes; remove it"
                    )),
                    (false, None) => {
                        tally.failed += 1;
                        failures.push(format!(
                            "{keyword}: {description}: {name}: expected valid={expected}, tree {tree:?}, text {text:?}"
                        ));
                    }
                }
            }
        }
    }
    println!("| keyword file | passed | skipped (keyword refused) | known differences | failed |");
    println!("|---|---|---|---|---|");
    for (keyword, t) in &tallies {
        println!(
            "| {keyword} | {} | {} | {} | {} |",
            t.passed, t.skipped, t.known, t.failed
        );
    }
    println!("\nSkipped groups (the schema uses a keyword this engine refuses):");
    for skip in &skips {
        println!("- {skip}");
    }
    for k in KNOWN {
        assert!(known_seen.contains(&k), "KNOWN entry {k:?} matches no case");
    }
    assert!(
        failures.is_empty(),
        "{} suite cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
