//! Drop-in routes for existing analytics SDKs: the Segment HTTP Tracking API
//! ([`segment`]) and PostHog's capture API ([`posthog`]).
//!
//! Each protocol only translates: it finds the key, turns every SDK message
//! into one event in the native contract's shape, and hands the lot to
//! [`ingest::ingest_events`], the same pipeline as `POST /v1/events` (rate
//! limits, contract, plugins, Kafka acknowledgement, dead-letter copies). The
//! mapping tables are in `docs/sdk-compat.md`.
//!
//! Answers follow what the SDKs' retry logic expects: 200 once every event is
//! in Kafka or dead-lettered with its reason (a rejected event can never
//! succeed, so it must not be retried); 503 with `Retry-After` while any event
//! is not in Kafka (the SDK resends the batch with the same message ids, which
//! map to the same event ids); request-level errors keep the native codes
//! (400/401/413/429/503), except that PostHog routes answer a rate limit with
//! 503 because posthog-js does not retry a 429.

mod json;
pub mod posthog;
mod prefix;
pub mod segment;

use std::borrow::Cow;
use std::time::Instant;

use ::metrics::{counter, histogram};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use sluice_core::{IncomingEvent, Reject, RejectCode, Timestamp};
use uuid::Uuid;

use self::json::{Fields, Message, Object, Out, Sent};
use crate::body::{self, Encoding};
use crate::error::ApiError;
use crate::ingest::{self, BatchResponse, Candidate};
use crate::keys::Principal;
use crate::state::AppState;
use crate::{auth, metrics};

/// Both protocols' routes, with CORS for browser SDKs.
pub fn routes() -> Router<AppState> {
    segment::routes()
        .merge(posthog::routes())
        .layer(middleware::from_fn(cors))
}

/// What a protocol found in a request body, borrowed from it.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    /// The API key, when the body carries it (Segment `writeKey`, PostHog `api_key`).
    pub key: Option<String>,
    /// The SDK's messages, in order, as sent.
    pub messages: Vec<Message<'a>>,
    /// The batch-level send time, for clock-skew correction.
    pub sent_at: Option<&'a RawValue>,
}

/// One message after translation: a native event (its fields decoded, the
/// objects it rebuilt written once), or the reason it has none with the
/// message as sent (for the dead-letter copy; without the key).
pub type Translated<'a> = Result<Translation<'a>, (Cow<'a, RawValue>, Reject)>;

/// A message that cannot become an event, with the reason. `sent` is
/// the message as sent; `without` names fields left out of the dead-letter
/// copy (the key, which is never stored).
pub fn refuse<'a>(
    sent: Sent<'a>,
    message: &Object<'a>,
    without: &[&str],
    code: RejectCode,
    reason: &str,
) -> Translated<'a> {
    let reject = Reject::new(code, reason);
    if !without.iter().any(|name| message.contains(name)) {
        return Err((sent.raw(), reject));
    }
    let copy = Fields::copy_from(message, |name| !without.contains(&name));
    match json::to_raw(&copy) {
        Ok(copy) => Err((Cow::Owned(copy), reject)),
        Err(_) => Err((sent.raw(), reject)),
    }
}

/// An event in the native contract's shape (`IncomingEvent`), as translation
/// builds it; absent optional fields are left to the pipeline's defaults.
#[derive(Debug)]
pub struct NativeEvent<'x, 'a> {
    pub event_id: Option<Uuid>,
    pub event: Cow<'a, str>,
    pub user_id: Cow<'a, str>,
    pub timestamp: Option<Out<'static, 'a>>,
    pub properties: Out<'x, 'a>,
    pub context: Out<'x, 'a>,
}

impl<'a> NativeEvent<'_, 'a> {
    /// The event for the pipeline. Only what translation rebuilt (a
    /// `properties` or `context` object it assembled) is written as JSON;
    /// what the SDK sent is passed on as its text, and the fields are handed
    /// over decoded, so the pipeline never parses the event again.
    pub fn write(self) -> Translated<'a> {
        let written = (|| {
            let translation = Translation {
                event_id: self.event_id,
                event: self.event,
                user_id: self.user_id,
                timestamp: self.timestamp,
                properties: Part::written(self.properties)?,
                context: Part::written(self.context)?,
                text_len: 0,
            };
            let text_len = translation.measure()?;
            Ok::<_, ApiError>(Translation {
                text_len,
                ..translation
            })
        })();
        written.map_err(|err| {
            // Serialising borrowed JSON text cannot fail; if it ever did,
            // the event is refused rather than the whole batch.
            tracing::error!(error = %err, "translated event could not be written");
            (
                Cow::Owned(Box::<RawValue>::default()),
                Reject::new(
                    RejectCode::InvalidValue,
                    "the event could not be translated",
                ),
            )
        })
    }
}

