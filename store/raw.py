"""Reads of where the data is: the one definition of "end of data" every stage uses.

Data time, never the wall clock: scheduled jobs, ``driftscope detect``, reports and
investigations all end their windows at :func:`data_end`, so a replayed store gives the
same answers as the live one.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from store import dialect_duckdb as sql
from store.connection import fetch_arrow
from store.timeconv import NS_PER_MIN


def rollup_end(con: duckdb.DuckDBPyConnection) -> int | None:
    """End (exclusive, ns) of the newest rolled-up minute of spans; None before the first rollup."""
    row = con.execute(f"SELECT {sql.epoch_ns('max(minute)')} FROM rollup_spans").fetchone()
    return int(row[0]) + NS_PER_MIN if row and row[0] is not None else None


def newest_span_ns(con: duckdb.DuckDBPyConnection) -> int | None:
    """Start (ns) of the newest span in the store; None when there are no spans."""
    row = con.execute(f"SELECT {sql.epoch_ns('max(start_time)')} FROM spans").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def data_end(con: duckdb.DuckDBPyConnection) -> int | None:
    """End of data time (exclusive, ns): the end of the newest rolled-up minute; before the first
    rollup, the end of the minute holding the newest span; None for a store without spans."""
    end = rollup_end(con)
    if end is not None:
        return end
    newest = newest_span_ns(con)
    return None if newest is None else newest - newest % NS_PER_MIN + NS_PER_MIN


def service_versions(con: duckdb.DuckDBPyConnection, service: str) -> set[str]:
    """The service versions ``service`` reported in its spans."""
    rows = con.execute("SELECT DISTINCT service_version FROM spans WHERE service_name = ?", [service]).fetchall()
    return {str(r[0]) for r in rows if r[0] is not None}


_SERVER_MINUTES = """
SELECT service_name || ':' || span_name AS op, (epoch_ns(start_time) - $origin) // 60000000000 AS minute,
       count(*) AS n, median(duration_ns) FILTER (WHERE status_code <> 'ERROR') / 1e6 AS p50_ms,
       avg(CASE WHEN status_code = 'ERROR' THEN 1.0 ELSE 0.0 END) AS error_ratio
FROM spans
WHERE span_kind IN ('SERVER', 'CONSUMER') AND start_time >= make_timestamp_ns($start)
  AND start_time < make_timestamp_ns($end)
GROUP BY ALL
"""


_ENTRY_POINTS = """
SELECT service_name, span_name FROM spans
WHERE span_kind = 'SERVER' AND start_time >= make_timestamp_ns($start) AND start_time < make_timestamp_ns($end)
GROUP BY ALL HAVING avg((parent_span_id IS NULL)::DOUBLE) >= $share
"""


def entry_points(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int, share: float) -> set[tuple[str, str]]:
    """(service, operation) of the server operations whose spans in [start_ns, end_ns) start a trace
    (have no parent) in at least ``share`` (0-1) of cases: where demand enters the system."""
    rows = con.execute(_ENTRY_POINTS, {"start": start_ns, "end": end_ns, "share": share}).fetchall()
    return {(str(a), str(b)) for a, b in rows}


def server_minutes(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pa.Table:
    """Per served operation (``service:span``) and minute since ``start_ns`` of [start, end) in raw
    spans: requests ``n``, median latency of successes ``p50_ms`` (ms), ``error_ratio`` (0-1)."""
    return fetch_arrow(con, _SERVER_MINUTES, {"origin": start_ns, "start": start_ns, "end": end_ns})


_NEWLY_TRACED = """
WITH firsts AS (
    SELECT service_name, min(minute) AS first_minute FROM rollup_spans
    WHERE span_kind <> 'CLIENT' AND count > 0
      AND minute >= make_timestamp_ns($history) AND minute < make_timestamp_ns($end)
    GROUP BY ALL HAVING min(minute) >= make_timestamp_ns($start)
), earlier AS (
    SELECT service_name, min(minute) AS since FROM (
        SELECT service_name, minute FROM rollup_gauges UNION ALL SELECT service_name, minute FROM rollup_sums
        UNION ALL SELECT service_name, minute FROM rollup_histograms
        UNION ALL SELECT service_name, minute FROM rollup_exp_histograms
        UNION ALL SELECT service_name, minute FROM rollup_logs
    ) WHERE minute >= make_timestamp_ns($history) GROUP BY ALL
)
SELECT f.service_name, epoch_ns(f.first_minute) FROM firsts f JOIN earlier e USING (service_name)
WHERE e.since < f.first_minute
"""

_FED_BY = """
SELECT c.service_name, c.span_name, p.service_name AS caller
FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE p.service_name IN (SELECT unnest($callers)) AND c.service_name IS DISTINCT FROM p.service_name
  AND c.start_time >= make_timestamp_ns($start) AND c.start_time < make_timestamp_ns($end)
  AND p.start_time >= make_timestamp_ns($start) AND p.start_time < make_timestamp_ns($end)
GROUP BY ALL ORDER BY 1, 2, 3
"""


def tracing_starts(
    con: duckdb.DuckDBPyConnection, history_ns: int, start_ns: int, end_ns: int
) -> list[tuple[str, str, str, int]]:
    """Where late-switched-on tracing joins other services' series: (service, operation, caller, first ns).

    A caller is a service whose own spans (any kind but CLIENT) start in [start_ns, end_ns) with none
    since ``history_ns``, while its metrics or logs go back further: it ran all along, only its
    tracing is new. Listed are the operations of other services with spans in the window whose
    parent is one of the caller's spans (a database's client spans named after the database, a
    callee's client spans), and the minute the caller's spans start (ns). Reads the rollups only
    when no service is newly traced (the usual case)."""
    started = dict(con.execute(_NEWLY_TRACED, {"history": history_ns, "start": start_ns, "end": end_ns}).fetchall())
    if not started:
        return []
    rows = con.execute(_FED_BY, {"callers": sorted(started), "start": start_ns, "end": end_ns}).fetchall()
    return [(str(a), str(b), str(c), int(started[c])) for a, b, c in rows]
