//! The Segment HTTP Tracking API: `POST /v1/batch` and the single-call routes
//! (`/v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/group`,
//! `/v1/alias`). The write key is a Sluice API key, sent as the HTTP Basic
//! user name (or `writeKey` in the body, as analytics.js does). Mapping:
//! `docs/sdk-compat.md`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;
use sluice_core::RejectCode;

use super::json::{self, Batch, Doc, Fields, Message, OPENED, Object, Opened, Out};
use super::{Context, NativeEvent, Parsed, Protocol, Translated, prefix, sdk_block};
use crate::auth;
use crate::body::Encoding;
use crate::error::ApiError;
use crate::state::AppState;

/// A Segment call type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl Call {
    const ALL: [Self; 6] = [
        Self::Track,
        Self::Identify,
        Self::Page,
        Self::Screen,
        Self::Group,
        Self::Alias,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|call| call.name().eq_ignore_ascii_case(name))
    }

    /// The Sluice event name of a call that has none of its own. `$`-prefixed
    /// so it cannot clash with a tracked event's name.
    fn event_name(self) -> &'static str {
        match self {
            Self::Track => "",
            Self::Identify => "$identify",
            Self::Page => "$page",
            Self::Screen => "$screen",
            Self::Group => "$group",
            Self::Alias => "$alias",
        }
    }
}

pub fn routes() -> Router<AppState> {
    let mut router = Router::new().route(
        "/v1/batch",
        post(
            |State(state): State<AppState>, headers: HeaderMap, body: Body| async move {
                serve(&state, &headers, body, None).await
            },
        ),
    );
    for call in Call::ALL {
        router = router.route(
            &format!("/v1/{}", call.name()),
            post(
                move |State(state): State<AppState>, headers: HeaderMap, body: Body| async move {
                    serve(&state, &headers, body, Some(call)).await
                },
            ),
        );
    }
    router
}

async fn serve(state: &AppState, headers: &HeaderMap, body: Body, call: Option<Call>) -> Response {
    super::serve(state, headers, body, &Segment { call }).await
}

/// The protocol; `call` is the single-call route's type, `None` for `/v1/batch`.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub call: Option<Call>,
}

impl Protocol for Segment {
    const ROUTE: &'static str = "segment";
    const NAME: &'static str = "Segment";

    fn key_in_header(&self, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        auth::key_in_authorization(headers)
    }

    fn encoding(&self, headers: &HeaderMap) -> Result<Encoding, ApiError> {
        Encoding::from_headers(headers)
    }

    fn key_in_prefix(&self, prefix: &[u8]) -> Option<String> {
        // analytics.js puts `writeKey` at the top of the body; `parse` reads
        // it only there.
        prefix::find_key(
            prefix,
            prefix::Places {
                names: &["writeKey"],
                in_messages: false,
            },
        )
    }

    fn parse<'a>(&self, body: &'a [u8]) -> Result<Parsed<'a>, ApiError> {
        let (Doc::Object(fields), batch) = Doc::parse_body(body, true)? else {
            return Err(ApiError::InvalidBatch(
                "a Segment request body is a JSON object".to_owned(),
            ));
        };
        let key = fields
            .get("writeKey")
            .and_then(json::as_str)
            .map(|key| key.into_owned());
        if self.call.is_some() {
            // The body is the message; its `writeKey` is left out in
            // `translate`. Its fields are the ones just read, unless one was
            // a `batch` (read apart from the others): then it is read again.
            let message = match batch {
                None => Message::whole(body, fields),
                Some(_) => Message::from_raw(
                    serde_json::from_slice(body).map_err(|err| ApiError::from_body_json(&err))?,
                ),
            };
            return Ok(Parsed {
                key,
                messages: vec![message],
                sent_at: None,
            });
        }
        let Some(Batch::Array(messages)) = batch else {
            return Err(ApiError::InvalidBatch(
                "expected {\"batch\": [...]}".to_owned(),
            ));
        };
        Ok(Parsed {
            key,
            messages,
            sent_at: fields.get("sentAt"),
        })
    }

    fn translate<'a>(
        &self,
        message: &Message<'a>,
        fields: &Object<'a>,
        context: &Context<'a>,
    ) -> Translated<'a> {
        translate(self.call, message, fields, context)
    }

    fn answer_flag(&self, ok: bool) -> (&'static str, Value) {
        ("success", Value::Bool(ok))
    }
}

