//! The page's files: embedded at build time from `console/web/` (see
//! `build.rs`), or read from `assets_dir` when set (development).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::content_type::content_type;
use crate::state::AppState;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file at `path`: its content type and bytes.
pub fn embedded(path: &str) -> Option<(&'static str, &'static [u8])> {
    EMBEDDED
        .iter()
        .find(|(name, _, _)| *name == path)
        .map(|(_, kind, bytes)| (*kind, *bytes))
}

pub async fn index(state: State<AppState>, headers: HeaderMap) -> Response {
    file(state, Path("index.html".to_owned()), headers).await
}

pub async fn file(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = match &state.config.assets_dir {
        Some(dir) => from_disk(dir, &path).await,
        None => embedded(&path).map(|(kind, bytes)| (kind, bytes.to_vec())),
    };
    let Some((kind, bytes)) = found else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let tag = etag(&bytes);
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == tag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, kind)], bytes).into_response()
    };
    let headers = response.headers_mut();
    // Revalidated on every load (a few small files; a 304 costs a round
    // trip), so a new console version is never mixed with cached old files.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// A file of the development folder: plain relative names only, so nothing
/// outside it can be asked for.
async fn from_disk(dir: &std::path::Path, path: &str) -> Option<(&'static str, Vec<u8>)> {
    let plain = path.split('/').all(|part| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    });
    if !plain {
        return None;
    }
    let kind = content_type(path)?;
    let bytes = tokio::fs::read(dir.join(path)).await.ok()?;
    Some((kind, bytes))
}

fn etag(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
