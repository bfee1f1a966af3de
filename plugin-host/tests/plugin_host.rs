//! The plugin host against real components built from `plugins/`: the
//! example plugins do their jobs, and every adversarial fixture is contained
//! (bounded time, bounded memory, a specific error) while good plugins keep
//! working on the same runtime.
//!
//! Components come from `plugins/build.sh` (run by `scripts/test`); the
//! directory is `SLUICE_PLUGINS_DIR`, default `plugins/dist`.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{
    chain_of, component, enrich, event, plugins_dir, runtime, runtime_with_cpu, tag, validate,
};
use sluice_core::{Limits, RejectCode};
use sluice_plugin_host::bindings::{Enriched, Event, Verdict};
use sluice_plugin_host::chain::{ChainPlugin, Fate, TeamChain};
use sluice_plugin_host::registry::FailurePolicy;
use sluice_plugin_host::runtime::{
    BatchResults, CallError, CompileError, InstancePool, PluginKind, Runtime, RuntimeSettings,
    check,
};

/// A good plugin still works on this runtime (after an adversarial one ran).
fn still_serving(rt: &Runtime) {
    let verdicts = validate(
        rt,
        "required_properties",
        r#"{"required": {"*": ["plan"]}}"#,
        &[event(1, "e", r#"{"plan": "pro"}"#, None)],
    )
    .unwrap();
    assert!(matches!(verdicts[..], [Verdict::Accept]));
}

#[test]
fn required_properties_rejects_what_is_missing_with_its_reason() {
    let rt = runtime();
    let config = r#"{"required": {"Signed Up": ["plan", "email"]}}"#;
    let events = [
        event(1, "Signed Up", r#"{"plan": "pro", "email": "a@b.c"}"#, None),
        event(2, "Signed Up", r#"{"plan": "pro"}"#, None),
        event(3, "Page Viewed", "{}", None),
    ];
    let verdicts = validate(&rt, "required_properties", config, &events).unwrap();
    assert!(matches!(verdicts[0], Verdict::Accept));
    match &verdicts[1] {
        Verdict::Reject(r) => {
            assert_eq!(r.code, "missing_property");
            assert!(r.message.contains("email"), "{}", r.message);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(matches!(verdicts[2], Verdict::Accept));
}

#[test]
fn pii_scrubber_hashes_emails_and_leaves_clean_events_unchanged() {
    let rt = runtime();
    let events = [
        event(
            1,
            "e",
            r#"{"note": "mail me at jane@example.com", "n": 1}"#,
            Some(r#"{"ip": "203.0.113.9"}"#),
        ),
        event(2, "e", r#"{"n": 2}"#, None),
    ];
    let results = enrich(
        &rt,
        "pii_scrubber",
        r#"{"mode": "hash", "salt": "s3cret"}"#,
        &events,
    )
    .unwrap();
    match &results[0] {
        Enriched::Changed(changed) => {
            assert!(
                !changed.properties.contains("jane@example.com"),
                "{}",
                changed.properties
            );
            assert!(
                changed.properties.contains("sha256:"),
                "{}",
                changed.properties
            );
            assert!(
                !changed
                    .context
                    .as_deref()
                    .unwrap_or("")
                    .contains("203.0.113.9")
            );
            assert_eq!(changed.event_id, events[0].event_id);
        }
        other => panic!("expected a change, got {other:?}"),
    }
    assert!(matches!(results[1], Enriched::Unchanged));
}

#[test]
fn bot_filter_rejects_crawlers_by_user_agent() {
    let rt = runtime();
    let events = [
        event(
            1,
            "e",
            "{}",
            Some(r#"{"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}"#),
        ),
        event(
            2,
            "e",
            "{}",
            Some(r#"{"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"}"#),
        ),
    ];
    let verdicts = validate(&rt, "bot_filter", "{}", &events).unwrap();
    assert!(matches!(&verdicts[0], Verdict::Reject(r) if r.code == "bot_traffic"));
    assert!(matches!(verdicts[1], Verdict::Accept));
}

#[test]
fn an_infinite_loop_is_stopped_by_the_cpu_budget() {
    let rt = runtime();
    // Returning at all proves the loop was stopped, and the error says by
    // what; no wall-clock bound (compiling is included and a loaded machine
    // may take any time: the budget counts the guest's CPU, not the clock).
    let err = validate(
        &rt,
        "fixture_infinite_loop",
        "{}",
        &[event(1, "e", "{}", None)],
    )
    .unwrap_err();
    assert_eq!(err, CallError::CpuBudget(100));
    still_serving(&rt);
}

#[test]
fn a_memory_bomb_is_contained_by_the_memory_limit() {
    let rt = runtime_with_cpu(10_000);
    let err = validate(
        &rt,
        "fixture_memory_bomb",
        "{}",
        &[event(1, "e", "{}", None)],
    )
    .unwrap_err();
    assert!(
        matches!(err, CallError::Trap(_) | CallError::Memory(_)),
        "{err:?}"
    );
    still_serving(&rt);
}

#[test]
fn a_trap_is_contained() {
    let rt = runtime();
    let err = validate(&rt, "fixture_trap", "{}", &[event(1, "e", "{}", None)]).unwrap_err();
    assert!(matches!(err, CallError::Trap(_)), "{err:?}");
    still_serving(&rt);
}

#[test]
fn a_verdict_list_of_the_wrong_length_is_a_contract_error() {
    let rt = runtime();
    let events = [event(1, "e", "{}", None), event(2, "e", "{}", None)];
    let err = validate(&rt, "fixture_wrong_length", "{}", &events).unwrap_err();
    assert_eq!(
        err,
        CallError::WrongLength {
            expected: 2,
            got: 1
        }
    );
}

#[test]
fn huge_outputs_are_bounded_by_the_instance_memory() {
    let rt = runtime_with_cpu(10_000);
    let err = enrich(
        &rt,
        "fixture_huge_output",
        "{}",
        &[event(1, "e", "{}", None)],
    )
    .unwrap_err();
    assert!(
        matches!(err, CallError::Trap(_) | CallError::Memory(_)),
        "{err:?}"
    );
    let err = enrich(
        &rt,
        "fixture_huge_output",
        r#"{"mode": "list", "count": 10000000}"#,
        &[event(1, "e", "{}", None)],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Trap(_) | CallError::Memory(_) | CallError::WrongLength { .. }
        ),
        "{err:?}"
    );
    still_serving(&rt);
}

#[test]
fn a_rejected_configuration_is_reported() {
    let rt = runtime();
    let err = validate(
        &rt,
        "fixture_bad_config",
        "{}",
        &[event(1, "e", "{}", None)],
    )
    .unwrap_err();
    assert!(matches!(err, CallError::InvalidConfig(_)), "{err:?}");
}

/// Upload answers from `check` without compiling; the answer must be the
/// one compiling would give, for every Rust component in both worlds, and
/// name the WIT version the compiled plugin reports.
#[test]
fn the_upload_check_gives_the_compilers_answer_without_compiling() {
    let rt = runtime();
    let limit = rt.config().max_component_bytes;
    let mut names: Vec<String> = std::fs::read_dir(plugins_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".wasm")?.to_owned();
            // TypeScript and Python components take seconds each to
            // compile: the next test checks them without compiling.
            (!stem.starts_with("ts_") && !stem.starts_with("py_")).then_some(stem)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let mut versions = std::collections::BTreeSet::new();
    for name in &names {
        let bytes = component(name);
        for kind in [PluginKind::Validator, PluginKind::Enricher] {
            let checked = check(&bytes, kind, limit);
            let compiled = rt.compile(&bytes, kind);
            match (&checked, &compiled) {
                (Ok(version), Ok(plugin)) => {
                    assert_eq!(*version, plugin.wit_version(), "{name} as {kind:?}");
                    versions.insert(*version);
                }
                (Err(a), Err(b)) => assert_eq!(
                    std::mem::discriminant(a),
                    std::mem::discriminant(b),
                    "{name} as {kind:?}: check says {a}, compile says {b}"
                ),
                _ => panic!("{name} as {kind:?}: check {checked:?}, compile {compiled:?}"),
            }
        }
    }
    // Both interface versions were among them.
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["0.1.0", "0.2.0"]);
}

#[test]
fn the_upload_check_refuses_what_it_can_see_without_compiling() {
    let limit = RuntimeSettings::default().max_component_bytes;
    for name in ["ts_required_properties", "py_required_properties"] {
        let bytes = component(name);
        assert_eq!(
            check(&bytes, PluginKind::Validator, limit).unwrap(),
            "0.2.0"
        );
        let err = check(&bytes, PluginKind::Enricher, limit).unwrap_err();
        assert!(
            matches!(&err, CompileError::WrongWorld { detail, .. } if detail.contains("sluice:plugin/validate@0.2.0")),
            "{name}: {err}"
        );
        // Cut short: the component section sizes no longer add up.
        let err = check(&bytes[..bytes.len() / 2], PluginKind::Validator, limit).unwrap_err();
        assert!(matches!(err, CompileError::Invalid(_)), "{name}: {err}");
        let err = check(&bytes, PluginKind::Validator, bytes.len() - 1).unwrap_err();
        assert!(
            matches!(err, CompileError::TooLarge { .. }),
            "{name}: {err}"
        );
    }
    let err = check(b"\0asm\x0d\0\x01\0garbage", PluginKind::Validator, limit).unwrap_err();
    assert!(matches!(err, CompileError::Invalid(_)), "{err}");
    let err = check(&component("not-a-component"), PluginKind::Validator, limit).unwrap_err();
    assert!(matches!(err, CompileError::NotAComponent), "{err}");
}

#[test]
fn uploads_of_the_wrong_shape_are_refused_at_compile_time() {
    let rt = runtime();
    assert!(matches!(
        rt.compile(&component("not-a-component"), PluginKind::Validator),
        Err(CompileError::NotAComponent)
    ));
    assert!(matches!(
        rt.compile(b"definitely not wasm", PluginKind::Validator),
        Err(CompileError::NotAComponent)
    ));
    assert!(matches!(
        rt.compile(&component("fixture_other_world"), PluginKind::Validator),
        Err(CompileError::WrongWorld { .. })
    ));
    assert!(matches!(
        rt.compile(&component("required_properties"), PluginKind::Enricher),
        Err(CompileError::WrongWorld { .. })
    ));
    let small = Runtime::new(RuntimeSettings {
        max_component_bytes: 1024,
        max_instances: 1,
        ..RuntimeSettings::default()
    })
    .unwrap();
    assert!(matches!(
        small.compile(&component("required_properties"), PluginKind::Validator),
        Err(CompileError::TooLarge { .. })
    ));
}

/// One of the example plugins, with the configuration these tests use and
/// the `reject` policy.
fn example(rt: &Runtime, name: &str) -> ChainPlugin {
    let (kind, config) = match name {
        "required_properties" => (PluginKind::Validator, r#"{"required": {"*": ["plan"]}}"#),
        "bot_filter" => (PluginKind::Validator, "{}"),
        "pii_scrubber" => (PluginKind::Enricher, r#"{"salt": "s"}"#),
        other => panic!("no example plugin `{other}`"),
    };
    chain_of(rt, name, kind, FailurePolicy::Reject, config)
}

#[test]
fn failure_policies_decide_the_fate_of_a_failing_plugins_events() {
    let rt = runtime();
    let events = || vec![event(1, "e", "{}", None), event(2, "e", "{}", None)];
    let failures = AtomicU64::new(0);
    let on_failure = |_: &ChainPlugin, consecutive: u64, _: &CallError| {
        failures.store(consecutive, Ordering::SeqCst);
    };

    for (policy, check) in [
        (
            FailurePolicy::Reject,
            (|f: &Fate| matches!(f, Fate::Reject(r) if r.code == RejectCode::PluginFailed))
                as fn(&Fate) -> bool,
        ),
        (FailurePolicy::Pass, |f: &Fate| matches!(f, Fate::Keep)),
        (
            FailurePolicy::DeadLetter,
            |f: &Fate| matches!(f, Fate::DeadLetter(r) if r.code == RejectCode::PluginFailed),
        ),
    ] {
        let chain = TeamChain {
            plugins: vec![chain_of(
                &rt,
                "fixture_trap",
                PluginKind::Validator,
                policy,
                "{}",
            )],
        };
        let fates = chain.run(&rt, events(), &Limits::default(), &on_failure);
        assert_eq!(fates.len(), 2);
        assert!(fates.iter().all(check), "{policy:?}: {fates:?}");
    }
    assert_eq!(
        failures.load(Ordering::SeqCst),
        1,
        "each chain has its own stats, so each count starts at 1"
    );
}

#[test]
fn a_chain_runs_validators_then_enrichers_on_the_survivors() {
    let rt = runtime();
    let chain = TeamChain {
        plugins: vec![
            example(&rt, "required_properties"),
            example(&rt, "pii_scrubber"),
        ],
    };
    let stats = chain.plugins[0].stats.clone();
    let fates = chain.run(
        &rt,
        vec![
            event(1, "e", r#"{"plan": "pro", "email": "x@y.io"}"#, None),
            event(2, "e", r#"{"email": "x@y.io"}"#, None),
        ],
        &Limits::default(),
        &|_: &ChainPlugin, _: u64, _: &CallError| {},
    );
    match &fates[0] {
        Fate::Changed(e) => {
            assert!(e.properties.contains("sha256:") && !e.properties.contains("x@y.io"))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&fates[1], Fate::Reject(r) if r.code == RejectCode::PluginRejected && r.message.contains("plan"))
    );
    let view = stats.view();
    assert_eq!(
        (view.calls, view.events, view.rejects, view.failures),
        (1, 2, 1, 0)
    );
}

#[test]
fn repeated_failures_are_counted_for_auto_disable() {
    let rt = runtime();
    let chain = TeamChain {
        plugins: vec![chain_of(
            &rt,
            "fixture_trap",
            PluginKind::Validator,
            FailurePolicy::Pass,
            "{}",
        )],
    };
    let last = AtomicU64::new(0);
    for _ in 0..3 {
        chain.run(
            &rt,
            vec![event(1, "e", "{}", None)],
            &Limits::default(),
            &|_: &ChainPlugin, n: u64, _: &CallError| {
                last.store(n, Ordering::SeqCst);
            },
        );
    }
    assert_eq!(last.load(Ordering::SeqCst), 3);
    assert_eq!(chain.plugins[0].stats.view().consecutive_failures, 3);
}

#[test]
fn a_batch_runs_in_bounded_calls_on_a_reused_instance() {
    let rt = Runtime::new(RuntimeSettings {
        max_instances: 4,
        max_idle_instances: 2,
        max_events_per_call: 7,
        ..RuntimeSettings::default()
    })
    .unwrap();
    let compiled = rt
        .compile(&component("required_properties"), PluginKind::Validator)
        .unwrap();
    let pool = InstancePool::new(&rt);
    let config = r#"{"required": {"*": ["plan"]}}"#;
    // Every third event lacks `plan`: the verdicts must come back in order
    // across the 15 calls this batch is split into.
    let events: Vec<Event> = (0..100)
        .map(|i| {
            let properties = if i % 3 == 0 {
                "{}"
            } else {
                r#"{"plan": "pro"}"#
            };
            event(i, "e", properties, None)
        })
        .collect();
    for round in 0..3 {
        let results = rt
            .run_batch(&compiled, &pool, &tag("rp"), config, &events)
            .unwrap();
        let BatchResults::Verdicts(verdicts) = results else {
            panic!("a validator returns verdicts")
        };
        assert_eq!(verdicts.len(), 100);
        for (i, verdict) in verdicts.iter().enumerate() {
            assert_eq!(
                matches!(verdict, Verdict::Reject(_)),
                i % 3 == 0,
                "round {round}, event {i}"
            );
        }
        assert_eq!(
            pool.idle(),
            1,
            "one instance, parked again after each batch"
        );
        assert_eq!(rt.idle_instances(), 1);
    }
    drop(pool);
    assert_eq!(
        rt.idle_instances(),
        0,
        "a dropped pool gives its slots back"
    );
}

#[test]
fn an_instance_that_failed_is_not_reused_and_idle_instances_are_bounded() {
    let rt = Runtime::new(RuntimeSettings {
        max_instances: 4,
        max_idle_instances: 1,
        ..RuntimeSettings::default()
    })
    .unwrap();
    let trap = rt
        .compile(&component("fixture_trap"), PluginKind::Validator)
        .unwrap();
    let trap_pool = InstancePool::new(&rt);
    let events = [event(1, "e", "{}", None)];
    assert!(matches!(
        rt.run_batch(&trap, &trap_pool, &tag("trap"), "{}", &events),
        Err(CallError::Trap(_))
    ));
    assert_eq!(trap_pool.idle(), 0, "a trapped instance is dropped");

    let good = rt
        .compile(&component("required_properties"), PluginKind::Validator)
        .unwrap();
    let (a, b) = (InstancePool::new(&rt), InstancePool::new(&rt));
    let config = r#"{"required": {}}"#;
    rt.run_batch(&good, &a, &tag("rp"), config, &events)
        .unwrap();
    rt.run_batch(&good, &b, &tag("rp"), config, &events)
        .unwrap();
    assert_eq!(
        (a.idle(), b.idle(), rt.idle_instances()),
        (1, 0, 1),
        "past max_idle_instances an instance is dropped, not parked"
    );
}

#[test]
fn an_enricher_that_changes_nothing_leaves_events_unchanged() {
    let rt = runtime();
    let chain = TeamChain {
        plugins: vec![example(&rt, "pii_scrubber")],
    };
    let fates = chain.run(
        &rt,
        vec![
            event(1, "e", r#"{"plan": "pro"}"#, None),
            event(2, "e", r#"{"email": "x@y.io"}"#, None),
        ],
        &Limits::default(),
        &|_: &ChainPlugin, _: u64, _: &CallError| {},
    );
    assert!(matches!(fates[0], Fate::Keep), "{:?}", fates[0]);
    assert!(matches!(fates[1], Fate::Changed(_)), "{:?}", fates[1]);
}

#[test]
fn the_cpu_budget_is_per_batch_not_per_instance_lifetime() {
    // 50 ms per batch (a batch here takes a few ms); the instance below
    // spends far more than that in total, over many batches and single
    // calls, and none may be cut off.
    let rt = runtime_with_cpu(50);
    let compiled = rt
        .compile(&component("required_properties"), PluginKind::Validator)
        .unwrap();
    let pool = InstancePool::new(&rt);
    let config = r#"{"required": {"*": ["plan"]}}"#;
    let events: Vec<Event> = (0..200)
        .map(|i| {
            event(
                i,
                "e",
                r#"{"plan": "pro", "padding": "0123456789abcdef0123456789abcdef"}"#,
                None,
            )
        })
        .collect();
    let mut instance = rt.instantiate(&compiled, &tag("rp")).unwrap();
    instance.init(config).unwrap();
    let started = std::time::Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(500) || calls < 20 {
        rt.run_batch(&compiled, &pool, &tag("rp"), config, &events)
            .unwrap();
        instance.run_batch(rt.config(), &events).unwrap();
        calls += 1;
    }
    assert_eq!(pool.idle(), 1);
}

#[test]
fn fates_stay_in_order_when_plugins_remove_events_along_the_chain() {
    let rt = runtime();
    let chain = TeamChain {
        plugins: vec![
            example(&rt, "required_properties"),
            example(&rt, "bot_filter"),
            example(&rt, "pii_scrubber"),
        ],
    };
    let bot = Some(r#"{"user_agent": "Googlebot/2.1"}"#);
    let events = vec![
        event(0, "e", r#"{"plan": "pro"}"#, None),
        event(1, "e", r#"{}"#, None),
        event(2, "e", r#"{"plan": "pro", "email": "a@b.io"}"#, None),
        event(3, "e", r#"{"plan": "pro"}"#, bot),
        event(4, "e", r#"{"plan": "pro", "email": "c@d.io"}"#, bot),
        event(5, "e", r#"{"plan": "pro", "email": "e@f.io"}"#, None),
    ];
    let fates = chain.run(
        &rt,
        events,
        &Limits::default(),
        &|_: &ChainPlugin, _: u64, _: &CallError| {},
    );
    assert_eq!(fates.len(), 6);
    assert!(matches!(fates[0], Fate::Keep), "{:?}", fates[0]);
    assert!(
        matches!(&fates[1], Fate::Reject(r) if r.message.contains("plan")),
        "{:?}",
        fates[1]
    );
    for i in [2, 5] {
        match &fates[i] {
            Fate::Changed(e) => {
                assert_eq!(e.user_id, format!("u{i}"), "event {i} kept its place");
                assert!(e.properties.contains("sha256:"), "{}", e.properties);
            }
            other => panic!("event {i}: {other:?}"),
        }
    }
    for i in [3, 4] {
        assert!(
            matches!(&fates[i], Fate::Reject(r) if r.message.contains("bot")),
            "event {i}: {:?}",
            fates[i]
        );
    }
}

/// A plugin with an event filter runs only on those events, which keep
/// their places; the others pass it untouched and uncounted.
#[test]
fn a_plugin_with_an_event_filter_sees_only_its_events() {
    let rt = runtime();
    let only = |plugin: ChainPlugin, names: &[&str]| ChainPlugin {
        events: Some(Arc::new(names.iter().map(|n| n.to_string()).collect())),
        ..plugin
    };
    let chain = TeamChain {
        plugins: vec![
            only(example(&rt, "required_properties"), &["Signed Up"]),
            only(example(&rt, "pii_scrubber"), &["Signed Up", "Invited"]),
            only(example(&rt, "bot_filter"), &["Never Sent"]),
        ],
    };
    let (required, scrubber, bots) = (
        chain.plugins[0].stats.clone(),
        chain.plugins[1].stats.clone(),
        chain.plugins[2].stats.clone(),
    );
    let bot = Some(r#"{"user_agent": "Googlebot/2.1"}"#);
    let events = vec![
        event(0, "Page Viewed", r#"{"email": "a@b.io"}"#, bot),
        event(1, "Signed Up", r#"{"email": "c@d.io"}"#, None),
        event(
            2,
            "Signed Up",
            r#"{"plan": "pro", "email": "e@f.io"}"#,
            None,
        ),
        event(3, "Invited", r#"{"email": "g@h.io"}"#, None),
        event(4, "Page Viewed", r#"{}"#, None),
    ];
    let fates = chain.run(
        &rt,
        events,
        &Limits::default(),
        &|_: &ChainPlugin, _: u64, _: &CallError| {},
    );
    assert_eq!(fates.len(), 5);
    // Neither validator nor enricher looked at the page views: no `plan`
    // needed, the email kept, the bot let through.
    assert!(matches!(fates[0], Fate::Keep), "{:?}", fates[0]);
    assert!(matches!(fates[4], Fate::Keep), "{:?}", fates[4]);
    assert!(
        matches!(&fates[1], Fate::Reject(r) if r.message.contains("plan")),
        "{:?}",
        fates[1]
    );
    for (i, user) in [(2, "u2"), (3, "u3")] {
        match &fates[i] {
            Fate::Changed(e) => {
                assert_eq!(e.user_id, user, "event {i} kept its place");
                assert!(e.properties.contains("sha256:"), "{}", e.properties);
            }
            other => panic!("event {i}: {other:?}"),
        }
    }
    let counts = |stats: &Arc<sluice_plugin_host::stats::PluginStats>| {
        let view = stats.view();
        (view.calls, view.events, view.rejects)
    };
    assert_eq!(counts(&required), (1, 2, 1), "two sign-ups, one rejected");
    assert_eq!(
        counts(&scrubber),
        (1, 2, 0),
        "the surviving sign-up and the invite"
    );
    assert_eq!(counts(&bots), (0, 0, 0), "no event of its name: not called");
    // The filter as the admin API compares it with a record's `events`.
    assert!(chain.plugins[1].runs_on(&["Invited".to_owned(), "Signed Up".to_owned()]));
    assert!(!chain.plugins[1].runs_on(&["Signed Up".to_owned()]));
    assert!(!chain.plugins[1].runs_on(&[]));
    assert!(example(&rt, "bot_filter").runs_on(&[]));

    // A failing plugin's policy applies to its events only.
    let trap = ChainPlugin {
        events: Some(Arc::new(["Signed Up".to_owned()].into())),
        ..chain_of(
            &rt,
            "fixture_trap",
            PluginKind::Validator,
            FailurePolicy::Reject,
            "{}",
        )
    };
    let fates = TeamChain {
        plugins: vec![trap],
    }
    .run(
        &rt,
        vec![
            event(0, "Page Viewed", "{}", None),
            event(1, "Signed Up", "{}", None),
            event(2, "Page Viewed", "{}", None),
        ],
        &Limits::default(),
        &|_: &ChainPlugin, _: u64, _: &CallError| {},
    );
    assert!(matches!(fates[0], Fate::Keep), "{:?}", fates[0]);
    assert!(
        matches!(&fates[1], Fate::Reject(r) if r.code == RejectCode::PluginFailed),
        "{:?}",
        fates[1]
    );
    assert!(matches!(fates[2], Fate::Keep), "{:?}", fates[2]);
}

/// `plugins.runtime.perf_map`: compiling a plugin names its functions in
/// `/tmp/perf-<pid>.map`, the file `perf report` reads for JIT code.
#[test]
fn perf_map_names_the_plugins_functions() {
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()));
    let rt = Runtime::new(RuntimeSettings {
        perf_map: true,
        max_instances: 2,
        ..RuntimeSettings::default()
    })
    .unwrap();
    let compiled = rt
        .compile(&component("required_properties"), PluginKind::Validator)
        .unwrap();
    // The map is written as the code is registered; a line is
    // `0x<hex address> <hex size> <symbol>`.
    let text = std::fs::read_to_string(&map).unwrap();
    let plugin_lines = text
        .lines()
        .filter(|line| line.contains("required_properties"))
        .collect::<Vec<_>>();
    assert!(
        !plugin_lines.is_empty(),
        "no required_properties symbol in {}",
        map.display()
    );
    let fields: Vec<&str> = plugin_lines[0].splitn(3, ' ').collect();
    assert_eq!(fields.len(), 3, "{}", plugin_lines[0]);
    let address = fields[0].strip_prefix("0x").unwrap_or(fields[0]);
    assert!(
        u64::from_str_radix(address, 16).is_ok_and(|a| a > 0),
        "{}",
        plugin_lines[0]
    );
    assert!(u64::from_str_radix(fields[1], 16).is_ok_and(|s| s > 0));
    drop(compiled);
    let _ = std::fs::remove_file(&map);
}
