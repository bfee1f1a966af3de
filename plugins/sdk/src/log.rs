//! Logging through the host's `sluice:plugin/log` import.
//!
//! The host tags each line with the plugin's name, version and team and
//! rate-limits it, so log sparingly (per batch or per problem, not per event).
//! Outside wasm (native unit tests) lines go to standard error.
//!
//! ```
//! use sluice_plugin_sdk::log;
//!
//! log::info!("loaded {} rules", 3);
//! log::warn!("ignoring unknown mode {:?}", "fast");
//! log::log(log::Level::Debug, "plain message");
//! ```

#[doc(inline)]
pub use crate::{
    __sluice_log_debug as debug, __sluice_log_error as error, __sluice_log_info as info,
    __sluice_log_trace as trace, __sluice_log_warn as warn,
};

/// Severity of a log line (WIT enum `sluice:plugin/log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed diagnostics.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something is off but the plugin carries on.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// Lower-case name: `trace` … `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::__private::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[sluice plugin {}] {message}", level.as_str());
}

/// `log::trace!("format", args…)`
#[doc(hidden)]
#[macro_export]
macro_rules! __sluice_log_trace {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+))
    };
}

/// `log::debug!("format", args…)`
#[doc(hidden)]
#[macro_export]
macro_rules! __sluice_log_debug {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

/// `log::info!("format", args…)`
#[doc(hidden)]
#[macro_export]
macro_rules! __sluice_log_info {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

/// `log::warn!("format", args…)`
#[doc(hidden)]
#[macro_export]
macro_rules! __sluice_log_warn {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

/// `log::error!("format", args…)`
#[doc(hidden)]
#[macro_export]
macro_rules! __sluice_log_error {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}
