//! Instances the benchmark can hold and call piece by piece.
//!
//! `Runtime::validate` / `Runtime::enrich` do everything in one call (fresh
//! store, instantiate, `init`, the call, drop), and the runtime's store type
//! cannot be built outside the gateway. To time instantiation and a bare
//! host-to-guest call separately, and to keep instances alive for memory
//! measurements, the probe takes **the runtime's own engine and compiled
//! component** out of a [`CompiledPlugin`] (same `Engine`, so the same
//! pooling allocator, epoch ticker and compiled code) and links them with a
//! store type of its own that holds exactly what the runtime's
//! `PluginState` holds: an empty `WasiCtx`, a `ResourceTable`, `StoreLimits`
//! with the runtime's memory cap, the plugin's tag and a log budget. Its
//! stores are configured like `Runtime::store` (limiter, epoch deadline,
//! trap on deadline). Keep it in step with `gateway/src/plugins/runtime.rs`.

use std::sync::Arc;

use sluice_gateway::plugins::bindings::{
    self, Enricher, EnricherPre, Event, Level, LogHost, PluginError, Validator, ValidatorPre,
};
use sluice_gateway::plugins::runtime::{CompiledPlugin, EPOCH_TICK, PluginTag, RuntimeConfig};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What the runtime's `PluginState` holds, field for field.
pub struct ProbeState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    tag: PluginTag,
    log_budget: u32,
    logs_dropped: u32,
}

impl std::fmt::Debug for ProbeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeState")
            .field("tag", &self.tag)
            .field("log_budget", &self.log_budget)
            .field("logs_dropped", &self.logs_dropped)
            .finish_non_exhaustive()
    }
}

impl WasiView for ProbeState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl LogHost for ProbeState {
    fn log(&mut self, _level: Level, _message: String) {
        // The example plugins do not log per event; count like the runtime.
        if self.log_budget == 0 {
            self.logs_dropped += 1;
        } else {
            self.log_budget -= 1;
        }
    }
}

fn to_anyhow(err: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{err:?}")
}

/// A compiled plugin re-linked for [`ProbeState`] stores.
#[derive(Clone)]
pub enum ProbePre {
    Validator(ValidatorPre<ProbeState>),
    Enricher(EnricherPre<ProbeState>),
}

impl std::fmt::Debug for ProbePre {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Validator(_) => "ProbePre::Validator",
            Self::Enricher(_) => "ProbePre::Enricher",
        })
    }
}

/// The runtime's engine with a linker for [`ProbeState`].
pub struct Probe {
    engine: Engine,
    linker: Linker<ProbeState>,
    config: RuntimeConfig,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn engine_of(compiled: &CompiledPlugin) -> &Engine {
    match compiled {
        CompiledPlugin::Validator(pre) => pre.engine(),
        CompiledPlugin::Enricher(pre) => pre.engine(),
    }
}

impl Probe {
    /// Uses the engine `compiled` was compiled with (the runtime's).
    pub fn new(config: &RuntimeConfig, compiled: &CompiledPlugin) -> anyhow::Result<Self> {
        let engine = engine_of(compiled).clone();
        let mut linker = Linker::<ProbeState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(to_anyhow)?;
        bindings::validator::sluice::plugin::log::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(to_anyhow)?;
        Ok(Self {
            engine,
            linker,
            config: config.clone(),
        })
    }

    /// The same compiled component, pre-instantiated for probe stores.
    pub fn pre(&self, compiled: &CompiledPlugin) -> anyhow::Result<ProbePre> {
        Ok(match compiled {
            CompiledPlugin::Validator(pre) => {
                let component = pre.instance_pre().component();
                let linked = self.linker.instantiate_pre(component).map_err(to_anyhow)?;
                ProbePre::Validator(ValidatorPre::new(linked).map_err(to_anyhow)?)
            }
            CompiledPlugin::Enricher(pre) => {
                let component = pre.instance_pre().component();
                let linked = self.linker.instantiate_pre(component).map_err(to_anyhow)?;
                ProbePre::Enricher(EnricherPre::new(linked).map_err(to_anyhow)?)
            }
        })
    }

