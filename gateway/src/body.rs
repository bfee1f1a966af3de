//! Reading a request body under limits: wire size, decompressed size, time.
//!
//! A compression bomb costs no more memory than `max_decompressed_bytes`: the
//! decoder's output is read through `take(limit + 1)`, so the first byte past
//! the limit ends decoding with an error instead of a larger buffer. A client
//! that stalls mid-upload is cut off after `body_timeout_ms`.

use std::io::Read;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use ::metrics::counter;

use crate::admission::Ticket;
use crate::config::IngestSettings;
use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

/// Bodies larger than this are decompressed on the blocking pool so a big
/// upload does not stall the async workers serving other requests.
const INLINE_DECOMPRESS_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
    /// Gzip if the body starts with gzip's magic number, else identity.
    /// Recent posthog-js sends gzip bodies with neither a `Content-Encoding`
    /// header nor a `compression` parameter; the native endpoint never sniffs.
    Detect,
}

/// The first two bytes of every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Encoding {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get(header::CONTENT_ENCODING) else {
            return Ok(Self::Identity);
        };
        let text = value.to_str().unwrap_or("").trim();
        Self::from_name(text).ok_or_else(|| ApiError::UnsupportedEncoding(text.to_owned()))
    }

    /// Parses an encoding name (`gzip`, `zstd`, `identity`), as used in
    /// `Content-Encoding` and in SDKs' `compression` query parameters.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" | "gzip-js" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// Replaces [`Encoding::Detect`] by what `raw` turns out to be.
    pub fn resolve(self, raw: &[u8]) -> Self {
        match self {
            Self::Detect if raw.starts_with(&GZIP_MAGIC) => Self::Gzip,
            Self::Detect => Self::Identity,
            other => other,
        }
    }
}

/// Reads a request body under every limit: the declared size against
/// `max_body_bytes`, a gateway-wide admission ticket reserved before the first
/// byte is buffered, the bounded read and decode, and headroom for the records
/// produced from it. The ticket must live until the response is built.
pub async fn read_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<(Bytes, Ticket), ApiError> {
    let config = state.ingest();
    // Reserve the declared size up front (the maximum when undeclared), so
    // the bytes we are about to buffer are accounted before we buffer them.
    let declared = content_length(headers).unwrap_or(config.max_body_bytes);
    if declared > config.max_body_bytes {
        return Err(refuse(
            body,
            config,
            ApiError::PayloadTooLarge {
                limit: config.max_body_bytes,
            },
        )
        .await);
    }
    let ticket = match state.admission().admit(declared) {
        Ok(ticket) => ticket,
        Err(refusal) => return Err(refuse(body, config, refusal.into()).await),
    };
    let (bytes, mut ticket) = read(body, encoding, config, ticket).await?;
    counter!(metrics::REQUEST_BYTES)
        .increment(content_length(headers).unwrap_or(bytes.len()) as u64);
    // The produced records hold roughly one more copy of the events.
    if !ticket.reserve(bytes.len().saturating_mul(2)) {
        return Err(overloaded());
    }
    Ok((bytes, ticket))
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads and decodes a request body within `config`'s limits.
///
/// `ticket` holds the request's memory reservation: it must cover the wire
/// bytes, then grows with the decompressed output; decoding stops with 503
/// (`overloaded`) when the gateway-wide budget is spent. The ticket is handed
/// back with the body so the reservation lives as long as the request.
pub async fn read(
    body: Body,
    encoding: Encoding,
    config: &IngestSettings,
    mut ticket: Ticket,
) -> Result<(Bytes, Ticket), ApiError> {
    let timeout = Duration::from_millis(config.body_timeout_ms);
    let raw = tokio::time::timeout(timeout, read_limited(body, config.max_body_bytes))
        .await
        .map_err(|_| ApiError::BodyTimeout {
            secs: timeout.as_secs(),
        })??;
    if !ticket.reserve(raw.len()) {
        return Err(overloaded());
    }
    let encoding = encoding.resolve(&raw);
    if encoding == Encoding::Identity {
        return Ok((raw, ticket));
    }
    let limit = config.max_decompressed_bytes;
    let inline = raw.len() <= INLINE_DECOMPRESS_BYTES;
    let decode = move || {
        let wire = raw.len();
        let out = decompress(&raw, encoding, limit, &mut |decoded| {
            ticket.reserve(wire + decoded)
        })?;
        Ok((Bytes::from(out), ticket))
    };
    if inline {
        decode()
    } else {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
    }
}

/// Longest a refused request's body is drained before the answer is sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads and discards what is left of a refused request's body (at most
/// `max_body_bytes`, at most [`DRAIN_TIMEOUT`] and `body_timeout_ms`), then
/// hands `err` back to be answered.
///
/// Why: hyper closes a connection whose request body the handler did not
/// read. Closing a socket with unread input makes the kernel send a reset,
/// which can destroy the answer in flight, and a client still uploading sees
/// a broken connection instead of its 503 and `Retry-After`. Draining costs
/// a copy per chunk, no buffering (each chunk is dropped as it arrives), and
/// keeps the connection usable for the client's next request. A body larger
/// than the limit, or one that stalls, is given up on: the client then gets
/// the answer only if its upload has ended.
pub async fn refuse(body: Body, config: &IngestSettings, err: ApiError) -> ApiError {
    let limit = config.max_body_bytes;
    let timeout = DRAIN_TIMEOUT.min(Duration::from_millis(config.body_timeout_ms));
    let drain = async {
        let mut body = body;
        let mut seen = 0_usize;
        while seen <= limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, Bytes::len);
                }
                Some(Err(_)) | None => return,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
    err
}

