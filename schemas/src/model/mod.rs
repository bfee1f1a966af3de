//! The supported subset of JSON Schema, parsed into a tree both the validator
//! and the compatibility checker walk.
//!
//! Supported keywords (anything else is refused at registration, see
//! [`SchemaError`]):
//!
//! | keyword | notes |
//! |---|---|
//! | `type` | a name or an array of names (a union): `null`, `boolean`, `integer`, `number`, `string`, `array`, `object`; `number` includes `integer` |
//! | `enum`, `const` | `const: x` is `enum: [x]` |
//! | `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` | numbers (draft 6+ form); the draft-04 boolean form only where the root's `$schema` is draft-04 or Iglu's |
//! | `multipleOf` | above 0 |
//! | `minLength`, `maxLength` | in Unicode code points |
//! | `pattern` | compiled by a linear-time engine, size-limited ([`Pattern`]) |
//! | `format` | `date-time`, `date`, `time`, `uuid`, `email`, `ipv4`, `ipv6`, `hostname`, `uri`; enforced, not just an annotation |
//! | `properties`, `required`, `patternProperties` | nested objects to any depth |
//! | `additionalProperties` | `true`/absent (open content model), `false` (closed), or a schema |
//! | `minProperties`, `maxProperties`, `dependentRequired` | |
//! | `items` | one schema for every element (the tuple form is refused) |
//! | `minItems`, `maxItems`, `uniqueItems` | |
//! | `$defs`, `definitions`, `$ref` | local JSON Pointers, expanded at parse time; cycles refused |
//! | `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else` | at most [`MAX_BRANCHES`] branches |
//! | `default` | kept: a required property with a default is compatible with data that lacks it |
//! | `$schema`, `$id`, `$comment`, `title`, `description`, `examples`, `deprecated`, `readOnly`, `writeOnly` | annotations, ignored |
//! | `id` | draft-04 documents only: an annotation, as `$id` |
//!
//! Limits ([`MAX_PATTERN_BYTES`], [`MAX_DEPTH`], [`MAX_NODES`],
//! [`MAX_BRANCHES`]) refuse a hostile schema with `schema_too_complex`.
//!
//! Unknown keywords are refused rather than ignored: a keyword we do not
//! understand may narrow or widen the set of valid events, and any
//! compatibility verdict would then be a guess.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

mod pattern;
mod reading;
mod refs;

pub use pattern::{MAX_PATTERN_BYTES, Pattern};
pub(crate) use reading::{IGLU_META, Reading, declares_draft4, schema_uri};
use refs::reference;

/// A schema: either nothing is valid (`false`), or a [`Node`]'s constraints
/// hold (`true` and `{}` are a node without constraints).
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    Never,
    Node(Box<Node>),
}

/// The constraints of one (sub)schema. Each group applies only to instances
/// of its JSON type, as in JSON Schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub types: Types,
    pub enumeration: Option<Vec<Value>>,
    pub minimum: Option<Bound>,
    pub maximum: Option<Bound>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub format: Option<Format>,
    pub properties: BTreeMap<String, Schema>,
    pub required: BTreeSet<String>,
    /// `None` = open content model (`additionalProperties` absent or `true`).
    pub additional: Option<Schema>,
    pub items: Option<Schema>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub default: Option<Value>,
    pub pattern: Option<Pattern>,
    /// Each applies to every member whose name matches, named or not;
    /// `additional` then applies only to names no pattern matches.
    pub pattern_properties: Vec<(Pattern, Schema)>,
    pub multiple_of: Option<f64>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub unique_items: bool,
    /// `dependentRequired`: when the key is present, these must be too.
    pub dependent_required: BTreeMap<String, BTreeSet<String>>,
    /// `allOf`, plus the target of a `$ref` that has sibling keywords (a
    /// `$ref` alone is replaced by its target).
    pub all_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub not: Option<Schema>,
    /// `if`, `then`, `else` (an absent branch is `true`).
    pub condition: Option<Box<Condition>>,
}

/// `if`/`then`/`else`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub test: Schema,
    pub then: Schema,
    pub otherwise: Schema,
}

impl Node {
    /// True when the node has applicators (`allOf`, `anyOf`, `oneOf`,
    /// `not`, `if`): the one place an instance is materialised as a value
    /// during streaming validation, since several schemas must see it.
    pub fn has_applicators(&self) -> bool {
        !self.all_of.is_empty()
            || !self.any_of.is_empty()
            || !self.one_of.is_empty()
            || self.not.is_some()
            || self.condition.is_some()
    }
}

