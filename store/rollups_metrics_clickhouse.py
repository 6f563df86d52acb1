"""Per-minute rollups of the exporter's metric tables, computed inside ClickHouse.

The same rollups as the DuckDB backend's ``analysis.metric_rollup`` (same keys, same rules),
read from ``otel_metrics_gauge``, ``_sum`` and ``_histogram`` as the Collector's exporter
writes them and written into MergeTree tables beside them by ``INSERT ... SELECT``:

- ``rollup_gauges``: mean / last / min / max / samples per (minute, metric, service, attributes);
- ``rollup_sums``: the counter increase per minute; cumulative points become deltas per series
  (metric, service, attributes, resource, scope) with reset detection, looking back
  ``lookback_s`` for each series' previous point: a start time that changed or a value that went
  down is a reset (the point's own value is the delta); a series' first point counts from its
  start time when that is known, else it has no delta;
- ``rollup_histograms``: explicit-bucket deltas per (minute, metric, service, attributes, bounds),
  with a reset also on any bucket that went down or a changed bucket layout.

The series' previous point comes from ClickHouse's window functions (``lagInFrame``), bucket
arithmetic from its array functions, so nothing moves to Python. Exponential histograms are few
(batch jobs, one point per run) and their merge rescales buckets (``analysis.histogram``): their
points are read here (:func:`exp_histogram_points`), merged by the caller with the DuckDB
backend's own code, and written back (:func:`insert_exp_rollup`).

Attributes are the exporter's ``Map(LowCardinality(String), String)``; the rollup key is its
JSON text (``{"k":"v"}``), the form the DuckDB store keeps string-valued attributes in.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from store import dialect_clickhouse as ch_sql
from store.clickhouse import ClickHouse

_KEY = "minute DateTime('UTC'), metric_name String, service_name Nullable(String), attributes String"
_ORDER = "PARTITION BY toYYYYMM(minute) ORDER BY (minute, metric_name, attributes)"

METRIC_ROLLUP_DDL: dict[str, str] = {
    "rollup_sums": f"{_KEY}, delta Nullable(Float64), resets Int32, points Int32",
    "rollup_gauges": f"""{_KEY}, value_mean Nullable(Float64), value_last Nullable(Float64),
        value_min Nullable(Float64), value_max Nullable(Float64), samples Int32""",
    "rollup_histograms": f"""{_KEY}, bounds Array(Float64), counts Array(Int64), count Int64,
        sum Nullable(Float64), resets Nullable(Int32)""",
    "rollup_exp_histograms": f"""{_KEY}, scale Int32, zero_count Int64, positive_offset Nullable(Int32),
        positive_counts Array(Int64), negative_offset Nullable(Int32), negative_counts Array(Int64), count Int64,
        sum Nullable(Float64)""",
}

METRIC_SOURCES: dict[str, tuple[str, ...]] = {
    "sum": ("rollup_sums",),
    "gauge": ("rollup_gauges",),
    "histogram": ("rollup_histograms",),
    "exponential_histogram": ("rollup_exp_histograms",),
}
"""Exporter metric table (``OtelTables`` field) -> the rollup tables it fills."""


def create_metric_rollup_tables(ch: ClickHouse) -> None:
    """Create the metric rollup tables in the plane's database."""
    for table, columns in METRIC_ROLLUP_DDL.items():
        ch.command(f"CREATE TABLE IF NOT EXISTS `{ch.database}`.{table} ({columns}) ENGINE = MergeTree {_ORDER}")


