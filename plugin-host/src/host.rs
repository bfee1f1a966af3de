//! The plugin host as the gateway uses it: keeps every team's chain compiled
//! and current, and runs batches through them off the async workers.
//!
//! A sync task watches the registry: when a record changes it builds each
//! team's [`TeamChain`] from the versions this replica has compiled and swaps
//! the whole map in one step. A batch takes the team's chain once at its
//! start, so it runs against one consistent chain even while a new version
//! is being swapped in, and no request waits for a compile.
//!
//! Compiling is in the background, one component at a time (Cranelift
//! already uses every core for one): a TypeScript or Python component takes
//! seconds to tens of seconds, and neither an upload nor other teams' changes
//! wait for it. Until a new active version is compiled, the version the
//! chain ran before keeps running; a plugin new to the chain joins it when
//! compiled. Where a component stands on this replica ([`Load`]) is what the
//! admin API shows as `compiling`, `failed` or (compiled) `loading`/`active`.
//!
//! Readiness waits for the start: [`PluginHost::is_loaded`] is true once the
//! registry has been read and every plugin it activated has been compiled
//! (or failed to), so a restarted gateway never takes events its teams'
//! validators have not seen.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_core::{Limits, Timestamp};
use tokio::sync::{Notify, Semaphore};

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

/// Where a component stands on this replica.
#[derive(Debug, Clone)]
pub enum Load {
    /// Being compiled (or loaded from the artifact cache) in the background.
    Compiling,
    Ready(CompiledPlugin),
    /// Could not be compiled; kept while an active version refers to it, so
    /// a broken component is compiled once, not at every registry change.
    Failed(Arc<str>),
}

type LoadKey = (String, PluginKind);

