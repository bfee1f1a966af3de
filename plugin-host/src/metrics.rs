//! The plugin host's Prometheus metrics. The names keep the `sluice_gateway_`
//! prefix they had before the host became a crate of its own: the gateway is
//! the process that exports them, and operators' dashboards use these names.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram, gauge};

pub const PLUGIN_DISABLED: &str = "sluice_gateway_plugin_disabled";
pub const PLUGIN_CALLS: &str = "sluice_gateway_plugin_calls_total";
pub const PLUGIN_DURATION: &str = "sluice_gateway_plugin_duration_seconds";
pub const PLUGIN_IDLE_INSTANCES: &str = "sluice_gateway_plugin_idle_instances";
pub const PLUGIN_INSTANCES_CREATED: &str = "sluice_gateway_plugin_instances_created_total";
pub const PLUGIN_ARTIFACTS: &str = "sluice_gateway_plugin_artifacts_total";
pub const PLUGIN_COMPILE_DURATION: &str = "sluice_gateway_plugin_compile_seconds";
pub const PLUGIN_COMPILING: &str = "sluice_gateway_plugins_compiling";
pub const PLUGIN_LOADS: &str = "sluice_gateway_plugin_loads_total";
pub const PLUGIN_LOG_DROPPED: &str = "sluice_gateway_plugin_log_lines_dropped_total";

/// Registers help texts. Idempotent.
pub fn describe() {
    describe_counter!(
        PLUGIN_LOG_DROPPED,
        "Plugin log lines dropped by the per-call or per-minute limit, per team and plugin."
    );
    describe_gauge!(
        PLUGIN_DISABLED,
        "1 when a team's plugin is disabled (automatically or by an operator)."
    );
    describe_counter!(
        PLUGIN_CALLS,
        "Plugin calls by kind and result (ok, failed)."
    );
    describe_histogram!(
        PLUGIN_DURATION,
        Unit::Seconds,
        "Time of one plugin on one batch (all its calls), instantiation included when no instance was idle."
    );
    describe_gauge!(
        PLUGIN_IDLE_INSTANCES,
        "Initialised plugin instances parked for reuse, all plugins."
    );
    describe_counter!(
        PLUGIN_INSTANCES_CREATED,
        "Plugin instances created (and initialised) because none was idle."
    );
    describe_counter!(
        PLUGIN_ARTIFACTS,
        "Compiled-component cache lookups by result: hit, miss, rejected (failed its integrity check; compiled anew)."
    );
    describe_histogram!(
        PLUGIN_COMPILE_DURATION,
        Unit::Seconds,
        "Time to compile one component (cache misses only)."
    );
    describe_gauge!(
        PLUGIN_COMPILING,
        "Uploaded components this replica is compiling (or loading from the artifact cache) in the background."
    );
    describe_counter!(
        PLUGIN_LOADS,
        "Components made ready to run on this replica, by result: ok, failed (the plugin shows `failed`)."
    );
}

/// Sets the gauges that are sampled rather than updated as they change:
/// `idle_instances` from [`Runtime::idle_instances`](crate::runtime::Runtime::idle_instances).
pub fn sample(idle_instances: u32) {
    gauge!(PLUGIN_IDLE_INSTANCES).set(f64::from(idle_instances));
}
