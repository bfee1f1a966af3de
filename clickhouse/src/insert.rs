//! One batch, one `INSERT ... FORMAT RowBinary`.
//!
//! A batch of at most [`MAX_BLOCK_ROWS`] rows stays below the server's
//! `max_insert_block_size` (1,048,576 by default on 18.16 and today), so the
//! server parses it into a single block: a bad row fails the whole batch
//! before anything is written, the progress view sees the batch as one
//! block, and an `insert_deduplication_token` covers all of it.
//!
//! ## Failure classes
//! [`InsertError::Permanent`] means the data cannot be stored as it is and
//! retrying the same bytes will fail again: send the batch's records to the
//! dead-letter topic (or split it to find the bad record). These exception
//! codes are permanent:
//!
//! | code | name |
//! |---|---|
//! | 6 | `CANNOT_PARSE_TEXT` |
//! | 26 | `CANNOT_PARSE_QUOTED_STRING` |
//! | 27 | `CANNOT_PARSE_INPUT_ASSERTION_FAILED` |
//! | 32 | `ATTEMPT_TO_READ_AFTER_EOF` (RowBinary shorter than the columns: type mismatch) |
//! | 33 | `CANNOT_READ_ALL_DATA` (same) |
//! | 38 | `CANNOT_PARSE_DATE` |
//! | 41 | `CANNOT_PARSE_DATETIME` |
//! | 53 | `TYPE_MISMATCH` |
//! | 69 | `ARGUMENT_OUT_OF_BOUND` |
//! | 70 | `CANNOT_CONVERT_TYPE` |
//! | 72 | `CANNOT_PARSE_NUMBER` |
//! | 117 | `INCORRECT_DATA` |
//! | 131 | `TOO_LARGE_STRING_SIZE` |
//! | 349 | `CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN` |
//! | 376 | `CANNOT_PARSE_UUID` |
//!
//! Everything else is [`InsertError::Retryable`]: network errors and
//! timeouts, HTTP 5xx without a code, `TOO_MANY_PARTS` (252),
//! `MEMORY_LIMIT_EXCEEDED` (241), `TIMEOUT_EXCEEDED` (159),
//! `TOO_MANY_SIMULTANEOUS_QUERIES` (202), `TABLE_IS_READ_ONLY` (242),
//! `UNKNOWN_STATUS_OF_INSERT` (319), `KEEPER_EXCEPTION` (999) and so on, and
//! also errors that retrying alone cannot fix but that are not the data's
//! fault (`AUTHENTICATION_FAILED` 516, `UNKNOWN_TABLE` 60,
//! `NO_SUCH_COLUMN_IN_TABLE` 16, `ACCESS_DENIED` 497): dead-lettering good
//! events because of a missing grant or migration would lose them, so the
//! caller keeps backing off (and reports itself unhealthy) until an operator
//! fixes the cause. [`InsertError::code`] tells them apart in logs.
//!
//! A retryable failure may still have been applied (a timeout after the
//! server committed): re-read [`loaded_offsets`](super::loaded_offsets)
//! before retrying, or rely on the dedup token where the server has one.

use std::time::Duration;

use bytes::Bytes;

use super::probe::Capabilities;
use super::rowbinary::encode_row;
use super::rows::EventRow;
use super::{exception_code, is_table_name};

/// Most rows one insert may carry, so the server parses it as one block.
pub const MAX_BLOCK_ROWS: usize = 1_000_000;

/// Bytes handed to the HTTP body at a time (each is LZ4-compressed as one
/// frame), so a large batch is streamed rather than held twice in memory.
const CHUNK_BYTES: usize = 1 << 20;

const PERMANENT_CODES: &[u32] = &[
    6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 131, 349, 376,
];

/// Why an insert failed, and so what to do with the batch.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// Retry the same batch after a backoff.
    #[error("insert failed, retryable{}: {source}", code_suffix(*.code))]
    Retryable {
        code: Option<u32>,
        #[source]
        source: clickhouse::error::Error,
    },
    /// The data is at fault: dead-letter the batch's records.
    #[error("insert rejected, permanent{}: {source}", code_suffix(*.code))]
    Permanent {
        code: Option<u32>,
        #[source]
        source: clickhouse::error::Error,
    },
    /// The call was wrong (too many rows, mixed layouts, a table name that is
    /// not an identifier): a bug in the caller. Nothing was sent.
    #[error("invalid insert: {0}")]
    InvalidBatch(String),
}

/// What one insert attempt came to, as a retry loop needs it: the loader's
/// and the aggregator's loops read the same three answers.
#[derive(Debug)]
pub enum InsertOutcome {
    Inserted {
        rows: usize,
        took: Duration,
    },
    /// Network, timeout, overload: the same rows may succeed later. The
    /// server may or may not have applied them: re-read before retrying.
    Retryable(String),
    /// ClickHouse refused the data itself.
    Permanent(String),
}

