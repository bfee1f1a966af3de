//! Plugins through the admin API, for suites that need a team's plugins in
//! place: the built components (`SLUICE_PLUGINS_DIR`) and a small client.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::{OPERATOR_TOKEN, RunningGateway};

/// A built plugin component, by name (`plugins/build.sh` output).
pub fn component(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("SLUICE_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the plugins first: plugins/build.sh",
            path.display()
        )
    })
}

/// The admin API of one gateway replica, as the operator.
#[derive(Debug)]
pub struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    pub fn new(gateway: &RunningGateway) -> Self {
        Self::at(&gateway.url(""))
    }

    /// The admin API of the gateway at `base` (`http://host:port`).
    pub fn at(base: &str) -> Self {
        Self {
            base: format!("{base}/admin/v1/teams"),
            http: reqwest::Client::new(),
        }
    }

    /// A DELETE under `/admin/v1/teams/{team}/plugins/` as it went.
    pub async fn delete(&self, team: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .delete(format!("{}/{team}/plugins/{path}", self.base))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await
            .expect("admin API call");
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn upload(
        &self,
        team: &str,
        name: &str,
        version: &str,
        kind: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .put(format!(
                "{}/{team}/plugins/{name}/versions/{version}?kind={kind}",
                self.base
            ))
            .bearer_auth(OPERATOR_TOKEN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("admin API call");
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// A PATCH that must succeed; its answer.
    pub async fn patch(&self, team: &str, name: &str, body: Value) -> Value {
        let (status, answer) = self.try_patch(team, name, body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// A PATCH as it went: status and answer.
    pub async fn try_patch(&self, team: &str, name: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .patch(format!("{}/{team}/plugins/{name}", self.base))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin API call");
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn show(&self, team: &str, name: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/{team}/plugins/{name}", self.base))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await
            .expect("admin API call");
        response.json().await.expect("admin API call")
    }

    /// Uploads the fixture `component` as validator `name` 1.0.0 with
    /// `config`, and waits until this replica runs it.
    pub async fn install_validator(&self, team: &str, name: &str, component: &str, config: Value) {
        let (status, body) = self
            .upload(team, name, "1.0.0", "validator", self::component(component))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        self.patch(team, name, serde_json::json!({ "config": config }))
            .await;
        self.wait_active(team, name, "1.0.0").await;
    }

    /// Waits until this replica runs `version` of the plugin. Upload
    /// compiles in the background, and a TypeScript or Python component
    /// takes tens of seconds in a debug build on a busy machine.
    pub async fn wait_active(&self, team: &str, name: &str, version: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let shown = self.show(team, name).await;
            if shown["state"] == "active" && shown["active_version"] == version {
                return;
            }
            assert_ne!(shown["state"], "failed", "{team}/{name} {version}: {shown}");
            assert!(
                std::time::Instant::now() < deadline,
                "{team}/{name} {version} never became active: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
