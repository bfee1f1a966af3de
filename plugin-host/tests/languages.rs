//! Plugins in Rust, TypeScript and Python through the real host: the three
//! builds of each example give identical results on the conformance corpus
//! (`plugins/conformance/`), and hostile JavaScript and Python plugins are
//! contained by the same limits as Rust ones.
//!
//! Components: `plugins/build.sh`, `plugins/js/build.sh` and
//! `plugins/python/build.sh`, all into `SLUICE_PLUGINS_DIR` (`scripts/test`
//! runs them). A JavaScript or Python component carries its interpreter
//! (12-19 MB) and takes seconds to compile, so these runtimes keep compiled
//! components in `$SLUICE_CACHE/test-artifacts` (the host's own artifact
//! cache, `runtime/artifacts.rs`): a second run loads them in milliseconds.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{component, plugins_dir, tag};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sluice_plugin_host::bindings::{Enriched, Event, Verdict, v0_2};
use sluice_plugin_host::patch;
use sluice_plugin_host::runtime::{
    BatchResults, CallError, CompiledPlugin, PluginKind, Runtime, RuntimeSettings,
};

const LANGUAGES: [(&str, &str); 3] = [("rust", ""), ("typescript", "ts_"), ("python", "py_")];

/// No idle instances: every run here is a fresh instance, so one test's
/// hostile plugin never leaves anything for the next call.
fn runtime() -> Runtime {
    runtime_keeping(0)
}

fn runtime_keeping(max_idle_instances: u32) -> Runtime {
    let cache = std::env::var_os("SLUICE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sluice"));
    Runtime::new(RuntimeSettings {
        max_instances: 4,
        max_idle_instances,
        artifact_dir: cache.join("test-artifacts").to_str().unwrap().to_owned(),
        ..RuntimeSettings::default()
    })
    .unwrap()
}

#[derive(Debug, Deserialize)]
struct Case {
    plugin: String,
    kind: String,
    configs: Vec<Box<RawValue>>,
    #[serde(default)]
    invalid_configs: Vec<Box<RawValue>>,
    events: Vec<CaseEvent>,
}

/// An event of the corpus; `properties` and `context` keep their text
/// (escapes, spacing), so the plugins see exactly what is written.
#[derive(Debug, Deserialize)]
struct CaseEvent {
    name: String,
    properties: Box<RawValue>,
    context: Option<Box<RawValue>>,
    user_id: Option<String>,
    timestamp_ms: Option<i64>,
}

impl CaseEvent {
    fn to_event(&self, i: usize) -> Event {
        Event {
            event_id: format!("0190d6a8-0000-7000-8000-{i:012}"),
            team_id: "team-a".to_owned(),
            name: self.name.clone(),
            user_id: self.user_id.clone().unwrap_or_else(|| format!("u{i}")),
            timestamp_ms: self.timestamp_ms.unwrap_or(1_800_000_000_000),
            received_at_ms: 1_800_000_000_005,
            schema_version: 1,
            properties: self.properties.get().to_owned(),
            context: self.context.as_ref().map(|c| c.get().to_owned()),
        }
    }
}

/// One event's result, in a form every language can be compared in.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Accept,
    Reject {
        code: String,
        message: String,
    },
    Unchanged,
    /// The event after the host applied the change, as JSON values.
    Changed(Value),
    Failed,
}

fn as_json(event: &Event) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    serde_json::json!({
        "event_id": event.event_id,
        "name": event.name,
        "user_id": event.user_id,
        "timestamp_ms": event.timestamp_ms,
        "received_at_ms": event.received_at_ms,
        "schema_version": event.schema_version,
        "properties": parse(&event.properties),
        "context": event.context.as_deref().map(parse),
    })
}