/// Deepest nesting of subschemas accepted (each `$ref` expansion counts).
pub const MAX_DEPTH: usize = 64;
/// Most subschemas in one schema, counting every `$ref` expansion: bounds
/// parse time, memory and validation cost whatever the document.
pub const MAX_NODES: usize = 10_000;
/// Most branches in one `allOf`/`anyOf`/`oneOf`: each is tried per event.
pub const MAX_BRANCHES: usize = 256;

/// What parsing carries down the tree: the document (for `$ref`), the
/// depth and node budget, and the references being expanded (a repeat is a
/// cycle).
struct Ctx<'d> {
    root: &'d Value,
    depth: usize,
    nodes: usize,
    expanding: Vec<String>,
    nested_ids: Option<bool>,
    reading: Reading,
}

/// A numeric bound; `exclusive` for `exclusiveMinimum`/`exclusiveMaximum`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub exclusive: bool,
}

/// The string formats that are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DateTime,
    Date,
    Uuid,
    Email,
    Ipv4,
    Ipv6,
    Time,
    Hostname,
    Uri,
}

impl Format {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "date-time" => Self::DateTime,
            "date" => Self::Date,
            "uuid" => Self::Uuid,
            "email" => Self::Email,
            "ipv4" => Self::Ipv4,
            "ipv6" => Self::Ipv6,
            "time" => Self::Time,
            "hostname" => Self::Hostname,
            "uri" => Self::Uri,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::DateTime => "date-time",
            Self::Date => "date",
            Self::Uuid => "uuid",
            Self::Email => "email",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Time => "time",
            Self::Hostname => "hostname",
            Self::Uri => "uri",
        }
    }
}

/// A set of JSON types. `integer` and non-integer numbers are separate bits,
/// so "number" is both and integer → number is a widening.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Types(u8);

impl Types {
    pub const NULL: Self = Self(1);
    pub const BOOLEAN: Self = Self(2);
    pub const INTEGER: Self = Self(4);
    /// Numbers with a fractional part (what `number` adds to `integer`).
    pub const FRACTION: Self = Self(8);
    pub const NUMBER: Self = Self(4 | 8);
    pub const STRING: Self = Self(16);
    pub const ARRAY: Self = Self(32);
    pub const OBJECT: Self = Self(64);
    pub const ALL: Self = Self(127);
    pub const EMPTY: Self = Self(0);

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "null" => Self::NULL,
            "boolean" => Self::BOOLEAN,
            "integer" => Self::INTEGER,
            "number" => Self::NUMBER,
            "string" => Self::STRING,
            "array" => Self::ARRAY,
            "object" => Self::OBJECT,
            _ => return None,
        })
    }

    /// The type of a JSON value (1.0 counts as an integer, as in JSON Schema).
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::NULL,
            Value::Bool(_) => Self::BOOLEAN,
            Value::Number(n) => {
                if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                    Self::INTEGER
                } else {
                    Self::FRACTION
                }
            }
            Value::String(_) => Self::STRING,
            Value::Array(_) => Self::ARRAY,
            Value::Object(_) => Self::OBJECT,
        }
    }

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    pub fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl Default for Types {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for Types {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::ALL {
            return f.write_str("any type");
        }
        if self.is_empty() {
            return f.write_str("no type");
        }
        let mut names = Vec::new();
        for (bits, name) in [
            (Self::NULL, "null"),
            (Self::BOOLEAN, "boolean"),
            (Self::STRING, "string"),
            (Self::ARRAY, "array"),
            (Self::OBJECT, "object"),
        ] {
            if self.contains(bits) {
                names.push(name);
            }
        }
        if self.contains(Self::NUMBER) {
            names.push("number");
        } else if self.contains(Self::INTEGER) {
            names.push("integer");
        } else if self.contains(Self::FRACTION) {
            names.push("non-integer number");
        }
        f.write_str(&names.join(" or "))
    }
}

impl fmt::Debug for Types {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Types({self})")
    }
}

/// Why a document is not a schema we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Stable reason: `invalid_schema`, `unsupported_keyword`, or
    /// `schema_too_complex` (a limit that protects the gateway: pattern
    /// size, nesting depth, number of subschemas).
    pub code: &'static str,
    /// JSON Pointer into the schema document, e.g. `#/properties/plan`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for SchemaError {}

