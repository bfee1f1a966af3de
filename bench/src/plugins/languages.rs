//! The same plugin in Rust, TypeScript and Python: what each costs to take
//! into service and to run. A TypeScript or Python component carries its
//! interpreter (SpiderMonkey, CPython), so it is large, compiles slowly and
//! runs its guest code interpreted; these rows say how much, on the same
//! batch and the same runtime limits as the gateway.
//!
//! Per build of `required-properties` (`NAME.wasm`, `ts_NAME.wasm`,
//! `py_NAME.wasm`; a missing build is skipped):
//! - *compile*: Cranelift on an empty artifact cache (a cold replica's
//!   upload), and *load*: the same component from the artifact cache (a
//!   restart), both through `Runtime::compile`;
//! - *instantiate + init*: a fresh instance made ready, mean;
//! - *events/s per core*: the plugin stage alone on the measuring thread's
//!   CPU time, with a fresh instance per batch and with one reused instance
//!   (the pool, as the chain runs it);
//! - *idle memory*: resident growth per instance while N instances are
//!   held, each after one batch (what a parked instance costs).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sluice_plugin_host::bindings::Event;
use sluice_plugin_host::runtime::{
    InstancePool, PluginInstance, PluginKind, Runtime, RuntimeSettings,
};

use super::{ThreadCpu, memory_sample, probe};

/// The plugin measured in every language, and its configuration.
const PLUGIN: &str = "required_properties";
const CONFIG: &str = r#"{"required": {"Signed Up": ["plan"], "*": ["app_version"]}}"#;
const LANGUAGES: [(&str, &str); 3] = [("Rust", ""), ("TypeScript", "ts_"), ("Python", "py_")];

/// One language's build of the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageRow {
    pub plugin: String,
    pub language: String,
    pub component_bytes: usize,
    pub compile_s: f64,
    pub load_ms: f64,
    pub instantiate_init_ms: f64,
    pub batch: usize,
    pub fresh_events_per_s: f64,
    pub reused_events_per_s: f64,
    pub instances: usize,
    pub idle_kib_per_instance: f64,
}

/// Measures every build found in `components` on `events`.
pub fn measure(
    components: &Path,
    settings: &RuntimeSettings,
    events: &[Event],
    time: Duration,
    instances: usize,
) -> anyhow::Result<Vec<LanguageRow>> {
    let mut rows = Vec::new();
    for (language, prefix) in LANGUAGES {
        let path = components.join(format!("{prefix}{PLUGIN}.wasm"));
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("  {}: not built, skipped", path.display());
            continue;
        };
        eprintln!("  {language}: {} bytes", bytes.len());
        rows.push(measure_one(
            language, &bytes, settings, events, time, instances,
        )?);
    }
    Ok(rows)
}

fn measure_one(
    language: &str,
    bytes: &[u8],
    settings: &RuntimeSettings,
    events: &[Event],
    time: Duration,
    instances: usize,
) -> anyhow::Result<LanguageRow> {
    let cache = std::env::temp_dir().join(format!("sluice-bench-artifacts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cached = RuntimeSettings {
        artifact_dir: cache.to_string_lossy().into_owned(),
        ..settings.clone()
    };
    // A cold replica: nothing cached, Cranelift compiles.
    let started = Instant::now();
    Runtime::new(cached.clone())?.compile(bytes, PluginKind::Validator)?;
    let compile_s = started.elapsed().as_secs_f64();
    // A restart: another engine, the artifact on disk.
    let runtime = Runtime::new(cached)?;
    let started = Instant::now();
    let compiled = runtime.compile(bytes, PluginKind::Validator)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        runtime.artifact_counts().is_some_and(|c| c.hits == 1),
        "{language}: the restart did not load the cached artifact"
    );
    let _ = std::fs::remove_dir_all(&cache);

    let tag = probe::tag(super::TEAM, PLUGIN);
    let fresh = || -> anyhow::Result<PluginInstance> {
        let mut instance = runtime.instantiate(&compiled, &tag)?;
        instance.init(CONFIG)?;
        Ok(instance)
    };
    let cpu = ThreadCpu::open();
    let per_core = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<(f64, f64)> {
        f()?; // warm
        let (c0, started) = (cpu.ns(), Instant::now());
        let mut calls = 0u32;
        while calls < 5 || started.elapsed() < time {
            f()?;
            calls += 1;
        }
        let cpu_s = cpu.ns().saturating_sub(c0) as f64 / 1e9;
        Ok((cpu_s / f64::from(calls), f64::from(calls)))
    };
    let (init_s, _) = per_core(&mut || fresh().map(drop))?;
    let (fresh_s, _) = per_core(&mut || {
        let results = fresh()?.run_batch(runtime.config(), events)?;
        anyhow::ensure!(results.len() == events.len(), "{language}: wrong count");
        Ok(())
    })?;
    let pool = InstancePool::new(&runtime);
    let (reused_s, _) = per_core(&mut || {
        let results = runtime.run_batch(&compiled, &pool, &tag, CONFIG, events)?;
        anyhow::ensure!(results.len() == events.len(), "{language}: wrong count");
        Ok(())
    })?;
    drop(pool);

    let before = memory_sample("before");
    let mut live = Vec::with_capacity(instances);
    for _ in 0..instances {
        let mut instance = fresh()?;
        instance.run_batch(runtime.config(), events)?;
        live.push(instance);
    }
    let after = memory_sample("after");
    drop(live);
    let grown = after.rss_bytes.saturating_sub(before.rss_bytes) as f64;

    Ok(LanguageRow {
        plugin: PLUGIN.to_owned(),
        language: language.to_owned(),
        component_bytes: bytes.len(),
        compile_s,
        load_ms,
        instantiate_init_ms: init_s * 1e3,
        batch: events.len(),
        fresh_events_per_s: events.len() as f64 / fresh_s,
        reused_events_per_s: events.len() as f64 / reused_s,
        instances,
        idle_kib_per_instance: grown / 1024.0 / instances.max(1) as f64,
    })
}
