//! The schema registry: JSON Schemas per team and event name, with versions,
//! compatibility modes, and validation of every event on ingest.
//!
//! - [`registry`]: records in the compacted topic `sluice.schemas`, and the
//!   parsed view the ingest path checks events against.
//!
//! Its Confluent-shaped REST API under `/schemas/v1/teams/{team}` is with the
//! other admin routes, in [`crate::admin::schemas`].
//!
//! What a schema may say and how compatibility is decided is the
//! `sluice-schemas` crate's business (`schemas/`); `docs/schemas.md` is the
//! user's guide.

pub mod registry;

pub use registry::SchemaRegistry;
