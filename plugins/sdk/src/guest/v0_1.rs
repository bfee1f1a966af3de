//! Export glue for `sluice:plugin@0.1.0`: the bindings, the conversions
//! between them and the SDK's 0.1 types, and the adapters that implement
//! the generated `Guest` traits for any 0.1 [`Validator`] / [`Enricher`].

use std::cell::RefCell;
use std::marker::PhantomData;
use std::thread::LocalKey;

use super::{enter, not_initialised};
use crate::log::Level;
use crate::v0_1::{Enriched, Enricher, Event, Validator};
use crate::{PluginError, Verdict};

/// Bindings for world `sluice:plugin/validator` (and the `log` import that
/// both worlds share).
pub mod validator {
    super::super::wit_bindgen::generate!({
        world: "sluice:plugin/validator@0.1.0",
        path: "../../wit/0.1.0",
        pub_export_macro: true,
        default_bindings_module: "::sluice_plugin_sdk::__private::v0_1::validator",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings for world `sluice:plugin/enricher`.
pub mod enricher {
    super::super::wit_bindgen::generate!({
        world: "sluice:plugin/enricher@0.1.0",
        path: "../../wit/0.1.0",
        pub_export_macro: true,
        default_bindings_module: "::sluice_plugin_sdk::__private::v0_1::enricher",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
        with: {
            "sluice:plugin/log@0.1.0": crate::__private::v0_1::validator::sluice::plugin::log,
        },
    });
}

use enricher::exports::sluice::plugin::enrich as wit_enrich;
use enricher::sluice::plugin::types as etypes;
use validator::exports::sluice::plugin::validate as wit_validate;
use validator::sluice::plugin::types as vtypes;

/// Sends one line to the host's 0.1 `log` import.
fn log(level: Level, message: &str) {
    use validator::sluice::plugin::log as host;
    let level = match level {
        Level::Trace => host::Level::Trace,
        Level::Debug => host::Level::Debug,
        Level::Info => host::Level::Info,
        Level::Warn => host::Level::Warn,
        Level::Error => host::Level::Error,
    };
    host::log(level, message);
}

/// Where `export_validator_v0_1!` keeps the initialised plugin: a thread-local
/// `RefCell<Option<T>>` defined in the plugin crate (one per component).
pub trait ValidatorSlot: Validator {
    /// The plugin's slot.
    fn slot() -> &'static LocalKey<RefCell<Option<Self>>>;
}

/// Where `export_enricher_v0_1!` keeps the initialised plugin.
pub trait EnricherSlot: Enricher {
    /// The plugin's slot.
    fn slot() -> &'static LocalKey<RefCell<Option<Self>>>;
}

/// Implements the generated `validate` exports for any [`ValidatorSlot`].
#[derive(Debug)]
pub struct ValidatorExport<T>(PhantomData<T>);

/// Implements the generated `enrich` exports for any [`EnricherSlot`].
#[derive(Debug)]
pub struct EnricherExport<T>(PhantomData<T>);

impl<T: ValidatorSlot> wit_validate::Guest for ValidatorExport<T> {
    fn init(config: String) -> Result<(), vtypes::PluginError> {
        enter(log);
        // A failed `init` leaves the instance uninitialised (even if an
        // earlier `init` succeeded); a successful one replaces the plugin.
        let plugin = T::init(&config);
        let result = plugin.as_ref().map(|_| ()).map_err(|e| e.clone().into());
        T::slot().with(|slot| slot.replace(plugin.ok()));
        result
    }

    fn validate(events: Vec<vtypes::Event>) -> Vec<vtypes::Verdict> {
        enter(log);
        let count = events.len();
        let events = events.into_iter().map(Event::from).collect();
        let verdicts = T::slot().with(|slot| match &*slot.borrow() {
            Some(plugin) => plugin.validate(events),
            None => not_initialised("validate"),
        });
        check_length("validate", "verdicts", count, verdicts.len());
        verdicts.into_iter().map(Into::into).collect()
    }
}

impl<T: EnricherSlot> wit_enrich::Guest for EnricherExport<T> {
    fn init(config: String) -> Result<(), etypes::PluginError> {
        enter(log);
        let plugin = T::init(&config);
        let result = plugin.as_ref().map(|_| ()).map_err(|e| e.clone().into());
        T::slot().with(|slot| slot.replace(plugin.ok()));
        result
    }

    fn enrich(events: Vec<etypes::Event>) -> Vec<etypes::Enriched> {
        enter(log);
        let count = events.len();
        let events = events.into_iter().map(Event::from).collect();
        let results = T::slot().with(|slot| match &*slot.borrow() {
            Some(plugin) => plugin.enrich(events),
            None => not_initialised("enrich"),
        });
        check_length("enrich", "results", count, results.len());
        results.into_iter().map(Into::into).collect()
    }
}

/// Traps when a plugin returns the wrong number of results: the host would
/// refuse the batch anyway; this names the culprit precisely.
fn check_length(function: &str, what: &str, events: usize, results: usize) {
    assert!(
        events == results,
        "sluice plugin: `{function}` returned {results} {what} for {events} events \
         (must be exactly one per event)"
    );
}

macro_rules! event_conversions {
    ($types:ident) => {
        impl From<$types::Event> for Event {
            fn from(e: $types::Event) -> Self {
                Self {
                    event_id: e.event_id,
                    team_id: e.team_id,
                    name: e.name,
                    user_id: e.user_id,
                    timestamp_ms: e.timestamp_ms,
                    received_at_ms: e.received_at_ms,
                    schema_version: e.schema_version,
                    properties: e.properties,
                    context: e.context,
                }
            }
        }

        impl From<Event> for $types::Event {
            fn from(e: Event) -> Self {
                Self {
                    event_id: e.event_id,
                    team_id: e.team_id,
                    name: e.name,
                    user_id: e.user_id,
                    timestamp_ms: e.timestamp_ms,
                    received_at_ms: e.received_at_ms,
                    schema_version: e.schema_version,
                    properties: e.properties,
                    context: e.context,
                }
            }
        }

        impl From<PluginError> for $types::PluginError {
            fn from(e: PluginError) -> Self {
                match e {
                    PluginError::InvalidConfig(m) => Self::InvalidConfig(m),
                    PluginError::Other(m) => Self::Other(m),
                }
            }
        }
    };
}

event_conversions!(vtypes);
event_conversions!(etypes);

impl From<Verdict> for vtypes::Verdict {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Accept => Self::Accept,
            Verdict::Reject { code, message } => Self::Reject(vtypes::Rejection { code, message }),
        }
    }
}

impl From<Enriched> for etypes::Enriched {
    fn from(enriched: Enriched) -> Self {
        match enriched {
            Enriched::Unchanged => Self::Unchanged,
            Enriched::Changed(event) => Self::Changed(event.into()),
            Enriched::Failed(message) => Self::Failed(message),
        }
    }
}
