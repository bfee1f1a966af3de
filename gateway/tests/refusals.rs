//! Refusals over a real socket: a client still uploading when the gateway
//! refuses its request gets the HTTP answer (503 with `Retry-After`, 401, …),
//! not a reset connection, and can reuse the connection afterwards.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use sluice_gateway::connections;
use sluice_gateway::{AppState, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

use common::{KEY, harness_with};

async fn serve(state: AppState) -> SocketAddr {
    let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = inner.local_addr().unwrap();
    let permits = state.admission().connection_permits();
    tokio::spawn(connections::serve(
        inner,
        router(state),
        permits,
        std::future::pending(),
    ));
    addr
}

/// Sends a request with a body of `body_len` bytes in small pieces (a client
/// on a real network), then reads one response; returns its head.
async fn send_slowly(stream: &mut TcpStream, key: &str, body: &[u8]) -> String {
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for piece in body.chunks(4096) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    read_response(stream).await
}

/// Reads one response (head and a `content-length` body); returns the head.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .expect("an answer, not a broken connection");
        assert!(n > 0, "connection closed without an answer");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = text[..end].to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        if buf.len() >= end + 4 + length {
            return head;
        }
    }
}

/// A valid batch padded to about `len` bytes with a long property.
fn batch_of_len(len: usize) -> Vec<u8> {
    let pad = "x".repeat(len.saturating_sub(100));
    format!(r#"{{"events":[{{"event":"e","user_id":"u","properties":{{"pad":"{pad}"}}}}]}}"#)
        .into_bytes()
}

#[tokio::test]
async fn a_shed_request_is_answered_503_after_its_upload_and_the_connection_lives_on() {
    let h = harness_with(|config| {
        config.admission.max_in_flight_requests = 1;
        config.ingest.max_body_bytes = 256 * 1024;
        config.ingest.event.max_event_bytes = 200 * 1024;
    });
    let addr = serve(h.state.clone()).await;
    // Another request holds the only in-flight slot.
    let held = h.state.admission().admit(1024).unwrap();

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = send_slowly(&mut stream, KEY, &batch_of_len(200 * 1024)).await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");

    drop(held);
    let head = send_slowly(&mut stream, KEY, &batch_of_len(1024)).await;
    assert!(
        head.starts_with("http/1.1 200"),
        "same connection serves again: {head}"
    );
}

#[tokio::test]
async fn an_unauthenticated_upload_gets_its_401() {
    let h = harness_with(|config| {
        config.ingest.max_body_bytes = 256 * 1024;
    });
    let addr = serve(h.state.clone()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = send_slowly(
        &mut stream,
        "sk_not_a_key_at_all",
        &batch_of_len(200 * 1024),
    )
    .await;
    assert!(head.starts_with("http/1.1 401"), "{head}");
}

#[tokio::test]
async fn at_the_resident_limit_requests_get_503_and_probes_still_answer() {
    let h = harness_with(|config| {
        config.admission.max_resident_bytes = 1 << 30;
    });
    let addr = serve(h.state.clone()).await;
    let limit = h.state.admission().resident_limit();
    limit.record(1 << 29);
    let mut open = TcpStream::connect(addr).await.unwrap();
    let head = send_slowly(&mut open, KEY, &batch_of_len(1024)).await;
    assert!(head.starts_with("http/1.1 200"), "below the limit: {head}");

    limit.record(1 << 30);
    let head = send_slowly(&mut open, KEY, &batch_of_len(1024)).await;
    assert!(head.starts_with("http/1.1 503"), "at the limit: {head}");
    assert!(head.contains("retry-after: 1"), "{head}");

    // A new connection is accepted: its ingest request is refused, while a
    // liveness probe on it is answered.
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    let head = send_slowly(&mut fresh, KEY, &batch_of_len(1024)).await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_response(&mut fresh).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");

    limit.record(1 << 28);
    let head = send_slowly(&mut open, KEY, &batch_of_len(1024)).await;
    assert!(head.starts_with("http/1.1 200"), "back below: {head}");
}
