//! The `sluice` command line: what people run to try, operate and develop
//! with Sluice.
//!
//! - [`sample`]: `sluice send-sample`, sends a demo batch through a gateway and
//!   proves every accepted event reached Kafka.
//! - [`admin`]: `sluice keys`, a client of the gateway's admin API.
//! - [`plugin`]: `sluice plugin new|build|test|run|upload`, in every plugin language.
//! - [`schema`]: `sluice schema register|check`, for pull-request checks.
//! - [`dlq`]: `sluice dlq list|replay`, the dead-letter topic read back and
//!   re-driven through a gateway.
//! - [`stats`]: `sluice stats`, the dashboards' numbers from the rollups.
//!
//! The command line itself (the clap definitions, one module per command
//! group, and the calls into these modules) is the binary's: `main.rs` and
//! `commands/`.

pub mod admin;
pub mod dlq;
pub mod plugin;
pub mod sample;
pub mod schema;
pub mod stats;
