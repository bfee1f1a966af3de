//! `sluice schema register|check` through the real binary against an
//! in-process gateway (in-memory registry, no Kafka): the exit codes a
//! pull-request check relies on, 0 compatible, 1 refused with the reason
//! printed, 2 usage or connection error.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_core::clock::SystemClock;
use sluice_gateway::keys::{ConfiguredKeys, MemoryKeys};
use sluice_gateway::producer::MemoryProducer;
use sluice_gateway::schemas::SchemaRegistry;
use sluice_gateway::{AppState, GatewayConfig, router};

const OPERATOR: &str = "operator-token-0123456789";

async fn gateway() -> String {
    let mut config = GatewayConfig::default();
    config.admin.token = OPERATOR.into();
    let state = AppState::new(
        &config,
        Arc::new(MemoryKeys::new(ConfiguredKeys::default())),
        Arc::new(MemoryProducer::default()),
        Arc::new(SystemClock),
    )
    .with_schemas(Arc::new(SchemaRegistry::in_memory()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    url
}

fn write(dir: &Path, name: &str, schema: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(schema).unwrap()).unwrap();
    path
}

async fn sluice(args: Vec<String>) -> (i32, String) {
    let out: Output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .env_remove("SLUICE_ADMIN_TOKEN")
            .env_remove("SLUICE_ADMIN_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn args(action: &str, url: &str, subject: &str, file: &Path) -> Vec<String> {
    vec![
        "schema".into(),
        action.into(),
        subject.into(),
        "--file".into(),
        file.display().to_string(),
        "--admin-url".into(),
        url.into(),
        "--token".into(),
        OPERATOR.into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_for_pull_request_checks() {
    let url = gateway().await;
    let dir = std::env::temp_dir().join(format!("sluice-schema-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let v1 = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {"email": {"type": "string"}},
        "required": ["email"]
    });
    let mut breaking = v1.clone();
    breaking["properties"]["plan"] = json!({"type": "string"});
    breaking["required"] = json!(["email", "plan"]);
    let mut fine = v1.clone();
    fine["properties"]["plan"] = json!({"type": "string"});
    let v1 = write(&dir, "v1.json", &v1);
    let breaking = write(&dir, "breaking.json", &breaking);
    let fine = write(&dir, "fine.json", &fine);
    let unsupported = write(
        &dir,
        "unsupported.json",
        &json!({"properties": {"a": {"propertyNames": {"maxLength": 3}}}}),
    );
    let subject = "acme/Signup Completed";

    // A subject without versions accepts anything.
    let (code, out) = sluice(args("check", &url, subject, &breaking)).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = sluice(args("register", &url, subject, &v1)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("version 1"), "{out}");

    let (code, out) = sluice(args("check", &url, subject, &fine)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("is compatible"), "{out}");
    let (code, out) = sluice(args("check", &url, subject, &breaking)).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("required property `plan` added without a default: old events would fail"),
        "{out}"
    );
    let (code, out) = sluice(args("register", &url, subject, &breaking)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("#/required"), "{out}");
    let (code, out) = sluice(args("check", &url, subject, &unsupported)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("#/properties/a/propertyNames"), "{out}");

    // Usage and connection errors decide nothing: 2.
    let (code, out) = sluice(args("check", &url, "no-slash", &fine)).await;
    assert_eq!(code, 2, "{out}");
    let (code, out) = sluice(args("check", &url, subject, &dir.join("missing.json"))).await;
    assert_eq!(code, 2, "{out}");
    let (code, out) = sluice(args("check", "http://127.0.0.1:9", subject, &fine)).await;
    assert_eq!(code, 2, "{out}");
    let (code, _) = sluice(vec!["schema".into(), "check".into(), subject.into()]).await;
    assert_eq!(code, 2, "clap's usage error");
    let mut no_token = args("check", &url, subject, &fine);
    no_token.truncate(no_token.len() - 2);
    let (code, out) = sluice(no_token).await;
    assert_eq!(code, 2, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
