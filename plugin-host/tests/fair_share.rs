//! Per-team shares of the plugin slots (`max_instances_per_team`): a team
//! whose batches are slow (here a plugin that spins until its CPU budget
//! stops it) queues behind its own batches and never holds the slots other
//! teams need.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{chain_of, event};
use sluice_core::Limits;
use sluice_plugin_host::chain::TeamChain;
use sluice_plugin_host::registry::FailurePolicy;
use sluice_plugin_host::runtime::{PluginKind, RuntimeSettings};
use sluice_plugin_host::{PluginHost, PluginSettings};

/// Two slots. Team A sends two batches to a spinning validator (each runs
/// to the 200 ms CPU budget), then team B, once A holds every slot it can
/// get, sends one to a quick validator. Returns how many of A's batches had
/// finished their plugin call when B's batch was answered.
async fn a_batches_done_when_b_is_answered(per_team: u32) -> u64 {
    let settings = PluginSettings {
        runtime: RuntimeSettings {
            cpu_budget_ms: 200,
            max_instances: 2,
            max_instances_per_team: per_team,
            ..RuntimeSettings::default()
        },
        ..PluginSettings::default()
    };
    let host = PluginHost::new(&settings, None).unwrap();
    let mut spin = chain_of(
        host.runtime(),
        "fixture_infinite_loop",
        PluginKind::Validator,
        FailurePolicy::Pass,
        "{}",
    );
    spin.tag.team = Arc::from("team-a");
    // Recorded by the chain inside the slot, before the slot is released.
    let spun = spin.stats.clone();
    let mut quick = chain_of(
        host.runtime(),
        "required_properties",
        PluginKind::Validator,
        FailurePolicy::Reject,
        r#"{"required":["plan"]}"#,
    );
    quick.tag.team = Arc::from("team-b");
    host.set_chain(
        "team-a",
        TeamChain {
            plugins: vec![spin],
        },
    );
    host.set_chain(
        "team-b",
        TeamChain {
            plugins: vec![quick],
        },
    );

    let batch = |team: &str| {
        let host = host.clone();
        let chain = host.chain(team).unwrap();
        tokio::spawn(async move {
            let fates = host
                .run(
                    chain,
                    vec![event(1, "e", r#"{"plan":"pro"}"#, None)],
                    Limits::default(),
                )
                .await
                .unwrap();
            assert_eq!(fates.len(), 1);
        })
    };
    let a = [batch("team-a"), batch("team-a")];
    // B asks only once A holds every slot it can get: one with a share of
    // one, both without. (A condition, polled; A spins for 200 ms of CPU.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while host.busy_slots() < per_team as usize {
        assert!(Instant::now() < deadline, "A never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    batch("team-b").await.unwrap();
    let done = spun.view().calls;
    for task in a {
        task.await.unwrap();
    }
    assert_eq!(spun.view().calls, 2);
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_team_queues_behind_itself_not_in_front_of_others() {
    // One slot each: A's second batch waits for A's first; B takes the
    // other slot at once and is answered while A's first still spins.
    assert_eq!(a_batches_done_when_b_is_answered(1).await, 0);
}

/// The same run without per-team shares, so the test above cannot pass by
/// accident: A's two batches take both slots and B waits for one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_shares_a_slow_team_holds_every_slot() {
    assert!(a_batches_done_when_b_is_answered(2).await >= 1);
}
