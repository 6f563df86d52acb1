"""Telemetry contract conformance: is each service observable enough to reason about?

Per service over a window, from the raw spans and logs:

- propagation: orphan spans (a parent id whose span never arrives within the window plus
  ``PARENT_MARGIN_NS``), and CLIENT spans with no SERVER child although other spans of the
  same client operation have one (the server side started a new trace; CLIENT operations
  that never have a server child, such as database calls, are not counted);
- RED coverage: for each entry operation (a SERVER operation with root spans) the rate
  (spans), errors (a status code or an HTTP/RPC status attribute) and duration (positive
  durations) are present;
- log correlation: the share of the service's log records carrying a trace id and span id;
- resource attributes: service.name, service.version, deployment.environment (or its
  newer name deployment.environment.name).

The score (0-100) weighs these 35/25/20/20; a service that writes no logs is scored on the
other three. ``missing`` lists, per service, what fell short.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

from detectors.invariants.sqltext import window_sql
from store.connection import fetch_arrow

PARENT_MARGIN_NS = 300 * 10**9
"""A parent may start up to this long before or after the window and still count as arrived."""
REQUIRED_RESOURCE = ("service.name", "service.version", "deployment.environment")
WEIGHTS = {"propagation": 35.0, "red": 25.0, "logs": 20.0, "resource": 20.0}

_SQL = """
WITH s AS (
    SELECT trace_id, span_id, parent_span_id, service_name, span_name, span_kind, status_code, duration_ns,
           attributes, resource_attributes
    FROM spans WHERE {win}
), p AS (
    SELECT trace_id, span_id FROM spans WHERE {pwin}
), orphans AS (
    SELECT s.service_name, count(*) AS orphans
    FROM s LEFT JOIN p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
    WHERE s.parent_span_id IS NOT NULL AND p.span_id IS NULL
    GROUP BY ALL
), served AS (
    SELECT c.service_name, c.span_name, c.span_id, c.trace_id,
           bool_or(k.span_kind = 'SERVER') AS has_server
    FROM s c LEFT JOIN s k ON k.trace_id = c.trace_id AND k.parent_span_id = c.span_id
    WHERE c.span_kind = 'CLIENT' GROUP BY ALL
), unserved AS (
    SELECT service_name, sum(n - with_server)::BIGINT AS unserved, sum(n)::BIGINT AS client_spans FROM (
        SELECT service_name, span_name, count(*) AS n, count(*) FILTER (has_server) AS with_server
        FROM served GROUP BY ALL
    ) WHERE with_server > 0 GROUP BY ALL
), entry AS (
    SELECT service_name, span_name, count(*) AS n,
           count(*) FILTER (status_code != 'UNSET'
                            OR json_extract(attributes, '$."http.response.status_code"') IS NOT NULL
                            OR json_extract(attributes, '$."rpc.response.status_code"') IS NOT NULL
                            OR json_extract(attributes, '$."rpc.grpc.status_code"') IS NOT NULL) AS with_status,
           count(*) FILTER (duration_ns > 0) AS with_duration
    FROM s WHERE span_kind = 'SERVER' AND span_name IN (
        SELECT span_name FROM s r WHERE r.parent_span_id IS NULL AND r.span_kind = 'SERVER'
        AND r.service_name IS NOT DISTINCT FROM s.service_name)
    GROUP BY ALL
), red AS (
    SELECT service_name, count(*) AS entry_ops,
           count(*) FILTER (with_status > 0 AND with_duration = n) AS red_ops,
           string_agg(span_name, ', ') FILTER (NOT (with_status > 0 AND with_duration = n)) AS red_missing
    FROM entry GROUP BY ALL
), res AS (
    SELECT service_name, resource_attributes, count(*) AS n FROM s GROUP BY ALL
), resource AS (
    SELECT service_name,
           sum(n) FILTER (json_extract(resource_attributes, '$."service.name"') IS NOT NULL)::BIGINT AS has_name,
           sum(n) FILTER (json_extract(resource_attributes, '$."service.version"') IS NOT NULL)::BIGINT AS has_version,
           sum(n) FILTER (json_extract(resource_attributes, '$."deployment.environment"') IS NOT NULL
                          OR json_extract(resource_attributes, '$."deployment.environment.name"') IS NOT NULL
                         )::BIGINT AS has_env,
           sum(n)::BIGINT AS spans
    FROM res GROUP BY ALL
), lg AS (
    SELECT service_name, count(*) AS logs, count(*) FILTER (trace_id IS NOT NULL AND trace_id != '' AND span_id IS NOT
           NULL AND span_id != '') AS correlated
    FROM logs WHERE {lwin} GROUP BY ALL
)
SELECT resource.service_name AS service, resource.spans, coalesce(orphans.orphans, 0) AS orphans,
       coalesce(unserved.unserved, 0) AS unserved_clients, coalesce(unserved.client_spans, 0) AS client_spans,
       coalesce(red.entry_ops, 0) AS entry_ops, coalesce(red.red_ops, 0) AS red_ops, red.red_missing,
       coalesce(lg.logs, 0) AS logs, coalesce(lg.correlated, 0) AS correlated_logs,
       coalesce(has_name, 0) AS has_name, coalesce(has_version, 0) AS has_version, coalesce(has_env, 0) AS has_env
