//! The page's read API under `/api/v1` (documented in `docs/console.md`):
//! dashboards from the rollups, the explorer's breakdown from raw events,
//! rejections from the dead-letter topic, live events, pipeline health.
//! Every handler checks the caller may read the team before anything else,
//! then validates its parameters; no parameter reaches SQL unescaped.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_clickhouse::dashboard::{Granularity, Point};
use sluice_core::Timestamp;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Session;
use crate::error::ApiError;
use crate::state::AppState;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Every parameter any read endpoint takes; each uses what it needs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    granularity: Option<String>,
    event: Option<String>,
    property: Option<String>,
    limit: Option<u32>,
}

/// A call about one team's data: signed in (401/403 otherwise), for a team
/// the caller may read (403), with well-formed parameters (400), checked in
/// that order before the handler runs.
#[derive(Debug)]
pub struct TeamCall {
    pub team: String,
    pub params: Params,
}

impl FromRequestParts<AppState> for TeamCall {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        let Path(team) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
        team_checked(&session, &team)?;
        let Query(params) = Query::<Params>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
        Ok(Self { team, params })
    }
}

/// `[from, to)` from the parameters: `to` defaults to now, `from` to `to`
/// minus `default_ms`; at most `max_ms` long.
fn range(
    params: &Params,
    default_ms: i64,
    max_ms: i64,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let parse = |name: &str, text: &str| {
        Timestamp::parse_rfc3339(text).map_err(|e| {
            ApiError::InvalidRange(format!(
                "`{name}` must be an RFC 3339 time like 2026-12-07T10:00:00Z: {e}"
            ))
        })
    };
    let to = match &params.to {
        Some(text) => parse("to", text)?,
        None => Timestamp::now(),
    };
    let from = match &params.from {
        Some(text) => parse("from", text)?,
        None => Timestamp::from_millis(to.as_millis() - default_ms),
    };
    if from >= to {
        return Err(ApiError::InvalidRange(
            "`from` must be before `to`".to_owned(),
        ));
    }
    if to.as_millis() - from.as_millis() > max_ms {
        return Err(ApiError::InvalidRange(format!(
            "the range may be at most {} days here",
            max_ms / DAY_MS
        )));
    }
    Ok((from, to))
}

fn limit(params: &Params) -> Result<u32, ApiError> {
    match params.limit {
        None => Ok(10),
        Some(n @ 1..=100) => Ok(n),
        Some(n) => Err(ApiError::InvalidParameter(format!(
            "`limit` must be 1 to 100, not {n}"
        ))),
    }
}

/// A name as users type it (event or property): 1 to 200 bytes, no
/// control characters. Anything else may appear: it is a bound value.
fn name<'a>(what: &str, value: Option<&'a str>) -> Result<&'a str, ApiError> {
    let value = value.ok_or_else(|| ApiError::InvalidParameter(format!("`{what}` is required")))?;
    if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
        return Err(ApiError::InvalidParameter(format!(
            "`{what}` must be 1 to 200 bytes without control characters"
        )));
    }
    Ok(value)
}

/// The caller may read `team`, and it is a well-formed team id (the
/// gateway's rule). Refusal first: another team's id is 403 whatever it is.
fn team_checked(session: &Session, team: &str) -> Result<(), ApiError> {
    session.check_team(team)?;
    let ok = !team.is_empty()
        && team.len() <= 64
        && team
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidParameter(
            "a team id is 1 to 64 characters of A-Z, a-z, 0-9, `-`, `_`, `.`".to_owned(),
        ))
    }
}

fn points(points: Vec<Point>) -> Json<Value> {
    Json(json!({ "points": points }))
}

pub async fn session(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let teams = match &session.team {
        Some(team) => vec![team.clone()],
        None => {
            // Teams with events lately, and teams with keys (a new team has
            // no events yet but is one the operator sets up).
            let now = Timestamp::now();
            let mut teams = state
                .dashboard
                .teams(Timestamp::from_millis(now.as_millis() - 30 * DAY_MS), now)
                .await
                .map_err(ApiError::clickhouse)?;
            teams.extend(teams_with_keys(&state, &session.key).await?);
            teams.sort();
            teams.dedup();
            teams
        }
    };
    Ok(Json(json!({
        "operator": session.operator,
        "team": session.team,
        "teams": teams,
    })))
}

