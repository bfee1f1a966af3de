//! Sluice's ClickHouse layer: what the server can do, the schema it gets,
//! and how rows reach it. A crate below the services: the loader writes raw
//! events through it, the aggregator migrates and retains its rollups with
//! it, the CLI replays through it; none of them reaches into another.
//!
//! - [`probe`](mod@probe): server version and capability flags ([`Capabilities`]).
//! - [`schema`]: versioned migrations rendered for those capabilities
//!   ([`migrations`]), and the table layouts ([`RowLayout`]).
//! - [`migrate`](mod@migrate): applies them idempotently at start-up ([`migrate()`]).
//! - [`progress`]: the highest offset already stored per partition
//!   ([`loaded_offsets`]), read from `loader_progress`, never from `events`.
//! - [`retention`]: dropping expired day partitions where the server has no
//!   TTL, and the hourly job that does it ([`Retention`]).
//! - [`seen`]: rebuilding a partition's deduplication state from `event_ids`
//!   ([`seen::rebuild`]).
//! - [`shards`]: a cluster's shards and replicas, a Kafka partition's shard,
//!   and moving to a replica's twin when it fails ([`shards::Shards`]).
//! - [`rollups`]: the rollup tables' names and window, shared by the
//!   aggregator (writer) and the dashboards (readers).
//! - [`dashboard`]: the dashboards' read path over the rollups ([`dashboard::Dashboard`]).
//! - [`rows`]: one row struct per layout and the conversion from an [`Event`](sluice_core::Event).
//! - [`rowbinary`]: the RowBinary encoder shared by inserts and tests.
//! - [`insert`]: one batch = one `INSERT`, with failures classified
//!   retryable or permanent ([`InsertError`]), and what an attempt came to
//!   ([`InsertOutcome`]).
//!
//! Every function takes a plain [`clickhouse::Client`]. Selects run with the
//! crate's schema validation switched off: validation needs
//! `RowBinaryWithNamesAndTypes` and a setting that ClickHouse 18.16 rejects, and
//! our row types are checked against the real servers by the tests instead.
//! Names are qualified with the database where the module knows it
//! ([`migrate()`]); [`loaded_offsets`] and [`insert_batch`] use the client's
//! database (`Client::with_database`) unless the table name is qualified.

pub mod dashboard;
pub mod insert;
pub mod migrate;
pub mod probe;
pub mod progress;
pub mod retention;
pub mod rollups;
pub mod rowbinary;
pub mod rows;
pub mod schema;
pub mod seen;
pub mod shards;

pub use insert::{InsertError, InsertOutcome, MAX_BLOCK_ROWS, insert_batch};
pub use migrate::{AppliedReport, apply_migrations, migrate, table_layout};
pub use probe::{Capabilities, ServerVersion, probe};
pub use progress::{loaded_offsets, loaded_offsets_sql, record_loaded};
pub use retention::{
    PERIOD as RETENTION_PERIOD, Retention, apply_retention, expired_partitions,
    retention_drop_statements,
};
pub use rowbinary::encode_rows;
pub use rows::{EventRow, LegacyRow, ModernRow, RowLayout, row};
pub use schema::{Migration, SchemaSettings, bootstrap, bootstrap_for, migrations};

/// Failures of probing, migrating and progress queries (inserts have
/// [`InsertError`], which also says whether to retry).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ClickHouse {context}: {source}")]
    ClickHouse {
        context: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("invalid schema settings: {0}")]
    InvalidSettings(String),
    #[error("unexpected answer from ClickHouse: {0}")]
    Unexpected(String),
}

impl Error {
    fn clickhouse(context: impl Into<String>, source: clickhouse::error::Error) -> Self {
        Self::ClickHouse {
            context: context.into(),
            source,
        }
    }

    /// The server's exception code, when the server answered with one.
    pub fn exception_code(&self) -> Option<u32> {
        match self {
            Self::ClickHouse { source, .. } => exception_code(source),
            _ => None,
        }
    }
}

/// The ClickHouse exception code in an error answer, e.g. 27 in
/// `Code: 27, e.displayText() = DB::Exception: ...` (18.16) or
/// `Code: 27. DB::Exception: ... (CANNOT_PARSE_INPUT_ASSERTION_FAILED)` (modern).
pub(crate) fn exception_code(err: &clickhouse::error::Error) -> Option<u32> {
    match err {
        clickhouse::error::Error::BadResponse(text) => code_in(text),
        _ => None,
    }
}

fn code_in(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// A copy of `client` for selects: without the crate's schema validation,
/// which 18.16 cannot serve (see the module docs).
pub(crate) fn select_client(client: &clickhouse::Client) -> clickhouse::Client {
    client.clone().with_validation(false)
}

/// True for a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`): names from
/// configuration are pasted into DDL, so anything else is refused.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A table name as callers pass it: `table` or `database.table`.
pub(crate) fn is_table_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((db, table)) => is_identifier(db) && is_identifier(table),
        None => is_identifier(name),
    }
}

/// A single-quoted SQL string literal (see [`quote`]), for callers outside
/// this module.
pub fn quote_literal(text: &str) -> String {
    quote(text)
}

/// A single-quoted SQL string literal; the escaping works on 18.16 and on
/// current servers alike.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exception_codes_in_old_and_new_messages() {
        assert_eq!(
            code_in(
                "Code: 27, e.displayText() = DB::Exception: Cannot parse input, e.what() = DB::Exception"
            ),
            Some(27)
        );
        assert_eq!(
            code_in(
                "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS) (version 24.3.1)"
            ),
            Some(252)
        );
        assert_eq!(code_in("503 Service Unavailable"), None);
        assert_eq!(code_in("Code: x"), None);
    }

    #[test]
    fn identifiers_and_literals() {
        assert!(is_identifier("sluice_test_01"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("events; DROP"));
        assert!(!is_identifier(""));
        assert!(is_table_name("db.events"));
        assert!(!is_table_name("db.events.x"));
        assert_eq!(quote(r"it's a \ test"), r"'it\'s a \\ test'");
    }
}
