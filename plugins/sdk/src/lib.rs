//! Guest SDK for Sluice plugins: WebAssembly components that the gateway runs
//! on every batch of a team's events (WIT package `sluice:plugin@0.2.0`, in
//! the repository's `wit/0.2.0/` folder; the 0.1 API is in [`v0_1`]).
//!
//! A plugin is a `cdylib` crate that implements [`Validator`] (world
//! `validator`) or [`Enricher`] (world `enricher`) and names its type in
//! [`export_validator!`] or [`export_enricher!`]. Built with
//! `cargo build --target wasm32-wasip2 --release` the crate is a component
//! for that world; built natively its logic is plain Rust, unit-testable with
//! `cargo test` (the export macros then only check the trait bound).
//!
//! ```
//! use sluice_plugin_sdk::{Event, Fields, PluginError, Validator, Verdict, export_validator, parse_config};
//!
//! /// Rejects events whose name is on a deny list.
//! struct DenyNames(Vec<String>);
//!
//! impl Validator for DenyNames {
//!     // Reads only the name, which is always sent.
//!     const FIELDS: Fields = Fields::NONE;
//!
//!     fn init(config: &str) -> Result<Self, PluginError> {
//!         Ok(Self(parse_config(config)?)) // e.g. `["Test Event"]`
//!     }
//!
//!     fn validate(&self, event: &Event<'_>) -> Verdict {
//!         let name = event.name();
//!         if self.0.iter().any(|denied| *denied == name) {
//!             Verdict::reject("denied_name", format!("`{name}` is not accepted"))
//!         } else {
//!             Verdict::accept()
//!         }
//!     }
//! }
//!
//! export_validator!(DenyNames);
//! ```
//!
//! # Why it looks like this (0.2)
//!
//! Moving events into a guest used to cost more than most plugins' own
//! work. In 0.2 the host sends a batch as one JSON text with the byte span of
//! every member, only the members the plugin declared ([`Fields`]). The SDK
//! reads it without parsing or copying: an [`Event`] is a view of one event
//! in that text, its `properties` and `context` raw JSON object text for the
//! allocation-free [`scan`]ner (or `serde_json`, when convenience matters
//! more). An enricher returns a [`Patch`] (a JSON merge patch of what it
//! changed), not a whole event. A plugin answers per event; the glue loops,
//! so the result count is always right.
//!
//! Test plugins natively with [`EventBuf`] (an owned event) and
//! [`Batch::encode`], which encodes events as the host does for the
//! plugin's `FIELDS`, so reading an undeclared field fails the test.
//!
//! # Runtime contract (what the export glue does)
//!
//! * `init(config)` calls [`Validator::init`] / [`Enricher::init`] and keeps
//!   the plugin in a thread-local `RefCell<Option<T>>` owned by the plugin
//!   crate. A later `init` replaces it; a failed `init` clears it. A
//!   successful `init` returns the plugin's `FIELDS`, with spans.
//! * A batch call (`validate` / `enrich`) before a successful `init` **traps**
//!   with the message `` sluice plugin: `validate` called before a successful
//!   `init` ``: no verdict would be right (accepting bypasses the plugin,
//!   rejecting drops data because of a host bug), so the host treats it as a
//!   plugin fault and applies the plugin's failure policy.
//! * A batch whose spans are not 16 numbers per event traps (a host fault),
//!   and so does reading a field the plugin did not declare (see [`Event`]).
//! * A panic in plugin code is a trap (components are built with
//!   `panic = "abort"`); prefer [`Verdict::reject`] / [`Enriched::failed`] for
//!   anything an event can cause.
//! * Every panic message (with its location) is also sent to the host log at
//!   error level, because plugins have no stderr: a panic hook installed on
//!   the first call into the component.

extern crate self as sluice_plugin_sdk;

mod batch;
mod error;
mod event;
mod fields;
pub mod log;
mod outcome;
mod patch;
mod plugin;
pub mod scan;
pub mod v0_1;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[path = "guest/mod.rs"]
pub mod __private;

pub use batch::{Batch, BatchError, Events};
pub use error::{PluginError, parse_config};
pub use event::{Event, EventBuf, JsonObject};
pub use fields::Fields;
pub use outcome::{Enriched, Verdict};
pub use patch::Patch;
pub use plugin::{Enricher, Validator};
/// The `serde_json` crate, re-exported so plugins need not depend on it.
pub use serde_json;
pub use serde_json::{Value, json};

/// Exports a [`Validator`] as this component's `sluice:plugin/validate@0.2.0`
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
            impl $crate::__private::v0_2::ValidatorSlot for $plugin {
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
            type SluiceValidatorExport = $crate::__private::v0_2::ValidatorExport<$plugin>;
            $crate::__private::v0_2::validator::export!(
                SluiceValidatorExport with_types_in $crate::__private::v0_2::validator
            );
        };
    };
}

/// Exports an [`Enricher`] as this component's `sluice:plugin/enrich@0.2.0`
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
            impl $crate::__private::v0_2::EnricherSlot for $plugin {
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
            type SluiceEnricherExport = $crate::__private::v0_2::EnricherExport<$plugin>;
            $crate::__private::v0_2::enricher::export!(
                SluiceEnricherExport with_types_in $crate::__private::v0_2::enricher
            );
        };
    };
}

/// Exports a 0.1 [`v0_1::Validator`] as this component's
/// `sluice:plugin/validate@0.1.0` interface. Invoke once, at the top level of the plugin crate.
///
/// On wasm32 this emits the component's exports and the thread-local slot
/// holding the initialised plugin; on other targets it only checks that the
/// type implements [`v0_1::Validator`].
#[macro_export]
macro_rules! export_validator_v0_1 {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements_validator<T: $crate::v0_1::Validator>() {}
            implements_validator::<$plugin>();
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            impl $crate::__private::v0_1::ValidatorSlot for $plugin {
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
            type SluiceValidatorExport = $crate::__private::v0_1::ValidatorExport<$plugin>;
            $crate::__private::v0_1::validator::export!(
                SluiceValidatorExport with_types_in $crate::__private::v0_1::validator
            );
        };
    };
}

/// Exports a 0.1 [`v0_1::Enricher`] as this component's
/// `sluice:plugin/enrich@0.1.0` interface. Invoke once, at the top level of the plugin crate.
///
/// On wasm32 this emits the component's exports and the thread-local slot
/// holding the initialised plugin; on other targets it only checks that the
/// type implements [`v0_1::Enricher`].
#[macro_export]
macro_rules! export_enricher_v0_1 {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements_enricher<T: $crate::v0_1::Enricher>() {}
            implements_enricher::<$plugin>();
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            impl $crate::__private::v0_1::EnricherSlot for $plugin {
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
            type SluiceEnricherExport = $crate::__private::v0_1::EnricherExport<$plugin>;
            $crate::__private::v0_1::enricher::export!(
                SluiceEnricherExport with_types_in $crate::__private::v0_1::enricher
            );
        };
    };
}