/// The teams of every key, as the gateway's admin API lists them to the
/// operator.
async fn teams_with_keys(state: &AppState, operator_key: &str) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Keys {
        keys: Vec<Key>,
    }
    #[derive(Deserialize)]
    struct Key {
        team_id: String,
    }
    let url = format!(
        "{}/admin/v1/keys",
        state.config.gateway.admin_url.trim_end_matches('/')
    );
    let answer = state
        .http
        .get(url)
        .bearer_auth(operator_key)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| ApiError::GatewayUnavailable(e.into()))?;
    let keys: Keys = answer
        .json()
        .await
        .map_err(|e| ApiError::GatewayUnavailable(e.into()))?;
    Ok(keys.keys.into_iter().map(|k| k.team_id).collect())
}

pub async fn event_series(
    State(state): State<AppState>,
    TeamCall { team, params }: TeamCall,
) -> Result<Json<Value>, ApiError> {
    let granularity: Granularity = params
        .granularity
        .as_deref()
        .unwrap_or("5m")
        .parse()
        .map_err(ApiError::InvalidParameter)?;
    // Bounded by the points one chart can show.
    let max_ms = match granularity {
        Granularity::FiveMinutes => 7 * DAY_MS,
        Granularity::Hour => 92 * DAY_MS,
        Granularity::Day => 800 * DAY_MS,
    };
    let (from, to) = range(&params, DAY_MS, max_ms)?;
    let event = params
        .event
        .as_deref()
        .map(|e| name("event", Some(e)))
        .transpose()?;
    state
        .dashboard
        .event_counts(&team, from, to, granularity, event)
        .await
        .map(points)
        .map_err(ApiError::clickhouse)
}

pub async fn dau(
    State(state): State<AppState>,
    TeamCall { team, params }: TeamCall,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = range(&params, 30 * DAY_MS, 800 * DAY_MS)?;
    state
        .dashboard
        .dau(&team, from, to)
        .await
        .map(points)
        .map_err(ApiError::clickhouse)
}

pub async fn top_events(
    State(state): State<AppState>,
    TeamCall { team, params }: TeamCall,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = range(&params, 7 * DAY_MS, 800 * DAY_MS)?;
    state
        .dashboard
        .top_events(&team, from, to, limit(&params)?)
        .await
        .map(points)
        .map_err(ApiError::clickhouse)
}

pub async fn event_names(
    State(state): State<AppState>,
    TeamCall { team, params }: TeamCall,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = range(&params, 30 * DAY_MS, 800 * DAY_MS)?;
    let names = state
        .dashboard
        .event_names(&team, from, to, 1000)
        .await
        .map_err(ApiError::clickhouse)?;
    Ok(Json(json!({ "names": names })))
}

pub async fn breakdown(
    State(state): State<AppState>,
    TeamCall { team, params }: TeamCall,
) -> Result<Json<Value>, ApiError> {
    let event = name("event", params.event.as_deref())?;
    let property = name("property", params.property.as_deref())?;
    // Raw events: a month at most, within the server-side query limits.
    let range = range(&params, 7 * DAY_MS, 31 * DAY_MS)?;
    state
        .dashboard
        .breakdown(&team, event, property, range, limit(&params)?)
        .await
        .map(points)
        .map_err(ApiError::clickhouse)
}

fn rejection_points(counts: BTreeMap<String, u64>) -> Vec<Point> {
    let mut points: Vec<Point> = counts
        .into_iter()
        .map(|(label, value)| Point { label, value })
        .collect();
    points.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.label.cmp(&b.label)));
    points
}

/// Dead letters of the team by outcome and reason code, in the 5-minute
/// windows overlapping the range (see [`crate::rejections`]).
pub async fn rejections(
    State(state): State<AppState>,
    TeamCall { team, params }: TeamCall,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = range(&params, DAY_MS, 31 * DAY_MS)?;
    let counts = state.rejections.counts(&team, from, to);
    Ok(Json(json!({
        "rejected": rejection_points(counts.rejected),
        "dead_lettered": rejection_points(counts.dead_lettered),
        "truncated": counts.truncated,
    })))
}