def _points(ch: ClickHouse, key: str, columns: str) -> str:
    """The exporter's points of table ``key`` from {lo} - {lookback} s to {hi}, with the series key columns."""
    table = f"`{ch.database}`.`{getattr(ch.tables, key)}`"
    return f"""
        SELECT MetricName AS metric_name, nullIf(ServiceName, '') AS service_name,
               {ch_sql.attributes_text("Attributes")} AS attributes,
               {ch_sql.attributes_text("ResourceAttributes")} AS resource, ScopeName AS scope,
               TimeUnix AS t, {ch_sql.known_start("StartTimeUnix")} AS st,
               {ch_sql.is_cumulative("AggregationTemporality")} AS cum, {columns}
        FROM {table}
        WHERE TimeUnix >= {ch_sql.from_ns("lo")} - toIntervalSecond({{lookback:Int64}})
          AND TimeUnix < {ch_sql.from_ns("hi")}
    """


_WINDOW = "PARTITION BY metric_name, service_name, attributes, resource, scope, cum ORDER BY t, st NULLS FIRST, {tie}"
_FRAME = " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
_START_CHANGED = "(st IS NOT NULL AND prev_st IS NOT NULL AND st != prev_st)"
# A series' first point (in the lookback) counts from its start time when that is known and earlier.
_FIRST_RESET = "(st IS NOT NULL AND st < t)"


def sums_sql(ch: ClickHouse) -> str:
    """INSERT of ``rollup_sums`` rows for [{lo}, {hi}) ns (cumulative points as deltas, resets detected)."""
    window = _WINDOW.format(tie="v") + _FRAME
    return f"""
    INSERT INTO `{ch.database}`.rollup_sums (minute, metric_name, service_name, attributes, delta, resets, points)
    SELECT {ch_sql.minute_of("t")} AS minute, metric_name, service_name, attributes,
           ifNull(sum(delta), 0.0) AS delta, toInt32(sum(reset)) AS resets, toInt32(count()) AS points
    FROM (
        SELECT *, toUInt8(cum AND if(first, {_FIRST_RESET}, {_START_CHANGED} OR v < prev_v)) AS reset,
               if(NOT cum OR reset, v, if(first, NULL, v - prev_v)) AS delta
        FROM (
            SELECT *, row_number() OVER w = 1 AS first, lagInFrame(v) OVER w AS prev_v,
                   lagInFrame(st) OVER w AS prev_st
            FROM ({_points(ch, "sum", "Value AS v")})
            WINDOW w AS ({window})
        )
    )
    WHERE t >= {ch_sql.from_ns("lo")}
    GROUP BY minute, metric_name, service_name, attributes
    """


def gauges_sql(ch: ClickHouse) -> str:
    """INSERT of ``rollup_gauges`` rows for [{lo}, {hi}) ns."""
    table = f"`{ch.database}`.`{ch.tables.gauge}`"
    return f"""
    INSERT INTO `{ch.database}`.rollup_gauges
    SELECT {ch_sql.minute_of("TimeUnix")} AS minute, MetricName AS metric_name,
           nullIf(ServiceName, '') AS service_name, {ch_sql.attributes_text("Attributes")} AS attributes,
           avg(Value), argMax(Value, TimeUnix), min(Value), max(Value), toInt32(count())
    FROM {table}
    WHERE TimeUnix >= {ch_sql.from_ns("lo")} AND TimeUnix < {ch_sql.from_ns("hi")}
    GROUP BY minute, metric_name, service_name, attributes
    """


