//! Schemas as other tools publish them, registered without edits: a
//! Snowplow Iglu self-describing schema, and the JSON Schema of a Segment
//! Protocols tracking-plan event. Each becomes the [`Schema`] of an event's
//! `properties`, which is all the registry checks (`docs/schemas.md`,
//! "Importing Iglu and Segment schemas").
//!
//! 1. The dialect is read from the document ([`Dialect::detect`]) when it is
//!    registered, and stored with it: a stored version is always read the
//!    way it was read at registration, whatever later detection rules say.
//! 2. **Iglu**: the `self` block names the schema (`vendor`, `name`,
//!    `format`, a SchemaVer `version`); the rest of the document describes
//!    the event's data, which in Sluice is its `properties`. The subject is
//!    `vendor/name`, as in the Iglu URI without format and version; the
//!    registry's integer versions keep counting, and the SchemaVer must be
//!    the next one ([`SchemaVer::bump_to`]), so the two orders agree. The
//!    gateway enforces both (it owns the subject and the history).
//! 3. **Segment**: the schema describes the whole message; its
//!    `properties.properties` section is what becomes the event's
//!    `properties` (`properties.traits` for `$identify` and `$group`, whose
//!    traits the Segment routes turn into `properties`). Sections and root
//!    keywords Sluice could not enforce must be unconstrained, else the
//!    schema is refused rather than half-applied. The flattened form (the
//!    root is the event's properties, beside an `eventMetadata` block) is
//!    read whole.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{
    IGLU_META, Node, Reading, Schema, SchemaError, Types, declares_draft4, escape, schema_uri,
};

/// How a registered document is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// A JSON Schema of the event's `properties`.
    #[default]
    JsonSchema,
    /// An Iglu self-describing schema (a `self` block).
    Iglu,
    /// A Segment Protocols tracking-plan event's JSON Schema.
    Segment,
}

/// The sections of a Segment message schema's root `properties`.
const SEGMENT_SECTIONS: &[&str] = &["properties", "context", "traits"];

/// What Segment's exports write beside JSON Schema keywords: `id` (a
/// pointer-like path on every subschema), `key` (a property's name),
/// `labels` and `eventMetadata` (the event's tags, name and call type).
const SEGMENT_ANNOTATIONS: &[&str] = &["id", "key", "labels", "eventMetadata"];

impl Dialect {
    /// Iglu: a root `self` member, or Iglu's meta-schema as `$schema`.
    /// Segment: a draft-04/06/07 `$schema`, and a root `properties` made of
    /// Segment's sections only (`properties` or `traits`, and optionally
    /// `context`) or a root `eventMetadata` object (the flattened form).
    /// Anything else is plain JSON Schema. The `$schema` test
    /// keeps a plain schema whose event has a property named `traits` from
    /// being read as Segment's; such a schema with a draft-07 `$schema` is
    /// read as Segment's (documented).
    pub fn detect(document: &Value) -> Self {
        let Some(root) = document.as_object() else {
            return Self::JsonSchema;
        };
        let uri = schema_uri(document);
        if root.contains_key("self") || uri == IGLU_META {
            return Self::Iglu;
        }
        let old_draft = ["04", "06", "07"]
            .iter()
            .any(|d| uri == format!("json-schema.org/draft-{d}/schema"));
        let metadata = root.get("eventMetadata").is_some_and(Value::is_object);
        if old_draft && (is_message_schema(document) || metadata) {
            return Self::Segment;
        }
        Self::JsonSchema
    }

    /// The name the API shows (`format`).
    pub fn name(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::Iglu => "iglu",
            Self::Segment => "segment",
        }
    }
}

/// Whether a Segment schema describes the whole message: its root
/// `properties` are Segment's sections (`properties` or `traits`, and
/// optionally `context`), not the event's properties.
fn is_message_schema(document: &Value) -> bool {
    document
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|sections| {
            (sections.contains_key("properties") || sections.contains_key("traits"))
                && sections
                    .keys()
                    .all(|k| SEGMENT_SECTIONS.contains(&k.as_str()))
        })
}

