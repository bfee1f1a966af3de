//! Export glue for wasm32 (not public API): the generated bindings of both
//! WIT versions, and what every export does first (route log lines to the
//! component's `log` import, install the panic hook).
//!
//! Each version's bindings live in its own module; wit-bindgen's
//! `pub_export_macro` mode makes that safe: the type section emitted at each
//! `generate!` describes only the world's imports (which `wit-component`
//! drops when unused); the full world, with its exports, is emitted by the
//! `export!` macro, i.e. only in the plugin crate that invokes one of the
//! SDK's export macros. So a 0.2 component neither exports nor imports
//! anything of 0.1, and the reverse: the log import a component uses is the
//! one its glue registers in [`enter`], the only code that names it.

use std::sync::{Once, OnceLock};

pub use wit_bindgen;

use crate::log::Level;

pub mod v0_1;
pub mod v0_2;

// About `unsafe_code = "forbid"` (workspace lint, this crate included): the
// code `generate!` emits in the version modules reads and writes guest
// memory through raw pointers and uses `#[unsafe(export_name)]` /
// `#[unsafe(link_section)]`, yet needs no `#[allow(unsafe_code)]`: rustc
// does not report lints inside the expansion of a macro defined in another
// crate (wit-bindgen's proc macro here; the SDK's export macros in plugin
// crates). Handwritten code stays under `forbid`. Should a future
// wit-bindgen trip the lint, set `unsafe_code = "deny"` in sdk/Cargo.toml
// and put `#[allow(unsafe_code)]` on exactly the `generate!` modules.

/// The component's log import, registered by the first export call.
static LOG: OnceLock<fn(Level, &str)> = OnceLock::new();

/// Sends one line to the host's `log` import (of the component's version).
pub(crate) fn log(level: Level, message: &str) {
    if let Some(log) = LOG.get() {
        log(level, message);
    }
}

/// What every export does first: registers `log` (the import of the
/// exported version) for [`log`], and makes every panic (a trap: components
/// abort on panic) also write its message and location to the host log at
/// error level, since the host gives plugins no stderr.
fn enter(log: fn(Level, &str)) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = LOG.set(log);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            self::log(Level::Error, &format!("plugin {info}"));
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
