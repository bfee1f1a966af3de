//! PostHog's capture API: `/batch/`, `/e/`, `/capture/`, `/track/` and
//! `/i/v0/e/`, with or without the trailing slash. The key is the `api_key`
//! (or `token`) in the body, as every PostHog SDK sends it; a Sluice API key
//! goes where the project token would. Mapping: `docs/sdk-compat.md`.
//!
//! Bodies arrive in the shapes the SDKs use: `{"api_key", "batch": [...],
//! "sent_at"}` (posthog-node, posthog-python, posthog-js), a bare array or a
//! single event (older posthog-js, `curl`), or a form field `data=` holding
//! JSON or base64 JSON (`compression=base64`). Gzip comes as
//! `Content-Encoding: gzip` (posthog-node), `?compression=gzip-js` (older
//! posthog-js), or unannounced (posthog-js now), which is why the body is
//! sniffed when neither says.

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD};
use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::Value;
use serde_json::value::RawValue;
use sluice_core::{Reject, RejectCode};

use super::json::{self, Batch, Doc, Fields, Message, Object, Out, Sent};
use super::{Context, NativeEvent, Parsed, Protocol, Translated, prefix, sdk_block};
use crate::body::Encoding;
use crate::error::ApiError;
use crate::state::AppState;

/// Every capture path the SDKs call.
const PATHS: [&str; 5] = ["/batch", "/e", "/capture", "/track", "/i/v0/e"];

/// Top-level person-property operations, kept in `properties` like PostHog does.
const PERSON_OPS: [&str; 3] = ["$set", "$set_once", "$unset"];

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for path in PATHS {
        for path in [path.to_owned(), format!("{path}/")] {
            router = router.route(
                &path,
                post(
                    |State(state): State<AppState>,
                     RawQuery(query): RawQuery,
                     headers: HeaderMap,
                     body: Body| async move {
                        serve(&state, query, &headers, body).await
                    },
                ),
            );
        }
    }
    router
}

async fn serve(
    state: &AppState,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let compression = query.as_deref().and_then(|query| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find_map(|(name, value)| (name == "compression").then_some(value))
    });
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    super::serve(state, headers, body, &PostHog { compression, form }).await
}

/// The protocol, with what the request line and headers said about the body.
#[derive(Debug, Clone, Default)]
pub struct PostHog {
    /// The `compression` query parameter: `gzip-js`, `gzip`, `base64`.
    pub compression: Option<String>,
    /// The body is `application/x-www-form-urlencoded` (`data=...`).
    pub form: bool,
}

impl Protocol for PostHog {
    const ROUTE: &'static str = "posthog";
    const NAME: &'static str = "PostHog";

    fn key_in_header(&self, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        // Only a bearer token: PostHog SDKs send none, but a proxy or a
        // hand-written client may prefer a header to a key in the body.
        match headers.get(header::AUTHORIZATION) {
            Some(_) => crate::auth::bearer(headers).map(|key| Some(key.to_owned())),
            None => Ok(None),
        }
    }

    fn encoding(&self, headers: &HeaderMap) -> Result<Encoding, ApiError> {
        if headers.contains_key(header::CONTENT_ENCODING) {
            return Encoding::from_headers(headers);
        }
        match self.compression.as_deref() {
            // Base64 is a property of the form field, undone in `parse`.
            None | Some("base64") => Ok(Encoding::Detect),
            Some(name) => Encoding::from_name(name)
                .ok_or_else(|| ApiError::UnsupportedEncoding(name.to_owned())),
        }
    }

