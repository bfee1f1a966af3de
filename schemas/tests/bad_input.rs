//! Hostile schemas from issue 24: each is refused with a specific error or
//! costs a bounded time, never a stalled or crashed gateway.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_schemas::{Schema, SchemaError};

fn refused(schema: &Value) -> SchemaError {
    Schema::parse(schema).unwrap_err()
}

#[test]
fn catastrophic_backtracking_patterns_run_in_linear_time() {
    // Each takes exponential time in a backtracking engine on "aaa…a!".
    let subject = format!("{}!", "a".repeat(20_000));
    for pattern in ["^(a+)+$", "^(a|aa)*$", "^(a|a?)+$", "^(a*)*b$", "(x+x+)+y"] {
        let schema = Schema::parse(&json!({"type": "string", "pattern": pattern})).unwrap();
        let text = Value::String(subject.clone()).to_string();
        let started = Instant::now();
        assert!(schema.validate_text(&text, "p").is_err(), "{pattern}");
        let took = started.elapsed();
        // Generous for an unoptimised build on a shared machine; a
        // backtracking engine would not finish at all.
        assert!(took < Duration::from_secs(2), "{pattern} took {took:?}");
    }
}

#[test]
fn oversized_patterns_are_refused() {
    let big = "a".repeat(100 * 1024);
    let err = refused(&json!({"properties": {"sku": {"pattern": big}}}));
    assert_eq!(err.code, "schema_too_complex");
    assert_eq!(err.path, "#/properties/sku/pattern");
    assert!(err.message.contains("102400 bytes"), "{err}");
    // Short text, huge program.
    let err = refused(&json!({"pattern": "(((a{100}){100}){100})"}));
    assert_eq!(err.code, "schema_too_complex", "{err}");
    // Unsupported syntax is named as such.
    let err = refused(&json!({"pattern": "^(a)\\1$"}));
    assert_eq!(err.code, "unsupported_keyword", "{err}");
    let err = refused(&json!({"patternProperties": {"(?=x)": {}}}));
    assert_eq!(err.code, "unsupported_keyword", "{err}");
    assert_eq!(err.path, "#/patternProperties/(?=x)");
}

#[test]
fn ref_cycles_are_refused_with_the_cycle() {
    let err = refused(&json!({"properties": {"child": {"$ref": "#"}}}));
    assert_eq!(err.code, "unsupported_keyword");
    assert!(err.message.contains("recursive `$ref`"), "{err}");
    let err = refused(&json!({
        "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"items": {"$ref": "#/$defs/a"}}},
        "properties": {"x": {"$ref": "#/$defs/a"}}
    }));
    assert!(
        err.message.contains("#/$defs/a -> #/$defs/b -> #/$defs/a"),
        "{err}"
    );
    let err = refused(&json!({"$ref": "#/$defs/missing"}));
    assert_eq!(err.code, "invalid_schema");
    let err = refused(&json!({"$ref": "https://example.com/address.json"}));
    assert_eq!(err.code, "unsupported_keyword");
    assert!(err.message.contains("not a local reference"), "{err}");
}

#[test]
fn exponential_ref_expansion_is_bounded() {
    // d0 uses d1 twice, d1 uses d2 twice, …: 2^30 expansions.
    let mut defs = serde_json::Map::new();
    for i in 0..30 {
        let next = format!("#/$defs/d{}", i + 1);
        defs.insert(
            format!("d{i}"),
            json!({"allOf": [{"$ref": next}, {"$ref": next}]}),
        );
    }
    defs.insert("d30".into(), json!({"type": "integer"}));
    let started = Instant::now();
    let err = refused(&json!({"$defs": defs, "$ref": "#/$defs/d0"}));
    assert_eq!(err.code, "schema_too_complex", "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn deep_nesting_is_refused() {
    let mut schema = json!({"type": "string"});
    for _ in 0..1000 {
        schema = json!({"type": "object", "properties": {"a": schema}});
    }
    let err = refused(&schema);
    assert_eq!(err.code, "schema_too_complex");
    assert!(err.message.contains("nested more than 64 deep"), "{err}");
    // As text, serde_json's own recursion limit stops it first.
    let err = Schema::from_text(&schema.to_string()).unwrap_err();
    assert_eq!(err.code, "invalid_schema");
    assert!(err.message.contains("recursion limit"), "{err}");
    // A deep instance: skipped without recursion where unconstrained, and
    // stopped by serde_json's recursion limit where it is materialised.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Schema::any().validate_text(&deep, "p").is_ok());
    let union = Schema::parse(&json!({"anyOf": [{"type": "array"}]})).unwrap();
    let err = union.validate_text(&deep, "p").unwrap_err();
    assert!(err.message.contains("recursion limit"), "{err}");
}

#[test]
fn huge_unions_are_refused() {
    let branches: Vec<Value> = (0..10_000).map(|i| json!({"const": i})).collect();
    let err = refused(&json!({"oneOf": branches}));
    assert_eq!(err.code, "schema_too_complex");
    assert_eq!(err.path, "#/oneOf");
    assert!(err.message.contains("10000 branches"), "{err}");
    // Many moderate unions together hit the subschema budget.
    let union: Vec<Value> = (0..200).map(|i| json!({"const": i})).collect();
    let properties: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("p{i}"), json!({"anyOf": union})))
        .collect();
    let err = refused(&json!({"properties": properties}));
    assert_eq!(err.code, "schema_too_complex", "{err}");
}

#[test]
fn long_arrays_under_unique_items_are_checked_in_n_log_n() {
    let schema = Schema::parse(&json!({"type": "array", "uniqueItems": true})).unwrap();
    let distinct: Vec<Value> = (0..20_000).map(|i| json!([i, {"k": i}])).collect();
    let text = Value::Array(distinct.clone()).to_string();
    let started = Instant::now();
    assert!(schema.validate_text(&text, "p").is_ok());
    assert!(started.elapsed() < Duration::from_secs(2));
    // The first repeated pair is named, also when the repeat is 1 vs 1.0
    // inside objects whose keys come in another order.
    let mut repeated = distinct;
    repeated[19_000] = json!([7.0, {"k": 7}]);
    let err = schema.validate(&Value::Array(repeated), "p").unwrap_err();
    assert_eq!(
        err.message,
        "items 7 and 19000 are equal; uniqueItems requires distinct items"
    );
    let mixed = json!([{"a": 1, "b": 2.0}, 3, {"b": 2, "a": 1.0}, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
    assert!(!schema.accepts(&mixed));
}
