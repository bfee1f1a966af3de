//! What the phases run: the three example plugins and their configurations,
//! loaded into the gateway's runtime (phase 1), and the chains of the setups
//! the throughput phase compares.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use sluice_plugin_host::chain::{ChainPlugin, TeamChain};
use sluice_plugin_host::registry::FailurePolicy;
use sluice_plugin_host::runtime::{CompiledPlugin, InstancePool, PluginKind, Runtime};

use super::{PluginInfo, PluginResults, memory_sample, probe};
use crate::workload::TEAM;

/// One example plugin: file stem, world, configuration used.
#[derive(Debug, Clone, Copy)]
pub struct PluginSpec {
    pub name: &'static str,
    pub kind: PluginKind,
    pub config: &'static str,
}

/// The chain of three, in the gateway's order (validators, then enrichers).
/// The configurations are realistic for the workload: every event has the
/// required properties and a browser user agent, so all are accepted, and
/// every event carries `context.ip`, so the scrubber changes every event.
pub const PLUGINS: [PluginSpec; 3] = [
    PluginSpec {
        name: "required_properties",
        kind: PluginKind::Validator,
        config: r#"{"required": {"*": ["product_id", "session_id"], "Checkout Started": ["price", "currency", "quantity"], "Product Added": ["sku", "price"]}}"#,
    },
    PluginSpec {
        name: "bot_filter",
        kind: PluginKind::Validator,
        config: "{}",
    },
    PluginSpec {
        name: "pii_scrubber",
        kind: PluginKind::Enricher,
        config: r#"{"mode": "hash", "salt": "bench-salt"}"#,
    },
];

/// The plugin setups the throughput phase compares.
pub const SETUPS: [(&str, &str); 5] = [
    ("none", "no plugins: the team has no chain"),
    (
        "convert",
        "empty chain: to_wit and back, no plugin called; unchanged events serialised as admitted",
    ),
    ("1", "required_properties"),
    ("3", "required_properties, bot_filter, pii_scrubber"),
    (
        "3, filtered",
        "the same three, pii_scrubber limited to `Checkout Started` (one event name in six) by an event filter",
    ),
];

/// The event name the `3, filtered` setup runs the scrubber on.
pub const FILTERED_EVENT: &str = "Checkout Started";

/// A loaded plugin, ready for the chain and for the probes.
pub(super) struct Loaded {
    pub(super) spec: PluginSpec,
    pub(super) chain: ChainPlugin,
}

/// The components of [`PLUGINS`], as uploaded, from `dir`.
pub(super) fn read_components(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    PLUGINS
        .iter()
        .map(|spec| {
            let path = dir.join(format!("{}.wasm", spec.name));
            std::fs::read(&path).with_context(|| {
                format!(
                    "reading {}; build the components with plugins/build.sh",
                    path.display()
                )
            })
        })
        .collect()
}

/// Phase 1 after `Runtime::new`: compiles each plugin, recording what it
/// costs, then a second copy of each, kept and dropped (the steady cost of
/// one more loaded plugin).
pub(super) fn compile(
    runtime: &Runtime,
    component_bytes: &[Vec<u8>],
    results: &mut PluginResults,
) -> anyhow::Result<Vec<CompiledPlugin>> {
    let mut compiled = Vec::new();
    for (spec, bytes) in PLUGINS.iter().zip(component_bytes) {
        let before = memory_sample("");
        let started = Instant::now();
        let plugin = runtime
            .compile(bytes, spec.kind)
            .with_context(|| format!("compiling {}", spec.name))?;
        let compile_ms = started.elapsed().as_secs_f64() * 1000.0;
        let after = memory_sample(&format!("{} compiled", spec.name));
        results.plugins.push(PluginInfo {
            name: spec.name.to_owned(),
            kind: spec.kind.as_str().to_owned(),
            config: spec.config.to_owned(),
            component_bytes: bytes.len() as u64,
            image_bytes: probe::image_bytes(&plugin) as u64,
            compile_ms,
            rss_first_compile_bytes: after.rss_bytes as i64 - before.rss_bytes as i64,
            rss_second_copy_bytes: 0,
        });
        results.memory.push(after);
        compiled.push(plugin);
    }
    let mut copies = Vec::new();
    for ((spec, bytes), info) in PLUGINS
        .iter()
        .zip(component_bytes)
        .zip(&mut results.plugins)
    {
        let before = memory_sample("");
        copies.push(runtime.compile(bytes, spec.kind)?);
        let after = memory_sample("");
        info.rss_second_copy_bytes = after.rss_bytes as i64 - before.rss_bytes as i64;
    }
    results
        .memory
        .push(memory_sample("second copy of each compiled and kept"));
    drop(copies);
    results.memory.push(memory_sample("second copies dropped"));
    Ok(compiled)
}

/// Each plugin as the chain holds it, with its own instance pool.
pub(super) fn loaded(runtime: &Runtime, compiled: &[CompiledPlugin]) -> Vec<Loaded> {
    PLUGINS
        .iter()
        .zip(compiled)
        .map(|(spec, compiled)| Loaded {
            spec: *spec,
            chain: ChainPlugin {
                tag: probe::tag(TEAM, spec.name),
                compiled: compiled.clone(),
                config: spec.config.into(),
                policy: FailurePolicy::Reject,
                stats: Default::default(),
                instances: Arc::new(InstancePool::new(runtime)),
                events: None,
            },
        })
        .collect()
}

/// The chains of [`SETUPS`], by name (`none`: the team has no chain).
pub(super) fn chains(loaded: &[Loaded]) -> Vec<(&'static str, Option<TeamChain>)> {
    vec![
        ("none", None),
        ("convert", Some(TeamChain::default())),
        (
            "1",
            Some(TeamChain {
                plugins: vec![loaded[0].chain.clone()],
            }),
        ),
        (
            "3",
            Some(TeamChain {
                plugins: loaded.iter().map(|l| l.chain.clone()).collect(),
            }),
        ),
        (
            "3, filtered",
            Some(TeamChain {
                plugins: loaded
                    .iter()
                    .map(|l| ChainPlugin {
                        events: (l.spec.kind == PluginKind::Enricher)
                            .then(|| Arc::new([FILTERED_EVENT.to_owned()].into())),
                        ..l.chain.clone()
                    })
                    .collect(),
            }),
        ),
    ]
}
