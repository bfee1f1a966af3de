//! `sluice keys ...`: the admin API from the command line.

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Where the admin API is and who we are.
#[derive(Debug, Clone)]
pub struct AdminClient {
    pub url: String,
    pub token: String,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(url: &str, token: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.url);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {url} (is the gateway running?)"))?;
        let status = response.status();
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let code = value["error"]["code"].as_str().unwrap_or("?");
            let message = value["error"]["message"].as_str().unwrap_or("");
            bail!("HTTP {}: {code}: {message}", status.as_u16());
        }
        Ok((status, value))
    }

    /// Uploads a component; activates it unless `activate` is false.
    pub async fn upload_plugin(
        &self,
        team: &str,
        name: &str,
        version: &str,
        kind: &str,
        activate: bool,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let url = format!(
            "{}/admin/v1/teams/{team}/plugins/{name}/versions/{version}?kind={kind}&activate={activate}",
            self.url
        );
        let response = self
            .http
            .put(&url)
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("calling {url} (is the gateway running?)"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "HTTP {}: {}: {}",
                status.as_u16(),
                value["error"]["code"].as_str().unwrap_or("?"),
                value["error"]["message"].as_str().unwrap_or("")
            );
        }
        Ok(value)
    }

    pub async fn plugin(&self, team: &str, name: &str) -> anyhow::Result<Value> {
        Ok(self
            .call(
                Method::GET,
                &format!("/admin/v1/teams/{team}/plugins/{name}"),
                None,
            )
            .await?
            .1)
    }

    /// Changes a plugin's settings (`config`, `policy`, `order`, `enabled`,
    /// `events`, `active_version`).
    pub async fn update_plugin(
        &self,
        team: &str,
        name: &str,
        change: Value,
    ) -> anyhow::Result<Value> {
        Ok(self
            .call(
                Method::PATCH,
                &format!("/admin/v1/teams/{team}/plugins/{name}"),
                Some(change),
            )
            .await?
            .1)
    }

    /// Polls until this gateway runs `version` of the plugin (or `timeout`);
    /// fails at once if the gateway could not compile it.
    pub async fn wait_active(
        &self,
        team: &str,
        name: &str,
        version: &str,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let shown = self.plugin(team, name).await?;
            if shown["state"] == "active" && shown["active_version"] == version {
                return Ok(shown);
            }
            if shown["state"] == "failed" && shown["active_version"] == version {
                bail!(
                    "{team}/{name} {version} cannot run on this gateway: {}",
                    shown["error"].as_str().unwrap_or("no reason given")
                );
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "{team}/{name} {version} is `{}` after {timeout:?}",
                    shown["state"].as_str().unwrap_or("?")
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn create_key(&self, team: &str, role: &str, label: &str) -> anyhow::Result<Value> {
        let body = json!({ "team_id": team, "role": role, "label": label });
        Ok(self
            .call(Method::POST, "/admin/v1/keys", Some(body))
            .await?
            .1)
    }

    pub async fn list_keys(&self, team: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let path = match team {
            Some(team) => format!("/admin/v1/keys?team_id={team}"),
            None => "/admin/v1/keys".to_owned(),
        };
        let (_, body) = self.call(Method::GET, &path, None).await?;
        Ok(body["keys"].as_array().cloned().unwrap_or_default())
    }

    pub async fn revoke_key(&self, key_id: &str) -> anyhow::Result<Value> {
        Ok(self
            .call(Method::DELETE, &format!("/admin/v1/keys/{key_id}"), None)
            .await?
            .1)
    }
}

/// One line per key, for `sluice keys list`.
pub fn key_line(key: &Value) -> String {
    let revoked = key["revoked_at"]
        .as_str()
        .map(|at| format!("revoked {at}"))
        .unwrap_or_else(|| "active".to_owned());
    format!(
        "{:<14} {:<16} {:<7} {:<26} {:<34} {}",
        key["key_id"].as_str().unwrap_or("?"),
        key["team_id"].as_str().unwrap_or("?"),
        key["role"].as_str().unwrap_or("?"),
        key["created_at"].as_str().unwrap_or("?"),
        revoked,
        key["label"].as_str().unwrap_or(""),
    )
}
