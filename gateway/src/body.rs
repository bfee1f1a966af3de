//! Reading a request body under limits: wire size, decompressed size, time.
//!
//! A compression bomb costs no more memory than `max_decompressed_bytes`: the
//! decoder's output is read in bounded steps, so the first byte past the
//! limit ends decoding with an error instead of a larger buffer. A client
//! that stalls mid-upload is cut off after `body_timeout_ms`.
//!
//! Where the key is inside the body ([`PreAuth`]), at most
//! `max_pre_auth_decoded_bytes` (+1) are decoded before the key is checked.

use std::io::{BufRead, Cursor, Read};
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
    read_request_pre_auth(state, headers, body, encoding, None).await
}

/// What a body that carries its own key must show before more than
/// `limit` bytes of it are decoded.
///
/// Why: the SDK routes whose key travels in the body (PostHog's `api_key`,
/// Segment's `writeKey`) cannot refuse a stranger before reading the body.
/// Reading costs no more than the bytes the client sent (`max_body_bytes`),
/// but decoding a compressed body multiplies them: without this a 20 KiB
/// gzip bomb would cost 20 MiB of decoding (`max_decompressed_bytes`) before
/// its key was looked at. So a compressed body is decoded to `limit + 1`
/// bytes at most; if it ends there, it is parsed and its key checked as any
/// body (at most `limit` bytes decoded and parsed unauthenticated); if not,
/// `check` must find a valid key in those bytes before the rest is decoded.
/// The real SDKs pass: posthog-node and posthog-js put the key first (or in
/// the first event's properties), and posthog-python (key last) sends gzip
/// only when asked to, in batches of 100 events, far below the 1 MiB default.
/// Uncompressed bodies are not held to it: their cost is the bytes sent.
pub struct PreAuth<'c> {
    /// Most bytes decoded before the key is checked (capped by
    /// `max_decompressed_bytes`).
    pub limit: usize,
    /// Finds the key in the first `limit + 1` decoded bytes of a longer body
    /// and checks it: an error refuses the request.
    pub check: &'c mut (dyn FnMut(&[u8]) -> Result<(), ApiError> + Send),
}

impl std::fmt::Debug for PreAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreAuth")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// [`read_request`], for a body whose key is inside it when `pre_auth` is set.
pub async fn read_request_pre_auth(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
    pre_auth: Option<PreAuth<'_>>,
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
    let (bytes, mut ticket) = read(body, encoding, config, ticket, pre_auth).await?;
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
    pre_auth: Option<PreAuth<'_>>,
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
    let mut decoding = Decoding::new(raw, encoding, ticket)?;
    if let Some(pre_auth) = pre_auth {
        decoding = decode(decoding, pre_auth.limit.min(limit), limit, inline).await?;
        counter!(metrics::PRE_AUTH_DECODED_BYTES).increment(decoding.out.len() as u64);
        if !decoding.finished {
            (pre_auth.check)(&decoding.out)?;
        }
    }
    let decoding = decode(decoding, limit, limit, inline).await?;
    Ok((Bytes::from(decoding.out), decoding.ticket))
}

/// Runs [`Decoding::run`] here or, for a large body, on the blocking pool.
async fn decode(
    decoding: Decoding,
    until: usize,
    limit: usize,
    inline: bool,
) -> Result<Decoding, ApiError> {
    if decoding.finished {
        return Ok(decoding);
    }
    let run = move || decoding.run(until, limit);
    if inline {
        run()
    } else {
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
    }
}

/// A compressed body being decoded, which can stop after its first bytes
/// (for [`PreAuth`]) and go on from there.
struct Decoding {
    reader: Box<dyn Read + Send>,
    out: Vec<u8>,
    wire: usize,
    /// Covers the wire bytes and grows with the output.
    ticket: Ticket,
    finished: bool,
}

impl Decoding {
    fn new(raw: Bytes, encoding: Encoding, ticket: Ticket) -> Result<Self, ApiError> {
        let wire = raw.len();
        Ok(Self {
            reader: decoder(Cursor::new(raw), encoding)?,
            out: Vec::new(),
            wire,
            ticket,
            finished: false,
        })
    }

