//! One trace as a waterfall, read from Jaeger's query API
//! (`GET /api/traces/{id}`), reduced to what the page draws. A team's
//! session sees a trace only when its gateway request was for that team
//! (the `ingest` span's `team` attribute); the operator sees every trace.
//!
//! The loader and the aggregator work in batches, each batch span in a trace
//! of its own that *links* to the requests it carried (OTLP links, Jaeger
//! `FOLLOWS_FROM` references). Jaeger cannot search by link, so the batch
//! traces of those services that started within [`LINK_WINDOW_US`] after the
//! request are read and the ones linking to it are shown under the span they
//! link to.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Session;
use crate::error::ApiError;
use crate::state::AppState;

/// How long after a request its batches are looked for (the loader and the
/// aggregator flush within seconds; a stalled pipeline shows no batch).
const LINK_WINDOW_US: u64 = 120_000_000;
/// Batch traces read per service and request.
const LINK_SEARCH_LIMIT: usize = 500;
/// The services whose batch spans link to requests.
const LINKED_SERVICES: &[&str] = &["sluice-loader", "sluice-aggregator"];

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Option<Vec<Trace>>,
}

#[derive(Deserialize)]
struct Trace {
    spans: Vec<Span>,
    processes: std::collections::BTreeMap<String, Process>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    #[serde(rename = "spanID")]
    span_id: String,
    operation_name: String,
    #[serde(default)]
    references: Vec<Reference>,
    start_time: u64,
    duration: u64,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "processID")]
    process_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize)]
struct Tag {
    key: String,
    value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    service_name: String,
}

fn is_trace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn trace(
    State(state): State<AppState>,
    session: Session,
    Path((team, trace_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    session.check_team(&team)?;
    if !is_trace_id(&trace_id) {
        return Err(ApiError::InvalidParameter(
            "a trace id is 32 hexadecimal digits".to_owned(),
        ));
    }
    let base = state.config.tracing.jaeger_url.trim_end_matches('/');
    if base.is_empty() {
        return Err(ApiError::TracingUnavailable(
            "tracing.jaeger_url is not set".to_owned(),
        ));
    }
    let trace_id = trace_id.to_ascii_lowercase();
    let mut traces = query(&state, &format!("{base}/api/traces/{trace_id}")).await?;
    let Some(trace) = traces.pop() else {
        return Err(ApiError::NotFound(format!("trace {trace_id}")));
    };
    let of_team = trace.spans.iter().any(|span| {
        span.tags
            .iter()
            .any(|tag| tag.key == "team" && tag.value.as_str() == Some(team.as_str()))
    });
    // Someone else's trace looks like no trace at all.
    if !of_team && !session.operator {
        return Err(ApiError::NotFound(format!("trace {trace_id}")));
    }
    let start = trace.spans.iter().map(|s| s.start_time).min().unwrap_or(0);
    let mut spans = views(&trace, None);
    for service in LINKED_SERVICES {
        let url = format!(
            "{base}/api/traces?service={service}&start={start}&end={}&limit={LINK_SEARCH_LIMIT}",
            start + LINK_WINDOW_US
        );
        // The request's own spans are the answer; batches are a bonus that
        // a slow or pruned trace store may not have.
        let Ok(batches) = query(&state, &url).await else {
            continue;
        };
        for batch in &batches {
            spans.extend(views(batch, Some(&trace_id)));
        }
    }
    spans.sort_by_key(|span| span["start_us"].as_u64());
    Ok(Json(json!({ "trace_id": trace_id, "spans": spans })))
}

/// Traces from a Jaeger query URL; a missing trace is an empty list.
async fn query(state: &AppState, url: &str) -> Result<Vec<Trace>, ApiError> {
    let answer = state
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| ApiError::TracingUnavailable(format!("Jaeger: {e}")))?;
    if answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(Vec::new());
    }
    if !answer.status().is_success() {
        return Err(ApiError::TracingUnavailable(format!(
            "Jaeger answered {}",
            answer.status()
        )));
    }
    let answer: Answer = answer
        .json()
        .await
        .map_err(|e| ApiError::TracingUnavailable(format!("Jaeger's answer: {e}")))?;
    Ok(answer.data.unwrap_or_default())
}

/// The spans of `trace` as the page draws them. With `linked_to`, only the
/// spans of a batch trace that links to that trace (and their children),
/// each link drawn as a parent.
fn views(trace: &Trace, linked_to: Option<&str>) -> Vec<Value> {
    let mut keep: Vec<&Span> = Vec::new();
    match linked_to {
        None => keep.extend(&trace.spans),
        Some(request) => {
            let linked: Vec<&Span> = trace
                .spans
                .iter()
                .filter(|span| {
                    span.references
                        .iter()
                        .any(|r| r.ref_type == "FOLLOWS_FROM" && r.trace_id == request)
                })
                .collect();
            let roots: Vec<&str> = linked.iter().map(|s| s.span_id.as_str()).collect();
            keep.extend(linked);
            keep.extend(trace.spans.iter().filter(|span| {
                span.references
                    .iter()
                    .any(|r| r.ref_type == "CHILD_OF" && roots.contains(&r.span_id.as_str()))
            }));
        }
    }
    keep.into_iter()
        .map(|span| {
            let parent = span
                .references
                .iter()
                .find(|r| r.ref_type == "CHILD_OF")
                .or_else(|| {
                    span.references.iter().find(|r| {
                        r.ref_type == "FOLLOWS_FROM" && Some(r.trace_id.as_str()) == linked_to
                    })
                })
                .map(|r| r.span_id.clone());
            let attributes: serde_json::Map<String, Value> = span
                .tags
                .iter()
                .map(|tag| (tag.key.clone(), tag.value.clone()))
                .collect();
            json!({
                "span_id": span.span_id,
                "parent_id": parent,
                "service": trace.processes.get(&span.process_id).map(|p| p.service_name.as_str()),
                "name": span.operation_name,
                "start_us": span.start_time,
                "duration_us": span.duration,
                "linked": linked_to.is_some(),
                "attributes": attributes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn trace_ids_are_32_hex_digits() {
        assert!(super::is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!super::is_trace_id("4bf92f3577b34da6a3ce929d0e0e473"));
        assert!(!super::is_trace_id("' OR 1=1 --4bf92f3577b34da6a3ce9"));
    }
}
