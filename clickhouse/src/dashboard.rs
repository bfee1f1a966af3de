//! The dashboards' read path: event counts over time, daily active users and
//! top events for one team, read from the rollups (never from raw events).
//! The SQL is documented in `docs/dashboards.md`; `sluice stats` prints it.
//! A layer, not part of the aggregator that writes the rollups: every reader
//! (the CLI, a console) uses it without depending on that service.
//!
//! The explorer's questions that rollups cannot answer (a property's top
//! values, the newest event) read the raw `events` table with every value
//! bound as a parameter, under the limits of [`QueryLimits`].
//!
//! Ranges are half-open, `[from, to)`, in UTC; an answer has every bucket
//! (5 minutes, hour or day) that overlaps the range, so "the last 7 days"
//! includes today so far.

use serde::{Deserialize, Serialize};
use sluice_core::Timestamp;

use crate::rollups::{DAU_DAILY, ROLLUPS_5M, ROLLUPS_DAILY, ROLLUPS_HOURLY, WINDOW_MS};
use crate::{Error, is_identifier, quote_literal};

/// Resolution of [`Dashboard::event_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    FiveMinutes,
    Hour,
    Day,
}

impl std::str::FromStr for Granularity {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "5m" | "5min" | "five_minutes" => Ok(Self::FiveMinutes),
            "hour" | "1h" => Ok(Self::Hour),
            "day" | "1d" => Ok(Self::Day),
            other => Err(format!("`{other}`: expected 5m, hour or day")),
        }
    }
}

/// One point of a series: a time (`YYYY-MM-DD hh:mm:ss` or `YYYY-MM-DD`) or
/// an event name, and a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct Point {
    pub label: String,
    pub value: u64,
}

/// Read-only access to one database's rollups.
#[derive(Clone)]
pub struct Dashboard {
    client: clickhouse::Client,
    database: String,
    /// `""` on one server; on a cluster `_all`: every table is read through
    /// the `Distributed` table over all shards.
    suffix: &'static str,
    /// The raw events table, `<database>.events`.
    events: String,
}

/// The tables the queries read: `database.table`, or on a cluster
/// `database.table_all` (the `Distributed` table over every shard's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables<'a> {
    pub database: &'a str,
    pub suffix: &'static str,
}

impl Tables<'_> {
    fn name(&self, table: &str) -> String {
        format!("{}.{table}{}", self.database, self.suffix)
    }
}

/// One server's tables in `database`.
impl<'a> From<&'a str> for Tables<'a> {
    fn from(database: &'a str) -> Self {
        Self {
            database,
            suffix: "",
        }
    }
}

/// Days of event time [`Dashboard::newest_received_at`] reads first.
pub const FRESHNESS_DAYS: u32 = 2;

/// Server-side limits applied to every query of a [`Dashboard`] (sent as
/// query settings, enforced by ClickHouse itself on every version), so a
/// question over a long range ends with an error instead of occupying the
/// server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_execution_time_secs: u32,
    pub max_rows_to_read: u64,
    pub max_bytes_to_read: u64,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

fn datetime(ts: Timestamp) -> String {
    // `YYYY-MM-DDThh:mm:ss.mmmZ` → `YYYY-MM-DD hh:mm:ss`, which ClickHouse
    // compares with a DateTime('UTC') column in UTC on every version.
    let text = ts.to_rfc3339();
    text[..19].replacen('T', " ", 1)
}

fn date(ts: Timestamp) -> String {
    ts.to_rfc3339()[..10].to_owned()
}

/// Start of the bucket of `ts`.
fn floor(ts: Timestamp, bucket_ms: i64) -> Timestamp {
    Timestamp::from_millis(ts.as_millis().div_euclid(bucket_ms) * bucket_ms)
}

/// The last day overlapping `[.., to)`.
fn last_day(to: Timestamp) -> String {
    date(Timestamp::from_millis(to.as_millis() - 1))
}

