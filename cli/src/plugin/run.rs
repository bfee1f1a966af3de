//! `sluice plugin run`: a component on this machine, over sample events, with
//! the gateway's own runtime and limits (no Kafka).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use serde_json::value::RawValue;
use sluice_core::{IncomingEvent, Limits, Timestamp};
use sluice_plugin_host::PluginKind;
use sluice_plugin_host::bindings::{Enriched, Verdict, v0_2};
use sluice_plugin_host::convert::to_wit;
use sluice_plugin_host::patch;
use sluice_plugin_host::runtime::{BatchResults, PluginTag, Runtime, RuntimeSettings};

/// Where compiled components are kept between runs: `$SLUICE_CACHE`, else
/// `$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`, then
/// `plugin-artifacts`. `None` (no cache) when none of them is set.
fn artifact_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("SLUICE_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| Path::new(&d).join("sluice")))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/sluice")))?;
    Some(base.join("plugin-artifacts"))
}

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
        // A JavaScript or Python component takes seconds to compile: keep
        // the compiled code, as the gateway does, for the next run.
        artifact_dir: artifact_dir()
            .map(|dir| dir.to_string_lossy().into_owned())
            .unwrap_or_default(),
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
    // One line per event: what the plugin said, and why when it refused
    // or what it changed.
    let said: Vec<(&str, String)> = match runtime.run_once(&compiled, &tag, config, &events)? {
        BatchResults::Verdicts(verdicts) => verdicts
            .into_iter()
            .map(|verdict| match verdict {
                Verdict::Accept => ("accept", String::new()),
                Verdict::Reject(r) => ("reject", format!("{}: {}", r.code, r.message)),
            })
            .collect(),
        BatchResults::Enriched(results) => results
            .into_iter()
            .map(|result| match result {
                Enriched::Unchanged => ("unchanged", String::new()),
                Enriched::Changed(changed) => {
                    ("changed", format!("properties={}", changed.properties))
                }
                Enriched::Failed(reason) => ("failed", reason),
            })
            .collect(),
        BatchResults::Patches(results) => results
            .into_iter()
            .zip(&events)
            .map(|(result, event)| match result {
                v0_2::Enriched::Unchanged => ("unchanged", String::new()),
                // The patch as the plugin wrote it, and whether the host
                // would accept it.
                v0_2::Enriched::Patched(text) => match patch::apply(event, &text) {
                    Ok(_) => ("patched", text),
                    Err(e) => ("failed", format!("{e}: {text}")),
                },
                v0_2::Enriched::Failed(reason) => ("failed", reason),
            })
            .collect(),
    };
    let mut refused = 0;
    for (i, (event, (word, detail))) in events.iter().zip(said).enumerate() {
        refused += usize::from(matches!(word, "reject" | "failed"));
        let line = format!("#{i:<4} {:<24} {word:<9} {detail}", event.name);
        println!("{}", line.trim_end());
    }
    eprintln!(
        "{} events in {:?} (instantiation included)",
        events.len(),
        started.elapsed()
    );
    Ok(refused)
}