/// Reads at most `limit` bytes; a larger body is refused as soon as the limit
/// is crossed, without buffering the rest.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(err) => Err(ApiError::BodyRead(err.to_string())),
    }
}

fn overloaded() -> ApiError {
    ApiError::Overloaded {
        retry_after_secs: 1,
    }
}

/// Output is produced in steps of this size; the budget is asked before each.
const DECODE_STEP: usize = 256 * 1024;

/// Decodes `raw`, failing as soon as the output would exceed `limit` bytes,
/// or when `budget(bytes_so_far + step)` refuses to cover the next step.
pub fn decompress(
    raw: &[u8],
    encoding: Encoding,
    limit: usize,
    budget: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, ApiError> {
    let reader: Box<dyn Read + '_> = match encoding.resolve(raw) {
        Encoding::Identity | Encoding::Detect => return Ok(raw.to_vec()),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Encoding::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| ApiError::InvalidCompression(e.to_string()))?,
        ),
    };
    let mut reader = reader.take(limit as u64 + 1);
    let mut out = Vec::new();
    loop {
        let step = DECODE_STEP.min(limit + 1 - out.len().min(limit));
        if !budget(out.len() + step) {
            return Err(overloaded());
        }
        let before = out.len();
        (&mut reader)
            .take(step as u64)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::InvalidCompression(e.to_string()))?;
        if out.len() > limit {
            return Err(ApiError::DecompressedTooLarge { limit });
        }
        if out.len() - before < step {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn round_trips_gzip_and_zstd() {
        let data = br#"{"events":[{"event":"e","user_id":"u"}]}"#;
        assert_eq!(
            decompress(&gzip(data), Encoding::Gzip, 1024, &mut |_| true).unwrap(),
            data
        );
        let z = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(
            decompress(&z, Encoding::Zstd, 1024, &mut |_| true).unwrap(),
            data
        );
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        // 64 MiB of zeros compresses to ~64 KiB; decoding must stop at 1 MiB.
        let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < 128 * 1024);
        let err = decompress(&bomb, Encoding::Gzip, 1024 * 1024, &mut |_| true).unwrap_err();
        assert!(matches!(err, ApiError::DecompressedTooLarge { limit } if limit == 1024 * 1024));
        let zbomb = zstd::encode_all(&vec![0u8; 64 * 1024 * 1024][..], 3).unwrap();
        assert!(matches!(
            decompress(&zbomb, Encoding::Zstd, 1024 * 1024, &mut |_| true).unwrap_err(),
            ApiError::DecompressedTooLarge { .. }
        ));
    }

    #[test]
    fn decoding_stops_when_the_memory_budget_is_spent() {
        let data = gzip(&vec![b'x'; 4 * 1024 * 1024]);
        let mut asked = Vec::new();
        let err = decompress(&data, Encoding::Gzip, 8 * 1024 * 1024, &mut |total| {
            asked.push(total);
            total <= 1024 * 1024
        })
        .unwrap_err();
        assert!(matches!(err, ApiError::Overloaded { .. }));
        assert!(
            asked.windows(2).all(|w| w[0] < w[1]),
            "reservations only grow: {asked:?}"
        );
        assert!(*asked.last().unwrap() <= 1024 * 1024 + DECODE_STEP);
    }

    #[test]
    fn corrupt_input_is_invalid_compression() {
        let err = decompress(b"not gzip at all", Encoding::Gzip, 1024, &mut |_| true).unwrap_err();
        assert!(matches!(err, ApiError::InvalidCompression(_)));
        let err = decompress(b"not zstd at all", Encoding::Zstd, 1024, &mut |_| true).unwrap_err();
        assert!(matches!(err, ApiError::InvalidCompression(_)));
    }

    #[test]
    fn detect_sniffs_gzip_and_nothing_else() {
        let data = br#"{"batch":[]}"#;
        assert_eq!(Encoding::Detect.resolve(&gzip(data)), Encoding::Gzip);
        assert_eq!(Encoding::Detect.resolve(data), Encoding::Identity);
        assert_eq!(Encoding::Zstd.resolve(data), Encoding::Zstd);
        assert_eq!(
            decompress(&gzip(data), Encoding::Detect, 1024, &mut |_| true).unwrap(),
            data
        );
    }

    #[test]
    fn encodings_parse_case_insensitively() {
        assert_eq!(Encoding::from_name("GZIP"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_name("br"), None);
    }
}
