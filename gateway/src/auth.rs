//! API key lookup. The gateway asks a [`KeyStore`] which team a key belongs to.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::error::ApiError;

/// What a key lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    Team(Arc<str>),
    Revoked,
    Unknown,
}

pub trait KeyStore: Send + Sync + std::fmt::Debug {
    fn lookup(&self, key: &str) -> KeyStatus;
}

/// Keys from configuration: fixed for the life of the process.
#[derive(Debug, Default)]
pub struct StaticKeys(HashMap<String, Arc<str>>);

impl StaticKeys {
    pub fn new(keys: &BTreeMap<String, String>) -> Self {
        Self(
            keys.iter()
                .map(|(key, team)| (key.clone(), Arc::from(team.as_str())))
                .collect(),
        )
    }
}

impl KeyStore for StaticKeys {
    fn lookup(&self, key: &str) -> KeyStatus {
        match self.0.get(key) {
            Some(team) => KeyStatus::Team(team.clone()),
            None => KeyStatus::Unknown,
        }
    }
}

/// Resolves the `Authorization: Bearer <key>` header to a team.
pub fn authenticate(keys: &dyn KeyStore, headers: &HeaderMap) -> Result<Arc<str>, ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or(ApiError::MissingApiKey)?;
    let value = value.to_str().map_err(|_| ApiError::InvalidApiKey)?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or(ApiError::MissingApiKey)?;
    match keys.lookup(key) {
        KeyStatus::Team(team) => Ok(team),
        KeyStatus::Revoked => Err(ApiError::RevokedApiKey),
        KeyStatus::Unknown => Err(ApiError::InvalidApiKey),
    }
}
