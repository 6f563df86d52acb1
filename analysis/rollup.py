"""Incremental, idempotent per-minute rollups of the raw tables.

Each source table has a watermark (the last minute rolled up, in data time, never the
wall clock). A run recomputes every minute from ``watermark - lateness`` to the newest
data: it deletes those minutes from the rollup and inserts them again from the raw rows,
so late data within the lateness window is folded in and re-running changes nothing.
Rows that arrive for minutes already closed (older than the recomputed range, within
``late_horizon_s``) are counted per minute in ``rollup_late`` and in ``rollup_state``, and
reported: never silently lost, never silently double counted.

Spans roll up in DuckDB SQL (one scan); the log-bucket index is the same formula as
``analysis.histogram.bucket_index`` so that Python and SQL agree bucket for bucket. A
minute without a single span of an operation seen in the ``zero_fill_s`` before it is
rolled up as an explicit zero (count 0, no latency): silence after traffic is a value (a
total outage of one operation is a rate of 0), not a gap the rate detectors skip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import duckdb

from analysis.histogram import GAMMA, LN_GAMMA
from analysis.metric_rollup import rollup_exp_histograms, rollup_gauges, rollup_histograms, rollup_sums

QUANTILES = {"p50_ns": 0.5, "p90_ns": 0.9, "p95_ns": 0.95, "p99_ns": 0.99}
ZERO_BUCKET = -(2**31)
"""Stand-in bucket index of durations <= 0 while computing quantiles (they read as 0 ns)."""


@dataclass(frozen=True)
class RollupConfig:
    """How far back a run recomputes and looks for late rows, in seconds."""

    lateness_s: float = 300.0
    """Minutes newer than ``watermark - lateness_s`` are recomputed on every run."""
    late_horizon_s: float = 86_400.0
    """Closed minutes younger than this (behind the recomputed range) are checked for late rows."""
    metric_lookback_s: float = 3_600.0
    """Cumulative metrics look this far back for each series' previous point."""
    zero_fill_s: float = 3_600.0
    """A minute without spans of an operation (service, span name, span kind) that had spans this recently is
    rolled up as an explicit zero; longer silences stay gaps (an operation retired is not down forever)."""


@dataclass(frozen=True)
class RollupReport:
    """What one rollup run did for one source table."""

    source: str
    start: datetime | None
    end: datetime | None
    rows_written: int
    late_rows: int
    seconds: float


@dataclass(frozen=True)
class _Source:
    table: str
    time_sql: str
    rollups: tuple[str, ...]


SOURCES = (
    _Source("spans", "start_time", ("rollup_spans",)),
    _Source("logs", "coalesce(time, observed_time)", ("rollup_logs",)),
    _Source("metric_points", "time", ("rollup_sums", "rollup_gauges")),
    _Source("histogram_points", "time", ("rollup_histograms",)),
    _Source("exp_histogram_points", "time", ("rollup_exp_histograms",)),
)


def _quantile_sql(q: float) -> str:
    rank = f"ceil({q} * (total - 1))"
    pick = f"arg_min(coalesce(bucket, {ZERO_BUCKET}), cum) FILTER (WHERE cum > {rank})"
    return f"CASE WHEN {pick} = {ZERO_BUCKET} THEN 0.0 ELSE 2 * exp({pick} * {LN_GAMMA!r}) / {GAMMA + 1!r} END"


