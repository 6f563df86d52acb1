"""driftscope's raw rows written into the Collector exporter's tables (ClickHouse mode ingest).

The collector decodes OTLP into driftscope's raw Arrow tables (``schema_raw``); this module
maps spans, logs and metric points onto the exporter's columns (``Server`` / ``Error`` spellings,
attribute maps of strings, ``service.version`` in the resource map, nanosecond ``DateTime64(9)``
times, temporality as OTLP's enum number, an unknown start time as 0)
so that a user may point SDKs at driftscope or at a Collector and get the same rows. The
mapping runs in an in-memory DuckDB over the Arrow batch (vectorised; no row loop in Python)
and the result goes through :meth:`ClickHouse.insert_arrow`, the same call on chdb and on a
server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import duckdb
import pyarrow as pa

from store.clickhouse import ClickHouse, ClickHouseTarget


def _json_map(column: str) -> str:
    """DuckDB SQL: a JSON object column as MAP(VARCHAR, VARCHAR) of its values' text (strings unquoted)."""
    path = "'$.\"' || replace(k, '\"', '\\\"') || '\"'"
    entry = "{'key': k, 'value': coalesce(json_extract_string(" + column + ", " + path + "), '')}"
    return (
        f"CASE WHEN {column} IS NULL THEN MAP {{}}::MAP(VARCHAR, VARCHAR) "
        f"ELSE map_from_entries(list_transform(json_keys({column}), lambda k: {entry})) END"
    )


def _title(column: str) -> str:
    return f"upper(left({column}, 1)) || lower(substr({column}, 2))"


SPANS = f"""
SELECT start_time AS Timestamp, trace_id AS TraceId, span_id AS SpanId, coalesce(parent_span_id, '') AS ParentSpanId,
       coalesce(trace_state, '') AS TraceState, span_name AS SpanName, {_title("span_kind")} AS SpanKind,
       coalesce(service_name, '') AS ServiceName,
       map_concat({_json_map("resource_attributes")},
                  CASE WHEN service_version IS NULL THEN MAP {{}}::MAP(VARCHAR, VARCHAR)
                       ELSE MAP {{'service.version': service_version}} END) AS ResourceAttributes,
       coalesce(scope_name, '') AS ScopeName, coalesce(scope_version, '') AS ScopeVersion,
       {_json_map("attributes")} AS SpanAttributes, duration_ns::UBIGINT AS Duration,
       {_title("status_code")} AS StatusCode, coalesce(status_message, '') AS StatusMessage
FROM batch
"""

LOGS = f"""
SELECT coalesce(time, observed_time) AS Timestamp, coalesce(trace_id, '') AS TraceId, coalesce(span_id, '') AS SpanId,
       coalesce(flags, 0)::UTINYINT AS TraceFlags, coalesce(severity_text, '') AS SeverityText,
       coalesce(severity_number, 0)::UTINYINT AS SeverityNumber, coalesce(service_name, '') AS ServiceName,
       coalesce(body, '') AS Body, coalesce(resource_schema_url, '') AS ResourceSchemaUrl,
       map_concat({_json_map("resource_attributes")},
                  CASE WHEN service_version IS NULL THEN MAP {{}}::MAP(VARCHAR, VARCHAR)
                       ELSE MAP {{'service.version': service_version}} END) AS ResourceAttributes,
       coalesce(scope_name, '') AS ScopeName, coalesce(scope_version, '') AS ScopeVersion,
       {_json_map("scope_attributes")} AS ScopeAttributes, {_json_map("attributes")} AS LogAttributes
FROM batch
"""


_RESOURCE = f"""map_concat({_json_map("resource_attributes")},
                  CASE WHEN service_version IS NULL THEN MAP {{}}::MAP(VARCHAR, VARCHAR)
                       ELSE MAP {{'service.version': service_version}} END)"""

_METRIC_HEAD = f"""
SELECT {_RESOURCE} AS ResourceAttributes, coalesce(resource_schema_url, '') AS ResourceSchemaUrl,
       coalesce(scope_name, '') AS ScopeName, coalesce(scope_version, '') AS ScopeVersion,
       {_json_map("scope_attributes")} AS ScopeAttributes, coalesce(service_name, '') AS ServiceName,
       metric_name AS MetricName, coalesce(metric_description, '') AS MetricDescription,
       coalesce(metric_unit, '') AS MetricUnit, {_json_map("attributes")} AS Attributes,
       coalesce(start_time, make_timestamp_ns(0)) AS StartTimeUnix, time AS TimeUnix,
       coalesce(flags, 0)::UINTEGER AS Flags"""
# OTLP's unset start time is 0; the readers take a zero StartTimeUnix as unknown (``dialect_clickhouse``).

_TEMPORALITY = "(CASE temporality WHEN 'delta' THEN 1 WHEN 'cumulative' THEN 2 ELSE 0 END)::INTEGER"

GAUGES = f"{_METRIC_HEAD}, value AS Value FROM batch WHERE kind = 'gauge'"
SUMS = f"""{_METRIC_HEAD}, value AS Value, {_TEMPORALITY} AS AggregationTemporality,
       coalesce(is_monotonic, false) AS IsMonotonic FROM batch WHERE kind = 'sum'"""
