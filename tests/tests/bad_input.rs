//! The bad-input suite: one folder per case under `tests/cases/bad-input/`,
//! each a `case.json` with the request (route, how the key is carried, body,
//! form wrapping, compression) and the expected status and error code (or
//! per-event outcomes, or an SDK route's counts). Every case runs against a
//! real gateway producing to real Kafka; after each, a valid request must
//! still succeed. At the end the topics are read back and each case's share
//! (the offsets it added) must be exactly what the gateway reported: its
//! accepted events in the raw topic, each within the event contract, and its
//! rejected events in the dead-letter topic with the expected reason codes;
//! nothing from refused requests, nothing lost, nothing extra.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_cli::admin::AdminClient;
use sluice_core::readback;
use sluice_tests::{OPERATOR_TOKEN, RunningGateway, TestTopics, kafka, read_records};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk_test_bad_input_suite";

/// `ingest.max_pre_auth_decoded_bytes` in this suite.
const PRE_AUTH_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    request: CaseRequest,
    expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CaseRequest {
    /// The path, with its query if any: `/v1/events` (default), a Segment
    /// route (`/v1/batch`, `/v1/track`, ...) or a PostHog one (`/batch/`,
    /// `/e/`, `/capture/`, `/i/v0/e/`, ...).
    route: Option<String>,
    /// Which key: `valid` (default), `none`, `unknown`, `revoked`. It replaces
    /// `$KEY` in the body (empty for `none`).
    key: Option<String>,
    /// How the key is carried in a header: `bearer` (default on the native
    /// route), `basic` (Segment's write key as Basic user name, empty
    /// password; default on `/v1/` SDK routes), `body` (no header: the key is
    /// `$KEY` in the body, PostHog's `api_key`/`token`, Segment's `writeKey`;
    /// default on PostHog routes).
    auth: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: Option<String>,
    body_hex: Option<String>,
    /// Wrap the JSON as a form body `data=<...>`: `base64` (posthog-js's
    /// sendBeacon) or `plain`. The content type defaults to the form's.
    form: Option<String>,
    /// Compress the body with this encoding and declare it: `gzip`, `zstd`;
    /// `gzip-unannounced` (no header, as posthog-js sends it);
    /// `gzip-truncated`, `zstd-truncated` (the compressed bytes cut in half).
    compress: Option<String>,
    /// A body built by the runner (see `generated`).
    generate: Option<String>,
    stall: Option<Stall>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stall {
    declared_length: usize,
    send: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    code: Option<String>,
    /// Per-event outcomes (the native route's `results`).
    results: Option<Vec<ExpectedOutcome>>,
    /// Members the answer must have with exactly these values (an SDK
    /// route's counts and its `success`/`status` flag). Its `accepted` and
    /// `rejected` are the events the case adds to the topics.
    answer: Option<serde_json::Map<String, Value>>,
    /// The reason codes of the events the case dead-letters, in any order
    /// (SDK routes; on the native route they come from `results`).
    rejects: Option<Vec<String>>,
    /// Exactly how many bytes the gateway decoded before it checked the key
    /// carried in the body (`sluice_gateway_pre_auth_decoded_bytes_total`).
    pre_auth_decoded_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedOutcome {
    status: String,
    code: Option<String>,
    message_contains: Option<String>,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/bad-input")
}

fn event(i: usize) -> Value {
    json!({ "event": "Generated", "user_id": format!("u{i}"), "properties": { "i": i } })
}

/// A PostHog capture the size of posthog-js's (its dozens of `$` properties).
fn posthog_event(i: usize) -> Value {
    json!({ "event": "$pageview", "distinct_id": format!("p{i}"),
            "uuid": format!("0190d6a8-0000-7000-8000-{i:012}"),
            "properties": { "$current_url": "https://example.com/", "pad": "x".repeat(900), "i": i } })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// `head` followed by spaces up to 64 MiB: a bomb of ~64 KiB gzipped.
fn bomb_text(head: &str) -> Vec<u8> {
    let mut text = head.as_bytes().to_vec();
    text.resize(64 * 1024 * 1024, b' ');
    text
}

/// An unknown key, well-formed.
const UNKNOWN_KEY: &str = "sk_000000000000_00000000000000000000000000000000";

fn generated(name: &str) -> Vec<u8> {
    match name {
        "too_many_events" => json!({ "events": (0..101).map(event).collect::<Vec<_>>() })
            .to_string()
            .into_bytes(),
        "oversized_body" => {
            let pad = "x".repeat(2000);
            let events: Vec<Value> = (0..150)
                .map(|i| json!({ "event": "Big", "user_id": format!("u{i}"), "properties": { "pad": pad } }))
                .collect();
            json!({ "events": events }).to_string().into_bytes()
        }
        "oversized_event" => json!({ "events": [
            { "event": "Huge", "user_id": "u", "properties": { "pad": "x".repeat(5000) } },
            { "event": "Small", "user_id": "u" },
        ] })
        .to_string()
        .into_bytes(),
        "gzip_bomb" => gzip(&vec![b' '; 64 * 1024 * 1024]),
        // The key first, as posthog-node sends it, then 64 MiB of nothing.
        "posthog_bomb_unknown_key" => gzip(&bomb_text(&format!(
            r#"{{"api_key":"{UNKNOWN_KEY}","batch":["#
        ))),
        "posthog_bomb_unknown_key_zstd" => zstd::encode_all(
            &bomb_text(&format!(r#"{{"api_key":"{UNKNOWN_KEY}","batch":["#))[..],
            3,
        )
        .unwrap(),
        "posthog_bomb_valid_key" => gzip(&bomb_text(&format!(r#"{{"api_key":"{KEY}","batch":["#))),
        "posthog_bomb_no_key" => gzip(&bomb_text(r#"{"batch":["#)),
        // posthog-js's shape: a bare array, the token in the first event's properties.
        "posthog_array_bomb_unknown_token" => gzip(&bomb_text(&format!(
            r#"[{{"event":"e","properties":{{"$os":"Linux","token":"{UNKNOWN_KEY}"}}}},"#
        ))),
        "segment_bomb_unknown_write_key" => gzip(&bomb_text(&format!(
            r#"{{"writeKey":"{UNKNOWN_KEY}","batch":["#
        ))),
        // 100 posthog-js-sized events (~100 KiB) behind the key: past the
        // pre-auth bound (64 KiB in this suite), so the key is found in the
        // prefix, then the whole batch is decoded and accepted.
        "posthog_big_batch_key_first" => {
            let batch: Vec<Value> = (0..100).map(posthog_event).collect();
            gzip(
                json!({ "api_key": KEY, "batch": batch })
                    .to_string()
                    .as_bytes(),
            )
        }
        // posthog-python's shape (key last), as large: the key is past the bound.
        "posthog_big_batch_key_last" => {
            let batch: Vec<Value> = (0..100).map(posthog_event).collect();
            let text = format!(
                r#"{{"batch": {}, "sentAt": "2026-12-08T00:00:00Z", "api_key": "{KEY}"}}"#,
                Value::from(batch)
            );
            gzip(text.as_bytes())
        }
        "segment_too_many_messages" => {
            let batch: Vec<Value> = (0..101)
                .map(|i| json!({ "type": "track", "event": "E", "userId": format!("u{i}") }))
                .collect();
            json!({ "batch": batch }).to_string().into_bytes()
        }
        "posthog_too_many_events" => {
            let batch: Vec<Value> = (0..101)
                .map(|i| json!({ "event": "E", "distinct_id": format!("u{i}") }))
                .collect();
            json!({ "api_key": KEY, "batch": batch })
                .to_string()
                .into_bytes()
        }
        "posthog_oversized_body" => {
            let pad = "x".repeat(2000);
            let batch: Vec<Value> = (0..150)
                .map(|i| json!({ "event": "Big", "distinct_id": format!("u{i}"), "properties": { "pad": pad } }))
                .collect();
            json!({ "api_key": KEY, "batch": batch })
                .to_string()
                .into_bytes()
        }
        "posthog_deep_nesting" => {
            let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
            format!(
                r#"{{"api_key":"{KEY}","batch":[{{"event":"e","distinct_id":"d","properties":{{"p":{deep}}}}},{{"event":"ok","distinct_id":"d"}}]}}"#
            )
            .into_bytes()
        }
        "segment_deep_nesting" => {
            let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
            format!(
                r#"{{"batch":[{{"type":"track","event":"E","userId":"u","properties":{{"p":{deep}}}}},{{"type":"track","event":"ok","userId":"u"}}]}}"#
            )
            .into_bytes()
        }
        other => panic!("unknown generator `{other}`"),
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` encoding of a value.
fn form_encode(data: &[u8]) -> String {
    data.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Keys {
    revoked: String,
}

async fn send(gateway: &RunningGateway, keys: &Keys, request: &CaseRequest) -> (u16, Value) {
    let route = request.route.as_deref().unwrap_or("/v1/events");
    let token = match request.key.as_deref().unwrap_or("valid") {
        "valid" => Some(KEY.to_owned()),
        "none" => None,
        "unknown" => Some(UNKNOWN_KEY.to_owned()),
        "revoked" => Some(keys.revoked.clone()),
        other => panic!("unknown key kind `{other}`"),
    };
    if let Some(stall) = &request.stall {
        return stalled(gateway, route, token.as_deref(), stall).await;
    }
    let mut body = if let Some(name) = &request.generate {
        generated(name)
    } else if let Some(hex) = &request.body_hex {
        unhex(hex)
    } else {
        request
            .body
            .clone()
            .unwrap_or_default()
            .replace("$KEY", token.as_deref().unwrap_or(""))
            .into_bytes()
    };
    let mut content_type = request.content_type.clone();
    match request.form.as_deref() {
        None => {}
        Some(kind) => {
            let data = match kind {
                "base64" => base64(&body),
                "plain" => String::from_utf8(body).unwrap(),
                other => panic!("unknown form kind `{other}`"),
            };
            body = format!("data={}", form_encode(data.as_bytes())).into_bytes();
            content_type.get_or_insert_with(|| "application/x-www-form-urlencoded".to_owned());
        }
    }
    let mut encoding = request.content_encoding.clone();
    match request.compress.as_deref() {
        None => {}
        Some("gzip") => {
            body = gzip(&body);
            encoding = Some("gzip".into());
        }
        Some("gzip-unannounced") => body = gzip(&body),
        Some("gzip-truncated") => {
            body = gzip(&body);
            body.truncate(body.len() / 2);
            encoding = Some("gzip".into());
        }
        Some("zstd") => {
            body = zstd::encode_all(&body[..], 3).unwrap();
            encoding = Some("zstd".into());
        }
        Some("zstd-truncated") => {
            body = zstd::encode_all(&body[..], 3).unwrap();
            body.truncate(body.len() / 2);
            encoding = Some("zstd".into());
        }
        Some(other) => panic!("unknown compression `{other}`"),
    }
    let default_auth = if route == "/v1/events" {
        "bearer"
    } else if route.starts_with("/v1/") {
        "basic"
    } else {
        "body"
    };
    let mut builder = reqwest::Client::new()
        .post(gateway.url(route))
        .header(
            "content-type",
            content_type.as_deref().unwrap_or("application/json"),
        )
        .timeout(Duration::from_secs(20))
        .body(body);
    if let Some(token) = token {
        builder = match request.auth.as_deref().unwrap_or(default_auth) {
            "bearer" => builder.bearer_auth(token),
            "basic" => builder.basic_auth(token, Some("")),
            "body" => builder,
            other => panic!("unknown auth `{other}`"),
        };
    }
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Declares a body, sends part of it, and waits for the gateway to give up.
async fn stalled(
    gateway: &RunningGateway,
    route: &str,
    token: Option<&str>,
    stall: &Stall,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {route} HTTP/1.1\r\nHost: sluice\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        stall.declared_length
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(stall.send.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(body) = complete_body(&raw) {
                return body;
            }
        }
        complete_body(&raw).unwrap_or_default()
    })
    .await
    .expect("the gateway must answer a stalled upload within its body timeout");
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_slice(&read).unwrap_or(Value::Null))
}

/// The body of a complete HTTP/1.1 response with Content-Length, if `raw` holds one.
fn complete_body(raw: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })?
        .parse()
        .ok()?;
    (body.len() >= length).then(|| body.as_bytes()[..length].to_vec())
}

/// What a case adds to the topics, by what the gateway answered.
#[derive(Debug, Default)]
struct Share {
    accepted: usize,
    /// The reason code of each dead-lettered event (`None`: not asserted).
    rejects: Vec<Option<String>>,
}

fn check(name: &str, case: &Case, status: u16, body: &Value) -> Result<Share, String> {
    let context = || format!("case `{name}` ({}): got {status} {body}", case.description);
    if status != case.expect.status {
        return Err(format!(
            "expected status {}; {}",
            case.expect.status,
            context()
        ));
    }
    if let Some(code) = &case.expect.code {
        if body["error"]["code"] != code.as_str() {
            return Err(format!("expected error code `{code}`; {}", context()));
        }
        if body["error"]["message"].as_str().is_none_or(str::is_empty) {
            return Err(format!("error without a message; {}", context()));
        }
    } else if status >= 400 && case.expect.answer.is_none() {
        return Err(format!("a refusal must name its code; {}", context()));
    }
    let mut share = Share::default();
    if let Some(answer) = &case.expect.answer {
        for (member, want) in answer {
            if &body[member] != want {
                return Err(format!("expected `{member}`: {want}; {}", context()));
            }
        }
        let count = |member: &str| answer.get(member).and_then(Value::as_u64).unwrap_or(0);
        share.accepted = usize::try_from(count("accepted")).unwrap();
        let rejected = usize::try_from(count("rejected") + count("dead_lettered")).unwrap();
        share.rejects = match &case.expect.rejects {
            Some(codes) if codes.len() == rejected => codes.iter().cloned().map(Some).collect(),
            Some(codes) => {
                return Err(format!(
                    "case `{name}` lists {} reject codes for {rejected} rejected events",
                    codes.len()
                ));
            }
            None => vec![None; rejected],
        };
    }
    if let Some(expected) = &case.expect.results {
        let results = body["results"]
            .as_array()
            .ok_or_else(|| format!("no results; {}", context()))?;
        if results.len() != expected.len() {
            return Err(format!(
                "expected {} results; {}",
                expected.len(),
                context()
            ));
        }
        for (i, (got, want)) in results.iter().zip(expected).enumerate() {
            if got["status"] != want.status.as_str() {
                return Err(format!(
                    "event {i}: expected {}; {}",
                    want.status,
                    context()
                ));
            }
            if let Some(code) = &want.code
                && got["code"] != code.as_str()
            {
                return Err(format!("event {i}: expected code `{code}`; {}", context()));
            }
            if let Some(fragment) = &want.message_contains
                && !got["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(fragment.as_str())
            {
                return Err(format!(
                    "event {i}: message should mention `{fragment}`; {}",
                    context()
                ));
            }
            match want.status.as_str() {
                "accepted" => share.accepted += 1,
                "rejected" => share.rejects.push(want.code.clone()),
                _ => {}
            }
        }
    }
    Ok(share)
}

/// The end offset of every partition of `topic`.
async fn ends(topic: &str) -> BTreeMap<i32, i64> {
    let (settings, topic) = (kafka(), topic.to_owned());
    tokio::task::spawn_blocking(move || readback::end_offsets(&settings, &topic))
        .await
        .unwrap()
        .unwrap()
}

/// The offsets a step of the run added to each topic: `[from, to)` per partition.
#[derive(Debug)]
struct Span {
    name: String,
    share: Share,
    raw: (BTreeMap<i32, i64>, BTreeMap<i32, i64>),
    rejected: (BTreeMap<i32, i64>, BTreeMap<i32, i64>),
}

fn within(range: &(BTreeMap<i32, i64>, BTreeMap<i32, i64>), record: &readback::ReadRecord) -> bool {
    let from = range.0.get(&record.partition).copied().unwrap_or(0);
    let to = range.1.get(&record.partition).copied().unwrap_or(0);
    (from..to).contains(&record.offset)
}

/// What the event contract promises every consumer of the raw topic.
fn breaks_contract(event: &Value) -> Option<String> {
    let text = |field: &str| event[field].as_str().map(str::to_owned);
    let Some(name) = text("event") else {
        return Some("no event name".to_owned());
    };
    let Some(user) = text("user_id") else {
        return Some("no user_id".to_owned());
    };
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Some(format!("event name {name:?}"));
    }
    if user.is_empty() || user.chars().any(char::is_control) {
        return Some(format!("user_id {user:?}"));
    }
    if event["team_id"] != "team-bad" {
        return Some(format!("team {}", event["team_id"]));
    }
    if !event["properties"].is_object() {
        return Some("properties not an object".to_owned());
    }
    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    for part in ["properties", "context"] {
        if depth(&event[part]) > 64 {
            return Some(format!("{part} nested deeper than 64"));
        }
    }
    None
}

/// `sluice_gateway_pre_auth_decoded_bytes_total`, 0 before its first use.
async fn pre_auth_decoded(gateway: &RunningGateway) -> u64 {
    let text = reqwest::get(gateway.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("sluice_gateway_pre_auth_decoded_bytes_total "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_case_gets_its_specific_answer_and_the_gateway_keeps_serving() {
    let topics = TestTopics::create(3).await.unwrap();
    let mut config = topics.gateway_config(KEY, "team-bad");
    config.ingest.max_events_per_batch = 100;
    config.ingest.max_body_bytes = 256 * 1024;
    config.ingest.max_decompressed_bytes = 1024 * 1024;
    config.ingest.max_pre_auth_decoded_bytes = PRE_AUTH_BYTES;
    config.ingest.body_timeout_ms = 1000;
    config.ingest.event.max_event_bytes = 4096;
    config.validate().unwrap();
    let gateway = RunningGateway::start(config).await.unwrap();
    gateway.wait_ready(Duration::from_secs(20)).await.unwrap();

    let admin = AdminClient::new(&gateway.url(""), OPERATOR_TOKEN);
    let revoked = admin
        .create_key("team-bad", "ingest", "to revoke")
        .await
        .unwrap();
    admin
        .revoke_key(revoked["key_id"].as_str().unwrap())
        .await
        .unwrap();
    let keys = Keys {
        revoked: revoked["key"].as_str().unwrap().to_owned(),
    };

    let mut names: Vec<String> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 60,
        "expected the full case list, found {names:?}"
    );

    let mut failures = Vec::new();
    let mut spans = Vec::new();
    let probe = CaseRequest {
        body: Some(json!({ "events": [event(0)] }).to_string()),
        ..CaseRequest::default()
    };
    let mut routes = BTreeMap::<String, usize>::new();
    for name in &names {
        let text = std::fs::read_to_string(cases_dir().join(name).join("case.json")).unwrap();
        let case: Case =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}/case.json: {e}"));
        *routes
            .entry(case.request.route.clone().unwrap_or("/v1/events".into()))
            .or_default() += 1;
        let before = (ends(&topics.raw).await, ends(&topics.rejected).await);
        let decoded_before = pre_auth_decoded(&gateway).await;
        let (status, body) = send(&gateway, &keys, &case.request).await;
        let share = match check(name, &case, status, &body) {
            Ok(share) => share,
            Err(message) => {
                failures.push(message);
                Share::default()
            }
        };
        if let Some(expected) = case.expect.pre_auth_decoded_bytes {
            let decoded = pre_auth_decoded(&gateway).await - decoded_before;
            if decoded != expected {
                failures.push(format!(
                    "case `{name}`: {decoded} bytes decoded before the key was checked, expected {expected}"
                ));
            }
        }
        let after = (ends(&topics.raw).await, ends(&topics.rejected).await);
        spans.push(Span {
            name: name.clone(),
            share,
            raw: (before.0, after.0.clone()),
            rejected: (before.1, after.1.clone()),
        });
        // The gateway keeps serving after every case.
        let (status, body) = send(&gateway, &keys, &probe).await;
        assert_eq!(
            status, 200,
            "gateway stopped serving after `{name}`: {body}"
        );
        spans.push(Span {
            name: format!("the probe after `{name}`"),
            share: Share {
                accepted: 1,
                rejects: Vec::new(),
            },
            raw: (after.0, ends(&topics.raw).await),
            rejected: (after.1, ends(&topics.rejected).await),
        });
    }
    println!("bad-input cases per route: {routes:?}");
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Exactly what was reported, case by case: accepted events in the raw
    // topic (each within the contract), rejected ones in the dead-letter
    // topic with their codes, nothing from refused requests.
    let raw = read_records(&topics.raw, 3).await;
    let rejected = read_records(&topics.rejected, 1).await;
    let (accepted_total, rejected_total): (usize, usize) = spans
        .iter()
        .map(|span| (span.share.accepted, span.share.rejects.len()))
        .fold((0, 0), |(a, r), (x, y)| (a + x, r + y));
    assert_eq!(raw.len(), accepted_total, "records in the raw topic");
    assert_eq!(
        rejected.len(),
        rejected_total,
        "records in the dead-letter topic"
    );
    for span in &spans {
        let landed: Vec<&readback::ReadRecord> =
            raw.iter().filter(|r| within(&span.raw, r)).collect();
        assert_eq!(
            landed.len(),
            span.share.accepted,
            "{}: events in the raw topic",
            span.name
        );
        for record in landed {
            let event: Value = serde_json::from_slice(&record.payload)
                .unwrap_or_else(|e| panic!("{}: a raw record is not JSON: {e}", span.name));
            if let Some(broken) = breaks_contract(&event) {
                panic!(
                    "{}: accepted an event that breaks the contract ({broken}): {event}",
                    span.name
                );
            }
        }
        let mut codes: Vec<Option<String>> = rejected
            .iter()
            .filter(|r| within(&span.rejected, r))
            .map(|r| r.headers.get("sluice-reject-code").cloned())
            .collect();
        assert_eq!(
            codes.len(),
            span.share.rejects.len(),
            "{}: events in the dead-letter topic",
            span.name
        );
        let mut expected = span.share.rejects.clone();
        if expected.iter().all(Option::is_some) {
            codes.sort();
            expected.sort();
            assert_eq!(codes, expected, "{}: reject codes", span.name);
        }
    }
    gateway.stop().await.unwrap();
}