SPANS_SQL = f"""
WITH b AS (
    SELECT date_trunc('minute', start_time) AS minute, service_name, span_name AS operation, span_kind,
           CASE WHEN status_code = 'ERROR' THEN 'error' ELSE 'ok' END AS status_class,
           CASE WHEN duration_ns > 0 THEN CAST(ceil(ln(duration_ns) / {LN_GAMMA!r}) AS INTEGER) END AS bucket,
           count(*) AS n, sum(duration_ns) AS s, min(duration_ns) AS lo, max(duration_ns) AS hi
    FROM spans WHERE start_time >= $lo AND start_time < $hi
    GROUP BY ALL
), w AS (
    SELECT *, sum(n) OVER (PARTITION BY minute, service_name, operation, span_kind, status_class) AS total,
           sum(n) OVER (PARTITION BY minute, service_name, operation, span_kind, status_class
                        ORDER BY bucket NULLS FIRST ROWS UNBOUNDED PRECEDING) AS cum
    FROM b
)
SELECT minute, service_name, operation, span_kind, status_class,
       sum(n) AS count,
       CASE WHEN status_class = 'error' THEN sum(n) ELSE 0 END AS error_count,
       sum(s) AS duration_sum_ns, min(lo) AS duration_min_ns, max(hi) AS duration_max_ns,
       coalesce(sum(n) FILTER (WHERE bucket IS NULL), 0) AS zero_count,
       coalesce(list(bucket ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL), []) AS hist_index,
       coalesce(list(n ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL), []) AS hist_counts,
       {", ".join(f"{_quantile_sql(q)} AS {name}" for name, q in QUANTILES.items())}
FROM w GROUP BY minute, service_name, operation, span_kind, status_class
"""

ZEROS_SQL = """
INSERT INTO rollup_spans
WITH seen AS (
    SELECT DISTINCT minute, service_name, operation, span_kind FROM rollup_spans
    WHERE minute >= $lo::TIMESTAMP - to_seconds($h) AND minute < $hi AND count > 0
), gaps AS (
    SELECT minute, service_name, operation, span_kind,
           least(coalesce(lead(minute) OVER (PARTITION BY service_name, operation, span_kind ORDER BY minute), $hi),
                 minute + to_seconds($h) + INTERVAL 1 MINUTE) AS until
    FROM seen
), zeros AS (
    SELECT unnest(generate_series(minute + INTERVAL 1 MINUTE, until - INTERVAL 1 MINUTE, INTERVAL 1 MINUTE)) AS minute,
           service_name, operation, span_kind
    FROM gaps WHERE until > minute + INTERVAL 1 MINUTE
)
SELECT minute, service_name, operation, span_kind, 'ok', 0, 0, 0.0, NULL, NULL, 0, [], [], NULL, NULL, NULL, NULL
FROM zeros WHERE minute >= $lo AND minute < $hi
"""
"""Explicit zero minutes of recently seen operations in [$lo, $hi) (``RollupConfig.zero_fill_s`` = $h)."""

LOGS_SQL = """
SELECT date_trunc('minute', coalesce(time, observed_time)) AS minute, service_name, severity_number,
       severity_text, NULL::VARCHAR AS template, count(*) AS count
FROM logs WHERE coalesce(time, observed_time) >= $lo AND coalesce(time, observed_time) < $hi
GROUP BY ALL
"""

DEPLOYS_SQL = """
INSERT INTO deploy_markers
SELECT service_name, service_version, min(start_time) FROM spans
WHERE start_time >= $lo AND start_time < $hi AND service_name IS NOT NULL AND service_version IS NOT NULL
GROUP BY ALL
ON CONFLICT DO UPDATE SET first_seen = least(deploy_markers.first_seen, excluded.first_seen)
"""


def _state(con: duckdb.DuckDBPyConnection, source: str) -> datetime | None:
    row = con.execute("SELECT watermark FROM rollup_state WHERE source = ?", [source]).fetchone()
    return row[0] if row else None


def _range(con: duckdb.DuckDBPyConnection, src: _Source, config: RollupConfig) -> tuple[datetime, datetime] | None:
    """The [start, end) minutes this run recomputes, or None when the table is empty."""
    row = con.execute(
        f"SELECT date_trunc('minute', min({src.time_sql})), date_trunc('minute', max({src.time_sql})) "
        f"+ INTERVAL 1 MINUTE FROM {src.table}"
    ).fetchone()
    if not row or row[0] is None:
        return None
    first, end = row
    watermark = _state(con, src.table)
    if watermark is None:
        return first, end
    start = con.execute(
        "SELECT date_trunc('minute', $w::TIMESTAMP - to_seconds($s))", {"w": watermark, "s": config.lateness_s}
    ).fetchone()
    assert start is not None
    return max(first, min(start[0], end)), end


