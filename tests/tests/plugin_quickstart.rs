//! The quick starts of `docs/plugins.md`, one per language, run as a
//! newcomer runs them: the built `sluice` binary, in a fresh directory
//! outside the repository, from the packaged SDKs (`scripts/package-sdks`;
//! `SLUICE_SDK_DIR`, no `SLUICE_REPO`):
//!
//! ```sh
//! sluice plugin new block-test-events --kind validator --lang LANG
//! sluice plugin test block-test-events
//! sluice plugin build block-test-events
//! sluice plugin run COMPONENT --kind validator --config '{"blocked_events": ["Test Event"]}' --events events.json
//! sluice plugin upload COMPONENT --team acme --name block-tests --version 1.0.0 --kind validator
//! sluice plugin configure --team acme --name block-tests --config '{"blocked_events": ["Test Event"]}'
//! ```
//!
//! then events are sent to the real gateway the plugin was uploaded to, and
//! its effect is read back from `events.raw` (real Kafka): the blocked event
//! is refused, the other arrives. The commands here and in the docs are the
//! same text; keep them so.
//!
//! The languages run one at a time: each builds and compiles a component
//! (a JavaScript or Python one carries an interpreter and takes seconds),
//! and on a 2-core machine three at once would only measure contention.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::binary::workspace_binary;
use sluice_tests::plugin_admin::Admin;
use sluice_tests::{OPERATOR_TOKEN, RunningGateway, TestTopics, read_all};
use uuid::Uuid;

const KEY: &str = "sk_test_quickstart_acme";
const CONFIG: &str = r#"{"blocked_events": ["Test Event"]}"#;
const EVENTS: &str =
    r#"[{"event": "Test Event", "user_id": "u1"}, {"event": "Signed Up", "user_id": "u2"}]"#;

/// One quick start at a time (see the module docs).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cache() -> PathBuf {
    std::env::var("SLUICE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sluice"))
}

/// A newcomer's shell: `sluice ARGS` in `dir`, against `gateway`'s admin API.
struct Shell {
    sluice: PathBuf,
    dir: PathBuf,
    admin_url: String,
}

impl Shell {
    /// `sluice ARGS`, run off the async workers (the gateway it talks to
    /// runs on them).
    async fn sluice(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.sluice);
        command
            .args(args)
            .current_dir(&self.dir)
            .env_remove("SLUICE_REPO")
            .env("SLUICE_ADMIN_URL", &self.admin_url)
            .env("SLUICE_ADMIN_TOKEN", OPERATOR_TOKEN)
            // Rust builds share the cached target dir, so CI does not
            // compile the SDK's dependencies for each run.
            .env("CARGO_TARGET_DIR", cache().join("plugins-target"));
        if std::env::var_os("SLUICE_SDK_DIR").is_none() {
            command.env("SLUICE_SDK_DIR", cache().join("sdk"));
        }
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// `sluice ARGS`, which must succeed: its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.sluice(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sluice {}: {stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

async fn quick_start(lang: &str) {
    let _one = ONE_AT_A_TIME.lock().await;
    let sdk = std::env::var_os("SLUICE_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("sdk"));
    assert!(
        sdk.join("sluice-plugin-sdk-0.2.0.crate").is_file(),
        "no SDK packages in {}: run scripts/package-sdks",
        sdk.display()
    );
    let topics = TestTopics::create(1).await.unwrap();
    let gateway = RunningGateway::start_ready(topics.gateway_config(KEY, "acme"))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("sluice-quickstart-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let shell = Shell {
        sluice: workspace_binary("sluice-cli", "sluice").unwrap(),
        dir: dir.clone(),
        admin_url: gateway.url(""),
    };

    shell
        .ok(&[
            "plugin",
            "new",
            "block-test-events",
            "--kind",
            "validator",
            "--lang",
            lang,
        ])
        .await;
    shell.ok(&["plugin", "test", "block-test-events"]).await;
    let built = shell.ok(&["plugin", "build", "block-test-events"]).await;
    // `PATH (N KiB)`; TypeScript and Python write it into the project.
    let component = built.split(" (").next().unwrap().trim().to_owned();
    if lang != "rust" {
        assert_eq!(
            Path::new(&component),
            dir.join("block-test-events/dist/block_test_events.wasm")
        );
    }

    std::fs::write(dir.join("events.json"), EVENTS).unwrap();
    let run = shell
        .sluice(&[
            "plugin",
            "run",
            &component,
            "--kind",
            "validator",
            "--config",
            CONFIG,
            "--events",
            "events.json",
        ])
        .await;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(1),
        "a rejection fails the run: {stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("Test Event")
            && lines[0].contains("reject")
            && lines[0].contains("blocked_event"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("Signed Up") && lines[1].ends_with("accept"),
        "{stdout}"
    );

    shell
        .ok(&[
            "plugin",
            "upload",
            &component,
            "--team",
            "acme",
            "--name",
            "block-tests",
            "--version",
            "1.0.0",
            "--kind",
            "validator",
        ])
        .await;
    shell
        .ok(&[
            "plugin",
            "configure",
            "--team",
            "acme",
            "--name",
            "block-tests",
            "--config",
            CONFIG,
        ])
        .await;
    // The configuration is in force once the plugin is `active` again. An
    // upload may also answer `compiling` first: polled either way.
    wait_active_with(&Admin::new(&gateway), CONFIG).await;

    let (blocked, signed_up) = (Uuid::new_v4(), Uuid::new_v4());
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/events"))
        .bearer_auth(KEY)
        .json(&json!({ "events": [
            { "event_id": blocked, "event": "Test Event", "user_id": "u1" },
            { "event_id": signed_up, "event": "Signed Up", "user_id": "u2" },
        ] }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    assert_eq!(body["results"][0]["code"], "plugin_rejected", "{body}");
    assert!(
        body["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("blocked_event"),
        "{body}"
    );
    assert_eq!(body["results"][1]["status"], "accepted", "{body}");

    let raw = read_all(&topics.raw, 1).await;
    let ids: Vec<&str> = raw.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(
        ids,
        [signed_up.to_string()],
        "events.raw holds only the accepted event"
    );

    gateway.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Waits until this replica runs the plugin (`sluice plugin configure`
/// returned once it did; this checks it independently), then asserts it
/// runs with `config`.
async fn wait_active_with(admin: &Admin, config: &str) {
    admin.wait_active("acme", "block-tests", "1.0.0").await;
    let shown = admin.show("acme", "block-tests").await;
    // The record keeps the configuration as the JSON text it was given.
    let configured = match &shown["config"] {
        Value::String(text) => serde_json::from_str(text).ok(),
        other => Some(other.clone()),
    };
    let config: Value = serde_json::from_str(config).unwrap();
    assert_eq!(configured.as_ref(), Some(&config), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_quick_start() {
    quick_start("rust").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_quick_start() {
    quick_start("ts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_quick_start() {
    quick_start("python").await;
}
