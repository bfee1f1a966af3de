//! The router-test harness shared by `router.rs` and `compat.rs`: a gateway
//! state with one key, a fixed clock and an in-memory producer.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Arc;

use sluice_core::Timestamp;
use sluice_core::clock::FixedClock;
use sluice_gateway::keys::{ConfiguredKeys, MemoryKeys};
use sluice_gateway::producer::MemoryProducer;
use sluice_gateway::{AppState, GatewayConfig};

pub const KEY: &str = "sk_test_team_a";
pub const NOW: i64 = 1_800_000_000_000;
pub const OPERATOR: &str = "operator-token-0123456789";

pub struct Harness {
    pub state: AppState,
    pub producer: Arc<MemoryProducer>,
}

pub fn harness() -> Harness {
    harness_with(|_| {})
}

/// A harness whose configuration `adjust` changed first.
pub fn harness_with(adjust: impl FnOnce(&mut GatewayConfig)) -> Harness {
    let mut config = GatewayConfig::default();
    config.auth.keys.insert(KEY.into(), "team-a".into());
    config.admin.token = OPERATOR.into();
    config.ingest.max_events_per_batch = 3;
    config.ingest.max_body_bytes = 64 * 1024;
    adjust(&mut config);
    let producer = Arc::new(MemoryProducer::default());
    let state = AppState::new(
        &config,
        Arc::new(MemoryKeys::new(ConfiguredKeys::new(&config.auth.keys))),
        producer.clone(),
        Arc::new(FixedClock::new(Timestamp::from_millis(NOW))),
    );
    Harness { state, producer }
}

/// Keys of two teams in a store: team A's admin and ingest keys, team B's
/// admin key (the cross-team suites).
pub struct Teams {
    pub keys: Arc<sluice_gateway::keys::MemoryKeys>,
    pub admin_a: String,
    pub ingest_a: String,
    pub admin_b: String,
    /// The id of team A's ingest key.
    pub ingest_a_id: String,
}

pub async fn teams(now: Timestamp) -> Teams {
    use sluice_gateway::keys::{self, KeyStore, Role};
    let keys = Arc::new(MemoryKeys::new(ConfiguredKeys::default()));
    let make = async |team: &str, role: Role| {
        let new = keys::generate(team, role, "test", now);
        let id = new.record.key_id.clone();
        keys.insert(new.record).await.unwrap();
        (new.key, id)
    };
    let (admin_a, _) = make("team-a", Role::Admin).await;
    let (ingest_a, ingest_a_id) = make("team-a", Role::Ingest).await;
    let (admin_b, _) = make("team-b", Role::Admin).await;
    Teams {
        keys,
        admin_a,
        ingest_a,
        admin_b,
        ingest_a_id,
    }
}

/// A gateway state with an in-memory schema registry and the keys of
/// [`teams`] (the schema suites).
pub struct SchemaHarness {
    pub state: AppState,
    pub producer: Arc<MemoryProducer>,
    pub teams: Teams,
}

pub async fn schema_harness() -> SchemaHarness {
    let mut config = GatewayConfig::default();
    config.admin.token = OPERATOR.into();
    let now = Timestamp::from_millis(NOW);
    let teams = teams(now).await;
    let producer = Arc::new(MemoryProducer::default());
    let state = AppState::new(
        &config,
        teams.keys.clone(),
        producer.clone(),
        Arc::new(FixedClock::new(now)),
    )
    .with_schemas(Arc::new(
        sluice_gateway::schemas::SchemaRegistry::in_memory(),
    ));
    SchemaHarness {
        state,
        producer,
        teams,
    }
}

/// One request through the router (no socket) with `key` as bearer and
/// `content_type`; the status and the JSON answer (`Null` if not JSON).
pub async fn call_json(
    state: &AppState,
    (method, path): (&str, &str),
    key: &str,
    content_type: &str,
    body: Option<serde_json::Value>,
) -> (axum::http::StatusCode, serde_json::Value) {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, content_type);
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = sluice_gateway::router(state.clone())
        .oneshot(request.body(body).expect("a valid request"))
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
