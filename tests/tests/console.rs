//! The console in a real browser against the real pieces: Kafka topics of
//! its own, the `sluice-gateway` binary, the loader and the aggregator on a
//! fresh ClickHouse database, and the `sluice-console` binary in front of
//! them. `tests/console/drive.js` drives headless Debian chromium through
//! one scenario per call and answers what the page showed; this file sends
//! the events, asks ClickHouse or the gateway the same question directly,
//! and compares. Each test has its own stack (topics, database, processes),
//! so the tests run in parallel.
//!
//! Needs the local stack (`scripts/stack up`), the SDK suite's node packages
//! (`scripts/sdk-setup`: playwright-core, axe-core) and `chromium`; the
//! plugin test needs the built components (`SLUICE_PLUGINS_DIR`). Missing
//! pieces fail the test with a hint; nothing skips. Screenshots of every
//! page visited go to `SLUICE_CONSOLE_SCREENSHOTS` (default
//! `target/console-screenshots/<test>/`).

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_core::Timestamp;
use sluice_tests::OPERATOR_TOKEN;
use sluice_tests::console::{ConsoleStack, drive, drive_paused, number, screenshots_dir};
use sluice_tests::downstream::sql;
use uuid::Uuid;

const TEAM: &str = "console-a";
const OTHER: &str = "console-b";
/// The static (development) key of `TEAM`: role `ingest`.
const INGEST_KEY: &str = "sk_test_console_ingest_a";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

async fn start() -> ConsoleStack {
    ConsoleStack::start(TEAM, INGEST_KEY).await
}

fn event(name: &str, user: &str, at_ms: i64, properties: Value) -> Value {
    json!({
        "event": name,
        "user_id": user,
        "event_id": Uuid::new_v4().to_string(),
        "timestamp": Timestamp::from_millis(at_ms).to_rfc3339(),
        "properties": properties,
    })
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

/// `label -> value` of a chart's table rows, zero rows left out (a page may
/// draw empty buckets; ClickHouse has no rows for them).
fn shown(points: &Value) -> BTreeMap<String, u64> {
    points
        .as_array()
        .unwrap_or_else(|| panic!("not a list of points: {points}"))
        .iter()
        .filter_map(|p| {
            let value = p["value"].as_f64().unwrap_or(0.0);
            assert!(
                value >= 0.0 && value.fract() == 0.0,
                "a point that is not a count: {p}"
            );
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let value = value as u64;
            (value > 0).then(|| (p["label"].as_str().unwrap_or_default().to_owned(), value))
        })
        .collect()
}

/// `label\tvalue` rows of a ClickHouse answer.
async fn queried(query: &str) -> BTreeMap<String, u64> {
    sql(query)
        .await
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (label, value) = line.split_once('\t').unwrap();
            (label.to_owned(), value.parse().unwrap())
        })
        .filter(|(_, value)| *value > 0)
        .collect()
}

/// The range a page asked for (`drive.js` reports it): epoch ms, half-open.
fn range(result: &Value, name: &str) -> (i64, i64) {
    let range = &result[name];
    let parse = |field: &str| {
        let text = range[field]
            .as_str()
            .unwrap_or_else(|| panic!("no `{field}` in the page's request for {name}: {result}"));
        Timestamp::parse_rfc3339(text)
            .unwrap_or_else(|e| panic!("{name}: `{field}` {text}: {e:?}"))
            .as_millis()
    };
    let (from, to) = (parse("from"), parse("to"));
    assert!(from < to, "{name}: {range}");
    (from, to)
}

/// Bucket bounds for SQL, with the CLI's rule: every bucket overlapping
/// `[from, to)`. The tests' events sit far from any bound, so a page that
/// counts only buckets starting inside the range shows the same points.
fn seconds_floor(ms: i64, bucket_s: i64) -> i64 {
    ms.div_euclid(1000).div_euclid(bucket_s) * bucket_s
}

fn seconds_ceil(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000)
}

fn day(ms: i64) -> String {
    Timestamp::from_millis(ms).to_rfc3339()[..10].to_owned()
}

