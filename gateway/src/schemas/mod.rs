//! The schema registry: JSON Schemas per team and event name, with versions,
//! compatibility modes, and validation of every event on ingest.
//!
//! - [`registry`]: records in the compacted topic `sluice.schemas`, and the
//!   parsed view the ingest path checks events against.
//! - [`api`]: the Confluent-shaped REST API under `/schemas/v1/teams/{team}`.
//! - [`error`]: that API's one error type (Confluent's error body).
//!
//! What a schema may say and how compatibility is decided is the
//! `sluice-schemas` crate's business (`schemas/`); `docs/schemas.md` is the
//! user's guide.

pub mod api;
pub mod error;
pub mod registry;

pub use registry::SchemaRegistry;

/// Where the registry lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemasConfig {
    /// Compacted topic of schema versions and configuration.
    pub topic: String,
}

impl Default for SchemasConfig {
    fn default() -> Self {
        Self {
            topic: "sluice.schemas".to_owned(),
        }
    }
}
