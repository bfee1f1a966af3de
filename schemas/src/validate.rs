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

use crate::model::{Bound, Format, Node, Schema, Types};

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
        }
        Value::Object(map) => {
            if let Some(name) = node.required.iter().find(|n| !map.contains_key(*n)) {
                return Err(missing_required(name));
            }
            for (key, element) in map {
                match node.properties.get(key) {
                    Some(schema) => check(schema, element),
                    None => match &node.additional {
                        None => Ok(()),
                        Some(Schema::Never) => Err(not_allowed()),
                        Some(schema) => check(schema, element),
                    },
                }
                .map_err(|f| f.at(Segment::Key(key.clone())))?;
            }
        }
        Value::Null | Value::Bool(_) => {}
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
    if let Some(format) = node.format
        && !format_ok(format, s)
    {
        return Err(Failure::new(format!(
            "{} is not a valid `{}`",
            short(&Value::String(s.to_owned())),
            format.name()
        )));
    }
    Ok(())
}

fn format_ok(format: Format, s: &str) -> bool {
    match format {
        Format::DateTime => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        Format::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10,
        Format::Uuid => s.len() == 36 && uuid::Uuid::try_parse(s).is_ok(),
        Format::Email => s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }),
        Format::Ipv4 => s.parse::<std::net::Ipv4Addr>().is_ok(),
        Format::Ipv6 => s.parse::<std::net::Ipv6Addr>().is_ok(),
    }
}

/// JSON equality where 1 and 1.0 are the same number (as JSON Schema says).
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
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
