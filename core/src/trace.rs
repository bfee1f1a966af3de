//! Distributed tracing: OpenTelemetry over OTLP, and the W3C `traceparent`
//! carried in Kafka headers from the gateway to the consumers.
//!
//! Configured by the standard `OTEL_*` environment variables, read by the
//! OpenTelemetry SDK itself:
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`):
//!   where to send spans, OTLP over HTTP/protobuf (`http://host:4318`). Unset:
//!   tracing is off, no exporter and no OpenTelemetry layer, so spans cost
//!   what a disabled `tracing` span costs.
//! - `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: off even with an
//!   endpoint.
//! - `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: sampling
//!   (default `parentbased_always_on`).
//! - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`: override the service
//!   name (default: the binary's name) and add resource attributes.
//!   `service.version` and `service.instance.id` are always set.
//!
//! Consumers do not continue the producer's trace (one batch holds records of
//! many requests): a batch span is a root span with one span *link* per
//! distinct producing trace, at most [`MAX_LINKS`].

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{self, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Span links kept per consumer batch span. Beyond this, further producing
/// traces are counted in `sluice.links_dropped` but not linked: backends
/// handle a few hundred links per span badly, and 128 traces are plenty to
/// follow a sample of a batch's events back to their requests.
pub const MAX_LINKS: usize = 128;

/// Keeps the tracer provider alive; [`TelemetryGuard::shutdown`] flushes the
/// spans still buffered. Dropping it without `shutdown` loses them.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Is an exporter installed?
    pub fn tracing_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports buffered spans and stops the exporter. Blocking (the OTLP
    /// client is synchronous), so it runs on the blocking pool.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(Duration::from_secs(10), done).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "flushing traces failed"),
            Ok(Err(_)) | Err(_) => tracing::warn!("flushing traces did not finish"),
        }
    }
}

/// Is an OTLP traces endpoint configured and the SDK not disabled?
fn exporter_wanted(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let no_exporter =
        var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled
        && !no_exporter
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Builds the tracer provider: to `endpoint` (an OTLP/HTTP base URL) if
/// given, else where the `OTEL_EXPORTER_OTLP_*` variables say.
fn provider(
    service: &str,
    version: &'static str,
    endpoint: Option<&str>,
) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(endpoint) = endpoint {
        exporter = exporter.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
    }
    let exporter = exporter.build()?;
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", version))
        .with_attribute(KeyValue::new(
            "service.instance.id",
            uuid::Uuid::new_v4().to_string(),
        ));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Installs the global subscriber: logs (see [`crate::telemetry`]) and, when
/// an OTLP endpoint is configured, the OpenTelemetry layer. Call once, first
/// thing in `main`, with the binary's name and version; keep the guard until
/// shutdown.
pub fn init(service: &'static str, version: &'static str) -> TelemetryGuard {
    let wanted = exporter_wanted(|name| std::env::var(name).ok());
    install(service, version, wanted, None)
}

/// Like [`init`], exporting to the OTLP/HTTP base URL `endpoint` whatever the
/// environment says (tests, which cannot set process environment safely).
pub fn init_with_endpoint(service: &str, version: &'static str, endpoint: &str) -> TelemetryGuard {
    install(service, version, true, Some(endpoint))
}

fn install(
    service: &str,
    version: &'static str,
    wanted: bool,
    endpoint: Option<&str>,
) -> TelemetryGuard {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = if wanted {
        match provider(service, version, endpoint) {
            Ok(provider) => Some(provider),
            Err(err) => {
                // Logging is not up yet; a broken exporter must not stop ingest.
                eprintln!("OpenTelemetry exporter not started, tracing is off: {err:#}");
                None
            }
        }
    } else {
        None
    };
    // Logs take events only: span fields formatted for the log layer cost
    // microseconds per request.
    // `try_init` so tests that call this twice do not panic.
    if let Some(provider) = &provider {
        // Spans of our own crates and the events inside them, whatever the
        // log level: `RUST_LOG=warn` must not silently turn tracing off.
        let spans = filter::Targets::new()
            .with_target("sluice", tracing::Level::INFO)
            .with_default(tracing::Level::WARN);
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service.to_owned()))
            .with_filter(spans);
        let _ = tracing_subscriber::registry()
            .with(crate::telemetry::log_layer().with_filter(filter().and(EventsOnly)))
            .with(otel)
            .try_init();
    } else {
        // Global filters only: nothing listens to spans, so every span call
        // site is disabled once and costs a few nanoseconds per request
        // (per-layer filters would re-check each span every time).
        let _ = tracing_subscriber::registry()
            .with(filter())
            .with(EventsOnly)
            .with(crate::telemetry::log_layer())
            .try_init();
    }
    TelemetryGuard { provider }
}

