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

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy, Store,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtx;

mod state;

use state::Budget;
pub use state::PluginState;

use crate::bindings::{
    self, Enriched, Enricher, EnricherPre, Event, PluginError, Validator, ValidatorPre, Verdict,
};

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
    /// Initialised instances kept idle for reuse, over all plugins; 0 makes
    /// every batch use a fresh instance.
    pub max_idle_instances: u32,
    /// Most events handed to a plugin in one call; a larger batch is split.
    pub max_events_per_call: usize,
    /// Most event bytes (properties + context + ids) handed over in one call.
    pub max_bytes_per_call: usize,
    /// Log lines a plugin may write per batch; the rest are dropped and counted.
    pub max_log_lines_per_call: u32,
    /// Writes `/tmp/perf-<pid>.map` naming the compiled plugin code, so that
    /// `perf record` / `perf report` attribute samples to plugin functions
    /// instead of anonymous addresses. Off by default: the file grows with
    /// every compiled upload and is never pruned.
    pub perf_map: bool,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            cpu_budget_ms: 100,
            max_memory_bytes: 64 * 1024 * 1024,
            max_component_bytes: 32 * 1024 * 1024,
            max_instances: 64,
            max_idle_instances: 64,
            max_events_per_call: 128,
            max_bytes_per_call: 64 * 1024,
            max_log_lines_per_call: 100,
            perf_map: false,
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
    #[error("component does not implement the sluice:plugin@0.1.0 `{expected}` world: {detail}")]
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

/// A compiled, linked plugin, ready to instantiate.
#[derive(Clone)]
pub enum CompiledPlugin {
    Validator(ValidatorPre<PluginState>),
    Enricher(EnricherPre<PluginState>),
}

impl std::fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Validator(_) => "CompiledPlugin::Validator",
            Self::Enricher(_) => "CompiledPlugin::Enricher",
        })
    }
}

impl CompiledPlugin {
    pub fn kind(&self) -> PluginKind {
        match self {
            Self::Validator(_) => PluginKind::Validator,
            Self::Enricher(_) => PluginKind::Enricher,
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
}

impl CallError {
    /// The resource limit the call ran into, if that is why it failed.
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            Self::CpuBudget(_) | Self::WallClock(_) => Some("cpu"),
            Self::Memory(_) => Some("memory"),
            Self::Capacity(_) => Some("instances"),
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

/// The generated exports of either world.
enum Exports {
    Validator(Validator),
    Enricher(Enricher),
}

/// A live plugin instance with its store. Dropped, it returns its pool slot
/// (the allocator resets its memory).
pub struct PluginInstance {
    store: Store<PluginState>,
    exports: Exports,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("state", self.store.data())
            .finish_non_exhaustive()
    }
}

/// A plugin's idle, initialised instances, shared by the batches that run
/// it. Belongs to one compiled version and configuration: a new upload or
/// configuration builds a new chain with a new pool, and the old instances
/// go when the last batch using the old chain ends.
pub struct InstancePool {
    idle: Mutex<Vec<PluginInstance>>,
    /// The runtime's count of parked instances (bounded by
    /// `max_idle_instances`, because each holds a pool slot).
    parked: Arc<AtomicU32>,
}

impl std::fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("idle", &self.idle())
            .finish()
    }
}