    fn json<'b>(&self, body: &'b [u8]) -> Result<Cow<'b, [u8]>, ApiError> {
        if self.form || body.starts_with(b"data=") {
            return form_data(body, self.compression.as_deref()).map(Cow::Owned);
        }
        Ok(Cow::Borrowed(body))
    }

    fn key_in_prefix(&self, prefix: &[u8]) -> Option<String> {
        let places = prefix::Places {
            names: &["api_key", "token"],
            in_messages: true,
        };
        if self.form || prefix.starts_with(b"data=") {
            return prefix::find_key(
                &form_data_prefix(prefix, self.compression.as_deref())?,
                places,
            );
        }
        prefix::find_key(prefix, places)
    }

    fn parse<'a>(&self, body: &'a [u8]) -> Result<Parsed<'a>, ApiError> {
        let (key, messages, sent_at) = match Doc::parse_body(body, false)? {
            (Doc::Object(fields), Some(batch)) => {
                let Batch::Array(messages) = batch else {
                    return Err(ApiError::InvalidBatch(
                        "`batch` must be an array".to_owned(),
                    ));
                };
                (key_of(&fields), messages, fields.get("sent_at"))
            }
            (Doc::Array(messages), _) => (None, messages, None),
            // One event: its fields are the ones just read.
            (Doc::Object(fields), None) => (None, vec![Message::whole(body, fields)], None),
            (Doc::Other, _) => {
                return Err(ApiError::InvalidBatch(
                    "expected {\"batch\": [...]}, an array of events, or one event".to_owned(),
                ));
            }
        };
        Ok(Parsed {
            key,
            messages,
            sent_at,
        })
    }

    fn key_in_messages(&self, messages: &[Message<'_>]) -> Option<String> {
        // Older posthog-js puts the token in every event's properties.
        messages.iter().find_map(|message| {
            let message = message.fields()?;
            key_of(message).or_else(|| key_of(&Object::parse(message.get("properties")?)?))
        })
    }

    fn translate<'a>(
        &self,
        message: &Message<'a>,
        fields: &Object<'a>,
        context: &Context<'a>,
    ) -> Translated<'a> {
        translate(message.sent(), fields, context)
    }

    fn answer_flag(&self, ok: bool) -> (&'static str, Value) {
        ("status", Value::from(u8::from(ok)))
    }

    // posthog-js retries 5xx but treats a 429 as final (its retry queue
    // resends only when the status is below 400 or at least 500), so a
    // rate-limited browser batch would be lost. 503 with the same
    // `Retry-After` and `rate_limited` code makes every PostHog SDK retry.
    const RATE_LIMITED: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
}

fn key_of(object: &Object<'_>) -> Option<String> {
    ["api_key", "token"].into_iter().find_map(|name| {
        json::as_str(object.get(name)?)
            .filter(|key| !key.is_empty())
            .map(Cow::into_owned)
    })
}

/// The JSON in a form body's `data` field: as it is, or base64-decoded.
fn form_data(body: &[u8], compression: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::InvalidRequest(format!("form body: {e}")))?;
    let find = |name: &str| {
        fields
            .iter()
            .find_map(|(field, value)| (field == name).then_some(value.as_str()))
    };
    let data = find("data")
        .ok_or_else(|| ApiError::InvalidRequest("form body without a `data` field".to_owned()))?
        .trim();
    let base64 = compression.or(find("compression")) == Some("base64")
        || !(data.starts_with('{') || data.starts_with('['));
    if !base64 {
        return Ok(data.as_bytes().to_vec());
    }
    BASE64_STANDARD
        .decode(data)
        .or_else(|_| BASE64_STANDARD_NO_PAD.decode(data))
        .map_err(|_| ApiError::InvalidRequest("`data` is neither JSON nor base64 JSON".to_owned()))
}

/// The start of the JSON in the `data` field of a form body's first bytes,
/// as [`form_data`] reads the whole: the field's bytes up to where the
/// prefix ends, base64 decoded in whole groups of four.
fn form_data_prefix(prefix: &[u8], compression: Option<&str>) -> Option<Vec<u8>> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(prefix).ok()?;
    let (_, data) = fields.iter().find(|(field, _)| field == "data")?;
    let data = data.trim();
    let base64 = compression == Some("base64") || !(data.starts_with('{') || data.starts_with('['));
    if !base64 {
        return Some(data.as_bytes().to_vec());
    }
    let whole = data.len() / 4 * 4;
    BASE64_STANDARD.decode(&data[..whole]).ok()
}

/// The key, never stored: not at the top of an event, not in its properties.
const WITHOUT: [&str; 2] = ["api_key", "token"];

