"""The loader's MODERN migrations and RowBinary encoding, checked on the
ClickHouse 26 engine (chdb) because the local server is 18.16.

Everything compared here comes from the Rust side (see conftest.py): the DDL
as `migrations()` renders it for a current server, the bytes `encode_rows()`
wrote, the rows they hold, and the SQL `loaded_offsets()` runs.
"""

import time

import pytest

from conftest import sql_string

READ_BACK = """
SELECT toString(event_id) AS event_id, team_id, event, user_id,
       toUnixTimestamp64Milli(timestamp) AS timestamp,
       toUnixTimestamp64Milli(received_at) AS received_at,
       schema_version, properties, context, kafka_topic, kafka_partition,
       kafka_offset, toUnixTimestamp(loaded_at) AS loaded_at
FROM events ORDER BY kafka_partition, kafka_offset
"""


def test_migrations_create_every_object_and_rerun_cleanly(session):
    # Idempotent: the loader re-runs them after a crash and on concurrent start.
    session.migrate()
    tables = session.run(
        f"SELECT name FROM system.tables WHERE database = {sql_string(session.database)} ORDER BY name"
    ).split("\n")
    assert tables == [
        "event_ids",
        "event_ids_mv",
        "events",
        "loader_progress",
        "loader_progress_mv",
        "schema_migrations",
    ]
    versions = [m["version"] for m in session.rendered["migrations"]]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_events_ddl_uses_the_modern_features(session, rendered):
    ddl = session.run("SHOW CREATE TABLE events", "TSVRaw")
    for expected in [
        "`event_id` UUID",
        "`team_id` LowCardinality(String)",
        "`event` LowCardinality(String)",
        "`kafka_topic` LowCardinality(String)",
        "`timestamp` DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1))",
        "`received_at` DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1))",
        "`properties` String CODEC(ZSTD(3))",
        "`context` String CODEC(ZSTD(3))",
        "`kafka_offset` Int64 CODEC(Delta(8), ZSTD(1))",
        "ENGINE = ReplacingMergeTree",
        "PARTITION BY toYYYYMMDD(timestamp)",
        "ORDER BY (team_id, event, timestamp, event_id)",
        f"TTL toDate(timestamp) + toIntervalDay({rendered['retention_days']})",
        "non_replicated_deduplication_window = 1000",
    ]:
        assert expected in ddl, f"{expected!r} missing from:\n{ddl}"
    progress = session.run("SHOW CREATE TABLE loader_progress", "TSVRaw")
    assert "AggregatingMergeTree" in progress and "non_replicated_deduplication_window = 1000" in progress


def test_rowbinary_batch_reads_back_exactly(session, rendered):
    session.insert_batch()
    expected = rendered["rows"]
    assert session.count() == len(expected)

    # Byte for byte: the rows are rendered in (partition, offset) order.
    stored = session.raw(f"SELECT {rendered['columns']} FROM events ORDER BY kafka_partition, kafka_offset")
    assert stored == rendered.batch

    # Field by field: UUID text, millisecond instants, strings, JSON text.
    assert session.rows(READ_BACK) == expected

    types = session.rows(
        "SELECT toTypeName(team_id) AS t, toTypeName(event) AS e, toTypeName(kafka_topic) AS k, "
        "toTypeName(timestamp) AS ts FROM events LIMIT 1"
    )[0]
    assert types == {
        "t": "LowCardinality(String)",
        "e": "LowCardinality(String)",
        "k": "LowCardinality(String)",
        "ts": "DateTime64(3, 'UTC')",
    }
    # The JSON columns are JSON the server can read.
    assert session.run("SELECT min(isValidJSON(properties)) FROM events") == "1"
    assert session.run(
        "SELECT JSONExtractString(context, 'ip') FROM events WHERE context != '' ORDER BY kafka_partition, kafka_offset LIMIT 1"
    ) == "203.0.113.9"


def test_the_loaders_insert_statement_stores_the_same_bytes(session, rendered):
    session.insert_like_the_loader()
    stored = session.raw(f"SELECT {rendered['columns']} FROM events ORDER BY kafka_partition, kafka_offset")
    assert stored == rendered.batch


@pytest.mark.parametrize("insert", ["insert_batch", "insert_like_the_loader"])
def test_the_same_dedup_token_stores_the_rows_once(session, rendered, insert):
    n = len(rendered["rows"])
    token = "events.raw:0:500-506"
    getattr(session, insert)(token)
    getattr(session, insert)(token)  # a retry after an ambiguous failure
    assert session.count() == n
    # The progress view skipped the duplicate block too.
    assert session.run("SELECT countMerge(rows) FROM loader_progress") == str(n)
    # Control: another token is another batch, stored again.
    getattr(session, insert)("events.raw:0:507-513")
    assert session.count() == 2 * n


