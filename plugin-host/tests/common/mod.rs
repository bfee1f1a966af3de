//! Helpers shared by the plugin host's test suites: components from
//! `plugins/build.sh` (directory `SLUICE_PLUGINS_DIR`, default
//! `plugins/dist`), runtimes, events, one-shot runs in either WIT version.

// Each suite uses some of these.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use sluice_plugin_host::bindings::{Enriched, Event, Verdict, v0_2};
use sluice_plugin_host::chain::ChainPlugin;
use sluice_plugin_host::patch;
use sluice_plugin_host::registry::FailurePolicy;
use sluice_plugin_host::runtime::{
    BatchResults, CallError, InstancePool, PluginKind, PluginTag, Runtime, RuntimeSettings,
};

pub fn plugins_dir() -> PathBuf {
    std::env::var_os("SLUICE_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"))
}

pub fn component(name: &str) -> Vec<u8> {
    let path = plugins_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the plugins first: plugins/build.sh",
            path.display()
        )
    })
}

pub fn runtime() -> Runtime {
    runtime_with_cpu(100)
}

/// Tests about memory give the guest ample CPU, so on a loaded machine the
/// memory limit, not the CPU budget, is what stops it.
pub fn runtime_with_cpu(cpu_budget_ms: u64) -> Runtime {
    Runtime::new(RuntimeSettings {
        cpu_budget_ms,
        max_memory_bytes: 32 * 1024 * 1024,
        max_instances: 8,
        ..RuntimeSettings::default()
    })
    .unwrap()
}

pub fn tag(name: &str) -> PluginTag {
    PluginTag {
        team: Arc::from("team-a"),
        name: Arc::from(name),
        version: Arc::from("1.0.0"),
    }
}

pub fn event(i: usize, name: &str, properties: &str, context: Option<&str>) -> Event {
    Event {
        event_id: format!("0190d6a8-0000-7000-8000-{i:012}"),
        team_id: "team-a".into(),
        name: name.into(),
        user_id: format!("u{i}"),
        timestamp_ms: 1_800_000_000_000,
        received_at_ms: 1_800_000_000_000,
        schema_version: 1,
        properties: properties.into(),
        context: context.map(str::to_owned),
    }
}

/// Runs a component once (fresh instance, `init`, the batch), whichever
/// WIT version it was built for.
pub fn run(
    rt: &Runtime,
    name: &str,
    kind: PluginKind,
    config: &str,
    events: &[Event],
) -> Result<BatchResults, CallError> {
    let compiled = rt.compile(&component(name), kind).unwrap();
    assert_eq!(compiled.kind(), kind);
    rt.run_once(&compiled, &tag(name), config, events)
}

pub fn validate(
    rt: &Runtime,
    name: &str,
    config: &str,
    events: &[Event],
) -> Result<Vec<Verdict>, CallError> {
    match run(rt, name, PluginKind::Validator, config, events)? {
        BatchResults::Verdicts(verdicts) => Ok(verdicts),
        other => panic!("{other:?}"),
    }
}

/// An enricher's results as 0.1 shapes them: a 0.2 plugin's patches are
/// applied as the chain applies them (a patch the host refuses panics here).
pub fn enrich(
    rt: &Runtime,
    name: &str,
    config: &str,
    events: &[Event],
) -> Result<Vec<Enriched>, CallError> {
    Ok(match run(rt, name, PluginKind::Enricher, config, events)? {
        BatchResults::Enriched(results) => results,
        BatchResults::Patches(patches) => patches
            .into_iter()
            .zip(events)
            .map(|(result, event)| match result {
                v0_2::Enriched::Unchanged => Enriched::Unchanged,
                v0_2::Enriched::Patched(text) => {
                    Enriched::Changed(patch::apply(event, &text).unwrap())
                }
                v0_2::Enriched::Failed(reason) => Enriched::Failed(reason),
            })
            .collect(),
        other => panic!("{other:?}"),
    })
}

pub fn chain_of(
    rt: &Runtime,
    name: &str,
    kind: PluginKind,
    policy: FailurePolicy,
    config: &str,
) -> ChainPlugin {
    ChainPlugin {
        tag: tag(name),
        compiled: rt.compile(&component(name), kind).unwrap(),
        config: Arc::from(config),
        policy,
        stats: Arc::default(),
        instances: Arc::new(InstancePool::new(rt)),
        events: None,
    }
}
