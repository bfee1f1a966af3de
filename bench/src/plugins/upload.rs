//! Upload to `active`, as a team sees it, through a real gateway's admin API:
//! how soon the upload is answered (it does not wait for the compile), how
//! soon the plugin runs on a replica that never compiled it (no artifact in
//! the cache), and how soon a restarted replica runs it again from its warm
//! artifact cache (`/readyz` waits for the start's plugins, so "ready" and
//! "running the plugin" are the same moment).
//!
//! Two invocations around a restart done by `scripts/bench-plugins`: `upload`
//! measures the first two, `restart` the third, from the moment the script
//! spawned the new gateway process (`--since-unix-ns`).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const BEGIN_MARKER: &str =
    "<!-- BEGIN GENERATED PLUGIN UPLOAD RESULTS (scripts/bench-plugins) -->";
pub const END_MARKER: &str = "<!-- END GENERATED PLUGIN UPLOAD RESULTS -->";

/// Goals of issue 16: upload → `active` on a cold replica, and a restart
/// with a warm cache.
const UPLOAD_GOAL_S: f64 = 30.0;
const RESTART_GOAL_S: f64 = 2.0;

#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub gateway_url: String,
    pub admin_token: String,
    pub component: PathBuf,
    pub team: String,
    pub name: String,
    /// Config the plugin needs to be valid (JSON object).
    pub config: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadResults {
    pub measured_at: String,
    pub load_average: String,
    pub component: String,
    pub component_bytes: usize,
    /// The upload's HTTP answer (`202 compiling`).
    pub answer_ms: f64,
    /// Upload sent → the admin API shows `active` on this replica.
    pub active_ms: f64,
    /// Process spawned → `active` again, from the artifact cache.
    #[serde(default)]
    pub restart_active_ms: Option<f64>,
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?)
}

fn plugin_url(options: &UploadOptions) -> String {
    format!(
        "{}/admin/v1/teams/{}/plugins/{}",
        options.gateway_url.trim_end_matches('/'),
        options.team,
        options.name
    )
}

