"""The gate's samples, read with SQL from the raw tables for one side (baseline or candidate).

A side is a :class:`Scope`: services, an optional ``service.version`` and a time range
[start_ns, end_ns). Spans are filtered on the hot ``service_version`` column, metrics and
logs on their resource attribute ``service.version``, so a canary running beside the
baseline version and a before/after-deploy comparison are the same query. Requests are
SERVER and CONSUMER spans (the simulator emits database and cache calls as CLIENT spans
only, as instrumented clients do). Every query orders its output, so the gate is
deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from analysis.deltas import histogram_deltas
from store.connection import fetch_arrow

__all__ = [
    "Scope",
    "call_edges",
    "gauge_samples",
    "histogram_means",
    "histogram_names",
    "log_trace_context",
    "metric_names",
    "new_log_templates",
    "requests",
    "span_attribute_coverage",
    "trace_propagation",
    "version_range",
]

TEMPLATE_SQL = (
    "regexp_replace(regexp_replace(body, '[0-9a-fA-F-]{16,}', '<id>', 'g'), '[0-9]+([.][0-9]+)?', '<n>', 'g')"
)
"""A log body's template: ids (16+ hex characters or dashes) and numbers masked."""
CHILD_SLACK_NS = 300 * 10**9
"""Children of a request start within this long after the side ends (5 min)."""


@dataclass(frozen=True)
class Scope:
    """One side of the comparison: services (empty = all), optional version, and [start_ns, end_ns)."""

    services: tuple[str, ...]
    version: str | None
    start_ns: int
    end_ns: int

    def params(self) -> dict[str, object]:
        """Named query parameters $services, $version, $start, $end."""
        return {"services": list(self.services), "version": self.version, "start": self.start_ns, "end": self.end_ns}


_SPAN_FILTER = """
    start_time >= make_timestamp_ns($start) AND start_time < make_timestamp_ns($end)
    AND (len($services) = 0 OR list_contains($services, service_name))
    AND ($version IS NULL OR service_version = $version)
"""


def _resource_filter(time_col: str) -> str:
    return f"""
    {time_col} >= make_timestamp_ns($start) AND {time_col} < make_timestamp_ns($end)
    AND (len($services) = 0 OR list_contains($services, service_name))
    AND ($version IS NULL OR resource_attributes->>'service.version' = $version)
"""


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pl.DataFrame:
    frame = pl.from_arrow(fetch_arrow(con, sql, params))
    assert isinstance(frame, pl.DataFrame)
    return frame


def version_range(
    con: duckdb.DuckDBPyConnection, service: str, version: str, start_ns: int, end_ns: int
) -> tuple[int, int, int]:
    """(first start_ns, last start_ns + 1, spans) of ``service`` at ``version`` within [start_ns, end_ns)."""
    row = con.execute(
        """SELECT epoch_ns(min(start_time)), epoch_ns(max(start_time)), count(*) FROM spans
           WHERE service_name = $service AND service_version = $version
             AND start_time >= make_timestamp_ns($start) AND start_time < make_timestamp_ns($end)""",
        {"service": service, "version": version, "start": start_ns, "end": end_ns},
    ).fetchone()
    if not row or not row[2]:
        return start_ns, start_ns, 0
    return int(row[0]), int(row[1]) + 1, int(row[2])


def requests(con: duckdb.DuckDBPyConnection, scope: Scope) -> pl.DataFrame:
    """One row per request: service, operation, duration_ns (Int64), is_error (Boolean), calls (direct child spans)."""
    params = {**scope.params(), "slack": CHILD_SLACK_NS}
    sql = f"""
    WITH req AS (
        SELECT trace_id, span_id, service_name, span_name, start_time, duration_ns, status_code
        FROM spans WHERE span_kind IN ('SERVER', 'CONSUMER') AND {_SPAN_FILTER}
    ), kids AS (
        SELECT trace_id, parent_span_id, count(*) AS calls FROM spans
        WHERE parent_span_id IS NOT NULL
          AND start_time >= make_timestamp_ns($start) AND start_time < make_timestamp_ns($end + $slack)
        GROUP BY ALL
    )
    SELECT r.service_name AS service, r.span_name AS operation, r.duration_ns::BIGINT AS duration_ns,
           r.status_code = 'ERROR' AS is_error, coalesce(k.calls, 0)::BIGINT AS calls
    FROM req r LEFT JOIN kids k ON k.trace_id = r.trace_id AND k.parent_span_id = r.span_id
    ORDER BY service, operation, r.start_time, r.span_id
    """
    return _frame(con, sql, params)