/// Keywords that describe but never constrain.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

impl Schema {
    /// A schema that accepts everything.
    pub fn any() -> Self {
        Self::Node(Box::default())
    }

    /// Parses a schema document. A root `$schema` naming draft-04 selects
    /// its boolean `exclusiveMinimum`/`exclusiveMaximum` and its `id`.
    pub fn parse(document: &Value) -> Result<Self, SchemaError> {
        let reading = Reading {
            draft4: declares_draft4(document),
            annotations: &[],
        };
        Self::parse_reading(document, reading)
    }

    pub(crate) fn parse_reading(document: &Value, reading: Reading) -> Result<Self, SchemaError> {
        let mut ctx = Ctx {
            root: document,
            depth: 0,
            nodes: 0,
            expanding: Vec::new(),
            nested_ids: None,
            reading,
        };
        parse_at(document, "#", &mut ctx)
    }

    /// Parses JSON text.
    pub fn from_text(text: &str) -> Result<Self, SchemaError> {
        let document: Value = serde_json::from_str(text).map_err(|e| SchemaError {
            code: "invalid_schema",
            path: "#".to_owned(),
            message: format!("not JSON: {e}"),
        })?;
        Self::parse(&document)
    }

    pub fn node(&self) -> Option<&Node> {
        match self {
            Self::Never => None,
            Self::Node(node) => Some(node),
        }
    }

    /// True for `true` / `{}`: every instance is valid.
    pub fn is_any(&self) -> bool {
        self.node().is_some_and(|n| *n == Node::default())
    }
}

fn invalid(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        code: "invalid_schema",
        path: path.to_owned(),
        message: message.into(),
    }
}

fn too_complex(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        code: "schema_too_complex",
        path: path.to_owned(),
        message: message.into(),
    }
}

fn parse_at(document: &Value, path: &str, ctx: &mut Ctx<'_>) -> Result<Schema, SchemaError> {
    ctx.nodes += 1;
    if ctx.nodes > MAX_NODES {
        return Err(too_complex(
            path,
            format!(
                "the schema has more than {MAX_NODES} subschemas (each `$ref` expansion counts)"
            ),
        ));
    }
    if ctx.depth >= MAX_DEPTH {
        return Err(too_complex(
            path,
            format!(
                "subschemas are nested more than {MAX_DEPTH} deep (each `$ref` expansion counts)"
            ),
        ));
    }
    ctx.depth += 1;
    let parsed = parse_node(document, path, ctx);
    ctx.depth -= 1;
    parsed
}

