//! Who is calling: API keys for ingest and team admins, an operator token for
//! cross-team administration.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::prelude::BASE64_STANDARD;

use crate::error::ApiError;
use crate::keys::{KeyStatus, KeyStore, Principal, Role, secret_matches};

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or(ApiError::MissingApiKey)?;
    let value = value.to_str().map_err(|_| ApiError::InvalidApiKey)?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or(ApiError::MissingApiKey)
}

/// The key in an `Authorization` header, if there is one: `Bearer <key>`, or
/// HTTP Basic with the key as user name (Segment's write key; the password is
/// empty) or, when the user name is empty, as password.
pub fn key_in_authorization(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidApiKey)?.trim();
    let Some((scheme, credentials)) = value.split_once(' ') else {
        return Err(ApiError::InvalidApiKey);
    };
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(credentials.to_owned()).filter(|key| !key.is_empty()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::InvalidApiKey);
    }
    let decoded = BASE64_STANDARD
        .decode(credentials)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(ApiError::InvalidApiKey)?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    let key = if user.is_empty() { password } else { user };
    Ok(Some(key.to_owned()).filter(|key| !key.is_empty()))
}

/// Resolves a key to the team and role it acts for.
pub fn principal(keys: &dyn KeyStore, key: &str) -> Result<Principal, ApiError> {
    match keys.lookup(key) {
        KeyStatus::Valid(principal) => Ok(principal),
        KeyStatus::Revoked => Err(ApiError::RevokedApiKey),
        KeyStatus::Unknown => Err(ApiError::InvalidApiKey),
    }
}

/// Resolves the `Authorization: Bearer <key>` header to a team.
pub fn authenticate(keys: &dyn KeyStore, headers: &HeaderMap) -> Result<Principal, ApiError> {
    principal(keys, bearer(headers)?)
}

/// Who may use the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// The operator token: every team.
    Operator,
    /// A team's admin key: that team only.
    Team(std::sync::Arc<str>),
}

impl Admin {
    /// Refuses access to another team's resources.
    pub fn check_team(&self, team: &str) -> Result<(), ApiError> {
        match self {
            Self::Operator => Ok(()),
            Self::Team(own) if &**own == team => Ok(()),
            Self::Team(_) => Err(ApiError::Forbidden(format!(
                "this key cannot manage team `{team}`"
            ))),
        }
    }

    /// The team this caller is limited to, if any.
    pub fn team(&self) -> Option<&str> {
        match self {
            Self::Operator => None,
            Self::Team(team) => Some(team),
        }
    }
}

/// Authenticates an admin API call: the operator token, or an admin-role key.
pub fn authenticate_admin(
    keys: &dyn KeyStore,
    operator_token: Option<&str>,
    headers: &HeaderMap,
) -> Result<Admin, ApiError> {
    let token = bearer(headers)?;
    if operator_token.is_some_and(|expected| secret_matches(token, expected)) {
        return Ok(Admin::Operator);
    }
    let principal = principal(keys, token)?;
    match principal.role {
        Role::Admin => Ok(Admin::Team(principal.team)),
        Role::Ingest => Err(ApiError::Forbidden(
            "this key has the `ingest` role; admin calls need an `admin` key".to_owned(),
        )),
    }
}