def histograms_sql(ch: ClickHouse) -> str:
    """INSERT of ``rollup_histograms`` rows for [{lo}, {hi}) ns (cumulative points as deltas, resets detected)."""
    window = _WINDOW.format(tie="c") + _FRAME
    columns = "toInt64(Count) AS c, Sum AS s, arrayMap(x -> toInt64(x), BucketCounts) AS b, ExplicitBounds AS bounds"
    same_layout = "(bounds = prev_bounds AND length(b) = length(prev_b))"
    # Resized to b's length so the subtraction is defined; a different layout is a reset anyway.
    diff = "arrayMap((x, y) -> x - y, b, arrayResize(prev_b, length(b)))"
    reset = f"if(first, {_FIRST_RESET}, {_START_CHANGED} OR c < prev_c OR NOT {same_layout} OR arrayMin({diff}) < 0)"
    return f"""
    INSERT INTO `{ch.database}`.rollup_histograms
        (minute, metric_name, service_name, attributes, bounds, counts, count, sum, resets)
    SELECT {ch_sql.minute_of("t")} AS minute, metric_name, service_name, attributes, bounds,
           sumForEach(delta_b) AS counts, sum(assumeNotNull(delta_c)) AS count, sum(delta_s) AS sum,
           toInt32(sum(reset)) AS resets
    FROM (
        SELECT *, toUInt8(cum AND {reset}) AS reset,
               if(NOT cum OR reset, toNullable(c), if(first, NULL, c - prev_c)) AS delta_c,
               if(NOT cum OR reset, toNullable(s), if(first, NULL, s - prev_s)) AS delta_s,
               if(NOT cum OR reset, b, if(first, [], {diff})) AS delta_b
        FROM (
            SELECT *, row_number() OVER w = 1 AS first, lagInFrame(c) OVER w AS prev_c,
                   lagInFrame(s) OVER w AS prev_s, lagInFrame(b) OVER w AS prev_b,
                   lagInFrame(bounds) OVER w AS prev_bounds, lagInFrame(st) OVER w AS prev_st
            FROM ({_points(ch, "histogram", columns)})
            WINDOW w AS ({window})
        )
    )
    WHERE t >= {ch_sql.from_ns("lo")} AND delta_c IS NOT NULL
    GROUP BY minute, metric_name, service_name, attributes, bounds
    """


def exp_histogram_points(ch: ClickHouse, lo_ns: int, hi_ns: int, lookback_s: float) -> list[dict[str, Any]]:
    """The exporter's exponential histogram points from ``lo_ns - lookback_s`` to ``hi_ns``, ordered by
    series and time, named as the DuckDB store's (``minute`` in ns; temporality as a word)."""
    columns = (
        "toInt64(Count) AS count, Sum AS sum, Scale AS scale, toInt64(ZeroCount) AS zero_count, "
        "PositiveOffset AS positive_offset, PositiveBucketCounts AS positive_counts, "
        "NegativeOffset AS negative_offset, NegativeBucketCounts AS negative_counts"
    )
    sql = f"""
        SELECT metric_name, service_name, attributes, resource AS resource_attributes, scope AS scope_name,
               {ch_sql.epoch_ns("t")} AS time, count, sum, scale, zero_count, positive_offset, positive_counts,
               negative_offset, negative_counts, if(cum, 'cumulative', 'delta') AS temporality,
               {ch_sql.minute_ns(ch_sql.minute_of("t"))} AS minute
        FROM ({_points(ch, "exponential_histogram", columns)})
        ORDER BY metric_name, service_name, attributes, resource_attributes, scope_name, time
    """
    params = {"lo": lo_ns, "hi": hi_ns, "lookback": int(lookback_s)}
    rows: list[dict[str, Any]] = ch.query_arrow(sql, params).to_pylist()
    return rows


def insert_exp_rollup(ch: ClickHouse, rows: list[dict[str, Any]]) -> int:
    """Write merged exponential histogram rollup rows (``minute`` in ns) into ``rollup_exp_histograms``."""
    if not rows:
        return 0
    rows = [{**r, "minute": r["minute"] // 1_000_000_000} for r in rows]
    return ch.insert_arrow("rollup_exp_histograms", pa.Table.from_pylist(rows, schema=_EXP_ROLLUP))


_EXP_ROLLUP = pa.schema([
    ("minute", pa.timestamp("s", tz="UTC")), ("metric_name", pa.string()), ("service_name", pa.string()),
    ("attributes", pa.string()), ("scale", pa.int32()), ("zero_count", pa.int64()), ("positive_offset", pa.int32()),
    ("positive_counts", pa.list_(pa.int64())), ("negative_offset", pa.int32()),
    ("negative_counts", pa.list_(pa.int64())), ("count", pa.int64()), ("sum", pa.float64()),
])  # fmt: skip
