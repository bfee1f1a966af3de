//! The traits a plugin implements: [`Validator`] or [`Enricher`].
//!
//! A plugin answers for one event at a time: the export glue loops over the
//! batch, so a plugin cannot return the wrong number of results, and its
//! code reads like the rule it implements.

use crate::{Enriched, Event, Fields, PluginError, Verdict};

/// A validator plugin (WIT world `sluice:plugin/validator@0.2.0`): decides,
/// per event, whether it may continue. Export it with
/// [`export_validator!`](crate::export_validator).
///
/// The host creates one instance per team configuration, calls
/// [`init`](Self::init) once, then [`validate`](Self::validate) for every
/// event of many batches. Everything runs on one thread.
pub trait Validator: Sized + 'static {
    /// What the plugin reads of each event besides `event_id` and `name`:
    /// the host sends nothing else, and reading an undeclared field panics.
    const FIELDS: Fields;

    /// Builds the plugin from the team's configuration (a JSON document,
    /// `{}` when none; see [`parse_config`](crate::parse_config)).
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] when the configuration is unusable: the
    /// host then refuses to activate the plugin for that team.
    fn init(config: &str) -> Result<Self, PluginError>;

    /// The verdict for one event.
    fn validate(&self, event: &Event<'_>) -> Verdict;
}

/// An enricher plugin (WIT world `sluice:plugin/enricher@0.2.0`): adds to or
/// rewrites events after every validator accepted them, by returning a
/// [`Patch`](crate::Patch). Export it with
/// [`export_enricher!`](crate::export_enricher).
///
/// Lifecycle as for [`Validator`].
pub trait Enricher: Sized + 'static {
    /// What the plugin reads of each event besides `event_id` and `name`
    /// (a patch may change fields the plugin does not read).
    const FIELDS: Fields;

    /// Builds the plugin from the team's configuration (a JSON document,
    /// `{}` when none; see [`parse_config`](crate::parse_config)).
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] when the configuration is unusable.
    fn init(config: &str) -> Result<Self, PluginError>;

    /// The result for one event. Return [`Enriched::Unchanged`] whenever
    /// nothing changes: it is the cheapest result.
    fn enrich(&self, event: &Event<'_>) -> Enriched;
}
