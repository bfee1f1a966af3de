//! Structured logging. Every service logs to stderr: JSON lines in production
//! (`SLUICE_LOG_FORMAT=json`), human-readable text otherwise. The level filter
//! comes from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `try_init` so tests that call this twice do not panic.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
