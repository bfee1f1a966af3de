//! The registry's rules for imported formats (`sluice_schemas::import`):
//! an Iglu schema's `self` block against the route and the subject's
//! history, and how imported versions are shown. The crate reads a document;
//! only here are the subject and its earlier versions known.
//!
//! 1. An Iglu schema's subject is `vendor/name` from its `self` block; any
//!    other route is refused (`subject_mismatch`), so one Iglu schema has
//!    one subject.
//! 2. A subject holds Iglu schemas only, or none (`schema_format_conflict`):
//!    otherwise a version without a SchemaVer would break the order of 3.
//! 3. The registry's integer versions and the SchemaVers grow together:
//!    the first version is `1-0-0`, each next one of the three that may
//!    follow the latest (`schemaver_out_of_order`). Versions are never
//!    deleted, so a skipped SchemaVer could never be registered later.
//! 4. An ADDITION claims to accept all data of the earlier versions of the
//!    same MODEL-REVISION: checked as BACKWARD_TRANSITIVE against them
//!    (`schemaver_not_addition`), whatever the subject's mode. A REVISION
//!    or MODEL claims nothing. The subject's mode then applies as to any
//!    schema: consumers read every version of an event name from the same
//!    topic and table, so a breaking MODEL needs the mode relaxed first.

use serde_json::{Map, Value, json};
use sluice_schemas::import::Bump;
use sluice_schemas::{Compatibility, Incompatibility, Origin, Schema, SchemaVer, compat};

use super::error::SchemaApiError;
use crate::schemas::registry::Compiled;

type Result<T> = std::result::Result<T, SchemaApiError>;

/// Rule 1.
pub(super) fn check_subject(origin: &Origin, subject: &str) -> Result<()> {
    if let Origin::Iglu(key) = origin
        && key.subject() != subject
    {
        return Err(SchemaApiError::SubjectMismatch {
            subject: subject.to_owned(),
            named: key.subject(),
            uri: key.uri(),
        });
    }
    Ok(())
}

fn schema_ver(compiled: &Compiled) -> Option<SchemaVer> {
    match &compiled.origin {
        Origin::Iglu(key) => Some(key.version),
        _ => None,
    }
}

/// Rules 2 to 4, for a new document of `subject` whose earlier versions
/// are `earlier` (oldest first).
pub(super) fn check_history(
    subject: &str,
    origin: &Origin,
    schema: &Schema,
    earlier: &[&Compiled],
) -> Result<()> {
    let Some(latest) = earlier.last() else {
        return match origin {
            Origin::Iglu(key) if key.version != SchemaVer::FIRST => {
                Err(SchemaApiError::SchemaVerOutOfOrder(format!(
                    "`{subject}` has no versions yet, so its first SchemaVer is 1-0-0, not {}: versions are never deleted or inserted, so one registered before 1-0-0 would keep 1-0-0 out for good",
                    key.version
                )))
            }
            _ => Ok(()),
        };
    };
    let new = match origin {
        Origin::Iglu(key) => key.version,
        _ if schema_ver(latest).is_some() => {
            return Err(SchemaApiError::FormatConflict(format!(
                "`{subject}` holds Iglu schemas: each next version must be one too, with the next SchemaVer in its `self` block"
            )));
        }
        _ => return Ok(()),
    };
    let Some(previous) = schema_ver(latest) else {
        return Err(SchemaApiError::FormatConflict(format!(
            "`{subject}` already holds schemas without a SchemaVer (plain JSON Schema or Segment's), so an Iglu schema cannot continue it: its SchemaVers would have no start"
        )));
    };
    let version = latest.record.version;
    let bump = previous.bump_to(new).ok_or_else(|| {
        let already = earlier
            .iter()
            .find(|c| schema_ver(c) == Some(new))
            .map(|c| {
                format!(
                    "; {new} is already version {} with another body (an Iglu schema never changes once published)",
                    c.record.version
                )
            })
            .unwrap_or_default();
        SchemaApiError::SchemaVerOutOfOrder(format!(
            "the latest version of `{subject}` is {previous} (version {version}), so the next SchemaVer is {}, not {new}{already}",
            previous.successors()
        ))
    })?;
    if bump == Bump::Addition {
        let series: Vec<(u32, &Schema)> = earlier
            .iter()
            .filter(|c| {
                schema_ver(c).is_some_and(|v| (v.model, v.revision) == (new.model, new.revision))
            })
            .map(|c| (c.record.version, &c.schema))
            .collect();
        let found = compat::check(Compatibility::BackwardTransitive, schema, &series);
        if !found.is_empty() {
            return Err(SchemaApiError::NotAnAddition {
                schema_ver: new.to_string(),
                series: format!("{}-{}", new.model, new.revision),
                found,
            });
        }
    }
    Ok(())
}

/// Compatibility paths point into the checked part; make them point into
/// the registered document (a Segment schema's `#/properties/properties`).
pub(super) fn rebase(found: &mut [Incompatibility], origin: &Origin) {
    let base = origin.checked();
    if base != "#" {
        for incompatibility in found {
            let path = &incompatibility.path;
            let inner = path.strip_prefix('#').unwrap_or(path);
            incompatibility.path = format!("{base}{inner}");
        }
    }
}

/// The fields an imported version adds to its views: `format`, the part
/// checked, and an Iglu schema's SchemaVer and URI. Nothing for plain
/// JSON Schema, whose views stay Confluent's.
pub(super) fn describe(origin: &Origin) -> Map<String, Value> {
    let mut fields = Map::new();
    if *origin == Origin::JsonSchema {
        return fields;
    }
    fields.insert("format".to_owned(), json!(origin.dialect().name()));
    fields.insert("checked".to_owned(), json!(origin.checked()));
    if let Origin::Iglu(key) = origin {
        fields.insert("schemaVer".to_owned(), json!(key.version.to_string()));
        fields.insert("iglu".to_owned(), json!(key.uri()));
    }
    fields
}

/// An Iglu subject's version by SchemaVer (`.../versions/1-0-1`).
pub(super) fn by_schema_ver<'v>(
    versions: &[&'v Compiled],
    text: &str,
) -> Option<Option<&'v Compiled>> {
    let wanted = SchemaVer::parse(text)?;
    Some(
        versions
            .iter()
            .copied()
            .find(|c| schema_ver(c) == Some(wanted)),
    )
}
