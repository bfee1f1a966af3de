//! The plugin host as the gateway uses it: keeps every team's chain compiled
//! and current, and runs batches through them off the async workers.
//!
//! A sync task watches the registry: when a record changes it compiles any
//! new active version (compiled artifacts are cached by content hash), builds
//! each team's [`TeamChain`] and swaps the whole map in one step. A batch
//! takes the team's chain once at its start, so it runs against one
//! consistent chain even while a new version is being swapped in, and no
//! request waits for a compile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_core::Timestamp;
use tokio::sync::Semaphore;

use crate::bindings::Event;
use crate::chain::{ChainPlugin, Fate, TeamChain};
use crate::registry::{Disabled, PluginRecord, Registry};
use crate::runtime::{
    CallError, CompiledPlugin, InstancePool, PluginKind, PluginTag, Runtime, RuntimeSettings,
};
use crate::stats::PluginStats;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// Compacted topic of plugin records.
    pub topic: String,
    /// Compacted topic of component bytes.
    pub blobs_topic: String,
    /// Consecutive failed calls after which a plugin is disabled.
    pub disable_after_failures: u64,
    pub runtime: RuntimeSettings,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            topic: "sluice.plugins".to_owned(),
            blobs_topic: "sluice.plugin-blobs".to_owned(),
            disable_after_failures: 5,
            runtime: RuntimeSettings::default(),
        }
    }
}

type Chains = Arc<HashMap<String, Arc<TeamChain>>>;

#[derive(Debug)]
pub struct PluginHost {
    runtime: Arc<Runtime>,
    registry: Option<Arc<Registry>>,
    chains: RwLock<Chains>,
    compiled: Mutex<HashMap<(String, PluginKind), CompiledPlugin>>,
    stats: Mutex<HashMap<String, Arc<PluginStats>>>,
    /// One permit per pool slot: batches wait here, not in the allocator.
    slots: Arc<Semaphore>,
    /// Warm instances per (plugin version, component, configuration).
    pools: Mutex<HashMap<PoolKey, Arc<InstancePool>>>,
    disable_after: u64,
}

type PoolKey = (String, String, String);

fn stats_key(team: &str, name: &str, version: &str) -> String {
    format!("{team}/{name}@{version}")
}