/// `SELECT` for event counts per time bucket.
pub fn event_counts_sql<'a>(
    tables: impl Into<Tables<'a>>,
    team: &str,
    from: Timestamp,
    to: Timestamp,
    granularity: Granularity,
    event: Option<&str>,
) -> String {
    let (table, column, lo, hi) = match granularity {
        Granularity::FiveMinutes => (
            ROLLUPS_5M,
            "window_start",
            datetime(floor(from, WINDOW_MS)),
            format!("< {}", quote_literal(&datetime(to))),
        ),
        Granularity::Hour => (
            ROLLUPS_HOURLY,
            "hour",
            datetime(floor(from, 3_600_000)),
            format!("< {}", quote_literal(&datetime(to))),
        ),
        Granularity::Day => (
            ROLLUPS_DAILY,
            "day",
            date(from),
            format!("<= {}", quote_literal(&last_day(to))),
        ),
    };
    let event = event.map_or(String::new(), |e| {
        format!(" AND event = {}", quote_literal(e))
    });
    format!(
        "SELECT toString({column}) AS label, sum(events) AS value FROM {} \
         WHERE team_id = {} AND {column} >= {} AND {column} {hi}{event} \
         GROUP BY {column} ORDER BY {column}",
        tables.into().name(table),
        quote_literal(team),
        quote_literal(&lo),
    )
}

/// `SELECT` for daily active users.
pub fn dau_sql<'a>(
    tables: impl Into<Tables<'a>>,
    team: &str,
    from: Timestamp,
    to: Timestamp,
) -> String {
    format!(
        "SELECT toString(day) AS label, toUInt64(uniqMerge(users)) AS value FROM {} \
         WHERE team_id = {} AND day >= {} AND day <= {} GROUP BY day ORDER BY day",
        tables.into().name(DAU_DAILY),
        quote_literal(team),
        quote_literal(&date(from)),
        quote_literal(&last_day(to)),
    )
}

/// `SELECT` for the most frequent events.
pub fn top_events_sql<'a>(
    tables: impl Into<Tables<'a>>,
    team: &str,
    from: Timestamp,
    to: Timestamp,
    limit: u32,
) -> String {
    format!(
        "SELECT event AS label, sum(events) AS value FROM {} \
         WHERE team_id = {} AND day >= {} AND day <= {} \
         GROUP BY event ORDER BY value DESC, label LIMIT {limit}",
        tables.into().name(ROLLUPS_DAILY),
        quote_literal(team),
        quote_literal(&date(from)),
        quote_literal(&last_day(to)),
    )
}

impl Dashboard {
    /// `database` must be an identifier (it is pasted into SQL).
    pub fn new(url: &str, database: &str) -> Result<Self, Error> {
        if !is_identifier(database) {
            return Err(Error::InvalidSettings(format!(
                "database `{database}` must be an identifier"
            )));
        }
        Ok(Self {
            client: clickhouse::Client::default()
                .with_url(url)
                .with_validation(false),
            database: database.to_owned(),
            suffix: "",
            events: format!("{database}.events"),
        })
    }

    /// Reads a cluster's tables through their `Distributed` tables over
    /// every shard (`<table>_all`, which the loader's and the aggregator's
    /// migrations create on a cluster), from the node at `url`.
    pub fn over_cluster(mut self) -> Self {
        self.suffix = crate::schema::ALL_SHARDS_SUFFIX;
        self.events = format!("{}.events{}", self.database, self.suffix);
        self
    }

