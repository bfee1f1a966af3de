//! Plugin log lines: the one import a plugin really has, and so a way for a
//! hostile or buggy plugin to flood the gateway's log pipeline or forge its
//! lines. Each line is
//!
//! - **bounded** twice: per call (`max_log_lines_per_call`, so one batch
//!   cannot write thousands) and per plugin over time
//!   (`max_log_lines_per_minute`, across every instance of the plugin on
//!   this replica, so a plugin called a thousand times a second cannot
//!   either);
//! - **escaped**: control characters (newlines, carriage returns, ANSI
//!   escapes) are written as visible escapes and the text is truncated, so a
//!   plugin's message is always one line that cannot pass for the gateway's;
//! - **accounted**: every dropped line is counted in
//!   `sluice_gateway_plugin_log_lines_dropped_total{team, plugin}`, the first
//!   drop of a minute is logged once, and the minute's total is logged when
//!   the plugin next writes after the minute ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::PluginTag;
use crate::metrics::PLUGIN_LOG_DROPPED;

/// Longest message kept, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

const MINUTE: Duration = Duration::from_secs(60);

/// The message as one safe line: control characters escaped (`\n`, `\r`,
/// `\u{1b}`), at most [`MAX_MESSAGE_CHARS`] characters of the original.
pub fn escape(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS));
    for c in message.chars().take(MAX_MESSAGE_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A plugin across its versions: team and name.
type PluginName = (Arc<str>, Arc<str>);

/// The per-minute windows of every plugin on this replica.
#[derive(Debug, Default)]
pub struct LogGate {
    windows: Mutex<HashMap<PluginName, Arc<LogWindow>>>,
}

impl LogGate {
    /// The window of `tag`'s plugin (every version shares it).
    pub fn window(&self, tag: &PluginTag) -> Arc<LogWindow> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows
            .entry((tag.team.clone(), tag.name.clone()))
            .or_default()
            .clone()
    }
}

/// One plugin's lines in the current minute.
#[derive(Debug)]
pub struct LogWindow {
    state: Mutex<WindowState>,
}

#[derive(Debug)]
struct WindowState {
    started: Instant,
    written: u32,
    dropped: u64,
}

impl Default for LogWindow {
    fn default() -> Self {
        Self {
            state: Mutex::new(WindowState {
                started: Instant::now(),
                written: 0,
                dropped: 0,
            }),
        }
    }
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Write,
    Drop,
}

impl LogWindow {
    /// Whether `tag` may write one more line now, at most `per_minute` a
    /// minute; `over_call_budget` says the call's own budget is spent (the
    /// line is dropped, and counted here). Reports drops as the module says.
    pub fn admit(&self, tag: &PluginTag, per_minute: u32, over_call_budget: bool) -> Admit {
        self.admit_at(tag, per_minute, over_call_budget, Instant::now())
    }

    fn admit_at(
        &self,
        tag: &PluginTag,
        per_minute: u32,
        over_call_budget: bool,
        now: Instant,
    ) -> Admit {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(state.started) >= MINUTE {
            if state.dropped > 0 {
                tracing::warn!(
                    team = &*tag.team,
                    plugin = &*tag.name,
                    dropped = state.dropped,
                    per_minute,
                    "plugin log lines dropped in the last minute"
                );
            }
            *state = WindowState {
                started: now,
                written: 0,
                dropped: 0,
            };
        }
        if over_call_budget || state.written >= per_minute {
            if state.dropped == 0 {
                tracing::warn!(
                    team = &*tag.team,
                    plugin = &*tag.name,
                    per_minute,
                    over_call_budget,
                    "plugin log limit reached: further lines are dropped and counted"
                );
            }
            state.dropped += 1;
            metrics::counter!(
                PLUGIN_LOG_DROPPED,
                "team" => tag.team.to_string(),
                "plugin" => tag.name.to_string()
            )
            .increment(1);
            return Admit::Drop;
        }
        state.written += 1;
        Admit::Write
    }

    /// Lines dropped in the current minute.
    pub fn dropped(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, version: &str) -> PluginTag {
        PluginTag {
            team: "t".into(),
            name: name.into(),
            version: version.into(),
        }
    }

    #[test]
    fn escaping_keeps_one_line_and_shows_what_was_there() {
        let forged = "ok\n2026-12-07T00:00:00Z  INFO sluice_gateway: forged\r\u{1b}[2K\ttab";
        let line = escape(forged);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(
            line,
            "ok\\n2026-12-07T00:00:00Z  INFO sluice_gateway: forged\\r\\u{1b}[2K\\ttab"
        );
        assert_eq!(escape("été 🚀"), "été 🚀", "printable text is untouched");
        assert_eq!(escape(&"x".repeat(5000)).len(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn a_plugin_writes_at_most_its_lines_per_minute_over_all_calls_and_versions() {
        let gate = LogGate::default();
        let (v1, v2) = (tag("p", "1.0.0"), tag("p", "2.0.0"));
        let window = gate.window(&v1);
        assert!(Arc::ptr_eq(&window, &gate.window(&v2)), "versions share");
        assert!(!Arc::ptr_eq(&window, &gate.window(&tag("q", "1.0.0"))));
        let start = Instant::now();
        let written = (0..25)
            .filter(|_| window.admit_at(&v1, 10, false, start) == Admit::Write)
            .count();
        assert_eq!(written, 10);
        assert_eq!(window.dropped(), 15);
        // A spent call budget drops even under the minute's limit, counted.
        let other = gate.window(&tag("q", "1.0.0"));
        assert_eq!(
            other.admit_at(&tag("q", "1.0.0"), 10, true, start),
            Admit::Drop
        );
        assert_eq!(other.dropped(), 1);
        // The next minute starts afresh.
        let later = start + MINUTE;
        assert_eq!(window.admit_at(&v1, 10, false, later), Admit::Write);
        assert_eq!(window.dropped(), 0);
    }
}