impl InsertOutcome {
    /// A failed attempt, retryable as [`InsertError::is_retryable`] says.
    pub fn failed(err: &InsertError) -> Self {
        if err.is_retryable() {
            Self::Retryable(err.to_string())
        } else {
            Self::Permanent(err.to_string())
        }
    }
}

fn code_suffix(code: Option<u32>) -> String {
    code.map(|c| format!(" (code {c})")).unwrap_or_default()
}

impl InsertError {
    /// Classifies a failure of the `clickhouse` crate (see the module docs).
    pub fn classify(source: clickhouse::error::Error) -> Self {
        let code = exception_code(&source);
        if code.is_some_and(|c| PERMANENT_CODES.contains(&c)) {
            Self::Permanent { code, source }
        } else {
            Self::Retryable { code, source }
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    /// The ClickHouse exception code, when the server sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Retryable { code, .. } | Self::Permanent { code, .. } => *code,
            Self::InvalidBatch(_) => None,
        }
    }
}

/// Sends `rows` as ONE insert into `table` (`table` or `database.table`; a
/// bare name uses the client's database). `dedup_token` becomes the
/// `insert_deduplication_token` setting where the server supports it and is
/// ignored elsewhere (18.16 refuses unknown settings). An empty batch sends
/// nothing.
pub async fn insert_batch(
    client: &clickhouse::Client,
    caps: &Capabilities,
    table: &str,
    rows: &[EventRow<'_>],
    dedup_token: Option<&str>,
) -> Result<(), InsertError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    if rows.len() > MAX_BLOCK_ROWS {
        return Err(InsertError::InvalidBatch(format!(
            "{} rows; one insert takes at most {MAX_BLOCK_ROWS}",
            rows.len()
        )));
    }
    let layout = first.layout();
    if rows.iter().any(|row| row.layout() != layout) {
        return Err(InsertError::InvalidBatch(
            "rows of both layouts in one batch".to_owned(),
        ));
    }
    if !is_table_name(table) {
        return Err(InsertError::InvalidBatch(format!(
            "table `{table}` is not an identifier"
        )));
    }

    let sql = format!(
        "INSERT INTO {table} ({}) FORMAT RowBinary",
        layout.column_list()
    );
    let mut insert = client.insert_formatted_with(sql);
    if caps.insert_dedup_token
        && let Some(token) = dedup_token
    {
        insert = insert.with_setting("insert_deduplication_token", token);
    }

    let mut buf = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    for row in rows {
        encode_row(row, &mut buf);
        if buf.len() >= CHUNK_BYTES {
            let chunk = Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
            ));
            insert.send(chunk).await.map_err(InsertError::classify)?;
        }
    }
    if !buf.is_empty() {
        insert
            .send(Bytes::from(buf))
            .await
            .map_err(InsertError::classify)?;
    }
    insert.end().await.map_err(InsertError::classify)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> clickhouse::error::Error {
        clickhouse::error::Error::BadResponse(text.to_owned())
    }

    #[test]
    fn parse_and_type_errors_are_permanent() {
        for text in [
            "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \\t before: x, e.what() = DB::Exception",
            "Code: 33, e.displayText() = DB::Exception: Cannot read all data. Bytes read: 3. Bytes expected: 8., e.what() = DB::Exception",
            "Code: 53. DB::Exception: Type mismatch. (TYPE_MISMATCH) (version 24.3.1.1)",
            "Code: 131. DB::Exception: Too large string size. (TOO_LARGE_STRING_SIZE)",
        ] {
            let e = InsertError::classify(bad(text));
            assert!(matches!(e, InsertError::Permanent { .. }), "{text}");
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn overload_outages_and_config_errors_are_retryable() {
        for (text, code) in [
            (
                "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)",
                Some(252),
            ),
            (
                "Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded",
                Some(241),
            ),
            (
                "Code: 516. DB::Exception: default: Authentication failed",
                Some(516),
            ),
            (
                "Code: 60, e.displayText() = DB::Exception: Table db.events doesn't exist.",
                Some(60),
            ),
            ("503 Service Unavailable", None),
        ] {
            let e = InsertError::classify(bad(text));
            assert!(e.is_retryable(), "{text}");
            assert_eq!(e.code(), code);
        }
        assert!(InsertError::classify(clickhouse::error::Error::TimedOut).is_retryable());
        assert!(
            InsertError::classify(clickhouse::error::Error::Network("reset".into())).is_retryable()
        );
    }

    #[test]
    fn messages_carry_the_code() {
        let e = InsertError::classify(bad("Code: 252. DB::Exception: Too many parts"));
        assert!(
            e.to_string()
                .starts_with("insert failed, retryable (code 252): "),
            "{e}"
        );
    }
}
