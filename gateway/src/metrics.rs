//! The gateway's Prometheus metrics: names and help texts (the periodic
//! sampling of gauges is [`crate::gauges`]). Rendered at `GET /metrics`.
//!
//! Labels are bounded sets (route names, status codes, reason codes), never
//! team ids or user input, so series count cannot grow with traffic.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const REQUESTS: &str = "sluice_gateway_requests_total";
pub const EVENTS: &str = "sluice_gateway_events_total";
pub const REQUEST_BYTES: &str = "sluice_gateway_request_bytes_total";
pub const PRE_AUTH_DECODED_BYTES: &str = "sluice_gateway_pre_auth_decoded_bytes_total";
pub const REQUEST_DURATION: &str = "sluice_gateway_request_duration_seconds";
pub const PROCESSING_DURATION: &str = "sluice_gateway_processing_duration_seconds";
pub const PRODUCE_DURATION: &str = "sluice_gateway_produce_duration_seconds";
pub const RATE_LIMITED: &str = "sluice_gateway_rate_limited_events_total";
pub const DLQ_WRITE_FAILURES: &str = "sluice_gateway_dlq_write_failures_total";
pub const IN_FLIGHT: &str = "sluice_gateway_in_flight_requests";
pub const CONNECTIONS: &str = "sluice_gateway_connections_open";
pub const MEMORY_RESERVED: &str = "sluice_gateway_memory_reserved_bytes";
pub const RESIDENT_MEMORY: &str = "sluice_gateway_resident_memory_bytes";
pub const ALLOCATED_MEMORY: &str = "sluice_gateway_allocator_allocated_bytes";
pub const ALLOCATOR_RESIDENT: &str = "sluice_gateway_allocator_resident_bytes";
pub const MEMORY_LIMIT_EXCEEDED: &str = "sluice_gateway_memory_limit_exceeded";
pub const MEMORY_LIMIT_REFUSALS: &str = "sluice_gateway_memory_limit_refusals_total";
pub const PRODUCER_QUEUE: &str = "sluice_gateway_producer_queue_messages";
pub const KAFKA_REACHABLE: &str = "sluice_gateway_kafka_reachable";
pub const READY: &str = "sluice_gateway_ready";

/// Registers help texts. Idempotent.
pub fn describe() {
    describe_counter!(REQUESTS, "HTTP requests by route and status code.");
    describe_counter!(
        EVENTS,
        "Events by outcome (accepted, rejected, failed) and reason code."
    );
    describe_counter!(
        REQUEST_BYTES,
        Unit::Bytes,
        "Request body bytes as received (before decompression)."
    );
    describe_counter!(
        PRE_AUTH_DECODED_BYTES,
        Unit::Bytes,
        "Bytes of compressed bodies decoded before the key they carry was checked (PostHog, Segment writeKey; at most ingest.max_pre_auth_decoded_bytes + 1 per request)."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Whole ingest request time, including waiting for Kafka."
    );
    describe_histogram!(
        PROCESSING_DURATION,
        Unit::Seconds,
        "Ingest request time spent in the gateway itself: decode, validate, serialise, excluding body upload and Kafka acknowledgement."
    );
    describe_histogram!(
        PRODUCE_DURATION,
        Unit::Seconds,
        "From enqueueing a batch's records to Kafka's last acknowledgement."
    );
    describe_counter!(
        RATE_LIMITED,
        "Events in requests refused with 429 by the per-key rate limit."
    );
    describe_counter!(
        DLQ_WRITE_FAILURES,
        "Rejected events whose dead-letter copy Kafka did not acknowledge."
    );
    describe_gauge!(IN_FLIGHT, "Ingest requests being processed.");
    describe_gauge!(
        CONNECTIONS,
        "HTTP connections open (at most admission.max_connections)."
    );
    describe_gauge!(
        MEMORY_RESERVED,
        Unit::Bytes,
        "Bytes reserved by in-flight requests from the memory budget."
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "The process's resident memory (all of it: heap, librdkafka, plugin instances, code)."
    );
    describe_gauge!(
        MEMORY_LIMIT_EXCEEDED,
        "1 while resident memory is at admission.max_resident_bytes (ingest requests refused)."
    );
    describe_counter!(
        MEMORY_LIMIT_REFUSALS,
        "Ingest requests refused with 503 because resident memory was at admission.max_resident_bytes."
    );
    describe_gauge!(
        ALLOCATED_MEMORY,
        Unit::Bytes,
        "Bytes in live allocations, as the allocator reports them."
    );
    describe_gauge!(
        ALLOCATOR_RESIDENT,
        Unit::Bytes,
        "Bytes the allocator holds resident: live allocations, fragmentation and freed pages not yet returned."
    );
    describe_gauge!(
        PRODUCER_QUEUE,
        "Records handed to the producer and not yet acknowledged."
    );
    describe_gauge!(KAFKA_REACHABLE, "1 when the last Kafka probe succeeded.");
    describe_gauge!(READY, "1 when /readyz answers 200.");
    sluice_plugin_host::metrics::describe();
}
