//! The Wasm runtime: one engine per gateway, components compiled once per
//! upload, instances bounded in CPU and memory and reused across batches.
//!
//! - **Compile once**: [`Runtime::compile`] turns component bytes into a
//!   [`CompiledPlugin`] holding an `InstancePre` (imports resolved, exports
//!   type-checked against the world), so a call only instantiates.
//! - **Pooling allocator**: instance memories and tables come from
//!   pre-reserved slots; instantiation is a few microseconds and no `mmap`.
//! - **Reuse, in small calls**: [`Runtime::run_batch`] takes an initialised
//!   instance from the plugin's [`InstancePool`] (or makes one: store,
//!   instantiate, `init(config)`), hands it the batch in calls of at most
//!   `max_events_per_call` events / `max_bytes_per_call` bytes, and parks it
//!   again. Small calls keep a guest's heap small (it reuses the memory of the
//!   previous call), so an idle instance holds little; reuse saves `init` and
//!   the page faults of a fresh linear memory on every batch. An instance
//!   that failed in any way is dropped, never parked.
//! - **CPU**: epoch interruption. A ticker thread advances the engine's epoch
//!   every [`EPOCH_TICK`]; at each tick a running guest's store checks the
//!   *CPU time* its thread spent on the batch (all calls of one plugin on one
//!   batch) and interrupts it past `cpu_budget_ms`, or past ten times that in
//!   wall-clock time. CPU time rather than elapsed time, so a plugin is not
//!   failed (and eventually disabled) because the machine is busy. (Fuel
//!   would be exact but costs far more per instruction.)
//! - **Memory**: a `ResourceLimiter` per store caps linear memory growth; a
//!   failed `memory.grow` is reported to the guest, whose allocator then
//!   traps, which we contain like any trap.
//! - **Capabilities**: WASI p2 is linked because Rust's std imports it, but
//!   with an empty context: no preopened directories, no environment, no
//!   sockets, no inherited stdio. The only real import is `log`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy, Store,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtx;

mod artifacts;
mod check;
mod instance;
pub mod logs;
mod pool;
mod state;

pub use artifacts::ArtifactCounts;
use artifacts::{ArtifactCache, Lookup};
pub use check::check;
use instance::Exports;
pub use instance::{BatchResults, PluginInstance};
pub use pool::InstancePool;
use state::Budget;
pub use state::PluginState;

use crate::bindings::{self, Event, v0_2};

/// How often the epoch advances; the granularity of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A call may run this many times its CPU budget in elapsed time before it is
/// interrupted anyway (a thread starved of CPU for that long is an incident,
/// not a plugin's fault, but nothing may hold a batch forever).
const WALL_CLOCK_FACTOR: u32 = 10;

/// An instance whose linear memory grew by more than this since it was
/// created is dropped after its batch instead of kept idle: whatever it
/// allocated, it would keep resident.
pub const MAX_IDLE_GROWTH_BYTES: usize = 2 * 1024 * 1024;

/// Limits applied to every plugin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSettings {
    /// CPU time one plugin may spend on one batch (all its calls for it).
    pub cpu_budget_ms: u64,
    /// Largest linear memory one plugin instance may grow to.
    pub max_memory_bytes: usize,
    /// Largest component accepted for upload.
    pub max_component_bytes: usize,
    /// Plugin chains running at once (each uses one instance at a time);
    /// batches beyond wait.
    pub max_instances: u32,
    /// Of those, the most one team's batches may hold at once; its further
    /// batches wait for its own slots, never for other teams'. Also bounds
    /// the cores one team's plugins keep busy. 0 (the default): half the
    /// cores this process may use, at least 1 ([`Self::per_team_slots`]).
    pub max_instances_per_team: u32,
    /// Initialised instances kept idle for reuse, over all plugins; 0 makes
    /// every batch use a fresh instance.
    pub max_idle_instances: u32,
    /// Most events handed to a plugin in one call; a larger batch is split.
    pub max_events_per_call: usize,
    /// Most event bytes (properties + context + ids) handed over in one call.
    pub max_bytes_per_call: usize,
    /// Log lines a plugin may write per batch; the rest are dropped and counted.
    pub max_log_lines_per_call: u32,
    /// Log lines one plugin (all its instances and versions on a replica)
    /// may write per minute; the rest are dropped and counted.
    pub max_log_lines_per_minute: u32,
    /// Writes `/tmp/perf-<pid>.map` naming the compiled plugin code, so that
    /// `perf record` / `perf report` attribute samples to plugin functions
    /// instead of anonymous addresses. Off by default: the file grows with
    /// every compiled upload and is never pruned.
    pub perf_map: bool,
    /// Directory of compiled components (see `artifacts.rs`), shared by
    /// restarts and by replicas on one volume; empty: compile every
    /// component at every start.
    pub artifact_dir: String,
    /// Secret that signs the artifacts (the same on every replica sharing
    /// `artifact_dir`); empty: a key file made inside `artifact_dir`.
    pub artifact_key: String,
}