/// Polls (every 10 ms; connection errors while the process starts count as
/// "not yet") until the plugin's state on this replica is `active`.
async fn wait_active(client: &reqwest::Client, options: &UploadOptions) -> anyhow::Result<()> {
    let deadline = Instant::now() + options.timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Ok(response) = client
            .get(plugin_url(options))
            .bearer_auth(&options.admin_token)
            .send()
            .await
            && let Ok(shown) = response.json::<serde_json::Value>().await
        {
            match shown["state"].as_str() {
                Some("active") => return Ok(()),
                Some("failed") => anyhow::bail!("the gateway could not compile it: {shown}"),
                _ => last = shown.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!(
        "{} not active after {:?}: {last}",
        options.name,
        options.timeout
    )
}

/// Uploads and activates the component with its config, and times it.
pub async fn upload(options: &UploadOptions) -> anyhow::Result<UploadResults> {
    let bytes = std::fs::read(&options.component)
        .with_context(|| format!("reading {}", options.component.display()))?;
    let client = client()?;
    let config: serde_json::Value = serde_json::from_str(&options.config)?;
    let started = Instant::now();
    let response = client
        .put(format!(
            "{}/versions/1.0.0?kind=validator&activate=true",
            plugin_url(options)
        ))
        .bearer_auth(&options.admin_token)
        .body(bytes.clone())
        .send()
        .await?;
    let answer = started.elapsed();
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    anyhow::ensure!(
        status.as_u16() == 202,
        "upload answered {status}: {body} (a name already used on these topics?)"
    );
    let response = client
        .patch(plugin_url(options))
        .bearer_auth(&options.admin_token)
        .json(&serde_json::json!({ "config": config }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "configuring: {}",
        response.text().await.unwrap_or_default()
    );
    wait_active(&client, options).await?;
    let active = started.elapsed();
    Ok(UploadResults {
        measured_at: sluice_core::Timestamp::now().to_rfc3339(),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        component: options
            .component
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        component_bytes: bytes.len(),
        answer_ms: answer.as_secs_f64() * 1e3,
        active_ms: active.as_secs_f64() * 1e3,
        restart_active_ms: None,
    })
}

/// One invocation: without `restart_since_unix_ns` upload and write the
/// results to `results`; with it, time the restart and add it to them. With
/// `doc`, render them into its upload section.
pub async fn run(
    options: &UploadOptions,
    restart_since_unix_ns: Option<u128>,
    results_path: &std::path::Path,
    doc: Option<&std::path::Path>,
    commit: &str,
) -> anyhow::Result<()> {
    let results = match restart_since_unix_ns {
        None => upload(options).await?,
        Some(since) => {
            let mut results: UploadResults = crate::read_json(results_path)?;
            results.restart_active_ms = Some(restart(options, since).await?);
            results
        }
    };
    crate::write_json(results_path, &results)?;
    eprintln!(
        "==> plugins-upload: answered in {:.0} ms, active after {:.1} s{}",
        results.answer_ms,
        results.active_ms / 1e3,
        results
            .restart_active_ms
            .map(|ms| format!(", after a restart {:.2} s", ms / 1e3))
            .unwrap_or_default()
    );
    if let Some(doc) = doc {
        update_doc(doc, &results, commit)?;
    }
    Ok(())
}

/// Milliseconds from `since_unix_ns` (when the restarted process was
/// spawned) until it runs the plugin.
pub async fn restart(options: &UploadOptions, since_unix_ns: u128) -> anyhow::Result<f64> {
    wait_active(&client()?, options).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    anyhow::ensure!(now >= since_unix_ns, "--since-unix-ns is in the future");
    Ok((now - since_unix_ns) as f64 / 1e6)
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**not met**" }
}

/// The generated markdown (between the markers).
pub fn render(results: &UploadResults, commit: &str) -> String {
    let mut md = format!(
        "\n#### Upload to `active` through the admin API\n\n{} (load average at start {}); commit {commit}. One release gateway process (the one measured above), `{}` ({:.1} MB) uploaded as a new plugin of a team of its own; times from the upload request, and from spawning the restarted process, until the admin API shows `active`.\n\n| what | measured | goal | verdict |\n|---|---:|---:|---|\n",
        results.measured_at,
        results.load_average,
        results.component,
        results.component_bytes as f64 / 1e6
    );
    md.push_str(&format!(
        "| upload answered (`202`, `compiling`) | {:.0} ms | | |\n",
        results.answer_ms
    ));
    let active_s = results.active_ms / 1e3;
    md.push_str(&format!(
        "| upload → `active`, nothing cached (compiled on this replica) | {active_s:.1} s | ≤ {UPLOAD_GOAL_S:.0} s | {} |\n",
        verdict(active_s <= UPLOAD_GOAL_S)
    ));
    match results.restart_active_ms {
        Some(ms) => md.push_str(&format!(
            "| restart → ready and `active`, warm artifact cache | {:.2} s | ≤ {RESTART_GOAL_S:.0} s | {} |\n",
            ms / 1e3,
            verdict(ms / 1e3 <= RESTART_GOAL_S)
        )),
        None => md.push_str("| restart → ready and `active`, warm artifact cache | not measured | ≤ 2 s | |\n"),
    }
    md
}

/// Rewrites the generated upload part of the plugin section of `doc`.
pub fn update_doc(
    doc: &std::path::Path,
    results: &UploadResults,
    commit: &str,
) -> anyhow::Result<()> {
    crate::report::update_section(doc, BEGIN_MARKER, END_MARKER, &render(results, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_are_judged_on_what_was_measured() {
        let mut results = UploadResults {
            component: "ts_required_properties.wasm".to_owned(),
            component_bytes: 12_000_000,
            answer_ms: 40.0,
            active_ms: 31_000.0,
            ..UploadResults::default()
        };
        let md = render(&results, "abc");
        assert!(md.contains("| 31.0 s | ≤ 30 s | **not met** |"), "{md}");
        assert!(md.contains("| not measured | ≤ 2 s | |"), "{md}");
        results.active_ms = 9_000.0;
        results.restart_active_ms = Some(2_100.0);
        let md = render(&results, "abc");
        assert!(md.contains("| 9.0 s | ≤ 30 s | **met** |"), "{md}");
        assert!(md.contains("| 2.10 s | ≤ 2 s | **not met** |"), "{md}");
    }
}
