//! The Wasm runtime: one engine per gateway, components compiled once per
//! upload, a fresh store per call with CPU and memory bounds.
//!
//! - **Compile once**: [`Runtime::compile`] turns component bytes into a
//!   [`CompiledPlugin`] holding an `InstancePre` (imports resolved, exports
//!   type-checked against the world), so a call only instantiates.
//! - **Pooling allocator**: instance memories and tables come from
//!   pre-reserved slots; instantiation is a few microseconds and no `mmap`.
//! - **CPU**: epoch interruption. A ticker thread advances the engine's epoch
//!   every [`EPOCH_TICK`]; each call's store gets a deadline of
//!   `cpu_budget / EPOCH_TICK` ticks and traps when it passes. (Fuel would be
//!   exact but costs far more per instruction.)
//! - **Memory**: a `ResourceLimiter` per store caps linear memory growth; a
//!   failed `memory.grow` is reported to the guest, whose allocator then
//!   traps, which we contain like any trap.
//! - **Capabilities**: WASI p2 is linked because Rust's std imports it, but
//!   with an empty context: no preopened directories, no environment, no
//!   sockets, no inherited stdio. The only real import is `log`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{
    self, Enriched, EnricherPre, Event, Level, PluginError, ValidatorPre, Verdict,
};

/// How often the epoch advances; the granularity of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits applied to every plugin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Wall-clock CPU budget of one call (one batch through one plugin).
    pub cpu_budget_ms: u64,
    /// Largest linear memory one plugin instance may grow to.
    pub max_memory_bytes: usize,
    /// Largest component accepted for upload.
    pub max_component_bytes: usize,
    /// Plugin instances alive at once (pool slots); calls beyond wait.
    pub max_instances: u32,
    /// Log lines a plugin may write per call; the rest are dropped and counted.
    pub max_log_lines_per_call: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cpu_budget_ms: 100,
            max_memory_bytes: 64 * 1024 * 1024,
            max_component_bytes: 32 * 1024 * 1024,
            max_instances: 64,
            max_log_lines_per_call: 100,
        }
    }
}

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    Validator,
    Enricher,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::Enricher => "enricher",
        }
    }
}

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

/// Per-call state: WASI (empty), memory limits, log budget.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    tag: PluginTag,
    log_budget: u32,
    logs_dropped: u32,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("tag", &self.tag)
            .field("log_budget", &self.log_budget)
            .field("logs_dropped", &self.logs_dropped)
            .finish_non_exhaustive()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::LogHost for PluginState {
    fn log(&mut self, level: Level, message: String) {
        if self.log_budget == 0 {
            self.logs_dropped += 1;
            return;
        }
        self.log_budget -= 1;
        let (team, plugin, version) = (&*self.tag.team, &*self.tag.name, &*self.tag.version);
        // Truncate: a plugin must not be able to flood the log pipeline.
        let message: String = message.chars().take(1000).collect();
        match level {
            Level::Trace => tracing::trace!(team, plugin, version, "{message}"),
            Level::Debug => tracing::debug!(team, plugin, version, "{message}"),
            Level::Info => tracing::info!(team, plugin, version, "{message}"),
            Level::Warn => tracing::warn!(team, plugin, version, "{message}"),
            Level::Error => tracing::error!(team, plugin, version, "{message}"),
        }
    }
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
            Self::CpuBudget(_) => Some("cpu"),
            Self::Memory(_) => Some("memory"),
            Self::Capacity(_) => Some("instances"),
            _ => None,
        }
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    config: RuntimeConfig,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
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

impl Runtime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        let instances = config.max_instances.max(1);
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
            ticker_stop,
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
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

    fn store(&self, tag: &PluginTag) -> Store<PluginState> {
        let state = PluginState {
            // Empty: no files, env, args, sockets or inherited stdio.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.config.max_memory_bytes)
                .trap_on_grow_failure(false)
                .build(),
            tag: tag.clone(),
            log_budget: self.config.max_log_lines_per_call,
            logs_dropped: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let ticks = self
            .config
            .cpu_budget_ms
            .div_ceil(EPOCH_TICK.as_millis() as u64)
            .max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    fn classify(&self, err: wasmtime::Error) -> CallError {
        if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
            return match trap {
                wasmtime::Trap::Interrupt => CallError::CpuBudget(self.config.cpu_budget_ms),
                wasmtime::Trap::HeapMisaligned | wasmtime::Trap::MemoryOutOfBounds => {
                    CallError::Trap(trap.to_string())
                }
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

    /// Runs a validator over `events` in a fresh instance.
    pub fn validate(
        &self,
        plugin: &ValidatorPre<PluginState>,
        tag: &PluginTag,
        config: &str,
        events: &[Event],
    ) -> Result<Vec<Verdict>, CallError> {
        let mut store = self.store(tag);
        let instance = plugin
            .instantiate(&mut store)
            .map_err(|e| self.classify(e))?;
        let api = instance.sluice_plugin_validate();
        init_result(
            api.call_init(&mut store, config)
                .map_err(|e| self.classify(e))?,
        )?;
        let verdicts = api
            .call_validate(&mut store, events)
            .map_err(|e| self.classify(e))?;
        check_len(events.len(), verdicts.len())?;
        Ok(verdicts)
    }

    /// Runs an enricher over `events` in a fresh instance.
    pub fn enrich(
        &self,
        plugin: &EnricherPre<PluginState>,
        tag: &PluginTag,
        config: &str,
        events: &[Event],
    ) -> Result<Vec<Enriched>, CallError> {
        let mut store = self.store(tag);
        let instance = plugin
            .instantiate(&mut store)
            .map_err(|e| self.classify(e))?;
        let api = instance.sluice_plugin_enrich();
        init_result(
            api.call_init(&mut store, config)
                .map_err(|e| self.classify(e))?,
        )?;
        let results = api
            .call_enrich(&mut store, events)
            .map_err(|e| self.classify(e))?;
        check_len(events.len(), results.len())?;
        Ok(results)
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