HISTOGRAMS = f"""{_METRIC_HEAD}, count AS Count, coalesce(sum, 0.0) AS Sum, bucket_counts AS BucketCounts,
       bounds AS ExplicitBounds, coalesce(min, 0.0) AS Min, coalesce(max, 0.0) AS Max,
       {_TEMPORALITY} AS AggregationTemporality FROM batch"""
EXP_HISTOGRAMS = f"""{_METRIC_HEAD}, count AS Count, coalesce(sum, 0.0) AS Sum, scale AS Scale, zero_count AS ZeroCount,
       coalesce(positive_offset, 0) AS PositiveOffset, positive_counts AS PositiveBucketCounts,
       coalesce(negative_offset, 0) AS NegativeOffset, negative_counts AS NegativeBucketCounts,
       coalesce(min, 0.0) AS Min, coalesce(max, 0.0) AS Max, {_TEMPORALITY} AS AggregationTemporality FROM batch"""
SUMMARIES = f"""{_METRIC_HEAD}, count AS Count, coalesce(sum, 0.0) AS Sum,
       quantiles AS "ValueAtQuantiles.Quantile", quantile_values AS "ValueAtQuantiles.Value" FROM batch"""

MAPPINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "spans": (("traces", SPANS),),
    "logs": (("logs", LOGS),),
    "metric_points": (("gauge", GAUGES), ("sum", SUMS)),
    "histogram_points": (("histogram", HISTOGRAMS),),
    "exp_histogram_points": (("exponential_histogram", EXP_HISTOGRAMS),),
    "summary_points": (("summary", SUMMARIES),),
}
"""driftscope raw table -> (exporter table key in ``OtelTables``, the SELECT over ``batch`` giving its rows).
Exemplars are not carried over (the exporter's Nested ``Exemplars`` stay empty; no reader uses them)."""


def to_exporter_rows(table: str, rows: pa.Table) -> dict[str, pa.Table]:
    """The exporter's rows for a batch of a driftscope raw table, per exporter table key (empty for
    tables the exporter has no place for)."""
    out: dict[str, pa.Table] = {}
    con = duckdb.connect()
    try:
        con.register("batch", rows)
        for key, sql in MAPPINGS.get(table, ()):
            mapped = con.sql(sql).to_arrow_table()
            if mapped.num_rows:
                out[key] = mapped
    finally:
        con.close()
    # Arrow maps keep their (key, value) order; ClickHouse reads ``map<string, string>`` as a Map.
    return out


class ClickHouseWriter:
    """Writes raw batches into the exporter's tables; the simulator's and the receivers' sink in ClickHouse mode."""

    def __init__(self, ch: ClickHouse) -> None:
        self.ch = ch

    def insert(self, tables: Mapping[str, pa.Table]) -> int:
        """Insert spans, logs and metric points (tables the exporter has no place for are skipped); return
        the rows written.

        ClickHouse commits each INSERT on its own: a failure part-way leaves earlier tables
        written, and the caller (which has not acknowledged its client) may send the batch again.
        """
        written = 0
        for name, rows in tables.items():
            if not rows.num_rows:
                continue
            for key, mapped in to_exporter_rows(name, rows).items():
                written += self.ch.insert_arrow(getattr(self.ch.tables, key), mapped)
        return written

    def write(self, tables: dict[str, pa.Table]) -> None:
        self.insert(tables)

    def close(self) -> None:
        """The connection belongs to the caller; nothing to do."""


class RawSink(Protocol):
    """Where the collector's writer commits decoded batches (``Store`` or :class:`PlaneIngest`)."""

    def insert(self, tables: Mapping[str, pa.Table]) -> int:
        """Commit raw tables (name -> rows); return rows written. Raises when nothing may be acknowledged."""
        ...


class PlaneIngest:
    """The receivers' sink in ClickHouse mode: spans, logs and metric points into the exporter's tables
    (created when missing, as the Collector would); a table the exporter has no place for (none today)
    into the local store.

    ClickHouse is written first: when it fails the batch is not acknowledged and nothing is in the
    local store; the client retries. A failure between two tables of one batch leaves the earlier
    ones written, so a retried batch may repeat them (at-least-once, as with a Collector).
    """

    def __init__(self, target: ClickHouseTarget, local: RawSink) -> None:
        self.target = target
        self.local = local
        self._ch: ClickHouse | None = None

    def _writer(self) -> ClickHouseWriter:
        if self._ch is None:
            ch = ClickHouse(self.target)
            try:
                ch.create_exporter_tables()
            except Exception:
                ch.close()
                raise
            self._ch = ch
        return ClickHouseWriter(self._ch)

    def insert(self, tables: Mapping[str, pa.Table]) -> int:
        plane = {n: t for n, t in tables.items() if n in MAPPINGS}
        rest = {n: t for n, t in tables.items() if n not in plane}
        written = 0
        if any(t.num_rows for t in plane.values()):
            try:
                written += self._writer().insert(plane)
            except Exception:
                if self._ch is not None:
                    self._ch.close()
                    self._ch = None
                raise
        if any(t.num_rows for t in rest.values()):
            written += self.local.insert(rest)
        return written

    def close(self) -> None:
        if self._ch is not None:
            self._ch.close()
            self._ch = None
