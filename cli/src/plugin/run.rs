//! `sluice plugin run`: a component on this machine, over sample events, with
//! the gateway's own runtime and limits (no Kafka).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use serde_json::value::RawValue;
use sluice_core::{IncomingEvent, Limits, Timestamp};
use sluice_plugin_host::PluginKind;
use sluice_plugin_host::bindings::{Enriched, Verdict};
use sluice_plugin_host::convert::to_wit;
use sluice_plugin_host::runtime::{CompiledPlugin, PluginTag, Runtime, RuntimeSettings};

/// Runs a component over the events in `events_file` and prints each result.
/// Returns the number of events the plugin rejected or failed on.
pub fn run(
    component: &Path,
    kind: PluginKind,
    config: &str,
    events_file: &Path,
) -> anyhow::Result<usize> {
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let text = std::fs::read_to_string(events_file)
        .with_context(|| format!("reading {}", events_file.display()))?;
    // Accept a bare array or the ingest API's {"events": [...]}.
    let value: Value = serde_json::from_str(&text).context("events file is not JSON")?;
    let list = value.get("events").cloned().unwrap_or(value);
    let raws: Vec<Box<RawValue>> = serde_json::from_value::<Vec<Value>>(list)
        .context("events file must hold a JSON array of events (or {\"events\": [...]})")?
        .iter()
        .map(|v| RawValue::from_string(v.to_string()))
        .collect::<Result<_, _>>()?;
    let limits = Limits::default();
    let now = Timestamp::now();
    let mut events = Vec::new();
    for (i, raw) in raws.iter().enumerate() {
        let event = IncomingEvent::decode(raw, &limits)
            .and_then(|e| e.admit("local", now, &limits, uuid::Uuid::now_v7))
            .map_err(|r| anyhow::anyhow!("event #{i} breaks the event contract: {r}"))?;
        events.push(to_wit(&event));
    }

    let runtime = Runtime::new(RuntimeSettings {
        max_instances: 2,
        ..RuntimeSettings::default()
    })?;
    let compiled = runtime.compile(&bytes, kind)?;
    let tag = PluginTag {
        team: Arc::from("local"),
        name: Arc::from(
            component
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plugin"),
        ),
        version: Arc::from("local"),
    };
    let started = std::time::Instant::now();
    let mut refused = 0;
    match compiled {
        CompiledPlugin::Validator(pre) => {
            let verdicts = runtime.validate(&pre, &tag, config, &events)?;
            for (i, (event, verdict)) in events.iter().zip(verdicts).enumerate() {
                match verdict {
                    Verdict::Accept => println!("#{i:<4} {:<24} accept", event.name),
                    Verdict::Reject(r) => {
                        refused += 1;
                        println!(
                            "#{i:<4} {:<24} reject  {}: {}",
                            event.name, r.code, r.message
                        );
                    }
                }
            }
        }
        CompiledPlugin::Enricher(pre) => {
            let results = runtime.enrich(&pre, &tag, config, &events)?;
            for (i, (event, result)) in events.iter().zip(results).enumerate() {
                match result {
                    Enriched::Unchanged => println!("#{i:<4} {:<24} unchanged", event.name),
                    Enriched::Changed(changed) => {
                        println!(
                            "#{i:<4} {:<24} changed  properties={}",
                            event.name, changed.properties
                        )
                    }
                    Enriched::Failed(reason) => {
                        refused += 1;
                        println!("#{i:<4} {:<24} failed   {reason}", event.name);
                    }
                }
            }
        }
    }
    eprintln!(
        "{} events in {:?} (instantiation included)",
        events.len(),
        started.elapsed()
    );
    Ok(refused)
}