/// `allOf`/`anyOf`/`oneOf`: a non-empty array of at most [`MAX_BRANCHES`].
fn branches(
    value: &Value,
    keyword: &str,
    here: &str,
    ctx: &mut Ctx<'_>,
) -> Result<Vec<Schema>, SchemaError> {
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        _ => {
            return Err(invalid(
                here,
                format!("`{keyword}` must be a non-empty array"),
            ));
        }
    };
    if items.len() > MAX_BRANCHES {
        return Err(too_complex(
            here,
            format!(
                "`{keyword}` has {} branches; at most {MAX_BRANCHES} are accepted (each is tried for every event)",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_at(item, &format!("{here}/{i}"), ctx))
        .collect()
}

fn parse_node(document: &Value, path: &str, ctx: &mut Ctx<'_>) -> Result<Schema, SchemaError> {
    let object = match document {
        Value::Bool(true) => return Ok(Schema::any()),
        Value::Bool(false) => return Ok(Schema::Never),
        Value::Object(object) => object,
        _ => return Err(invalid(path, "a schema must be an object or a boolean")),
    };
    let mut node = Node::default();
    let mut target = None;
    let (mut test, mut then, mut otherwise) = (None, None, None);
    // Draft-04 `exclusiveMinimum: true`: applied once `minimum` is known.
    let mut exclusive_flags = Vec::new();
    for (keyword, value) in object {
        let here = format!("{path}/{}", escape(keyword));
        match keyword.as_str() {
            // Values, numbers, strings.
            "type" => node.types = parse_types(value, &here)?,
            "enum" | "const" => enumeration(&mut node, keyword, value, &here)?,
            "exclusiveMinimum" | "exclusiveMaximum" if ctx.reading.draft4 && value.is_boolean() => {
                if value.as_bool() == Some(true) {
                    exclusive_flags.push((keyword.as_str(), here));
                }
            }
            "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum" => {
                range(&mut node, keyword, value, &here)?;
            }
            "multipleOf" => match value.as_f64() {
                Some(m) if m > 0.0 && m.is_finite() => node.multiple_of = Some(m),
                _ => return Err(invalid(&here, "`multipleOf` must be a number above 0")),
            },
            "minLength" => node.min_length = Some(count(value, &here)?),
            "maxLength" => node.max_length = Some(count(value, &here)?),
            "format" => node.format = Some(format(value, &here)?),
            "pattern" => {
                let source = value
                    .as_str()
                    .ok_or_else(|| invalid(&here, "`pattern` must be a string"))?;
                node.pattern = Some(Pattern::new(source, &here)?);
            }
            "default" => node.default = Some(value.clone()),
            // Objects.
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                subschemas(&mut node, keyword, value, &here, ctx)?;
            }
            "required" => required(&mut node, value, &here)?,
            "additionalProperties" => {
                node.additional = match parse_at(value, &here, ctx)? {
                    schema if schema.is_any() => None,
                    schema => Some(schema),
                }
            }
            "minProperties" => node.min_properties = Some(count(value, &here)?),
            "maxProperties" => node.max_properties = Some(count(value, &here)?),
            "dependentRequired" => dependent_required(&mut node, value, &here)?,
            // Arrays.
            "items" => node.items = Some(items(value, here, ctx)?),
            "minItems" => node.min_items = Some(count(value, &here)?),
            "maxItems" => node.max_items = Some(count(value, &here)?),
            "uniqueItems" => {
                node.unique_items = value
                    .as_bool()
                    .ok_or_else(|| invalid(&here, "`uniqueItems` must be a boolean"))?;
            }
            // Applicators and references.
            "$ref" => target = Some(reference(value, &here, ctx)?),
            "allOf" => node.all_of.extend(branches(value, keyword, &here, ctx)?),
            "anyOf" => node.any_of = branches(value, keyword, &here, ctx)?,
            "oneOf" => node.one_of = branches(value, keyword, &here, ctx)?,
            "not" => node.not = Some(parse_at(value, &here, ctx)?),
            "if" => test = Some(parse_at(value, &here, ctx)?),
            "then" => then = Some(parse_at(value, &here, ctx)?),
            "else" => otherwise = Some(parse_at(value, &here, ctx)?),
            k if ANNOTATIONS.contains(&k)
                || ctx.reading.annotations.contains(&k)
                || (k == "id" && ctx.reading.draft4) => {}
            other => {
                return Err(SchemaError {
                    code: "unsupported_keyword",
                    path: here,
                    message: format!(
                        "keyword `{other}` is not supported; an unknown keyword could change which events are valid, so the schema is refused rather than half-understood (see docs/schemas.md)"
                    ),
                });
            }
        }
    }
    for (keyword, here) in exclusive_flags {
        let (bound, sibling) = if keyword == "exclusiveMinimum" {
            (&mut node.minimum, "minimum")
        } else {
            (&mut node.maximum, "maximum")
        };
        match bound {
            Some(bound) => bound.exclusive = true,
            None => {
                return Err(invalid(
                    &here,
                    format!("draft-04 `{keyword}: true` needs `{sibling}` beside it"),
                ));
            }
        }
    }
    check_ranges(&node, path)?;
    // `then`/`else` without `if` do nothing, as in JSON Schema.
    if let Some(test) = test
        && (then.is_some() || otherwise.is_some())
    {
        node.condition = Some(Box::new(Condition {
            test,
            then: then.unwrap_or_else(Schema::any),
            otherwise: otherwise.unwrap_or_else(Schema::any),
        }));
    }
    if let Some(target) = target {
        // A `$ref` alone is its target: the compatibility checker and the
        // streaming validator then see plain keywords, not an applicator.
        if node == Node::default() {
            return Ok(target);
        }
        node.all_of.insert(0, target);
    }
    Ok(Schema::Node(Box::new(node)))
}

/// `enum`, or `const: x` as `enum: [x]`.
fn enumeration(
    node: &mut Node,
    keyword: &str,
    value: &Value,
    here: &str,
) -> Result<(), SchemaError> {
    let values = match value {
        _ if keyword == "const" => vec![value.clone()],
        Value::Array(values) if !values.is_empty() => values.clone(),
        _ => return Err(invalid(here, "`enum` must be a non-empty array")),
    };
    // Both present: a value must satisfy both.
    node.enumeration = Some(match node.enumeration.take() {
        None => values,
        Some(earlier) => earlier.into_iter().filter(|v| values.contains(v)).collect(),
    });
    Ok(())
}

/// `minimum` and `exclusiveMinimum` may both be present (and the same for
/// the maximum): the tighter one is the bound.
fn range(node: &mut Node, keyword: &str, value: &Value, here: &str) -> Result<(), SchemaError> {
    let b = bound(value, keyword.starts_with("exclusive"), here)?;
    if matches!(keyword, "minimum" | "exclusiveMinimum") {
        node.minimum = Some(tighter(node.minimum, b, true));
    } else {
        node.maximum = Some(tighter(node.maximum, b, false));
    }
    Ok(())
}

fn format(value: &Value, here: &str) -> Result<Format, SchemaError> {
    let name = value
        .as_str()
        .ok_or_else(|| invalid(here, "`format` must be a string"))?;
    Format::parse(name).ok_or_else(|| SchemaError {
        code: "unsupported_keyword",
        path: here.to_owned(),
        message: format!(
            "format `{name}` is not supported (date-time, date, time, uuid, email, ipv4, ipv6, hostname, uri are)"
        ),
    })
}

/// The keywords whose value maps names to subschemas: `properties`,
/// `patternProperties`, and `$defs`/`definitions`. Definitions are checked
/// here (a broken one is an error even when unused) and used only through
/// `$ref`, which parses its target.
fn subschemas(
    node: &mut Node,
    keyword: &str,
    value: &Value,
    here: &str,
    ctx: &mut Ctx<'_>,
) -> Result<(), SchemaError> {
    let members = value
        .as_object()
        .ok_or_else(|| invalid(here, format!("`{keyword}` must be an object")))?;
    for (name, schema) in members {
        let at = format!("{here}/{}", escape(name));
        match keyword {
            "properties" => {
                let sub = parse_at(schema, &at, ctx)?;
                node.properties.insert(name.clone(), sub);
            }
            "patternProperties" => {
                let pattern = Pattern::new(name, &at)?;
                node.pattern_properties
                    .push((pattern, parse_at(schema, &at, ctx)?));
            }
            _ => {
                ctx.expanding.push(at.clone());
                let parsed = parse_at(schema, &at, ctx);
                ctx.expanding.pop();
                parsed?;
            }
        }
    }
    Ok(())
}

fn required(node: &mut Node, value: &Value, here: &str) -> Result<(), SchemaError> {
    let names = value
        .as_array()
        .ok_or_else(|| invalid(here, "`required` must be an array of strings"))?;
    for name in names {
        let name = name
            .as_str()
            .ok_or_else(|| invalid(here, "`required` must be an array of strings"))?;
        node.required.insert(name.to_owned());
    }
    Ok(())
}

fn dependent_required(node: &mut Node, value: &Value, here: &str) -> Result<(), SchemaError> {
    let map = value
        .as_object()
        .ok_or_else(|| invalid(here, "`dependentRequired` must be an object"))?;
    for (key, names) in map {
        let bad = || {
            invalid(
                &format!("{here}/{}", escape(key)),
                "must be an array of strings",
            )
        };
        let names = names.as_array().ok_or_else(bad)?;
        let mut set = BTreeSet::new();
        for name in names {
            set.insert(name.as_str().ok_or_else(bad)?.to_owned());
        }
        if !set.is_empty() {
            node.dependent_required.insert(key.clone(), set);
        }
    }
    Ok(())
}

/// `items`: one schema for every element (the tuple form is refused).
fn items(value: &Value, here: String, ctx: &mut Ctx<'_>) -> Result<Schema, SchemaError> {
    if value.is_array() {
        return Err(SchemaError {
            code: "unsupported_keyword",
            path: here,
            message: "the tuple form of `items` (an array) is not supported; give one schema for every element".to_owned(),
        });
    }
    parse_at(value, &here, ctx)
}

fn check_ranges(node: &Node, path: &str) -> Result<(), SchemaError> {
    if let (Some(min), Some(max)) = (node.min_length, node.max_length)
        && min > max
    {
        return Err(invalid(path, "`minLength` is greater than `maxLength`"));
    }
    if let (Some(min), Some(max)) = (node.min_items, node.max_items)
        && min > max
    {
        return Err(invalid(path, "`minItems` is greater than `maxItems`"));
    }
    if let (Some(min), Some(max)) = (node.min_properties, node.max_properties)
        && min > max
    {
        return Err(invalid(
            path,
            "`minProperties` is greater than `maxProperties`",
        ));
    }
    if let (Some(min), Some(max)) = (node.minimum, node.maximum)
        && min.value > max.value
    {
        return Err(invalid(path, "the minimum is greater than the maximum"));
    }
    Ok(())
}

fn parse_types(value: &Value, path: &str) -> Result<Types, SchemaError> {
    let one = |v: &Value| {
        v.as_str().and_then(Types::from_name).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "unknown type {v}: use null, boolean, integer, number, string, array or object"
                ),
            )
        })
    };
    match value {
        Value::Array(names) if !names.is_empty() => names
            .iter()
            .try_fold(Types::EMPTY, |acc, v| Ok(acc.union(one(v)?))),
        Value::Array(_) => Err(invalid(path, "`type` must not be an empty array")),
        other => one(other),
    }
}

