//! `sluice:plugin@0.1.0` and `@0.2.0` side by side on one host, the 0.2
//! contract (patches) enforced, and compiled components kept on disk.
//!
//! The 0.1 component is `tests/data/required_properties-0.1.0.wasm`, the
//! example exactly as it was built before 0.2 existed; the others come
//! from `plugins/build.sh` (see `common`).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{chain_of, component, event, runtime, tag};
use sluice_core::{Limits, RejectCode};
use sluice_plugin_host::bindings::{Event, Verdict};
use sluice_plugin_host::chain::{ChainPlugin, Fate, TeamChain};
use sluice_plugin_host::registry::FailurePolicy;
use sluice_plugin_host::runtime::{
    ArtifactCounts, BatchResults, CallError, InstancePool, PluginKind, Runtime, RuntimeSettings,
};

const REQUIRE_PLAN: &str = r#"{"required": {"*": ["plan"]}}"#;

fn old_required_properties() -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/required_properties-0.1.0.wasm"),
    )
    .unwrap()
}

fn compiled_plugin(rt: &Runtime, bytes: &[u8], kind: PluginKind, config: &str) -> ChainPlugin {
    ChainPlugin {
        tag: tag("old"),
        compiled: rt.compile(bytes, kind).unwrap(),
        config: Arc::from(config),
        policy: FailurePolicy::Reject,
        stats: Arc::default(),
        instances: Arc::new(InstancePool::new(rt)),
        events: None,
    }
}

fn verdicts(results: BatchResults) -> Vec<Option<String>> {
    let BatchResults::Verdicts(verdicts) = results else {
        panic!("{results:?}")
    };
    verdicts
        .into_iter()
        .map(|v| match v {
            Verdict::Accept => None,
            Verdict::Reject(r) => Some(format!("{}: {}", r.code, r.message)),
        })
        .collect()
}

