//! Idle, initialised instances kept for reuse across batches.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::{MAX_IDLE_GROWTH_BYTES, PluginInstance, Runtime};

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

    pub(super) fn take(&self) -> Option<PluginInstance> {
        let instance = self.idle.lock().ok()?.pop()?;
        self.parked.fetch_sub(1, Ordering::Relaxed);
        Some(instance)
    }

    /// Keeps `instance` for the next batch if the runtime has room.
    pub(super) fn park(&self, instance: PluginInstance, max: u32) {
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
