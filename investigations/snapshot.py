"""A snapshot pinned to the incident window: a read-only DuckDB copy of the store.

The window's rows (``extract_window``: baseline start to incident end; or, for a small
store, the whole file with ``copy_store``) are written to a file in the investigation's
directory, which is opened ``read_only`` with external access disabled and the
configuration locked, so a tool can neither write (the connection refuses it, whatever
the SQL says), nor read files or URLs, nor turn those settings back on. Every statement
runs under a timeout (the connection is interrupted) and returns at most ``row_cap``
rows. Because the copy never changes, re-running a tool call later (verification,
replay, audits) sees the same data.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from store.timeconv import NS_PER_S, iso_from_ns, naive_from_ns

SNAPSHOT_FILE = "snapshot.duckdb"
T = TypeVar("T")


class SnapshotError(ValueError):
    """A statement the snapshot refuses or cannot run; the message says why."""


@dataclass(frozen=True)
class IncidentWindow:
    """The incident window [start_ns, end_ns) and the baseline [baseline_start_ns, start_ns) before it."""

    start_ns: int
    end_ns: int
    baseline_start_ns: int

    def __post_init__(self) -> None:
        if not self.baseline_start_ns < self.start_ns < self.end_ns:
            raise ValueError("window: need baseline_start_ns < start_ns < end_ns")

    @classmethod
    def around(cls, start_ns: int, end_ns: int, baseline_s: float) -> IncidentWindow:
        """The window [start_ns, end_ns) with ``baseline_s`` seconds of baseline before it."""
        return cls(start_ns, end_ns, start_ns - int(baseline_s * NS_PER_S))

    @property
    def incident_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S

    @property
    def baseline_s(self) -> float:
        return (self.start_ns - self.baseline_start_ns) / NS_PER_S

    def params(self) -> dict[str, Any]:
        """SQL parameters: $b0 (baseline start), $i0 (incident start), $i1 (end) as timestamps, lengths in s."""
        stamps = {"b0": self.baseline_start_ns, "i0": self.start_ns, "i1": self.end_ns}
        return {**{k: to_timestamp(v) for k, v in stamps.items()}, "bs": self.baseline_s, "is": self.incident_s}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start_ns": self.start_ns, "end_ns": self.end_ns}
        out.update(baseline_start_ns=self.baseline_start_ns, start=iso(self.start_ns), end=iso(self.end_ns))
        out["baseline_start"] = iso(self.baseline_start_ns)
        return out


to_timestamp = naive_from_ns
"""A naive UTC datetime (microseconds) of a nanosecond timestamp, as DuckDB TIMESTAMP parameters want."""


def iso(ns: int) -> str:
    """ISO-8601 UTC of a nanosecond timestamp (second precision)."""
    return iso_from_ns(ns, "seconds")


@dataclass(frozen=True)
class QueryResult:
    """At most ``row_cap`` rows of one statement; ``truncated`` when there were more."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def copy_store(store_path: str | Path, dest_dir: str | Path) -> Path:
    """Copy the store file (and its WAL) into ``dest_dir``; return the copy's path."""
    src = Path(store_path)
    if not src.exists():
        raise SnapshotError(f"store {src} does not exist")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / SNAPSHOT_FILE
    shutil.copyfile(src, target)
    wal = src.with_name(src.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    return target


_TIME_COLUMNS = {
    "spans": "start_time", "logs": "coalesce(time, observed_time)", "metric_points": "time",
    "histogram_points": "time", "exp_histogram_points": "time", "summary_points": "time",
}  # fmt: skip
"""Raw tables and the time column their rows are pinned to the window by."""
_WHOLE = ("findings", "invariants", "deploy_markers")
"""Small derived tables copied whole (the tools read their history)."""


def extract_window(con: duckdb.DuckDBPyConnection, dest_dir: str | Path, window: IncidentWindow) -> Path:
    """Write the window's rows (baseline start to incident end) of the store behind ``con`` into a new
    DuckDB file in ``dest_dir``; return its path.

    Raw tables are cut by their time column, rollups by minute; findings, invariants and
    deploy markers are copied whole. Reads run in ``con``'s own transaction, so a store
    being written to (``driftscope serve``) yields a consistent snapshot.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / SNAPSHOT_FILE
    if target.exists():
        raise SnapshotError(f"snapshot {target} exists already")
    alias = f"snapshot_{abs(hash((str(target), window.start_ns))) % 10**12}"
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()]  # fmt: skip
    params = window.params()
    con.execute(f"ATTACH '{str(target).replace(chr(39), chr(39) * 2)}' AS {alias}")
    try:
        for table in tables:
            if table in _TIME_COLUMNS or table.startswith("rollup_"):
                column = _TIME_COLUMNS.get(table, "minute")
                where = f"WHERE {column} >= $b0 AND {column} < $i1"
                if table.startswith("rollup_") and not _has_column(con, table, "minute"):
                    where = ""
                args = {"b0": params["b0"], "i1": params["i1"]} if where else {}
                con.execute(f'CREATE TABLE {alias}."{table}" AS SELECT * FROM "{table}" {where}', args)
            elif table in _WHOLE:
                con.execute(f'CREATE TABLE {alias}."{table}" AS SELECT * FROM "{table}"')
    finally:
        con.execute(f"DETACH {alias}")
    return target


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = ?", [table, column]
    ).fetchone()
    return bool(row and row[0])


class Snapshot:
    """A read-only connection on a pinned copy of the store, with timeouts and row caps."""

    def __init__(
        self, path: str | Path, window: IncidentWindow, *, statement_timeout_s: float = 20.0, row_cap: int = 200
    ) -> None:
        self.path = Path(path)
        self.window = window
        self.statement_timeout_s = statement_timeout_s
        self.row_cap = row_cap
        self._lock = threading.Lock()
        try:
            self._con = duckdb.connect(
                str(self.path),
                read_only=True,
                config={"enable_external_access": "false", "lock_configuration": "true", "threads": "2"},
            )
        except duckdb.Error as exc:
            raise SnapshotError(f"cannot open snapshot {self.path}: {exc}") from None
        self.tables = {r[0] for r in self._con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}

    @classmethod
    def create(cls, store_path: str | Path, dest_dir: str | Path, window: IncidentWindow, **kwargs: Any) -> Snapshot:
        """Copy the store into ``dest_dir`` and open the copy."""
        return cls(copy_store(store_path, dest_dir), window, **kwargs)

    @classmethod
    def extract(
        cls, con: duckdb.DuckDBPyConnection, dest_dir: str | Path, window: IncidentWindow, **kwargs: Any
    ) -> Snapshot:
        """Pin the window's rows of the store behind ``con`` into ``dest_dir`` and open them."""
        return cls(extract_window(con, dest_dir, window), window, **kwargs)

    def query(self, sql: str, params: dict[str, Any] | None = None, *, row_cap: int | None = None) -> QueryResult:
        """Run one read statement; SnapshotError when it is not one, fails or times out."""
        cap = self.row_cap if row_cap is None else row_cap
        with self._lock:
            try:
                statements = self._con.extract_statements(sql)
            except duckdb.Error as exc:
                raise SnapshotError(f"cannot parse SQL: {str(exc)[:300]}") from None
            if len(statements) != 1:
                raise SnapshotError(f"expected exactly one statement, got {len(statements)}")
            timer = threading.Timer(self.statement_timeout_s, self._con.interrupt)
            timer.start()
            try:
                cur = self._con.execute(sql, params or {})
                rows = cur.fetchmany(cap + 1)
                columns = [d[0] for d in cur.description or []]
            except duckdb.InterruptException:
                raise SnapshotError(f"statement timed out after {self.statement_timeout_s:g} s") from None
            except duckdb.Error as exc:
                raise SnapshotError(f"{type(exc).__name__}: {str(exc)[:300]}") from None
            finally:
                timer.cancel()
        return QueryResult(columns, rows[:cap], len(rows) > cap)

    def statement_kinds(self, sql: str) -> list[str]:
        """The statement types of ``sql`` (SELECT, INSERT, ...), for a clear refusal before running it."""
        with self._lock:
            try:
                return [st.type.name for st in self._con.extract_statements(sql)]
            except duckdb.Error as exc:
                raise SnapshotError(f"cannot parse SQL: {str(exc)[:300]}") from None

    def with_connection(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn`` on the read-only connection (for analysis functions), under the statement timeout."""
        with self._lock:
            timer = threading.Timer(self.statement_timeout_s, self._con.interrupt)
            timer.start()
            try:
                return fn(self._con)
            except duckdb.InterruptException:
                raise SnapshotError(f"statement timed out after {self.statement_timeout_s:g} s") from None
            except duckdb.Error as exc:
                raise SnapshotError(f"{type(exc).__name__}: {str(exc)[:300]}") from None
            finally:
                timer.cancel()

    def has(self, table: str) -> bool:
        return table in self.tables

    def close(self) -> None:
        with self._lock:
            self._con.close()
