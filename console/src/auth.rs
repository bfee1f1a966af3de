//! Who is calling. The gateway owns keys (a Kafka-compacted table every
//! replica reads); the console does not read that table itself but asks the
//! gateway's admin listener (`GET /admin/v1/whoami`), so there is one place
//! that decides what a key may do. Answers are reused for `auth.cache_ms`:
//! a page makes several calls a second, and a revoked key must still stop
//! working promptly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// A signed-in caller: the operator (every team) or one team's admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub operator: bool,
    pub team: Option<String>,
    /// The key itself, forwarded to the gateway for admin calls.
    #[serde(skip)]
    pub key: String,
}

impl Session {
    /// Refuses another team's data.
    pub fn check_team(&self, team: &str) -> Result<(), ApiError> {
        if self.operator || self.team.as_deref() == Some(team) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this key cannot read team `{team}`"
            )))
        }
    }
}

/// Most keys remembered; past it the memory is cleared (a flood of distinct
/// keys costs gateway calls, never console memory).
const MAX_CACHED: usize = 10_000;

#[derive(Debug)]
pub struct Authenticator {
    whoami_url: String,
    http: reqwest::Client,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Instant, Session)>>,
}

#[derive(Deserialize)]
struct WhoAmI {
    operator: bool,
    team: Option<String>,
}

#[derive(Deserialize)]
struct GatewayError {
    error: GatewayErrorBody,
}

#[derive(Deserialize)]
struct GatewayErrorBody {
    code: String,
    message: String,
}

impl Authenticator {
    pub fn new(admin_url: &str, http: reqwest::Client, ttl: Duration) -> Self {
        Self {
            whoami_url: format!("{}/admin/v1/whoami", admin_url.trim_end_matches('/')),
            http,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn session(&self, key: &str) -> Result<Session, ApiError> {
        // Only successes are remembered: an unknown key is asked about every
        // time, so a key created a moment ago works at once.
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some((at, session)) = self.lock().get(&digest)
            && at.elapsed() < self.ttl
        {
            return Ok(session.clone());
        }
        let response = self
            .http
            .get(&self.whoami_url)
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| ApiError::GatewayUnavailable(e.into()))?;
        let status = response.status();
        if status.is_success() {
            let who: WhoAmI = response
                .json()
                .await
                .map_err(|e| ApiError::GatewayUnavailable(e.into()))?;
            let session = Session {
                operator: who.operator,
                team: who.team,
                key: key.to_owned(),
            };
            let mut cache = self.lock();
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(digest, (Instant::now(), session.clone()));
            return Ok(session);
        }
        let refusal = response.json::<GatewayError>().await.ok();
        Err(match (status.as_u16(), refusal) {
            (401, Some(e)) if e.error.code == "revoked_api_key" => ApiError::RevokedApiKey,
            (401, Some(e)) if e.error.code == "missing_api_key" => ApiError::MissingApiKey,
            (401, _) => ApiError::InvalidApiKey,
            (403, Some(e)) => ApiError::Forbidden(e.error.message),
            (403, None) => ApiError::Forbidden("the console needs an admin key".to_owned()),
            (status, _) => ApiError::GatewayUnavailable(anyhow::anyhow!(
                "GET {} answered {status}",
                self.whoami_url
            )),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, Session)>> {
        // A panic while holding it cannot leave the map half-written.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The bearer token of a request.
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::MissingApiKey)?
        .to_str()
        .map_err(|_| ApiError::InvalidApiKey)?;
    let (scheme, key) = value.split_once(' ').ok_or(ApiError::MissingApiKey)?;
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
        return Err(ApiError::MissingApiKey);
    }
    Ok(key)
}