use tracing_subscriber::Layer as _;

/// A filter (global or per layer) passing events and never spans, decided once per
/// call site (so a disabled span is not re-checked on every request).
#[derive(Debug, Clone, Copy)]
struct EventsOnly;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventsOnly {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing_subscriber::layer::Filter::<S>::callsite_enabled(self, meta)
    }

    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        !meta.is_span()
    }
}

impl<S> tracing_subscriber::layer::Filter<S> for EventsOnly {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        !meta.is_span()
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if meta.is_span() {
            tracing::subscriber::Interest::never()
        } else {
            tracing::subscriber::Interest::always()
        }
    }
}

/// The current span's context as a W3C `traceparent` value, if the current
/// span is being traced (tracing on, span recorded).
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| traceparent(span_context))
}

/// `00-{trace id}-{span id}-{flags}`.
pub fn traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Parses a W3C `traceparent` header (version 00, or a later version's
/// first four fields). `None` for anything malformed or all-zero ids.
pub fn parse_traceparent(value: &[u8]) -> Option<SpanContext> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.trim().split('-');
    let version = parts.next()?;
    let (trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2
        || version == "ff"
        || (version == "00" && parts.next().is_some())
        || trace_id.len() != 32
        || span_id.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(hex(version) && hex(trace_id) && hex(span_id) && hex(flags)) {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::NONE,
    );
    context.is_valid().then_some(context)
}

/// The producing traces of one consumer batch, deduplicated by trace id and
/// capped at [`MAX_LINKS`], to attach to the batch span as links.
#[derive(Debug, Default)]
pub struct TraceLinks {
    links: Vec<SpanContext>,
    dropped: u64,
}

impl TraceLinks {
    /// Adds the trace of a record's `traceparent` header, if any.
    pub fn add_header(&mut self, value: Option<&[u8]>) {
        if let Some(context) = value.and_then(parse_traceparent) {
            self.add(context);
        }
    }

    pub fn add(&mut self, context: SpanContext) {
        // Linear scan: at most MAX_LINKS entries, and most batches come from
        // a handful of requests.
        if self
            .links
            .iter()
            .any(|known| known.trace_id() == context.trace_id())
        {
            return;
        }
        if self.links.len() >= MAX_LINKS {
            self.dropped += 1;
        } else {
            self.links.push(context);
        }
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Attaches the links to `span` (a no-op when tracing is off), leaving
    /// this set empty for the next batch.
    pub fn attach(&mut self, span: &tracing::Span) {
        if self.dropped > 0 {
            span.set_attribute("sluice.links_dropped", self.dropped as i64);
        }
        for context in self.links.drain(..) {
            span.add_link(context);
        }
        self.dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips() {
        let context = parse_traceparent(HEADER.as_bytes()).expect("valid header");
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(context.is_sampled());
        assert!(context.is_remote());
        assert_eq!(traceparent(&context), HEADER);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad.as_bytes()).is_none(), "{bad}");
        }
        // A later version may append fields.
        assert!(parse_traceparent(format!("01{}-x", &HEADER[2..]).as_bytes()).is_some());
    }

    #[test]
    fn links_are_deduplicated_by_trace_and_capped() {
        let mut links = TraceLinks::default();
        links.add_header(Some(HEADER.as_bytes()));
        links.add_header(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01".as_bytes(),
        ));
        links.add_header(None);
        assert_eq!(links.len(), 1);
        for i in 1..=(MAX_LINKS as u128 + 10) {
            links.add(SpanContext::new(
                TraceId::from(i),
                SpanId::from(1),
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            ));
        }
        assert_eq!(links.len(), MAX_LINKS);
        assert_eq!(links.dropped, 11);
        links.attach(&tracing::Span::none());
        assert!(links.is_empty());
        assert_eq!(links.dropped, 0);
    }

    #[test]
    fn exporter_only_with_an_endpoint_and_not_disabled() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(!exporter_wanted(env(&[])));
        assert!(exporter_wanted(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318"
        )])));
        assert!(exporter_wanted(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces"
        )])));
        assert!(!exporter_wanted(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ])));
        assert!(!exporter_wanted(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])));
    }
}
