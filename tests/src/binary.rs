//! Workspace binaries for suites that run the real process (its `main`, its
//! allocator, its signal handling) rather than the library in this process.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

/// The debug build of the workspace binary `name` (`sluice-gateway`, ...).
///
/// `cargo test --workspace` has built it already, next to this test's own
/// executable; a narrower `cargo test -p sluice-tests` has not, so it is built
/// here (into the same target directory). A binary already there is used as
/// is: after changing the gateway, run the workspace tests (as CI does) or
/// build it first, or a narrow run tests the previous build.
pub fn workspace_binary(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable is not under target/<profile>/deps")?;
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--locked", "-p", package, "--bin", name])
        .status()
        .with_context(|| format!("running cargo build for {name}"))?;
    if !status.success() || !path.is_file() {
        bail!("building {name} failed ({status}); try `cargo build -p {package}`");
    }
    Ok(path)
}

/// Waits for `child` to end by itself (a test crash hook aborts it), and
/// fails unless it ended abnormally within `timeout`.
pub fn wait_for_abort(child: &mut std::process::Child, timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                assert!(!status.success(), "expected an abort, got {status}");
                return;
            }
            Ok(None) => {}
            Err(err) => panic!("waiting for the process: {err}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the crash hook never fired"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The real `sluice-gateway` binary on its own port, configured from the
/// environment for `topics` and one API key, killed when dropped.
#[derive(Debug)]
pub struct GatewayProcess {
    pub child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    /// Starts it with `key` for `team` plus `env`; returns once `/readyz`
    /// answers 200 (fails if the process exits or 60 s pass first).
    pub async fn start(
        topics: &crate::TestTopics,
        key: &str,
        team: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(workspace_binary("sluice-gateway", "sluice-gateway")?);
        command
            .env("SLUICE_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("SLUICE_GATEWAY_KAFKA__BROKERS", crate::kafka().brokers)
            .env("SLUICE_GATEWAY_PRODUCER__TOPIC", &topics.raw)
            .env("SLUICE_GATEWAY_PRODUCER__REJECTED_TOPIC", &topics.rejected)
            .env("SLUICE_GATEWAY_AUTH__KEYS", format!("{{{key}=\"{team}\"}}"))
            .env("SLUICE_GATEWAY_AUTH__KEYS_TOPIC", &topics.keys)
            .env("SLUICE_GATEWAY_PLUGINS__TOPIC", &topics.plugins)
            .env("SLUICE_GATEWAY_PLUGINS__BLOBS_TOPIC", &topics.plugin_blobs)
            .env("SLUICE_GATEWAY_SCHEMAS__TOPIC", &topics.schemas)
            .env("SLUICE_GATEWAY_ADMIN__TOKEN", crate::OPERATOR_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .envs(env.iter().copied());
        let mut gateway = Self {
            child: command.spawn().context("starting sluice-gateway")?,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/readyz", gateway.base)).await
                && response.status() == 200
            {
                return Ok(gateway);
            }
            if let Some(status) = gateway.child.try_wait()? {
                bail!("the gateway exited during start-up: {status}");
            }
            if std::time::Instant::now() > deadline {
                bail!("the gateway was not ready within 60 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
