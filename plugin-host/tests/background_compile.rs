//! Compiling in the background (`host.rs`): an upload never waits for a
//! compile, the version that ran before keeps running until the new one is
//! compiled, and a component that cannot be compiled is reported, not
//! retried at every registry change.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::component;
use sluice_core::Timestamp;
use sluice_plugin_host::host::Load;
use sluice_plugin_host::registry::{FailurePolicy, PluginRecord, VersionInfo, sha256_hex};
use sluice_plugin_host::{PluginHost, PluginKind, PluginSettings};

fn record(versions: &[(&str, &[u8])], active: &str) -> PluginRecord {
    PluginRecord {
        team_id: "team-a".to_owned(),
        name: "required".to_owned(),
        kind: PluginKind::Validator,
        versions: versions
            .iter()
            .map(|(version, bytes)| VersionInfo {
                version: (*version).to_owned(),
                sha256: sha256_hex(bytes),
                size: bytes.len(),
                chunks: 1,
                uploaded_at: Timestamp::now(),
                wit_version: "0.2.0".to_owned(),
                blob: String::new(),
            })
            .collect(),
        active_version: Some(active.to_owned()),
        history: Vec::new(),
        policy: FailurePolicy::default(),
        config: r#"{"required":["plan"]}"#.to_owned(),
        order: 0,
        events: Vec::new(),
        disabled: None,
    }
}

/// Polls until the component is no longer compiling (a condition, with a
/// generous deadline for a loaded machine).
fn settled(host: &PluginHost, bytes: &[u8]) -> Load {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match host.load(&sha256_hex(bytes), PluginKind::Validator) {
            Some(Load::Compiling) | None => {}
            Some(settled) => return settled,
        }
        assert!(Instant::now() < deadline, "still compiling after 5 min");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn running_version(host: &PluginHost) -> Option<String> {
    let chain = host.chain("team-a")?;
    let plugin = chain.plugins.iter().find(|p| &*p.tag.name == "required")?;
    Some(plugin.tag.version.to_string())
}

#[test]
fn the_old_version_runs_until_the_new_one_is_compiled() {
    let host: Arc<PluginHost> = PluginHost::new(&PluginSettings::default(), None).unwrap();
    let rust = component("required_properties");
    // A TypeScript component takes seconds to compile: long enough to
    // observe the chain while it does.
    let ts = component("ts_required_properties");

    let prepared = host.prepare(&sha256_hex(&rust), PluginKind::Validator, || {
        Some(Ok(rust.clone()))
    });
    assert!(matches!(prepared, Some(Load::Compiling)), "{prepared:?}");
    assert!(matches!(settled(&host, &rust), Load::Ready(_)));
    let v1 = record(&[("1", &rust)], "1");
    assert_eq!(host.rebuild(&[v1]), 0);
    assert_eq!(running_version(&host).as_deref(), Some("1"));

    // Version 2 is activated; its compile starts, and returns at once.
    let started = Instant::now();
    let prepared = host.prepare(&sha256_hex(&ts), PluginKind::Validator, || {
        Some(Ok(ts.clone()))
    });
    let returned_after = started.elapsed();
    assert!(matches!(prepared, Some(Load::Compiling)), "{prepared:?}");
    let v2 = record(&[("1", &rust), ("2", &ts)], "2");
    assert_eq!(host.rebuild(std::slice::from_ref(&v2)), 1, "v2 compiling");
    assert_eq!(
        running_version(&host).as_deref(),
        Some("1"),
        "the old version keeps running while v2 compiles"
    );

    assert!(matches!(settled(&host, &ts), Load::Ready(_)));
    let compile_took = started.elapsed();
    assert_eq!(host.rebuild(&[v2]), 0);
    assert_eq!(running_version(&host).as_deref(), Some("2"));
    // Asking did not wait for the compile (it took at least 100 times as long).
    assert!(
        returned_after * 100 < compile_took,
        "prepare returned after {returned_after:?}, the compile took {compile_took:?}"
    );
}

#[test]
fn a_component_that_cannot_compile_is_reported_once_and_the_old_version_stays() {
    let host: Arc<PluginHost> = PluginHost::new(&PluginSettings::default(), None).unwrap();
    let rust = component("required_properties");
    host.prepare(&sha256_hex(&rust), PluginKind::Validator, || {
        Some(Ok(rust.clone()))
    });
    assert!(matches!(settled(&host, &rust), Load::Ready(_)));
    host.rebuild(&[record(&[("1", &rust)], "1")]);

    // A validator uploaded as the enricher's world would be refused by the
    // upload check; here the host is handed one directly, as a replica
    // would be by a registry written by an older gateway.
    let broken = component("fixture_other_world");
    host.prepare(&sha256_hex(&broken), PluginKind::Validator, || {
        Some(Ok(broken.clone()))
    });
    let Load::Failed(why) = settled(&host, &broken) else {
        panic!("a component of another world compiled")
    };
    assert!(why.contains("neither"), "{why}");
    let v2 = record(&[("1", &rust), ("2", &broken)], "2");
    assert_eq!(
        host.rebuild(std::slice::from_ref(&v2)),
        0,
        "failed is not pending"
    );
    assert_eq!(running_version(&host).as_deref(), Some("1"));
    // Asked again (every rebuild asks): the recorded failure, no new compile.
    let asked = host.prepare(&sha256_hex(&broken), PluginKind::Validator, || {
        panic!("the bytes were fetched again to retry a failed compile")
    });
    assert!(matches!(asked, Some(Load::Failed(_))), "{asked:?}");
}