impl RuntimeSettings {
    /// How many plugin slots one team's batches may hold at once.
    ///
    /// The default is half the cores, not a fixed number, because a slot
    /// held by a plugin spinning to its CPU budget is a busy core: with 8
    /// slots per team on 2 cores, one team's spinning plugin moved another
    /// team's p99 1.8 times, with 1 slot 1.13 times (docs/benchmarks.md, "A
    /// hostile neighbour"). Half leaves the other half to every other team
    /// and to ingest itself, and still lets one busy team use a big machine.
    pub fn per_team_slots(&self) -> u32 {
        let wanted = match self.max_instances_per_team {
            0 => std::thread::available_parallelism().map_or(1, |cores| {
                u32::try_from(cores.get() / 2).unwrap_or(u32::MAX)
            }),
            n => n,
        };
        wanted.clamp(1, self.max_instances.max(1))
    }
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            cpu_budget_ms: 100,
            max_memory_bytes: 64 * 1024 * 1024,
            max_component_bytes: 32 * 1024 * 1024,
            max_instances: 64,
            max_instances_per_team: 0,
            max_idle_instances: 64,
            max_events_per_call: 128,
            max_bytes_per_call: 64 * 1024,
            max_log_lines_per_call: 100,
            max_log_lines_per_minute: 600,
            perf_map: false,
            artifact_dir: String::new(),
            artifact_key: String::new(),
        }
    }
}

pub use crate::kind::PluginKind;

/// Why a component cannot be used. Each maps to a specific 4xx at upload.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("component is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "not a WebAssembly component (a core module or other bytes); build with --target wasm32-wasip2"
    )]
    NotAComponent,
    #[error("not a valid component: {0}")]
    Invalid(String),
    #[error(
        "component implements neither sluice:plugin@0.2.0 nor @0.1.0 `{expected}` world: {detail}"
    )]
    WrongWorld {
        expected: &'static str,
        detail: String,
    },
    #[error("component failed to compile: {0}")]
    Compile(String),
}

/// Who a store belongs to, for log lines.
#[derive(Debug, Clone)]
pub struct PluginTag {
    pub team: Arc<str>,
    pub name: Arc<str>,
    pub version: Arc<str>,
}

/// A compiled, linked plugin, ready to instantiate: a kind, in the WIT
/// version the component was built for.
#[derive(Clone)]
pub enum CompiledPlugin {
    Validator(bindings::ValidatorPre<PluginState>),
    Enricher(bindings::EnricherPre<PluginState>),
    ValidatorV2(v0_2::ValidatorPre<PluginState>),
    EnricherV2(v0_2::EnricherPre<PluginState>),
}

impl std::fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CompiledPlugin({} @{})",
            self.kind().as_str(),
            self.wit_version()
        )
    }
}

impl CompiledPlugin {
    pub fn kind(&self) -> PluginKind {
        match self {
            Self::Validator(_) | Self::ValidatorV2(_) => PluginKind::Validator,
            Self::Enricher(_) | Self::EnricherV2(_) => PluginKind::Enricher,
        }
    }

    /// The `sluice:plugin` version the component implements.
    pub fn wit_version(&self) -> &'static str {
        match self {
            Self::Validator(_) | Self::Enricher(_) => "0.1.0",
            Self::ValidatorV2(_) | Self::EnricherV2(_) => "0.2.0",
        }
    }

    /// The compiled component (for tools that inspect its code).
    pub fn component(&self) -> &Component {
        match self {
            Self::Validator(pre) => pre.instance_pre().component(),
            Self::Enricher(pre) => pre.instance_pre().component(),
            Self::ValidatorV2(pre) => pre.instance_pre().component(),
            Self::EnricherV2(pre) => pre.instance_pre().component(),
        }
    }
}