/// One PostHog event to one native event. Fields with no contract
/// counterpart go to `context.posthog`; the key is never stored. Only the
/// mapped fields are read; `properties` and the unmapped fields are passed
/// through as the SDK wrote them (minus the key).
fn translate<'a>(sent: Sent<'a>, m: &Object<'a>, context: &Context<'a>) -> Translated<'a> {
    let sent_properties = json::non_null(m.get("properties"));
    // Reading the properties' names costs about as much as the rest of the
    // translation (posthog-node and posthog-js send large properties), so
    // they are read only when needed: to find the user there, to leave the
    // key out, to add person operations, or for a dead-letter copy.
    let properties_cell = OnceCell::new();
    let properties_fields = || -> Option<&Object<'a>> {
        properties_cell
            .get_or_init(|| sent_properties.and_then(Object::parse))
            .as_ref()
    };
    let Some(name) = m.get("event").and_then(json::text_of) else {
        return refuse(
            sent,
            m,
            properties_fields(),
            RejectCode::MissingField,
            "a PostHog event needs a non-empty `event`",
        );
    };
    let user = json::first_text([m.get("distinct_id")]).or_else(|| {
        json::first_text([properties_fields().and_then(|props| props.get("distinct_id"))])
    });
    let Some(user) = user else {
        return refuse(
            sent,
            m,
            properties_fields(),
            RejectCode::MissingField,
            "a PostHog event needs `distinct_id`",
        );
    };
    let event_id = context.event_id(m.get("uuid"));
    let timestamp = context.timestamp(m.get("timestamp"), m.get("sent_at"), m.get("offset"));

    // Person operations at the top join the properties unless they are there
    // already; with properties that are not an object they stay where they are.
    let empty = Object::default();
    let props = match sent_properties {
        None => Some(&empty),
        // An object that cannot hold the key and gets no person operation
        // is passed on as sent, which is what reading it would conclude.
        Some(sent)
            if sent.get().starts_with('{')
                && json::cannot_have_name(sent, "\"token\"")
                && !PERSON_OPS.iter().any(|op| m.contains(op)) =>
        {
            Some(&empty)
        }
        Some(_) => properties_fields(),
    };
    let properties = match props {
        Some(props) => {
            let ops: Vec<(&'static str, &RawValue)> = PERSON_OPS
                .iter()
                .filter(|op| !props.contains(op))
                .filter_map(|op| Some((*op, m.get(op)?)))
                .collect();
            match sent_properties {
                Some(sent) if ops.is_empty() && !props.contains("token") => Out::Raw(sent),
                _ => {
                    let mut fields = Fields::copy_from(props, |field| field != "token");
                    for (op, value) in ops {
                        fields.push(op, Out::Raw(value));
                    }
                    Out::Object(fields)
                }
            }
        }
        // Properties that are not an object: passed on for the contract to
        // refuse with its reason (`props` is `None` only then).
        None => sent_properties.map_or_else(|| Out::Object(Fields::default()), Out::Raw),
    };
    let ops_taken = props.is_some();
    let taken = |field: &str| {
        matches!(
            field,
            "api_key"
                | "token"
                | "event"
                | "distinct_id"
                | "uuid"
                | "timestamp"
                | "sent_at"
                | "offset"
                | "type"
                | "library"
                | "library_version"
                | "properties"
        ) || (ops_taken && PERSON_OPS.contains(&field))
    };
    let posthog = sdk_block(
        [
            ("uuid", m.get("uuid").map(Out::Raw)),
            ("timestamp", m.get("timestamp").map(Out::Raw)),
            (
                "sent_at",
                m.get("sent_at").or(context.sent_at).map(Out::Raw),
            ),
            ("offset", m.get("offset").map(Out::Raw)),
            ("type", m.get("type").map(Out::Raw)),
            ("library", m.get("library").map(Out::Raw)),
            ("library_version", m.get("library_version").map(Out::Raw)),
        ],
        m,
        taken,
    );
    let mut event_context = Fields::with_capacity(1);
    event_context.push("posthog", Out::Object(posthog));

    NativeEvent {
        event_id,
        event: name,
        user_id: user,
        timestamp,
        properties,
        context: Out::Object(event_context),
    }
    .write()
}