/// A `properties` or `context` value: the SDK's own text, or an object
/// translation assembled, written once.
#[derive(Debug)]
enum Part<'a> {
    Sent(&'a RawValue),
    Written(Box<RawValue>),
}

impl<'a> Part<'a> {
    fn written(out: Out<'_, 'a>) -> Result<Self, ApiError> {
        match out {
            Out::Raw(raw) => Ok(Self::Sent(raw)),
            other => json::to_raw(&other).map(Self::Written),
        }
    }

    fn get(&self) -> &RawValue {
        match self {
            Self::Sent(raw) => raw,
            Self::Written(raw) => raw,
        }
    }

    /// As an optional field of the contract: `null` is absent.
    fn present(&self) -> Option<&RawValue> {
        Some(self.get()).filter(|raw| !json::is_null(raw))
    }
}

/// A translated event, handed to the pipeline decoded
/// ([`ingest::DecodedEvent`]). Its JSON text (the native event an SDK user
/// could have sent instead) is written only for a dead-letter copy; its
/// length, which the size limit applies to, is counted without writing it.
#[derive(Debug)]
pub struct Translation<'a> {
    event_id: Option<Uuid>,
    event: Cow<'a, str>,
    user_id: Cow<'a, str>,
    /// Epoch milliseconds, or the SDK's text when it did not parse (for the
    /// contract to refuse with the reason it gives any client).
    timestamp: Option<Out<'static, 'a>>,
    properties: Part<'a>,
    context: Part<'a>,
    text_len: usize,
}

/// [`Translation`]'s JSON text, field by field in the native contract's order.
#[derive(Serialize)]
struct TranslationText<'v> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<Uuid>,
    event: &'v str,
    user_id: &'v str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'v Out<'static, 'v>>,
    properties: &'v RawValue,
    context: &'v RawValue,
}

impl Translation<'_> {
    fn as_text(&self) -> TranslationText<'_> {
        TranslationText {
            event_id: self.event_id,
            event: &self.event,
            user_id: &self.user_id,
            timestamp: self.timestamp.as_ref(),
            properties: self.properties.get(),
            context: self.context.get(),
        }
    }

    /// The length of the JSON text, counted as serde_json writes it (the
    /// passed-through parts are only counted, never copied).
    fn measure(&self) -> Result<usize, ApiError> {
        let mut counter = ByteCount(0);
        serde_json::to_writer(&mut counter, &self.as_text())
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(counter.0)
    }
}

impl ingest::DecodedEvent for Translation<'_> {
    fn text_len(&self) -> usize {
        self.text_len
    }

    fn fields(&self) -> Result<IncomingEvent<'_>, Reject> {
        // What `IncomingEvent::decode` reads from the text: `null` is an
        // absent optional field; a timestamp goes through the same
        // `Deserialize` (the one field whose decoding can fail here).
        let timestamp = match &self.timestamp {
            None => None,
            // `Timestamp`'s `Deserialize` takes integers through `checked`.
            Some(Out::Int(millis)) => Some(Timestamp::checked(*millis).map_err(|e| {
                Reject::from_decode_error(&<serde_json::Error as serde::de::Error>::custom(e))
            })?),
            Some(Out::Raw(raw)) if json::is_null(raw) => None,
            Some(Out::Raw(raw)) => Some(
                serde_json::from_str::<Timestamp>(raw.get())
                    .map_err(|e| Reject::from_decode_error(&e))?,
            ),
            Some(other) => Some(
                serde_json::to_string(other)
                    .and_then(|text| serde_json::from_str::<Timestamp>(&text))
                    .map_err(|e| Reject::from_decode_error(&e))?,
            ),
        };
        Ok(IncomingEvent {
            event_id: self.event_id,
            event: Cow::Borrowed(&self.event),
            user_id: Cow::Borrowed(&self.user_id),
            timestamp,
            schema_version: None,
            properties: self.properties.present(),
            context: self.context.present(),
        })
    }

    fn text(&self) -> String {
        // `measure` already wrote the same value once without error.
        serde_json::to_string(&self.as_text()).unwrap_or_default()
    }
}

