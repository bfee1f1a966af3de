//! The traits a 0.1 plugin implements: [`Validator`] or [`Enricher`].

use super::{Enriched, Event};
use crate::{PluginError, Verdict};

/// A validator plugin (WIT world `sluice:plugin/validator@0.1.0`): decides,
/// per event, whether it may continue. Export it with
/// [`export_validator_v0_1!`](crate::export_validator_v0_1).
///
/// The host creates one instance per team configuration, calls
/// [`init`](Self::init) once, then [`validate`](Self::validate) for many
/// batches. Both run single-threaded; there is no concurrency to handle.
pub trait Validator: Sized + 'static {
    /// Builds the plugin from the team's configuration (a JSON document,
    /// `{}` when none; see [`parse_config`](crate::parse_config)).
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] when the configuration is unusable: the
    /// host then refuses to activate the plugin for that team.
    fn init(config: &str) -> Result<Self, PluginError>;

    /// Exactly one verdict per event, in the same order. (The export glue
    /// traps with a clear message when the lengths differ.)
    fn validate(&self, events: Vec<Event>) -> Vec<Verdict>;
}

/// An enricher plugin (WIT world `sluice:plugin/enricher@0.1.0`): adds to or
/// rewrites events after every validator accepted them. Export it with
/// [`export_enricher_v0_1!`](crate::export_enricher_v0_1).
///
/// Lifecycle as for [`Validator`].
pub trait Enricher: Sized + 'static {
    /// Builds the plugin from the team's configuration (a JSON document,
    /// `{}` when none; see [`parse_config`](crate::parse_config)).
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] when the configuration is unusable.
    fn init(config: &str) -> Result<Self, PluginError>;

    /// Exactly one result per event, in the same order. Return
    /// [`Enriched::Unchanged`] whenever possible: it is the cheapest result.
    fn enrich(&self, events: Vec<Event>) -> Vec<Enriched>;
}
