//! Validating one instance (an event's `properties`) against a parsed schema.
//!
//! Two walks share the rules below: [`Schema::validate`] over a parsed
//! [`Value`] (the compatibility checker uses it for enum values), and
//! [`Schema::validate_text`], which the gateway calls per event: it checks
//! while parsing (see [`crate::stream`]), so no JSON tree is built.
//!
//! A walk stops at the first violation: the gateway needs one reason per
//! rejected event, and stopping early keeps the cost of a bad event no higher
//! than a good one's. The failing path is built only on failure, while the
//! recursion unwinds.

use std::fmt;

use serde_json::Value;

use crate::model::{Bound, Node, Schema, Types};

/// The first rule an instance broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, e.g. `properties.address.zip` or `properties.tags[2]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path, self.message)
    }
}

#[derive(Debug)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A violation on its way up: segments are added while unwinding.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Innermost segment first.
    segments: Vec<Segment>,
    message: String,
}

impl Failure {
    pub(crate) fn new(message: String) -> Self {
        Self {
            segments: Vec::new(),
            message,
        }
    }

    pub(crate) fn at(mut self, segment: Segment) -> Self {
        self.segments.push(segment);
        self
    }

    pub(crate) fn into_violation(self, root: &str) -> Violation {
        let mut path = root.to_owned();
        for segment in self.segments.iter().rev() {
            match segment {
                Segment::Key(key) => {
                    path.push('.');
                    path.push_str(key);
                }
                Segment::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        Violation {
            path,
            message: self.message,
        }
    }
}

impl Schema {
    /// Checks `instance`; `root` names it in the violation's path (the
    /// gateway passes `properties`). [`Schema::validate_text`] does the same
    /// on JSON text while parsing it.
    pub fn validate(&self, instance: &Value, root: &str) -> Result<(), Violation> {
        check(self, instance).map_err(|failure| failure.into_violation(root))
    }

    /// True if `instance` is valid.
    pub fn accepts(&self, instance: &Value) -> bool {
        check(self, instance).is_ok()
    }
}

pub(crate) fn check(schema: &Schema, value: &Value) -> Result<(), Failure> {
    match schema {
        Schema::Never => Err(never()),
        Schema::Node(node) => check_node(node, value),
    }
}

pub(crate) fn never() -> Failure {
    Failure::new("no value is allowed here".to_owned())
}

/// The type rule: `kind` (one type bit) must be one of the node's types.
pub(crate) fn check_type(node: &Node, kind: Types) -> Result<(), Failure> {
    if node.types.contains(kind) {
        return Ok(());
    }
    let got = match kind {
        Types::FRACTION => "a non-integer number",
        Types::INTEGER => "an integer",
        Types::NULL => "null",
        Types::BOOLEAN => "a boolean",
        Types::STRING => "a string",
        Types::ARRAY => "an array",
        _ => "an object",
    };
    Err(Failure::new(format!("expected {}, got {got}", node.types)))
}

pub(crate) fn check_enum(node: &Node, value: &Value) -> Result<(), Failure> {
    match &node.enumeration {
        Some(allowed) if !allowed.iter().any(|a| same(a, value)) => Err(Failure::new(format!(
            "{} is not one of {}",
            short(value),
            Value::Array(allowed.clone())
        ))),
        _ => Ok(()),
    }
}

/// The numeric bounds.
pub(crate) fn check_number(node: &Node, x: f64) -> Result<(), Failure> {
    if let Some(min) = node.minimum
        && !above(x, min)
    {
        return Err(Failure::new(format!(
            "{x} is below the minimum {}",
            describe_bound(min)
        )));
    }
    if let Some(max) = node.maximum
        && !below(x, max)
    {
        return Err(Failure::new(format!(
            "{x} is above the maximum {}",
            describe_bound(max)
        )));
    }
    if let Some(m) = node.multiple_of
        && !multiple_of(x, m)
    {
        return Err(Failure::new(format!("{x} is not a multiple of {m}")));
    }
    Ok(())
}

/// `x` is an integer multiple of `m`, in binary floating point with a
/// relative tolerance: 0.0075 is a multiple of 0.0001 although
/// 0.0075 / 0.0001 is 74.99999999999999. Where the quotient overflows, the
/// remainder decides, exactly (`%` on doubles is exact): 1e308 is a multiple
/// of 0.5, and not of 0.123456789 (the suite's "float division = inf"
/// case). Refusing every overflowing quotient made the compatibility checker
/// unsound: `integer` → `multipleOf: 0.5` is compatible, yet 1e308 was
/// refused by the new schema (found by fuzz/fuzz_targets/schema_compat.rs).
pub(crate) fn multiple_of(x: f64, m: f64) -> bool {
    let q = x / m;
    if !q.is_finite() {
        return x.is_finite() && x % m == 0.0;
    }
    (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
}

/// `minProperties`/`maxProperties`.
pub(crate) fn check_property_count(node: &Node, len: usize) -> Result<(), Failure> {
    let len = len as u64;
    if node.min_properties.is_some_and(|min| len < min)
        || node.max_properties.is_some_and(|max| len > max)
    {
        return Err(Failure::new(format!(
            "has {len} properties; {} allowed",
            range(node.min_properties, node.max_properties)
        )));
    }
    Ok(())
}

/// `dependentRequired`, given a test for which names are present.
pub(crate) fn check_dependent(node: &Node, has: impl Fn(&str) -> bool) -> Result<(), Failure> {
    for (key, names) in &node.dependent_required {
        if has(key)
            && let Some(name) = names.iter().find(|n| !has(n))
        {
            return Err(Failure::new(format!(
                "property `{name}` is required when `{key}` is present (dependentRequired)"
            )));
        }
    }
    Ok(())
}

/// `uniqueItems`. Pairwise for short arrays; past 16 elements, by sorting
/// canonical forms (O(n log n)), so a 10,000-element array in a hostile
/// event costs milliseconds, not seconds.
pub(crate) fn check_unique(elements: &[Value]) -> Result<(), Failure> {
    let duplicate = if elements.len() <= 16 {
        elements.iter().enumerate().find_map(|(j, b)| {
            elements[..j]
                .iter()
                .position(|a| same(a, b))
                .map(|i| (i, j))
        })
    } else {
        let mut keyed: Vec<(String, usize)> = elements
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut key = String::new();
                canonical(v, &mut key);
                (key, i)
            })
            .collect();
        keyed.sort();
        keyed
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| (w[0].1.min(w[1].1), w[0].1.max(w[1].1)))
            .min_by_key(|&(_, j)| j)
    };
    match duplicate {
        Some((i, j)) => Err(Failure::new(format!(
            "items {i} and {j} are equal; uniqueItems requires distinct items"
        ))),
        None => Ok(()),
    }
}

