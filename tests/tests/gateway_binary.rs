//! The real `sluice-gateway` process against the real broker: configured from
//! the environment, ready, ingesting, reporting its memory in `/metrics`
//! (the binary's jemalloc probe and the resident-memory limit's sampler), and
//! exiting cleanly on SIGTERM once in-flight work is done.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::binary::workspace_binary;
use sluice_tests::{OPERATOR_TOKEN, TestTopics, kafka, read_all};

const KEY: &str = "sk_test_gateway_binary";

/// Kills the process if the test fails before stopping it.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the unlabelled series `name` in a Prometheus text page.
fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_binary_ingests_reports_its_memory_and_stops_on_sigterm() {
    let binary = workspace_binary("sluice-gateway", "sluice-gateway").unwrap();
    let topics = TestTopics::create(2).await.unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(binary)
        .env("SLUICE_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SLUICE_GATEWAY_KAFKA__BROKERS", kafka().brokers)
        .env("SLUICE_GATEWAY_PRODUCER__TOPIC", &topics.raw)
        .env("SLUICE_GATEWAY_PRODUCER__REJECTED_TOPIC", &topics.rejected)
        .env(
            "SLUICE_GATEWAY_AUTH__KEYS",
            format!("{{{KEY}=\"team-bin\"}}"),
        )
        .env("SLUICE_GATEWAY_AUTH__KEYS_TOPIC", &topics.keys)
        .env("SLUICE_GATEWAY_PLUGINS__TOPIC", &topics.plugins)
        .env("SLUICE_GATEWAY_PLUGINS__BLOBS_TOPIC", &topics.plugin_blobs)
        .env("SLUICE_GATEWAY_SCHEMAS__TOPIC", &topics.schemas)
        .env("SLUICE_GATEWAY_ADMIN__TOKEN", OPERATOR_TOKEN)
        // Far above what the process uses: the sampler runs, nothing is refused.
        .env("SLUICE_GATEWAY_ADMISSION__MAX_RESIDENT_BYTES", "8589934592")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut gateway = Process(child);
    let client = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            break;
        }
        assert!(
            gateway.0.try_wait().unwrap().is_none(),
            "the gateway exited during start-up"
        );
        assert!(Instant::now() < deadline, "not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

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
        .arg(gateway.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = gateway.0.try_wait().unwrap() {
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
