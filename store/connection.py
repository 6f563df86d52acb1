"""Connections to a store file: the writer (open + migrate once, bulk insert, retention),
reader cursors, and read-only queries from another process.

One ``Store`` owns the single writer connection of a DuckDB file; readers take their own
cursors (``Store.cursor``) or, from another process, open the file read-only with
``open_readonly`` / ``query_readonly``. DuckDB lets one process write a file, so a second process cannot
open a store that ``driftscope serve`` holds; ``StoreLockedError`` says so plainly.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from store.errors import StoreError, StoreLockedError
from store.migrations import migrate_all
from store.schema_raw import RAW_TABLES
from store.sqlguard import statement_kind


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
        # No progress bar: DuckDB draws one on the terminal during long statements (merging the demo's
        # segments, a checkpoint, a report's reads), into output that people read and scripts parse.
        self._con.execute("SET enable_progress_bar = false")
        self._lock = threading.Lock()
        self._insert_sql: dict[tuple[str, tuple[str, ...]], str] = {}
        migrate_all(self._con)
        self._con.execute("SELECT 1").fetchall()  # no result of the migrations left open for register()

    def insert(self, tables: Mapping[str, pa.Table]) -> int:
        """Insert Arrow tables (raw table name -> rows) in one transaction; return rows.

        Either every table is committed or none is: the caller acknowledges its clients
        only after this returns. One table is one autocommitted statement (no BEGIN/COMMIT
        round trips); the INSERT text is built once per table and column list.
        """
        for name in tables:
            if name not in RAW_TABLES:
                raise ValueError(f"unknown raw table {name!r}")
        batches = [(self._sql_for(name, table), table) for name, table in tables.items() if table.num_rows]
        with self._lock:
            if len(batches) == 1:
                self._insert_one(*batches[0])
                return int(batches[0][1].num_rows)
            self._con.execute("BEGIN")
            try:
                for sql, table in batches:
                    self._insert_one(sql, table)
                self._con.execute("COMMIT")
            except Exception:
                self._con.execute("ROLLBACK")
                raise
        return sum(int(t.num_rows) for _, t in batches)

    def _sql_for(self, name: str, table: pa.Table) -> str:
        key = (name, tuple(table.column_names))
        sql = self._insert_sql.get(key)
        if sql is None:
            cols = ", ".join(f'"{c}"' for c in table.column_names)
            sql = self._insert_sql[key] = f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _ingest_batch"
        return sql

    def _insert_one(self, sql: str, table: pa.Table) -> None:
        self._con.register("_ingest_batch", table)
        try:
            self._con.execute(sql).fetchall()  # the row count: no result left open on the writer connection
        finally:
            self._con.unregister("_ingest_batch")

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


def connect_readonly(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to an existing store file (the caller closes it); StoreError says why not.

    DuckDB's progress bar is off: it draws on stdout during long queries, into output a script parses.
    """
    if not Path(path).exists():
        raise StoreError(f"store {path} does not exist (run `driftscope serve` or `import` first)")
    con = _connect(path, read_only=True)
    con.execute("SET enable_progress_bar = false")
    return con


@contextmanager
def open_readonly(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to a store file (closed on exit); clear errors when missing or locked."""
    con = connect_readonly(path)
    try:
        yield con
    finally:
        con.close()


def query_readonly(path: str | Path, sql: str, params: list[Any] | None = None) -> pa.Table:
    """Run one read-only statement on a store file and return its rows as Arrow.

    Refuses anything but SELECT / EXPLAIN / PRAGMA (DESCRIBE and SHOW are SELECTs) before
    running it, and opens the file read-only, so no path through here can write.
    """
    with open_readonly(path) as con:
        kind = statement_kind(con, sql)
        if kind not in _READ_STATEMENTS:
            raise StoreError(
                f"refused: {kind} statement; `driftscope sql` is read-only (SELECT, EXPLAIN, DESCRIBE, SHOW)"
            )
        try:
            return con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from None
