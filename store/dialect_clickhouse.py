"""The SQL that differs between backends, for ClickHouse (same names as ``dialect_duckdb``).

Beside the shared names (``epoch_ns``, ``from_ns``, ``rank_in``, ``table_exists``) this
module holds what only the ClickHouse plane needs: how the Collector exporter spells span
kinds and status codes (``Server``, ``Error``; older releases ``SPAN_KIND_SERVER``,
``STATUS_CODE_ERROR``) in driftscope's upper-case vocabulary, how it keeps metric points
(attribute Maps, OTLP's temporality number, a start time of 0 for unknown), and the per-minute key as
an absolute instant (``DateTime('UTC')``), so no server timezone setting changes a
minute's boundaries. Parameters are ClickHouse's ``{name:Type}`` placeholders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.clickhouse import ClickHouse

NAME = "clickhouse"


def epoch_ns(expr: str) -> str:
    """SQL: nanoseconds since the epoch (Int64) of a DateTime64 / DateTime expression."""
    return f"toUnixTimestamp64Nano(toDateTime64({expr}, 9, 'UTC'))"


def from_ns(param: str) -> str:
    """SQL: a ``DateTime64(9, 'UTC')`` from a nanosecond parameter name (bound as Int64) or expression."""
    expr = param if not param.isidentifier() else f"{{{param}:Int64}}"
    return f"fromUnixTimestamp64Nano(toInt64({expr}), 'UTC')"


def rank_in(column: str, values: tuple[str, ...]) -> str:
    """SQL: the 1-based position of ``column`` in ``values`` (0 when absent), for ORDER BY."""
    listed = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    return f"indexOf([{listed}], {column})"


def table_exists(ch: ClickHouse, table: str) -> bool:
    """Whether ``table`` exists in the plane's database."""
    return bool(
        ch.scalar(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            {"db": ch.database, "t": table},
        )
    )


def span_kind(expr: str) -> str:
    """SQL: the exporter's span kind (``Server`` / ``SPAN_KIND_SERVER``) as driftscope's ``SERVER``."""
    return f"upper(replaceRegexpOne({expr}, '^(?i)SPAN_KIND_', ''))"


def status_code(expr: str) -> str:
    """SQL: the exporter's status code (``Error`` / ``STATUS_CODE_ERROR``) as driftscope's ``ERROR``."""
    return f"upper(replaceRegexpOne({expr}, '^(?i)STATUS_CODE_', ''))"


def minute_of(expr: str) -> str:
    """SQL: the UTC minute (``DateTime('UTC')``) holding a DateTime64 instant."""
    return f"toDateTime(intDiv(toUnixTimestamp64Nano({expr}), 60000000000) * 60, 'UTC')"


def minute_param(name: str) -> str:
    """SQL: a minute (``DateTime('UTC')``) from a nanosecond parameter ``name`` (a minute boundary)."""
    return f"toDateTime(intDiv({{{name}:Int64}}, 1000000000), 'UTC')"


def minute_ns(expr: str) -> str:
    """SQL: nanoseconds since the epoch (Int64) of a ``DateTime('UTC')`` minute."""
    return f"toInt64(toUnixTimestamp({expr})) * 1000000000"


def attribute(map_column: str, key: str) -> str:
    """SQL: one attribute of an exporter Map column (NULL when absent; the Map's '' default is not a value)."""
    quoted = "'" + key.replace("'", "\\'") + "'"
    return f"if(mapContains({map_column}, {quoted}), {map_column}[{quoted}], NULL)"


def attributes_text(map_column: str) -> str:
    """SQL: an exporter Map column as the JSON object text the DuckDB store keys rollups by (``{"k":"v"}``).

    ClickHouse escapes ``/`` as ``\\/`` (legal JSON, but another text than DuckDB's ``"/items"``); every
    ``\\/`` in its output is an escaped slash (a backslash in a value is ``\\\\``), so undoing it is exact."""
    return f"replaceAll(toJSONString({map_column}), '\\\\/', '/')"


def known_start(expr: str) -> str:
    """SQL: a point's start time, NULL when unknown (OTLP's 0, which the exporter stores as the epoch)."""
    return f"if(toUnixTimestamp64Nano({expr}) = 0, NULL, {expr})"


def is_cumulative(expr: str) -> str:
    """SQL: whether the exporter's ``AggregationTemporality`` (OTLP's enum number) is cumulative (2)."""
    return f"({expr} = 2)"