    /// Epoch ticks of one call's CPU budget, as the runtime computes them.
    pub fn deadline_ticks(&self) -> u64 {
        self.config
            .cpu_budget_ms
            .div_ceil(EPOCH_TICK.as_millis() as u64)
            .max(1)
    }

    /// A store exactly as `Runtime::store` builds one.
    pub fn store(&self, tag: &PluginTag) -> Store<ProbeState> {
        let state = ProbeState {
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
        store.set_epoch_deadline(self.deadline_ticks());
        store.epoch_deadline_trap();
        store
    }

    /// A store plus an instance (not yet initialised).
    pub fn instantiate(&self, pre: &ProbePre, tag: &PluginTag) -> anyhow::Result<Live> {
        self.instantiate_in(pre, self.store(tag))
    }

    /// An instance in `store` (from [`Probe::store`]).
    pub fn instantiate_in(
        &self,
        pre: &ProbePre,
        mut store: Store<ProbeState>,
    ) -> anyhow::Result<Live> {
        let instance = match pre {
            ProbePre::Validator(pre) => {
                Instance::Validator(pre.instantiate(&mut store).map_err(to_anyhow)?)
            }
            ProbePre::Enricher(pre) => {
                Instance::Enricher(pre.instantiate(&mut store).map_err(to_anyhow)?)
            }
        };
        Ok(Live {
            store,
            instance,
            ticks: self.deadline_ticks(),
        })
    }
}

/// The generated instance of either world.
pub enum Instance {
    Validator(Validator),
    Enricher(Enricher),
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Validator(_) => "Instance::Validator",
            Self::Enricher(_) => "Instance::Enricher",
        })
    }
}

/// A live instance with its store; dropped, it returns its pool slot.
pub struct Live {
    pub store: Store<ProbeState>,
    pub instance: Instance,
    ticks: u64,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    /// Calls the plugin's `init(config)`.
    pub fn init(&mut self, config: &str) -> anyhow::Result<()> {
        let result = match &self.instance {
            Instance::Validator(v) => v
                .sluice_plugin_validate()
                .call_init(&mut self.store, config),
            Instance::Enricher(e) => e.sluice_plugin_enrich().call_init(&mut self.store, config),
        }
        .map_err(to_anyhow)?;
        result.map_err(|e| match e {
            PluginError::InvalidConfig(m) | PluginError::Other(m) => anyhow::anyhow!(m),
        })
    }

    /// One `validate` / `enrich` call on this (reused) instance; returns the
    /// number of results. The epoch deadline is re-armed first, as any reuse
    /// of an instance would have to.
    pub fn call(&mut self, events: &[Event]) -> anyhow::Result<usize> {
        let n = self.call_unchecked(events)?;
        anyhow::ensure!(n == events.len(), "{n} results for {} events", events.len());
        Ok(n)
    }

    /// [`Live::call`] without the check that there is one result per event
    /// (for the `wrong_length` fixture used as a do-nothing validator).
    pub fn call_unchecked(&mut self, events: &[Event]) -> anyhow::Result<usize> {
        self.store.set_epoch_deadline(self.ticks);
        let n = match &self.instance {
            Instance::Validator(v) => v
                .sluice_plugin_validate()
                .call_validate(&mut self.store, events)
                .map_err(to_anyhow)?
                .len(),
            Instance::Enricher(e) => e
                .sluice_plugin_enrich()
                .call_enrich(&mut self.store, events)
                .map_err(to_anyhow)?
                .len(),
        };
        Ok(n)
    }
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
    let range = match compiled {
        CompiledPlugin::Validator(pre) => pre.instance_pre().component().image_range(),
        CompiledPlugin::Enricher(pre) => pre.instance_pre().component().image_range(),
    };
    (range.end as usize).saturating_sub(range.start as usize)
}