/// The text of a translated event, after checking that the pipeline gets
/// from the translation exactly what it would get from decoding that text.
#[cfg(test)]
pub(crate) fn checked_text(event: &Translation<'_>) -> String {
    use ingest::DecodedEvent;
    let text = event.text();
    assert_eq!(event.text_len(), text.len(), "{text}");
    let raw: &RawValue = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let decoded = IncomingEvent::decode(raw, &sluice_core::Limits::default());
    assert_eq!(
        format!("{:?}", event.fields()),
        format!("{decoded:?}"),
        "{text}"
    );
    text
}

/// An `io::Write` that only counts.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What differs between SDK protocols.
pub(crate) trait Protocol: Sync {
    /// The `route` label of the request metrics.
    const ROUTE: &'static str;
    /// The SDK family, for messages.
    const NAME: &'static str;

    /// The key, when the request carries it in a header (checked before the
    /// body is read, so a wrong key costs no body read).
    fn key_in_header(&self, headers: &HeaderMap) -> Result<Option<String>, ApiError>;

    /// How the body is compressed.
    fn encoding(&self, headers: &HeaderMap) -> Result<Encoding, ApiError>;

    /// The JSON inside the decompressed body (a form field, base64): the
    /// body itself unless the protocol wraps it.
    fn json<'b>(&self, body: &'b [u8]) -> Result<Cow<'b, [u8]>, ApiError> {
        Ok(Cow::Borrowed(body))
    }

    /// Finds the key and the messages in the body's JSON.
    fn parse<'a>(&self, json: &'a [u8]) -> Result<Parsed<'a>, ApiError>;

    /// The key in the first bytes of a decoded body too long to decode
    /// before its key is checked ([`body::PreAuth`]); `None` when those
    /// bytes hold none whole.
    fn key_in_prefix(&self, prefix: &[u8]) -> Option<String>;

    /// The key carried inside the messages, for bodies without one at the
    /// top (older posthog-js); `None` by default.
    fn key_in_messages(&self, _messages: &[Message<'_>]) -> Option<String> {
        None
    }

    /// Turns one SDK message (a JSON object: `message` as read, `fields`
    /// its fields) into one event in the native contract's shape.
    fn translate<'a>(
        &self,
        message: &Message<'a>,
        fields: &Object<'a>,
        context: &Context<'a>,
    ) -> Translated<'a>;

    /// The member of the answer the SDK reads, by name; `ok` is false
    /// when it must retry. Its name sorts after the native counts'.
    fn answer_flag(&self, ok: bool) -> (&'static str, Value);

    /// The status of a rate-limit refusal: 429, unless the protocol's SDKs
    /// would drop the events on a 429 instead of retrying them.
    const RATE_LIMITED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
}

/// Serves one SDK request through the shared pipeline and answers it the way
/// the SDK expects.
pub(crate) async fn serve<P: Protocol>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    protocol: &P,
) -> Response {
    let started = Instant::now();
    let response = match ingest(state, headers, body, protocol).await {
        Ok(outcome) => answer(protocol, &outcome),
        Err(err) => {
            let rate_limited = matches!(err, ApiError::RateLimited { .. });
            let mut response = err.into_response();
            if rate_limited {
                *response.status_mut() = P::RATE_LIMITED;
            }
            response
        }
    };
    counter!(metrics::REQUESTS, "route" => P::ROUTE, "status" => response.status().as_str().to_owned())
        .increment(1);
    histogram!(metrics::REQUEST_DURATION).record(started.elapsed());
    response
}

