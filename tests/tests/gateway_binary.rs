//! The real `sluice-gateway` process against the real broker: configured from
//! the environment, ready, ingesting, reporting its memory in `/metrics`
//! (the binary's jemalloc probe and the resident-memory limit's sampler), and
//! exiting cleanly on SIGTERM once in-flight work is done.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::binary::GatewayProcess;
use sluice_tests::{TestTopics, read_all};

const KEY: &str = "sk_test_gateway_binary";

/// The value of the unlabelled series `name` in a Prometheus text page.
fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_binary_ingests_reports_its_memory_and_stops_on_sigterm() {
    let topics = TestTopics::create(2).await.unwrap();
    let mut gateway = GatewayProcess::start(
        &topics,
        KEY,
        "team-bin",
        // Far above what the process uses: the sampler runs, nothing is refused.
        &[("SLUICE_GATEWAY_ADMISSION__MAX_RESIDENT_BYTES", "8589934592")],
    )
    .await
    .unwrap();
    let base = gateway.base.clone();
    let client = reqwest::Client::new();

    let events: Vec<Value> = (0..3)
        .map(|i| json!({ "event": "Binary", "user_id": format!("user-{i}") }))
        .collect();
    let response = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(KEY)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 3, "{body}");

    // Gauges are sampled every second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if gauge(&page, "sluice_gateway_allocator_allocated_bytes").is_some() {
            break page;
        }
        assert!(Instant::now() < deadline, "no allocator gauges: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let resident = gauge(&page, "sluice_gateway_resident_memory_bytes").unwrap();
    let allocated = gauge(&page, "sluice_gateway_allocator_allocated_bytes").unwrap();
    let held = gauge(&page, "sluice_gateway_allocator_resident_bytes").unwrap();
    assert!(
        allocated > 1e6,
        "jemalloc reports {allocated} bytes allocated"
    );
    assert!(
        allocated <= held && held <= resident,
        "allocated {allocated} <= allocator-resident {held} <= process-resident {resident}"
    );
    assert_eq!(
        gauge(&page, "sluice_gateway_memory_limit_exceeded"),
        Some(0.0)
    );

    // SIGTERM: the graceful path (drain, flush the producer, exit 0).
    let status = Command::new("kill")
        .arg(gateway.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = gateway.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "exit after SIGTERM: {exit}");

    let landed = read_all(&topics.raw, 2).await;
    assert_eq!(landed.len(), 3, "{landed:?}");
}

/// `admin.listen`, the production setting: `/metrics` and the admin API on
/// their own address, the public one serving ingest and health only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_admin_listen_metrics_and_admin_are_served_only_on_the_admin_address() {
    let topics = TestTopics::create(2).await.unwrap();
    let admin_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gateway = GatewayProcess::start(
        &topics,
        KEY,
        "team-bin",
        &[("SLUICE_GATEWAY_ADMIN__LISTEN", &admin_addr.to_string())],
    )
    .await
    .unwrap();
    let admin = format!("http://{admin_addr}");
    let get = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    assert_eq!(get(format!("{}/metrics", gateway.base)).await, 404);
    assert_eq!(get(format!("{}/admin/v1/keys", gateway.base)).await, 404);
    assert_eq!(get(format!("{admin}/metrics")).await, 200);
    assert_eq!(get(format!("{admin}/admin/v1/keys")).await, 401, "no token");
    assert_eq!(get(format!("{admin}/readyz")).await, 200);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", gateway.base))
        .bearer_auth(KEY)
        .json(&json!({ "events": [{ "event": "Split", "user_id": "u" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("sluice_gateway_requests_total"), "{page}");
}
