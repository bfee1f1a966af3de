//! Applies the migrations at start-up, idempotently.
//!
//! 1. Migration 1 (`bootstrap`: the database and `schema_migrations`) runs
//!    every time: the bookkeeping table must exist before it can be read,
//!    and its statements are `IF NOT EXISTS`.
//! 2. Versions recorded in `schema_migrations` (component `loader`) are
//!    skipped; the others run in order and are recorded after their last
//!    statement succeeded.
//!
//! Loaders starting together may run the same migration twice: every
//! statement is `IF NOT EXISTS`, and the "already exists" answers that two
//! racing `CREATE`s can still produce (codes 57 and 82) count as success.
//! Double records collapse (`ReplacingMergeTree` by component and version)
//! and are read with `DISTINCT` meanwhile.

use std::collections::BTreeSet;

use super::probe::{Capabilities, ServerVersion};
use super::rows::RowLayout;
use super::schema::{COMPONENT, MIGRATIONS_TABLE, Migration, SchemaSettings, migrations};
use super::{Error, exception_code, quote, select_client};

/// `TABLE_ALREADY_EXISTS`, `DATABASE_ALREADY_EXISTS`: a concurrent loader won the race.
const ALREADY_EXISTS: [u32; 2] = [57, 82];

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedReport {
    pub server_version: ServerVersion,
    /// Versions applied by this call, in order (empty on a second run).
    pub applied: Vec<u32>,
    /// Versions found already recorded.
    pub already_applied: Vec<u32>,
    /// The layout of the events table as it exists now: rows must be built
    /// for this, not for the server's capabilities, because a table created
    /// before a server upgrade keeps its legacy columns.
    pub layout: RowLayout,
}

/// Creates the database if missing and applies every migration not yet
/// recorded. Safe to call from several loaders at once.
pub async fn migrate(
    client: &clickhouse::Client,
    caps: &Capabilities,
    settings: &SchemaSettings,
) -> Result<AppliedReport, Error> {
    settings.validate()?;
    let all = migrations(caps, settings);
    let (applied, already_applied) =
        apply_migrations(client, caps, &settings.database, COMPONENT, &all).await?;
    let client = select_client(client).with_database("system");
    Ok(AppliedReport {
        server_version: caps.version,
        applied,
        already_applied,
        layout: table_layout(&client, &settings.database, &settings.events_table).await?,
    })
}

/// Applies `all` (version 1 first, which must create `database` and
/// `schema_migrations`, idempotently) for `component`: the loader and the
/// aggregator keep their migrations in one `schema_migrations` table under
/// their own tags. Returns the versions applied now and those found recorded.
pub async fn apply_migrations(
    client: &clickhouse::Client,
    caps: &Capabilities,
    database: &str,
    component: &str,
    all: &[Migration],
) -> Result<(Vec<u32>, Vec<u32>), Error> {
    // Statements name their database; `system` always exists, whereas the
    // client's own database may be the one we are about to create.
    let client = select_client(client).with_database("system");
    if let Some(bootstrap) = all.first() {
        run(&client, bootstrap).await?;
    }
    let recorded: Vec<u32> = client
        .query_raw(&format!(
            "SELECT DISTINCT version FROM {database}.{MIGRATIONS_TABLE} WHERE component = {} ORDER BY version",
            quote(component)
        ))
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("reading schema_migrations failed", e))?;
    let recorded: BTreeSet<u32> = recorded.into_iter().collect();

    let (mut applied, mut already_applied) = (Vec::new(), Vec::new());
    for migration in all {
        if recorded.contains(&migration.version) {
            already_applied.push(migration.version);
            continue;
        }
        run(&client, migration).await?;
        record(&client, caps, database, component, migration).await?;
        tracing::info!(
            database,
            component,
            version = migration.version,
            name = migration.name,
            server = %caps.version,
            "applied ClickHouse migration"
        );
        applied.push(migration.version);
    }
    Ok((applied, already_applied))
}

async fn run(client: &clickhouse::Client, migration: &Migration) -> Result<(), Error> {
    for statement in &migration.statements {
        match client.query_raw(statement).execute().await {
            Ok(()) => {}
            Err(e) if exception_code(&e).is_some_and(|code| ALREADY_EXISTS.contains(&code)) => {}
            Err(e) => {
                return Err(Error::clickhouse(
                    format!(
                        "migration {} ({}) failed on `{}`",
                        migration.version,
                        migration.name,
                        first_line(statement)
                    ),
                    e,
                ));
            }
        }
    }
    Ok(())
}

async fn record(
    client: &clickhouse::Client,
    caps: &Capabilities,
    database: &str,
    component: &str,
    migration: &Migration,
) -> Result<(), Error> {
    // INSERT ... SELECT: literals and now() parse the same way on every version.
    let sql = format!(
        "INSERT INTO {database}.{MIGRATIONS_TABLE} (component, version, name, statements, server_version, applied_at) \
         SELECT {}, {}, {}, {}, {}, now()",
        quote(component),
        migration.version,
        quote(migration.name),
        quote(&migration.statements.join(";\n")),
        quote(&caps.version.to_string()),
    );
    client.query_raw(&sql).execute().await.map_err(|e| {
        Error::clickhouse(
            format!("recording migration {} failed", migration.version),
            e,
        )
    })
}

/// The layout of an existing events table, from the type of its
/// `timestamp` column.
pub async fn table_layout(
    client: &clickhouse::Client,
    database: &str,
    table: &str,
) -> Result<RowLayout, Error> {
    let types: Vec<String> = select_client(client)
        .query_raw(&format!(
            "SELECT type FROM system.columns WHERE database = {} AND table = {} AND name = 'timestamp'",
            quote(database),
            quote(table)
        ))
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("reading the events table's columns failed", e))?;
    match types.first() {
        Some(ty) if ty.starts_with("DateTime64") => Ok(RowLayout::Modern),
        Some(ty) if ty.starts_with("DateTime") => Ok(RowLayout::Legacy),
        Some(ty) => Err(Error::Unexpected(format!(
            "{database}.{table}.timestamp has type {ty}"
        ))),
        None => Err(Error::Unexpected(format!(
            "{database}.{table} has no timestamp column"
        ))),
    }
}

fn first_line(statement: &str) -> &str {
    statement.lines().next().unwrap_or(statement)
}
