//! Plugin component bytes cost replicas an index, not their size: uploaded
//! versions are read from Kafka only to be compiled, deleted versions and
//! plugins are tombstoned in the blob topic, and the memory an upload took is
//! given back once nothing runs the version.
//!
//! Two real gateway processes share the topics: `a` takes the uploads, `b`
//! only reads the registry, so it compiles every version from the bytes it
//! fetches back from Kafka. Resident memory is read from `/proc` for each.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use sluice_tests::TestTopics;
use sluice_tests::binary::GatewayProcess;
use sluice_tests::plugin_admin::{Admin, component};

const KEY: &str = "sk_test_plugin_blobs";
const TEAM: &str = "blobs";
/// The largest upload the gateway accepts by default.
const UPLOAD_BYTES: usize = 32 * 1024 * 1024;
const VERSIONS: usize = 10;

/// `base` with a custom section appended so that the component is exactly
/// `total` bytes; `seed` makes its contents (and so its hash) differ. The
/// section is ignored by the compiler: the upload is big, its code is not.
fn padded(base: &[u8], total: usize, seed: u64) -> Vec<u8> {
    const NAME: &[u8] = b"sluice-test-padding";
    // Section id, a 4-byte LEB128 size (32 MiB needs 4), the name's length
    // byte and the name, then the payload.
    let payload = total - base.len() - 1 - 4 - 1 - NAME.len();
    let size = 1 + NAME.len() + payload;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(base);
    out.push(0);
    let mut rest = size;
    for i in 0..4 {
        let byte = (rest & 0x7f) as u8;
        rest >>= 7;
        out.push(if i < 3 { byte | 0x80 } else { byte });
    }
    assert_eq!(rest, 0, "the section size fits 4 LEB128 bytes");
    out.push(NAME.len() as u8);
    out.extend_from_slice(NAME);
    // xorshift: incompressible enough that Kafka stores every byte.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < total {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes()[..(total - out.len()).min(8)]);
    }
    assert_eq!(out.len(), total);
    out
}

/// Resident memory of `pid`, from `/proc/<pid>/status`.
fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// Waits until `gateway`'s resident memory is within `limit` MiB (the
/// allocator hands freed pages back over seconds, not at once); fails with
/// the readings when it does not come down within a minute.
async fn wait_resident_below(name: &str, gateway: &GatewayProcess, limit: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let now = resident_mib(gateway.child.id());
        if now <= limit {
            return now;
        }
        seen.push(format!("{now:.1}"));
        assert!(
            Instant::now() < deadline,
            "{name}: resident memory stayed above {limit:.1} MiB; readings every 500 ms: {}",
            seen.join(" ")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_and_deleting_ten_32_mib_versions_gives_the_memory_back_on_every_replica() {
    let topics = TestTopics::create(1).await.unwrap();
    let a = GatewayProcess::start(&topics, KEY, TEAM, &[])
        .await
        .unwrap();
    let b = GatewayProcess::start(&topics, KEY, TEAM, &[])
        .await
        .unwrap();
    let (admin_a, admin_b) = (Admin::at(&a.base), Admin::at(&b.base));

    // Where memory starts: both replicas running a team's plugin, the state
    // of a gateway with plugins in use (the first compile brings in the
    // compiler's own tables, which stay whatever happens to uploads).
    admin_a
        .install_validator(TEAM, "small", "required_properties", json!({}))
        .await;
    admin_b.wait_active(TEAM, "small", "1.0.0").await;
    let start = [resident_mib(a.child.id()), resident_mib(b.child.id())];

    let base = component("required_properties");
    let mut peak = start;
    for i in 1..=VERSIONS {
        let version = format!("{i}.0.0");
        let (status, body) = admin_a
            .upload(
                TEAM,
                "big",
                &version,
                "validator",
                padded(&base, UPLOAD_BYTES, i as u64),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{version}: {body}");
        // Active on `b` means `b` fetched all 64 chunks back from Kafka,
        // verified the hash and compiled them.
        admin_a.wait_active(TEAM, "big", &version).await;
        admin_b.wait_active(TEAM, "big", &version).await;
        peak[0] = peak[0].max(resident_mib(a.child.id()));
        peak[1] = peak[1].max(resident_mib(b.child.id()));
    }

    // The active version cannot be deleted on its own; the others can.
    let active = format!("{VERSIONS}.0.0");
    let (status, body) = admin_a
        .delete(TEAM, &format!("big/versions/{active}"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    for i in 1..VERSIONS {
        let (status, body) = admin_a.delete(TEAM, &format!("big/versions/{i}.0.0")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body["versions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v["version"] != format!("{i}.0.0")),
            "{body}"
        );
        assert!(
            body["history"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| *v != format!("{i}.0.0")),
            "a deleted version cannot be rolled back to: {body}"
        );
    }
    let (status, body) = admin_a.delete(TEAM, "big").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Every chunk of every version ends in a tombstone, so compaction drops
    // them all; the small plugin's chunk is still there.
    let records = sluice_tests::read_records(&topics.plugin_blobs, 1).await;
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    for record in &records {
        last.insert(record.key.clone(), record.payload.is_empty());
    }
    // 512 KiB chunks (`sluice_plugin_host::registry::CHUNK_BYTES`).
    let chunks_per_version = UPLOAD_BYTES.div_ceil(512 * 1024);
    let big: Vec<_> = last
        .iter()
        .filter(|(key, _)| key.starts_with(&format!("{TEAM}/big/")))
        .collect();
    assert_eq!(
        big.len(),
        VERSIONS * chunks_per_version,
        "chunk keys written"
    );
    let live: Vec<_> = big.iter().filter(|(_, tombstone)| !**tombstone).collect();
    assert!(live.is_empty(), "chunks left without a tombstone: {live:?}");
    assert!(
        last.iter()
            .any(|(key, tombstone)| key.starts_with(&format!("{TEAM}/small/")) && !tombstone),
        "the small plugin's chunk must stay: {last:?}"
    );

    // Memory back to within 10 % of the start on both replicas.
    let mut end = [0.0; 2];
    for (i, (name, gateway)) in [("a", &a), ("b", &b)].into_iter().enumerate() {
        end[i] = wait_resident_below(name, gateway, start[i] * 1.10).await;
    }
    eprintln!(
        "resident MiB (start, peak, end): a {:.1} {:.1} {:.1}; b {:.1} {:.1} {:.1}",
        start[0], peak[0], end[0], start[1], peak[1], end[1]
    );

    // The replicas still run the small plugin: letting go of the big one's
    // code did not take the team's chain with it.
    for admin in [&admin_a, &admin_b] {
        let shown = admin.show(TEAM, "small").await;
        assert_eq!(shown["state"], "active", "{shown}");
    }
}
