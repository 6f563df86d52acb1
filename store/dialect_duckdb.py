"""The SQL that differs between backends, for DuckDB.

Store modules build their statements from these names instead of spelling DuckDB's
functions inline, so the ClickHouse backend (a later issue) adds ``dialect_clickhouse.py``
with the same names (``toUnixTimestamp64Nano``, ``fromUnixTimestamp64Nano``, ``indexOf``,
``system.tables``) and the functions above the store layer do not change. Plain aggregates,
window functions and ``GROUP BY`` are portable and stay as they are.
"""

from __future__ import annotations

import duckdb

NAME = "duckdb"


def epoch_ns(expr: str) -> str:
    """SQL: nanoseconds since the epoch (BIGINT) of a timestamp expression."""
    return f"epoch_ns({expr})"


def from_ns(param: str) -> str:
    """SQL: a ``TIMESTAMP_NS`` from a nanosecond parameter or expression."""
    return f"make_timestamp_ns({param})"


def rank_in(column: str, values: tuple[str, ...]) -> str:
    """SQL: the 1-based position of ``column`` in ``values`` (NULL when absent), for ORDER BY."""
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"list_position([{listed}], {column})"


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists in the main schema."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [table]
    ).fetchone()
    return bool(row and row[0])
