"""Reads of the rollup tables that are not signals: deploy markers and series counts.

The rollups themselves are computed by ``analysis.rollup``; the signals API
(``analysis.series``) reads them as polars frames.
"""

from __future__ import annotations

import duckdb

from store import dialect_duckdb as sql


def deploys_between(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[tuple[str, str, str, int]]:
    """(service, version, previous version, first seen ns) of versions first seen in [start_ns, end_ns),
    oldest first; a service's first version ever seen is not a deploy and is left out."""
    rows = con.execute(
        f"""
        SELECT service_name, service_version, previous, {sql.epoch_ns("first_seen")} FROM (
            SELECT *, lag(service_version) OVER (PARTITION BY service_name ORDER BY first_seen) AS previous
            FROM deploy_markers
        ) WHERE previous IS NOT NULL AND {sql.epoch_ns("first_seen")} >= $start
            AND {sql.epoch_ns("first_seen")} < $end
        ORDER BY first_seen, service_name
        """,
        {"start": start_ns, "end": end_ns},
    ).fetchall()
    return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]


def count_series(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> int:
    """Distinct series rolled up in [start_ns, end_ns): server operations, metric series, log streams."""
    in_window = f"minute >= {sql.from_ns('$start')}::TIMESTAMP AND minute < {sql.from_ns('$end')}::TIMESTAMP"
    selects = [
        f"SELECT DISTINCT service_name, operation, NULL FROM rollup_spans WHERE span_kind = 'SERVER' AND {in_window}",
        f"SELECT DISTINCT service_name, metric_name, attributes FROM rollup_gauges WHERE {in_window}",
        f"SELECT DISTINCT service_name, metric_name, attributes FROM rollup_sums WHERE {in_window}",
        f"SELECT DISTINCT service_name, metric_name, attributes FROM rollup_histograms WHERE {in_window}",
        f"SELECT DISTINCT service_name, severity_text, 'log' FROM rollup_logs WHERE {in_window}",
    ]
    row = con.execute(
        f"SELECT count(*) FROM ({' UNION ALL '.join(selects)})", {"start": start_ns, "end": end_ns}
    ).fetchone()
    return int(row[0]) if row else 0


def latest_deploys(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(service, newest version, when it was first seen in ns) per service, by service."""
    rows = con.execute(
        f"SELECT service_name, arg_max(service_version, first_seen), {sql.epoch_ns('max(first_seen)')} "
        "FROM deploy_markers GROUP BY ALL ORDER BY 1"
    ).fetchall()
    return [(str(a), str(b), int(c)) for a, b, c in rows]


def operations_between(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> int:
    """Distinct (service, operation) with SERVER or CLIENT spans rolled up in [start_ns, end_ns)."""
    in_window = f"minute >= {sql.from_ns('$s')}::TIMESTAMP AND minute < {sql.from_ns('$e')}::TIMESTAMP"
    row = con.execute(
        "SELECT count(DISTINCT (service_name, operation)) FROM rollup_spans "
        f"WHERE {in_window} AND span_kind IN ('SERVER', 'CLIENT')",
        {"s": start_ns, "e": end_ns},
    ).fetchone()
    return int(row[0]) if row else 0


_UNIT_TABLES = ("histogram_points", "exp_histogram_points", "metric_points", "summary_points")


def metric_unit(con: duckdb.DuckDBPyConnection, service: str | None, metric: str) -> str | None:
    """The unit a metric's points declare (OTLP ``unit``, any point that has one), or None."""
    for table in _UNIT_TABLES:
        row = con.execute(
            f"SELECT metric_unit FROM {table} WHERE metric_name = $m AND ($s IS NULL OR service_name = $s) "
            "AND coalesce(metric_unit, '') != '' LIMIT 1",
            {"m": metric, "s": service},
        ).fetchone()
        if row:
            return str(row[0])
    return None