    /// Decodes until the output holds more than `until` bytes or the body
    /// ends; more than `limit` bytes in all is an error.
    fn run(mut self, until: usize, limit: usize) -> Result<Self, ApiError> {
        let (wire, ticket) = (self.wire, &mut self.ticket);
        self.finished = fill(
            &mut *self.reader,
            &mut self.out,
            until,
            limit,
            &mut |decoded| ticket.reserve(wire + decoded),
        )?;
        Ok(self)
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
    let mut reader = match encoding.resolve(raw) {
        Encoding::Identity | Encoding::Detect => return Ok(raw.to_vec()),
        other => decoder(raw, other)?,
    };
    let mut out = Vec::new();
    fill(&mut *reader, &mut out, limit, limit, budget)?;
    Ok(out)
}

/// The decoder of `encoding` over `raw` (identity: `raw` as it is).
fn decoder<'r, R: BufRead + Send + 'r>(
    raw: R,
    encoding: Encoding,
) -> Result<Box<dyn Read + Send + 'r>, ApiError> {
    Ok(match encoding {
        Encoding::Identity | Encoding::Detect => Box::new(raw),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Encoding::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| ApiError::InvalidCompression(e.to_string()))?,
        ),
    })
}

/// Reads `reader` into `out` until `out` holds more than `until` bytes
/// (`Ok(false)`: more may follow) or the input ends (`Ok(true)`). More than
/// `limit` bytes in all is [`ApiError::DecompressedTooLarge`]; `budget` is
/// asked to cover each step before it is read.
fn fill(
    reader: &mut dyn Read,
    out: &mut Vec<u8>,
    until: usize,
    limit: usize,
    budget: &mut dyn FnMut(usize) -> bool,
) -> Result<bool, ApiError> {
    let cap = until.min(limit) + 1;
    while out.len() < cap {
        let step = DECODE_STEP.min(cap - out.len());
        if !budget(out.len() + step) {
            return Err(overloaded());
        }
        let before = out.len();
        (&mut *reader)
            .take(step as u64)
            .read_to_end(out)
            .map_err(|e| ApiError::InvalidCompression(e.to_string()))?;
        if out.len() > limit {
            return Err(ApiError::DecompressedTooLarge { limit });
        }
        if out.len() - before < step {
            return Ok(true);
        }
    }
    Ok(false)
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
    fn a_body_stops_after_its_first_bytes_and_goes_on_from_there() {
        // A bomb behind a key: 64 MiB of spaces in a batch.
        let mut text = br#"{"api_key":"sk_unknown","batch":["#.to_vec();
        text.resize(64 * 1024 * 1024, b' ');
        let limit = 4 * 1024 * 1024;
        for (encoding, raw) in [
            (Encoding::Gzip, gzip(&text)),
            (Encoding::Zstd, zstd::encode_all(&text[..], 3).unwrap()),
        ] {
            let wire = raw.len();
            let mut asked = Vec::new();
            let mut reader = decoder(&raw[..], encoding).unwrap();
            let mut out = Vec::new();
            // Exactly `until + 1` bytes, and no reservation beyond them.
            let finished = fill(&mut *reader, &mut out, 65_536, limit, &mut |total| {
                asked.push(total);
                true
            })
            .unwrap();
            assert!(!finished);
            assert_eq!(out.len(), 65_537);
            assert_eq!(asked, [65_537]);
            assert!(out.starts_with(br#"{"api_key":"sk_unknown""#));
            // Going on reads the rest up to the limit, as a single pass would.
            let err = fill(&mut *reader, &mut out, limit, limit, &mut |_| true).unwrap_err();
            assert!(
                matches!(err, ApiError::DecompressedTooLarge { .. }),
                "{wire}"
            );
            assert_eq!(out.len(), limit + 1);
        }
        // A short body ends within the first bytes: all of it, finished.
        let raw = gzip(br#"{"batch":[]}"#);
        let mut out = Vec::new();
        let mut reader = decoder(&raw[..], Encoding::Gzip).unwrap();
        assert!(fill(&mut *reader, &mut out, 65_536, limit, &mut |_| true).unwrap());
        assert_eq!(out, br#"{"batch":[]}"#);
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