fn bound(value: &Value, exclusive: bool, path: &str) -> Result<Bound, SchemaError> {
    match value.as_f64() {
        Some(value) if value.is_finite() => Ok(Bound { value, exclusive }),
        _ if value.is_boolean() => Err(invalid(
            path,
            "the draft-04 boolean form needs `\"$schema\": \"http://json-schema.org/draft-04/schema#\"` at the root; otherwise give the bound as a number",
        )),
        _ => Err(invalid(path, "must be a number")),
    }
}

/// Of two lower (or upper) bounds, the one fewer numbers satisfy.
fn tighter(current: Option<Bound>, new: Bound, lower: bool) -> Bound {
    let Some(current) = current else { return new };
    let new_wins = if lower {
        new.value > current.value
    } else {
        new.value < current.value
    };
    if new_wins || (new.value == current.value && new.exclusive) {
        new
    } else {
        current
    }
}

/// A count; `2.0` is the integer 2, as everywhere in JSON Schema.
fn count(value: &Value, path: &str) -> Result<u64, SchemaError> {
    value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e18)
                .map(|f| f as u64)
        })
        .ok_or_else(|| invalid(path, "must be a non-negative integer"))
}

/// JSON Pointer escaping (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn unions_and_number_include_integer() {
        let schema = Schema::parse(&json!({"type": ["number", "null"]})).unwrap();
        let node = schema.node().unwrap();
        assert!(node.types.contains(Types::INTEGER));
        assert!(node.types.contains(Types::NULL));
        assert!(!node.types.contains(Types::STRING));
        assert_eq!(node.types.to_string(), "null or number");
    }

    #[test]
    fn unknown_keywords_are_refused_with_their_path() {
        let err = Schema::parse(&json!({"properties": {"a": {"contains": {}}}})).unwrap_err();
        assert_eq!(err.code, "unsupported_keyword");
        assert_eq!(err.path, "#/properties/a/contains");
        let err = Schema::parse(&json!({"type": "strng"})).unwrap_err();
        assert_eq!(err.code, "invalid_schema");
    }

    #[test]
    fn the_tighter_of_two_bounds_applies() {
        let schema = Schema::parse(
            &json!({"minimum": 0, "exclusiveMinimum": 5, "maximum": 10, "exclusiveMaximum": 10}),
        )
        .unwrap();
        let node = schema.node().unwrap();
        assert_eq!(
            node.minimum,
            Some(Bound {
                value: 5.0,
                exclusive: true
            })
        );
        assert_eq!(
            node.maximum,
            Some(Bound {
                value: 10.0,
                exclusive: true
            })
        );
        assert!(!schema.accepts(&json!(5)));
        assert!(schema.accepts(&json!(6)));
        assert!(!schema.accepts(&json!(10)));
    }

    #[test]
    fn open_is_none_and_closed_is_never() {
        let open = Schema::parse(&json!({"additionalProperties": true})).unwrap();
        assert!(open.is_any());
        let closed = Schema::parse(&json!({"additionalProperties": false})).unwrap();
        assert_eq!(closed.node().unwrap().additional, Some(Schema::Never));
    }
}