#[derive(Debug)]
pub struct PluginHost {
    runtime: Arc<Runtime>,
    registry: Option<Arc<Registry>>,
    chains: RwLock<Chains>,
    loads: Mutex<HashMap<LoadKey, Load>>,
    /// Held while compiling: one compile at a time.
    compiling: Mutex<()>,
    /// Woken when a compile ends, so the chain is rebuilt at once.
    compiled: Notify,
    /// Set by the first rebuild that found every active plugin compiled or
    /// failed after the registry was read; never cleared.
    started: AtomicBool,
    stats: Mutex<HashMap<String, Arc<PluginStats>>>,
    /// One permit per pool slot: batches wait here, not in the allocator.
    slots: Arc<Semaphore>,
    /// Each team's share of `slots` (`max_instances_per_team`), taken first:
    /// a team whose batches are slow (a spinning plugin runs to its CPU
    /// budget) queues behind itself, and the other teams keep the rest.
    team_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_team: usize,
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
        let (slots, per_team) = (
            config.runtime.max_instances.max(1) as usize,
            config.runtime.per_team_slots() as usize,
        );
        // The share is derived from the cores unless configured: say what it
        // came to, since it decides how much CPU one team's plugins can take.
        tracing::info!(slots, per_team, "plugin slots");
        Ok(Arc::new(Self {
            slots: Arc::new(Semaphore::new(slots)),
            team_slots: Mutex::new(HashMap::new()),
            per_team,
            runtime,
            registry,
            chains: RwLock::new(Arc::new(HashMap::new())),
            loads: Mutex::new(HashMap::new()),
            compiling: Mutex::new(()),
            compiled: Notify::new(),
            started: AtomicBool::new(false),
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

    /// The registry is read and the plugins it activated are compiled (or
    /// failed): what readiness waits for.
    pub fn is_loaded(&self) -> bool {
        self.registry.is_none() || self.started.load(Ordering::Acquire)
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

    /// Where the component `sha256` stands on this replica, if it was ever
    /// asked for.
    pub fn load(&self, sha256: &str, kind: PluginKind) -> Option<Load> {
        self.loads
            .lock()
            .ok()?
            .get(&(sha256.to_owned(), kind))
            .cloned()
    }

    /// The component `sha256`, compiled, or where it stands: the first ask
    /// starts compiling it in the background from `bytes` (`None` while they
    /// have not all arrived: asked again at the next rebuild).
    pub fn prepare(
        self: &Arc<Self>,
        sha256: &str,
        kind: PluginKind,
        bytes: impl FnOnce() -> Option<anyhow::Result<Vec<u8>>>,
    ) -> Option<Load> {
        let key = (sha256.to_owned(), kind);
        if let Some(found) = self.loads.lock().ok()?.get(&key) {
            return Some(found.clone());
        }
        let bytes = match bytes()? {
            Ok(bytes) => bytes,
            Err(err) => return Some(self.finish(key, Err(format!("{err:#}")))),
        };
        {
            let mut loads = self.loads.lock().ok()?;
            if let Some(found) = loads.get(&key) {
                return Some(found.clone());
            }
            loads.insert(key.clone(), Load::Compiling);
        }
        metrics::gauge!(crate::metrics::PLUGIN_COMPILING).increment(1.0);
        let host = self.clone();
        let spawned = std::thread::Builder::new()
            .name("plugin-compile".to_owned())
            .spawn(move || {
                let result = {
                    let _one_at_a_time = host.compiling.lock();
                    host.runtime
                        .compile(&bytes, kind)
                        .map_err(|e| e.to_string())
                };
                host.finish(key, result);
                metrics::gauge!(crate::metrics::PLUGIN_COMPILING).decrement(1.0);
                host.compiled.notify_one();
            });
        if let Err(err) = spawned {
            metrics::gauge!(crate::metrics::PLUGIN_COMPILING).decrement(1.0);
            let key = (sha256.to_owned(), kind);
            return Some(self.finish(key, Err(format!("cannot start compiling: {err}"))));
        }
        Some(Load::Compiling)
    }

    fn finish(&self, key: LoadKey, result: Result<CompiledPlugin, String>) -> Load {
        let load = match result {
            Ok(compiled) => {
                metrics::counter!(crate::metrics::PLUGIN_LOADS, "result" => "ok").increment(1);
                Load::Ready(compiled)
            }
            Err(err) => {
                metrics::counter!(crate::metrics::PLUGIN_LOADS, "result" => "failed").increment(1);
                tracing::error!(sha256 = %key.0, kind = key.1.as_str(), error = %err, "cannot compile plugin");
                Load::Failed(Arc::from(err))
            }
        };
        if let Ok(mut loads) = self.loads.lock() {
            loads.insert(key, load.clone());
        }
        load
    }

    /// Rebuilds every team's chain from `records` and swaps them in.
    /// Plugins whose bytes have not arrived yet are left out until they do.
    /// Returns how many active plugins are still compiling.
    pub fn rebuild(self: &Arc<Self>, records: &[PluginRecord]) -> usize {
        let mut teams: HashMap<String, Vec<(bool, i32, String, ChainPlugin)>> = HashMap::new();
        let previous_pools = self.pools.lock().map(|p| p.clone()).unwrap_or_default();
        let previous_chains = self.chains.read().map(|c| c.clone()).ok();
        let mut pools = HashMap::new();
        let mut pending = 0usize;
        let mut wanted: HashSet<LoadKey> = HashSet::new();
        for record in records {
            metrics::gauge!(crate::metrics::PLUGIN_DISABLED, "team" => record.team_id.clone(), "plugin" => record.name.clone())
                .set(f64::from(u8::from(record.disabled.is_some())));
            if record.disabled.is_some() {
                continue;
            }
            let Some(version) = record.active() else {
                continue;
            };
            wanted.insert((version.sha256.clone(), record.kind));
            let registry = self.registry.clone();
            let load = self.prepare(&version.sha256, record.kind, || {
                registry.as_ref().and_then(|r| r.blob(version))
            });
            let compiled = match load {
                Some(Load::Ready(compiled)) => compiled,
                Some(Load::Compiling | Load::Failed(_)) => {
                    if matches!(load, Some(Load::Compiling)) {
                        pending += 1;
                    }
                    // The version that ran before keeps running until the
                    // new one is compiled (or when it cannot be, until the
                    // team rolls back or uploads a fixed one): a team's
                    // validation never lapses because of an upload.
                    if let Some(plugin) = running(previous_chains.as_ref(), record) {
                        teams.entry(record.team_id.clone()).or_default().push((
                            record.kind == PluginKind::Enricher,
                            record.order,
                            record.name.clone(),
                            plugin,
                        ));
                    }
                    continue;
                }
                // Bytes still arriving.
                None => continue,
            };
            let plugin = self.chain_plugin(record, version, compiled, &previous_pools, &mut pools);
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
        // Compiled code of versions nothing runs any more (replaced, rolled
        // back, deleted, disabled) is let go: kept, every upload would cost
        // each replica its machine code for good. Going back to one reloads
        // it from the artifact cache in milliseconds. A chain that still runs
        // an evicted version holds its own reference until it is replaced.
        if let Ok(mut loads) = self.loads.lock() {
            loads.retain(|key, load| wanted.contains(key) || matches!(load, Load::Compiling));
        }
        pending
    }

    /// `record`'s active `version`, compiled, as a link of its team's chain.
    /// Same version and configuration as before: it keeps its warm
    /// instances (rebuilds run every second, not only on changes).
    fn chain_plugin(
        &self,
        record: &PluginRecord,
        version: &crate::registry::VersionInfo,
        compiled: CompiledPlugin,
        previous_pools: &HashMap<PoolKey, Arc<InstancePool>>,
        pools: &mut HashMap<PoolKey, Arc<InstancePool>>,
    ) -> ChainPlugin {
        let tag = PluginTag {
            team: Arc::from(record.team_id.as_str()),
            name: Arc::from(record.name.as_str()),
            version: Arc::from(version.version.as_str()),
        };
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
        ChainPlugin {
            stats: self.stats_for(&tag),
            tag,
            compiled,
            config: Arc::from(record.config.as_str()),
            policy: record.policy,
            instances,
            events: (!record.events.is_empty())
                .then(|| Arc::new(record.events.iter().cloned().collect())),
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
            // Read before the records: if the registry was loaded then, these
            // records are all it had at the start.
            let loaded = registry.is_loaded();
            let records = registry.all();
            let host = self.clone();
            // Reading blobs and building chains: keep it off the workers.
            let pending = tokio::task::spawn_blocking(move || host.rebuild(&records)).await;
            if loaded && pending.is_ok_and(|n| n == 0) {
                self.started.store(true, Ordering::Release);
            }
            // Re-check at least every second: blob chunks may arrive after
            // the record that references them.
            tokio::select! {
                _ = changes.changed() => {}
                () = self.compiled.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Runs `events` through `chain` on the blocking pool.
    /// `limits`: the gateway's event rules, which an enricher's changed
    /// events must pass too.
    pub async fn run(
        self: &Arc<Self>,
        chain: Arc<TeamChain>,
        events: Vec<Event>,
        limits: Limits,
    ) -> anyhow::Result<Vec<Fate>> {
        // The team's own share first, so that waiting for it holds none of
        // the slots other teams use.
        let team_permit = self.team_slots(chain.team()).acquire_owned().await?;
        let permit = self.slots.clone().acquire_owned().await?;
        let host = self.clone();
        // The blocking thread continues the request's trace.
        let span = tracing::Span::current();
        let fates = tokio::task::spawn_blocking(move || {
            let _permits = (team_permit, permit);
            let _entered = span.enter();
            let on_failure = |plugin: &ChainPlugin, consecutive: u64, err: &CallError| {
                host.on_failure(plugin, consecutive, err);
            };
            chain.run(&host.runtime, events, &limits, &on_failure)
        })
        .await?;
        Ok(fates)
    }

    /// Plugin slots held by running batches now.
    pub fn busy_slots(&self) -> usize {
        self.runtime.config().max_instances.max(1) as usize - self.slots.available_permits()
    }

    fn team_slots(&self, team: &str) -> Arc<Semaphore> {
        let Ok(mut map) = self.team_slots.lock() else {
            return Arc::new(Semaphore::new(self.per_team));
        };
        // One per team that ever ran a batch here: teams are customers, a
        // few thousand at most, so they are kept rather than pruned.
        map.entry(team.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_team)))
            .clone()
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

/// The plugin `record` names as the current chain runs it, if it does.
fn running(chains: Option<&Chains>, record: &PluginRecord) -> Option<ChainPlugin> {
    let chain = chains?.get(&record.team_id)?;
    chain
        .plugins
        .iter()
        .find(|p| *p.tag.name == record.name)
        .cloned()
}
