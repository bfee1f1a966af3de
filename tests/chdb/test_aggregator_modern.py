"""The aggregator's MODERN migrations, its exact RowBinary insert, its
recovery query and the dashboards' queries, on the ClickHouse 26 engine
(chdb), because the local server is 18.16.

Everything compared here comes from the Rust side
(`cargo run -p sluice-aggregator --example render_rollups`): the DDL as
`migrations()` renders it for a current server, the bytes `encode_row()`
wrote, the dedup token, and the SQL `stored_since_sql()` and `query::*_sql()`
build, each with the answer it must give.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, sql_string


@pytest.fixture(scope="session")
def agg(tmp_path_factory):
    given = os.environ.get("SLUICE_CHDB_AGGREGATOR_FIXTURES")
    out = Path(given) if given else tmp_path_factory.mktemp("aggregator")
    if not given:
        env = dict(os.environ)
        cache = env.get("SLUICE_CACHE", str(Path.home() / ".cache" / "sluice"))
        env.setdefault("CARGO_TARGET_DIR", str(Path(cache) / "target"))
        cmd = ["cargo", "run", "--quiet", "-p", "sluice-aggregator", "--example", "render_rollups", "--", str(out)]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["batch_path"] = str(out / manifest["batch"])
    return manifest


class AggSession:
    def __init__(self, conn, m):
        self.conn, self.m, self.db = conn, m, m["database"]

    def run(self, sql, fmt="TSV"):
        return str(self.conn.query(sql, fmt)).strip()

    def rows(self, sql):
        text = self.run(f"{sql} SETTINGS output_format_json_quote_64bit_integers = 0", "JSONEachRow")
        return [json.loads(line) for line in text.splitlines() if line]

    def migrate(self):
        for migration in self.m["migrations"]:
            for statement in migration["statements"]:
                self.run(statement)

    def insert_like_the_aggregator(self, token):
        """The aggregator's statement and settings, body from the batch file."""
        self.run(
            f"INSERT INTO {self.db}.rollups_5m ({self.m['columns']}) "
            f"FROM INFILE {sql_string(self.m['batch_path'])} "
            f"SETTINGS insert_deduplication_token = {sql_string(token)}, "
            f"deduplicate_blocks_in_dependent_materialized_views = 1 FORMAT RowBinary"
        )

    def totals(self):
        return {
            table: int(self.run(f"SELECT sum(events) FROM {self.db}.{table}") or 0)
            for table in ["rollups_5m", "rollups_hourly", "rollups_daily"]
        } | {"dau_rows": int(self.run(f"SELECT count() FROM {self.db}.dau_daily"))}


@pytest.fixture
def s(chdb_conn, agg):
    session = AggSession(chdb_conn, agg)
    session.run(f"DROP DATABASE IF EXISTS {session.db} SYNC")
    session.migrate()
    return session


def test_migrations_create_tables_and_views_and_rerun_cleanly(s):
    s.migrate()
    names = s.run(
        f"SELECT name FROM system.tables WHERE database = {sql_string(s.db)} ORDER BY name"
    ).split("\n")
    assert names == [
        "dau_daily", "dau_daily_mv", "rollups_5m", "rollups_daily", "rollups_daily_mv",
        "rollups_hourly", "rollups_hourly_mv", "schema_migrations",
    ]


def test_rollups_ddl_uses_the_modern_features(s, agg):
    ddl = s.run(f"SHOW CREATE TABLE {s.db}.rollups_5m", "TSVRaw")
    for expected in [
        "`team_id` LowCardinality(String)",
        "`event` LowCardinality(String)",
        "`kafka_topic` LowCardinality(String)",
        "`window_start` DateTime('UTC') CODEC(Delta(4), ZSTD(1))",
        "`max_offset` UInt64 CODEC(Delta(8), ZSTD(1))",
        "ENGINE = MergeTree",
        "PARTITION BY toYYYYMMDD(window_start)",
        "ORDER BY (team_id, window_start, event, user_id)",
        f"TTL window_start + toIntervalDay({agg['retention_days']})",
        "non_replicated_deduplication_window = 1000",
    ]:
        assert expected in ddl, f"{expected!r} missing from:\n{ddl}"
    assert "SummingMergeTree(events)" in s.run(f"SHOW CREATE TABLE {s.db}.rollups_hourly", "TSVRaw")
    assert "AggregatingMergeTree" in s.run(f"SHOW CREATE TABLE {s.db}.dau_daily", "TSVRaw")


def test_insert_bytes_read_back_exactly_and_a_retry_is_dropped_everywhere(s, agg):
    s.insert_like_the_aggregator(agg["dedup_token"])
    first = s.totals()
    assert first["rollups_5m"] == agg["events"]
    assert first["rollups_hourly"] == agg["events"] and first["rollups_daily"] == agg["events"]
    assert int(s.run(f"SELECT count() FROM {s.db}.rollups_5m")) == agg["rows"]

    stored = bytes(
        s.conn.query(
            f"SELECT {agg['columns']} FROM {s.db}.rollups_5m ORDER BY team_id, window_start, event, user_id",
            "RowBinary",
        ).bytes()
    )
    assert stored == Path(agg["batch_path"]).read_bytes()

    # The same insert again (a retry after an ambiguous failure): the table
    # and every view drop it by the token.
    s.insert_like_the_aggregator(agg["dedup_token"])
    assert s.totals() == first


def test_the_recovery_query_returns_the_highest_offset_per_window_and_key(s, agg):
    s.insert_like_the_aggregator(agg["dedup_token"])
    got = {
        f"{r['window_start']}|{r['team_id']}|{r['event']}|{r['user_id']}": r["covered"]
        for r in s.rows(agg["stored_since_sql"])
    }
    assert got == agg["stored_since_expected"]


def test_dashboard_queries_answer_from_the_rollups_and_views(s, agg):
    s.insert_like_the_aggregator(agg["dedup_token"])
    for query in agg["queries"]:
        assert s.rows(query["sql"]) == query["expected"], query["sql"]