/// A text equal for two values exactly when [`same`] says they are: numbers
/// by their `f64` value, object members sorted by key.
fn canonical(value: &Value, out: &mut String) {
    use std::fmt::Write as _;
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            // -0.0 == 0.0.
            let x = if x == 0.0 { 0.0 } else { x };
            let _ = write!(out, "n{x:?};");
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (key, item) in members {
                let _ = write!(out, "{}:", Value::String(key.clone()));
                canonical(item, out);
            }
            out.push('}');
        }
        other => {
            let _ = write!(out, "{other};");
        }
    }
}

/// The schemas that apply to member `key` besides `properties`: those of
/// every matching `patternProperties`, then `additionalProperties` when
/// neither a property nor a pattern names it. `Err` when it is not allowed.
pub(crate) fn member_schemas<'s>(
    node: &'s Node,
    key: &str,
    out: &mut Vec<&'s Schema>,
) -> Result<(), Failure> {
    let named = node.properties.get(key);
    if let Some(schema) = named {
        out.push(schema);
    }
    let before = out.len();
    for (pattern, schema) in &node.pattern_properties {
        if pattern.is_match(key) {
            out.push(schema);
        }
    }
    if named.is_none() && out.len() == before {
        match &node.additional {
            None => {}
            Some(Schema::Never) => return Err(not_allowed()),
            Some(schema) => out.push(schema),
        }
    }
    Ok(())
}

pub(crate) fn check_item_count(node: &Node, len: usize) -> Result<(), Failure> {
    let len = len as u64;
    if node.min_items.is_some_and(|min| len < min) || node.max_items.is_some_and(|max| len > max) {
        return Err(Failure::new(format!(
            "has {len} items; {} allowed",
            range(node.min_items, node.max_items)
        )));
    }
    Ok(())
}