fn series_sql(db: &str, granularity: &str, event: Option<&str>, (from, to): (i64, i64)) -> String {
    let event = event.map_or(String::new(), |e| format!(" AND event = '{e}'"));
    match granularity {
        "5m" => format!(
            "SELECT toString(window_start), sum(events) FROM {db}.rollups_5m \
             WHERE team_id = '{TEAM}'{event} AND window_start >= toDateTime({}) AND window_start < toDateTime({}) \
             GROUP BY window_start FORMAT TSV",
            seconds_floor(from, 300),
            seconds_ceil(to)
        ),
        "hour" => format!(
            "SELECT toString(hour), sum(events) FROM {db}.rollups_hourly \
             WHERE team_id = '{TEAM}'{event} AND hour >= toDateTime({}) AND hour < toDateTime({}) \
             GROUP BY hour FORMAT TSV",
            seconds_floor(from, 3600),
            seconds_ceil(to)
        ),
        "day" => format!(
            "SELECT toString(day), sum(events) FROM {db}.rollups_daily \
             WHERE team_id = '{TEAM}'{event} AND day >= '{}' AND day <= '{}' \
             GROUP BY day FORMAT TSV",
            day(from),
            day(to - 1)
        ),
        other => panic!("granularity {other}"),
    }
}

fn assert_errorless(result: &Value) {
    assert_eq!(
        result["console_errors"],
        json!([]),
        "console errors: {result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_load_without_errors_and_pass_axe() {
    let stack = start().await;
    let now = now_ms();
    stack
        .send(
            INGEST_KEY,
            json!([
                event("Signed Up", "u1", now - 2 * HOUR, json!({"plan": "pro"})),
                event("Page Viewed", "u2", now - HOUR, json!({})),
                {"event": "   ", "user_id": "u3"},
            ]),
            &[Ok(()), Ok(()), Err("invalid_event_name")],
        )
        .await;
    stack.wait_counted(2).await;

    let result = drive("pages", &stack.console.base, &stack.admin_key, &[], "pages").await;
    let pages = result["pages"].as_object().unwrap();
    let names = [
        "overview", "explorer", "live", "traces", "health", "keys", "plugins", "schemas",
    ];
    assert_eq!(pages.len(), names.len(), "{result}");
    for name in names {
        let page = &pages[name];
        assert_eq!(page["errors"], json!([]), "{name}: console errors: {page}");
        assert_eq!(
            page["axe"],
            json!([]),
            "{name}: serious or critical axe violations: {page}"
        );
        assert!(
            page["axe_passes"].as_u64().unwrap_or(0) > 0,
            "{name}: axe checked nothing: {page}"
        );
        let shot = screenshots_dir().join("pages").join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 0),
            "no screenshot {}",
            shot.display()
        );
    }
    assert_errorless(&result);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_numbers_equal_clickhouse() {
    let stack = start().await;
    let db = stack.db().to_owned();
    let now = now_ms();
    // Four 5-minute windows 35 minutes apart (two hours and more), one
    // event two days back (outside the 24-hour chart, inside DAU and top
    // events), then one late event into the first window once it is written.
    let first = (now - 3 * HOUR).div_euclid(5 * MINUTE) * 5 * MINUTE + MINUTE;
    let at = |k: i64| first + k * 35 * MINUTE;
    stack
        .send(
            INGEST_KEY,
            json!([
                event("Page Viewed", "u4", now - 50 * HOUR, json!({})),
                event("Signed Up", "u1", at(0), json!({})),
                event("Signed Up", "u2", at(0) + 10_000, json!({})),
                event("Page Viewed", "u1", at(1), json!({})),
                event("Page Viewed", "u1", at(1) + 1000, json!({})),
                event("Page Viewed", "u1", at(1) + 2000, json!({})),
                event("Page Viewed", "u3", at(2), json!({})),
                event("Page Viewed", "u3", at(2) + 1000, json!({})),
                event("Purchased", "u2", at(3), json!({})),
                {"event": "   ", "user_id": "u1"},
                {"event": "   ", "user_id": "u2"},
                {"event": "Signed Up", "user_id": "u1", "propertes": {}},
            ]),
            &[
                Ok(()),
                Ok(()),
                Ok(()),
                Ok(()),
                Ok(()),
                Ok(()),
                Ok(()),
                Ok(()),
                Ok(()),
                Err("invalid_event_name"),
                Err("invalid_event_name"),
                Err("unknown_field"),
            ],
        )
        .await;
    stack.wait_counted(9).await;
    stack
        .send(
            INGEST_KEY,
            json!([event("Signed Up", "u5", at(0) + 20_000, json!({}))]),
            &[Ok(())],
        )
        .await;
    stack.wait_counted(10).await;
    let late = number(&format!(
        "SELECT sum(events) FROM {db}.rollups_5m WHERE team_id = '{TEAM}' AND late = 1 FORMAT TSV"
    ))
    .await;
    assert_eq!(
        late, 1,
        "the last event was not counted as a late correction"
    );

    let result = drive(
        "overview",
        &stack.console.base,
        &stack.admin_key,
        &[],
        "overview",
    )
    .await;
    assert_errorless(&result);
    let charts = &result["charts"];
    let ranges = &result["ranges"];

    let got = shown(&charts["events-5m"]);
    let want = queried(&series_sql(&db, "5m", None, range(ranges, "events-5m"))).await;
    assert_eq!(want.values().sum::<u64>(), 9, "ClickHouse: {want:?}");
    assert_eq!(got, want, "events per 5 minutes");

    let (from, to) = range(ranges, "dau");
    let got = shown(&charts["dau"]);
    let want = queried(&format!(
        "SELECT toString(day), toUInt64(uniqMerge(users)) FROM {db}.dau_daily \
         WHERE team_id = '{TEAM}' AND day >= '{}' AND day <= '{}' GROUP BY day FORMAT TSV",
        day(from),
        day(to - 1)
    ))
    .await;
    assert!(want.len() >= 2, "two days of users expected: {want:?}");
    assert_eq!(got, want, "daily active users");

    let (from, to) = range(ranges, "top-events");
    let got = shown(&charts["top-events"]);
    let want = queried(&format!(
        "SELECT event, sum(events) FROM {db}.rollups_daily \
         WHERE team_id = '{TEAM}' AND day >= '{}' AND day <= '{}' GROUP BY event FORMAT TSV",
        day(from),
        day(to - 1)
    ))
    .await;
    let expected: BTreeMap<String, u64> = [("Page Viewed", 6), ("Signed Up", 3), ("Purchased", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(want, expected, "ClickHouse's top events");
    assert_eq!(got, want, "top events");
    let order: Vec<u64> = charts["top-events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] >= w[1]),
        "top events not most frequent first: {order:?}"
    );

    let got = shown(&charts["rejections"]);
    let expected: BTreeMap<String, u64> = [
        ("rejected:invalid_event_name", 2),
        ("rejected:unknown_field", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(got, expected, "rejections by reason");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_counts_and_breakdown_equal_clickhouse() {
    let stack = start().await;
    let db = stack.db().to_owned();
    let now = now_ms();
    let first = (now - 3 * HOUR).div_euclid(5 * MINUTE) * 5 * MINUTE + MINUTE;
    let at = |k: i64| first + k * 40 * MINUTE;
    stack
        .send(
            INGEST_KEY,
            json!([
                event("Checkout", "u1", at(0), json!({"plan": "pro", "seats": 3})),
                event("Checkout", "u2", at(0) + 1000, json!({"plan": "pro"})),
                event("Checkout", "u3", at(1), json!({"plan": "free"})),
                event("Checkout", "u1", at(2), json!({"plan": "pro"})),
                event("Checkout", "u4", at(2) + 1000, json!({"plan": "free"})),
                event("Checkout", "u5", at(3), json!({"seats": 1})),
                event("Other", "u1", at(1) + 1000, json!({"plan": "pro"})),
                event("Other", "u2", at(3) + 1000, json!({"plan": "team"})),
            ]),
            &[Ok(()); 8],
        )
        .await;
    stack.wait_counted(8).await;

    let result = drive(
        "explorer",
        &stack.console.base,
        &stack.admin_key,
        &["Checkout", "plan"],
        "explorer",
    )
    .await;
    assert_errorless(&result);
    for granularity in ["5m", "hour", "day"] {
        let got = shown(&result["counts"][granularity]);
        let want = queried(&series_sql(
            &db,
            granularity,
            Some("Checkout"),
            range(&result["ranges"], granularity),
        ))
        .await;
        assert_eq!(
            want.values().sum::<u64>(),
            6,
            "{granularity}: ClickHouse {want:?}"
        );
        assert_eq!(got, want, "Checkout by {granularity}");
    }

    let (from, to) = range(&result, "breakdown_range");
    let got = shown(&result["breakdown"]);
    let want = queried(&format!(
        "SELECT if(visitParamHas(properties, 'plan'), visitParamExtractRaw(properties, 'plan'), '(none)') AS v, count() \
         FROM {db}.events WHERE team_id = '{TEAM}' AND event = 'Checkout' \
         AND timestamp >= toDateTime({}) AND timestamp < toDateTime({}) GROUP BY v FORMAT TSV",
        from.div_euclid(1000),
        seconds_ceil(to)
    ))
    .await;
    let expected: BTreeMap<String, u64> = [("\"pro\"", 3), ("\"free\"", 2), ("(none)", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(want, expected, "ClickHouse's breakdown");
    assert_eq!(got, want, "Checkout by plan");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_page_shows_an_event_within_two_seconds() {
    let stack = start().await;
    let result = drive(
        "live",
        &stack.console.base,
        &stack.admin_key,
        &[&stack.gateway.base, INGEST_KEY, "Live Check"],
        "live",
    )
    .await;
    assert_errorless(&result);
    assert_eq!(result["rejected_code"], "invalid_event_name", "{result}");
    let accepted = result["accepted_ms"].as_u64().unwrap();
    let rejected = result["rejected_ms"].as_u64().unwrap();
    assert!(
        accepted < 2000,
        "the accepted event showed after {accepted} ms"
    );
    assert!(
        rejected < 2000,
        "the rejected event showed after {rejected} ms"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_in_the_console_ingests() {
    let stack = start().await;
    let label = format!("made in the console {}", Uuid::new_v4().simple());
    let result = drive(
        "create-key",
        &stack.console.base,
        &stack.admin_key,
        &[&label],
        "create-key",
    )
    .await;
    assert_errorless(&result);
    let key = result["key"].as_str().unwrap().to_owned();
    assert!(!key.is_empty(), "{result}");
    stack
        .send(
            &key,
            json!([event("Made Key", "u1", now_ms(), json!({}))]),
            &[Ok(())],
        )
        .await;

    // The gateway knows it: one key with that label, role ingest, of TEAM.
    let listed: Value = stack
        .http
        .get(format!(
            "{}/admin/v1/keys?team_id={TEAM}",
            stack.gateway.base
        ))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine: Vec<&Value> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["label"] == label.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(mine[0]["role"], "ingest");
    let key_id = mine[0]["key_id"].as_str().unwrap().to_owned();

    let result = drive(
        "revoke-key",
        &stack.console.base,
        &stack.admin_key,
        &[&key_id],
        "revoke-key",
    )
    .await;
    assert_errorless(&result);
    assert_eq!(result["ok"], true);
    // Revocation reaches the gateway's key table within a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = stack
            .post(&key, json!([event("Made Key", "u1", now_ms(), json!({}))]))
            .await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(answer["error"]["code"], "revoked_api_key", "{answer}");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            Instant::now() < deadline,
            "the key still ingests 10 s after revoking"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_uploaded_in_the_console_rejects_an_event() {
    let stack = start().await;
    // The bot filter example: its default patterns reject `bot` user agents.
    let wasm = std::env::temp_dir().join(format!("console-bot-filter-{}.wasm", Uuid::new_v4()));
    std::fs::write(&wasm, sluice_tests::plugin_admin::component("bot_filter")).unwrap();
    let result = drive(
        "upload-plugin",
        &stack.console.base,
        &stack.admin_key,
        &["bot-filter", "1.0.0", wasm.to_str().unwrap()],
        "upload-plugin",
    )
    .await;
    let _ = std::fs::remove_file(&wasm);
    assert_errorless(&result);
    assert_eq!(result["state"], "active", "{result}");
    stack
        .send(
            INGEST_KEY,
            json!([
                {"event": "Page Viewed", "user_id": "u1", "context": {"user_agent": "Googlebot/2.1"}},
                {"event": "Page Viewed", "user_id": "u2", "context": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}},
            ]),
            &[Err("plugin_rejected"), Ok(())],
        )
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_registered_in_the_console_is_enforced() {
    let stack = start().await;
    let schema = std::env::temp_dir().join(format!("console-schema-{}.json", Uuid::new_v4()));
    std::fs::write(
        &schema,
        serde_json::to_string_pretty(&json!({
            "type": "object",
            "properties": {"plan": {"type": "string"}},
            "required": ["plan"]
        }))
        .unwrap(),
    )
    .unwrap();
    let result = drive(
        "register-schema",
        &stack.console.base,
        &stack.admin_key,
        &["Plan Chosen", schema.to_str().unwrap()],
        "register-schema",
    )
    .await;
    let _ = std::fs::remove_file(&schema);
    assert_errorless(&result);
    assert_eq!(result["compatible"], true, "{result}");
    assert!(
        !result["verdict_text"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{result}"
    );
    assert_eq!(result["registered"], true, "{result}");
    // Registered means in force: the gateway answers once it has applied it.
    stack
        .send(
            INGEST_KEY,
            json!([
                {"event": "Plan Chosen", "user_id": "u1", "properties": {"plan": 3}},
                {"event": "Plan Chosen", "user_id": "u1", "properties": {}},
                {"event": "Plan Chosen", "user_id": "u1", "properties": {"plan": "pro"}},
            ]),
            &[Err("schema_violation"), Err("schema_violation"), Ok(())],
        )
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_team_is_refused_on_every_route() {
    let stack = start().await;
    // Team B has data, a plugin-free registry and a key; A's admin key must see none of it.
    let (other_key, _) = stack.create_key(OTHER, "admin", "team b").await;
    stack
        .send(
            &other_key,
            json!([event("Secret B Event", "b1", now_ms() - HOUR, json!({}))]),
            &[Ok(())],
        )
        .await;
    stack
        .send(
            INGEST_KEY,
            json!([event("A Event", "a1", now_ms() - HOUR, json!({}))]),
            &[Ok(())],
        )
        .await;
    stack
        .downstream
        .wait_for(2, Duration::from_secs(90))
        .await
        .unwrap();

    let result = drive(
        "cross-team",
        &stack.console.base,
        &stack.admin_key,
        &[OTHER, "Secret B Event", "A Event"],
        "cross-team",
    )
    .await;
    let routes = result["routes"].as_object().unwrap();
    let session = &routes["session"];
    assert_eq!(session["status"], 200, "{result}");
    assert_eq!(session["body"]["operator"], false, "{session}");
    assert_eq!(session["body"]["team"], TEAM, "{session}");
    assert_eq!(session["body"]["teams"], json!([TEAM]), "{session}");
    let mut checked = 0;
    for (name, answer) in routes.iter().filter(|(name, _)| *name != "session") {
        assert_eq!(answer["status"], 403, "{name}: {answer}");
        if !name.starts_with("gateway-") {
            assert_eq!(answer["code"], "forbidden", "{name}: {answer}");
        }
        checked += 1;
    }
    assert_eq!(checked, 12, "{result}");
    assert_eq!(
        result["team_picker"], 0,
        "a team key sees the operator's team picker"
    );
    assert_eq!(result["teams_requested"], json!([TEAM]), "{result}");
    assert_eq!(result["pages_seen"], 8, "{result}");
    assert_eq!(result["other_team_in_page"], false, "{result}");
    // The team's own event shows; the other team's never does.
    assert_eq!(result["texts_found"], json!(["A Event"]), "{result}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_signs_the_session_out() {
    let stack = start().await;
    let (key, key_id) = stack.create_key(TEAM, "admin", "to be revoked").await;
    let paused = drive_paused(
        "revoked",
        &stack.console.base,
        &key,
        &["--wait-stdin"],
        "revoked",
    )
    .await;
    stack.revoke_key(&key_id).await;
    // The console trusts its cached answer for auth.cache_ms: wait until it
    // refuses the key, then let the page load again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, answer) = stack.api(Some(&key), "/api/v1/session").await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(answer["error"]["code"], "revoked_api_key", "{answer}");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            Instant::now() < deadline,
            "the console still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = paused.resume().await;
    assert!(
        !result["message"].as_str().unwrap_or_default().is_empty(),
        "{result}"
    );
    assert_eq!(result["key_still_stored"], false, "{result}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_console_api_is_a_specific_4xx() {
    let stack = start().await;
    let now = now_ms();
    stack
        .send(
            INGEST_KEY,
            json!([
                event("Signed Up", "u1", now - HOUR, json!({"plan": "pro"})),
                event("Signed Up", "u2", now - HOUR, json!({"plan": "free"})),
            ]),
            &[Ok(()), Ok(())],
        )
        .await;
    stack.wait_counted(2).await;
    let key = Some(stack.admin_key.as_str());
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let iso = |ms: i64| Timestamp::from_millis(ms).to_rfc3339();
    let (from, to) = (enc(&iso(now - 24 * HOUR)), enc(&iso(now + HOUR)));
    let series = format!("/api/v1/teams/{TEAM}/series/events");

    // Sanity: the same route with good parameters has the team's data.
    let (status, answer) = stack
        .api(
            key,
            &format!("{series}?from={from}&to={to}&granularity=hour"),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let total: u64 = answer["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_u64().unwrap())
        .sum();
    if total != 2 {
        let hourly = sql(&format!(
            "SELECT team_id, toString(hour), event, sum(events) FROM {}.rollups_hourly \
             GROUP BY team_id, hour, event FORMAT TSV",
            stack.db()
        ))
        .await
        .unwrap();
        panic!("from={from} to={to}: {answer}; rollups_hourly holds:\n{hourly}");
    }

    let cases: Vec<(String, u16, &[&str])> = vec![
        (
            format!("{series}?from=yesterday&to={to}&granularity=hour"),
            400,
            &["invalid_range"],
        ),
        (
            format!("{series}?from={from}&to=2026-13-45T99:00:00Z&granularity=hour"),
            400,
            &["invalid_range"],
        ),
        (
            format!("{series}?from={to}&to={from}&granularity=hour"),
            400,
            &["invalid_range"],
        ),
        (
            format!("{series}?from={to}&to={to}&granularity=hour"),
            400,
            &["invalid_range"],
        ),
        (
            format!("{series}?from=1970-01-01T00:00:00Z&to={to}&granularity=5m"),
            400,
            &["invalid_range"],
        ),
        (
            format!("{series}?from={from}&to={to}&granularity=week"),
            400,
            &["invalid_parameter"],
        ),
        (
            format!("{series}?from={from}&to={to}&granularity=5m%27%20OR%201%3D1%20--"),
            400,
            &["invalid_parameter"],
        ),
        (
            format!("/api/v1/teams/{TEAM}/top-events?from={from}&to={to}&limit=0"),
            400,
            &["invalid_parameter"],
        ),
        (
            format!("/api/v1/teams/{TEAM}/top-events?from={from}&to={to}&limit=101"),
            400,
            &["invalid_parameter"],
        ),
        (
            format!("/api/v1/teams/{TEAM}/top-events?from={from}&to={to}&limit=1%3B%20DROP"),
            400,
            &["invalid_parameter"],
        ),
        (
            format!("/api/v1/teams/{TEAM}/series/dau?from=not-a-time&to={to}"),
            400,
            &["invalid_range"],
        ),
        (
            format!(
                "/api/v1/teams/{}/series/events?from={from}&to={to}&granularity=hour",
                enc("' OR 1=1 --")
            ),
            403,
            &["forbidden", "invalid_parameter"],
        ),
        (
            format!(
                "/api/v1/teams/{}/top-events?from={from}&to={to}",
                enc("x'); DROP TABLE events; --")
            ),
            403,
            &["forbidden", "invalid_parameter"],
        ),
        (
            format!("/api/v1/teams/{OTHER}/series/events?from={from}&to={to}&granularity=hour"),
            403,
            &["forbidden"],
        ),
    ];
    for (path, want, codes) in &cases {
        let (status, answer) = stack.api(key, path).await;
        let code = answer["error"]["code"].as_str().unwrap_or_default();
        // A team that is not yours may be refused as malformed first.
        let ok = status.as_u16() == *want && codes.contains(&code)
            || (*want == 403 && status == 400 && code == "invalid_parameter");
        assert!(ok, "{path}: {status} {answer}, want {want} {codes:?}");
        assert!(answer["error"]["message"].is_string(), "{path}: {answer}");
    }

    // SQL in an event or property name is a name like any other: a valid
    // name with no events (200, nothing), or refused as malformed; never
    // the team's data, never a server error.
    let none: BTreeMap<String, u64> = [("(none)".to_owned(), 2)].into();
    for evil in [
        "' OR 1=1 --",
        "x'); DROP TABLE events; --",
        "Signed Up' OR '1'='1",
    ] {
        for (path, want) in [
            (
                format!(
                    "{series}?from={from}&to={to}&granularity=hour&event={}",
                    enc(evil)
                ),
                BTreeMap::new(),
            ),
            (
                format!(
                    "/api/v1/teams/{TEAM}/breakdown?from={from}&to={to}&event={}&property=plan",
                    enc(evil)
                ),
                BTreeMap::new(),
            ),
            // A property nobody sent: both events lack it.
            (
                format!(
                    "/api/v1/teams/{TEAM}/breakdown?from={from}&to={to}&event=Signed%20Up&property={}",
                    enc(evil)
                ),
                none.clone(),
            ),
        ] {
            let (status, answer) = stack.api(key, &path).await;
            match status.as_u16() {
                200 => assert_eq!(shown(&answer["points"]), want, "{path}: {answer}"),
                400 => assert_eq!(
                    answer["error"]["code"], "invalid_parameter",
                    "{path}: {answer}"
                ),
                _ => panic!("{path}: {status} {answer}"),
            }
        }
    }
    let stored = number(&format!(
        "SELECT count() FROM {}.events FORMAT TSV",
        stack.db()
    ))
    .await;
    assert_eq!(stored, 2, "the events table lost rows");

    // An event nobody sent: 200 with no points.
    let (status, answer) = stack
        .api(
            key,
            &format!("{series}?from={from}&to={to}&granularity=hour&event=Never%20Sent"),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(shown(&answer["points"]), BTreeMap::new(), "{answer}");

    // Who may ask.
    let good = format!("{series}?from={from}&to={to}&granularity=hour");
    for (key, status, code) in [
        (None, 401, "missing_api_key"),
        (Some("sk_not_a_key_0123456789"), 401, "invalid_api_key"),
        (Some(INGEST_KEY), 403, "forbidden"),
    ] {
        let (got, answer) = stack.api(key, &good).await;
        assert_eq!(got.as_u16(), status, "{key:?}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{key:?}: {answer}");
    }
    let (status, answer) = stack.api(key, "/api/v1/no-such-route").await;
    assert_eq!(status, 404, "{answer}");

    // A 50 MB component through the console's proxy: refused as too large
    // (the gateway's `plugin_too_large`, or the proxy's own limit).
    let response = stack
        .http
        .put(stack.console.url(&format!(
            "/api/v1/gateway/admin/v1/teams/{TEAM}/plugins/huge/versions/1.0.0?kind=validator"
        )))
        .bearer_auth(&stack.admin_key)
        .header("content-type", "application/wasm")
        .body(vec![0_u8; 50 * 1024 * 1024])
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        }
        // A server may answer 413 and close before the body is sent; the
        // client then sees a reset. That is no 500 but proves nothing
        // either: fail with what happened.
        Err(err) => panic!("the 50 MB upload ended without an answer: {err}"),
    }
    stack.stop().await;
}

/// The trace backend's addresses (`scripts/stack jaeger up`, then
/// `eval "$(scripts/stack env)"`); the test fails, never skips, without them.
fn tracing_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the trace backend with `scripts/stack jaeger up` and run `eval \"$(scripts/stack env)\"`")
    })
}

/// From an accepted event to its trace in the page: the request's spans
/// exported by the gateway binary, and the batches of the loader and the
/// aggregator (here in this process, exporting as `sluice-loader`) that link
/// to it through the record's `traceparent` header, drawn as one waterfall.
/// Another team's session is told the trace does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_trace_opens_as_one_waterfall_with_its_linked_batches() {
    let otlp = tracing_env("SLUICE_OTLP_ENDPOINT");
    tracing_env("SLUICE_JAEGER_QUERY_URL");
    // The in-process loader and aggregator export their batch spans; kept
    // for the life of the test binary (other tests' spans are exported too,
    // harmlessly).
    std::mem::forget(sluice_core::trace::init_with_endpoint(
        "sluice-loader",
        "test",
        &otlp,
    ));
    let stack = start().await;
    stack
        .send(
            INGEST_KEY,
            json!([event("Traced", "u-trace", now_ms(), json!({}))]),
            &[Ok(())],
        )
        .await;
    let records = sluice_tests::read_records(&stack.topics.raw, 1).await;
    assert_eq!(records.len(), 1, "one record in events.raw");
    let traceparent = records[0]
        .headers
        .get("traceparent")
        .expect("the gateway exports traces, so its record carries traceparent");
    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();

    // Spans reach Jaeger in batches (every few seconds per process): wait
    // for the request's spans and a linked batch.
    let path = format!("/api/v1/teams/{TEAM}/traces/{trace_id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let (status, answer) = stack.api(Some(&stack.admin_key), &path).await;
        let spans = answer["spans"].as_array().cloned().unwrap_or_default();
        let has = |name: &str| spans.iter().any(|s| s["name"] == name);
        if status == StatusCode::OK && has("ingest") && spans.iter().any(|s| s["linked"] == true) {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "no trace with its linked batches within 60 s: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let spans = answer["spans"].as_array().unwrap();
    let ids: Vec<&str> = spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    for span in spans {
        // Every parent is in the answer (or the span is the root): the
        // waterfall is one tree, the batches hanging under the request.
        if let Some(parent) = span["parent_id"].as_str() {
            assert!(ids.contains(&parent), "{span} hangs from a span not shown");
        }
    }
    let linked: Vec<&Value> = spans.iter().filter(|s| s["linked"] == true).collect();
    assert!(
        linked.iter().all(|s| s["service"] == "sluice-loader"),
        "{linked:?}"
    );

    let result = drive(
        "trace",
        &stack.console.base,
        &stack.admin_key,
        &[&trace_id],
        "trace",
    )
    .await;
    assert_errorless(&result);
    let shown: Vec<&str> = result["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        shown.len(),
        names.len(),
        "one row per span: {shown:?} vs {names:?}"
    );
    assert!(shown.contains(&"ingest"), "{shown:?}");
    for span in &linked {
        let name = span["name"].as_str().unwrap();
        assert!(
            shown.contains(&name),
            "the linked batch {name} is drawn: {shown:?}"
        );
    }

    // Another team's admin sees no such trace.
    let (other_key, _) = stack.create_key(OTHER, "admin", "other team").await;
    let (status, answer) = stack
        .api(
            Some(&other_key),
            &format!("/api/v1/teams/{OTHER}/traces/{trace_id}"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "not_found");
    let (status, _) = stack.api(Some(&other_key), &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    stack.stop().await;
}
