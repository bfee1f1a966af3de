//! A hostile neighbour in a real gateway: what other teams see while one
//! team's TypeScript plugin spins on every batch until its CPU budget stops
//! it (`ts_fixture_infinite_loop`, failure policy `pass`, and never
//! disabled: the benchmark gateway raises `disable_after_failures`).
//!
//! Two other teams load the gateway throughout: one without plugins and one
//! whose batches run a TypeScript validator (`ts_required_properties`, which
//! accepts the workload's events). Interleaved rounds of those two alone (their
//! normal range under load), then the same with the hostile team loading at
//! the same time; each team's p50/p99 and events/s in both, as ratios within
//! the round. The sandbox's promise is that the hostile team is contained:
//! its batches are bounded by the CPU budget and by its share of the plugin
//! slots (`max_instances_per_team`), so its spinning takes at most that
//! share of the cores.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::load::{self, Tally, Target};
use crate::suite::WorkloadOptions;
use crate::workload::Workload;

pub const BEGIN_MARKER: &str =
    "<!-- BEGIN GENERATED PLUGIN NEIGHBOUR RESULTS (scripts/bench-plugins) -->";
pub const END_MARKER: &str = "<!-- END GENERATED PLUGIN NEIGHBOUR RESULTS -->";

/// The hostile plugin, from the components directory.
const HOSTILE: &str = "ts_fixture_infinite_loop";
/// The plugin team's validator, and a configuration the workload passes.
const VALIDATOR: &str = "ts_required_properties";
const VALIDATOR_CONFIG: &str = r#"{"required": {"*": ["product_id", "session_id"]}}"#;

#[derive(Debug, Clone)]
pub struct NeighbourOptions {
    pub gateway_url: String,
    pub admin_token: String,
    pub components: PathBuf,
    /// `(team, api key)` of the team without plugins.
    pub quiet: (String, String),
    /// `(team, api key)` of the team that gets [`VALIDATOR`].
    pub with_plugin: (String, String),
    /// `(team, api key)` of the team that gets the hostile plugin.
    pub hostile: (String, String),
    pub batch: usize,
    pub clients: usize,
    pub hostile_clients: usize,
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub workload: WorkloadOptions,
    /// How the gateway was configured, for the report.
    pub per_team_slots: String,
}

/// One run of one team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamRun {
    pub events_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub accepted: u64,
    pub failed: u64,
    pub transport_errors: u64,
}

impl TeamRun {
    fn from(tally: &Tally) -> Self {
        Self {
            events_per_second: tally.accepted as f64 / tally.elapsed.as_secs_f64().max(1e-9),
            p50_ms: tally.latency.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: tally.latency.value_at_quantile(0.99) as f64 / 1000.0,
            accepted: tally.accepted,
            failed: tally.failed,
            transport_errors: tally.transport_errors,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NeighbourRound {
    /// The team without plugins, beside the plugin team only.
    pub alone: TeamRun,
    /// The team without plugins while the hostile team loads too.
    pub with_hostile: TeamRun,
    /// The team with a plugin, beside the team without only.
    pub plugin_alone: TeamRun,
    /// The team with a plugin while the hostile team loads too.
    pub plugin_with_hostile: TeamRun,
    pub hostile: TeamRun,
}

/// The rounds on one gateway configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NeighbourRun {
    pub measured_at: String,
    pub load_average: String,
    pub batch: usize,
    pub clients: usize,
    pub hostile_clients: usize,
    /// The gateway's `plugins.runtime.max_instances_per_team`.
    pub per_team_slots: String,
    pub rounds: Vec<NeighbourRound>,
}

/// Every configuration measured, in order (`--results` accumulates them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NeighbourResults {
    pub runs: Vec<NeighbourRun>,
}

/// Uploads `component` as `team`'s validator `name` with `change` (policy,
/// configuration) and waits until the gateway runs it.
async fn install(
    client: &reqwest::Client,
    options: &NeighbourOptions,
    team: &str,
    name: &str,
    component: &str,
    change: serde_json::Value,
) -> anyhow::Result<()> {
    let base = options.gateway_url.trim_end_matches('/');
    let path = options.components.join(format!("{component}.wasm"));
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let plugin = format!("{base}/admin/v1/teams/{team}/plugins/{name}");
    let response = client
        .put(format!(
            "{plugin}/versions/1.0.0?kind=validator&activate=true"
        ))
        .bearer_auth(&options.admin_token)
        .body(bytes)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success() || response.status().as_u16() == 409,
        "uploading {component}: {}",
        response.text().await.unwrap_or_default()
    );
    let response = client
        .patch(&plugin)
        .bearer_auth(&options.admin_token)
        .json(&change)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "configuring {component}: {}",
        response.text().await.unwrap_or_default()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let shown: serde_json::Value = client
            .get(&plugin)
            .bearer_auth(&options.admin_token)
            .send()
            .await?
            .json()
            .await?;
        if shown["state"] == "active" {
            return Ok(());
        }
        anyhow::ensure!(
            shown["state"] != "failed" && std::time::Instant::now() < deadline,
            "{component} not active: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(options: &NeighbourOptions) -> anyhow::Result<NeighbourRun> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    eprintln!(
        "==> plugins-neighbour: installing {HOSTILE} for {} and {VALIDATOR} for {}",
        options.hostile.0, options.with_plugin.0
    );
    // `pass`: its failures let the events through, so the hostile team keeps
    // sending full batches, each of which spins to the budget.
    let hostile_change = json!({ "policy": "pass", "enabled": true });
    install(
        &client,
        options,
        &options.hostile.0,
        "spin",
        HOSTILE,
        hostile_change,
    )
    .await?;
    let config: serde_json::Value = serde_json::from_str(VALIDATOR_CONFIG)?;
    let validator_change = json!({ "config": config, "enabled": true });
    install(
        &client,
        options,
        &options.with_plugin.0,
        "required",
        VALIDATOR,
        validator_change,
    )
    .await?;
    let workload = Workload::generate(
        options.workload.distinct_events,
        options.workload.users,
        options.workload.seed,
    )?;
    let count = options
        .clients
        .max(workload.len() / options.batch.max(1))
        .max(4);
    let bodies = Arc::new(workload.bodies(options.batch, count));
    let target = |key: &str, clients: usize| {
        Target::new(
            &options.gateway_url,
            key,
            clients.max(16),
            Duration::from_secs(30),
        )
    };
    let quiet = target(&options.quiet.1, options.clients)?;
    let plugged = target(&options.with_plugin.1, options.clients)?;
    let hostile = target(&options.hostile.1, options.hostile_clients)?;
    quiet.wait_ready(Duration::from_secs(60)).await?;
    let mut results = NeighbourRun {
        measured_at: sluice_core::Timestamp::now().to_rfc3339(),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        batch: options.batch,
        clients: options.clients,
        hostile_clients: options.hostile_clients,
        per_team_slots: options.per_team_slots.clone(),
        rounds: Vec::new(),
    };
    for round in 1..=options.rounds.max(1) {
        let (clients, duration) = (options.clients, options.duration);
        tokio::join!(
            load::closed_loop(&quiet, &bodies, clients, options.warmup),
            load::closed_loop(&plugged, &bodies, clients, options.warmup),
        );
        let (alone, plugin_alone) = tokio::join!(
            load::closed_loop(&quiet, &bodies, clients, duration),
            load::closed_loop(&plugged, &bodies, clients, duration),
        );
        let (with_hostile, plugin_with_hostile, hostile) = tokio::join!(
            load::closed_loop(&quiet, &bodies, clients, duration),
            load::closed_loop(&plugged, &bodies, clients, duration),
            load::closed_loop(&hostile, &bodies, options.hostile_clients, duration),
        );
        let measured = NeighbourRound {
            alone: TeamRun::from(&alone),
            with_hostile: TeamRun::from(&with_hostile),
            plugin_alone: TeamRun::from(&plugin_alone),
            plugin_with_hostile: TeamRun::from(&plugin_with_hostile),
            hostile: TeamRun::from(&hostile),
        };
        eprintln!(
            "==> plugins-neighbour: round {round}: p99 without / with the hostile team: team without plugins {:.1} / {:.1} ms, team with a plugin {:.1} / {:.1} ms",
            measured.alone.p99_ms,
            measured.with_hostile.p99_ms,
            measured.plugin_alone.p99_ms,
            measured.plugin_with_hostile.p99_ms,
        );
        results.rounds.push(measured);
    }
    Ok(results)
}