impl InstancePool {
    pub fn new(runtime: &Runtime) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            parked: runtime.idle.clone(),
        }
    }

    /// Initialised instances waiting in this pool.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    fn take(&self) -> Option<PluginInstance> {
        let instance = self.idle.lock().ok()?.pop()?;
        self.parked.fetch_sub(1, Ordering::Relaxed);
        Some(instance)
    }

    /// Keeps `instance` for the next batch if the runtime has room.
    fn park(&self, instance: PluginInstance, max: u32) {
        if instance.store.data().grown > MAX_IDLE_GROWTH_BYTES {
            return;
        }
        let claimed = self
            .parked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !claimed {
            return;
        }
        match self.idle.lock() {
            Ok(mut idle) => idle.push(instance),
            Err(_) => {
                self.parked.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for InstancePool {
    fn drop(&mut self) {
        let n = self.idle.get_mut().map(|v| v.len()).unwrap_or(0) as u32;
        self.parked.fetch_sub(n, Ordering::Relaxed);
    }
}

/// What a plugin decided for a batch: one result per event, in order.
#[derive(Debug)]
pub enum BatchResults {
    Verdicts(Vec<Verdict>),
    Enriched(Vec<Enriched>),
}

impl BatchResults {
    pub fn len(&self) -> usize {
        match self {
            Self::Verdicts(v) => v.len(),
            Self::Enriched(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        Ok(Self {
            engine,
            linker,
            config,
            idle: Arc::new(AtomicU32::new(0)),
            ticker_stop,
        })
    }

    pub fn config(&self) -> &RuntimeSettings {
        &self.config
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
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| CompileError::Compile(format!("{e:#}")))?;
        let wrong_world = |e: wasmtime::Error| CompileError::WrongWorld {
            expected: kind.as_str(),
            detail: format!("{e:#}"),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(wrong_world)?;
        Ok(match kind {
            PluginKind::Validator => {
                CompiledPlugin::Validator(ValidatorPre::new(pre).map_err(wrong_world)?)
            }
            PluginKind::Enricher => {
                CompiledPlugin::Enricher(EnricherPre::new(pre).map_err(wrong_world)?)
            }
        })
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
            logs_dropped: 0,
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
        }
        .map_err(|e| classify(&mut store, e))?;
        // Count growth from here: the memory a component starts with (stack,
        // data) is not something it allocated.
        store.data_mut().grown = 0;
        Ok(PluginInstance { store, exports })
    }

    /// Runs a validator over `events` in a fresh instance (no pool).
    pub fn validate(
        &self,
        plugin: &ValidatorPre<PluginState>,
        tag: &PluginTag,
        config: &str,
        events: &[Event],
    ) -> Result<Vec<Verdict>, CallError> {
        let compiled = CompiledPlugin::Validator(plugin.clone());
        let mut instance = self.instantiate(&compiled, tag)?;
        instance.init(config)?;
        instance.validate(events)
    }

    /// Runs an enricher over `events` in a fresh instance (no pool).
    pub fn enrich(
        &self,
        plugin: &EnricherPre<PluginState>,
        tag: &PluginTag,
        config: &str,
        events: &[Event],
    ) -> Result<Vec<Enriched>, CallError> {
        let compiled = CompiledPlugin::Enricher(plugin.clone());
        let mut instance = self.instantiate(&compiled, tag)?;
        instance.init(config)?;
        instance.enrich(events)
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

/// Splits a batch into calls of bounded size. A single event larger than
/// the byte bound still goes alone in one call.
struct Chunks<'a> {
    rest: &'a [Event],
    max_events: usize,
    max_bytes: usize,
}

impl<'a> Chunks<'a> {
    fn new(events: &'a [Event], config: &RuntimeSettings) -> Self {
        Self {
            rest: events,
            max_events: config.max_events_per_call.max(1),
            max_bytes: config.max_bytes_per_call,
        }
    }
}

/// Bytes of an event's strings: what the call copies into the guest.
fn event_bytes(event: &Event) -> usize {
    event.event_id.len()
        + event.team_id.len()
        + event.name.len()
        + event.user_id.len()
        + event.properties.len()
        + event.context.as_ref().map_or(0, String::len)
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [Event];

    fn next(&mut self) -> Option<&'a [Event]> {
        if self.rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        for event in self.rest.iter().take(self.max_events) {
            bytes += event_bytes(event);
            if n > 0 && bytes > self.max_bytes {
                break;
            }
            n += 1;
        }
        let (chunk, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(chunk)
    }
}

impl PluginInstance {
    /// The whole batch through this instance, as [`Runtime::run_batch`] does
    /// it: one CPU budget for the batch, then calls of bounded size,
    /// stopping at the first failure.
    pub fn run_batch(
        &mut self,
        config: &RuntimeSettings,
        events: &[Event],
    ) -> Result<BatchResults, CallError> {
        self.start_budget();
        let mut results = match self.exports {
            Exports::Validator(_) => BatchResults::Verdicts(Vec::with_capacity(events.len())),
            Exports::Enricher(_) => BatchResults::Enriched(Vec::with_capacity(events.len())),
        };
        for chunk in Chunks::new(events, config) {
            match &mut results {
                BatchResults::Verdicts(all) => {
                    let verdicts = self.raw_validate(chunk)?;
                    check_len(chunk.len(), verdicts.len())?;
                    all.extend(verdicts);
                }
                BatchResults::Enriched(all) => {
                    let enriched = self.raw_enrich(chunk)?;
                    check_len(chunk.len(), enriched.len())?;
                    all.extend(enriched);
                }
            }
        }
        Ok(results)
    }

    /// Calls the plugin's `init(config)`, within a CPU budget of its own.
    pub fn init(&mut self, config: &str) -> Result<(), CallError> {
        self.start_budget();
        let result = match &self.exports {
            Exports::Validator(v) => v
                .sluice_plugin_validate()
                .call_init(&mut self.store, config),
            Exports::Enricher(e) => e.sluice_plugin_enrich().call_init(&mut self.store, config),
        };
        init_result(result.map_err(|e| classify(&mut self.store, e))?)
    }

    /// A fresh CPU budget and log budget, for what follows until the next.
    fn start_budget(&mut self) {
        let state = self.store.data_mut();
        state.budget = Budget::start(state.cpu_budget_ms);
        state.log_budget = state.log_lines;
        self.store.set_epoch_deadline(1);
    }

    /// One `validate` call with its own CPU budget (this instance must be a
    /// validator).
    pub fn validate(&mut self, events: &[Event]) -> Result<Vec<Verdict>, CallError> {
        self.start_budget();
        let verdicts = self.raw_validate(events)?;
        check_len(events.len(), verdicts.len())?;
        Ok(verdicts)
    }

    /// One `enrich` call with its own CPU budget (this instance must be an
    /// enricher).
    pub fn enrich(&mut self, events: &[Event]) -> Result<Vec<Enriched>, CallError> {
        self.start_budget();
        let results = self.raw_enrich(events)?;
        check_len(events.len(), results.len())?;
        Ok(results)
    }

    /// One call with `events` and its own CPU budget, whichever the world,
    /// without splitting and without the one-result-per-event check; returns
    /// how many results came back. For measuring bare calls and transport.
    pub fn call_once(&mut self, events: &[Event]) -> Result<usize, CallError> {
        self.start_budget();
        match self.exports {
            Exports::Validator(_) => self.raw_validate(events).map(|v| v.len()),
            Exports::Enricher(_) => self.raw_enrich(events).map(|v| v.len()),
        }
    }

    /// The call itself, within whatever budget is running.
    fn raw_validate(&mut self, events: &[Event]) -> Result<Vec<Verdict>, CallError> {
        let Exports::Validator(v) = &self.exports else {
            return Err(CallError::Contract("not a validator".to_owned()));
        };
        v.sluice_plugin_validate()
            .call_validate(&mut self.store, events)
            .map_err(|e| classify(&mut self.store, e))
    }

    fn raw_enrich(&mut self, events: &[Event]) -> Result<Vec<Enriched>, CallError> {
        let Exports::Enricher(e) = &self.exports else {
            return Err(CallError::Contract("not an enricher".to_owned()));
        };
        e.sluice_plugin_enrich()
            .call_enrich(&mut self.store, events)
            .map_err(|err| classify(&mut self.store, err))
    }
}

fn classify(store: &mut Store<PluginState>, err: wasmtime::Error) -> CallError {
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => store
                .data_mut()
                .interrupted
                .take()
                .unwrap_or(CallError::Trap(trap.to_string())),
            other => CallError::Trap(other.to_string()),
        };
    }
    let text = format!("{err:#}");
    if text.contains("pooling allocator") || text.contains("maximum concurrent") {
        CallError::Capacity(text)
    } else if text.contains("memory") && text.contains("alloc") {
        CallError::Memory(text)
    } else {
        CallError::Trap(text)
    }
}

fn init_result(result: Result<(), PluginError>) -> Result<(), CallError> {
    result.map_err(|err| match err {
        PluginError::InvalidConfig(msg) => CallError::InvalidConfig(msg),
        PluginError::Other(msg) => CallError::Contract(format!("init failed: {msg}")),
    })
}

fn check_len(expected: usize, got: usize) -> Result<(), CallError> {
    if expected == got {
        Ok(())
    } else {
        Err(CallError::WrongLength { expected, got })
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

    fn event(bytes: usize) -> Event {
        Event {
            schema_version: 1,
            properties: "x".repeat(bytes),
            ..crate::convert::empty_event()
        }
    }

    #[test]
    fn batches_are_split_by_count_and_bytes() {
        let config = RuntimeSettings {
            max_events_per_call: 3,
            max_bytes_per_call: 100,
            ..RuntimeSettings::default()
        };
        let sizes = |events: &[Event]| -> Vec<usize> {
            Chunks::new(events, &config).map(<[Event]>::len).collect()
        };
        let small: Vec<Event> = (0..7).map(|_| event(10)).collect();
        assert_eq!(sizes(&small), [3, 3, 1]);
        let large: Vec<Event> = (0..5).map(|_| event(60)).collect();
        assert_eq!(sizes(&large), [1, 1, 1, 1, 1]);
        // An event over the byte bound still goes, alone.
        assert_eq!(sizes(&[event(500), event(10), event(10)]), [1, 2]);
        assert!(sizes(&[]).is_empty());
    }
}