    fn tables(&self) -> Tables<'_> {
        Tables {
            database: &self.database,
            suffix: self.suffix,
        }
    }

    pub fn with_credentials(mut self, user: &str, password: &str) -> Self {
        self.client = self.client.with_user(user).with_password(password);
        self
    }

    pub fn with_limits(mut self, limits: QueryLimits) -> Self {
        self.client = self
            .client
            .with_setting(
                "max_execution_time",
                limits.max_execution_time_secs.to_string(),
            )
            .with_setting("max_rows_to_read", limits.max_rows_to_read.to_string())
            .with_setting("max_bytes_to_read", limits.max_bytes_to_read.to_string());
        self
    }

    /// Whether the server answers.
    pub async fn ping(&self) -> Result<(), Error> {
        self.client
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map(drop)
            .map_err(|e| Error::clickhouse("ping", e))
    }

    /// Event names of `team` seen in `[from, to)` (by day), sorted, at most
    /// `limit`.
    pub async fn event_names(
        &self,
        team: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        let sql = format!(
            "SELECT DISTINCT event FROM {} \
             WHERE team_id = ? AND day >= ? AND day <= ? ORDER BY event LIMIT ?",
            self.tables().name(ROLLUPS_DAILY)
        );
        self.client
            .query(&sql)
            .bind(team)
            .bind(date(from))
            .bind(last_day(to))
            .bind(limit)
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("reading event names", e))
    }

    /// Teams with events in `[from, to)`, sorted (the operator's picker).
    pub async fn teams(&self, from: Timestamp, to: Timestamp) -> Result<Vec<String>, Error> {
        let sql = format!(
            "SELECT DISTINCT team_id FROM {} \
             WHERE day >= ? AND day <= ? ORDER BY team_id LIMIT 10000",
            self.tables().name(ROLLUPS_DAILY)
        );
        self.client
            .query(&sql)
            .bind(date(from))
            .bind(last_day(to))
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("reading teams", e))
    }

    /// The `limit` most frequent values of `property` (a top-level key of
    /// `properties`) among `event`'s raw events in `[from, to)`, as JSON
    /// text; events without it count under `(none)`.
    ///
    /// `visitParamExtractRaw` is what 18.16 offers (the `JSONExtract`
    /// family came later): it takes the first `"property":` in the text,
    /// which is the top-level key unless a nested object before it has a
    /// key of the same name.
    pub async fn breakdown(
        &self,
        team: &str,
        event: &str,
        property: &str,
        (from, to): (Timestamp, Timestamp),
        limit: u32,
    ) -> Result<Vec<Point>, Error> {
        let sql = format!(
            "SELECT if(raw = '', '(none)', raw) AS label, toUInt64(count()) AS value \
             FROM (SELECT visitParamExtractRaw(properties, ?) AS raw FROM {} \
                   WHERE team_id = ? AND event = ? AND timestamp >= ? AND timestamp < ?) \
             GROUP BY label ORDER BY value DESC, label LIMIT ?",
            self.events
        );
        self.client
            .query(&sql)
            .bind(property)
            .bind(team)
            .bind(event)
            .bind(datetime(from))
            .bind(datetime(to))
            .bind(limit)
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("reading a property breakdown", e))
    }

    /// When the newest stored event of `team` was received, if any.
    ///
    /// Asked often (the health page refreshes every few seconds), so it
    /// first reads only the partitions of the last [`FRESHNESS_DAYS`] (the
    /// table is partitioned by event day) and reads the team's whole history
    /// only when those hold none of its events. An event received now but
    /// dated earlier than that is not seen while newer-dated ones exist.
    pub async fn newest_received_at(&self, team: &str) -> Result<Option<Timestamp>, Error> {
        let recent = Timestamp::from_millis(
            Timestamp::now().as_millis() - i64::from(FRESHNESS_DAYS) * 86_400_000,
        );
        if let Some(newest) = self.newest_received_since(team, Some(recent)).await? {
            return Ok(Some(newest));
        }
        self.newest_received_since(team, None).await
    }

    async fn newest_received_since(
        &self,
        team: &str,
        since: Option<Timestamp>,
    ) -> Result<Option<Timestamp>, Error> {
        let bound = if since.is_some() {
            " AND timestamp >= ?"
        } else {
            ""
        };
        let sql = format!(
            "SELECT toUInt64(toUnixTimestamp(max(received_at))) FROM {} WHERE team_id = ?{bound}",
            self.events
        );
        let mut query = self.client.query(&sql).bind(team);
        if let Some(since) = since {
            query = query.bind(datetime(since));
        }
        let seconds: u64 = query
            .fetch_one()
            .await
            .map_err(|e| Error::clickhouse("reading the newest event", e))?;
        // max() of no rows is the epoch.
        Ok((seconds > 0).then(|| Timestamp::from_millis(seconds as i64 * 1000)))
    }

    async fn points(&self, sql: String) -> Result<Vec<Point>, Error> {
        self.client
            .query(&sql)
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse(format!("query `{sql}` failed"), e))
    }

    pub async fn event_counts(
        &self,
        team: &str,
        from: Timestamp,
        to: Timestamp,
        granularity: Granularity,
        event: Option<&str>,
    ) -> Result<Vec<Point>, Error> {
        self.points(event_counts_sql(
            self.tables(),
            team,
            from,
            to,
            granularity,
            event,
        ))
        .await
    }

    pub async fn dau(
        &self,
        team: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Point>, Error> {
        self.points(dau_sql(self.tables(), team, from, to)).await
    }

    pub async fn top_events(
        &self,
        team: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<Point>, Error> {
        self.points(top_events_sql(self.tables(), team, from, to, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn sql_quotes_names_and_uses_utc_literals() {
        let sql = event_counts_sql(
            "db",
            "te'am",
            ts("2026-11-26T00:20:00Z"),
            ts("2026-11-26T06:30:00Z"),
            Granularity::Hour,
            Some("Signed Up"),
        );
        assert_eq!(
            sql,
            "SELECT toString(hour) AS label, sum(events) AS value FROM db.rollups_hourly \
             WHERE team_id = 'te\\'am' AND hour >= '2026-11-26 00:00:00' AND hour < '2026-11-26 06:30:00' \
             AND event = 'Signed Up' GROUP BY hour ORDER BY hour"
        );
        let dau = dau_sql(
            "db",
            "t",
            ts("2026-11-01T00:00:00Z"),
            ts("2026-11-27T00:00:00Z"),
        );
        assert!(
            dau.contains("day >= '2026-11-01' AND day <= '2026-11-26'"),
            "{dau}"
        );
        // Partial days at both ends are included.
        let top = top_events_sql(
            "db",
            "t",
            ts("2026-11-20T10:00:00Z"),
            ts("2026-11-26T09:00:00Z"),
            3,
        );
        assert!(
            top.contains("day >= '2026-11-20' AND day <= '2026-11-26'"),
            "{top}"
        );
    }

    #[test]
    fn on_a_cluster_every_table_is_read_through_its_distributed_table() {
        let cluster = Tables {
            database: "db",
            suffix: crate::schema::ALL_SHARDS_SUFFIX,
        };
        let (from, to) = (ts("2026-11-01T00:00:00Z"), ts("2026-11-02T00:00:00Z"));
        assert!(dau_sql(cluster, "t", from, to).contains(" FROM db.dau_daily_all "));
        assert!(top_events_sql(cluster, "t", from, to, 3).contains(" FROM db.rollups_daily_all "));
        let five = event_counts_sql(cluster, "t", from, to, Granularity::FiveMinutes, None);
        assert!(five.contains(" FROM db.rollups_5m_all "), "{five}");
        let dashboard = Dashboard::new("http://x:8123", "db")
            .unwrap()
            .over_cluster();
        assert_eq!(dashboard.events, "db.events_all");
    }

    #[test]
    fn granularities_parse() {
        assert_eq!("5m".parse(), Ok(Granularity::FiveMinutes));
        assert_eq!("day".parse(), Ok(Granularity::Day));
        assert!("week".parse::<Granularity>().is_err());
    }
}
