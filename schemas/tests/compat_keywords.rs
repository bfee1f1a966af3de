//! Compatibility of the keywords added for issue 24 (`pattern`,
//! `patternProperties`, `multipleOf`, `minProperties`/`maxProperties`,
//! `uniqueItems`, `dependentRequired`, `const`): a verdict and rule per
//! change, then a soundness sweep: for generated schema pairs the checker
//! calls compatible, no generated instance valid for the writer fails the
//! reader.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use sluice_schemas::{Compatibility, Schema, compat};

/// The rules broken when `new` replaces `old` under BACKWARD (old ⊆ new).
fn backward(old: &Value, new: &Value) -> Vec<String> {
    let (old, new) = (Schema::parse(old).unwrap(), Schema::parse(new).unwrap());
    compat::check(Compatibility::Backward, &new, &[(1, &old)])
        .iter()
        .map(|i| format!("{} {} {}", i.rule, i.path, i.message))
        .collect()
}

fn rules(old: Value, new: Value) -> Vec<String> {
    backward(&old, &new)
        .iter()
        .map(|s| s.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn pattern_is_compared_by_text_and_decided_conservatively() {
    let p = |p: &str| json!({"type": "string", "pattern": p});
    assert!(rules(p("^[A-Z]{3}$"), p("^[A-Z]{3}$")).is_empty());
    assert!(rules(p("^[A-Z]{3}$"), json!({"type": "string"})).is_empty());
    // `^[A-Z]{3}$` ⊆ `^[A-Z]+$` holds, but regex inclusion is not decided.
    let found = backward(&p("^[A-Z]{3}$"), &p("^[A-Z]+$"));
    assert!(
        found[0].starts_with("pattern_changed #/pattern"),
        "{found:?}"
    );
    assert!(found[0].contains("not compared for inclusion"), "{found:?}");
    assert_eq!(
        rules(json!({"type": "string"}), p("^x")),
        ["pattern_changed #/pattern"]
    );
    // A writer enum is checked value by value: exact.
    assert!(rules(json!({"enum": ["EUR", "USD"]}), p("^[A-Z]{3}$")).is_empty());
    assert_eq!(
        rules(json!({"enum": ["EUR", "usd"]}), p("^[A-Z]{3}$")),
        ["enum_value_invalid #"]
    );
}

#[test]
fn pattern_properties_need_the_identical_pattern() {
    let pp = |s: Value| json!({"type": "object", "patternProperties": {"^x_": s}});
    assert!(
        rules(
            pp(json!({"type": "integer"})),
            pp(json!({"type": "number"}))
        )
        .is_empty()
    );
    assert_eq!(
        rules(
            pp(json!({"type": "number"})),
            pp(json!({"type": "integer"}))
        ),
        ["type_changed #/patternProperties/^x_"]
    );
    assert_eq!(
        rules(json!({"type": "object"}), pp(json!({"type": "integer"}))),
        ["pattern_properties_changed #/patternProperties/^x_"]
    );
    // A writer pattern the reader lacks must fit the reader's
    // additionalProperties.
    let closed = json!({"type": "object", "additionalProperties": false});
    assert_eq!(
        rules(pp(json!({"type": "integer"})), closed),
        [
            "value_forbidden #/patternProperties/^x_",
            "content_model_closed #/additionalProperties"
        ]
    );
    // A closed writer with a pattern may still carry `x_a`: a reader that
    // names `x_a` as a string is checked against the pattern's schema.
    let writer = json!({"type": "object", "additionalProperties": false,
                        "patternProperties": {"^x_": {"type": "integer"}}});
    let reader = json!({"type": "object", "additionalProperties": false,
                        "patternProperties": {"^x_": {"type": "integer"}},
                        "properties": {"x_a": {"type": "string"}}});
    assert_eq!(rules(writer, reader), ["type_changed #/properties/x_a"]);
}

#[test]
fn multiple_of_counts_and_uniqueness() {
    let m = |m: f64| json!({"type": "number", "multipleOf": m});
    assert!(
        rules(m(0.5), m(0.25)).is_empty(),
        "multiples of 0.5 are multiples of 0.25"
    );
    assert_eq!(rules(m(0.25), m(0.5)), ["multiple_of_changed #/multipleOf"]);
    assert!(
        rules(
            json!({"type": "integer"}),
            json!({"type": "integer", "multipleOf": 0.5})
        )
        .is_empty()
    );
    assert_eq!(
        rules(
            json!({"type": "integer"}),
            json!({"type": "integer", "multipleOf": 2})
        ),
        ["multiple_of_changed #/multipleOf"]
    );
    let props =
        |min: u64, max: u64| json!({"type": "object", "minProperties": min, "maxProperties": max});
    assert!(rules(props(2, 3), props(1, 4)).is_empty());
    assert_eq!(
        rules(props(1, 4), props(2, 3)),
        [
            "range_narrowed #/minProperties",
            "range_narrowed #/maxProperties"
        ]
    );
    let u = |u: bool| json!({"type": "array", "uniqueItems": u});
    assert!(rules(u(true), u(false)).is_empty());
    assert_eq!(
        rules(u(false), u(true)),
        ["unique_items_added #/uniqueItems"]
    );
    assert!(rules(json!({"type": "array", "maxItems": 1}), u(true)).is_empty());
}

#[test]
fn dependent_required_and_const() {
    let d = |deps: Value| json!({"type": "object", "dependentRequired": deps});
    assert!(rules(d(json!({"card": ["billing"]})), json!({"type": "object"})).is_empty());
    assert_eq!(
        rules(json!({"type": "object"}), d(json!({"card": ["billing"]}))),
        ["dependent_required_added #/dependentRequired/card"]
    );
    assert!(
        rules(
            json!({"type": "object", "required": ["billing"]}),
            d(json!({"card": ["billing"]}))
        )
        .is_empty()
    );
    assert!(
        rules(
            json!({"const": 2}),
            json!({"type": "integer", "multipleOf": 2})
        )
        .is_empty()
    );
    assert_eq!(
        rules(
            json!({"const": 3}),
            json!({"type": "integer", "multipleOf": 2})
        ),
        ["enum_value_invalid #"]
    );
}

#[test]
fn unions_and_conditions() {
    let number_or_numeric =
        json!({"anyOf": [{"type": "number"}, {"type": "string", "pattern": "^[0-9]+$"}]});
    let wider = json!({"anyOf": [{"type": "number"}, {"type": "string", "pattern": "^[0-9]+$"}, {"type": "null"}]});
    assert!(rules(number_or_numeric.clone(), number_or_numeric.clone()).is_empty());
    assert!(
        rules(number_or_numeric.clone(), wider.clone()).is_empty(),
        "a branch added"
    );
    assert!(rules(json!({"type": "integer"}), number_or_numeric.clone()).is_empty());
    let found = rules(wider, number_or_numeric.clone());
    assert_eq!(found[0], "union_not_included #/anyOf/2", "{found:?}");
    assert_eq!(
        rules(json!({"type": "boolean"}), number_or_numeric),
        ["any_of_not_proven #/anyOf"]
    );
    // Unchanged applicators, changed siblings: only the siblings compared.
    let with = |extra: Value| {
        let mut s = json!({"type": "object", "properties": {"a": {"type": "string"}},
                           "oneOf": [{"required": ["a"]}, {"required": ["b"]}]});
        s["properties"]["c"] = extra;
        s
    };
    assert!(
        rules(
            with(json!({"type": "integer"})),
            with(json!({"type": "number"}))
        )
        .is_empty()
    );
    assert_eq!(
        rules(
            with(json!({"type": "number"})),
            with(json!({"type": "integer"}))
        ),
        ["type_changed #/properties/c"]
    );
    assert_eq!(
        rules(
            json!({"type": "integer"}),
            json!({"oneOf": [{"type": "integer"}, {"minimum": 0}]})
        ),
        ["one_of_not_proven #/oneOf"]
    );
    assert_eq!(
        rules(json!({}), json!({"not": {"type": "null"}})),
        ["not_not_proven #/not"]
    );
    let cond = json!({"if": {"type": "integer"}, "then": {"minimum": 0}});
    assert!(rules(json!({"type": "integer", "minimum": 1}), cond.clone()).is_empty());
    assert_eq!(
        rules(json!({"type": "integer"}), cond),
        ["condition_not_proven #/if"]
    );
    // `$ref` alone is its target: compared like plain keywords.
    let defs = |t: &str| {
        json!({"$defs": {"sku": {"type": t}}, "type": "object",
                              "properties": {"sku": {"$ref": "#/$defs/sku"}}})
    };
    assert!(rules(defs("integer"), defs("number")).is_empty());
    assert_eq!(
        rules(defs("number"), defs("integer")),
        ["type_changed #/properties/sku"]
    );
}

/// A tiny deterministic generator (xorshift), so the sweep needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn leaf(rng: &mut Rng) -> Value {
    rng.pick(&[
        json!({}),
        json!({"type": "string", "pattern": "^[a-c]+$"}),
        json!({"type": "string", "pattern": "^a"}),
        json!({"type": "string", "minLength": 2}),
        json!({"enum": ["a", "ab", "abc", "x"]}),
        json!({"const": "ab"}),
        json!({"type": "number", "multipleOf": 0.5}),
        json!({"type": "number", "multipleOf": 1.5}),
        json!({"type": "integer", "multipleOf": 3}),
        json!({"type": "integer"}),
        json!({"type": ["integer", "string"]}),
        json!({"const": 3}),
        json!({"type": "array", "uniqueItems": true}),
        json!({"type": "array", "items": {"type": "integer"}, "maxItems": 1}),
        json!({"type": "array"}),
        json!(false),
        json!({"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^a"}]}),
        json!({"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
        json!({"oneOf": [{"type": "integer"}, {"multipleOf": 1.5}]}),
        json!({"not": {"type": "string"}}),
        json!({"if": {"type": "integer"}, "then": {"minimum": 3}, "else": {"type": "string"}}),
        json!({"allOf": [{"type": "number"}, {"multipleOf": 0.5}]}),
        json!({"type": "integer", "allOf": [{"minimum": 1}]}),
    ])
    .clone()
}

fn object_schema(rng: &mut Rng) -> Value {
    let mut schema = json!({"type": "object"});
    let o = schema.as_object_mut().unwrap();
    for name in ["a", "x_b"] {
        if rng.next().is_multiple_of(2) {
            o.entry("properties")
                .or_insert(json!({}))
                .as_object_mut()
                .unwrap()
                .insert(name.to_owned(), leaf(rng));
        }
    }
    if rng.next().is_multiple_of(2) {
        let pattern = rng.pick(&["^x_", "^a", "b$"]).to_string();
        o.insert("patternProperties".into(), json!({pattern: leaf(rng)}));
    }
    match rng.next() % 3 {
        0 => {
            o.insert("additionalProperties".into(), json!(false));
        }
        1 => {
            o.insert("additionalProperties".into(), leaf(rng));
        }
        _ => {}
    }
    if rng.next().is_multiple_of(3) {
        o.insert("minProperties".into(), json!(rng.next() % 3));
    }
    if rng.next().is_multiple_of(3) {
        o.insert("maxProperties".into(), json!(2 + rng.next() % 2));
    }
    if rng.next().is_multiple_of(3) {
        o.insert("dependentRequired".into(), json!({"a": ["x_b"]}));
    }
    if rng.next().is_multiple_of(3) {
        o.insert("required".into(), json!([rng.pick(&["a", "x_b"])]));
    }
    if rng.next().is_multiple_of(4) {
        o.insert(
            "anyOf".into(),
            rng.pick(&[
                json!([{"required": ["a"]}, {"required": ["x_b"]}]),
                json!([{"required": ["a"]}]),
                json!([{"maxProperties": 1}, {"required": ["a"]}]),
            ])
            .clone(),
        );
    }
    schema
}

fn instances() -> Vec<Value> {
    let scalars = [
        json!("a"),
        json!("ab"),
        json!("abc"),
        json!("x"),
        json!("ba"),
        json!(0),
        json!(1.5),
        json!(3),
        json!(4.5),
        json!(6),
        json!(null),
        json!([]),
        json!([1, 1]),
        json!([1, 2]),
        json!([1]),
        json!(-2),
        json!(true),
    ];
    let mut out = Vec::new();
    for name in ["a", "x_b", "x_c", "zb", "q"] {
        for v in &scalars {
            out.push(json!({ name: v }));
            out.push(json!({ name: v, "a": "ab" }));
            out.push(json!({ name: v, "x_b": 3 }));
        }
    }
    out.push(json!({}));
    out
}

#[test]
fn compatible_verdicts_are_sound_on_generated_schemas() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let instances = instances();
    let mut compatible = 0;
    for _ in 0..8000 {
        let (old, new) = (object_schema(&mut rng), object_schema(&mut rng));
        let (o, n) = (Schema::parse(&old).unwrap(), Schema::parse(&new).unwrap());
        if !compat::check(Compatibility::Backward, &n, &[(1, &o)]).is_empty() {
            continue;
        }
        compatible += 1;
        for instance in &instances {
            assert!(
                !o.accepts(instance) || n.accepts(instance),
                "called compatible, but {instance} is valid for\n  old {old}\nand not for\n  new {new}"
            );
        }
    }
    assert!(
        compatible > 150,
        "only {compatible} compatible pairs generated"
    );
}
