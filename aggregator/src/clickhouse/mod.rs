//! The aggregator's ClickHouse tables. Probing, the migration runner,
//! inserts' outcomes and retention are the shared layer's
//! ([`sluice_clickhouse`]); the tables are ours.
//!
//! - [`schema`]: `rollups_5m`, the hourly and daily rollups, daily active
//!   users, and the views that feed them.
//! - [`rows`]: the RowBinary bytes of one rollup row.
//! - [`store`]: connect, insert, and read back what is stored.

pub mod rows;
pub mod schema;
pub mod store;

pub use sluice_clickhouse::InsertOutcome;
pub use store::RollupStore;
