//! Sluice's schema engine: what a team's event schemas mean, whether a new
//! version is compatible with the earlier ones, and whether an event's
//! `properties` conform. Pure code, no I/O: the gateway stores schemas in
//! Kafka and serves the registry API; this crate only decides.
//!
//! - [`model`]: the supported subset of JSON Schema, parsed into [`Schema`];
//!   unknown keywords are refused (the module docs list the subset).
//! - [`validate`]: one instance against a schema, first violation with its path;
//!   `stream` does the same while parsing JSON text (the gateway's hot path).
//! - [`compat`]: writer ⊆ reader inclusion, Confluent's seven modes, and
//!   explanations naming the schema path and the rule broken.
//! - [`import`]: Iglu self-describing schemas and Segment tracking-plan
//!   event schemas, read as published: which part is checked, and the
//!   Iglu `self` block (subject and SchemaVer).
//!
//! The user-facing rules are in `docs/schemas.md`.

pub mod compat;
mod format;
pub mod import;
pub mod model;
mod stream;
pub mod validate;

pub use compat::{Compatibility, Direction, Incompatibility};
pub use import::{Dialect, Imported, Origin, SchemaVer};
pub use model::{Schema, SchemaError};
pub use validate::Violation;
