"""Literal SQL text for evidence: queries a user can paste into ``driftscope sql``.

Evidence SQL must reproduce the counterexamples on its own, so values are inlined as
literals (quoted here, never from unescaped user text) instead of bound parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from store.connection import fetch_arrow


def lit(value: str | None) -> str:
    """A SQL string literal (or NULL)."""
    if value is None:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"


def lits(values: Iterable[str]) -> str:
    """A parenthesised list of string literals for ``IN``."""
    return "(" + ", ".join(lit(v) for v in values) + ")"


def json_path(key: str) -> str:
    """The JSON path literal of a top-level attribute key (keys contain dots: ``$."http.route"``)."""
    return lit('$."' + key.replace('"', '\\"') + '"')


def window_sql(column: str, start_ns: int, end_ns: int) -> str:
    """``column`` in [start, end) as literal SQL."""
    return f"{column} >= make_timestamp_ns({int(start_ns)}) AND {column} < make_timestamp_ns({int(end_ns)})"


def op_sql(service: str | None, operation: str | None, span_kind: str | None, prefix: str = "") -> str:
    """Equality filters on a span's service, name and kind (None = any)."""
    parts = []
    if service is not None:
        parts.append(f"{prefix}service_name = {lit(service)}")
    if operation is not None:
        parts.append(f"{prefix}span_name = {lit(operation)}")
    if span_kind is not None:
        parts.append(f"{prefix}span_kind = {lit(span_kind)}")
    return " AND ".join(parts) or "TRUE"


def fetch_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """Rows of a small query as dicts; timestamp columns become int nanoseconds (JSON-safe, lossless)."""
    table = fetch_arrow(con, sql)
    columns = [col.cast(pa.int64()) if pa.types.is_timestamp(col.type) else col for col in table.itercolumns()]
    rows: list[dict[str, Any]] = pa.table(columns, names=table.column_names).to_pylist()
    return rows


SAMPLE_TARGET = 25_000
"""Spans per (service, operation, kind) that a profile reads: busier operations are sampled
deterministically (by span id hash) down to about this many, which keeps a day's profile
fast while every law keeps far more support than ``stats.MIN_SUPPORT``."""


def sampled_spans_sql(columns: str, start_ns: int, end_ns: int, target: int = SAMPLE_TARGET) -> str:
    """A subquery of ``columns`` of spans in [start, end), at most about ``target`` per operation, plus ``modulus``.

    A span is kept when hash(span_id) % modulus = 0, modulus = max(1, spans of its operation // target):
    deterministic, so the same span is in or out of every query that uses the same window.
    """
    win = window_sql("start_time", start_ns, end_ns)
    return (
        f"(SELECT {columns}, o.modulus FROM spans JOIN (SELECT service_name, span_name, span_kind, "
        f"greatest(1, count(*) // {int(target)})::UBIGINT AS modulus FROM spans WHERE {win} GROUP BY ALL) o "
        "USING (service_name, span_name, span_kind) "
        f"WHERE {win} AND hash(span_id) % o.modulus = 0)"
    )
