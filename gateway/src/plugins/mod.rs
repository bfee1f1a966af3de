//! The plugin host: teams' WebAssembly components in the ingest path.
//!
//! - [`bindings`]: generated types for the `sluice:plugin@0.1.0` WIT package.
//! - [`runtime`]: engine, compilation, sandboxed calls with CPU/memory bounds.
//! - [`registry`]: plugin records and component bytes in compacted topics.
//! - [`chain`]: running a team's validators and enrichers over a batch.
//! - [`host`]: keeps chains compiled and current; runs batches off the workers.
//! - [`admin`]: the plugin routes of the admin API.
//! - [`stats`]: per-plugin call statistics for the admin API.
//! - [`convert`]: between the event contract and the WIT `event` record.
//!
//! (The guest side, SDK and example plugins, lives in the top-level
//! `plugins/` folder; the WIT package in `wit/`.)

pub mod admin;
pub mod bindings;
pub mod chain;
pub mod convert;
pub mod host;
pub mod registry;
pub mod runtime;
pub mod stats;

pub use host::{PluginHost, PluginsConfig};
