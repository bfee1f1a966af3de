//! `sluice schema ...`: the schema registry API from the command line, made
//! for pull-request checks. Exit codes: 0 compatible / registered,
//! 1 refused (incompatible, or not a schema Sluice accepts; the explanation
//! is printed), 2 usage or connection error (nothing was decided).

use std::path::Path;

use anyhow::Context;
use reqwest::{Method, Url};
use serde_json::{Value, json};

/// What the registry decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Compatible (check) or registered (register, with the version).
    Accepted { version: Option<u64> },
    /// Incompatible or invalid; each line is one reason.
    Refused { reasons: Vec<String> },
}

impl Decision {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Accepted { .. } => 0,
            Self::Refused { .. } => 1,
        }
    }
}

/// `team/Event Name` → (`team`, `Event Name`). Team ids never contain `/`,
/// so everything after the first one is the event name.
pub fn parse_subject(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('/') {
        Some((team, event)) if !team.is_empty() && !event.is_empty() => Ok((team, event)),
        _ => anyhow::bail!("subject `{text}` must be TEAM/EVENT, e.g. acme/Signup"),
    }
}

/// A team's registry on one gateway.
#[derive(Debug, Clone)]
pub struct SchemaClient {
    base: Url,
    token: String,
    http: reqwest::Client,
}

impl SchemaClient {
    pub fn new(gateway: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: Url::parse(gateway).with_context(|| format!("gateway URL `{gateway}`"))?,
            token: token.to_owned(),
            http: reqwest::Client::new(),
        })
    }

    /// `/schemas/v1/teams/{team}/{segments...}`, each segment percent-encoded.
    fn url(&self, team: &str, segments: &[&str]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("gateway URL `{}` cannot be a base", self.base))?
            .pop_if_empty()
            .extend(["schemas", "v1", "teams", team])
            .extend(segments);
        Ok(url)
    }

    async fn post(&self, url: Url, schema_text: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .request(Method::POST, url.clone())
            .bearer_auth(&self.token)
            .json(&json!({ "schemaType": "JSON", "schema": schema_text }))
            .send()
            .await
            .with_context(|| format!("calling {url} (is the gateway running?)"))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Registers `schema_text` as the next version of `team/subject`.
    pub async fn register(
        &self,
        team: &str,
        subject: &str,
        schema_text: &str,
    ) -> anyhow::Result<Decision> {
        let url = self.url(team, &["subjects", subject, "versions"])?;
        let (status, body) = self.post(url, schema_text).await?;
        match status {
            200 | 201 => Ok(Decision::Accepted {
                version: body["version"].as_u64(),
            }),
            409 | 422 => Ok(refused(&body)),
            _ => Err(http_error(status, &body)),
        }
    }

    /// Would registering `schema_text` succeed under the subject's mode?
    pub async fn check(
        &self,
        team: &str,
        subject: &str,
        schema_text: &str,
    ) -> anyhow::Result<Decision> {
        let url = self.url(team, &["compatibility", "subjects", subject, "versions"])?;
        let (status, body) = self.post(url, schema_text).await?;
        match status {
            200 if body["is_compatible"] == true => Ok(Decision::Accepted { version: None }),
            200 => Ok(Decision::Refused {
                reasons: strings(&body["messages"]),
            }),
            422 => Ok(refused(&body)),
            _ => Err(http_error(status, &body)),
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn refused(body: &Value) -> Decision {
    let mut reasons = strings(&body["messages"]);
    if reasons.is_empty() {
        reasons.push(format!(
            "{} ({})",
            body["message"].as_str().unwrap_or("refused"),
            body["code"].as_str().unwrap_or("?")
        ));
    }
    Decision::Refused { reasons }
}

fn http_error(status: u16, body: &Value) -> anyhow::Error {
    anyhow::anyhow!(
        "HTTP {status}: {}: {}",
        body["code"].as_str().unwrap_or("?"),
        body["message"].as_str().unwrap_or("")
    )
}

/// Reads a schema file (its JSON text is sent as is).
pub fn read_schema(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