/// `run`'s events/s and p50 / p99 ms, as a table cell.
fn cell(run: &TeamRun) -> String {
    format!(
        "{:.0}, {:.1} / {:.1}",
        run.events_per_second, run.p50_ms, run.p99_ms
    )
}

/// The generated markdown (between the markers).
pub fn render(results: &NeighbourResults, commit: &str) -> String {
    let Some(first) = results.runs.first() else {
        return String::new();
    };
    let mut md = format!(
        "\n#### A hostile neighbour: a TypeScript plugin spinning on every batch\n\n{} (load average at start {}); commit {commit}. The release gateway above; two teams load it at batch {}, {} clients each, closed loop: one without plugins, one whose batches run `{VALIDATOR}` (TypeScript; every event passes it). First those two alone (their normal range), then while a third team ({} clients, same batches) has `{HOSTILE}` as its validator (policy `pass`, never disabled: every batch spins to the 100 ms CPU budget). Once per setting of `plugins.runtime.max_instances_per_team`: how many of one team's batches may run plugins at once. Cells: events/s, p50 / p99 ms.\n\n| plugin slots per team | round | team without plugins: normal | with the hostile team | p99 ratio | team with a plugin: normal | with the hostile team | p99 ratio | hostile team: events/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        first.measured_at, first.load_average, first.batch, first.clients, first.hostile_clients,
    );
    let mut failed = 0;
    for run in &results.runs {
        for (i, r) in run.rounds.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {:.2} × | {} | {} | {:.2} × | {:.0} |\n",
                run.per_team_slots,
                i + 1,
                cell(&r.alone),
                cell(&r.with_hostile),
                r.with_hostile.p99_ms / r.alone.p99_ms.max(1e-9),
                cell(&r.plugin_alone),
                cell(&r.plugin_with_hostile),
                r.plugin_with_hostile.p99_ms / r.plugin_alone.p99_ms.max(1e-9),
                r.hostile.events_per_second,
            ));
            failed += [
                &r.alone,
                &r.with_hostile,
                &r.plugin_alone,
                &r.plugin_with_hostile,
            ]
            .iter()
            .map(|t| t.failed + t.transport_errors)
            .sum::<u64>();
        }
    }
    md.push_str(&format!(
        "\nEvents of the two other teams answered `failed` or not answered at all, over every run: {failed}.\n"
    ));
    md
}

pub fn update_doc(
    doc: &std::path::Path,
    results: &NeighbourResults,
    commit: &str,
) -> anyhow::Result<()> {
    crate::report::update_section(doc, BEGIN_MARKER, END_MARKER, &render(results, commit))
}
