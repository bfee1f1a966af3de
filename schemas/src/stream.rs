//! Validation while parsing: the schema drives a serde visitor over the JSON
//! text, so a valid event costs one pass over its bytes and no JSON tree
//! (building a `Value` for 20 properties costs several times the rest of the
//! gateway's per-event work; see docs/benchmarks.md).
//!
//! Members the schema does not constrain are skipped with `IgnoredAny`.
//! Scalars are compared with an `enum` in place. A `Value` is built only
//! for the part of the event where one schema cannot decide alone: an array
//! or object under an `enum` (to compare it, or to quote it in the message)
//! or `uniqueItems` (to compare elements), an instance under an applicator
//! (`allOf`, `anyOf`, `oneOf`, `not`, `if`: several schemas must see it),
//! and a member matched by more than one of `properties` and
//! `patternProperties`. Object keys are borrowed from the text unless they
//! contain escapes.
//!
//! serde's error type cannot carry our path, so a violation is recorded in
//! the walk's context and the parse is aborted with a placeholder error;
//! each enclosing member or element adds its segment on the way out. A parse
//! error without a recorded violation is malformed JSON.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::model::{Node, Schema, Types};
use crate::validate::{
    self, Failure, Segment, check, check_dependent, check_item_count, check_number,
    check_property_count, check_string, check_type, member_schemas, missing_required, never,
    not_allowed,
};

impl Schema {
    /// Checks JSON text (an event's raw `properties`) while parsing it: the
    /// gateway's per-event call. Same rules and messages as
    /// [`Schema::validate`]; when an instance breaks several rules, the one
    /// reported may differ (this walk meets object members in text order and
    /// checks `required` and item counts after the members). It lives here,
    /// not in [`crate::validate`], so imports run one way: stream uses the
    /// rules of validate, never the reverse.
    pub fn validate_text(&self, text: &str, root: &str) -> Result<(), validate::Violation> {
        validate(self, text).map_err(|failure| failure.into_violation(root))
    }
}

/// Where the first violation is kept while serde unwinds.
#[derive(Default)]
struct Walk {
    failure: RefCell<Option<Failure>>,
}

impl Walk {
    fn fail<E: de::Error>(&self, failure: Failure) -> E {
        *self.failure.borrow_mut() = Some(failure);
        E::custom("schema violation")
    }

    /// Adds a path segment to the recorded violation, if this error is one.
    fn wrap<E: de::Error>(&self, err: E, segment: impl FnOnce() -> Segment) -> E {
        let mut slot = self.failure.borrow_mut();
        if let Some(failure) = slot.take() {
            *slot = Some(failure.at(segment()));
        }
        err
    }
}

pub(crate) fn validate(schema: &Schema, text: &str) -> Result<(), Failure> {
    let walk = Walk::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Seed {
        schema,
        walk: &walk,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (parsed, walk.failure.into_inner()) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(failure)) => Err(failure),
        (Err(err), None) => Err(Failure::new(format!("not JSON: {err}"))),
    }
}

#[derive(Clone, Copy)]
struct Seed<'s> {
    schema: &'s Schema,
    walk: &'s Walk,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let node = match self.schema {
            Schema::Never => return Err(self.walk.fail(never())),
            Schema::Node(node) => node,
        };
        if node.has_applicators() {
            // Several schemas judge this one instance: it is parsed into a
            // value once (only here; scalars cost next to nothing).
            let value = Value::deserialize(deserializer)?;
            return validate::check_node(node, &value).map_err(|f| self.walk.fail(f));
        }
        deserializer.deserialize_any(NodeVisitor {
            node,
            walk: self.walk,
        })
    }
}

struct NodeVisitor<'s> {
    node: &'s Node,
    walk: &'s Walk,
}

