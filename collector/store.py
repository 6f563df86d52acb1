"""The one DuckDB access layer for the raw tables: open + migrate, bulk insert, retention,
and read-only queries.

One ``Store`` owns the single writer connection of a DuckDB file; readers take their own
cursors (``Store.cursor``) or, from another process, open the file read-only with
``query_readonly``. DuckDB lets one process write a file, so a second process cannot
open a store that ``driftscope serve`` holds; ``StoreLockedError`` says so plainly.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from collector.schema import MIGRATIONS, RAW_TABLES


class StoreError(RuntimeError):
    """A store cannot be opened or used; the message says why and what to do."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file open for writing."""


class StoreVersionError(StoreError):
    """The store was written by a newer driftscope than this one."""


def _connect(path: str | Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreLockedError(
                f"store {path} is in use by another process (a running `driftscope serve`?): "
                "DuckDB allows one writer process; stop it or query through its API"
            ) from None
        raise StoreError(f"cannot open store {path}: {exc}") from None


def schema_version(con: duckdb.DuckDBPyConnection, table: str = "schema_version") -> int:
    """The schema version recorded in ``table`` of a store (0 when absent)."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute(f"SELECT max(version) FROM {table}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(
    con: duckdb.DuckDBPyConnection,
    migrations: tuple[str, ...] = MIGRATIONS,
    table: str = "schema_version",
) -> int:
    """Apply pending forward ``migrations`` in one transaction each; return the new version.

    Each layer that owns tables keeps its own list and version table (the raw tables use
    ``schema_version``; analysis uses ``analysis_schema_version``).
    """
    target = len(migrations)
    current = schema_version(con, table)
    if current > target:
        raise StoreVersionError(
            f"store {table} {current} is newer than this driftscope supports ({target}); upgrade driftscope to open it"
        )
    if current == 0:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)"
        )
    for version in range(current + 1, target + 1):
        con.execute("BEGIN")
        try:
            con.execute(migrations[version - 1])
            con.execute(f"INSERT INTO {table} (version) VALUES (?)", [version])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return target


def fetch_arrow(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | list[Any] | None = None
) -> pa.Table:
    """Run one query on ``con`` (inside its current transaction) and return all rows as Arrow.

    DuckDB warns that Arrow from an ``execute`` result costs one copy; ``con.sql`` avoids
    it but refuses to run while another result of the connection is open, so this one
    function takes the copy knowingly.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
        return con.execute(sql, params or []).to_arrow_table()


class Store:
    """The writer side of one DuckDB file. Thread-safe: writes are serialised by a lock."""

    CHECKPOINT_WAL = "256MB"
    """WAL size that triggers DuckDB's automatic checkpoint. The default (16 MB) stalls the
    single writer every ~50k spans for up to ~300 ms; a larger WAL stalls 16x less often at
    the cost of a longer log replay after a crash (seconds, not data)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._con = _connect(self.path, read_only=False)
        self._con.execute(f"SET checkpoint_threshold = '{self.CHECKPOINT_WAL}'")
        self._lock = threading.Lock()
        migrate(self._con)

    def insert(self, tables: Mapping[str, pa.Table]) -> int:
        """Insert Arrow tables (raw table name -> rows) in one transaction; return rows.

        Either every table is committed or none is: the caller acknowledges its clients
        only after this returns.
        """
        rows = 0
        with self._lock:
            self._con.execute("BEGIN")
            try:
                for name, table in tables.items():
                    if name not in RAW_TABLES:
                        raise ValueError(f"unknown raw table {name!r}")
                    cols = ", ".join(f'"{c}"' for c in table.column_names)
                    self._con.register("_ingest_batch", table)
                    try:
                        self._con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _ingest_batch")
                    finally:
                        self._con.unregister("_ingest_batch")
                    rows += table.num_rows
                self._con.execute("COMMIT")
            except Exception:
                self._con.execute("ROLLBACK")
                raise
        return rows

    def enforce_retention(self, retention_s: Mapping[str, float], now_ns: int) -> dict[str, int]:
        """Delete raw rows older than each table's retention; return rows deleted per table.

        ``retention_s`` maps a raw table to its retention in seconds; tables not named keep
        everything. ``now_ns`` is injected so callers with a simulated clock work too.
        """
        deleted: dict[str, int] = {}
        with self._lock:
            for table, seconds in retention_s.items():
                if table not in RAW_TABLES:
                    raise ValueError(f"unknown raw table {table!r}")
                column = RAW_TABLES[table]
                cutoff_ns = now_ns - int(seconds * 1e9)
                row = self._con.execute(
                    f"DELETE FROM {table} WHERE epoch_ns(coalesce({column}, time)) < ?"
                    if table == "logs"
                    else f"DELETE FROM {table} WHERE epoch_ns({column}) < ?",
                    [cutoff_ns],
                ).fetchone()
                deleted[table] = int(row[0]) if row else 0
        return deleted

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A reader cursor on the same database (its own transaction context)."""
        return self._con.cursor()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file."""
        with self._lock:
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        with self._lock:
            self._con.close()


_READ_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA"}


def query_readonly(path: str | Path, sql: str, params: list[Any] | None = None) -> pa.Table:
    """Run one read-only statement on a store file and return its rows as Arrow.

    Refuses anything but SELECT / EXPLAIN / PRAGMA (DESCRIBE and SHOW are SELECTs) before
    running it, and opens the file read-only, so no path through here can write.
    """
    if not Path(path).exists():
        raise StoreError(f"store {path} does not exist (run `driftscope serve` or `import` first)")
    con = _connect(path, read_only=True)
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise StoreError(f"cannot parse SQL: {exc}") from None
        if len(statements) != 1:
            raise StoreError(f"expected exactly one statement, got {len(statements)}")
        kind = statements[0].type.name
        if kind not in _READ_STATEMENTS:
            raise StoreError(
                f"refused: {kind} statement; `driftscope sql` is read-only (SELECT, EXPLAIN, DESCRIBE, SHOW)"
            )
        try:
            return con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from None
    finally:
        con.close()
