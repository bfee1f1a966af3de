//! Validating one instance (an event's `properties`) against a parsed schema.
//!
//! The walk stops at the first violation: the gateway needs one reason per
//! rejected event, and stopping early keeps the cost of a bad event no higher
//! than a good one's. The failing path is built only on failure, while the
//! recursion unwinds, so a valid event allocates nothing here.

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

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

struct Failure<'a> {
    /// Innermost segment first.
    segments: Vec<Segment<'a>>,
    message: String,
}

impl<'a> Failure<'a> {
    fn new(message: String) -> Self {
        Self {
            segments: Vec::new(),
            message,
        }
    }

    fn at(mut self, segment: Segment<'a>) -> Self {
        self.segments.push(segment);
        self
    }
}

impl Schema {
    /// Checks `instance`; `root` names it in the violation's path (the
    /// gateway passes `properties`).
    pub fn validate(&self, instance: &Value, root: &str) -> Result<(), Violation> {
        check(self, instance).map_err(|failure| {
            let mut path = root.to_owned();
            for segment in failure.segments.iter().rev() {
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
                message: failure.message,
            }
        })
    }

    /// True if `instance` is valid.
    pub fn accepts(&self, instance: &Value) -> bool {
        check(self, instance).is_ok()
    }
}

fn check<'a>(schema: &Schema, value: &'a Value) -> Result<(), Failure<'a>> {
    match schema {
        Schema::Never => Err(Failure::new("no value is allowed here".to_owned())),
        Schema::Node(node) => check_node(node, value),
    }
}

fn check_node<'a>(node: &Node, value: &'a Value) -> Result<(), Failure<'a>> {
    let kind = Types::of(value);
    if !node.types.contains(kind) {
        // An integer where only non-integers are listed cannot happen
        // (`number` includes integers), so naming the JSON type is enough.
        let got = match value {
            Value::Number(_) if kind == Types::FRACTION => "a non-integer number".to_owned(),
            Value::Number(_) => "an integer".to_owned(),
            Value::Null => "null".to_owned(),
            Value::Bool(_) => "a boolean".to_owned(),
            Value::String(_) => "a string".to_owned(),
            Value::Array(_) => "an array".to_owned(),
            Value::Object(_) => "an object".to_owned(),
        };
        return Err(Failure::new(format!("expected {}, got {got}", node.types)));
    }
    if let Some(allowed) = &node.enumeration
        && !allowed.iter().any(|a| same(a, value))
    {
        return Err(Failure::new(format!(
            "{} is not one of {}",
            short(value),
            Value::Array(allowed.clone())
        )));
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
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
        }
        Value::String(s) => check_string(node, s)?,
        Value::Array(elements) => {
            let len = elements.len() as u64;
            if node.min_items.is_some_and(|min| len < min)
                || node.max_items.is_some_and(|max| len > max)
            {
                return Err(Failure::new(format!(
                    "has {len} items; {} allowed",
                    range(node.min_items, node.max_items)
                )));
            }
            if let Some(items) = &node.items {
                for (i, element) in elements.iter().enumerate() {
                    check(items, element).map_err(|f| f.at(Segment::Index(i)))?;
                }
            }
        }
        Value::Object(map) => {
            for name in &node.required {
                if !map.contains_key(name) {
                    return Err(Failure::new(format!(
                        "required property `{name}` is missing"
                    )));
                }
            }
            for (key, element) in map {
                match node.properties.get(key) {
                    Some(schema) => check(schema, element),
                    None => match &node.additional {
                        None => Ok(()),
                        Some(Schema::Never) => Err(Failure::new(
                            "property not allowed: the schema is closed (additionalProperties: false) and does not name it".to_owned(),
                        )),
                        Some(schema) => check(schema, element),
                    },
                }
                .map_err(|f| f.at(Segment::Key(key)))?;
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
}

fn check_string<'a>(node: &Node, s: &str) -> Result<(), Failure<'a>> {
    if node.min_length.is_some() || node.max_length.is_some() {
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
}
