//! What each plugin instance's store holds: the (empty) WASI context, its
//! memory accounting (`ResourceLimiter`), the running batch's CPU and
//! wall-clock budget that the epoch callback checks, and the log budget of
//! the one import a plugin really has.

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{CallError, EPOCH_TICK, PluginTag, WALL_CLOCK_FACTOR};
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;

use crate::bindings::{self, Level, v0_2};

/// Per-instance state: WASI (empty), memory accounting, the running batch's
/// CPU clock, log budget.
pub struct PluginState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) tag: PluginTag,
    /// Linear memory cap of this instance.
    pub(super) max_memory: usize,
    /// Bytes `memory.grow` added since instantiation.
    pub(super) grown: usize,
    /// The current batch's clocks and limits.
    pub(super) budget: Budget,
    /// CPU budget of one batch (or one single call).
    pub(super) cpu_budget_ms: u64,
    /// Log lines allowed per batch.
    pub(super) log_lines: u32,
    /// Why the epoch callback interrupted the guest, if it did.
    pub(super) interrupted: Option<CallError>,
    pub(super) log_budget: u32,
    /// The plugin's lines this minute, shared by its instances.
    pub(super) log_window: std::sync::Arc<super::logs::LogWindow>,
    pub(super) log_per_minute: u32,
}

/// What the epoch callback checks at every tick.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    /// The thread's CPU time when the budget started, read lazily at the
    /// first epoch tick (see [`Budget::exceeded`]).
    pub(super) cpu_started: Option<Duration>,
    pub(super) wall_started: Instant,
    pub(super) cpu_limit: Duration,
    pub(super) wall_limit: Duration,
}

impl Budget {
    pub(super) fn start(cpu_budget_ms: u64) -> Self {
        let cpu_limit = Duration::from_millis(cpu_budget_ms);
        Self {
            cpu_started: None,
            wall_started: Instant::now(),
            cpu_limit,
            wall_limit: cpu_limit * WALL_CLOCK_FACTOR,
        }
    }

    /// Called at each epoch tick while a guest runs. Reading a thread's CPU
    /// clock is a system call, so a call that ends before the first tick
    /// never reads it; the first tick sets the baseline, counting the time
    /// before it as CPU time, but at most two ticks of it: elapsed time
    /// there may be time the thread spent descheduled on a busy machine,
    /// which must not fail the call. Over-counts by at most two ticks (10
    /// ms); under-counts only when the epoch ticker itself was starved for
    /// longer, and then only that first stretch (a runaway guest is still
    /// stopped at the following ticks).
    pub(super) fn exceeded(&mut self) -> Option<CallError> {
        let wall = self.wall_started.elapsed();
        let now = thread_cpu_time();
        let before = wall.min(EPOCH_TICK * 2);
        let started = *self.cpu_started.get_or_insert(now.saturating_sub(before));
        let cpu = now.saturating_sub(started);
        if cpu > self.cpu_limit {
            return Some(CallError::CpuBudget(self.cpu_limit.as_millis() as u64));
        }
        (wall > self.wall_limit).then_some(CallError::WallClock(wall.as_millis() as u64))
    }
}

/// CPU time of the calling thread. Guests run on the thread that calls
/// them, so the difference across a call is the guest's (and the host
/// glue's) CPU time, whatever else the machine is doing.
pub(super) fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("tag", &self.tag)
            .field("grown", &self.grown)
            .field("log_budget", &self.log_budget)
            .field("log_window", &self.log_window)
            .finish_non_exhaustive()
    }
}

impl ResourceLimiter for PluginState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Refusing (rather than trapping) lets the guest's allocator fail
        // the way it would on any host; Rust guests then abort, which is
        // contained like any trap.
        if desired > self.max_memory {
            return Ok(false);
        }
        self.grown += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
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
        // Bounded per call and per minute, escaped, drops counted: see `logs`.
        let over_call_budget = self.log_budget == 0;
        let admit = self
            .log_window
            .admit(&self.tag, self.log_per_minute, over_call_budget);
        if admit == super::logs::Admit::Drop {
            return;
        }
        self.log_budget -= 1;
        let (team, plugin, version) = (&*self.tag.team, &*self.tag.name, &*self.tag.version);
        let message = super::logs::escape(&message);
        match level {
            Level::Trace => tracing::trace!(team, plugin, version, "plugin: {message}"),
            Level::Debug => tracing::debug!(team, plugin, version, "plugin: {message}"),
            Level::Info => tracing::info!(team, plugin, version, "plugin: {message}"),
            Level::Warn => tracing::warn!(team, plugin, version, "plugin: {message}"),
            Level::Error => tracing::error!(team, plugin, version, "plugin: {message}"),
        }
    }
}

impl v0_2::LogHost for PluginState {
    fn log(&mut self, level: v0_2::Level, message: String) {
        let level = match level {
            v0_2::Level::Trace => Level::Trace,
            v0_2::Level::Debug => Level::Debug,
            v0_2::Level::Info => Level::Info,
            v0_2::Level::Warn => Level::Warn,
            v0_2::Level::Error => Level::Error,
        };
        bindings::LogHost::log(self, level, message);
    }
}

/// The text that marks a refused wait in a trap's message.
pub(super) const BLOCKING_REFUSED: &str = "sluice: blocking refused";

/// The `wasi:io/poll` version the host links (its functions serve every
/// 0.2.x import).
const WASI_POLL: &str = "wasi:io/poll@0.2.12";

/// Replaces the two WASI calls that wait, `poll` and `pollable.block`,
/// with ones that trap.
///
/// A guest that waits (Rust's `thread::sleep`, Python's `time.sleep`, a
/// JavaScript runtime draining its timers) is not running guest code, so
/// neither the CPU budget nor the elapsed-time bound, both checked at epoch
/// ticks *inside* guest code, could stop it: one plugin sleeping for an
/// hour held its request, and enough of them held every instance slot of
/// every team. Nothing a plugin may do needs to wait (it has no files,
/// sockets or other I/O), so waiting is refused outright, as a trap the
/// failure policy handles. Non-blocking calls (`pollable.ready`, reading
/// the clocks) keep working.
pub(super) fn refuse_blocking<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_POLL)?;
    poll.func_wrap(
        "poll",
        |_, (_pollables,): (Vec<Resource<DynPollable>>,)| -> wasmtime::Result<(Vec<u32>,)> {
            Err(wasmtime::format_err!(
                "{BLOCKING_REFUSED}: wasi:io/poll.poll"
            ))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_, (_pollable,): (Resource<DynPollable>,)| -> wasmtime::Result<()> {
            Err(wasmtime::format_err!(
                "{BLOCKING_REFUSED}: wasi:io/poll.pollable.block"
            ))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
