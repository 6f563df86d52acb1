"""What the system is today, as planning needs it: layers, call graph, laws and current baselines.

``SystemFacts`` joins the committed spec (layers and boundary rules, the call graph,
required children, attribute laws, SLOs) with baselines read from the store over one
window (per operation: requests, error ratio, p50/p99 of successful spans in ms, a
deterministic sample of durations for quantiles at any level, the newest version; per
service: metrics and histograms emitted, logs and their share with trace context). A
plan's operations are "known" when the spec or the window has them.

Durations of an operation as its callers wait for it come from its CLIENT spans when it
has any (a database call is only a CLIENT span), else from its SERVER spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from detectors.invariants.attributes import OUTCOME_KEY
from detectors.invariants.model import Invariant
from detectors.invariants.spec import Spec
from store.connection import fetch_arrow

__all__ = ["OperationFacts", "ServiceFacts", "SystemFacts", "build_facts", "read_baselines"]

SAMPLE_MAX = 20_000
"""Durations kept per operation and span kind (the shortest hashes of span ids: deterministic)."""
_NS_PER_MS = 1e6


@dataclass(frozen=True)
class OperationFacts:
    """One operation (``service:operation``) as the spec and the baseline window see it."""

    name: str
    layer: str | None
    callees: tuple[str, ...] = ()
    """Operations it calls (the spec's call graph, plus edges seen in the window)."""
    required: tuple[str, ...] = ()
    """Children every successful request has (``required_child`` laws)."""
    attributes: tuple[str, ...] = ()
    """Attribute keys every SERVER span carries (``attribute_present``, outcome keys left out)."""
    requests: int = 0
    """Requests (SERVER/CONSUMER spans, else CLIENT spans) in the baseline window."""
    error_ratio: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    version: str | None = None
    sequential: bool | None = None
    """Its calls run one after another (True), overlap (False), or unknown (too few requests with 2+ calls)."""
    durations_ms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    """Sorted sample of successful durations as callers wait for them (ms)."""

    @property
    def service(self) -> str:
        return self.name.partition(":")[0]

    def quantile_ms(self, level: float) -> float | None:
        """The lower ``level``-quantile (inverted CDF) of the sampled durations, or None without data."""
        if self.durations_ms.size == 0:
            return None
        return float(np.quantile(self.durations_ms, level, method="inverted_cdf"))


@dataclass(frozen=True)
class ServiceFacts:
    """One service: its layer, newest version and the telemetry it emits today."""

    name: str
    layer: str | None
    version: str | None = None
    metrics: tuple[str, ...] = ()
    histograms: tuple[str, ...] = ()
    logs: int = 0
    log_context_share: float = 0.0
    """Share of its log records carrying trace and span ids."""


@dataclass(frozen=True)
class SystemFacts:
    """The spec, the laws known (spec and stored) and the per-operation and per-service facts."""

    spec: Spec
    operations: dict[str, OperationFacts]
    services: dict[str, ServiceFacts]
    laws: tuple[Invariant, ...] = ()
    window: tuple[int, int] | None = None
    """[start_ns, end_ns) of the baselines, None without a store."""

    def layer_of(self, service: str) -> str | None:
        """The layer the spec puts ``service`` in."""
        return next((x.name for x in self.spec.boundaries.layers if service in x.services), None)


_OPS_SQL = """
WITH s AS (
    SELECT service_name, span_name, span_kind, status_code, duration_ns, service_version, start_time,
           hash(span_id) AS h
    FROM spans WHERE start_time >= make_timestamp_ns($start) AND start_time < make_timestamp_ns($end)
      AND span_kind IN ('SERVER', 'CONSUMER', 'CLIENT')
)
SELECT service_name || ':' || span_name AS name, span_kind = 'CLIENT' AS client, count(*) AS requests,
       count(*) FILTER (status_code = 'ERROR') AS errors, arg_max(service_version, start_time) AS version,
       epoch_ns(max(start_time)) AS last_ns,
       list(duration_ns ORDER BY h) FILTER (status_code != 'ERROR') AS durations
FROM s GROUP BY ALL ORDER BY ALL
"""

_SERVICES_SQL = """
SELECT service_name AS service, metric_name AS metric, bool_or(histogram) AS histogram FROM (
    SELECT service_name, metric_name, false AS histogram FROM metric_points WHERE {w}
    UNION ALL SELECT service_name, metric_name, true FROM histogram_points WHERE {w}
    UNION ALL SELECT service_name, metric_name, true FROM exp_histogram_points WHERE {w}
) GROUP BY ALL ORDER BY ALL
"""

_LOGS_SQL = """
SELECT service_name AS service, count(*) AS logs, avg((trace_id IS NOT NULL AND span_id IS NOT NULL)::INT) AS share
FROM logs WHERE {w} GROUP BY ALL ORDER BY ALL
"""

_EDGES_SQL = """
SELECT DISTINCT p.service_name || ':' || p.span_name AS caller, c.service_name || ':' || c.span_name AS callee
FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.start_time >= make_timestamp_ns($start) AND c.start_time < make_timestamp_ns($end)
  AND p.span_kind IN ('SERVER', 'CONSUMER')
  AND (p.service_name <> c.service_name OR p.span_name <> c.span_name)
ORDER BY ALL
"""

_OVERLAP_SQL = """
WITH k AS (
    SELECT p.service_name || ':' || p.span_name AS parent, c.trace_id, c.parent_span_id, c.start_time,
           max(c.end_time) OVER (PARTITION BY c.trace_id, c.parent_span_id ORDER BY c.start_time, c.span_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
    FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    WHERE c.start_time >= make_timestamp_ns($start) AND c.start_time < make_timestamp_ns($end)
      AND p.span_kind IN ('SERVER', 'CONSUMER')
), per AS (
    SELECT parent, trace_id, parent_span_id, count(*) AS children, bool_or(start_time < prev_end) AS overlap
    FROM k GROUP BY ALL
)
SELECT parent, count(*) FILTER (children >= 2) AS parents, count(*) FILTER (overlap) AS overlapping
FROM per GROUP BY ALL ORDER BY ALL
"""
SEQUENTIAL_MIN_PARENTS = 30
"""Requests with two or more calls needed before calling an operation's calls sequential or parallel."""


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pl.DataFrame:
    frame = pl.from_arrow(fetch_arrow(con, sql, params))
    assert isinstance(frame, pl.DataFrame)
    return frame


def read_baselines(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> dict[str, pl.DataFrame]:
    """The window's raw facts: ``operations``, ``metrics``, ``logs`` and ``edges`` frames (see the SQL above)."""
    params: dict[str, object] = {"start": start_ns, "end": end_ns}
    w = "time >= make_timestamp_ns($start) AND time < make_timestamp_ns($end)"
    return {
        "operations": _frame(con, _OPS_SQL, params),
        "metrics": _frame(con, _SERVICES_SQL.format(w=w), params),
        "logs": _frame(con, _LOGS_SQL.format(w=w), params),
        "edges": _frame(con, _EDGES_SQL, params),
        "overlap": _frame(con, _OVERLAP_SQL, params),
    }


def _spec_graph(spec: Spec) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """(callees, required children, SERVER attribute keys) per operation, from the spec."""
    callees: dict[str, set[str]] = {}
    required: dict[str, set[str]] = {}
    attrs: dict[str, set[str]] = {}
    for entry in spec.call_graph:
        callees.setdefault(entry.caller, set()).update(entry.calls)
        for c in entry.calls:
            callees.setdefault(c, set())
    for law in spec.invariants:
        if law.operation is None or law.span_kind is None:  # service-level laws (counter ratios, templates)
            continue
        name = f"{law.service}:{law.operation}"
        callees.setdefault(name, set())
        if law.kind == "required_child" and law.subject and law.span_kind in ("SERVER", "CONSUMER"):
            required.setdefault(name, set()).add(law.subject)
        if law.kind == "attribute_present" and law.span_kind == "SERVER" and not OUTCOME_KEY.search(law.subject or "-"):
            attrs.setdefault(name, set()).add(str(law.subject))
    for slo in spec.slos:
        callees.setdefault(f"{slo.service}:{slo.operation}", set())
    return callees, required, attrs


@dataclass
class _Seen:
    requests: int
    errors: int
    version: str | None
    last_ns: int
    server_ms: np.ndarray
    wait_ms: np.ndarray


def _observed(frames: dict[str, pl.DataFrame]) -> dict[str, _Seen]:
    """Per operation: requests, errors, version and durations, SERVER spans preferred for counts."""
    out: dict[str, _Seen] = {}
    for row in frames["operations"].sort("client").iter_rows(named=True):  # SERVER rows first
        name = str(row["name"])
        durations = np.sort(np.asarray(row["durations"] or [], np.float64)[:SAMPLE_MAX]) / _NS_PER_MS
        if name not in out:
            version = str(row["version"]) if row["version"] else None
            out[name] = _Seen(
                int(row["requests"]), int(row["errors"]), version, int(row["last_ns"]), durations, durations
            )
        elif row["client"]:
            out[name].wait_ms = durations  # what callers wait for: the client side when there is one
    return out


def build_facts(
    spec: Spec,
    frames: dict[str, pl.DataFrame] | None = None,
    *,
    laws: tuple[Invariant, ...] = (),
    window: tuple[int, int] | None = None,
) -> SystemFacts:
    """Facts from the spec and (optionally) the baseline frames of ``read_baselines``."""
    callees, required, attrs = _spec_graph(spec)
    seen = _observed(frames) if frames is not None else {}
    if frames is not None:
        for caller, callee in frames["edges"].iter_rows():
            callees.setdefault(str(caller), set()).add(str(callee))
            callees.setdefault(str(callee), set())
    for name in seen:
        callees.setdefault(name, set())
    ops: dict[str, OperationFacts] = {}
    layers = {s: x.name for x in spec.boundaries.layers for s in x.services}
    empty = _Seen(0, 0, None, 0, np.zeros(0), np.zeros(0))
    sequential: dict[str, bool] = {}
    if frames is not None:
        for parent, parents, overlapping in frames["overlap"].iter_rows():
            if int(parents) >= SEQUENTIAL_MIN_PARENTS:
                sequential[str(parent)] = int(overlapping) == 0
    for name in sorted(callees):
        o = seen.get(name, empty)
        ops[name] = OperationFacts(
            name=name, layer=layers.get(name.partition(":")[0]), callees=tuple(sorted(callees[name])),
            required=tuple(sorted(required.get(name, ()))), attributes=tuple(sorted(attrs.get(name, ()))),
            requests=o.requests, error_ratio=o.errors / o.requests if o.requests else None,
            p50_ms=float(np.quantile(o.server_ms, 0.5)) if o.server_ms.size else None,
            p99_ms=float(np.quantile(o.server_ms, 0.99)) if o.server_ms.size else None,
            version=o.version, sequential=sequential.get(name), durations_ms=o.wait_ms,
        )  # fmt: skip
    services: dict[str, ServiceFacts] = {}
    names = {n.partition(":")[0] for n in ops} | set(layers)
    metrics = frames["metrics"] if frames is not None else pl.DataFrame({"service": [], "metric": [], "histogram": []})
    logs = {r["service"]: r for r in frames["logs"].iter_rows(named=True)} if frames is not None else {}
    for s in sorted(names):
        mine = metrics.filter(pl.col("service") == s)
        newest = max((o for n, o in seen.items() if n.partition(":")[0] == s and o.version), key=lambda o: o.last_ns,
                     default=None)  # fmt: skip
        log = logs.get(s)
        services[s] = ServiceFacts(
            name=s, layer=layers.get(s), version=newest.version if newest else None,
            metrics=tuple(str(m) for m in mine["metric"]),
            histograms=tuple(str(m) for m, h in zip(mine["metric"], mine["histogram"], strict=True) if h),
            logs=int(log["logs"]) if log else 0, log_context_share=float(log["share"] or 0.0) if log else 0.0,
        )  # fmt: skip
    return SystemFacts(spec=spec, operations=ops, services=services, laws=(*spec.to_invariants(), *laws), window=window)
