//! Sluice's shared core: everything two or more Sluice processes must agree on.
//!
//! - [`event`]: the event contract carried as the value of `events.raw`, and the
//!   shape clients send to the native ingest API.
//! - [`timestamp`]: millisecond UTC timestamps with one canonical wire format.
//! - [`json_text`]: the one-pass check of raw `properties`/`context` text
//!   (depth, numbers, Unicode).
//! - [`validate`]: per-event rules and the stable reject codes clients and the
//!   dead-letter topic see.
//! - [`kafka`]: topic and header names, partition keys, and client settings
//!   shared by the gateway, the loader, the aggregator and the CLI.
//! - [`readback`]: reading a topic from known offsets or times, and a
//!   group's committed offsets, without joining any group (the CLI, the
//!   console and the tests).
//! - [`config`]: typed configuration from defaults, a TOML file and environment.
//! - [`dedup`]: which records are retries of an event already kept (first
//!   copy wins), the rule the loader and the aggregator share.
//! - [`telemetry`]: structured logging and the Prometheus recorder.
//! - [`trace`]: OpenTelemetry tracing set-up and `traceparent` in Kafka headers.
//! - [`table`]: a key-value table replicated through a compacted Kafka topic
//!   (API keys, plugin records, schemas: state every gateway replica must see).
//! - [`service`]: readiness, health/metrics routes and rebalance bookkeeping
//!   shared by the consumer services.
//! - [`shutdown`]: SIGINT/SIGTERM for graceful shutdown.
//! - [`backoff`]: exponential backoff between retries.
//! - [`clock`]: an injectable clock so time-dependent code is testable.
//!
//! The Kafka client, HTTP, logging and tracing parts (`readback`, `service`,
//! `table`, `telemetry`, `trace`, and the client side of `kafka`) need the
//! `runtime` feature, on by default; without it this is the event contract
//! alone, which the fuzz targets (`fuzz/`) build without librdkafka's C
//! build.

pub mod backoff;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod event;
pub mod json_text;
pub mod kafka;
#[cfg(feature = "runtime")]
pub mod readback;
#[cfg(feature = "runtime")]
pub mod service;
pub mod shutdown;
#[cfg(feature = "runtime")]
pub mod table;
#[cfg(feature = "runtime")]
pub mod telemetry;
pub mod timestamp;
#[cfg(feature = "runtime")]
pub mod trace;
pub mod validate;

pub use event::{Event, IncomingEvent};
pub use timestamp::Timestamp;
pub use validate::{Limits, Reject, RejectCode};
