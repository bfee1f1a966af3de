//! Per-plugin call statistics on this replica, for the admin API. Fleet-wide
//! numbers come from Prometheus, which sums every replica's metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Recent call durations kept for percentiles.
const WINDOW: usize = 1024;

#[derive(Debug, Default)]
pub struct PluginStats {
    calls: AtomicU64,
    events: AtomicU64,
    rejects: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU64,
    recent_micros: Mutex<Vec<u64>>,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsView {
    pub calls: u64,
    pub events: u64,
    pub rejects: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub last_error: Option<String>,
}

impl PluginStats {
    /// Records a successful call; returns nothing to act on.
    pub fn success(&self, events: usize, rejects: usize, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events as u64, Ordering::Relaxed);
        self.rejects.fetch_add(rejects as u64, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.record(took);
    }

    /// Records a failed call; returns the number of consecutive failures.
    pub fn failure(&self, events: usize, error: &str, took: Duration) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events as u64, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.record(took);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_owned());
        }
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn record(&self, took: Duration) {
        if let Ok(mut recent) = self.recent_micros.lock() {
            if recent.len() == WINDOW {
                recent.remove(0);
            }
            recent.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
    }

    pub fn view(&self) -> StatsView {
        let mut recent = self
            .recent_micros
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        recent.sort_unstable();
        let pct = |p: f64| -> Option<f64> {
            if recent.is_empty() {
                return None;
            }
            let idx = ((recent.len() as f64 - 1.0) * p).round() as usize;
            Some(recent[idx] as f64 / 1000.0)
        };
        StatsView {
            calls: self.calls.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            rejects: self.rejects.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}