/// How a call failed. All are contained: the gateway keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("exceeded its CPU budget of {0} ms")]
    CpuBudget(u64),
    #[error("ran for {0} ms of elapsed time without finishing")]
    WallClock(u64),
    #[error("exceeded its memory limit or trapped while allocating: {0}")]
    Memory(String),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("rejected its configuration: {0}")]
    InvalidConfig(String),
    #[error("returned {got} results for {expected} events")]
    WrongLength { expected: usize, got: usize },
    #[error("broke the contract: {0}")]
    Contract(String),
    #[error("no instance slot free: {0}")]
    Capacity(String),
    #[error("tried to block ({0}); plugins may not wait (no sleeps, timers or polls)")]
    Blocked(String),
}

impl CallError {
    /// The resource limit the call ran into, if that is why it failed.
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            Self::CpuBudget(_) | Self::WallClock(_) => Some("cpu"),
            Self::Memory(_) => Some("memory"),
            Self::Capacity(_) => Some("instances"),
            Self::Blocked(_) => Some("blocking"),
            _ => None,
        }
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    config: RuntimeSettings,
    /// Instances parked in any [`InstancePool`]; at most `max_idle_instances`.
    idle: Arc<AtomicU32>,
    ticker_stop: Arc<AtomicBool>,
    artifacts: Option<ArtifactCache>,
    /// Every plugin's log lines this minute ([`logs`]).
    logs: Arc<logs::LogGate>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("idle", &self.idle.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn to_anyhow(err: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{err:?}")
}

/// A store made by [`Runtime::store`], not yet holding an instance.
pub struct PluginStore(Store<PluginState>);

impl std::fmt::Debug for PluginStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PluginStore").field(self.0.data()).finish()
    }
}

