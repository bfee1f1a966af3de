//! Everything `wasmtime::component::bindgen!` generates for the
//! `sluice:plugin@0.1.0` package, in one place. The rest of the host uses the
//! re-exports at the bottom, never the generated paths directly.

#![allow(missing_debug_implementations)]

/// The `validator` world.
pub mod validator {
    wasmtime::component::bindgen!({
        world: "validator",
        path: "../wit",
    });
}

/// The `enricher` world; shares `types` and `log` with the validator bindings
/// so one host implementation and one set of Rust types serve both.
pub mod enricher {
    wasmtime::component::bindgen!({
        world: "enricher",
        path: "../wit",
        with: {
            "sluice:plugin/types": super::validator::sluice::plugin::types,
            "sluice:plugin/log": super::validator::sluice::plugin::log,
        },
    });
}

pub use enricher::{Enricher, EnricherPre};
pub use validator::sluice::plugin::log::{Host as LogHost, Level};
pub use validator::sluice::plugin::types::{Enriched, Event, PluginError, Rejection, Verdict};
pub use validator::{Validator, ValidatorPre};
