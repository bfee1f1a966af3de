"""Fixtures for the modern-dialect suite: the loader's rendered schema and a
RowBinary batch (from `cargo run -p sluice-clickhouse --example render_modern`),
and a chdb session (the ClickHouse 26 engine in-process) to run them in.

Set SLUICE_CHDB_FIXTURES=DIR to use an already rendered directory instead of
running cargo.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def sql_string(text: str) -> str:
    """A single-quoted SQL literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Rendered:
    """What the loader rendered: `manifest.json` plus the batch file."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.manifest = json.loads((directory / "manifest.json").read_text())
        self.batch_path = directory / self.manifest["batch"]
        self.batch = self.batch_path.read_bytes()

    def __getitem__(self, key):
        return self.manifest[key]

    def file_source(self) -> str:
        """`file(...)` reading the batch with the loader's column structure."""
        return (
            f"file({sql_string(str(self.batch_path))}, 'RowBinary', "
            f"{sql_string(self['structure'])})"
        )


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> Rendered:
    given = os.environ.get("SLUICE_CHDB_FIXTURES")
    if given:
        return Rendered(Path(given))
    out = tmp_path_factory.mktemp("rendered")
    env = dict(os.environ)
    cache = env.get("SLUICE_CACHE", str(Path.home() / ".cache" / "sluice"))
    env.setdefault("CARGO_TARGET_DIR", str(Path(cache) / "target"))
    cmd = ["cargo", "run", "--quiet", "-p", "sluice-clickhouse", "--example", "render_modern", "--", str(out)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        pytest.fail(
            f"rendering the modern schema failed ({' '.join(cmd)}):\n{done.stdout}\n{done.stderr}",
            pytrace=False,
        )
    return Rendered(out)


class Session:
    """One chdb session with the loader's database freshly migrated."""

    def __init__(self, conn, rendered: Rendered):
        self.conn = conn
        self.rendered = rendered
        self.database = rendered["database"]

    def run(self, sql: str, fmt: str = "TSV") -> str:
        return str(self.conn.query(sql, fmt)).strip()

    def raw(self, sql: str) -> bytes:
        return bytes(self.conn.query(sql, "RowBinary").bytes())

    def rows(self, sql: str) -> list:
        """Rows as dicts; 64-bit integers as JSON numbers, not strings."""
        text = self.run(
            f"{sql} SETTINGS output_format_json_quote_64bit_integers = 0", "JSONEachRow"
        )
        return [json.loads(line) for line in text.splitlines() if line]

    def scalar(self, sql: str):
        return self.run(sql)

    def migrate(self):
        for migration in self.rendered["migrations"]:
            for statement in migration["statements"]:
                self.run(statement)
        # loaded_offsets' SQL names its table unqualified, as the loader's
        # client runs it with the loader's database as default.
        self.run(f"USE {self.database}")

    def insert_batch(self, token: str | None = None):
        """The batch as the suite loads it: INSERT ... SELECT FROM file()."""
        settings = f" SETTINGS insert_deduplication_token = {sql_string(token)}" if token else ""
        self.run(f"INSERT INTO {self.database}.events{settings} SELECT * FROM {self.rendered.file_source()}")

    def insert_like_the_loader(self, token: str | None = None):
        """The loader's own statement, `INSERT INTO events (columns) FORMAT
        RowBinary`, with the body read from the batch file."""
        settings = f" SETTINGS insert_deduplication_token = {sql_string(token)}" if token else ""
        self.run(
            f"INSERT INTO {self.database}.events ({self.rendered['columns']}) "
            f"FROM INFILE {sql_string(str(self.rendered.batch_path))}{settings} FORMAT RowBinary"
        )

    def count(self, table: str = "events") -> int:
        return int(self.run(f"SELECT count() FROM {self.database}.{table}"))

    def loaded_offsets(self) -> dict:
        rows = self.rows(self.rendered["loaded_offsets_sql"])
        return {str(r["kafka_partition"]): r["max_offset"] for r in rows}


@pytest.fixture(scope="session")
def chdb_conn(tmp_path_factory):
    import chdb

    conn = chdb.connect(str(tmp_path_factory.mktemp("chdb")))
    yield conn
    conn.close()


@pytest.fixture
def session(chdb_conn, rendered) -> Session:
    """A fresh, migrated database for each test."""
    s = Session(chdb_conn, rendered)
    s.run(f"DROP DATABASE IF EXISTS {s.database} SYNC")
    s.migrate()
    return s


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    try:
        import chdb

        engine = f"chdb {chdb.__version__}"
    except ImportError:
        engine = "chdb not importable"
    verdict = "OK" if failed == 0 and exitstatus == 0 else "FAILED"
    terminalreporter.write_sep("=", f"modern schema on {engine}: {verdict}")
    terminalreporter.write_line(f"{passed} passed, {failed} failed")
    for report in stats.get("failed", []) + stats.get("error", []):
        terminalreporter.write_line(f"  failed: {report.nodeid}")