/// The key, never stored: not even in a dead-letter copy.
const WITHOUT: [&str; 1] = ["writeKey"];

/// One Segment message to one native event. The table is in
/// `docs/sdk-compat.md`; fields with no contract counterpart go to
/// `context.segment`, so nothing the SDK sent is lost. Only the mapped
/// fields are read; `properties`, `traits`, the members of `context` and
/// the unmapped fields are passed through as the SDK wrote them. `m` is the
/// message's fields, without `context` when the body was read with it
/// opened (`message.opened()`).
fn translate<'a>(
    route_call: Option<Call>,
    message: &Message<'a>,
    m: &Object<'a>,
    context: &Context<'a>,
) -> Translated<'a> {
    let refuse = |code, reason| {
        // The dead-letter copy is of every field, an opened `context` too.
        let all = message.opened().and_then(|_| message.all_fields());
        super::refuse(
            message.sent(),
            all.as_ref().unwrap_or(m),
            &WITHOUT,
            code,
            reason,
        )
    };
    let call = route_call.or_else(|| {
        m.get("type")
            .and_then(json::as_str)
            .and_then(|name| Call::parse(&name))
    });
    let Some(call) = call else {
        return refuse(
            RejectCode::InvalidValue,
            "`type` must be one of track, identify, page, screen, group, alias",
        );
    };
    let name = match call {
        Call::Track => match m.get("event").and_then(json::text_of) {
            Some(name) => name,
            None => {
                return refuse(
                    RejectCode::MissingField,
                    "a track call needs a non-empty `event`",
                );
            }
        },
        other => other.event_name().into(),
    };
    let Some(user) = json::first_text([m.get("userId"), m.get("anonymousId")]) else {
        return refuse(
            RejectCode::MissingField,
            "a Segment message needs `userId` or `anonymousId`",
        );
    };
    let event_id = context.event_id(m.get("messageId"));
    // `originalTimestamp` stands in for a missing or null `timestamp`.
    let own_time = json::non_null(m.get("timestamp"));
    let client_time = own_time.or_else(|| m.get("originalTimestamp"));
    let sent_at = m.get("sentAt");
    let timestamp = context.timestamp(client_time, sent_at, None);

    let sent_properties = json::non_null(match call {
        Call::Track | Call::Page | Call::Screen => m.get("properties"),
        Call::Identify | Call::Group => m.get("traits"),
        Call::Alias => None,
    });
    // A page's or screen's `name` and `category` join its properties unless
    // they are there already.
    let page_properties = match (call, sent_properties) {
        (Call::Page | Call::Screen, None) => Some(Object::default()),
        (Call::Page | Call::Screen, Some(sent)) => Object::parse(sent),
        _ => None,
    };
    let folds = |field: &str| {
        page_properties
            .as_ref()
            .is_some_and(|props| !props.contains(field))
    };
    let (fold_name, fold_category) = (folds("name"), folds("category"));
    let properties = match &page_properties {
        Some(props) => {
            let mut fields = Fields::copy_from(props, |_| true);
            let mut folded = false;
            for (field, fold) in [("name", fold_name), ("category", fold_category)] {
                if let Some(value) = json::non_null(m.get(field)).filter(|_| fold) {
                    fields.push(field, Out::Raw(value));
                    folded = true;
                }
            }
            match sent_properties {
                Some(sent) if !folded => Out::Raw(sent),
                _ => Out::Object(fields),
            }
        }
        None => sent_properties.map_or_else(|| Out::Object(Fields::default()), Out::Raw),
    };

    // Every field mapped above is taken; the rest goes to `context.segment`.
    let taken = |field: &str| {
        matches!(
            field,
            "writeKey"
                | "type"
                | "messageId"
                | "userId"
                | "anonymousId"
                | "groupId"
                | "previousId"
                | "timestamp"
                | "sentAt"
                | "integrations"
                | "context"
        ) || (field == "originalTimestamp" && own_time.is_none())
            || (field == "event" && call == Call::Track)
            || (field == "properties" && matches!(call, Call::Track | Call::Page | Call::Screen))
            || (field == "traits" && matches!(call, Call::Identify | Call::Group))
            || (field == "name" && fold_name)
            || (field == "category" && fold_category)
    };
    let segment = sdk_block(
        [
            ("type", Some(Out::Str(call.name()))),
            ("message_id", m.get("messageId").map(Out::Raw)),
            ("user_id", m.get("userId").map(Out::Raw)),
            ("anonymous_id", m.get("anonymousId").map(Out::Raw)),
            ("group_id", m.get("groupId").map(Out::Raw)),
            ("previous_id", m.get("previousId").map(Out::Raw)),
            ("timestamp", client_time.map(Out::Raw)),
            ("sent_at", sent_at.or(context.sent_at).map(Out::Raw)),
            ("integrations", m.get("integrations").map(Out::Raw)),
        ],
        m,
        taken,
    );
    // The client's `context`: its fields, or its text when it is not an
    // object (passed on for the contract to reject with its reason).
    let sent_context = match message.opened() {
        Some(_) => None,
        None => json::non_null(m.get(OPENED)),
    };
    let read_here = sent_context.and_then(Object::parse);
    let client_context = match (message.opened(), sent_context) {
        (Some(Opened::Object(fields)), _) => Some(Ok(fields)),
        (Some(Opened::Null), _) | (None, None) => None,
        (Some(Opened::Other), _) => message
            .all_fields()
            .and_then(|all| all.get(OPENED))
            .map(Err),
        (None, Some(raw)) => Some(read_here.as_ref().ok_or(raw)),
    };
    let event_context = match client_context {
        None => {
            let mut fields = Fields::with_capacity(1);
            fields.push("segment", Out::Object(segment));
            Out::Object(fields)
        }
        Some(Ok(client)) => {
            let mut fields = Fields::copy_from(client, |field| field != "segment");
            fields.push("segment", Out::Object(segment));
            Out::Object(fields)
        }
        Some(Err(other)) => Out::Raw(other),
    };

    NativeEvent {
        event_id,
        event: name,
        user_id: user,
        timestamp,
        properties,
        context: event_context,
    }
    .write()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;
    use serde_json::value::RawValue;
    use sluice_core::Timestamp;

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    type Run = Result<Value, (Value, sluice_core::Reject)>;

    /// Translates `message` as the route does and reads the result back.
    fn run(call: Option<Call>, message: Value, sent_at: Option<&Value>) -> Run {
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
            return Err((
                message,
                sluice_core::Reject::new(RejectCode::NotAnObject, ""),
            ));
        };
        match (Segment { call }).translate(&Message::from_raw(raw), &fields, &context) {
            Ok(event) => Ok(serde_json::from_str(&super::super::checked_text(&event)).unwrap()),
            Err((original, reject)) => Err((parse(&original), reject)),
        }
    }

    #[test]
    fn a_track_call_maps_onto_the_contract() {
        let sent = json!("2027-01-15T08:00:10.000Z");
        let event = run(
            None,
            json!({
                "type": "track", "event": "Order Completed", "userId": "u-1",
                "anonymousId": "anon-1", "messageId": "node-next-1-abc",
                "timestamp": "2027-01-15T08:00:07.500Z",
                "properties": { "total": 30 }, "context": { "library": { "name": "analytics-node" } },
                "integrations": { "All": true }, "channel": "server", "writeKey": "sk_secret"
            }),
            Some(&sent),
        )
        .unwrap();
        assert_eq!(event["event"], "Order Completed");
        assert_eq!(event["user_id"], "u-1");
        assert_eq!(event["timestamp"], NOW.as_millis() - 2500);
        assert_eq!(event["properties"], json!({ "total": 30 }));
        assert_eq!(event["context"]["library"]["name"], "analytics-node");
        let segment = &event["context"]["segment"];
        assert_eq!(segment["message_id"], "node-next-1-abc");
        assert_eq!(segment["anonymous_id"], "anon-1");
        assert_eq!(segment["type"], "track");
        assert_eq!(segment["sent_at"], sent);
        assert_eq!(segment["integrations"], json!({ "All": true }));
        assert_eq!(segment["channel"], "server", "unmapped fields are kept");
        assert!(!event.to_string().contains("sk_secret"));
        assert!(
            segment.get("event").is_none() && segment.get("sentAt").is_none(),
            "mapped fields are not repeated under their Segment names: {segment}"
        );
        let id: uuid::Uuid = event["event_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(id.get_version_num(), 8);
    }

    #[test]
    fn other_calls_get_reserved_names_and_their_traits() {
        let identify = run(
            Some(Call::Identify),
            json!({ "anonymousId": "a-9", "traits": { "email": "x@example.com" } }),
            None,
        )
        .unwrap();
        assert_eq!(identify["event"], "$identify");
        assert_eq!(identify["user_id"], "a-9");
        assert_eq!(identify["properties"], json!({ "email": "x@example.com" }));
        assert!(
            identify.get("event_id").is_none(),
            "no messageId: the pipeline assigns one"
        );
        assert!(identify.get("timestamp").is_none());

        let page = run(
            None,
            json!({ "type": "page", "userId": 7, "name": "Home", "category": "Docs",
                    "properties": { "url": "https://example.com/" } }),
            None,
        )
        .unwrap();
        assert_eq!(page["event"], "$page");
        assert_eq!(page["user_id"], "7");
        assert_eq!(
            page["properties"],
            json!({ "url": "https://example.com/", "name": "Home", "category": "Docs" })
        );

        let alias = run(
            None,
            json!({ "type": "alias", "userId": "u-2", "previousId": "a-9" }),
            None,
        )
        .unwrap();
        assert_eq!(alias["event"], "$alias");
        assert_eq!(alias["context"]["segment"]["previous_id"], "a-9");

        let group = run(
            None,
            json!({ "type": "group", "userId": "u-2", "groupId": "g-1", "traits": { "plan": "pro" } }),
            None,
        )
        .unwrap();
        assert_eq!(group["event"], "$group");
        assert_eq!(group["properties"], json!({ "plan": "pro" }));
        assert_eq!(group["context"]["segment"]["group_id"], "g-1");
    }

    #[test]
    fn untranslatable_messages_keep_their_text_and_get_a_reason() {
        let cases = [
            (json!("not an object"), RejectCode::NotAnObject),
            (
                json!({ "type": "track", "userId": "u" }),
                RejectCode::MissingField,
            ),
            (
                json!({ "type": "track", "event": "E" }),
                RejectCode::MissingField,
            ),
            (
                json!({ "type": "launch", "event": "E", "userId": "u" }),
                RejectCode::InvalidValue,
            ),
            (
                json!({ "event": "E", "userId": "u" }),
                RejectCode::InvalidValue,
            ),
        ];
        for (message, code) in cases {
            let (original, reject) = run(None, message.clone(), None).unwrap_err();
            assert_eq!(original, message);
            assert_eq!(reject.code, code, "{message}");
        }
    }

    #[test]
    fn the_route_decides_the_call_type() {
        let event = run(
            Some(Call::Track),
            json!({ "type": "identify", "event": "E", "userId": "u" }),
            None,
        )
        .unwrap();
        assert_eq!(event["event"], "E");
    }

    #[test]
    fn messages_read_with_their_context_opened_translate_as_their_text_does() {
        let body = br#"{"batch":[
            {"type":"track","event":"E","userId":"u","context":{"ip":"1.2.3.4","segment":{"old":1},"ip":"5.6.7.8"}},
            {"type":"page","userId":"u","name":"Home","context":"not an object"},
            {"type":"track","event":"E","userId":"u","context":null,"channel":"web"},
            {"type":"track","event":"E","userId":"u"},
            {"type":"track","userId":"u","writeKey":"sk_x","context":{"keep":true}},
            {"type":"launch","userId":"u","context":[1]}
        ],"sentAt":"2027-01-15T08:00:10.000Z"}"#;
        let segment = Segment { call: None };
        let parsed = segment.parse(body).unwrap();
        let context = Context::new("team-a", NOW, parsed.sent_at);
        let mut results = Vec::new();
        for message in &parsed.messages {
            assert!(
                message.opened().is_some() || message.fields().unwrap().get("context").is_none()
            );
            let opened = segment.translate(message, message.fields().unwrap(), &context);
            // The same message read the general way, `context` among its fields.
            let Cow::Borrowed(raw) = message.sent().raw() else {
                panic!("the message's text is the body's");
            };
            let general = Message::from_raw(raw);
            assert!(general.opened().is_none());
            let plain = segment.translate(&general, general.fields().unwrap(), &context);
            let text = |t: &Translated<'_>| match t {
                Ok(event) => Ok(super::super::checked_text(event)),
                Err((original, reject)) => Err((original.get().to_owned(), reject.clone())),
            };
            assert_eq!(text(&opened), text(&plain));
            results.push(text(&opened));
        }
        let event =
            |i: usize| -> Value { serde_json::from_str(results[i].as_ref().unwrap()).unwrap() };
        assert_eq!(event(0)["context"]["ip"], "5.6.7.8");
        assert!(event(0)["context"]["segment"].get("old").is_none());
        assert_eq!(event(1)["context"], "not an object");
        assert_eq!(event(2)["context"]["segment"]["channel"], "web");
        assert!(event(3)["context"]["segment"].is_object());
        let (original, reject) = results[4].as_ref().unwrap_err();
        assert_eq!(reject.code, RejectCode::MissingField);
        let original: Value = serde_json::from_str(original).unwrap();
        assert_eq!(original["context"], json!({ "keep": true }));
        assert!(original.get("writeKey").is_none());
        let (original, _) = results[5].as_ref().unwrap_err();
        assert!(original.contains(r#""context":[1]"#), "{original}");
    }

    #[test]
    fn bodies_parse_per_route() {
        let batch = Segment { call: None }
            .parse(br#"{"batch":[{"type":"track"}],"writeKey":"sk_x","sentAt":"2027-01-15T08:00:00Z"}"#)
            .unwrap();
        assert_eq!(batch.key.as_deref(), Some("sk_x"));
        assert_eq!(batch.messages.len(), 1);
        assert!(batch.sent_at.is_some());
        let single = Segment {
            call: Some(Call::Track),
        }
        .parse(br#"{"event":"E","userId":"u","writeKey":"sk_x"}"#)
        .unwrap();
        assert_eq!(single.key.as_deref(), Some("sk_x"));
        assert_eq!(single.messages.len(), 1);
        assert!(matches!(
            Segment { call: None }.parse(br#"{"events":[]}"#),
            Err(ApiError::InvalidBatch(_))
        ));
        assert!(matches!(
            Segment { call: None }.parse(b"{nope"),
            Err(ApiError::MalformedJson(_))
        ));
    }
}