def test_loaded_offsets_sql_answers_the_highest_offset_per_partition(session, rendered):
    sql = rendered["loaded_offsets_sql"]
    assert "loader_progress" in sql and " events " not in f" {sql} "
    assert session.loaded_offsets() == {}

    session.insert_batch()
    expected = dict(rendered["expected_offsets"])
    assert session.loaded_offsets() == expected

    # A later insert raises partition 1; a replay of old offsets lowers nothing.
    cols = rendered["columns"]
    session.run(
        f"INSERT INTO events ({cols}) SELECT generateUUIDv4(), 't', 'e', 'u', now64(3), now64(3), 1, "
        f"'{{}}', '', {sql_string(rendered['topic'])}, 1, 900, now() FROM numbers(1)"
    )
    session.run(
        f"INSERT INTO events ({cols}) SELECT generateUUIDv4(), 't', 'e', 'u', now64(3), now64(3), 1, "
        f"'{{}}', '', {sql_string(rendered['topic'])}, 2, 3, now() FROM numbers(1)"
    )
    # Another topic's progress is not this topic's.
    session.run(
        f"INSERT INTO events ({cols}) SELECT generateUUIDv4(), 't', 'e', 'u', now64(3), now64(3), 1, "
        f"'{{}}', '', 'other.topic', 0, 99999, now() FROM numbers(1)"
    )
    expected["1"] = 900
    assert session.loaded_offsets() == expected

    # Merged, the progress table is one row per partition of each topic.
    session.run("OPTIMIZE TABLE loader_progress FINAL")
    assert session.loaded_offsets() == expected
    assert session.count("loader_progress") == len(expected) + 1


def test_ttl_removes_rows_past_retention(session, rendered):
    days = rendered["retention_days"]
    cols = rendered["columns"]
    now_ms = int(time.time() * 1000)
    for age_days, offset in [(days + 5, 1), (1, 2)]:
        ts = now_ms - age_days * 86_400_000
        session.run(
            f"INSERT INTO events ({cols}) SELECT generateUUIDv4(), 't', 'e', 'u', "
            f"fromUnixTimestamp64Milli({ts}, 'UTC'), now64(3), 1, '{{}}', '', 'ttl', 0, {offset}, now() "
            "FROM numbers(1)"
        )
    session.run("OPTIMIZE TABLE events FINAL")
    assert session.run("SELECT groupArray(kafka_offset) FROM events WHERE kafka_topic = 'ttl'") == "[2]"


def test_event_ids_follow_every_insert_and_the_rebuild_queries_run(session, rendered):
    # The deduplication state's source: one row per stored event, written by
    # the view in the same insert, with `received_at` in whole seconds.
    session.insert_like_the_loader()
    ids = session.rows(
        "SELECT kafka_partition, kafka_offset, toUnixTimestamp(received_at) AS r, team_id, "
        "toString(event_id) AS id FROM event_ids ORDER BY kafka_partition, kafka_offset"
    )
    events = session.rows(
        "SELECT kafka_partition, kafka_offset, toUnixTimestamp(toDateTime(received_at)) AS r, team_id, "
        "toString(event_id) AS id FROM events ORDER BY kafka_partition, kafka_offset"
    )
    assert ids == events and len(ids) == len(rendered["rows"])
    ddl = session.run("SHOW CREATE TABLE event_ids", "TSVRaw")
    assert "ORDER BY (kafka_topic, kafka_partition, kafka_offset)" in ddl, ddl
    assert "PARTITION BY toYYYYMMDD(received_at)" in ddl, ddl

    # The rebuild's two queries, as the loader and the aggregator send them.
    newest_sql, ids_sql = rendered["seen_sql"]
    partition0 = [r for r in events if r["kafka_partition"] == 0]
    newest = session.rows(newest_sql)[0]
    assert newest == {"newest": max(r["r"] for r in partition0), "rows": len(partition0)}
    rebuilt = session.rows(ids_sql)
    assert [(r["team_id"], r["event_id"], r["received"]) for r in rebuilt] == [
        (r["team_id"], r["id"], r["r"]) for r in partition0
    ], "partition 0's kept events, in offset order"

    # Progress for records that left no row: the maximum moves, no row counted.
    session.run(rendered["record_loaded_sql"])
    assert session.loaded_offsets()["0"] == 1000
    assert int(session.run("SELECT countMerge(rows) FROM loader_progress")) == len(rendered["rows"])