async fn ingest<P: Protocol>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    protocol: &P,
) -> Result<BatchResponse, ApiError> {
    let checked = protocol.key_in_header(headers).and_then(|key| {
        let early = key
            .map(|key| auth::principal(state.keys(), &key))
            .transpose()?;
        Ok((early, protocol.encoding(headers)?))
    });
    let (early, encoding) = match checked {
        Ok(checked) => checked,
        Err(err) => return Err(body::refuse(body, state.ingest(), err).await),
    };
    // PostHog's key travels in the body: without a header key the body is
    // read first, under the same size, time and memory limits as any other,
    // and a compressed one is decoded only so far before its key is checked
    // (`body::PreAuth` says why and how far).
    let (bytes, ticket) = if early.is_some() {
        body::read_request(state, headers, body, encoding).await?
    } else {
        let limit = state.ingest().max_pre_auth_decoded_bytes;
        let mut check = |prefix: &[u8]| {
            let key = protocol
                .key_in_prefix(prefix)
                .ok_or(ApiError::UnauthenticatedTooLarge { limit })?;
            auth::principal(state.keys(), &key).map(drop)
        };
        let pre_auth = body::PreAuth {
            limit,
            check: &mut check,
        };
        body::read_request_pre_auth(state, headers, body, encoding, Some(pre_auth)).await?
    };
    let json = protocol.json(&bytes)?;
    let parsed = protocol.parse(&json)?;
    json::refuse_like_value(&json)?;
    let key = parsed
        .key
        .or_else(|| protocol.key_in_messages(&parsed.messages));
    let principal: Principal = match early {
        Some(principal) => principal,
        None => auth::principal(state.keys(), key.as_deref().ok_or(ApiError::MissingApiKey)?)?,
    };
    let context = Context::new(&principal.team, state.clock().now(), parsed.sent_at);
    let translated: Vec<Translated<'_>> = parsed
        .messages
        .iter()
        .map(|message| match message.fields() {
            Some(fields) => protocol.translate(message, fields, &context),
            None => Err((
                message.sent().raw(),
                Reject::new(
                    RejectCode::NotAnObject,
                    format!("each {} message must be a JSON object", P::NAME),
                ),
            )),
        })
        .collect();
    let candidates: Vec<Candidate<'_>> = translated
        .iter()
        .map(|translated| match translated {
            Ok(event) => Candidate::Translated(event),
            Err((original, reject)) => Candidate::Untranslatable { original, reject },
        })
        .collect();
    let outcome = ingest::ingest_events(state, &principal, &candidates).await;
    drop(ticket);
    outcome
}

/// 200 when nothing is left to retry, 503 with `Retry-After` when some event
/// is not in Kafka. The body adds the native counts to what the SDK expects.
fn answer<P: Protocol>(protocol: &P, outcome: &BatchResponse) -> Response {
    let ok = outcome.failed == 0;
    let json = axum::Json(Answer {
        outcome,
        flag: protocol.answer_flag(ok),
    });
    if ok {
        return (StatusCode::OK, json).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, ingest::RETRY_AFTER_SECS.to_string())],
        json,
    )
        .into_response()
}

/// An SDK route's answer body: the native counts and the SDK's own member,
/// with the names in sorted order (as the `serde_json::Map` this replaced
/// wrote them, so the bytes are the same) and no map built per request.
struct Answer<'o> {
    outcome: &'o BatchResponse,
    flag: (&'static str, Value),
}

impl Serialize for Answer<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("accepted", &self.outcome.accepted)?;
        map.serialize_entry("dead_lettered", &self.outcome.dead_lettered)?;
        map.serialize_entry("failed", &self.outcome.failed)?;
        map.serialize_entry("rejected", &self.outcome.rejected)?;
        map.serialize_entry(self.flag.0, &self.flag.1)?;
        map.end()
    }
}

/// What translation needs besides the message.
#[derive(Debug)]
pub struct Context<'a> {
    pub team: &'a str,
    /// The gateway's receive time: the reference for clock-skew correction.
    pub now: Timestamp,
    /// The batch's send time, when the body has one.
    pub sent_at: Option<&'a RawValue>,
    /// `sent_at` read as a time once, not once per message.
    sent_time: Option<Timestamp>,
}

impl<'a> Context<'a> {
    pub fn new(team: &'a str, now: Timestamp, sent_at: Option<&'a RawValue>) -> Self {
        Self {
            team,
            now,
            sent_at,
            sent_time: sent_at.and_then(json::parse_time),
        }
    }

    /// The Sluice event id of an SDK message id (see [`event_id_for`]);
    /// `None` when the message has no usable id: the pipeline assigns one.
    pub fn event_id(&self, id: Option<&RawValue>) -> Option<Uuid> {
        Some(event_id_for(self.team, &json::text_of(id?)?))
    }

