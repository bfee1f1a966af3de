//! The bad-input suite: one folder per case under `tests/cases/bad-input/`,
//! each a `case.json` with the request and the expected status and error code
//! (or per-event outcomes). Every case runs against a real gateway producing
//! to real Kafka; after each, a valid request must still succeed, and at the
//! end the topics must hold exactly the events the gateway reported
//! accepted and rejected: nothing lost, nothing extra.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_cli::admin::AdminClient;
use sluice_core::readback;
use sluice_tests::{OPERATOR_TOKEN, RunningGateway, TestTopics, kafka};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk_test_bad_input_suite";

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
    /// `valid` (default), `none`, `unknown`, `revoked`.
    key: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: Option<String>,
    body_hex: Option<String>,
    /// Compress `body` with this encoding (and declare it).
    compress: Option<String>,
    /// A large body built by the runner.
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
    results: Option<Vec<ExpectedOutcome>>,
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

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

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
        other => panic!("unknown generator `{other}`"),
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

struct Keys {
    revoked: String,
}

async fn send(gateway: &RunningGateway, keys: &Keys, request: &CaseRequest) -> (u16, Value) {
    let token = match request.key.as_deref().unwrap_or("valid") {
        "valid" => Some(KEY.to_owned()),
        "none" => None,
        "unknown" => Some("sk_000000000000_00000000000000000000000000000000".to_owned()),
        "revoked" => Some(keys.revoked.clone()),
        other => panic!("unknown key kind `{other}`"),
    };
    if let Some(stall) = &request.stall {
        return stalled(gateway, token.as_deref(), stall).await;
    }
    let mut body = if let Some(name) = &request.generate {
        generated(name)
    } else if let Some(hex) = &request.body_hex {
        unhex(hex)
    } else {
        request.body.clone().unwrap_or_default().into_bytes()
    };
    let mut encoding = request.content_encoding.clone();
    match request.compress.as_deref() {
        None => {}
        Some("gzip") => {
            body = gzip(&body);
            encoding = Some("gzip".into());
        }
        Some("zstd") => {
            body = zstd::encode_all(&body[..], 3).unwrap();
            encoding = Some("zstd".into());
        }
        Some(other) => panic!("unknown compression `{other}`"),
    }
    let mut builder = reqwest::Client::new()
        .post(gateway.url("/v1/events"))
        .header(
            "content-type",
            request
                .content_type
                .as_deref()
                .unwrap_or("application/json"),
        )
        .timeout(Duration::from_secs(20))
        .body(body);
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Declares a body, sends part of it, and waits for the gateway to give up.
async fn stalled(gateway: &RunningGateway, token: Option<&str>, stall: &Stall) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: sluice\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
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

fn check(name: &str, case: &Case, status: u16, body: &Value) -> Result<(usize, usize), String> {
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
    }
    let mut counts = (0, 0);
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
                "accepted" => counts.0 += 1,
                "rejected" => counts.1 += 1,
                _ => {}
            }
        }
    }
    Ok(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_case_gets_its_specific_answer_and_the_gateway_keeps_serving() {
    let topics = TestTopics::create(3).await.unwrap();
    let mut config = topics.gateway_config(KEY, "team-bad");
    config.ingest.max_events_per_batch = 100;
    config.ingest.max_body_bytes = 256 * 1024;
    config.ingest.max_decompressed_bytes = 1024 * 1024;
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
        names.len() >= 20,
        "expected the full case list, found {names:?}"
    );

    let (mut accepted, mut rejected) = (0usize, 0usize);
    let mut failures = Vec::new();
    let probe = CaseRequest {
        body: Some(json!({ "events": [event(0)] }).to_string()),
        ..CaseRequest::default()
    };
    for name in &names {
        let text = std::fs::read_to_string(cases_dir().join(name).join("case.json")).unwrap();
        let case: Case =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}/case.json: {e}"));
        let (status, body) = send(&gateway, &keys, &case.request).await;
        match check(name, &case, status, &body) {
            Ok((a, r)) => {
                accepted += a;
                rejected += r;
            }
            Err(message) => failures.push(message),
        }
        // The gateway keeps serving after every case.
        let (status, body) = send(&gateway, &keys, &probe).await;
        assert_eq!(
            status, 200,
            "gateway stopped serving after `{name}`: {body}"
        );
        accepted += 1;
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Exactly what was reported: accepted events in the raw topic, rejected
    // ones in the dead-letter topic, nothing from refused requests.
    for (topic, expected) in [(&topics.raw, accepted), (&topics.rejected, rejected)] {
        let (settings, topic) = (kafka(), topic.clone());
        let ends = tokio::task::spawn_blocking(move || readback::end_offsets(&settings, &topic))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ends.values().sum::<i64>(), expected as i64);
    }
    gateway.stop().await.unwrap();
}
