//! Everything `wasmtime::component::bindgen!` generates for the
//! `sluice:plugin` WIT packages, in one place. The rest of the host uses the
//! re-exports, never the generated paths directly.
//!
//! Two versions are linked side by side (`wit/README.md` says why and how
//! they evolve): a component built for `0.1.0` keeps working unchanged next
//! to one built for `0.2.0`. The chain works on the 0.1 `Event` record (every
//! field, owned); 0.2 calls encode it into their one-text `Batch`.

#![allow(missing_debug_implementations)]

/// The 0.1 `validator` world.
pub mod validator {
    wasmtime::component::bindgen!({
        world: "validator",
        path: "../wit/0.1.0",
        // Tests compare events (the chain's working type).
        additional_derives: [PartialEq, Eq],
    });
}

/// The 0.1 `enricher` world; shares `types` and `log` with the validator
/// bindings so one host implementation and one set of Rust types serve both.
pub mod enricher {
    wasmtime::component::bindgen!({
        world: "enricher",
        path: "../wit/0.1.0",
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

/// `sluice:plugin@0.2.0`: one JSON text per batch, declared fields, patches.
pub mod v0_2 {
    /// The 0.2 `validator` world.
    pub mod validator {
        wasmtime::component::bindgen!({
            world: "validator",
            path: "../wit/0.2.0",
        });
    }

    /// The 0.2 `enricher` world, sharing `types` and `log` with the validator.
    pub mod enricher {
        wasmtime::component::bindgen!({
            world: "enricher",
            path: "../wit/0.2.0",
            with: {
                "sluice:plugin/types": super::validator::sluice::plugin::types,
                "sluice:plugin/log": super::validator::sluice::plugin::log,
            },
        });
    }

    pub use enricher::{Enricher, EnricherPre};
    pub use validator::sluice::plugin::log::{Host as LogHost, Level};
    pub use validator::sluice::plugin::types::{
        Batch, Enriched, Fields, Needs, PluginError, Rejection, Verdict,
    };
    pub use validator::{Validator, ValidatorPre};
}