/// An Iglu SchemaVer, `MODEL-REVISION-ADDITION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaVer {
    pub model: u32,
    pub revision: u32,
    pub addition: u32,
}

/// Which part of a SchemaVer a new version bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    /// Breaks every earlier version's data.
    Model,
    /// May break some earlier data.
    Revision,
    /// Accepts all earlier data of the same MODEL-REVISION.
    Addition,
}

impl SchemaVer {
    pub const FIRST: Self = Self {
        model: 1,
        revision: 0,
        addition: 0,
    };

    /// `1-0-2`; numbers without leading zeros, MODEL from 1.
    pub fn parse(text: &str) -> Option<Self> {
        let number = |part: &str| {
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            canonical.then(|| part.parse::<u32>().ok()).flatten()
        };
        let mut parts = text.split('-');
        let version = Self {
            model: number(parts.next()?)?,
            revision: number(parts.next()?)?,
            addition: number(parts.next()?)?,
        };
        (parts.next().is_none() && version.model >= 1).then_some(version)
    }

    /// The bump from `self` to `next`, if `next` is one of the three
    /// versions that may follow `self` (`1-0-1` → `1-0-2`, `1-1-0`, `2-0-0`).
    pub fn bump_to(self, next: Self) -> Option<Bump> {
        let (m, r, a) = (self.model, self.revision, self.addition);
        let same = |model, revision, addition| {
            next == Self {
                model,
                revision,
                addition,
            }
        };
        if same(m, r, a.checked_add(1)?) {
            Some(Bump::Addition)
        } else if same(m, r.checked_add(1)?, 0) {
            Some(Bump::Revision)
        } else if same(m.checked_add(1)?, 0, 0) {
            Some(Bump::Model)
        } else {
            None
        }
    }

    /// The three versions that may follow, for messages.
    pub fn successors(self) -> String {
        let (m, r, a) = (self.model, self.revision, self.addition);
        format!(
            "{m}-{r}-{}, {m}-{}-0 or {}-0-0",
            a.saturating_add(1),
            r.saturating_add(1),
            m.saturating_add(1)
        )
    }
}

impl fmt::Display for SchemaVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.model, self.revision, self.addition)
    }
}

/// An Iglu schema's `self` block (its format is always `jsonschema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgluKey {
    pub vendor: String,
    pub name: String,
    pub version: SchemaVer,
}

impl IgluKey {
    /// The registry subject (the event name): `vendor/name`.
    pub fn subject(&self) -> String {
        format!("{}/{}", self.vendor, self.name)
    }

    /// `iglu:vendor/name/jsonschema/1-0-0`.
    pub fn uri(&self) -> String {
        format!(
            "iglu:{}/{}/jsonschema/{}",
            self.vendor, self.name, self.version
        )
    }
}

/// What a registered document was, and which part of it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    JsonSchema,
    Iglu(IgluKey),
    /// `section`: `properties`, or `traits` for `$identify` and `$group`;
    /// `None` for the flattened form, whose root is the event's properties.
    Segment {
        section: Option<&'static str>,
    },
}

impl Origin {
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::JsonSchema => Dialect::JsonSchema,
            Self::Iglu(_) => Dialect::Iglu,
            Self::Segment { .. } => Dialect::Segment,
        }
    }

    /// JSON Pointer to the part of the document that events' `properties`
    /// are checked against.
    pub fn checked(&self) -> String {
        match self {
            Self::Segment {
                section: Some(section),
            } => format!("#/properties/{section}"),
            Self::JsonSchema | Self::Iglu(_) | Self::Segment { section: None } => "#".to_owned(),
        }
    }
}

/// A registered document, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub origin: Origin,
    /// The schema of an event's `properties`.
    pub schema: Schema,
}

/// Reads `document`, registered under `subject`, as `dialect`.
pub fn import(dialect: Dialect, document: &Value, subject: &str) -> Result<Imported, SchemaError> {
    match dialect {
        Dialect::JsonSchema => Ok(Imported {
            origin: Origin::JsonSchema,
            schema: Schema::parse(document)?,
        }),
        Dialect::Iglu => iglu(document),
        Dialect::Segment => segment(document, subject),
    }
}