/// An event that cannot be translated, as sent minus the key (at the top
/// and in its properties), with the reason.
fn refuse<'a>(
    sent: Sent<'a>,
    m: &Object<'a>,
    properties: Option<&Object<'a>>,
    code: RejectCode,
    reason: &str,
) -> Translated<'a> {
    let Some(props) = properties.filter(|props| props.contains("token")) else {
        return super::refuse(sent, m, &WITHOUT, code, reason);
    };
    let mut copy = Fields::copy_from(m, |field| {
        !WITHOUT.contains(&field) && field != "properties"
    });
    copy.push(
        "properties",
        Out::Object(Fields::copy_from(props, |field| field != "token")),
    );
    let reject = Reject::new(code, reason);
    match json::to_raw(&copy) {
        Ok(copy) => Err((Cow::Owned(copy), reject)),
        Err(_) => Err((sent.raw(), reject)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_core::Timestamp;

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    type Run = Result<Value, (Value, Reject)>;

    /// Translates `message` as the route does and reads the result back.
    fn run(message: Value, sent_at: Option<&Value>) -> Run {
        let text = message.to_string();
        let raw: &RawValue = serde_json::from_str(&text).unwrap();
        let sent_text = sent_at.map(Value::to_string);
        let context = Context::new(
            "team-a",
            NOW,
            sent_text
                .as_deref()
                .map(|text| serde_json::from_str(text).unwrap()),
        );
        let parse = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).unwrap();
        let Some(fields) = Object::parse(raw) else {
            return Err((message, Reject::new(RejectCode::NotAnObject, "")));
        };
        match translate(raw.into(), &fields, &context) {
            Ok(event) => Ok(serde_json::from_str(&super::super::checked_text(&event)).unwrap()),
            Err((original, reject)) => Err((parse(&original), reject)),
        }
    }

    #[test]
    fn a_capture_maps_onto_the_contract() {
        let uuid = "0190d6a8-0000-7000-8000-0000000000aa";
        let sent = json!("2027-01-15T08:00:01.000Z");
        let event = run(
            json!({
                "event": "$pageview", "distinct_id": "d-1", "uuid": uuid,
                "timestamp": "2027-01-15T08:00:00.250Z", "type": "capture",
                "properties": { "$current_url": "https://example.com/", "token": "sk_secret" },
                "$set": { "email": "x@example.com" }, "api_key": "sk_secret", "$groups": { "company": "c-1" }
            }),
            Some(&sent),
        )
        .unwrap();
        assert_eq!(event["event_id"], uuid);
        assert_eq!(event["event"], "$pageview");
        assert_eq!(event["user_id"], "d-1");
        assert_eq!(event["timestamp"], NOW.as_millis() - 750);
        assert_eq!(
            event["properties"],
            json!({ "$current_url": "https://example.com/", "$set": { "email": "x@example.com" } })
        );
        assert_eq!(event["context"]["posthog"]["uuid"], uuid);
        assert_eq!(event["context"]["posthog"]["type"], "capture");
        assert_eq!(
            event["context"]["posthog"]["$groups"],
            json!({ "company": "c-1" }),
            "unmapped fields are kept"
        );
        assert!(event["context"]["posthog"].get("distinct_id").is_none());
        assert!(
            !event.to_string().contains("sk_secret"),
            "the key is never stored"
        );
    }

    #[test]
    fn posthog_js_events_carry_the_user_in_properties_and_may_use_offset() {
        let event = run(
            json!({ "event": "clicked", "offset": 300, "uuid": "custom-id",
                    "properties": { "distinct_id": 12, "token": "sk_x" } }),
            None,
        )
        .unwrap();
        assert_eq!(event["user_id"], "12");
        assert_eq!(event["timestamp"], NOW.as_millis() - 300);
        let id: uuid::Uuid = event["event_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(id.get_version_num(), 8);
    }

    #[test]
    fn untranslatable_events_keep_their_text_minus_the_key() {
        let (original, reject) = run(json!({ "event": "e", "api_key": "sk_x" }), None).unwrap_err();
        assert_eq!(reject.code, RejectCode::MissingField);
        assert_eq!(original, json!({ "event": "e" }));
        let (_, reject) = run(json!({ "distinct_id": "d" }), None).unwrap_err();
        assert_eq!(reject.code, RejectCode::MissingField);
        let (_, reject) = run(json!(3), None).unwrap_err();
        assert_eq!(reject.code, RejectCode::NotAnObject);
    }

    /// The key, the number of events and whether there is a batch send
    /// time, found the way the route finds them.
    fn read(protocol: &PostHog, body: &[u8]) -> Result<(Option<String>, usize, bool), ApiError> {
        let json = protocol.json(body)?;
        let parsed = protocol.parse(&json)?;
        let key = parsed
            .key
            .or_else(|| protocol.key_in_messages(&parsed.messages));
        Ok((key, parsed.messages.len(), parsed.sent_at.is_some()))
    }

    #[test]
    fn every_body_shape_finds_its_key_and_events() {
        let plain = PostHog::default();
        let batch = read(
            &plain,
            br#"{"api_key":"sk_a","batch":[{"event":"e"}],"sent_at":"2027-01-15T08:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(batch, (Some("sk_a".to_owned()), 1, true));

        let array = read(
            &plain,
            br#"[{"event":"e","properties":{"token":"sk_b"}},{"event":"f"}]"#,
        )
        .unwrap();
        assert_eq!(array, (Some("sk_b".to_owned()), 2, false));

        let single = read(
            &plain,
            br#"{"api_key":"sk_c","event":"e","distinct_id":"d"}"#,
        )
        .unwrap();
        assert_eq!(single, (Some("sk_c".to_owned()), 1, false));

        let json = r#"[{"event":"e","properties":{"token":"sk_d"}}]"#;
        let b64 = BASE64_STANDARD.encode(json);
        let form = format!(
            "data={}&compression=base64",
            b64.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        let form_protocol = PostHog {
            form: true,
            ..PostHog::default()
        };
        let parsed = read(&form_protocol, form.as_bytes()).unwrap();
        assert_eq!(parsed.0.as_deref(), Some("sk_d"));

        assert!(matches!(
            read(&plain, b"42"),
            Err(ApiError::InvalidBatch(_))
        ));
        assert!(matches!(
            read(&plain, b"{oops"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            read(&plain, br#"{"batch":{}}"#),
            Err(ApiError::InvalidBatch(_))
        ));
    }

    #[test]
    fn the_key_is_found_in_a_prefix_of_every_body_shape() {
        let plain = PostHog::default();
        let node = br#"{"api_key":"sk_a","batch":[{"event":"e","properties":{"#;
        assert_eq!(plain.key_in_prefix(node).as_deref(), Some("sk_a"));
        let js = br#"[{"event":"e","properties":{"$os":"Linux","token":"sk_b"}},{"ev"#;
        assert_eq!(plain.key_in_prefix(js).as_deref(), Some("sk_b"));
        // sendBeacon's form body, base64 cut mid-group and mid-escape.
        let json = r#"[{"event":"e","properties":{"token":"sk_c","pad":"xxxxxxxxxxxxxxxx"}}]"#;
        let b64 = BASE64_STANDARD
            .encode(json)
            .replace('+', "%2B")
            .replace('/', "%2F");
        let form = format!("data={b64}&compression=base64");
        let form_protocol = PostHog {
            form: true,
            ..PostHog::default()
        };
        let cut = &form.as_bytes()[..form.len() - 40];
        assert_eq!(form_protocol.key_in_prefix(cut).as_deref(), Some("sk_c"));
        // posthog-python: the key comes last.
        let python = br#"{"batch": [{"event": "e", "distinct_id": "d"}, {"event": "#;
        assert_eq!(plain.key_in_prefix(python), None);
    }

    #[test]
    fn compression_comes_from_the_header_the_query_or_the_bytes() {
        let mut headers = HeaderMap::new();
        let gzip_js = PostHog {
            compression: Some("gzip-js".to_owned()),
            form: false,
        };
        assert_eq!(gzip_js.encoding(&headers).unwrap(), Encoding::Gzip);
        assert_eq!(
            PostHog::default().encoding(&headers).unwrap(),
            Encoding::Detect
        );
        let lz = PostHog {
            compression: Some("lz64".to_owned()),
            form: false,
        };
        assert!(matches!(
            lz.encoding(&headers),
            Err(ApiError::UnsupportedEncoding(_))
        ));
        headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(
            PostHog::default().encoding(&headers).unwrap(),
            Encoding::Gzip
        );
    }
}
