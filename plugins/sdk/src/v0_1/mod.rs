//! The `sluice:plugin@0.1.0` API, for plugins not yet moved to 0.2.
//!
//! The gateway runs 0.1 and 0.2 components side by side, so a 0.1 plugin
//! keeps working unchanged: import from here instead of the crate root and
//! export with [`export_validator_v0_1!`](crate::export_validator_v0_1) /
//! [`export_enricher_v0_1!`](crate::export_enricher_v0_1). New plugins should
//! use the crate root's 0.2 API: 0.1 hands every event over as six owned
//! strings and takes whole events back from enrichers, which costs more per
//! event than most plugins' own work (see `docs/benchmarks.md`).
//!
//! ```
//! use sluice_plugin_sdk::v0_1::{Event, Validator};
//! use sluice_plugin_sdk::{PluginError, Verdict, export_validator_v0_1, parse_config};
//!
//! /// Rejects events whose name is on a deny list.
//! struct DenyNames(Vec<String>);
//!
//! impl Validator for DenyNames {
//!     fn init(config: &str) -> Result<Self, PluginError> {
//!         Ok(Self(parse_config(config)?)) // e.g. `["Test Event"]`
//!     }
//!
//!     fn validate(&self, events: Vec<Event>) -> Vec<Verdict> {
//!         events
//!             .iter()
//!             .map(|e| match self.0.contains(&e.name) {
//!                 true => Verdict::reject("denied_name", format!("`{}` is not accepted", e.name)),
//!                 false => Verdict::accept(),
//!             })
//!             .collect()
//!     }
//! }
//!
//! export_validator_v0_1!(DenyNames);
//! ```
//!
//! Runtime contract as in 0.2 (see the crate docs), and: a plugin returning
//! a different number of results than events traps, with a message naming
//! both numbers.

mod event;
mod outcome;
mod plugin;

pub use event::Event;
pub use outcome::Enriched;
pub use plugin::{Enricher, Validator};

/// The same types as in 0.2.
pub use crate::{JsonObject, PluginError, Verdict};