fn outcomes(results: BatchResults, events: &[Event]) -> Vec<Outcome> {
    match results {
        BatchResults::Verdicts(verdicts) => verdicts
            .into_iter()
            .map(|v| match v {
                Verdict::Accept => Outcome::Accept,
                Verdict::Reject(r) => Outcome::Reject {
                    code: r.code,
                    message: r.message,
                },
            })
            .collect(),
        BatchResults::Enriched(results) => results
            .into_iter()
            .map(|r| match r {
                Enriched::Unchanged => Outcome::Unchanged,
                Enriched::Changed(event) => Outcome::Changed(as_json(&event)),
                Enriched::Failed(_) => Outcome::Failed,
            })
            .collect(),
        BatchResults::Patches(results) => results
            .into_iter()
            .zip(events)
            .map(|(r, event)| match r {
                v0_2::Enriched::Unchanged => Outcome::Unchanged,
                v0_2::Enriched::Patched(text) => match patch::apply(event, &text) {
                    Ok(patched) => Outcome::Changed(as_json(&patched)),
                    Err(e) => panic!("patch refused by the host: {e}: {text}"),
                },
                v0_2::Enriched::Failed(_) => Outcome::Failed,
            })
            .collect(),
    }
}

fn cases() -> Vec<(PathBuf, Case)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/conformance");
    let mut cases: Vec<(PathBuf, Case)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let case = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

#[test]
fn every_language_gives_the_same_results_on_the_conformance_corpus() {
    let rt = runtime();
    let cases = cases();
    assert!(!cases.is_empty());
    for (path, case) in cases {
        let kind: PluginKind = case.kind.parse().unwrap();
        let events: Vec<Event> = case
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| e.to_event(i))
            .collect();
        let builds: Vec<(&str, CompiledPlugin)> = LANGUAGES
            .iter()
            .map(|(language, prefix)| {
                let name = format!("{prefix}{}", case.plugin);
                let compiled = rt.compile(&component(&name), kind).unwrap();
                assert_eq!(compiled.wit_version(), "0.2.0", "{name}");
                (*language, compiled)
            })
            .collect();
        let mut seen = Vec::new();
        for config in &case.configs {
            let mut reference: Option<(&str, Vec<Outcome>)> = None;
            for (language, compiled) in &builds {
                let results = rt
                    .run_once(compiled, &tag(&case.plugin), config.get(), &events)
                    .unwrap_or_else(|e| panic!("{} {language} with {config}: {e}", path.display()));
                let got = outcomes(results, &events);
                assert_eq!(got.len(), events.len());
                match &reference {
                    None => reference = Some((language, got)),
                    Some((first, expected)) => {
                        for (i, (a, b)) in expected.iter().zip(&got).enumerate() {
                            assert_eq!(
                                a,
                                b,
                                "{}: config {config}, event #{i} ({}): {first} and {language} differ",
                                path.display(),
                                case.events[i].name
                            );
                        }
                    }
                }
            }
            seen.extend(reference.map(|(_, outcomes)| outcomes).unwrap_or_default());
        }
        // The corpus must exercise both sides of the plugin, or agreeing
        // would prove little.
        let distinct = |f: fn(&Outcome) -> bool| seen.iter().any(f);
        match kind {
            PluginKind::Validator => assert!(
                distinct(|o| matches!(o, Outcome::Accept))
                    && distinct(|o| matches!(o, Outcome::Reject { .. })),
                "{}: the corpus should accept some events and reject others",
                path.display()
            ),
            PluginKind::Enricher => assert!(
                distinct(|o| matches!(o, Outcome::Unchanged))
                    && distinct(|o| matches!(o, Outcome::Changed(_))),
                "{}: the corpus should change some events and leave others",
                path.display()
            ),
        }
        for config in &case.invalid_configs {
            for (language, compiled) in &builds {
                let err = rt
                    .run_once(compiled, &tag(&case.plugin), config.get(), &events[..1])
                    .unwrap_err();
                assert!(
                    matches!(err, CallError::InvalidConfig(_)),
                    "{} {language}: {config} gave {err}",
                    path.display()
                );
            }
        }
    }
}