def _late_rows(con: duckdb.DuckDBPyConnection, src: _Source, start: datetime, config: RollupConfig) -> int:
    """Count and record rows that landed in closed minutes after they were rolled up."""
    if src.table not in ("spans", "logs"):
        return 0  # metric points are re-derived from lookback windows; their lateness is their own
    rollup = src.rollups[0]
    rows = con.execute(
        f"""
        WITH raw AS (
            SELECT date_trunc('minute', {src.time_sql}) AS minute, count(*) AS n FROM {src.table}
            WHERE {src.time_sql} >= $start - to_seconds($h) AND {src.time_sql} < $start GROUP BY 1
        ), done AS (
            SELECT minute, sum(count) AS n FROM {rollup}
            WHERE minute >= $start - to_seconds($h) AND minute < $start GROUP BY 1
        )
        SELECT raw.minute, raw.n - coalesce(done.n, 0) - coalesce(l.rows, 0) AS late
        FROM raw LEFT JOIN done USING (minute)
        LEFT JOIN rollup_late l ON l.source = $source AND l.minute = raw.minute
        WHERE done.n IS NOT NULL AND raw.n - coalesce(done.n, 0) - coalesce(l.rows, 0) > 0
        """,
        {"start": start, "h": config.late_horizon_s, "source": src.table},
    ).fetchall()
    for minute, late in rows:
        con.execute(
            "INSERT INTO rollup_late VALUES (?, ?, ?) "
            "ON CONFLICT DO UPDATE SET rows = rollup_late.rows + excluded.rows",
            [src.table, minute, late],
        )
    return int(sum(late for _, late in rows))


def _recompute(con: duckdb.DuckDBPyConnection, src: _Source, lo: datetime, hi: datetime, config: RollupConfig) -> int:
    for rollup in src.rollups:
        con.execute(f"DELETE FROM {rollup} WHERE minute >= $lo AND minute < $hi", {"lo": lo, "hi": hi})
    params = {"lo": lo, "hi": hi}
    if src.table == "spans":
        con.execute(f"INSERT INTO rollup_spans {SPANS_SQL}", params)
        con.execute(ZEROS_SQL, {**params, "h": config.zero_fill_s})
        con.execute(DEPLOYS_SQL, params)
    elif src.table == "logs":
        con.execute(f"INSERT INTO rollup_logs {LOGS_SQL}", params)
    elif src.table == "metric_points":
        rollup_sums(con, lo, hi, config.metric_lookback_s)
        rollup_gauges(con, lo, hi)
    elif src.table == "histogram_points":
        rollup_histograms(con, lo, hi, config.metric_lookback_s)
    else:
        rollup_exp_histograms(con, lo, hi, config.metric_lookback_s)
    total = 0
    for rollup in src.rollups:
        row = con.execute(f"SELECT count(*) FROM {rollup} WHERE minute >= $lo AND minute < $hi", params).fetchone()
        total += int(row[0]) if row else 0
    return total


def rollup_all(
    con: duckdb.DuckDBPyConnection, config: RollupConfig | None = None, sources: tuple[str, ...] | None = None
) -> list[RollupReport]:
    """Bring every rollup (of the raw tables ``sources``; None: all) up to the newest data; one
    transaction per source table."""
    config = config or RollupConfig()
    reports = []
    for src in SOURCES:
        if sources is not None and src.table not in sources:
            continue
        started = time.perf_counter()
        con.execute("BEGIN")
        try:
            window = _range(con, src, config)
            if window is None:
                con.execute("COMMIT")
                reports.append(RollupReport(src.table, None, None, 0, 0, time.perf_counter() - started))
                continue
            lo, hi = window
            late = _late_rows(con, src, lo, config)
            written = _recompute(con, src, lo, hi, config)
            last_full = con.execute("SELECT $hi::TIMESTAMP - INTERVAL 1 MINUTE", {"hi": hi}).fetchone()
            assert last_full is not None
            con.execute(
                "INSERT INTO rollup_state VALUES ($s, $w, $late, 1) ON CONFLICT DO UPDATE SET "
                "watermark = excluded.watermark, late_rows = rollup_state.late_rows + excluded.late_rows, "
                "runs = rollup_state.runs + 1",
                {"s": src.table, "w": last_full[0], "late": late},
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        reports.append(RollupReport(src.table, lo, hi, written, late, time.perf_counter() - started))
    return reports