def gauge_samples(con: duckdb.DuckDBPyConnection, scope: Scope) -> pl.DataFrame:
    """Gauge points: entity ("service metric{attributes}"), value (Float64); saturation signals like queue depth."""
    sql = f"""
    SELECT service_name || ' ' || metric_name || coalesce(nullif(attributes::VARCHAR, '{{}}'), '') AS entity, value
    FROM metric_points WHERE kind = 'gauge' AND {_resource_filter("time")}
    ORDER BY entity, time
    """
    return _frame(con, sql, scope.params())


def histogram_means(con: duckdb.DuckDBPyConnection, scope: Scope) -> pl.DataFrame:
    """Per interval of each explicit-bucket histogram metric, the mean observation: entity, value (metric unit).

    Cumulative points become deltas with ``analysis.deltas.histogram_deltas`` (resets
    detected), so a batch job's duration histogram yields one mean per reporting interval
    that saw runs.
    """
    sql = f"""
    SELECT service_name || ' ' || metric_name || coalesce(nullif(attributes::VARCHAR, '{{}}'), '') AS entity,
           time, start_time, count, sum, bounds, bucket_counts, temporality
    FROM histogram_points WHERE {_resource_filter("time")}
    ORDER BY entity, time
    """
    points = _frame(con, sql, scope.params())
    if points.is_empty():
        return pl.DataFrame(schema={"entity": pl.String, "value": pl.Float64})
    cumulative = histogram_deltas(points.filter(pl.col("temporality") == "cumulative"), ["entity"]).select(
        "entity", count="delta_count", total="delta_sum"
    )
    delta = points.filter(pl.col("temporality") != "cumulative").select(
        "entity", count=pl.col("count").cast(pl.Int64), total="sum"
    )
    both = pl.concat([cumulative, delta])
    return (
        both.filter((pl.col("count") > 0) & pl.col("total").is_not_null())
        .select("entity", value=pl.col("total") / pl.col("count"))
        .sort("entity", maintain_order=True)
    )


def new_log_templates(
    con: duckdb.DuckDBPyConnection, baseline: Scope, candidate: Scope, min_severity: int = 13
) -> pl.DataFrame:
    """WARN-or-worse (severity_number >= 13) log templates of the candidate never seen in the baseline.

    Columns service, template, count, ordered by count descending.
    """
    base = {f"b_{k}": v for k, v in baseline.params().items()}
    cand = {f"c_{k}": v for k, v in candidate.params().items()}

    def where(prefix: str) -> str:
        return _resource_filter("time").replace("$", f"${prefix}")

    sql = f"""
    WITH c AS (SELECT service_name, {TEMPLATE_SQL} AS template FROM logs
               WHERE severity_number >= $sev AND {where("c_")}),
         b AS (SELECT DISTINCT service_name, {TEMPLATE_SQL} AS template FROM logs
               WHERE severity_number >= $sev AND {where("b_")})
    SELECT c.service_name AS service, c.template, count(*) AS count
    FROM c ANTI JOIN b ON b.service_name = c.service_name AND b.template = c.template
    GROUP BY ALL ORDER BY count DESC, service, template
    """
    return _frame(con, sql, {**base, **cand, "sev": min_severity})


def call_edges(con: duckdb.DuckDBPyConnection, scope: Scope) -> pl.DataFrame:
    """Call edges out of the scope's requests: caller, callee ("service:operation"), calls.

    A request's CLIENT child names the callee (as the simulator and database clients do);
    a SERVER grandchild under it, when instrumented, names it too.
    """
    params = {**scope.params(), "slack": CHILD_SLACK_NS}
    sql = f"""
    WITH req AS (
        SELECT trace_id, span_id, service_name || ':' || span_name AS caller FROM spans
        WHERE span_kind IN ('SERVER', 'CONSUMER') AND {_SPAN_FILTER}
    ), near AS (
        SELECT trace_id, span_id, parent_span_id, service_name || ':' || span_name AS op, span_kind FROM spans
        WHERE parent_span_id IS NOT NULL
          AND start_time >= make_timestamp_ns($start) AND start_time < make_timestamp_ns($end + $slack)
    ), direct AS (
        SELECT r.caller, c.op AS callee, c.trace_id, c.span_id FROM req r
        JOIN near c ON c.trace_id = r.trace_id AND c.parent_span_id = r.span_id
    ), hop AS (
        SELECT d.caller, g.op AS callee FROM direct d
        JOIN near g ON g.trace_id = d.trace_id AND g.parent_span_id = d.span_id AND g.span_kind = 'SERVER'
    )
    SELECT caller, callee, count(*) AS calls FROM (SELECT caller, callee FROM direct UNION ALL SELECT * FROM hop)
    WHERE caller <> callee GROUP BY ALL ORDER BY caller, callee
    """
    return _frame(con, sql, params)