impl Runtime {
    pub fn new(config: RuntimeSettings) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        // Running instances (one per running chain) plus the idle ones.
        let instances = config.max_instances.max(1) + config.max_idle_instances;
        pool.total_component_instances(instances)
            // Rust wasip2 components hold a handful of core instances each.
            .max_core_instances_per_component(16)
            .total_core_instances(instances * 16)
            .max_memories_per_component(4)
            .total_memories(instances * 4)
            .max_tables_per_component(8)
            .total_tables(instances * 8)
            .max_memory_size(config.max_memory_bytes);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if config.perf_map {
            wasm.profiler(ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm).map_err(to_anyhow)?;

        let mut linker = Linker::<PluginState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(to_anyhow)?;
        bindings::validator::sluice::plugin::log::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(to_anyhow)?;
        v0_2::validator::sluice::plugin::log::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(to_anyhow)?;
        state::refuse_blocking(&mut linker).map_err(to_anyhow)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (weak, stop) = (engine.weak(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("wasm-epoch".to_owned())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        let artifacts = match config.artifact_dir.as_str() {
            "" => None,
            dir => Some(
                ArtifactCache::open(
                    std::path::Path::new(dir),
                    Some(config.artifact_key.as_str()),
                    &engine,
                )
                .map_err(|e| anyhow::anyhow!("plugins.runtime.artifact_dir {dir}: {e}"))?,
            ),
        };
        Ok(Self {
            artifacts,
            engine,
            linker,
            config,
            idle: Arc::new(AtomicU32::new(0)),
            ticker_stop,
            logs: Arc::new(logs::LogGate::default()),
        })
    }

    pub fn config(&self) -> &RuntimeSettings {
        &self.config
    }

    /// How the compiled-component cache served this runtime (`None`: no
    /// `artifact_dir`).
    pub fn artifact_counts(&self) -> Option<ArtifactCounts> {
        self.artifacts.as_ref().map(ArtifactCache::counts)
    }

    /// Instances parked for reuse, over all plugins.
    pub fn idle_instances(&self) -> u32 {
        self.idle.load(Ordering::Relaxed)
    }

    /// Validates and compiles `bytes` as a component of `kind`'s world.
    /// Compilation takes milliseconds to seconds: call it off the request path.
    pub fn compile(&self, bytes: &[u8], kind: PluginKind) -> Result<CompiledPlugin, CompileError> {
        if bytes.len() > self.config.max_component_bytes {
            return Err(CompileError::TooLarge {
                size: bytes.len(),
                limit: self.config.max_component_bytes,
            });
        }
        if !is_component(bytes) {
            return Err(CompileError::NotAComponent);
        }
        let component = self.component(bytes)?;
        let wrong_world = |e: wasmtime::Error| CompileError::WrongWorld {
            expected: kind.as_str(),
            detail: format!("{e:#}"),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(wrong_world)?;
        // The newest version first; a component exports one of them.
        let compiled = match kind {
            PluginKind::Validator => v0_2::ValidatorPre::new(pre.clone())
                .map(CompiledPlugin::ValidatorV2)
                .or_else(|_| bindings::ValidatorPre::new(pre).map(CompiledPlugin::Validator)),
            PluginKind::Enricher => v0_2::EnricherPre::new(pre.clone())
                .map(CompiledPlugin::EnricherV2)
                .or_else(|_| bindings::EnricherPre::new(pre).map(CompiledPlugin::Enricher)),
        };
        compiled.map_err(wrong_world)
    }

    /// The compiled component for `bytes`: from the artifact cache when it
    /// holds a checked one, else compiled (and cached).
    fn component(&self, bytes: &[u8]) -> Result<Component, CompileError> {
        let compile = || {
            let started = std::time::Instant::now();
            let component = Component::new(&self.engine, bytes)
                .map_err(|e| CompileError::Compile(format!("{e:#}")))?;
            ::metrics::histogram!(crate::metrics::PLUGIN_COMPILE_DURATION)
                .record(started.elapsed());
            Ok(component)
        };
        let Some(cache) = &self.artifacts else {
            return compile();
        };
        let sha256 = crate::registry::sha256_hex(bytes);
        let counted = |result: &'static str| {
            ::metrics::counter!(crate::metrics::PLUGIN_ARTIFACTS, "result" => result).increment(1);
        };
        match cache.load(&self.engine, &sha256) {
            Lookup::Hit(component) => {
                counted("hit");
                return Ok(component);
            }
            Lookup::Miss => counted("miss"),
            Lookup::Rejected(why) => {
                counted("rejected");
                tracing::warn!(%why, "compiled plugin artifact rejected; compiling anew");
            }
        }
        let component = compile()?;
        if let Err(e) = cache.store(&sha256, &component) {
            tracing::warn!(error = %e, "could not cache a compiled plugin");
        }
        Ok(component)
    }

    /// A store for one instance of a plugin tagged `tag`: empty WASI
    /// context, memory limiter, CPU budget checked at every epoch tick.
    /// [`Runtime::instantiate`] makes one itself; this is public so the
    /// benchmark can time the two steps apart.
    pub fn store(&self, tag: &PluginTag) -> PluginStore {
        PluginStore(self.new_store(tag))
    }

    fn new_store(&self, tag: &PluginTag) -> Store<PluginState> {
        let state = PluginState {
            // Empty: no files, env, args, sockets or inherited stdio.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            tag: tag.clone(),
            max_memory: self.config.max_memory_bytes,
            grown: 0,
            budget: Budget::start(self.config.cpu_budget_ms),
            cpu_budget_ms: self.config.cpu_budget_ms,
            log_lines: self.config.max_log_lines_per_call,
            interrupted: None,
            log_budget: self.config.max_log_lines_per_call,
            log_window: self.logs.window(tag),
            log_per_minute: self.config.max_log_lines_per_minute,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state);
        // At every epoch tick while a guest runs: still within the batch's
        // CPU (and wall-clock) budget? Then continue for one more tick.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            match state.budget.exceeded() {
                None => Ok(UpdateDeadline::Continue(1)),
                Some(why) => {
                    state.interrupted = Some(why);
                    Ok(UpdateDeadline::Interrupt)
                }
            }
        });
        store.set_epoch_deadline(1);
        store
    }

    /// A new instance of `plugin` in its own store, not yet initialised:
    /// what [`Runtime::run_batch`] does when the pool is empty, before `init`.
    pub fn instantiate(
        &self,
        plugin: &CompiledPlugin,
        tag: &PluginTag,
    ) -> Result<PluginInstance, CallError> {
        self.instantiate_in(plugin, self.store(tag))
    }

    /// A new instance of `plugin` in `store` (from [`Runtime::store`]).
    pub fn instantiate_in(
        &self,
        plugin: &CompiledPlugin,
        store: PluginStore,
    ) -> Result<PluginInstance, CallError> {
        let mut store = store.0;
        let exports = match plugin {
            CompiledPlugin::Validator(pre) => pre.instantiate(&mut store).map(Exports::Validator),
            CompiledPlugin::Enricher(pre) => pre.instantiate(&mut store).map(Exports::Enricher),
            CompiledPlugin::ValidatorV2(pre) => pre
                .instantiate(&mut store)
                .map(|v| Exports::ValidatorV2(v, None)),
            CompiledPlugin::EnricherV2(pre) => pre
                .instantiate(&mut store)
                .map(|e| Exports::EnricherV2(e, None)),
        }
        .map_err(|e| instance::classify(&mut store, e))?;
        // Count growth from here: the memory a component starts with (stack,
        // data) is not something it allocated.
        store.data_mut().grown = 0;
        Ok(PluginInstance { store, exports })
    }

    /// Runs `plugin` over `events` in a fresh instance (no pool): what
    /// `sluice plugin run` and the benchmarks' cold path do.
    pub fn run_once(
        &self,
        plugin: &CompiledPlugin,
        tag: &PluginTag,
        config: &str,
        events: &[Event],
    ) -> Result<BatchResults, CallError> {
        let mut instance = self.instantiate(plugin, tag)?;
        instance.init(config)?;
        instance.run_batch(&self.config, events)
    }

    /// Runs one plugin over a batch: an instance from `pool` (or a new,
    /// initialised one), the events in calls of at most
    /// `max_events_per_call` / `max_bytes_per_call`, all within one CPU
    /// budget. On success the instance goes back to the pool if there is
    /// room and it stayed small; on any failure it is dropped and the
    /// remaining calls are not made.
    pub fn run_batch(
        &self,
        plugin: &CompiledPlugin,
        pool: &InstancePool,
        tag: &PluginTag,
        config: &str,
        events: &[Event],
    ) -> Result<BatchResults, CallError> {
        let mut instance = match pool.take() {
            Some(instance) => instance,
            None => {
                ::metrics::counter!(crate::metrics::PLUGIN_INSTANCES_CREATED).increment(1);
                let mut instance = self.instantiate(plugin, tag)?;
                instance.init(config)?;
                instance
            }
        };
        let results = instance.run_batch(&self.config, events)?;
        pool.park(instance, self.config.max_idle_instances);
        Ok(results)
    }
}