    /// The event time after clock-skew correction. SDKs stamp each message
    /// with the device clock and the request with `sent_at` from the same
    /// clock; the difference is trustworthy even when the clock is not, so
    /// the event time is `now - (sent_at - timestamp)`. Without a send time
    /// the client's timestamp stands; without a timestamp, `now - offset_ms`
    /// (PostHog's `offset`), else the gateway time. A timestamp that does not
    /// parse is passed through for the contract to reject with its reason.
    /// `sent_at` is the message's own send time, which wins over the
    /// batch's when present (even as `null`).
    pub fn timestamp<'m>(
        &self,
        timestamp: Option<&'m RawValue>,
        sent_at: Option<&RawValue>,
        offset_ms: Option<&RawValue>,
    ) -> Option<Out<'static, 'm>> {
        let Some(raw) = json::non_null(timestamp) else {
            let offset = json::as_i64(offset_ms?)?;
            return Some(Out::Int(self.now.as_millis().saturating_sub(offset)));
        };
        let Some(client) = json::parse_time(raw) else {
            return Some(Out::Raw(raw));
        };
        let sent = match sent_at {
            Some(own) => json::parse_time(own),
            None => self.sent_time,
        };
        let millis = match sent {
            Some(sent) => self
                .now
                .as_millis()
                .saturating_sub(sent.as_millis().saturating_sub(client.as_millis())),
            None => client.as_millis(),
        };
        Some(Out::Int(millis))
    }
}