def span_attribute_coverage(
    con: duckdb.DuckDBPyConnection, scope: Scope, operation: str, attributes: list[str]
) -> tuple[int, dict[str, float]]:
    """(spans of ``operation``, attribute -> fraction of those spans carrying it).

    The operation's SERVER/CONSUMER spans (its callers' CLIENT spans carry the protocol's
    attributes, not the operation's); an operation seen only as CLIENT spans (a database
    call) is read from those.
    """
    shares = [f"avg((json_extract(attributes, $a{i}) IS NOT NULL)::INT)" for i in range(len(attributes))]
    paths = {f"a{i}": "$." + '"' + a.replace('"', '\\"') + '"' for i, a in enumerate(attributes)}
    row = None
    for kinds in ("span_kind IN ('SERVER', 'CONSUMER')", "true"):
        sql = f"""
        SELECT count(*) AS n, {", ".join(shares) or "0"}
        FROM spans WHERE span_name = $op AND {kinds} AND {_SPAN_FILTER}
        """
        row = con.execute(sql, {**scope.params(), "op": operation, **paths}).fetchone()
        if row and row[0]:
            break
    n = int(row[0]) if row else 0
    return n, {a: float(row[i + 1] or 0.0) if row and n else 0.0 for i, a in enumerate(attributes)}


def metric_names(con: duckdb.DuckDBPyConnection, scope: Scope) -> set[str]:
    """Names of every metric (gauges, sums, histograms, exponential histograms) the scope emitted."""
    where = _resource_filter("time")
    sql = " UNION ".join(
        f"SELECT DISTINCT metric_name FROM {t} WHERE {where}"
        for t in ("metric_points", "histogram_points", "exp_histogram_points")
    )
    return {str(r[0]) for r in con.execute(sql, scope.params()).fetchall()}


def histogram_names(con: duckdb.DuckDBPyConnection, scope: Scope) -> set[str]:
    """Names of the histogram metrics (explicit-bucket or exponential) the scope emitted."""
    where = _resource_filter("time")
    sql = " UNION ".join(
        f"SELECT DISTINCT metric_name FROM {t} WHERE {where}" for t in ("histogram_points", "exp_histogram_points")
    )
    return {str(r[0]) for r in con.execute(sql, scope.params()).fetchall()}


def log_trace_context(con: duckdb.DuckDBPyConnection, scope: Scope) -> tuple[int, float]:
    """(log records, fraction carrying both trace_id and span_id): structured logs joinable to traces."""
    sql = f"""SELECT count(*), avg((trace_id IS NOT NULL AND span_id IS NOT NULL)::INT) FROM logs
              WHERE {_resource_filter("time")}"""
    row = con.execute(sql, scope.params()).fetchone()
    return (int(row[0]), float(row[1] or 0.0)) if row else (0, 0.0)


def trace_propagation(con: duckdb.DuckDBPyConnection, scope: Scope) -> tuple[int, float]:
    """(requests, fraction with a parent span): requests that joined their caller's trace.

    Entry points have no parent by nature, so the gate compares this share with the
    baseline's: a drop means callers' trace context no longer arrives (broken propagation).
    """
    sql = f"""SELECT count(*), avg((parent_span_id IS NOT NULL)::INT) FROM spans
              WHERE span_kind IN ('SERVER', 'CONSUMER') AND {_SPAN_FILTER}"""
    row = con.execute(sql, scope.params()).fetchone()
    return (int(row[0]), float(row[1] or 0.0)) if row else (0, 0.0)
