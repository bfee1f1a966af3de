//! Structured logging and Prometheus metrics.
//!
//! Logging: Every service logs to stderr: JSON lines in production
//! (`SLUICE_LOG_FORMAT=json`), human-readable text otherwise. The level filter
//! comes from `RUST_LOG` (default `info`). [`crate::trace::init`] installs
//! it together with OpenTelemetry tracing.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt;
use tracing_subscriber::registry::LookupSpan;

/// The log output as a layer, for [`crate::trace::init`], which installs it
/// (with the `RUST_LOG` filter) next to the OpenTelemetry layer.
pub fn log_layer<S>() -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let json = std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let layer = fmt::layer().with_writer(std::io::stderr);
    if json {
        layer.json().flatten_event(true).boxed()
    } else {
        layer.boxed()
    }
}

/// Latency buckets (seconds) for every histogram: fine below 10 ms, where the
/// gateway's own processing lives, coarse up to the 10 s delivery timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use. Every
/// service renders `GET /metrics` from this handle. Several services in one
/// process (as in tests) share it.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first (e.g. by an
        // embedding application); metrics then go there instead.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