impl PluginHost {
    /// A host backed by the shared registry in Kafka.
    pub fn new(
        config: &PluginSettings,
        registry: Option<Arc<Registry>>,
    ) -> anyhow::Result<Arc<Self>> {
        let runtime = Arc::new(Runtime::new(config.runtime.clone())?);
        Ok(Arc::new(Self {
            slots: Arc::new(Semaphore::new(config.runtime.max_instances.max(1) as usize)),
            runtime,
            registry,
            chains: RwLock::new(Arc::new(HashMap::new())),
            compiled: Mutex::new(HashMap::new()),
            stats: Mutex::new(HashMap::new()),
            pools: Mutex::new(HashMap::new()),
            disable_after: config.disable_after_failures.max(1),
        }))
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn registry(&self) -> Option<&Arc<Registry>> {
        self.registry.as_ref()
    }

    pub fn is_loaded(&self) -> bool {
        self.registry.as_ref().is_none_or(|r| r.is_loaded())
    }

    /// The team's current chain, if it has any active plugin.
    pub fn chain(&self, team: &str) -> Option<Arc<TeamChain>> {
        let chains = self.chains.read().ok()?.clone();
        chains.get(team).cloned()
    }

    pub fn stats(&self, team: &str, name: &str, version: &str) -> Option<Arc<PluginStats>> {
        self.stats
            .lock()
            .ok()?
            .get(&stats_key(team, name, version))
            .cloned()
    }

    fn stats_for(&self, tag: &PluginTag) -> Arc<PluginStats> {
        let key = stats_key(&tag.team, &tag.name, &tag.version);
        match self.stats.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Compiles (or fetches from the cache) a component.
    pub fn compiled(
        &self,
        sha256: &str,
        kind: PluginKind,
        bytes: impl FnOnce() -> Option<anyhow::Result<Vec<u8>>>,
    ) -> Option<anyhow::Result<CompiledPlugin>> {
        let key = (sha256.to_owned(), kind);
        if let Some(found) = self.compiled.lock().ok()?.get(&key) {
            return Some(Ok(found.clone()));
        }
        let bytes = match bytes()? {
            Ok(bytes) => bytes,
            Err(err) => return Some(Err(err)),
        };
        let compiled = match self.runtime.compile(&bytes, kind) {
            Ok(compiled) => compiled,
            Err(err) => return Some(Err(err.into())),
        };
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(key, compiled.clone());
        }
        Some(Ok(compiled))
    }

    /// Rebuilds every team's chain from `records` and swaps them in.
    /// Plugins whose bytes have not arrived yet are left out until they do.
    pub fn rebuild(&self, records: &[PluginRecord]) {
        let mut teams: HashMap<String, Vec<(bool, i32, String, ChainPlugin)>> = HashMap::new();
        let previous_pools = self.pools.lock().map(|p| p.clone()).unwrap_or_default();
        let mut pools = HashMap::new();
        for record in records {
            metrics::gauge!(crate::metrics::PLUGIN_DISABLED, "team" => record.team_id.clone(), "plugin" => record.name.clone())
                .set(f64::from(u8::from(record.disabled.is_some())));
            if record.disabled.is_some() {
                continue;
            }
            let Some(version) = record.active() else {
                continue;
            };
            let registry = self.registry.clone();
            let compiled = self.compiled(&version.sha256, record.kind, || {
                registry.as_ref().and_then(|r| r.blob(version))
            });
            let compiled = match compiled {
                Some(Ok(compiled)) => compiled,
                Some(Err(err)) => {
                    tracing::error!(team = %record.team_id, plugin = %record.name, version = %version.version, error = %err, "cannot load plugin");
                    continue;
                }
                None => continue,
            };
            let tag = PluginTag {
                team: Arc::from(record.team_id.as_str()),
                name: Arc::from(record.name.as_str()),
                version: Arc::from(version.version.as_str()),
            };
            // Same version and configuration as before: keep its warm
            // instances (this runs every second, not only on changes).
            let pool_key = (
                stats_key(&tag.team, &tag.name, &tag.version),
                version.sha256.clone(),
                record.config.clone(),
            );
            let instances = previous_pools
                .get(&pool_key)
                .cloned()
                .unwrap_or_else(|| Arc::new(InstancePool::new(&self.runtime)));
            pools.insert(pool_key, instances.clone());
            let plugin = ChainPlugin {
                stats: self.stats_for(&tag),
                tag,
                compiled,
                config: Arc::from(record.config.as_str()),
                policy: record.policy,
                instances,
                events: (!record.events.is_empty())
                    .then(|| Arc::new(record.events.iter().cloned().collect())),
            };
            teams.entry(record.team_id.clone()).or_default().push((
                record.kind == PluginKind::Enricher,
                record.order,
                record.name.clone(),
                plugin,
            ));
        }
        let chains: HashMap<String, Arc<TeamChain>> = teams
            .into_iter()
            .map(|(team, mut plugins)| {
                plugins.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
                let plugins = plugins.into_iter().map(|p| p.3).collect();
                (team, Arc::new(TeamChain { plugins }))
            })
            .collect();
        if let Ok(mut current) = self.chains.write() {
            *current = Arc::new(chains);
        }
        // Pools of plugins no longer active go with the last chain using them.
        if let Ok(mut current) = self.pools.lock() {
            *current = pools;
        }
    }

    /// Installs chains directly (tests and single-process development).
    pub fn set_chain(&self, team: &str, chain: TeamChain) {
        if let Ok(mut current) = self.chains.write() {
            let mut next = (**current).clone();
            next.insert(team.to_owned(), Arc::new(chain));
            *current = Arc::new(next);
        }
    }

    /// Keeps chains in step with the registry until the host is dropped.
    pub async fn sync(self: Arc<Self>) {
        let Some(registry) = self.registry.clone() else {
            return;
        };
        let mut changes = registry.changes();
        loop {
            let records = registry.all();
            let host = self.clone();
            // Compiling takes milliseconds to seconds; keep it off the workers.
            let _ = tokio::task::spawn_blocking(move || host.rebuild(&records)).await;
            // Re-check at least every second: blob chunks may arrive after
            // the record that references them.
            let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
        }
    }

    /// Runs `events` through `chain` on the blocking pool.
    pub async fn run(
        self: &Arc<Self>,
        chain: Arc<TeamChain>,
        events: Vec<Event>,
    ) -> anyhow::Result<Vec<Fate>> {
        let permit = self.slots.clone().acquire_owned().await?;
        let host = self.clone();
        // The blocking thread continues the request's trace.
        let span = tracing::Span::current();
        let fates = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _entered = span.enter();
            let on_failure = |plugin: &ChainPlugin, consecutive: u64, err: &CallError| {
                host.on_failure(plugin, consecutive, err);
            };
            chain.run(&host.runtime, events, &on_failure)
        })
        .await?;
        Ok(fates)
    }

    fn on_failure(&self, plugin: &ChainPlugin, consecutive: u64, err: &CallError) {
        if consecutive != self.disable_after {
            return;
        }
        let Some(registry) = self.registry.clone() else {
            return;
        };
        let (team, name, version) = (
            plugin.tag.team.to_string(),
            plugin.tag.name.to_string(),
            plugin.tag.version.to_string(),
        );
        let reason = format!("disabled after {consecutive} consecutive failures; last: {err}");
        tracing::error!(%team, plugin = %name, %version, %reason, "disabling plugin");
        // Writing the registry is async; this runs on a blocking thread.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let Some(mut record) = registry.get(&team, &name) else { return };
            if record.active_version.as_deref() != Some(version.as_str()) || record.disabled.is_some() {
                return;
            }
            record.disabled = Some(Disabled { reason, at: Timestamp::now() });
            if let Err(err) = registry.put(&record).await {
                tracing::error!(%team, plugin = %name, error = %err, "could not record the plugin as disabled");
            }
        });
    }
}
