//! Export glue for `sluice:plugin@0.2.0`: the bindings, and the adapters
//! that implement the generated `Guest` traits for any [`Validator`] /
//! [`Enricher`]: `init` declares the plugin's `FIELDS` (and asks for spans),
//! and a batch call runs the plugin once per event of the [`Batch`].

use std::cell::RefCell;
use std::marker::PhantomData;
use std::thread::LocalKey;

use super::{enter, not_initialised};
use crate::log::Level;
use crate::{Batch, Enriched, Enricher, Fields, PluginError, Validator, Verdict};

// The worlds are generated under SDK-local names (`validator-v0-2`, …), each
// including the `sluice:plugin@0.2.0` world: wit-bindgen names a world's
// exported `export!` macro after the world (`__export_validator_impl`), and
// the 0.1 bindings already define that name at this crate's root. The
// component's imports and exports are the included world's interfaces.

/// Bindings for world `sluice:plugin/validator@0.2.0`, the `log` import and
/// the `types` both worlds share.
pub mod validator {
    super::super::wit_bindgen::generate!({
        inline: "
            package sluice:sdk@0.2.0;
            world validator-v0-2 { include sluice:plugin/validator@0.2.0; }
        ",
        path: "../../wit/0.2.0",
        world: "sluice:sdk/validator-v0-2@0.2.0",
        pub_export_macro: true,
        default_bindings_module: "::sluice_plugin_sdk::__private::v0_2::validator",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
        generate_all,
    });
}

/// Bindings for world `sluice:plugin/enricher@0.2.0`.
pub mod enricher {
    super::super::wit_bindgen::generate!({
        inline: "
            package sluice:sdk@0.2.0;
            world enricher-v0-2 { include sluice:plugin/enricher@0.2.0; }
        ",
        path: "../../wit/0.2.0",
        world: "sluice:sdk/enricher-v0-2@0.2.0",
        pub_export_macro: true,
        default_bindings_module: "::sluice_plugin_sdk::__private::v0_2::enricher",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
        generate_all,
        with: {
            "sluice:plugin/log@0.2.0": crate::__private::v0_2::validator::sluice::plugin::log,
            "sluice:plugin/types@0.2.0": crate::__private::v0_2::validator::sluice::plugin::types,
        },
    });
}

use enricher::exports::sluice::plugin::enrich as wit_enrich;
use validator::exports::sluice::plugin::validate as wit_validate;
use validator::sluice::plugin::types;

/// Sends one line to the host's 0.2 `log` import.
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
    fn init(config: String) -> Result<types::Needs, types::PluginError> {
        enter(log);
        // A failed `init` leaves the instance uninitialised (even if an
        // earlier `init` succeeded); a successful one replaces the plugin.
        let plugin = T::init(&config);
        let result = match &plugin {
            Ok(_) => Ok(needs(T::FIELDS)),
            Err(e) => Err(e.clone().into()),
        };
        T::slot().with(|slot| slot.replace(plugin.ok()));
        result
    }

    fn validate(batch: types::Batch) -> Vec<types::Verdict> {
        enter(log);
        let batch = read(batch, T::FIELDS);
        T::slot().with(|slot| match &*slot.borrow() {
            Some(plugin) => batch
                .iter()
                .map(|event| plugin.validate(&event).into())
                .collect(),
            None => not_initialised("validate"),
        })
    }
}

impl<T: EnricherSlot> wit_enrich::Guest for EnricherExport<T> {
    fn init(config: String) -> Result<types::Needs, types::PluginError> {
        enter(log);
        let plugin = T::init(&config);
        let result = match &plugin {
            Ok(_) => Ok(needs(T::FIELDS)),
            Err(e) => Err(e.clone().into()),
        };
        T::slot().with(|slot| slot.replace(plugin.ok()));
        result
    }

    fn enrich(batch: types::Batch) -> Vec<types::Enriched> {
        enter(log);
        let batch = read(batch, T::FIELDS);
        T::slot().with(|slot| match &*slot.borrow() {
            Some(plugin) => batch
                .iter()
                .map(|event| plugin.enrich(&event).into())
                .collect(),
            None => not_initialised("enrich"),
        })
    }
}

/// What `init` returns: the plugin's fields, and spans (the SDK slices).
fn needs(fields: Fields) -> types::Needs {
    types::Needs {
        fields: types::Fields::from_bits_retain(fields.bits()),
        spans: true,
    }
}

/// The host's batch (moved, not copied); traps when it cannot be read.
fn read(batch: types::Batch, fields: Fields) -> Batch {
    Batch::new(batch.events, batch.spans, fields)
        .unwrap_or_else(|e| panic!("sluice plugin: {e} (a host fault)"))
}

impl From<PluginError> for types::PluginError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidConfig(m) => Self::InvalidConfig(m),
            PluginError::Other(m) => Self::Other(m),
        }
    }
}

impl From<Verdict> for types::Verdict {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Accept => Self::Accept,
            Verdict::Reject { code, message } => Self::Reject(types::Rejection { code, message }),
        }
    }
}

impl From<Enriched> for types::Enriched {
    fn from(enriched: Enriched) -> Self {
        match enriched {
            Enriched::Unchanged => Self::Unchanged,
            Enriched::Patched(patch) => Self::Patched(patch.into_json()),
            Enriched::Failed(message) => Self::Failed(message),
        }
    }
}
