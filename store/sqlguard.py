"""One guarded, capped read-only query on a live store: ``POST /api/sql`` runs here.

The service's reader cursor shares the writer's database, so the guard is layered: exactly
one statement, of type SELECT (DESCRIBE and SHOW are SELECTs); no function or table that
reaches outside the store (files, globs, the environment, other databases: DuckDB's parse
tree is checked, via ``json_serialize_sql``); run inside a transaction that is always rolled
back; at most ``rows_max`` rows fetched; interrupted after ``timeout_s``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from store.errors import StoreError

_OUTSIDE_FUNCTIONS = frozenset({
    "getenv", "glob", "query", "query_table", "sniff_csv", "parquet_metadata", "parquet_schema",
    "parquet_file_metadata", "parquet_kv_metadata", "iceberg_scan", "iceberg_metadata", "delta_scan",
    "sqlite_scan", "postgres_scan", "mysql_scan", "current_setting", "duckdb_secrets", "duckdb_settings",
    "duckdb_extensions", "which_secret", "load_aws_credentials",
})  # fmt: skip
"""Functions refused besides every ``read_*`` and ``*_scan``: they read files, the environment or settings."""


@dataclass(frozen=True)
class SqlResult:
    """Rows of a capped query: column names, rows (lists), whether more rows existed, seconds taken."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    seconds: float


def _walk(node: Any) -> list[tuple[str, str]]:
    """(kind, name) of every function call and base table in a serialized parse tree."""
    out: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "function_name" in item:
                out.append(("function", str(item["function_name"]).lower()))
            if item.get("type") == "BASE_TABLE":
                out.append(("table", str(item.get("table_name", ""))))
                if item.get("catalog_name"):
                    out.append(("catalog", str(item["catalog_name"])))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def statement_kind(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The type (``SELECT``, ``INSERT``, ...) of the one statement in ``sql``; StoreError when it does not
    parse or holds more or fewer than one statement."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise StoreError(f"cannot parse SQL: {exc}") from None
    if len(statements) != 1:
        raise StoreError(f"expected exactly one statement, got {len(statements)}")
    return str(statements[0].type.name)


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse (StoreError naming why) anything but one SELECT over the store's own tables."""
    kind = statement_kind(con, sql)
    if kind != "SELECT":
        raise StoreError(f"refused: {kind} statement; only SELECT (and DESCRIBE, SHOW) run through the API")
    row = con.execute("SELECT json_serialize_sql($q)", {"q": sql}).fetchone()
    tree = orjson.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise StoreError(f"refused: cannot check the statement ({str(tree.get('error_message', ''))[:200]})")
    for what, name in _walk(tree):
        outside = (
            (what == "function" and (name.startswith("read_") or name.endswith("_scan") or name in _OUTSIDE_FUNCTIONS))
            or (what == "table" and any(c in name for c in "/\\.:"))
            or what == "catalog"
        )
        if outside:
            raise StoreError(f"refused: {what} {name[:80]!r} reaches outside the store")


def query_capped(con: duckdb.DuckDBPyConnection, sql: str, *, rows_max: int, timeout_s: float) -> SqlResult:
    """Run one read-only SELECT on ``con`` (a reader cursor) with row and time caps; StoreError says why not."""
    check_read_only(con, sql)
    started = time.perf_counter()
    timer = threading.Timer(timeout_s, con.interrupt)
    con.execute("BEGIN TRANSACTION")
    timer.start()
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description or []]
        fetched = cur.fetchmany(rows_max + 1)
    except duckdb.InterruptException:
        raise StoreError(f"query stopped after the {timeout_s:g} s time limit") from None
    except duckdb.Error as exc:
        raise StoreError(f"query failed: {exc}") from None
    finally:
        timer.cancel()
        with contextlib.suppress(duckdb.Error):  # an interrupted transaction may already be gone
            con.execute("ROLLBACK")
    rows = [list(r) for r in fetched[:rows_max]]
    return SqlResult(columns, rows, len(fetched) > rows_max, time.perf_counter() - started)