fn invalid(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        code: "invalid_schema",
        path: path.to_owned(),
        message: message.into(),
    }
}

fn unsupported(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        code: "unsupported_keyword",
        path: path.to_owned(),
        message: message.into(),
    }
}

fn iglu(document: &Value) -> Result<Imported, SchemaError> {
    let root = document
        .as_object()
        .ok_or_else(|| invalid("#", "an Iglu schema is a JSON object"))?;
    let block = root
        .get("self")
        .ok_or_else(|| {
            invalid(
                "#/self",
                "an Iglu self-describing schema needs a `self` block (vendor, name, format, version)",
            )
        })?
        .as_object()
        .ok_or_else(|| invalid("#/self", "`self` must be an object"))?;
    if let Some(extra) = block
        .keys()
        .find(|k| !["vendor", "name", "format", "version"].contains(&k.as_str()))
    {
        return Err(invalid(
            &format!("#/self/{}", escape(extra)),
            format!("`self` holds only vendor, name, format and version, not `{extra}`"),
        ));
    }
    let field = |name: &str, allowed: fn(char) -> bool| {
        let here = format!("#/self/{name}");
        let text = block
            .get(name)
            .ok_or_else(|| invalid(&here, format!("`self.{name}` is missing")))?
            .as_str()
            .ok_or_else(|| invalid(&here, format!("`self.{name}` must be a string")))?;
        if text.is_empty() || !text.chars().all(allowed) {
            return Err(invalid(
                &here,
                format!("`self.{name}` {text:?} has characters Iglu does not allow"),
            ));
        }
        Ok(text.to_owned())
    };
    let vendor = field("vendor", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
    })?;
    let name = field("name", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
    })?;
    let format = field("format", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
    })?;
    if format != "jsonschema" {
        return Err(unsupported(
            "#/self/format",
            format!(
                "Iglu format `{format}` is not supported: only `jsonschema` schemas can be registered"
            ),
        ));
    }
    let text = field("version", |c| c.is_ascii_digit() || c == '-')?;
    let version = SchemaVer::parse(&text).ok_or_else(|| {
        invalid(
            "#/self/version",
            format!(
                "`self.version` {text:?} is not a SchemaVer (MODEL-REVISION-ADDITION, e.g. 1-0-0)"
            ),
        )
    })?;
    // The rest is the data's schema. `self` is the document's name, not a
    // constraint: parse without it, at the same paths.
    let mut body = document.clone();
    if let Value::Object(map) = &mut body {
        map.remove("self");
    }
    let reading = Reading {
        draft4: declares_draft4(document),
        annotations: &[],
    };
    Ok(Imported {
        origin: Origin::Iglu(IgluKey {
            vendor,
            name,
            version,
        }),
        schema: Schema::parse_reading(&body, reading)?,
    })
}

fn segment(document: &Value, subject: &str) -> Result<Imported, SchemaError> {
    // The Segment routes turn identify and group traits into `properties`.
    let section = if matches!(subject, "$identify" | "$group") {
        "traits"
    } else {
        "properties"
    };
    let reading = Reading {
        draft4: declares_draft4(document),
        annotations: SEGMENT_ANNOTATIONS,
    };
    // The whole document is parsed, so every keyword anywhere in it is
    // checked and `$ref`s resolve against its root.
    let root = Schema::parse_reading(document, reading)?;
    if !is_message_schema(document) {
        return Ok(Imported {
            origin: Origin::Segment { section: None },
            schema: root,
        });
    }
    let node = root
        .node()
        .ok_or_else(|| invalid("#", "a Segment event schema is an object"))?;
    if !node.types.contains(Types::OBJECT) {
        return Err(invalid(
            "#/type",
            "a Segment event schema describes a message, an object",
        ));
    }
    let mut rest: Node = node.clone();
    rest.types = Types::ALL;
    rest.properties.clear();
    rest.required.clear();
    if rest != Node::default() {
        return Err(unsupported(
            "#",
            "only `type`, `properties` (its `properties`, `context` and `traits` sections) and `required` may constrain the root of a Segment event schema: other root constraints apply to the whole Segment message, which Sluice does not keep as such",
        ));
    }
    for (name, sub) in &node.properties {
        if name != section && !accepts_any_object(sub) {
            return Err(unsupported(
                &format!("#/properties/{}", escape(name)),
                format!(
                    "Sluice checks only the `{section}` section of this Segment schema (it becomes the event's `properties`); constraints on `{name}` would not be enforced, so the schema is refused rather than half-applied"
                ),
            ));
        }
    }
    // Every Sluice event has `properties` and `context`.
    if let Some(missing) = node
        .required
        .iter()
        .find(|r| ![section, "context"].contains(&r.as_str()))
    {
        return Err(unsupported(
            "#/required",
            format!(
                "`{missing}` is required, but Sluice checks only the `{section}` section, which it always has"
            ),
        ));
    }
    Ok(Imported {
        origin: Origin::Segment {
            section: Some(section),
        },
        schema: node
            .properties
            .get(section)
            .cloned()
            .unwrap_or_else(Schema::any),
    })
}