FROM resource
LEFT JOIN orphans ON orphans.service_name IS NOT DISTINCT FROM resource.service_name
LEFT JOIN unserved ON unserved.service_name IS NOT DISTINCT FROM resource.service_name
LEFT JOIN red ON red.service_name IS NOT DISTINCT FROM resource.service_name
LEFT JOIN lg ON lg.service_name IS NOT DISTINCT FROM resource.service_name
ORDER BY service
"""


@dataclass(frozen=True)
class ServiceContract:
    """How observable one service is: a 0-100 score, its parts, and what is missing."""

    service: str
    score: float
    parts: dict[str, float]
    """Each part's share in [0, 1] (propagation, red, logs, resource; logs absent when none)."""
    missing: list[str] = field(default_factory=list)


def contract(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[ServiceContract]:
    """The telemetry contract of every service seen in [start, end)."""
    sql = _SQL.format(
        win=window_sql("start_time", start_ns, end_ns),
        pwin=window_sql("start_time", start_ns - PARENT_MARGIN_NS, end_ns + PARENT_MARGIN_NS),
        lwin=window_sql("coalesce(time, observed_time)", start_ns, end_ns),
    )
    frame = pl.from_arrow(fetch_arrow(con, sql))
    assert isinstance(frame, pl.DataFrame)
    return [_score(row) for row in frame.iter_rows(named=True)]


def _score(row: dict[str, object]) -> ServiceContract:
    def num(key: str) -> float:
        value = row[key]
        return float(value) if isinstance(value, int | float) else 0.0

    spans = max(num("spans"), 1.0)
    missing: list[str] = []
    orphan_share = num("orphans") / spans
    unserved_share = num("unserved_clients") / max(num("client_spans"), 1.0)
    if num("orphans"):
        missing.append(f"{int(num('orphans')):,d} orphan spans ({orphan_share * 100:.2f} %): parents never arrived")
    if num("unserved_clients"):
        missing.append(
            f"{int(num('unserved_clients')):,d} client calls ({unserved_share * 100:.2f} %) whose server side "
            "started a new trace"
        )
    parts = {"propagation": max(0.0, 1.0 - orphan_share - unserved_share)}
    entry = num("entry_ops")
    parts["red"] = num("red_ops") / entry if entry else 1.0
    if row["red_missing"]:
        missing.append(f"RED incomplete (no status or duration) on entry operations: {row['red_missing']}")
    if num("logs"):
        parts["logs"] = num("correlated_logs") / num("logs")
        if parts["logs"] < 1.0:
            missing.append(f"{parts['logs'] * 100:.1f} % of logs carry trace and span ids")
    present = [num("has_name") / spans, num("has_version") / spans, num("has_env") / spans]
    parts["resource"] = sum(present) / len(present)
    missing += [
        f"resource attribute {k} missing" for k, share in zip(REQUIRED_RESOURCE, present, strict=True) if share < 1
    ]
    weight = sum(WEIGHTS[k] for k in parts)
    score = 100.0 * sum(WEIGHTS[k] * v for k, v in parts.items()) / weight
    return ServiceContract(str(row["service"]), round(score, 1), parts, missing)
