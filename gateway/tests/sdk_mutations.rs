//! Mutation fuzzing of the Segment and PostHog routes and the body reader
//! (gzip, zstd and form framing), which the cargo-fuzz targets of `fuzz/`
//! cannot reach: `sluice-gateway` links wasmtime and librdkafka, too heavy
//! for an instrumented nightly build on every CI run (fuzz/README.md).
//!
//! Every case of `tests/sdk-corpus/` (real SDK payloads and the refusals the
//! routes keep) is mutated many times with a fixed seed — bytes flipped,
//! dropped, repeated, replaced by JSON's structural characters, spliced with
//! another case's body, truncated — and, for compressed bodies, also
//! decompressed, mutated and compressed again with gzip and zstd, so that
//! the translators see broken JSON behind valid framing as well as broken
//! framing. Each request goes through `router()` (no socket) and must:
//! answer within 10 s, never with a 5xx (the in-memory producer never
//! fails), refuse with a JSON `error.code` in snake case, and produce to
//! `events.raw` only events that keep the contract a strict consumer needs
//! (strict JSON, the team of the key, names and `user_id` without control
//! characters, `properties` and `context` objects within the depth limit).
//!
//! Coverage-blind, unlike libFuzzer, but deterministic and cheap enough for
//! every `cargo test`. `SLUICE_MUTATIONS=N` mutates each case N times
//! (default 300) and `SLUICE_MUTATION_SEED=S` starts from another seed: the
//! longer run documented in fuzz/README.md.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use sluice_core::clock::FixedClock;
use sluice_core::{Event, Limits, Timestamp, json_text};
use sluice_gateway::keys::{ConfiguredKeys, MemoryKeys};
use sluice_gateway::producer::MemoryProducer;
use sluice_gateway::{AppState, GatewayConfig, router};
use tower::ServiceExt;

/// The corpus's clock (tests/sdk_golden.rs): its timestamps are accepted.
const NOW: i64 = 1_796_659_840_000;
const KEY: &str = "sk_test_team_a";
const TEAM: &str = "team-a";

#[derive(Debug, Deserialize)]
struct CaseRequest {
    method: String,
    path: String,
    headers: std::collections::BTreeMap<String, String>,
}

struct Case {
    name: String,
    request: CaseRequest,
    body: Vec<u8>,
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-corpus");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| Case {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            request: serde_json::from_slice(&std::fs::read(dir.join("request.json")).unwrap())
                .unwrap(),
            body: std::fs::read(dir.join("body")).unwrap(),
        })
        .collect()
}

/// xorshift64*: a fixed sequence per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the decoders: JSON's structure, escapes, numbers'
/// edges, control characters, broken UTF-8, form and base64 separators.
const INTERESTING: &[u8] = b"\"\\{}[],:0-.eE+ \n\t\x00\x1f\x7f\xff\xc3\xed&=%+/";

fn mutate(rng: &mut Rng, body: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                out.drain(start..end);
            }
            3 => {
                let i = rng.below(len + 1);
                out.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            4 if len > 0 => {
                // Repeat a stretch: deep nesting, long strings, big numbers.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(8)).min(len);
                let piece = out[start..end].to_vec();
                for _ in 0..=rng.below(200) {
                    out.splice(start..start, piece.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => out.truncate(rng.below(len)),
            _ => {
                let i = rng.below(len + 1);
                let tokens = [
                    "1e400",
                    "-0",
                    "1.7976931348623158e308",
                    "\\udc00",
                    "\"",
                    "null",
                ];
                let text = tokens[rng.below(tokens.len())];
                out.splice(i..i, text.bytes());
            }
        }
    }
    out
}

fn gunzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

/// The contract every event produced to `events.raw` keeps, whatever the
/// route was sent (`core/src/validate.rs`, docs/architecture.md).
fn check_event(payload: &[u8], limits: &Limits) -> Result<(), String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("not UTF-8: {e}"))?;
    let tree: Value = serde_json::from_str(text).map_err(|e| format!("not strict JSON: {e}"))?;
    let event: Event<'_> = serde_json::from_str(text).map_err(|e| format!("not an event: {e}"))?;
    if event.team_id != TEAM {
        return Err(format!("team {}", event.team_id));
    }
    for (field, value, max) in [
        ("event", &*event.event, limits.max_event_name_bytes),
        ("user_id", &*event.user_id, limits.max_user_id_bytes),
    ] {
        if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
            return Err(format!("{field} {value:?}"));
        }
    }
    if event.event.trim().is_empty() {
        return Err("a blank name".into());
    }
    for (field, raw) in [
        ("properties", Some(event.properties)),
        ("context", event.context),
    ] {
        let Some(raw) = raw else { continue };
        if !tree[field].is_object() {
            return Err(format!("{field} is not an object"));
        }
        json_text::check(raw.get(), limits.max_json_depth)
            .map_err(|e| format!("{field}: {e:?}"))?;
    }
    Ok(())
}