/// The Sluice event id for an SDK message id: a UUID is kept as it is
/// (PostHog's `uuid`, analytics.js's `messageId`s that are UUIDs); any other
/// id (analytics-node's `node-next-<ms>-<uuid>`) becomes a UUIDv8 made of the
/// first 16 bytes of SHA-256 over the team and the id. Both are
/// deterministic, so a retried message gets the same event id and dedupes
/// downstream; the team in the hash keeps two teams' ids apart.
pub fn event_id_for(team: &str, message_id: &str) -> Uuid {
    if let Ok(uuid) = Uuid::parse_str(message_id)
        && !uuid.is_nil()
    {
        return uuid;
    }
    let digest = Sha256::new()
        .chain_update(b"sluice-sdk-message-id\0")
        .chain_update(team.as_bytes())
        .chain_update(b"\0")
        .chain_update(message_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The protocol's block in `context`: the named fields that are present and
/// not `null`, then every field of `message` that translation did not take
/// (`taken`), under its own name, so nothing the SDK sent is lost.
pub fn sdk_block<'x, 'a>(
    named: impl IntoIterator<Item = (&'static str, Option<Out<'x, 'a>>)>,
    message: &'x Object<'a>,
    taken: impl Fn(&str) -> bool,
) -> Fields<'x, 'a> {
    let mut block = Fields::with_capacity(16);
    for (name, value) in named {
        match value {
            Some(Out::Raw(raw)) if json::is_null(raw) => {}
            Some(value) => block.push(name, value),
            None => {}
        }
    }
    for (name, value) in message.iter() {
        if !taken(name) {
            block.or_insert(name, Out::Raw(value));
        }
    }
    block
}

/// CORS for browser SDKs. The routes authenticate with a key in the request,
/// never a cookie, so any origin may call them: preflights are answered here
/// and every answer carries `Access-Control-Allow-Origin: *` (without it a
/// browser hides even a 200 from the SDK, which would then retry forever).
async fn cors(request: Request, next: Next) -> Response {
    let allow_headers = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(
            "authorization, content-type, content-encoding",
        ));
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        let headers = preflight.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        preflight
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    fn context(sent_at: Option<&RawValue>) -> Context<'_> {
        Context::new("team-a", NOW, sent_at)
    }

    fn millis(out: Option<Out<'_, '_>>) -> Option<String> {
        out.map(|out| serde_json::to_string(&out).unwrap())
    }

    #[test]
    fn uuids_are_kept_and_other_ids_hash_deterministically_per_team() {
        let ctx = context(None);
        let uuid = "0190d6a8-0000-7000-8000-000000000001";
        let quoted = format!("\"{uuid}\"");
        assert_eq!(ctx.event_id(Some(raw(&quoted))).unwrap().to_string(), uuid);
        let a = ctx.event_id(Some(raw(r#""node-next-1-abc""#))).unwrap();
        assert_eq!(a, ctx.event_id(Some(raw(r#""node-next-1-abc""#))).unwrap());
        assert_eq!(a.get_version_num(), 8);
        assert_ne!(a, ctx.event_id(Some(raw(r#""node-next-1-abd""#))).unwrap());
        let other_team = Context {
            team: "team-b",
            ..context(None)
        };
        assert_ne!(
            a,
            other_team
                .event_id(Some(raw(r#""node-next-1-abc""#)))
                .unwrap()
        );
        // The nil UUID is an id like any other string, never the nil event id.
        let nil = ctx
            .event_id(Some(raw(r#""00000000-0000-0000-0000-000000000000""#)))
            .unwrap();
        assert!(!nil.is_nil());
        assert_eq!(
            ctx.event_id(Some(raw("42"))),
            ctx.event_id(Some(raw(r#""42""#)))
        );
        assert!(ctx.event_id(Some(raw(r#""""#))).is_none());
        assert!(ctx.event_id(None).is_none());
    }

    #[test]
    fn the_pipeline_reads_a_translation_as_it_would_read_its_text() {
        let props = raw(r#"{"a":"\u00e9","b":[1,{"c":null}]}"#);
        let context = raw(r#"{"segment":{"type":"track"}}"#);
        let cases = [
            (Some(Out::Int(NOW.as_millis())), "Signed Up", "u-1"),
            // Beyond what a timestamp can hold: refused as decoding refuses it.
            (Some(Out::Int(i64::MAX)), "e", "u"),
            (Some(Out::Int(i64::MIN)), "e", "u"),
            (Some(Out::Raw(raw(r#""soon""#))), "e", "u"),
            (Some(Out::Raw(raw("1.5"))), "e", "u"),
            (Some(Out::Raw(raw("{}"))), "e", "u"),
            (None, "quote \" and \n", "user \u{1}"),
        ];
        for (timestamp, event, user) in cases {
            let translation = NativeEvent {
                event_id: Some(Uuid::from_u128(7)),
                event: event.into(),
                user_id: user.into(),
                timestamp,
                properties: Out::Raw(props),
                context: Out::Raw(context),
            }
            .write()
            .unwrap();
            checked_text(&translation);
        }
        let mut fields = Fields::with_capacity(2);
        fields.push("name", Out::Str("Pricing"));
        fields.push("n", Out::Int(-3));
        let rebuilt = NativeEvent {
            event_id: None,
            event: "$page".into(),
            user_id: "u".into(),
            timestamp: None,
            properties: Out::Object(fields),
            context: Out::Raw(raw("null")),
        }
        .write()
        .unwrap();
        assert_eq!(
            checked_text(&rebuilt),
            r#"{"event":"$page","user_id":"u","properties":{"name":"Pricing","n":-3},"context":null}"#
        );
    }

    #[test]
    fn timestamps_are_corrected_by_the_clients_own_send_time() {
        // The device clock runs an hour fast: event 2 s before sending.
        let sent = raw(r#""2027-01-15T09:00:02.000Z""#);
        let ctx = context(Some(sent));
        let ts = raw(r#""2027-01-15T09:00:00.000Z""#);
        let at = |ms: i64| Some(ms.to_string());
        assert_eq!(
            millis(ctx.timestamp(Some(ts), None, None)),
            at(NOW.as_millis() - 2000)
        );
        // A per-message send time wins over the batch's.
        let own = raw(r#""2027-01-15T09:00:05.000Z""#);
        assert_eq!(
            millis(ctx.timestamp(Some(ts), Some(own), None)),
            at(NOW.as_millis() - 5000)
        );
        // No send time: the client's time as it is.
        let plain = context(None);
        assert_eq!(
            millis(plain.timestamp(Some(raw("1799999000000")), None, None)),
            at(1_799_999_000_000)
        );
        // PostHog's `offset` when there is no timestamp; nothing at all: None.
        assert_eq!(
            millis(plain.timestamp(None, None, Some(raw("1500")))),
            at(NOW.as_millis() - 1500)
        );
        assert_eq!(millis(plain.timestamp(Some(raw("null")), None, None)), None);
        assert_eq!(millis(plain.timestamp(None, None, None)), None);
        // Garbage passes through, for the contract to reject with its reason.
        assert_eq!(
            millis(plain.timestamp(Some(raw(r#""soon""#)), None, None)),
            Some(r#""soon""#.to_owned())
        );
    }
}
