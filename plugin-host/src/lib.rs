//! The plugin host: teams' WebAssembly components in the ingest path.
//!
//! A layer of its own, below the services: the gateway runs it on every
//! batch, the CLI (`sluice plugin run`) runs it locally, and the benchmarks
//! measure it, none of them through the others.
//!
//! - [`bindings`]: generated types for the `sluice:plugin@0.1.0` WIT package.
//! - [`runtime`]: engine, compilation, sandboxed calls with CPU/memory bounds.
//! - [`registry`]: plugin records and component bytes in compacted topics.
//! - [`chain`]: running a team's validators and enrichers over a batch.
//! - [`host`]: keeps chains compiled and current; runs batches off the workers.
//! - [`stats`]: per-plugin call statistics for the admin API.
//! - [`convert`]: between the event contract and the WIT `event` record.
//! - [`metrics`]: the host's Prometheus metric names.
//! - [`kind`]: validator or enricher.
//!
//! Without the default `runtime` feature only [`kind`], [`registry`] and
//! [`stats`] are built: what a tool needs to talk about plugins without
//! running them, and without compiling wasmtime and Cranelift.
//!
//! (The admin API's plugin routes are the gateway's, `gateway/src/admin/`;
//! the guest side, SDK and example plugins, lives in the top-level
//! `plugins/` folder; the WIT package in `wit/`.)

#[cfg(feature = "runtime")]
pub mod batch;
#[cfg(feature = "runtime")]
pub mod bindings;
#[cfg(feature = "runtime")]
pub mod chain;
#[cfg(feature = "runtime")]
pub mod convert;
#[cfg(feature = "runtime")]
pub mod host;
pub mod kind;
#[cfg(feature = "runtime")]
pub mod metrics;
#[cfg(feature = "runtime")]
pub mod patch;
pub mod registry;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod stats;

#[cfg(feature = "runtime")]
pub use host::{PluginHost, PluginSettings};
pub use kind::PluginKind;