/// What one request did wrong, if anything.
async fn send(
    app: &axum::Router,
    producer: &MemoryProducer,
    request: &CaseRequest,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    produced: &mut usize,
) -> Result<(), String> {
    producer.take_records().await;
    let mut builder = Request::builder()
        .method(request.method.as_str())
        .uri(&request.path);
    for (name, value) in &request.headers {
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        app.clone().oneshot(builder.body(Body::from(body)).unwrap()),
    )
    .await
    .map_err(|_| "no answer within 10 s".to_owned())?
    .unwrap();
    let status = answer.status();
    let text = answer.into_body().collect().await.unwrap().to_bytes();
    if status.is_server_error() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&text)));
    }
    if status.is_client_error() {
        let code = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(format!(
                "{status} without a reason code: {}",
                String::from_utf8_lossy(&text)
            ));
        }
    }
    let limits = Limits::default();
    let records = producer.take_records().await;
    *produced += records
        .iter()
        .filter(|r| r.topic == sluice_core::kafka::TOPIC_RAW)
        .count();
    for record in &records {
        if record.topic == sluice_core::kafka::TOPIC_RAW {
            check_event(&record.payload, &limits).map_err(|e| {
                format!(
                    "{status}, produced {e}: {}",
                    String::from_utf8_lossy(&record.payload)
                )
            })?;
        }
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn mutated_sdk_payloads_are_answered_with_a_reason_and_never_break_the_contract() {
    let cases = corpus();
    assert!(cases.len() >= 30, "the corpus is missing");
    let mutations = env_number("SLUICE_MUTATIONS", 300);
    let seed = env_number("SLUICE_MUTATION_SEED", 0x5EED_2026);
    let mut config = GatewayConfig::default();
    config.auth.keys.insert(KEY.into(), TEAM.into());
    // Unlimited: a 429 would stop the request before the translators.
    config.admission.events_per_second_per_key = 0;
    let producer = Arc::new(MemoryProducer::default());
    let app = router(AppState::new(
        &config,
        Arc::new(MemoryKeys::new(ConfiguredKeys::new(&config.auth.keys))),
        producer.clone(),
        Arc::new(FixedClock::new(Timestamp::from_millis(NOW))),
    ));

    let mut rng = Rng(seed);
    let (mut sent, mut failures) = (0u64, Vec::new());
    let mut produced = 0;
    for (i, case) in cases.iter().enumerate() {
        let other = &cases[(i + 1 + rng.below(cases.len() - 1)) % cases.len()].body;
        // The plain text behind a gzip body (the captured SDK batches).
        let inner = gunzip(&case.body);
        for n in 0..mutations {
            let mut tries = vec![(Vec::new(), mutate(&mut rng, &case.body, other))];
            if let Some(inner) = &inner {
                let text = mutate(&mut rng, inner, other);
                // Valid framing around broken text, both encodings; the
                // PostHog routes also sniff gzip without a header.
                tries.push((vec![("content-encoding", "gzip")], gzip(&text)));
                let zstd = zstd::encode_all(&text[..], 1).unwrap();
                tries.push((vec![("content-encoding", "zstd")], zstd));
            }
            for (headers, body) in tries {
                sent += 1;
                let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                if let Err(problem) = send(
                    &app,
                    &producer,
                    &case.request,
                    &headers,
                    body,
                    &mut produced,
                )
                .await
                {
                    failures.push(format!(
                        "{} mutation {n} {headers:?}: {problem}\n  body: {shown:?}",
                        case.name
                    ));
                }
            }
        }
    }
    eprintln!(
        "{sent} mutated requests from {} cases (seed {seed:#x}), {produced} events produced, {} failures",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {sent} mutated requests broke a rule (the first 10):\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    // Not a vacuous run: mutations still reach the translators and some
    // events get through them.
    assert!(produced > 0, "no mutated request produced an event");
}
