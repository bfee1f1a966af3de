//! How a document's dialect changes the reading of its keywords: draft-04
//! forms, and annotations that other tools write (see [`crate::import`]).
//! Each accepts what plain documents could not say before (the boolean
//! bounds, `id`), so a version stored before still reads the same. One
//! conservative exception: in a draft-04 document with a `$ref`, an object
//! with a string `id` inside an `enum`, `const` or `default` value is taken
//! for a nested `id`, as one with `$id` always was, and the `$ref` refused.

use serde_json::Value;

/// How a document's dialect changes the reading: draft-04 semantics, and
/// keywords its tools write that never constrain (see [`crate::import`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reading {
    /// `exclusiveMinimum`/`exclusiveMaximum` may be draft-04 booleans that
    /// make `minimum`/`maximum` exclusive, and `id` is draft-04's `$id`.
    pub draft4: bool,
    /// More annotations, at any depth (Segment's `id`, `key`, `labels`).
    pub annotations: &'static [&'static str],
}

impl Reading {
    /// Whether `id` is an identifier here (draft-04, or a tool that writes
    /// it), so that nested ones rule out `$ref` as nested `$id`s do.
    pub(crate) fn legacy_id(self) -> bool {
        self.draft4 || self.annotations.contains(&"id")
    }
}

/// Iglu's meta-schema for self-describing schemas, as [`schema_uri`] gives it.
pub(crate) const IGLU_META: &str =
    "iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0";

/// `$schema` URIs whose documents follow draft-04: draft-04 itself, and
/// Iglu's self-describing meta-schema, which extends it.
const DRAFT4_URIS: &[&str] = &["json-schema.org/draft-04/schema", IGLU_META];

/// The root's `$schema` without its scheme (http or https) and empty
/// fragment, e.g. `json-schema.org/draft-07/schema`; empty without one.
pub(crate) fn schema_uri(document: &Value) -> &str {
    let uri = document
        .get("$schema")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_end_matches('#');
    uri.strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
        .unwrap_or(uri)
}

/// True when the root's `$schema` names draft-04.
pub(crate) fn declares_draft4(document: &Value) -> bool {
    DRAFT4_URIS.contains(&schema_uri(document))
}
