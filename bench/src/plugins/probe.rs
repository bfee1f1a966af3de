//! Small helpers over the runtime's own instance API (`Runtime::store`,
//! `Runtime::instantiate_in`, `PluginInstance`), so the benchmark times the
//! steps of a call separately on exactly the stores, limits and compiled
//! code the gateway uses.

use std::sync::Arc;

use sluice_plugin_host::bindings::Event;
use sluice_plugin_host::runtime::{CompiledPlugin, PluginInstance, PluginTag};

/// One call with `events` on a live instance, checked to return one result
/// per event; returns the number of results.
pub fn call(instance: &mut PluginInstance, events: &[Event]) -> anyhow::Result<usize> {
    let n = instance.call_once(events)?.len();
    anyhow::ensure!(n == events.len(), "{n} results for {} events", events.len());
    Ok(n)
}

/// A tag for the benchmark's team.
pub fn tag(team: &str, name: &str) -> PluginTag {
    PluginTag {
        team: Arc::from(team),
        name: Arc::from(name),
        version: Arc::from("1.0.0"),
    }
}

/// Length in bytes of a compiled component's code image in memory.
pub fn image_bytes(compiled: &CompiledPlugin) -> usize {
    let range = compiled.component().image_range();
    (range.end as usize).saturating_sub(range.start as usize)
}
