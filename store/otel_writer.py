"""driftscope's raw rows written into the Collector exporter's tables (ClickHouse mode ingest).

The collector decodes OTLP into driftscope's raw Arrow tables (``schema_raw``); this module
maps spans and logs onto the exporter's columns (``Server`` / ``Error`` spellings, attribute
maps of strings, ``service.version`` in the resource map, nanosecond ``DateTime64(9)`` times)
so that a user may point SDKs at driftscope or at a Collector and get the same rows. The
mapping runs in an in-memory DuckDB over the Arrow batch (vectorised; no row loop in Python)
and the result goes through :meth:`ClickHouse.insert_arrow`, the same call on chdb and on a
server.

Metric points are not mapped yet: in ClickHouse mode :class:`PlaneIngest` keeps them in the
local store, where they are rolled up as before (see the README's ClickHouse section).
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


def to_exporter_rows(table: str, rows: pa.Table) -> pa.Table | None:
    """The exporter's rows for a batch of driftscope raw ``spans`` or ``logs`` (None for other tables)."""
    sql = {"spans": SPANS, "logs": LOGS}.get(table)
    if sql is None:
        return None
    con = duckdb.connect()
    try:
        con.register("batch", rows)
        out = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    # Arrow maps keep their (key, value) order; ClickHouse reads ``map<string, string>`` as a Map.
    return out


class ClickHouseWriter:
    """Writes raw batches into the exporter's tables; the simulator's and the receivers' sink in ClickHouse mode."""

    def __init__(self, ch: ClickHouse) -> None:
        self.ch = ch

    def insert(self, tables: Mapping[str, pa.Table]) -> int:
        """Insert spans and logs (other tables are skipped); return the rows written.

        ClickHouse commits each INSERT on its own: a failure part-way leaves earlier tables
        written, and the caller (which has not acknowledged its client) may send the batch again.
        """
        written = 0
        for name, rows in tables.items():
            mapped = to_exporter_rows(name, rows) if rows.num_rows else None
            if mapped is not None:
                target = self.ch.tables.traces if name == "spans" else self.ch.tables.logs
                written += self.ch.insert_arrow(target, mapped)
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
    """The receivers' sink in ClickHouse mode: spans and logs into the exporter's tables (created when
    missing, as the Collector would), metric points into the local store.

    ClickHouse is written first: when it fails the batch is not acknowledged and nothing is in the
    local store; the client retries. A failure between the spans and the logs of one batch leaves
    the spans written, so a retried batch may repeat them (at-least-once, as with a Collector).
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
        plane = {n: t for n, t in tables.items() if n in ("spans", "logs")}
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
        if rest:
            written += self.local.insert(rest)
        return written

    def close(self) -> None:
        if self._ch is not None:
            self._ch.close()
            self._ch = None
