//! Export glue for wasm32 (not public API): the generated bindings, the
//! conversions between them and the SDK's types, and the adapters that
//! implement the generated `Guest` traits for any [`Validator`] / [`Enricher`].
//!
//! Both worlds' bindings live here. wit-bindgen's `pub_export_macro` mode
//! makes that safe: the type section emitted at each `generate!` describes
//! only the world's imports; the full world (with its exports) is emitted by
//! the `export!` macro, i.e. only in the plugin crate that invokes
//! `export_validator!` or `export_enricher!`.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::thread::LocalKey;

pub use wit_bindgen;

use crate::log::Level;
use crate::{Enriched, Enricher, Event, PluginError, Validator, Verdict};

// About `unsafe_code = "forbid"` (workspace lint, this crate included): the
// code `generate!` emits below reads and writes guest memory through raw
// pointers and uses `#[unsafe(export_name)]` / `#[unsafe(link_section)]`, yet
// needs no `#[allow(unsafe_code)]`: rustc does not report lints inside the
// expansion of a macro defined in another crate (wit-bindgen's proc macro
// here; the SDK's `export!` macros in plugin crates). Handwritten code stays
// under `forbid`. Should a future wit-bindgen trip the lint, set
// `unsafe_code = "deny"` in sdk/Cargo.toml and put `#[allow(unsafe_code)]` on
// exactly these two modules.

/// Bindings for world `sluice:plugin/validator` (and the `log` import that
/// both worlds share).
pub mod validator {
    super::wit_bindgen::generate!({
        world: "sluice:plugin/validator@0.1.0",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "::sluice_plugin_sdk::__private::validator",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings for world `sluice:plugin/enricher`.
pub mod enricher {
    super::wit_bindgen::generate!({
        world: "sluice:plugin/enricher@0.1.0",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "::sluice_plugin_sdk::__private::enricher",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
        with: {
            "sluice:plugin/log@0.1.0": crate::__private::validator::sluice::plugin::log,
        },
    });
}

use enricher::exports::sluice::plugin::enrich as wit_enrich;
use enricher::sluice::plugin::types as etypes;
use validator::exports::sluice::plugin::validate as wit_validate;
use validator::sluice::plugin::types as vtypes;

/// Sends one line to the host's `log` import.
pub(crate) fn log(level: Level, message: &str) {
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

/// Where `export_validator!` keeps the initialised plugin: a thread-local
/// `RefCell<Option<T>>` defined in the plugin crate (one per component).
pub trait ValidatorSlot: Validator {
    /// The plugin's slot.
    fn slot() -> &'static LocalKey<RefCell<Option<Self>>>;
}

/// Where `export_enricher!` keeps the initialised plugin.
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
        install_panic_hook();
        // A failed `init` leaves the instance uninitialised (even if an
        // earlier `init` succeeded); a successful one replaces the plugin.
        let plugin = T::init(&config);
        let result = plugin.as_ref().map(|_| ()).map_err(|e| e.clone().into());
        T::slot().with(|slot| slot.replace(plugin.ok()));
        result
    }

    fn validate(events: Vec<vtypes::Event>) -> Vec<vtypes::Verdict> {
        install_panic_hook();
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
        install_panic_hook();
        let plugin = T::init(&config);
        let result = plugin.as_ref().map(|_| ()).map_err(|e| e.clone().into());
        T::slot().with(|slot| slot.replace(plugin.ok()));
        result
    }

    fn enrich(events: Vec<etypes::Event>) -> Vec<etypes::Enriched> {
        install_panic_hook();
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

/// Makes every panic (a trap: components abort on panic) also write its
/// message and location to the host log at error level, since the host gives
/// plugins no stderr. Installed on the first call into the component.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            log(Level::Error, &format!("plugin {info}"));
            previous(info);
        }));
    });
}

/// Traps when the host calls a batch function without a successful `init`:
/// no verdict would be right (accepting bypasses the plugin, rejecting drops
/// data because of a host bug), so the call fails as a plugin fault and the
/// host's failure policy applies.
#[cold]
fn not_initialised(function: &str) -> ! {
    panic!("sluice plugin: `{function}` called before a successful `init`");
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
