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
use serde_json::{Map, Value, json};
use sluice_core::RejectCode;

use super::{
    Context, NativeEvent, Parsed, Protocol, Translated, first_text, refuse, sdk_block, text_of,
};
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

    fn parse(&self, body: &[u8]) -> Result<Parsed, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|err| ApiError::from_body_json(&err))?;
        let Value::Object(mut body) = value else {
            return Err(ApiError::InvalidBatch(
                "a Segment request body is a JSON object".to_owned(),
            ));
        };
        let key = body
            .remove("writeKey")
            .and_then(|key| key.as_str().map(str::to_owned));
        if self.call.is_some() {
            return Ok(Parsed {
                key,
                messages: vec![Value::Object(body)],
                sent_at: None,
            });
        }
        let Some(Value::Array(messages)) = body.remove("batch") else {
            return Err(ApiError::InvalidBatch(
                "expected {\"batch\": [...]}".to_owned(),
            ));
        };
        Ok(Parsed {
            key,
            messages,
            sent_at: body.remove("sentAt"),
        })
    }

    fn translate(&self, message: Map<String, Value>, context: &Context<'_>) -> Translated {
        translate(self.call, message, context)
    }

    fn body(&self, ok: bool) -> Map<String, Value> {
        Map::from_iter([("success".to_owned(), Value::Bool(ok))])
    }
}

/// One Segment message to one native event. The table is in
/// `docs/sdk-compat.md`; fields with no contract counterpart go to
/// `context.segment`, so nothing the SDK sent is lost.
fn translate(
    route_call: Option<Call>,
    mut m: Map<String, Value>,
    context: &Context<'_>,
) -> Translated {
    // Never stored, not even in a dead-letter copy.
    m.remove("writeKey");
    let call = route_call.or_else(|| m.get("type").and_then(Value::as_str).and_then(Call::parse));
    let Some(call) = call else {
        return refuse(
            m,
            RejectCode::InvalidValue,
            "`type` must be one of track, identify, page, screen, group, alias",
        );
    };
    let name = match call {
        Call::Track => match m.get("event").and_then(text_of) {
            Some(name) => name.into_owned(),
            None => {
                return refuse(
                    m,
                    RejectCode::MissingField,
                    "a track call needs a non-empty `event`",
                );
            }
        },
        other => other.event_name().to_owned(),
    };
    let Some(user) = first_text([m.get("userId"), m.get("anonymousId")]) else {
        return refuse(
            m,
            RejectCode::MissingField,
            "a Segment message needs `userId` or `anonymousId`",
        );
    };
    // From here on every field is taken out of `m` as it is mapped; what is
    // left goes to `context.segment` as sent.
    m.remove("type");
    if call == Call::Track {
        m.remove("event");
    }
    let event_id = context.event_id(m.get("messageId"));
    let client_time = m
        .remove("timestamp")
        .filter(|t| !t.is_null())
        .or_else(|| m.remove("originalTimestamp"));
    let sent_at = m.remove("sentAt");
    let timestamp = context.timestamp(client_time.as_ref(), sent_at.as_ref(), None);

    let mut properties = match call {
        Call::Track | Call::Page | Call::Screen => m.remove("properties"),
        Call::Identify | Call::Group => m.remove("traits"),
        Call::Alias => None,
    }
    .filter(|p| !p.is_null())
    .unwrap_or_else(|| json!({}));
    if let (Call::Page | Call::Screen, Value::Object(props)) = (call, &mut properties) {
        for field in ["name", "category"] {
            if !props.contains_key(field)
                && let Some(value) = m.remove(field).filter(|v| !v.is_null())
            {
                props.insert(field.to_owned(), value);
            }
        }
    }

    let client_context = m.remove("context").filter(|c| !c.is_null());
    let segment = sdk_block(
        [
            ("type", Some(Value::from(call.name()))),
            ("message_id", m.remove("messageId")),
            ("user_id", m.remove("userId")),
            ("anonymous_id", m.remove("anonymousId")),
            ("group_id", m.remove("groupId")),
            ("previous_id", m.remove("previousId")),
            ("timestamp", client_time),
            ("sent_at", sent_at.or_else(|| context.sent_at.cloned())),
            ("integrations", m.remove("integrations")),
        ],
        m,
    );
    let event_context = match client_context {
        None => json!({ "segment": segment }),
        Some(Value::Object(mut ctx)) => {
            ctx.insert("segment".to_owned(), segment);
            Value::Object(ctx)
        }
        // Not an object: passed on for the contract to reject with its reason.
        Some(other) => other,
    };

    Ok(NativeEvent {
        event_id,
        name,
        user,
        timestamp,
        properties,
        context: event_context,
    }
    .into_value())
}

#[cfg(test)]
mod tests {
    use sluice_core::Timestamp;

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn run(call: Option<Call>, message: Value, sent_at: Option<&Value>) -> Translated {
        let context = Context {
            team: "team-a",
            now: NOW,
            sent_at,
        };
        crate::sdk::translate(&Segment { call }, message, &context)
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
        assert!(
            single.messages[0].get("writeKey").is_none(),
            "the key is not stored"
        );
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