/// A component starts with the Wasm magic and the component layer
/// (`0d 00 01 00`); a core module has version `01 00 00 00` there.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [0x0d, 0x00, 0x01, 0x00]
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::state::thread_cpu_time;
    use super::*;

    #[test]
    fn a_teams_share_is_half_the_cores_unless_set_and_never_more_than_every_slot() {
        let cores = std::thread::available_parallelism().unwrap().get() as u32;
        let share = |per_team, max_instances| {
            RuntimeSettings {
                max_instances_per_team: per_team,
                max_instances,
                ..RuntimeSettings::default()
            }
            .per_team_slots()
        };
        assert_eq!(RuntimeSettings::default().max_instances_per_team, 0);
        assert_eq!(share(0, 64), (cores / 2).max(1));
        assert_eq!(share(0, 1), 1);
        assert_eq!(share(8, 64), 8);
        assert_eq!(share(8, 3), 3);
        // `max_instances = 0` means one slot: a share is never 0.
        assert_eq!(share(8, 0), 1);
    }

    #[test]
    fn the_budget_counts_cpu_time_not_waiting() {
        let mut budget = Budget::start(20);
        // Only the CPU bound is under test here (a busy machine may stretch
        // 20 ms of spinning past ten times that).
        budget.wall_limit = Duration::from_secs(600);
        // The first tick comes within 5 ms of the start.
        assert_eq!(budget.exceeded(), None);
        // Waiting (a descheduled thread, a busy machine) costs no CPU time.
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(budget.exceeded(), None);
        // Spinning does.
        let spin = Instant::now();
        while budget.exceeded().is_none() {
            assert!(spin.elapsed() < Duration::from_secs(5), "never exceeded");
        }
        assert_eq!(budget.exceeded(), Some(CallError::CpuBudget(20)));
    }

    #[test]
    fn time_before_the_first_tick_counts_at_most_two_ticks() {
        // A thread descheduled for 60 ms before its first tick (a busy
        // machine) is not charged for it.
        let mut budget = Budget::start(20);
        budget.wall_limit = Duration::from_secs(600);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(budget.exceeded(), None);
        // CPU used after that counts in full.
        let cpu = thread_cpu_time();
        while thread_cpu_time() - cpu < Duration::from_millis(25) {
            std::hint::black_box(cpu);
        }
        assert_eq!(budget.exceeded(), Some(CallError::CpuBudget(20)));
    }

    #[test]
    fn the_wall_clock_bound_is_ten_times_the_budget() {
        let mut budget = Budget::start(5);
        assert_eq!(budget.exceeded(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(budget.exceeded(), Some(CallError::WallClock(ms)) if ms >= 50));
    }
}
