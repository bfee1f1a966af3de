//! Plugins in a real gateway: the same gateway process, three teams with 0,
//! 1 and 3 plugins uploaded through the admin API, closed-loop load per team
//! against Kafka. This is the throughput a team sees, HTTP and Kafka
//! included, so it is what "three plugins cost at most 15 % of the
//! no-plugin throughput" is judged on; the in-process ingest-stage numbers
//! (the rest of `sluice-bench plugins`) explain where the cost goes.
//!
//! Teams are measured back to back at each batch size in interleaved rounds
//! (order reversed every other round), and the gateway's CPU time per
//! accepted event is read from `/proc/<pid>/stat` around each run, so a
//! neighbour slowing one run down shows as noise in events/s but hardly in
//! CPU µs per event.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_plugin_host::runtime::PluginKind;

use super::PLUGINS;
use crate::load::{self, Target};
use crate::procfs::{CpuClock, Pid};
use crate::suite::{BatchPlan, WorkloadOptions};
use crate::workload::Workload;

/// One team of the comparison: its label, API key and team id, how many
/// of [`PLUGINS`] (from the first) it runs, and the one event name its
/// enricher is limited to by an event filter, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    pub label: String,
    pub team: String,
    pub api_key: String,
    pub plugins: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enricher_only_on: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub gateway_url: String,
    pub gateway_pid: u32,
    pub admin_token: String,
    pub components: PathBuf,
    pub setups: Vec<Setup>,
    pub plans: Vec<BatchPlan>,
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub workload: WorkloadOptions,
}

/// One team at one batch size in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayCell {
    pub round: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub setup: String,
    pub plugins: usize,
    /// Whether the team's enricher ran behind an event filter.
    #[serde(default)]
    pub filtered: bool,
    pub accepted: u64,
    pub rejected: u64,
    pub failed: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub gateway_cpu_us_per_event: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayPluginResults {
    /// When the run started (RFC 3339, UTC).
    pub measured_at: String,
    /// `/proc/loadavg` at the start.
    pub load_average: String,
    pub setups: Vec<Setup>,
    pub cells: Vec<GatewayCell>,
}

