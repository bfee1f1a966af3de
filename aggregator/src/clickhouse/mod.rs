//! The aggregator's ClickHouse layer. Probing and the migration runner are
//! the loader's ([`sluice_loader::clickhouse`]); the tables are ours.
//!
//! - [`schema`]: `rollups_5m`, the hourly and daily rollups, daily active
//!   users, and the views that feed them.
//! - [`rows`]: the RowBinary bytes of one rollup row.
//! - [`store`]: connect, insert, and read back what is stored.

pub mod rows;
pub mod schema;
pub mod store;

pub use store::{InsertOutcome, RollupStore};