pub(crate) fn missing_required(name: &str) -> Failure {
    Failure::new(format!("required property `{name}` is missing"))
}

pub(crate) fn not_allowed() -> Failure {
    Failure::new(
        "property not allowed: the schema is closed (additionalProperties: false) and does not name it"
            .to_owned(),
    )
}

pub(crate) fn check_node(node: &Node, value: &Value) -> Result<(), Failure> {
    check_type(node, Types::of(value))?;
    check_enum(node, value)?;
    match value {
        Value::Number(n) => check_number(node, n.as_f64().unwrap_or(f64::NAN))?,
        Value::String(s) => check_string(node, s)?,
        Value::Array(elements) => {
            check_item_count(node, elements.len())?;
            if let Some(items) = &node.items {
                for (i, element) in elements.iter().enumerate() {
                    check(items, element).map_err(|f| f.at(Segment::Index(i)))?;
                }
            }
            if node.unique_items {
                check_unique(elements)?;
            }
        }
        Value::Object(map) => {
            if let Some(name) = node.required.iter().find(|n| !map.contains_key(*n)) {
                return Err(missing_required(name));
            }
            check_property_count(node, map.len())?;
            check_dependent(node, |k| map.contains_key(k))?;
            let mut schemas = Vec::new();
            for (key, element) in map {
                schemas.clear();
                member_schemas(node, key, &mut schemas)
                    .and_then(|()| schemas.iter().try_for_each(|s| check(s, element)))
                    .map_err(|f| f.at(Segment::Key(key.clone())))?;
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
    if node.has_applicators() {
        check_applicators(node, value)?;
    }
    Ok(())
}

/// `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`. A failing `allOf`
/// branch or `then`/`else` reports its own violation (with its path); a
/// union names the first branch's reason.
pub(crate) fn check_applicators(node: &Node, value: &Value) -> Result<(), Failure> {
    for schema in &node.all_of {
        check(schema, value)?;
    }
    if !node.any_of.is_empty() {
        let mut first = None;
        let matched = node.any_of.iter().any(|s| match check(s, value) {
            Ok(()) => true,
            Err(f) => {
                first.get_or_insert(f);
                false
            }
        });
        if !matched {
            return Err(Failure::new(format!(
                "matches none of the {} `anyOf` schemas (the first says: {})",
                node.any_of.len(),
                first.map_or_else(String::new, |f| f.message)
            )));
        }
    }
    if !node.one_of.is_empty() {
        let mut matched = Vec::new();
        let mut first = None;
        for (i, schema) in node.one_of.iter().enumerate() {
            match check(schema, value) {
                Ok(()) => matched.push(i),
                Err(f) => {
                    first.get_or_insert(f);
                }
            }
            if matched.len() > 1 {
                return Err(Failure::new(format!(
                    "matches more than one `oneOf` schema (branches {} and {}); exactly one must match",
                    matched[0], matched[1]
                )));
            }
        }
        if matched.is_empty() {
            return Err(Failure::new(format!(
                "matches none of the {} `oneOf` schemas (the first says: {})",
                node.one_of.len(),
                first.map_or_else(String::new, |f| f.message)
            )));
        }
    }
    if let Some(not) = &node.not
        && check(not, value).is_ok()
    {
        return Err(Failure::new(
            "matches the schema under `not`, which must not match".to_owned(),
        ));
    }
    if let Some(condition) = &node.condition {
        if check(&condition.test, value).is_ok() {
            check(&condition.then, value)?;
        } else {
            check(&condition.otherwise, value)?;
        }
    }
    Ok(())
}

pub(crate) fn check_string(node: &Node, s: &str) -> Result<(), Failure> {
    // A string has between len/4 and len code points: count them only when
    // the byte length cannot settle the bounds.
    let bytes = s.len() as u64;
    let settled = node.max_length.is_none_or(|max| bytes <= max)
        && node.min_length.is_none_or(|min| bytes / 4 >= min);
    if !settled {
        let len = s.chars().count() as u64;
        if node.min_length.is_some_and(|min| len < min)
            || node.max_length.is_some_and(|max| len > max)
        {
            return Err(Failure::new(format!(
                "is {len} characters long; {} allowed",
                range(node.min_length, node.max_length)
            )));
        }
    }
    if let Some(pattern) = &node.pattern
        && !pattern.is_match(s)
    {
        return Err(Failure::new(format!(
            "{} does not match the pattern {:?}",
            short(&Value::String(s.to_owned())),
            pattern.source()
        )));
    }
    if let Some(format) = node.format
        && !crate::format::format_ok(format, s)
    {
        return Err(Failure::new(format!(
            "{} is not a valid `{}`",
            short(&Value::String(s.to_owned())),
            format.name()
        )));
    }
    Ok(())
}

/// JSON equality where 1 and 1.0 are the same number (as JSON Schema says).
/// Deep: `[1]` and `[1.0]`, `{"a": 1}` and `{"a": 1.0}` are the same too.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

fn above(x: f64, min: Bound) -> bool {
    if min.exclusive {
        x > min.value
    } else {
        x >= min.value
    }
}

fn below(x: f64, max: Bound) -> bool {
    if max.exclusive {
        x < max.value
    } else {
        x <= max.value
    }
}

pub(crate) fn describe_bound(bound: Bound) -> String {
    if bound.exclusive {
        format!("{} (exclusive)", bound.value)
    } else {
        bound.value.to_string()
    }
}

fn range(min: Option<u64>, max: Option<u64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("{min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => "any number".to_owned(),
    }
}

/// A value for a message, cut short: event data can be large.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 60 {
        return text;
    }
    let mut end = 57;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse(&json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["plan"],
            "properties": {
                "plan": {"enum": ["free", "pro"]},
                "seats": {"type": "integer", "minimum": 1},
                "price": {"type": "number", "exclusiveMinimum": 0},
                "email": {"type": "string", "format": "email", "maxLength": 50},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                "address": {"type": "object", "properties": {"zip": {"type": ["string", "null"]}}}
            }
        }))
        .unwrap()
    }

    fn error(instance: Value) -> String {
        schema()
            .validate(&instance, "properties")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn overflowing_quotients_are_decided_by_the_exact_remainder() {
        assert!(multiple_of(1e308, 0.5));
        assert!(multiple_of(f64::MAX, 0.25));
        assert!(!multiple_of(1e308, 0.123456789));
        assert!(!multiple_of(1e308, 1e-8));
    }

    #[test]
    fn valid_instances_pass() {
        let s = schema();
        let ok = json!({"plan": "pro", "seats": 3, "price": 9.5, "email": "a@b.io",
                        "tags": ["x"], "address": {"zip": null, "extra": 1}});
        assert_eq!(s.validate(&ok, "properties"), Ok(()));
        // 2.0 is an integer in JSON Schema.
        assert!(s.accepts(&json!({"plan": "free", "seats": 2.0})));
    }

    #[test]
    fn violations_name_the_path_and_the_rule() {
        assert_eq!(
            error(json!({"seats": 1})),
            "`properties`: required property `plan` is missing"
        );
        assert_eq!(
            error(json!({"plan": "gold"})),
            "`properties.plan`: \"gold\" is not one of [\"free\",\"pro\"]"
        );
        assert_eq!(
            error(json!({"plan": "pro", "seats": 1.5})),
            "`properties.seats`: expected integer, got a non-integer number"
        );
        assert_eq!(
            error(json!({"plan": "pro", "price": 0})),
            "`properties.price`: 0 is below the minimum 0 (exclusive)"
        );
        assert_eq!(
            error(json!({"plan": "pro", "tags": ["a", 2]})),
            "`properties.tags[1]`: expected string, got an integer"
        );
        assert_eq!(
            error(json!({"plan": "pro", "address": {"zip": 1}})),
            "`properties.address.zip`: expected null or string, got an integer"
        );
        assert!(
            error(json!({"plan": "pro", "plna": 1}))
                .starts_with("`properties.plna`: property not allowed")
        );
        assert!(error(json!({"plan": "pro", "email": "nope"})).contains("not a valid `email`"));
    }

    #[test]
    fn lengths_count_code_points_not_bytes() {
        let s = Schema::parse(&json!({"type": "string", "minLength": 2, "maxLength": 2})).unwrap();
        assert!(s.accepts(&json!("éé")), "4 bytes, 2 code points");
        assert!(!s.accepts(&json!("é")));
        assert!(!s.accepts(&json!("ééé")));
        assert_eq!(
            s.validate_text("\"ééé\"", "p").unwrap_err().message,
            "is 3 characters long; 2 to 2 allowed"
        );
    }
}