pub async fn health(
    State(state): State<AppState>,
    TeamCall { team, .. }: TeamCall,
) -> Result<Json<Value>, ApiError> {
    let now = Timestamp::now();
    let newest = state
        .dashboard
        .newest_received_at(&team)
        .await
        .map_err(ApiError::clickhouse)?;
    let newest_event = newest.map(|t| {
        json!({
            "received_at": t.to_rfc3339(),
            "age_seconds": (now.as_millis() - t.as_millis()).max(0) / 1000,
        })
    });
    let hour_ago = Timestamp::from_millis(now.as_millis() - HOUR_MS);
    let accepted: u64 = state
        .dashboard
        .event_counts(&team, hour_ago, now, Granularity::FiveMinutes, None)
        .await
        .map_err(ApiError::clickhouse)?
        .iter()
        .map(|p| p.value)
        .sum();
    let rejections = state.rejections.counts(&team, hour_ago, now);
    let consumers = consumer_lag(&state).await?;
    Ok(Json(json!({
        "newest_event": newest_event,
        "consumers": consumers,
        "last_hour": {
            "accepted": accepted,
            "rejected": rejections.rejected.values().sum::<u64>(),
            "dead_lettered": rejections.dead_lettered.values().sum::<u64>(),
        },
    })))
}

/// Lag of each configured consumer group on `events.raw`, per partition.
/// Partitions are shared by every team: this is the pipeline's health, not
/// a team's data.
async fn consumer_lag(state: &AppState) -> Result<Vec<Value>, ApiError> {
    let kafka = state.config.kafka.clone();
    let topic = state.config.topics.raw.clone();
    let groups = state.config.topics.consumer_groups.clone();
    tokio::task::spawn_blocking(move || {
        let ends = sluice_core::readback::end_offsets(&kafka, &topic)?;
        let mut answer = Vec::new();
        for group in groups {
            let committed = sluice_core::readback::committed_offsets(
                &kafka,
                &group,
                &topic,
                ends.keys().copied(),
            )?;
            let mut total = 0;
            let partitions: Vec<Value> = ends
                .iter()
                .map(|(partition, end)| {
                    let committed = committed.get(partition).copied().flatten();
                    // Nothing committed: everything still to read.
                    let lag = (end - committed.unwrap_or(0)).max(0);
                    total += lag;
                    json!({"partition": partition, "committed": committed, "end": end, "lag": lag})
                })
                .collect();
            answer.push(
                json!({"group": group, "topic": topic, "partitions": partitions, "lag": total}),
            );
        }
        anyhow::Ok(answer)
    })
    .await
    .map_err(|e| ApiError::KafkaUnavailable(e.into()))?
    .map_err(ApiError::KafkaUnavailable)
}

/// `text/event-stream` of the team's records from now on.
pub async fn live(
    State(state): State<AppState>,
    TeamCall { team, params }: TeamCall,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let filter = params
        .event
        .as_deref()
        .map(|e| name("event", Some(e)))
        .transpose()?
        .map(str::to_owned);
    let receiver = state.live.subscribe().await?;
    let view = LiveView {
        receiver,
        closed: Box::pin(state.live.closed()),
        team,
        filter,
        ready_sent: false,
    };
    let stream = futures::stream::unfold(view, |mut view| async move {
        let event = view.next().await?;
        Some((Ok::<_, Infallible>(event), view))
    });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

/// One open live page. Dropped when the page goes away, which unsubscribes
/// it from the tail.
struct LiveView {
    receiver: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::live::Published>>,
    closed: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    team: String,
    filter: Option<String>,
    ready_sent: bool,
}

impl LiveView {
    async fn next(&mut self) -> Option<SseEvent> {
        if !self.ready_sent {
            // The tail is positioned: anything sent from now on will show.
            self.ready_sent = true;
            return Some(SseEvent::default().event("ready").data("{}"));
        }
        loop {
            let received = tokio::select! {
                received = self.receiver.recv() => received,
                () = &mut self.closed => return None,
            };
            match received {
                Ok(published) => {
                    let wanted = published.team == self.team
                        && self
                            .filter
                            .as_ref()
                            .is_none_or(|f| published.event.event.as_ref() == Some(f));
                    if wanted {
                        let data = serde_json::to_string(&published.event).ok()?;
                        return Some(SseEvent::default().event("event").data(data));
                    }
                }
                // A page too slow for the stream is told how much it missed.
                Err(RecvError::Lagged(missed)) => {
                    let data = json!({ "count": missed }).to_string();
                    return Some(SseEvent::default().event("missed").data(data));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
