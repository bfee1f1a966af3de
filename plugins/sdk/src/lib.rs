//! Guest SDK for Sluice plugins: WebAssembly components that the gateway runs
//! on every batch of a team's events (WIT package `sluice:plugin@0.1.0`, in
//! the repository's `wit/` folder).
//!
//! A plugin is a `cdylib` crate that implements [`Validator`] (world
//! `validator`) or [`Enricher`] (world `enricher`) and names its type in
//! [`export_validator!`] or [`export_enricher!`]. Built with
//! `cargo build --target wasm32-wasip2 --release` the crate is a component
//! for that world; built natively its logic is plain Rust, unit-testable with
//! `cargo test` (the export macros then only check the trait bound).
//!
//! ```
//! use sluice_plugin_sdk::{export_validator, parse_config, Event, PluginError, Validator, Verdict};
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
//! export_validator!(DenyNames);
//! ```
//!
//! # Runtime contract (what the export glue does)
//!
//! * `init(config)` calls [`Validator::init`] / [`Enricher::init`] and keeps
//!   the plugin in a thread-local `RefCell<Option<T>>` owned by the plugin
//!   crate. A later `init` replaces it; a failed `init` clears it.
//! * A batch call (`validate` / `enrich`) before a successful `init` **traps**
//!   with the message `` sluice plugin: `validate` called before a successful
//!   `init` ``: no verdict would be right (accepting bypasses the plugin,
//!   rejecting drops data because of a host bug), so the host treats it as a
//!   plugin fault and applies the plugin's failure policy.
//! * A plugin returning a different number of results than events also traps,
//!   with a message naming both numbers.
//! * A panic in plugin code is a trap (components are built with
//!   `panic = "abort"`); prefer [`Verdict::reject`] / [`Enriched::failed`] for
//!   anything an event can cause.
//! * Every panic message (with its location) is also sent to the host log at
//!   error level, because plugins have no stderr: a panic hook installed on
//!   the first call into the component.

extern crate self as sluice_plugin_sdk;

mod error;
mod event;
pub mod log;
mod outcome;
mod plugin;
pub mod scan;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[path = "guest.rs"]
pub mod __private;

pub use error::{PluginError, parse_config};
pub use event::{Event, JsonObject};
pub use outcome::{Enriched, Verdict};
pub use plugin::{Enricher, Validator};
/// The `serde_json` crate, re-exported so plugins need not depend on it.
pub use serde_json;
pub use serde_json::{Value, json};

/// Exports a [`Validator`] as this component's `sluice:plugin/validate`
/// interface. Invoke once, at the top level of the plugin crate.
///
/// On wasm32 this emits the component's exports and the thread-local slot
/// holding the initialised plugin; on other targets it only checks that the
/// type implements [`Validator`].
#[macro_export]
macro_rules! export_validator {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements_validator<T: $crate::Validator>() {}
            implements_validator::<$plugin>();
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            impl $crate::__private::ValidatorSlot for $plugin {
                fn slot() -> &'static ::std::thread::LocalKey<
                    ::core::cell::RefCell<::core::option::Option<Self>>,
                > {
                    ::std::thread_local! {
                        static SLOT: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                            const { ::core::cell::RefCell::new(::core::option::Option::None) };
                    }
                    &SLOT
                }
            }
            type SluiceValidatorExport = $crate::__private::ValidatorExport<$plugin>;
            $crate::__private::validator::export!(
                SluiceValidatorExport with_types_in $crate::__private::validator
            );
        };
    };
}

/// Exports an [`Enricher`] as this component's `sluice:plugin/enrich`
/// interface. Invoke once, at the top level of the plugin crate.
///
/// On wasm32 this emits the component's exports and the thread-local slot
/// holding the initialised plugin; on other targets it only checks that the
/// type implements [`Enricher`].
#[macro_export]
macro_rules! export_enricher {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements_enricher<T: $crate::Enricher>() {}
            implements_enricher::<$plugin>();
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            impl $crate::__private::EnricherSlot for $plugin {
                fn slot() -> &'static ::std::thread::LocalKey<
                    ::core::cell::RefCell<::core::option::Option<Self>>,
                > {
                    ::std::thread_local! {
                        static SLOT: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                            const { ::core::cell::RefCell::new(::core::option::Option::None) };
                    }
                    &SLOT
                }
            }
            type SluiceEnricherExport = $crate::__private::EnricherExport<$plugin>;
            $crate::__private::enricher::export!(
                SluiceEnricherExport with_types_in $crate::__private::enricher
            );
        };
    };
}