impl NodeVisitor<'_> {
    fn check<E: de::Error>(&self, result: Result<(), Failure>) -> Result<(), E> {
        result.map_err(|f| self.walk.fail(f))
    }

    /// A scalar: its type, then the `enum` (compared in place; a `Value`
    /// is built only to quote a mismatch), then `rest`.
    fn scalar<E: de::Error>(
        &self,
        kind: Types,
        matches: impl Fn(&Value) -> bool,
        value: impl FnOnce() -> Value,
        rest: impl FnOnce() -> Result<(), Failure>,
    ) -> Result<(), E> {
        self.check(check_type(self.node, kind))?;
        if let Some(allowed) = &self.node.enumeration
            && !allowed.iter().any(matches)
        {
            return self.check(validate::check_enum(self.node, &value()));
        }
        self.check(rest())
    }

    fn number<E: de::Error>(
        &self,
        kind: Types,
        x: f64,
        value: impl FnOnce() -> Value,
    ) -> Result<(), E> {
        self.scalar(
            kind,
            |a| a.as_f64() == Some(x),
            value,
            || check_number(self.node, x),
        )
    }

    /// A container where an `enum` applies: parsed into a `Value` and
    /// checked as a whole.
    fn whole<'de, D: Deserializer<'de>>(&self, deserializer: D) -> Result<(), D::Error> {
        let value = Value::deserialize(deserializer)?;
        self.check(validate::check_node(self.node, &value))
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(Types::NULL, Value::is_null, || Value::Null, || Ok(()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(
            Types::BOOLEAN,
            |a| a.as_bool() == Some(v),
            || Value::Bool(v),
            || Ok(()),
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(Types::INTEGER, v as f64, || Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(Types::INTEGER, v as f64, || Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // 2.0 is an integer in JSON Schema.
        let kind = if v.fract() == 0.0 {
            Types::INTEGER
        } else {
            Types::FRACTION
        };
        self.number(kind, v, || Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(
            Types::STRING,
            |a| a.as_str() == Some(v),
            || Value::from(v),
            || check_string(self.node, v),
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Comparing elements needs them as values: only arrays under
        // `uniqueItems: true` pay for it.
        if self.node.enumeration.is_some() || self.node.unique_items {
            return self.whole(de::value::SeqAccessDeserializer::new(seq));
        }
        self.check(check_type(self.node, Types::ARRAY))?;
        let mut len = 0usize;
        match &self.node.items {
            Some(items) => {
                let seed = Seed {
                    schema: items,
                    walk: self.walk,
                };
                while seq
                    .next_element_seed(seed)
                    .map_err(|e| self.walk.wrap(e, || Segment::Index(len)))?
                    .is_some()
                {
                    len += 1;
                }
            }
            None => {
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    len += 1;
                }
            }
        }
        self.check(check_item_count(self.node, len))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let node = self.node;
        if node.enumeration.is_some() {
            return self.whole(de::value::MapAccessDeserializer::new(map));
        }
        self.check(check_type(node, Types::OBJECT))?;
        // Which required names were seen: a bit each, for the first 64.
        let mut seen: u64 = 0;
        let mut seen_more = Vec::new();
        let mut count = 0usize;
        // Names present, kept only when `dependentRequired` needs them.
        let mut names: Vec<String> = Vec::new();
        let mut schemas: Vec<&Schema> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            count += 1;
            if !node.required.is_empty()
                && let Some(i) = node.required.iter().position(|r| *r == *key)
            {
                if i < 64 {
                    seen |= 1 << i;
                } else {
                    seen_more.push(i);
                }
            }
            if !node.dependent_required.is_empty() {
                names.push(key.clone().into_owned());
            }
            let result = if node.pattern_properties.is_empty() {
                // The common case, without a list of schemas.
                let schema = match node.properties.get(&*key) {
                    Some(schema) => Some(schema),
                    None => match &node.additional {
                        None => None,
                        Some(Schema::Never) => {
                            return Err(self
                                .walk
                                .fail(not_allowed().at(Segment::Key(key.into_owned()))));
                        }
                        Some(schema) => Some(schema),
                    },
                };
                match schema {
                    Some(schema) => map.next_value_seed(Seed {
                        schema,
                        walk: self.walk,
                    }),
                    None => map.next_value::<IgnoredAny>().map(|_| ()),
                }
            } else {
                schemas.clear();
                if let Err(f) = member_schemas(node, &key, &mut schemas) {
                    return Err(self.walk.fail(f.at(Segment::Key(key.into_owned()))));
                }
                match schemas.as_slice() {
                    [] => map.next_value::<IgnoredAny>().map(|_| ()),
                    [schema] => map.next_value_seed(Seed {
                        schema,
                        walk: self.walk,
                    }),
                    // Several schemas apply to one member: it is parsed
                    // once into a value and each checks it.
                    several => {
                        let value: Value = map.next_value()?;
                        match several.iter().try_for_each(|s| check(s, &value)) {
                            Ok(()) => Ok(()),
                            Err(f) => Err(self.walk.fail(f)),
                        }
                    }
                }
            };
            result.map_err(|e| self.walk.wrap(e, || Segment::Key(key.into_owned())))?;
        }
        for (i, name) in node.required.iter().enumerate() {
            let present = if i < 64 {
                seen & (1 << i) != 0
            } else {
                seen_more.contains(&i)
            };
            if !present {
                return Err(self.walk.fail(missing_required(name)));
            }
        }
        self.check(check_property_count(node, count))?;
        self.check(check_dependent(node, |k| names.iter().any(|n| n == k)))
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// Both walks agree on every instance that breaks at most one rule.
    #[test]
    fn the_streaming_walk_agrees_with_the_tree_walk() {
        let schema = Schema::parse(&json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["plan"],
            "properties": {
                "plan": {"enum": ["free", "pro"]},
                "level": {"enum": [1, 2.5, null, true, {"a": 1}]},
                "seats": {"type": "integer", "minimum": 1},
                "price": {"type": ["number", "null"], "exclusiveMaximum": 100},
                "email": {"type": "string", "format": "email", "maxLength": 12},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "any": {},
                "never": false,
                "address": {"type": "object", "properties": {"zip": {"type": "string"}},
                            "additionalProperties": {"type": "integer"}}
            }
        }))
        .unwrap();
        let instances = [
            json!({"plan": "pro"}),
            json!({"plan": "pro", "seats": 2, "price": null, "email": "a@b.io", "tags": ["x"],
                   "any": {"deep": [1, {"x": null}]}, "address": {"zip": "1", "n": 3}}),
            json!({"seats": 1}),
            json!({"plan": "gold"}),
            json!({"plan": 1}),
            json!({"plan": "pro", "level": 1}),
            json!({"plan": "pro", "level": 1.0}),
            json!({"plan": "pro", "level": 2.5}),
            json!({"plan": "pro", "level": 3}),
            json!({"plan": "pro", "level": null}),
            json!({"plan": "pro", "level": true}),
            json!({"plan": "pro", "level": false}),
            json!({"plan": "pro", "level": {"a": 1}}),
            json!({"plan": "pro", "level": {"a": 2}}),
            json!({"plan": "pro", "level": [1]}),
            json!({"plan": "pro", "seats": 1.5}),
            json!({"plan": "pro", "seats": 2.0}),
            json!({"plan": "pro", "seats": 0}),
            json!({"plan": "pro", "price": 100}),
            json!({"plan": "pro", "price": "x"}),
            json!({"plan": "pro", "email": "not-an-email"}),
            json!({"plan": "pro", "email": "averylongname@b.io"}),
            json!({"plan": "pro", "tags": ["a", 2]}),
            json!({"plan": "pro", "tags": ["a", "b", "c"]}),
            json!({"plan": "pro", "never": 1}),
            json!({"plan": "pro", "extra": 1}),
            json!({"plan": "pro", "address": {"zip": 1}}),
            json!({"plan": "pro", "address": {"other": "x"}}),
            json!({"plan": "pro", "address": []}),
            json!([1]),
        ];
        for instance in instances {
            let tree = schema.validate(&instance, "properties");
            let text = schema.validate_text(&instance.to_string(), "properties");
            assert_eq!(tree, text, "{instance}");
        }
        // Escaped keys are still found.
        assert!(schema.validate_text(r#"{"pl\u0061n": "pro"}"#, "p").is_ok());
        let err = schema
            .validate_text("{\"plan\": ", "properties")
            .unwrap_err();
        assert!(err.message.starts_with("not JSON"), "{err}");
    }

    /// The same for the keywords of issue 24, where the streaming walk
    /// takes other routes (several schemas for a member, applicators,
    /// `uniqueItems`).
    #[test]
    fn both_walks_agree_on_the_newer_keywords() {
        let schema = Schema::parse(&json!({
            "$defs": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "type": "object",
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 4,
            "dependentRequired": {"card": ["zip"]},
            "properties": {
                "zip": {"$ref": "#/$defs/zip"},
                "card": {"type": "string"},
                "x_n": {"minimum": 5},
                "tags": {"type": "array", "uniqueItems": true},
                "price": {"anyOf": [{"type": "number", "multipleOf": 0.01}, {"type": "string", "pattern": "^[0-9]+$"}]},
                "kind": {"oneOf": [{"const": "a"}, {"type": "string", "maxLength": 1}]},
                "when": {"if": {"type": "string"}, "then": {"format": "date"}, "else": {"type": "null"}},
                "box": {"not": {"type": "object", "required": ["bad"]}}
            },
            "patternProperties": {"^x_": {"type": "integer"}}
        }))
        .unwrap();
        let instances = [
            json!({"zip": "75001"}),
            json!({"zip": "7500"}),
            json!({}),
            json!({"zip": "75001", "a": 1}),
            json!({"card": "visa"}),
            json!({"card": "visa", "zip": "75001"}),
            json!({"x_n": 6}),
            json!({"x_n": 6.5}),
            json!({"x_n": 4}),
            json!({"x_other": "s"}),
            json!({"tags": [1, 2]}),
            json!({"tags": [1, 1.0]}),
            json!({"tags": [{"a": [1]}, {"a": [1.0]}]}),
            json!({"price": 9.99}),
            json!({"price": "12"}),
            json!({"price": "1.5"}),
            json!({"price": 9.995}),
            json!({"kind": "a"}),
            json!({"kind": "b"}),
            json!({"kind": "bb"}),
            json!({"when": "2026-12-07"}),
            json!({"when": "yesterday"}),
            json!({"when": null}),
            json!({"when": 1}),
            json!({"box": {"ok": 1}}),
            json!({"box": {"bad": 1}}),
            json!({"x_a": 1, "x_b": 2, "x_c": 3, "x_d": 4, "x_e": 5}),
        ];
        for instance in instances {
            let tree = schema.validate(&instance, "properties");
            let text = schema.validate_text(&instance.to_string(), "properties");
            assert_eq!(tree, text, "{instance}");
        }
    }
}