#[test]
fn a_0_1_component_and_a_0_2_component_run_in_one_chain() {
    let rt = runtime();
    let old = compiled_plugin(
        &rt,
        &old_required_properties(),
        PluginKind::Validator,
        REQUIRE_PLAN,
    );
    assert_eq!(old.compiled.wit_version(), "0.1.0");
    let new = chain_of(
        &rt,
        "pii_scrubber",
        PluginKind::Enricher,
        FailurePolicy::Reject,
        r#"{"salt": "s"}"#,
    );
    assert_eq!(new.compiled.wit_version(), "0.2.0");
    let chain = TeamChain {
        plugins: vec![old, new],
    };
    let fates = chain.run(
        &rt,
        vec![
            event(
                0,
                "e",
                r#"{"plan": "pro", "email": "jane@example.com"}"#,
                None,
            ),
            event(1, "e", r#"{"email": "jane@example.com"}"#, None),
            event(
                2,
                "e",
                r#"{"plan": "pro"}"#,
                Some(r#"{"ip": "203.0.113.9"}"#),
            ),
            event(3, "e", r#"{"plan": "pro"}"#, None),
        ],
        &Limits::default(),
        &|_: &ChainPlugin, _: u64, err: &CallError| panic!("no plugin fails here: {err}"),
    );
    let Fate::Changed(scrubbed) = &fates[0] else {
        panic!("{:?}", fates[0])
    };
    let properties: serde_json::Value = serde_json::from_str(&scrubbed.properties).unwrap();
    assert_eq!(properties["plan"], "pro");
    assert!(
        properties["email"].as_str().unwrap().starts_with("sha256:"),
        "{properties}"
    );
    assert!(
        matches!(&fates[1], Fate::Reject(r) if r.code == RejectCode::PluginRejected && r.message.contains("`plan`")),
        "the 0.1 validator ran first: {:?}",
        fates[1]
    );
    let Fate::Changed(scrubbed) = &fates[2] else {
        panic!("{:?}", fates[2])
    };
    let context: serde_json::Value =
        serde_json::from_str(scrubbed.context.as_deref().unwrap()).unwrap();
    assert!(
        context["ip"].as_str().unwrap().starts_with("sha256:"),
        "{context}"
    );
    assert!(matches!(fates[3], Fate::Keep), "{:?}", fates[3]);
}

#[test]
fn the_0_1_and_0_2_builds_of_required_properties_give_the_same_verdicts() {
    let rt = runtime();
    let config = r#"{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}"#;
    let events: Vec<Event> = [
        (
            "Signed Up",
            r#"{"plan": "pro", "email": "a@b.c", "app_version": "1"}"#,
        ),
        ("Signed Up", r#"{"plan": "pro", "app_version": null}"#),
        ("Page Viewed", r#"{"nested": {"app_version": "1"}}"#),
        (
            "Page Viewed",
            r#"{"app_version": "1", "app_version": null}"#,
        ),
        ("Sign\u{e9} \"Up\"", r#"{"app_\u0076ersion": 2}"#),
        ("Page Viewed", r#"{}"#),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, properties))| event(i, name, properties, None))
    .collect();
    let old = rt
        .compile(&old_required_properties(), PluginKind::Validator)
        .unwrap();
    let new = rt
        .compile(&component("required_properties"), PluginKind::Validator)
        .unwrap();
    let before = verdicts(rt.run_once(&old, &tag("old"), config, &events).unwrap());
    let after = verdicts(rt.run_once(&new, &tag("new"), config, &events).unwrap());
    assert_eq!(before, after);
    assert_eq!(
        before.iter().filter(|v| v.is_some()).count(),
        4,
        "{before:?}"
    );
}

/// A 0.2 enricher that returns the patch (or failure) its configuration
/// names, for every event.
fn patcher(rt: &Runtime, config: &str) -> ChainPlugin {
    chain_of(
        rt,
        "fixture_patcher",
        PluginKind::Enricher,
        FailurePolicy::Reject,
        config,
    )
}

fn patch_config(patch: &str) -> String {
    serde_json::json!({ "patch": patch }).to_string()
}

#[test]
fn a_patch_that_breaks_the_contract_fails_the_event_and_counts_as_a_failure() {
    let rt = runtime();
    for (patch, why) in [
        (
            r#"{"event_id":"0190d6a8-0000-7000-8000-000000000009"}"#,
            "may not change `event_id`",
        ),
        (r#"{"team_id":"team-b"}"#, "may not change `team_id`"),
        (r#"{"received_at_ms":0}"#, "may not change `received_at_ms`"),
        (
            r#"{"schema_version":4294967295}"#,
            "may not change `schema_version`",
        ),
        (r#"{"properties":"x"}"#, "`properties` a string"),
        ("not json", "not a JSON object"),
        // Well-formed patches whose result a client could not send: held to
        // the client's rules in the chain, as this plugin's failure.
        (
            r#"{"timestamp_ms":4102444800000}"#,
            "returned a timestamp out of range",
        ),
        (r#"{"name":""}"#, "returned an invalid event name"),
        (r#"{"user_id":""}"#, "returned an invalid user_id"),
    ] {
        let chain = TeamChain {
            plugins: vec![patcher(&rt, &patch_config(patch))],
        };
        let failures = AtomicU64::new(0);
        let fates = chain.run(
            &rt,
            vec![event(1, "e", "{}", None), event(2, "e", "{}", None)],
            &Limits::default(),
            &|_: &ChainPlugin, consecutive: u64, err: &CallError| {
                assert!(err.to_string().contains(why), "{patch}: {err}");
                failures.store(consecutive, Ordering::SeqCst);
            },
        );
        for fate in &fates {
            assert!(
                matches!(fate, Fate::Reject(r) if r.code == RejectCode::PluginFailed && r.message.contains(why)),
                "{patch}: {fate:?}"
            );
        }
        let stats = chain.plugins[0].stats.view();
        assert_eq!(
            (stats.failures, stats.consecutive_failures),
            (1, 1),
            "{patch}"
        );
        assert_eq!(
            failures.load(Ordering::SeqCst),
            1,
            "{patch}: the host was told"
        );
    }
}

#[test]
fn a_patch_within_the_contract_changes_exactly_what_it_names() {
    let rt = runtime();
    let patch = r#"{"name":"Account Created","properties":{"plan":null,"tier":"gold"},"context":{"source":"crm"}}"#;
    let chain = TeamChain {
        plugins: vec![patcher(&rt, &patch_config(patch))],
    };
    let original = event(1, "Signed Up", r#"{"plan": "pro", "seats": 3}"#, None);
    let fates = chain.run(
        &rt,
        vec![original.clone()],
        &Limits::default(),
        &|_: &ChainPlugin, _: u64, err: &CallError| panic!("{err}"),
    );
    let Fate::Changed(changed) = &fates[0] else {
        panic!("{:?}", fates[0])
    };
    assert_eq!(changed.name, "Account Created");
    assert_eq!(changed.properties, r#"{"seats":3,"tier":"gold"}"#);
    assert_eq!(changed.context.as_deref(), Some(r#"{"source":"crm"}"#));
    let untouched = Event {
        name: original.name.clone(),
        properties: original.properties.clone(),
        context: None,
        ..changed.clone()
    };
    assert_eq!(
        untouched, original,
        "ids, user and times are the original's"
    );
    assert_eq!(chain.plugins[0].stats.view().failures, 0);
}

fn cached_runtime(dir: &std::path::Path, key: &str) -> Runtime {
    Runtime::new(RuntimeSettings {
        max_instances: 2,
        artifact_dir: dir.to_str().unwrap().to_owned(),
        artifact_key: key.to_owned(),
        ..RuntimeSettings::default()
    })
    .unwrap()
}

fn counts(rt: &Runtime) -> ArtifactCounts {
    rt.artifact_counts().unwrap()
}

#[test]
fn compiled_components_survive_a_restart_and_a_tampered_one_is_never_loaded() {
    let dir = std::env::temp_dir().join(format!("sluice-artifacts-{}", uuid::Uuid::new_v4()));
    let bytes = component("required_properties");
    let check = |rt: &Runtime| {
        let compiled = rt.compile(&bytes, PluginKind::Validator).unwrap();
        let events = [
            event(1, "e", "{}", None),
            event(2, "e", r#"{"plan": 1}"#, None),
        ];
        let got = verdicts(
            rt.run_once(&compiled, &tag("rp"), REQUIRE_PLAN, &events)
                .unwrap(),
        );
        assert!(got[0].is_some() && got[1].is_none(), "{got:?}");
    };

    let first = cached_runtime(&dir, "");
    check(&first);
    assert_eq!(
        counts(&first),
        ArtifactCounts {
            hits: 0,
            misses: 1,
            rejected: 0
        }
    );
    let artifacts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");

    // A restart: another runtime (another engine) on the same directory.
    let second = cached_runtime(&dir, "");
    check(&second);
    assert_eq!(
        counts(&second),
        ArtifactCounts {
            hits: 1,
            misses: 0,
            rejected: 0
        }
    );

    // One flipped byte in the machine code: refused, deleted, compiled anew.
    let mut file = std::fs::read(&artifacts[0]).unwrap();
    let middle = file.len() / 2;
    file[middle] ^= 0x40;
    std::fs::write(&artifacts[0], &file).unwrap();
    let third = cached_runtime(&dir, "");
    check(&third);
    assert_eq!(
        counts(&third),
        ArtifactCounts {
            hits: 0,
            misses: 0,
            rejected: 1
        }
    );
    // ... and stored again, intact.
    let fourth = cached_runtime(&dir, "");
    check(&fourth);
    assert_eq!(
        counts(&fourth),
        ArtifactCounts {
            hits: 1,
            misses: 0,
            rejected: 0
        }
    );

    // An artifact written under another key is not trusted either.
    let other_key = cached_runtime(&dir, "another replica's secret");
    check(&other_key);
    assert_eq!(
        counts(&other_key),
        ArtifactCounts {
            hits: 0,
            misses: 0,
            rejected: 1
        }
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
