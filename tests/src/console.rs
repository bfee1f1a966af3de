//! The console for `tests/tests/console.rs`: the real `sluice-console`
//! binary on its own port, and the browser driver (`tests/console/drive.js`,
//! headless Debian chromium through `playwright-core`) that runs one
//! scenario against it and answers one JSON object; [`ConsoleStack`], one
//! test's whole pipeline with the console in front.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{GatewayProcess, workspace_binary};
use crate::downstream::{Downstream, sql};
use crate::{OPERATOR_TOKEN, TestTopics};

/// The real `sluice-console` binary, configured from the environment,
/// killed when dropped.
#[derive(Debug)]
pub struct ConsoleProcess {
    pub child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for ConsoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ConsoleProcess {
    /// Starts it against the gateway's admin listener at `gateway`, the
    /// database `database` and the topics of `topics`, plus `env`; returns
    /// once `/readyz` answers 200 (fails if the process exits or 60 s pass).
    pub async fn start(
        gateway: &str,
        topics: &crate::TestTopics,
        database: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(workspace_binary("sluice-console", "sluice-console")?);
        command
            .env("SLUICE_CONSOLE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SLUICE_CONSOLE_GATEWAY__ADMIN_URL", gateway)
            .env(
                "SLUICE_CONSOLE_CLICKHOUSE__URL",
                crate::downstream::clickhouse_url(),
            )
            .env("SLUICE_CONSOLE_CLICKHOUSE__DATABASE", database)
            .env("SLUICE_CONSOLE_KAFKA__BROKERS", crate::kafka().brokers)
            .env("SLUICE_CONSOLE_TOPICS__RAW", &topics.raw)
            .env("SLUICE_CONSOLE_TOPICS__REJECTED", &topics.rejected)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Ok(jaeger) = std::env::var("SLUICE_JAEGER_QUERY_URL") {
            command.env("SLUICE_CONSOLE_TRACING__JAEGER_URL", jaeger);
        }
        command.envs(env.iter().copied());
        let mut console = Self {
            child: command.spawn().context("starting sluice-console")?,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/readyz", console.base)).await
                && response.status() == 200
            {
                return Ok(console);
            }
            if let Some(status) = console.child.try_wait()? {
                bail!("the console exited during start-up: {status}");
            }
            if Instant::now() > deadline {
                bail!("the console was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn cache() -> PathBuf {
    std::env::var_os("SLUICE_CACHE").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/sluice"),
        PathBuf::from,
    )
}

/// Where the driver's screenshots go: `SLUICE_CONSOLE_SCREENSHOTS`, else
/// `<workspace>/target/console-screenshots`.
pub fn screenshots_dir() -> PathBuf {
    std::env::var_os("SLUICE_CONSOLE_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots"),
        PathBuf::from,
    )
}

/// The driver as a command: node with the SDK suite's node_modules
/// (`scripts/sdk-setup`), screenshots into `subdir` of [`screenshots_dir`].
fn driver(scenario: &str, console: &str, key: &str, extra: &[&str], subdir: &str) -> Command {
    let node_modules = std::env::var_os("SLUICE_SDK_NODE")
        .map_or_else(|| cache().join("sdk-node"), PathBuf::from)
        .join("node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir() && node_modules.join("axe-core").is_dir(),
        "{} lacks playwright-core or axe-core: run scripts/sdk-setup",
        node_modules.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console/drive.js");
    let mut command = Command::new("node");
    command
        .arg(script)
        .arg(scenario)
        .arg(console)
        .arg(key)
        .args(extra)
        .env("NODE_PATH", &node_modules)
        .env("SLUICE_CONSOLE_SCREENSHOTS", screenshots_dir().join(subdir));
    command
}

fn result_of(
    scenario: &str,
    status: std::process::ExitStatus,
    stdout: &str,
    stderr: &str,
) -> Value {
    let result: Option<Value> = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok());
    match result {
        Some(result) if status.success() && result.get("error").is_none() => result,
        _ => panic!("drive.js {scenario} failed ({status}):\nstdout: {stdout}\nstderr: {stderr}"),
    }
}

/// Runs one scenario to its end and returns its result; panics with the
/// driver's output if it failed.
pub async fn drive(
    scenario: &str,
    console: &str,
    key: &str,
    extra: &[&str],
    subdir: &str,
) -> Value {
    let mut command = driver(scenario, console, key, extra, subdir);
    let scenario = scenario.to_owned();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the driver's thread")
        .expect("running node (is Node.js 20+ installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    result_of(&scenario, output.status, &stdout, &stderr)
}

/// A scenario that stops half-way (`DRIVE-READY` on its stderr) until
/// [`Paused::resume`] writes a line to its stdin.
#[derive(Debug)]
pub struct Paused {
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
    scenario: String,
}

/// Starts `scenario` and waits until it says it is ready.
pub async fn drive_paused(
    scenario: &str,
    console: &str,
    key: &str,
    extra: &[&str],
    subdir: &str,
) -> Paused {
    let mut command = driver(scenario, console, key, extra, subdir);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("running node");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let shared = log.clone();
    let reader = std::thread::spawn(move || {
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.trim() == "DRIVE-READY"
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(());
            }
            if let Ok(mut log) = shared.lock() {
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
    let ready = tokio::time::timeout(Duration::from_secs(90), ready_rx).await;
    if !matches!(ready, Ok(Ok(()))) {
        let _ = child.kill();
        let output = child.wait_with_output().ok();
        let stdout = output
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "drive.js {scenario} never got ready:\nstdout: {stdout}\nstderr: {}",
            log.lock().map(|l| l.clone()).unwrap_or_default()
        );
    }
    Paused {
        child,
        stderr: log,
        reader,
        scenario: scenario.to_owned(),
    }
}

impl Paused {
    /// Lets the scenario go on and returns its result.
    pub async fn resume(mut self) -> Value {
        let mut stdin = self.child.stdin.take().expect("piped stdin");
        stdin.write_all(b"go\n").expect("writing to the driver");
        drop(stdin);
        let child = self.child;
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("the driver's thread")
            .expect("waiting for the driver");
        // Its stderr closed with the process: the reader has every line.
        let _ = self.reader.join();
        let stderr = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        result_of(
            &self.scenario,
            output.status,
            &String::from_utf8_lossy(&output.stdout),
            &stderr,
        )
    }
}

/// One test's pieces, each its own: topics, the gateway binary with the
/// static `ingest` key of `team`, the loader and aggregator on a fresh
/// database, and the console binary. `admin_key` is an `admin`-role key of
/// `team`, made through the gateway's admin API as an operator would.
#[derive(Debug)]
pub struct ConsoleStack {
    pub topics: TestTopics,
    pub team: String,
    pub gateway: GatewayProcess,
    pub downstream: Downstream,
    pub console: ConsoleProcess,
    pub admin_key: String,
    pub http: reqwest::Client,
}

impl ConsoleStack {
    pub async fn start(team: &str, ingest_key: &str) -> Self {
        let topics = TestTopics::create(1).await.unwrap();
        // With a trace backend around, the gateway exports its spans (the
        // traces page reads them back).
        let otlp = std::env::var("SLUICE_OTLP_ENDPOINT").unwrap_or_default();
        let env: &[(&str, &str)] = if otlp.is_empty() {
            &[]
        } else {
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str())]
        };
        let gateway = GatewayProcess::start(&topics, ingest_key, team, env)
            .await
            .unwrap();
        let downstream = Downstream::start(&topics.raw).await.unwrap();
        let console = ConsoleProcess::start(&gateway.base, &topics, downstream.db(), &[])
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let mut stack = Self {
            topics,
            team: team.to_owned(),
            gateway,
            downstream,
            console,
            admin_key: String::new(),
            http,
        };
        stack.admin_key = stack
            .create_key(team, "admin", "console test admin")
            .await
            .0;
        stack
    }

    pub async fn stop(self) {
        let Self {
            downstream,
            console,
            gateway,
            ..
        } = self;
        drop(console);
        drop(gateway);
        downstream.stop().await.unwrap();
    }

    pub fn db(&self) -> &str {
        self.downstream.db()
    }

    /// A key for `team` with `role` through the gateway's admin API: (key, key id).
    pub async fn create_key(&self, team: &str, role: &str, label: &str) -> (String, String) {
        let response = self
            .http
            .post(format!("{}/admin/v1/keys", self.gateway.base))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({"team_id": team, "role": role, "label": label}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["key"].as_str().unwrap().to_owned(),
            body["key_id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn revoke_key(&self, key_id: &str) {
        let response = self
            .http
            .delete(format!("{}/admin/v1/keys/{key_id}", self.gateway.base))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Posts `events` to the gateway with `key`: (status, answer).
    pub async fn post(&self, key: &str, events: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/v1/events", self.gateway.base))
            .bearer_auth(key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// Posts `events` and checks each outcome: `Ok(())` accepted, `Err(code)` rejected.
    pub async fn send(&self, key: &str, events: Value, outcomes: &[Result<(), &str>]) {
        let (status, answer) = self.post(key, events).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), outcomes.len(), "{answer}");
        for (result, want) in results.iter().zip(outcomes) {
            match want {
                Ok(()) => assert_eq!(result["status"], "accepted", "{answer}"),
                Err(code) => {
                    assert_eq!(result["status"], "rejected", "{answer}");
                    assert_eq!(result["code"], *code, "{answer}");
                }
            }
        }
    }

    /// A console API call with `key`: (status, answer).
    pub async fn api(&self, key: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut request = self.http.get(self.console.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Waits until `events`, `rollups_5m` and the hourly and daily views
    /// hold exactly `n` events of the team. The views are written after
    /// `rollups_5m` within the same insert, so a reader can see the table a
    /// moment before them.
    pub async fn wait_counted(&self, n: u64) {
        let (db, team) = (self.db(), &self.team);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut counts = Vec::new();
            for query in [
                format!("SELECT count() FROM {db}.events WHERE team_id = '{team}' FORMAT TSV"),
                format!(
                    "SELECT sum(events) FROM {db}.rollups_5m WHERE team_id = '{team}' FORMAT TSV"
                ),
                format!(
                    "SELECT sum(events) FROM {db}.rollups_hourly WHERE team_id = '{team}' FORMAT TSV"
                ),
                format!(
                    "SELECT sum(events) FROM {db}.rollups_daily WHERE team_id = '{team}' FORMAT TSV"
                ),
            ] {
                counts.push(number(&query).await);
            }
            if counts.iter().all(|c| *c == n) {
                return;
            }
            assert!(
                counts.iter().all(|c| *c <= n),
                "stored, counted, hourly, daily: {counts:?}; sent {n}"
            );
            assert!(
                Instant::now() < deadline,
                "after 90 s: stored, counted, hourly, daily: {counts:?}; want {n}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A one-number answer of ClickHouse; 0 when there is none (yet).
pub async fn number(query: &str) -> u64 {
    sql(query)
        .await
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}
