"""Reads the digital twin fits from: spans, queue gauges, log lines and attribute samples of a window.

Each returns Arrow with ns integer times; the twin (``twin.fit``) does the statistics. Spans
are read without their attribute maps (the heavy column); ``attribute_samples`` reads a few
hundred maps per operation instead.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from store.connection import fetch_arrow

_SPANS = """
SELECT trace_id, span_id, parent_span_id, service_name AS service, service_version AS version, span_name AS name,
       span_kind = 'CLIENT' AS is_client, epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns,
       status_code = 'ERROR' AS is_error, coalesce(status_message, '') AS status_message
FROM spans
WHERE span_kind IN ('SERVER', 'CLIENT') AND start_time >= make_timestamp_ns($start)
  AND start_time < make_timestamp_ns($end)
"""

_GAUGES = """
SELECT service_name AS service, json_extract_string(attributes, '$.operation') AS name,
       metric_name AS metric, (epoch_ns(time) - $start - 1) // 60000000000 AS minute, avg(value) AS value
FROM metric_points
WHERE kind = 'gauge' AND metric_name IN ('queue.depth', 'temporal.task_queue.backlog', 'server.active_requests')
  AND time > make_timestamp_ns($start) AND time <= make_timestamp_ns($end)
GROUP BY ALL
"""

_LOGS = """
SELECT l.service_name AS service, s.span_name AS name, l.severity_text AS severity, l.body AS body,
       s.status_code = 'ERROR' AS on_error, l.trace_id IS NOT NULL AS has_trace
FROM (SELECT * FROM logs WHERE time >= make_timestamp_ns($start) AND time < make_timestamp_ns($end)
      LIMIT $limit) l
LEFT JOIN spans s ON s.span_id = l.span_id AND s.trace_id = l.trace_id AND s.span_kind = 'SERVER'
"""

_ATTRIBUTES = """
SELECT service, name, is_client, attributes FROM (
  SELECT service_name AS service, span_name AS name, span_kind = 'CLIENT' AS is_client, attributes,
         row_number() OVER (PARTITION BY service_name, span_name, span_kind ORDER BY start_time) AS k
  FROM spans
  WHERE span_kind IN ('SERVER', 'CLIENT') AND start_time >= make_timestamp_ns($start)
    AND start_time < make_timestamp_ns($end)
) WHERE k <= $per_op
"""

_BOUNDS = "SELECT epoch_ns(min(start_time)), epoch_ns(max(start_time)) FROM spans"


def window_spans(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pa.Table:
    """SERVER and CLIENT spans starting in [start, end): ids, ``service``/``version``/``name``, ``is_client``,
    ``start_ns``/``end_ns``, ``is_error`` and ``status_message`` (no attributes)."""
    return fetch_arrow(con, _SPANS, {"start": start_ns, "end": end_ns})


def queue_gauges(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pa.Table:
    """Per operation (``service``/``name``), gauge ``metric`` and minute since ``start_ns``: the mean
    queue-depth, task-queue backlog or in-flight gauge value (a point stamped at a minute's end counts for
    the minute it closes)."""
    return fetch_arrow(con, _GAUGES, {"start": start_ns, "end": end_ns})


def window_logs(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int, limit: int = 200_000) -> pa.Table:
    """Up to ``limit`` log lines of [start, end): ``service``, the ``name`` of the server span they were
    written in (null without trace context), ``severity``, ``body``, whether that span failed."""
    return fetch_arrow(con, _LOGS, {"start": start_ns, "end": end_ns, "limit": limit})


def attribute_samples(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int, per_op: int = 300) -> pa.Table:
    """The attribute maps (JSON text) of the first ``per_op`` SERVER and CLIENT spans of each operation."""
    return fetch_arrow(con, _ATTRIBUTES, {"start": start_ns, "end": end_ns, "per_op": per_op})


def span_bounds(con: duckdb.DuckDBPyConnection) -> tuple[int, int] | None:
    """(first, last) span start in the store, ns; None without spans."""
    row = con.execute(_BOUNDS).fetchone()
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))
