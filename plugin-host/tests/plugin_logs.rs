//! A plugin that floods the log and forges gateway lines, on the real host:
//! its lines are bounded per minute across calls and instances (not only per
//! batch), each is one escaped line that cannot pass for the gateway's, and
//! the drops are reported once per minute. Captures what the host writes
//! with a `tracing` subscriber on this thread (the calls run on it).

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{component, event, tag};
use sluice_plugin_host::runtime::{PluginKind, Runtime, RuntimeSettings};

/// Everything written, shared with the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[test]
fn a_flooding_plugin_is_bounded_per_minute_escaped_and_its_drops_reported() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let rt = Runtime::new(RuntimeSettings {
            max_log_lines_per_call: 40,
            max_log_lines_per_minute: 120,
            ..RuntimeSettings::default()
        })
        .unwrap();
        let compiled = rt
            .compile(&component("fixture_log_flood"), PluginKind::Validator)
            .unwrap();
        // Ten batches on fresh instances, 50 lines each: 40 pass each call's
        // budget, and 120 the plugin's minute.
        for _ in 0..10 {
            rt.run_once(
                &compiled,
                &tag("flood"),
                r#"{"lines": 50}"#,
                &[event(1, "e", "{}", None)],
            )
            .unwrap();
        }
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let plugin_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("plugin: flood"))
        .collect();
    assert_eq!(
        plugin_lines.len(),
        120,
        "the minute's limit over all calls, not 400 (ten calls' budgets)"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("2026-12-07T00:00:00.000000Z")),
        "a plugin forged a gateway line:\n{text}"
    );
    assert!(
        plugin_lines.iter().any(|l| l.contains(
            r"flood 1\n2026-12-07T00:00:00.000000Z  INFO sluice_gateway: forged line\r\u{1b}[2K"
        )),
        "the forgery is shown escaped, on the plugin's own line"
    );
    assert!(!text.contains('\u{1b}'), "no raw escape reached the log");
    assert_eq!(
        text.matches("plugin log limit reached").count(),
        1,
        "the first drop of the minute is reported once:\n{text}"
    );
}