/// `{}`, or `{"type": "object"}` (or a union with object): every Sluice
/// event's `context` passes it.
fn accepts_any_object(schema: &Schema) -> bool {
    schema.node().is_some_and(|node| {
        node.types.contains(Types::OBJECT)
            && Node {
                types: Types::ALL,
                ..node.clone()
            } == Node::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn iglu_doc(version: &str) -> Value {
        json!({
            "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
            "description": "A checkout was started",
            "self": {"vendor": "com.acme", "name": "checkout_started", "format": "jsonschema", "version": version},
            "type": "object",
            "properties": {
                "basket_value": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "coupon": {"type": ["string", "null"], "maxLength": 32}
            },
            "required": ["basket_value", "currency"],
            "additionalProperties": false
        })
    }

    #[test]
    fn schemaver_parses_canonical_text_and_knows_its_successors() {
        let v = SchemaVer::parse("1-0-2").unwrap();
        assert_eq!((v.model, v.revision, v.addition), (1, 0, 2));
        assert_eq!(v.to_string(), "1-0-2");
        for bad in ["0-1-0", "1-0", "1-0-0-0", "01-0-0", "1-a-0", "", "1--0"] {
            assert_eq!(SchemaVer::parse(bad), None, "{bad}");
        }
        let next = |t| v.bump_to(SchemaVer::parse(t).unwrap());
        assert_eq!(next("1-0-3"), Some(Bump::Addition));
        assert_eq!(next("1-1-0"), Some(Bump::Revision));
        assert_eq!(next("2-0-0"), Some(Bump::Model));
        for not_next in ["1-0-2", "1-0-1", "1-0-4", "1-1-1", "2-0-1", "3-0-0"] {
            assert_eq!(next(not_next), None, "{not_next}");
        }
        assert_eq!(v.successors(), "1-0-3, 1-1-0 or 2-0-0");
    }

    #[test]
    fn an_iglu_schema_maps_self_to_subject_and_schemaver() {
        let document = iglu_doc("1-0-0");
        assert_eq!(Dialect::detect(&document), Dialect::Iglu);
        let imported = import(Dialect::Iglu, &document, "com.acme/checkout_started").unwrap();
        let Origin::Iglu(key) = &imported.origin else {
            panic!("{:?}", imported.origin)
        };
        assert_eq!(key.subject(), "com.acme/checkout_started");
        assert_eq!(key.version, SchemaVer::FIRST);
        assert_eq!(key.uri(), "iglu:com.acme/checkout_started/jsonschema/1-0-0");
        assert_eq!(imported.origin.checked(), "#");
        // The body is the data's schema; the draft-04 boolean makes the
        // minimum exclusive.
        let schema = &imported.schema;
        assert!(schema.accepts(&json!({"basket_value": 0.5, "currency": "EUR"})));
        assert!(!schema.accepts(&json!({"basket_value": 0, "currency": "EUR"})));
        assert!(!schema.accepts(&json!({"basket_value": 1, "currency": "EUR", "self": {}})));
    }

    #[test]
    fn a_malformed_self_block_is_refused_at_its_path() {
        let mut document = iglu_doc("1-0");
        let err = import(Dialect::Iglu, &document, "x").unwrap_err();
        assert_eq!(
            (err.code, err.path.as_str()),
            ("invalid_schema", "#/self/version")
        );
        document["self"]["version"] = json!("1-0-0");
        document["self"]["format"] = json!("avro");
        let err = import(Dialect::Iglu, &document, "x").unwrap_err();
        assert_eq!(
            (err.code, err.path.as_str()),
            ("unsupported_keyword", "#/self/format")
        );
        document["self"]["format"] = json!("jsonschema");
        document["self"]["vendor"] = json!("com acme");
        let err = import(Dialect::Iglu, &document, "x").unwrap_err();
        assert_eq!(
            (err.code, err.path.as_str()),
            ("invalid_schema", "#/self/vendor")
        );
        document["self"].as_object_mut().unwrap().remove("vendor");
        let err = import(Dialect::Iglu, &document, "x").unwrap_err();
        assert_eq!(err.path, "#/self/vendor");
        assert!(err.message.contains("missing"), "{err}");
        // Iglu's meta-schema without a `self` block.
        let err = import(
            Dialect::detect(&json!({"$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"})),
            &json!({"$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"}),
            "x",
        )
        .unwrap_err();
        assert_eq!((err.code, err.path.as_str()), ("invalid_schema", "#/self"));
    }

    #[test]
    fn draft04_forms_follow_the_documents_schema() {
        // Draft-04 (or Iglu): the boolean makes the sibling bound exclusive,
        // `false` does nothing, and `id` is an annotation.
        let draft4 = json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "id": "http://example.com/root.json",
            "properties": {
                "a": {"id": "#a", "maximum": 10, "exclusiveMaximum": true},
                "b": {"minimum": 1, "exclusiveMinimum": false}
            }
        });
        let schema = Schema::parse(&draft4).unwrap();
        assert!(schema.accepts(&json!({"a": 9.5, "b": 1})));
        assert!(!schema.accepts(&json!({"a": 10})));
        // A boolean without its bound means nothing in draft-04: refused.
        let err = Schema::parse(
            &json!({"$schema": "http://json-schema.org/draft-04/schema", "exclusiveMinimum": true}),
        )
        .unwrap_err();
        assert_eq!(
            (err.code, err.path.as_str()),
            ("invalid_schema", "#/exclusiveMinimum")
        );
        // Without a draft-04 `$schema`, the boolean and `id` stay refused.
        let err = Schema::parse(&json!({"minimum": 1, "exclusiveMinimum": true})).unwrap_err();
        assert_eq!(err.code, "invalid_schema");
        let err = Schema::parse(&json!({"id": "x"})).unwrap_err();
        assert_eq!(err.code, "unsupported_keyword");
        // Nested draft-04 `id`s move the base of `$ref`s: refused as `$id`s are.
        let err = Schema::parse(&json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "definitions": {"zip": {"id": "zip.json", "type": "string"}},
            "properties": {"zip": {"$ref": "#/definitions/zip"}}
        }))
        .unwrap_err();
        assert_eq!(err.code, "unsupported_keyword");
        assert!(err.message.contains("`id`s"), "{err}");
    }

    fn segment_doc() -> Value {
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "description": "A customer completed an order",
            "labels": {"team": "checkout", "priority": "high"},
            "type": "object",
            "properties": {
                "context": {},
                "traits": {"type": "object"},
                "properties": {
                    "type": "object",
                    "id": "/properties/properties",
                    "properties": {
                        "order_id": {"id": "/properties/properties/properties/order_id", "key": "order_id", "type": ["string"]},
                        "total": {"type": "number", "minimum": 0}
                    },
                    "required": ["order_id"]
                }
            },
            "required": ["properties"]
        })
    }

    #[test]
    fn a_segment_schema_checks_its_properties_section() {
        let document = segment_doc();
        assert_eq!(Dialect::detect(&document), Dialect::Segment);
        let imported = import(Dialect::Segment, &document, "Order Completed").unwrap();
        assert_eq!(
            imported.origin,
            Origin::Segment {
                section: Some("properties")
            }
        );
        assert_eq!(imported.origin.checked(), "#/properties/properties");
        assert!(
            imported
                .schema
                .accepts(&json!({"order_id": "o-1", "total": 30}))
        );
        assert!(!imported.schema.accepts(&json!({"total": 30})));
        // The same under `$identify` constrains what Sluice would not check.
        let err = import(Dialect::Segment, &document, "$identify").unwrap_err();
        assert_eq!(err.path, "#/properties/properties");
        // Identify and group: the traits section.
        let identify = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "context": {},
                "traits": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}, "required": ["email"]}
            },
            "required": ["traits"]
        });
        assert_eq!(Dialect::detect(&identify), Dialect::Segment);
        let imported = import(Dialect::Segment, &identify, "$identify").unwrap();
        assert_eq!(imported.origin.checked(), "#/properties/traits");
        assert!(imported.schema.accepts(&json!({"email": "a@b.io"})));
        assert!(!imported.schema.accepts(&json!({"plan": "pro"})));
    }

    #[test]
    fn what_sluice_cannot_enforce_in_a_segment_schema_is_refused() {
        let mut document = segment_doc();
        document["properties"]["context"] = json!({"type": "object", "required": ["app"]});
        let err = import(Dialect::Segment, &document, "Order Completed").unwrap_err();
        assert_eq!(
            (err.code, err.path.as_str()),
            ("unsupported_keyword", "#/properties/context")
        );
        let mut document = segment_doc();
        document["required"] = json!(["properties", "traits"]);
        let err = import(Dialect::Segment, &document, "Order Completed").unwrap_err();
        assert_eq!(err.path, "#/required");
        let mut document = segment_doc();
        document["additionalProperties"] = json!(false);
        let err = import(Dialect::Segment, &document, "Order Completed").unwrap_err();
        assert_eq!((err.code, err.path.as_str()), ("unsupported_keyword", "#"));
        // Unknown keywords inside a section are refused as anywhere.
        let mut document = segment_doc();
        document["properties"]["properties"]["properties"]["total"]["contains"] = json!({});
        let err = import(Dialect::Segment, &document, "Order Completed").unwrap_err();
        assert_eq!(
            err.path,
            "#/properties/properties/properties/total/contains"
        );
    }

    #[test]
    fn detection_needs_the_whole_signature() {
        // A plain schema whose event has a `traits` property stays plain
        // without an old-draft `$schema`...
        let plain = json!({"type": "object", "properties": {"traits": {"type": "object"}}});
        assert_eq!(Dialect::detect(&plain), Dialect::JsonSchema);
        // ...or with another property beside the sections.
        let mut other = segment_doc();
        other["properties"]["plan"] = json!({"type": "string"});
        assert_eq!(Dialect::detect(&other), Dialect::JsonSchema);
        let mut newer = segment_doc();
        newer["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        assert_eq!(Dialect::detect(&newer), Dialect::JsonSchema);
        assert_eq!(Dialect::detect(&json!(true)), Dialect::JsonSchema);
    }

    #[test]
    fn the_flattened_segment_form_is_read_whole() {
        let flat = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "eventMetadata": {"name": "Product Viewed", "type": "TRACK"},
            "labels": {"area": "catalog"},
            "type": "object",
            "properties": {
                "product_id": {"id": "/properties/product_id", "type": "string"},
                "price": {"id": "/properties/price", "type": "number", "minimum": 0}
            },
            "required": ["product_id"]
        });
        assert_eq!(Dialect::detect(&flat), Dialect::Segment);
        let imported = import(Dialect::Segment, &flat, "Product Viewed").unwrap();
        assert_eq!(imported.origin, Origin::Segment { section: None });
        assert_eq!(imported.origin.checked(), "#");
        assert!(
            imported
                .schema
                .accepts(&json!({"product_id": "p-1", "price": 3}))
        );
        assert!(!imported.schema.accepts(&json!({"price": 3})));
        // Without `eventMetadata` it is plain JSON Schema.
        let mut plain = flat.clone();
        plain.as_object_mut().unwrap().remove("eventMetadata");
        assert_eq!(Dialect::detect(&plain), Dialect::JsonSchema);
    }
}