/// Uploads and activates `count` of [`PLUGINS`] for `team`, with their
/// benchmark configurations.
async fn install(
    client: &reqwest::Client,
    options: &GatewayOptions,
    setup: &Setup,
) -> anyhow::Result<()> {
    let (team, count) = (setup.team.as_str(), setup.plugins);
    let base = options.gateway_url.trim_end_matches('/');
    for spec in PLUGINS.iter().take(count) {
        let path = options.components.join(format!("{}.wasm", spec.name));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let url = format!(
            "{base}/admin/v1/teams/{team}/plugins/{}/versions/1.0.0?kind={}&activate=true",
            spec.name,
            spec.kind.as_str()
        );
        let response = client
            .put(&url)
            .bearer_auth(&options.admin_token)
            .body(bytes)
            .send()
            .await?;
        let status = response.status();
        // 409: the same bytes were uploaded by an earlier run on these topics.
        anyhow::ensure!(
            status.is_success() || status.as_u16() == 409,
            "uploading {} for {team}: {status} {}",
            spec.name,
            response.text().await.unwrap_or_default()
        );
        let config: serde_json::Value = serde_json::from_str(spec.config)?;
        let mut change = json!({ "active_version": "1.0.0", "config": config, "enabled": true });
        if let Some(name) = &setup.enricher_only_on
            && spec.kind == PluginKind::Enricher
        {
            change["events"] = json!([name]);
        }
        let response = client
            .patch(format!(
                "{base}/admin/v1/teams/{team}/plugins/{}",
                spec.name
            ))
            .bearer_auth(&options.admin_token)
            .json(&change)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "configuring {} for {team}: {}",
            spec.name,
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Waits until this replica runs every uploaded plugin of `team` as recorded.
async fn wait_active(
    client: &reqwest::Client,
    options: &GatewayOptions,
    team: &str,
    count: usize,
) -> anyhow::Result<()> {
    let url = format!(
        "{}/admin/v1/teams/{team}/plugins",
        options.gateway_url.trim_end_matches('/')
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed: serde_json::Value = client
            .get(&url)
            .bearer_auth(&options.admin_token)
            .send()
            .await?
            .json()
            .await?;
        let active = listed["plugins"]
            .as_array()
            .map(|plugins| plugins.iter().filter(|p| p["state"] == "active").count())
            .unwrap_or(0);
        if active == count {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{team}: {active} of {count} plugins active after 60 s: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Installs the plugins, then measures every team at every batch size.
pub async fn run(options: &GatewayOptions) -> anyhow::Result<GatewayPluginResults> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    for setup in &options.setups {
        if setup.plugins > 0 {
            eprintln!(
                "==> plugins-gateway: installing {} plugin(s) for {}",
                setup.plugins, setup.team
            );
            install(&client, options, setup).await?;
            wait_active(&client, options, &setup.team, setup.plugins).await?;
        }
    }
    let workload = Workload::generate(
        options.workload.distinct_events,
        options.workload.users,
        options.workload.seed,
    )?;
    let max_clients = options
        .plans
        .iter()
        .map(|p| p.concurrency)
        .max()
        .unwrap_or(1);
    let targets: Vec<Target> = options
        .setups
        .iter()
        .map(|s| {
            Target::new(
                &options.gateway_url,
                &s.api_key,
                max_clients.max(16),
                Duration::from_secs(30),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    targets[0].wait_ready(Duration::from_secs(60)).await?;
    let clock = CpuClock::default();
    let pid = Pid::Other(options.gateway_pid);
    let mut results = GatewayPluginResults {
        measured_at: sluice_core::Timestamp::now().to_rfc3339(),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        setups: options.setups.clone(),
        cells: Vec::new(),
    };
    for round in 1..=options.rounds.max(1) {
        for plan in &options.plans {
            let count = plan
                .concurrency
                .max(workload.len() / plan.batch.max(1))
                .max(4);
            let bodies = Arc::new(workload.bodies(plan.batch, count));
            let mut order: Vec<usize> = (0..options.setups.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for i in order {
                let setup = &options.setups[i];
                let target = &targets[i];
                load::closed_loop(target, &bodies, plan.concurrency, options.warmup).await;
                let cpu0 = clock.seconds(pid)?;
                let tally =
                    load::closed_loop(target, &bodies, plan.concurrency, options.duration).await;
                let cpu = clock.seconds(pid)? - cpu0;
                let seconds = tally.elapsed.as_secs_f64();
                let cell = GatewayCell {
                    round,
                    batch: plan.batch,
                    concurrency: plan.concurrency,
                    setup: setup.label.clone(),
                    plugins: setup.plugins,
                    filtered: setup.enricher_only_on.is_some(),
                    accepted: tally.accepted,
                    rejected: tally.rejected,
                    failed: tally.failed,
                    statuses: tally.statuses.clone(),
                    transport_errors: tally.transport_errors,
                    seconds,
                    events_per_second: tally.accepted as f64 / seconds.max(1e-9),
                    gateway_cpu_us_per_event: cpu * 1e6 / (tally.accepted.max(1)) as f64,
                    p50_ms: tally.latency.value_at_quantile(0.5) as f64 / 1000.0,
                    p99_ms: tally.latency.value_at_quantile(0.99) as f64 / 1000.0,
                };
                eprintln!(
                    "==> plugins-gateway: round {round}, batch {}, {}: {:.0} events/s, {:.2} µs CPU/event, statuses {:?}",
                    plan.batch,
                    setup.label,
                    cell.events_per_second,
                    cell.gateway_cpu_us_per_event,
                    cell.statuses
                );
                results.cells.push(cell);
            }
        }
    }
    Ok(results)
}

/// Per batch size and setup: mean over rounds of events/s, CPU µs/event and
/// their ratios to the no-plugin team of the same round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub batch: usize,
    pub setup: String,
    pub plugins: usize,
    pub filtered: bool,
    pub events_per_second: (f64, f64, f64),
    pub cpu_us_per_event: (f64, f64, f64),
    pub ratio: (f64, f64, f64),
    pub cpu_ratio: (f64, f64, f64),
}

/// Mean, lowest and highest of `values` (NaN when empty).
fn spread(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, low, high)
}

impl GatewayPluginResults {
    /// One row per (batch, setup), in the order measured.
    pub fn summaries(&self) -> Vec<Summary> {
        let mut keys: Vec<(usize, String, usize)> = Vec::new();
        for c in &self.cells {
            let key = (c.batch, c.setup.clone(), c.plugins);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.into_iter()
            .map(|(batch, setup, plugins)| {
                let cells: Vec<&GatewayCell> = self
                    .cells
                    .iter()
                    .filter(|c| c.batch == batch && c.setup == setup)
                    .collect();
                let base = |round: usize| {
                    self.cells
                        .iter()
                        .find(|c| c.batch == batch && c.round == round && c.plugins == 0)
                };
                let ratios: Vec<f64> = cells
                    .iter()
                    .filter_map(|c| {
                        base(c.round).map(|b| c.events_per_second / b.events_per_second)
                    })
                    .collect();
                let cpu_ratios: Vec<f64> = cells
                    .iter()
                    .filter_map(|c| {
                        base(c.round)
                            .map(|b| b.gateway_cpu_us_per_event / c.gateway_cpu_us_per_event)
                    })
                    .collect();
                Summary {
                    batch,
                    plugins,
                    filtered: cells.iter().any(|c| c.filtered),
                    setup,
                    events_per_second: spread(
                        &cells
                            .iter()
                            .map(|c| c.events_per_second)
                            .collect::<Vec<_>>(),
                    ),
                    cpu_us_per_event: spread(
                        &cells
                            .iter()
                            .map(|c| c.gateway_cpu_us_per_event)
                            .collect::<Vec<_>>(),
                    ),
                    ratio: spread(&ratios),
                    cpu_ratio: spread(&cpu_ratios),
                }
            })
            .collect()
    }
}

pub const BEGIN_MARKER: &str =
    "<!-- BEGIN GENERATED PLUGIN GATEWAY RESULTS (scripts/bench-plugins) -->";
pub const END_MARKER: &str = "<!-- END GENERATED PLUGIN GATEWAY RESULTS -->";

/// The most a team with three plugins may lose against one without.
pub const MAX_LOSS: f64 = 0.15;

fn num(v: f64) -> String {
    if v.is_nan() {
        "–".to_owned()
    } else if v >= 1000.0 {
        let whole = v.round() as u64;
        let text = whole.to_string();
        let mut out = String::new();
        for (i, c) in text.chars().enumerate() {
            if i > 0 && (text.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn count(n: u64) -> String {
    if n >= 1000 {
        num(n as f64)
    } else {
        n.to_string()
    }
}

fn with_spread((mean, low, high): (f64, f64, f64)) -> String {
    format!("{} ({}–{})", num(mean), num(low), num(high))
}

/// The generated markdown (between the markers).
pub fn render(results: &GatewayPluginResults, commit: &str) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let rounds = results.cells.iter().map(|c| c.round).max().unwrap_or(0);
    let _ = writeln!(
        md,
        "\n#### In the gateway: 0, 1 and 3 plugins through HTTP and Kafka\n"
    );
    let teams = match results.setups.len() {
        0 | 3 => {
            "three teams (API keys) with 0, 1 (`required_properties`) and 3 plugins".to_owned()
        }
        n => format!("{n} teams (API keys), one per row below,"),
    };
    let filtered: Vec<String> = results
        .setups
        .iter()
        .filter_map(|s| {
            let name = s.enricher_only_on.as_ref()?;
            Some(format!(
                "team `{}` runs its enricher only on `{name}` events, by an event filter (`events` in the plugin's record)",
                s.label
            ))
        })
        .collect();
    let filtered = if filtered.is_empty() {
        String::new()
    } else {
        format!("; {}", filtered.join("; "))
    };
    let _ = writeln!(
        md,
        "{} (load average at start {}); commit {commit}. One release gateway process, {teams} uploaded through the admin API{filtered}; closed loop per team, {rounds} interleaved round(s). Events/s counts events answered `accepted`; gateway CPU is `/proc/<pid>/stat` user + system over the run ÷ accepted events. Ratios are against the team without plugins in the same round, then averaged (lowest–highest round).\n",
        results.measured_at, results.load_average
    );
    let summaries = results.summaries();
    if let Some(three) = summaries
        .iter()
        .filter(|s| s.plugins == 3 && !s.filtered)
        .max_by_key(|s| s.batch)
    {
        let met = three.ratio.0 >= 1.0 - MAX_LOSS;
        let _ = writeln!(
            md,
            "| goal | measured | verdict |\n|---|---|---|\n| batch {}: gateway with 3 plugins ≥ {:.2} × its throughput without plugins | {} × (CPU-cost ratio {} ×) | {} |\n",
            three.batch,
            1.0 - MAX_LOSS,
            with_spread(three.ratio),
            with_spread(three.cpu_ratio),
            if met { "**met**" } else { "**not met**" }
        );
    }
    let _ = writeln!(
        md,
        "| batch | plugins | events/s | ratio to none | gateway CPU µs/event | CPU-cost ratio |\n|---:|---|---:|---:|---:|---:|"
    );
    for s in &summaries {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            s.batch,
            s.setup,
            with_spread(s.events_per_second),
            with_spread(s.ratio),
            with_spread(s.cpu_us_per_event),
            with_spread(s.cpu_ratio)
        );
    }
    let _ = writeln!(
        md,
        "\nEvery run: round, batch, clients, team, accepted / rejected / failed events, HTTP statuses, p50 / p99 ms.\n\n| round | batch | clients | plugins | accepted | rejected | failed | statuses | p50 / p99 ms |\n|---:|---:|---:|---|---:|---:|---:|---|---:|"
    );
    for c in &results.cells {
        let statuses: Vec<String> = c
            .statuses
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {}{} | {} / {} |",
            c.round,
            c.batch,
            c.concurrency,
            c.setup,
            count(c.accepted),
            count(c.rejected),
            count(c.failed),
            statuses.join(", "),
            if c.transport_errors > 0 {
                format!(", no HTTP answer: {}", c.transport_errors)
            } else {
                String::new()
            },
            num(c.p50_ms),
            num(c.p99_ms)
        );
    }
    md
}

/// Rewrites the generated gateway part of the plugin section of `doc`.
pub fn update_doc(
    doc: &std::path::Path,
    results: &GatewayPluginResults,
    commit: &str,
) -> anyhow::Result<()> {
    crate::report::update_section(doc, BEGIN_MARKER, END_MARKER, &render(results, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(round: usize, plugins: usize, eps: f64, cpu: f64) -> GatewayCell {
        GatewayCell {
            round,
            batch: 1000,
            setup: format!("{plugins}"),
            plugins,
            events_per_second: eps,
            gateway_cpu_us_per_event: cpu,
            ..GatewayCell::default()
        }
    }

    #[test]
    fn ratios_are_taken_within_a_round_then_averaged() {
        let results = GatewayPluginResults {
            measured_at: String::new(),
            load_average: String::new(),
            setups: Vec::new(),
            cells: vec![
                cell(1, 0, 100.0, 10.0),
                cell(1, 3, 80.0, 12.5),
                cell(2, 3, 30.0, 20.0),
                cell(2, 0, 50.0, 10.0),
            ],
        };
        let summaries = results.summaries();
        let three = summaries.iter().find(|s| s.plugins == 3).unwrap();
        // Round 1: 0.8; round 2: 0.6 (a slower round does not skew it).
        assert!((three.ratio.0 - 0.7).abs() < 1e-9, "{three:?}");
        assert_eq!((three.ratio.1, three.ratio.2), (0.6, 0.8));
        assert!((three.cpu_ratio.0 - (0.8 + 0.5) / 2.0).abs() < 1e-9);
        let none = summaries.iter().find(|s| s.plugins == 0).unwrap();
        assert_eq!(none.ratio.0, 1.0);
    }

    #[test]
    fn the_goal_is_judged_on_the_unfiltered_team() {
        let filtered = |round| GatewayCell {
            setup: "3, filtered".to_owned(),
            filtered: true,
            ..cell(round, 3, 95.0, 10.5)
        };
        let results = GatewayPluginResults {
            measured_at: String::new(),
            load_average: String::new(),
            setups: Vec::new(),
            cells: vec![cell(1, 0, 100.0, 10.0), cell(1, 3, 60.0, 16.0), filtered(1)],
        };
        let md = render(&results, "abc");
        assert!(md.contains("| 0.60 (0.60–0.60) ×"), "{md}");
        assert!(md.contains("**not met**"), "{md}");
        let summaries = results.summaries();
        let filtered = summaries.iter().find(|s| s.filtered).unwrap();
        assert!((filtered.ratio.0 - 0.95).abs() < 1e-9, "{filtered:?}");
    }
}