fn one_event() -> Vec<Event> {
    vec![
        serde_json::from_str::<CaseEvent>(r#"{"name": "e", "properties": {"plan": "pro"}}"#)
            .unwrap()
            .to_event(1),
    ]
}

/// Runs a hostile fixture and returns how it failed.
fn hostile(rt: &Runtime, name: &str, config: &str) -> CallError {
    let compiled = rt.compile(&component(name), PluginKind::Validator).unwrap();
    rt.run_once(&compiled, &tag(name), config, &one_event())
        .expect_err(name)
}

fn still_serving(rt: &Runtime) {
    for name in ["ts_required_properties", "py_required_properties"] {
        let compiled = rt.compile(&component(name), PluginKind::Validator).unwrap();
        let results = rt
            .run_once(
                &compiled,
                &tag(name),
                r#"{"required": {"*": ["plan"]}}"#,
                &one_event(),
            )
            .unwrap();
        assert_eq!(outcomes(results, &one_event()), [Outcome::Accept], "{name}");
    }
}

#[test]
fn hostile_javascript_plugins_are_contained() {
    let rt = runtime();
    for config in ["{}", r#"{"in": "init"}"#] {
        let err = hostile(&rt, "ts_fixture_infinite_loop", config);
        assert!(
            matches!(err, CallError::CpuBudget(_) | CallError::WallClock(_)),
            "{config}: {err}"
        );
        let err = hostile(&rt, "ts_fixture_memory_bomb", config);
        assert!(
            matches!(err, CallError::Memory(_) | CallError::Trap(_)),
            "{config}: {err}"
        );
        let err = hostile(&rt, "ts_fixture_throws", config);
        assert!(matches!(err, CallError::Trap(_)), "{config}: {err}");
    }
    // A timer: the call returns (the timer never fires, nothing waits).
    let compiled = rt
        .compile(&component("ts_fixture_timer"), PluginKind::Validator)
        .unwrap();
    let results = rt
        .run_once(&compiled, &tag("timer"), "{}", &one_event())
        .unwrap();
    assert_eq!(outcomes(results, &one_event()), [Outcome::Accept]);
    still_serving(&rt);
}

#[test]
fn hostile_python_plugins_are_contained() {
    let rt = runtime();
    for config in ["{}", r#"{"in": "init"}"#] {
        let err = hostile(&rt, "py_fixture_infinite_loop", config);
        assert!(
            matches!(err, CallError::CpuBudget(_) | CallError::WallClock(_)),
            "{config}: {err}"
        );
        let err = hostile(&rt, "py_fixture_memory_bomb", config);
        assert!(
            matches!(err, CallError::Memory(_) | CallError::Trap(_)),
            "{config}: {err}"
        );
        // An exception in `validate` traps; in `init` the SDK reports it
        // as the WIT error `other`.
        let err = hostile(&rt, "py_fixture_raises", config);
        assert!(
            matches!(&err, CallError::Trap(_))
                || matches!(&err, CallError::Contract(m) if m.contains("init failed")),
            "{config}: {err}"
        );
        // `time.sleep(3600)`: refused at once, not slept through (this test
        // would take an hour otherwise).
        let err = hostile(&rt, "py_fixture_sleep", config);
        assert!(matches!(err, CallError::Blocked(_)), "{config}: {err}");
    }
    still_serving(&rt);
}

#[test]
fn components_for_the_wrong_version_or_world_are_refused() {
    let rt = runtime();
    // A validator uploaded as an enricher, in both languages.
    for name in ["ts_required_properties", "py_required_properties"] {
        let err = rt
            .compile(&component(name), PluginKind::Enricher)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("neither sluice:plugin@0.2.0 nor @0.1.0"),
            "{name}: {err}"
        );
    }
    assert!(plugins_dir().join("ts_required_properties.wasm").exists());
}

#[test]
fn javascript_and_python_instances_are_reused_across_batches() {
    // A guest runtime's heap must not grow past the host's idle-growth cap
    // (`MAX_IDLE_GROWTH_BYTES`) in a batch, or every batch would pay
    // instantiate + init again (about 1 ms in JS, 2 ms in Python).
    let rt = runtime_keeping(4);
    for name in ["ts_required_properties", "py_required_properties"] {
        let compiled = rt.compile(&component(name), PluginKind::Validator).unwrap();
        let pool = sluice_plugin_host::runtime::InstancePool::new(&rt);
        let events: Vec<Event> = (0..300).map(|_| one_event().remove(0)).collect();
        for round in 0..3 {
            let results = rt
                .run_batch(
                    &compiled,
                    &pool,
                    &tag(name),
                    r#"{"required": {"*": ["plan"]}}"#,
                    &events,
                )
                .unwrap();
            assert_eq!(results.len(), events.len());
            assert_eq!(
                pool.idle(),
                1,
                "{name}, round {round}: the instance was parked for the next batch"
            );
        }
    }
}
