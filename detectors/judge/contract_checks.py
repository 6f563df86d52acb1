"""Check the running system against a feature contract: telemetry present, SLOs met, edges, invariants.

Each check becomes a critical ``MetricResult`` of kind ``contract`` (rule ``check``): a
contract broken is a failed gate. Invariants belong to ``detectors/invariants/``; the
checker is passed in (``InvariantChecker``, see ``contract_invariants``); without one they
are reported as "not checked".

A side's version names the version of the services under change; operations of other
services the contract names (a platform API the change starts calling) are read over the
side's time range at whatever version they run.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import numpy as np
import polars as pl

from detectors.judge.contract import Contract
from detectors.judge.metrics import MetricResult, Outcome
from detectors.judge.samples import (
    Scope,
    call_edges,
    histogram_names,
    log_trace_context,
    metric_names,
    requests,
    span_attribute_coverage,
    trace_propagation,
)

__all__ = ["InvariantChecker", "check_contract"]

InvariantChecker = Callable[[str, Scope], bool | None]
"""Invariant name, candidate scope -> held (True), violated (False), unknown (None)."""

SLO_MIN_REQUESTS = 300
"""Candidate requests needed before an SLO quantile is judged (below: insufficient)."""


def _check(name: str, entity: str, outcome: Outcome, text: str, n: int = 0) -> MetricResult:
    return MetricResult(
        name=f"contract {name}",
        kind="contract",
        entity=entity,
        rule="check",
        critical=True,
        outcome=outcome,
        n_candidate=n,
        text=text,
        reason=text,
    )


def _narrow(service: str, side: Scope) -> Scope:
    """``side`` for one service: its version applies only to the services the side names."""
    version = side.version if service in side.services else None
    return Scope((service,), version, side.start_ns, side.end_ns)


def _foreign_requests(
    con: duckdb.DuckDBPyConnection, contract: Contract, candidate: Scope, candidate_requests: pl.DataFrame
) -> pl.DataFrame:
    """The candidate's requests plus those of other services whose operations have SLOs in the contract."""
    foreign = sorted(
        {o.name.partition(":")[0] for o in contract.operations if o.slo.latency_ms or o.slo.error_ratio is not None}
        - set(candidate.services)
    )
    if not candidate.services or not foreign:
        return candidate_requests
    extra = [requests(con, _narrow(s, candidate)) for s in foreign]
    return pl.concat([candidate_requests, *extra])


def _slo_checks(contract: Contract, candidate_requests: pl.DataFrame) -> list[MetricResult]:
    out: list[MetricResult] = []
    for op in contract.operations:
        service, _, name = op.name.partition(":")
        rows = candidate_requests.filter((pl.col("service") == service) & (pl.col("operation") == name))
        n = rows.height
        slo = op.slo
        if slo.latency_ms is None and slo.error_ratio is None:
            continue
        if n < SLO_MIN_REQUESTS:
            r = _check(f"slo {op.name}", op.name, "insufficient", f"{n} requests, need {SLO_MIN_REQUESTS}", n)
            out.append(r)
            continue
        if slo.latency_ms is not None:
            ok = rows.filter(~pl.col("is_error"))["duration_ns"].to_numpy()
            value = float(np.quantile(ok, slo.quantile)) / 1e6 if ok.size else float("inf")
            label = f"p{slo.quantile * 100:g}"
            verdict: Outcome = "pass" if value <= slo.latency_ms else "fail"
            text = f"{label} {value:.4g} ms, SLO <= {slo.latency_ms:g} ms"
            out.append(_check(f"slo latency {op.name}", op.name, verdict, text, n))
        if slo.error_ratio is not None:
            ratio = float(rows["is_error"].cast(pl.Float64).mean() or 0.0)  # type: ignore[arg-type]
            verdict = "pass" if ratio <= slo.error_ratio else "fail"
            text = f"errors {ratio * 100:.2f} %, SLO <= {slo.error_ratio * 100:g} %"
            out.append(_check(f"slo errors {op.name}", op.name, verdict, text, n))
    return out


def _propagation_check(
    con: duckdb.DuckDBPyConnection, service: str, base: Scope, cand: Scope, need: float
) -> MetricResult:
    """Share of requests joined to their caller's trace, candidate against baseline (entry points have none)."""
    n_b, frac_b = trace_propagation(con, base)
    n_c, frac_c = trace_propagation(con, cand)
    name = f"trace propagation {service}"
    if n_c == 0:
        return _check(name, service, "fail", "no requests of the service in the candidate", 0)
    if n_b == 0:
        return _check(name, service, "not_checked", "no baseline requests to compare with", n_c)
    ok = frac_c >= frac_b * need
    text = (
        f"{frac_b * 100:.1f} % -> {frac_c * 100:.1f} % of requests joined their caller's trace "
        f"(need {need * 100:g} % of the baseline's share)"
    )
    return _check(name, service, "pass" if ok else "fail", text, n_c)


def _telemetry_checks(
    con: duckdb.DuckDBPyConnection, contract: Contract, baseline: Scope, candidate: Scope
) -> list[MetricResult]:
    out: list[MetricResult] = []
    t = contract.telemetry
    for op in contract.operations:
        if not op.span_attributes:
            continue
        service, _, name = op.name.partition(":")
        scope = _narrow(service, candidate)
        n, coverage = span_attribute_coverage(con, scope, name, op.span_attributes)
        missing = {a: f for a, f in coverage.items() if f < t.min_fraction}
        if n == 0:
            out.append(_check(f"span attributes {op.name}", op.name, "fail", "no spans of the operation", 0))
            continue
        text = (
            "missing: " + ", ".join(f"{a} on {f * 100:.1f} % of spans" for a, f in missing.items())
            if missing
            else f"all of {', '.join(op.span_attributes)} on >= {t.min_fraction * 100:g} % of {n} spans"
        )
        out.append(_check(f"span attributes {op.name}", op.name, "fail" if missing else "pass", text, n))
    services = t.services or contract.services() or list(candidate.services)
    for service in services:
        scope = _narrow(service, candidate)
        if t.metrics:
            have = metric_names(con, scope)
            absent = [m for m in t.metrics if m not in have]
            text = f"absent: {', '.join(absent)}" if absent else f"all {len(t.metrics)} key metrics emitted"
            out.append(_check(f"metrics {service}", service, "fail" if absent else "pass", text))
        if t.histograms:
            have = histogram_names(con, scope)
            absent = [m for m in t.histograms if m not in have]
            text = f"not as histograms: {', '.join(absent)}" if absent else f"all {len(t.histograms)} histograms"
            out.append(_check(f"histograms {service}", service, "fail" if absent else "pass", text))
        if t.logs_with_trace_context:
            n, frac = log_trace_context(con, scope)
            ok = n > 0 and frac >= t.min_fraction
            text = f"{frac * 100:.1f} % of {n} log records carry trace context (need {t.min_fraction * 100:g} %)"
            out.append(_check(f"logs trace context {service}", service, "pass" if ok else "fail", text, n))
        if t.trace_propagation:
            base = _narrow(service, baseline)
            out.append(_propagation_check(con, service, base, scope, t.min_fraction))
    return out


def _edge_checks(con: duckdb.DuckDBPyConnection, contract: Contract, candidate: Scope) -> list[MetricResult]:
    edges = contract.calls.present + contract.calls.removed
    if not edges:
        return []
    callers = sorted({e.caller.partition(":")[0] for e in edges})
    count: dict[tuple[str, str], int] = {}
    for caller in callers:
        seen = call_edges(con, _narrow(caller, candidate))
        count.update({(str(a), str(b)): int(c) for a, b, c in seen.iter_rows()})
    out: list[MetricResult] = []
    for e in contract.calls.present:
        n = count.get((e.caller, e.callee), 0)
        text = f"{e.caller} -> {e.callee}: {n} calls (expected present)"
        out.append(_check(f"edge {e.caller} -> {e.callee}", e.caller, "pass" if n else "fail", text, n))
    for e in contract.calls.removed:
        n = count.get((e.caller, e.callee), 0)
        text = f"{e.caller} -> {e.callee}: {n} calls (expected removed)"
        out.append(_check(f"edge {e.caller} -> {e.callee}", e.caller, "fail" if n else "pass", text, n))
    return out


def _invariant_checks(contract: Contract, candidate: Scope, checker: InvariantChecker | None) -> list[MetricResult]:
    out: list[MetricResult] = []
    for name, want in [(n, True) for n in contract.invariants.held] + [(n, False) for n in contract.invariants.removed]:
        held = checker(name, candidate) if checker else None
        if held is None:
            why = "not checked: invariants not available" if checker is None else "not checked: invariant unknown"
            out.append(_check(f"invariant {name}", name, "not_checked", why))
            continue
        ok = held == want
        text = f"{'holds' if held else 'violated'} (expected {'held' if want else 'removed'})"
        out.append(_check(f"invariant {name}", name, "pass" if ok else "fail", text))
    return out


def check_contract(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    *,
    baseline: Scope,
    candidate: Scope,
    candidate_requests: pl.DataFrame,
    invariant_checker: InvariantChecker | None = None,
) -> list[MetricResult]:
    """Every check of ``contract`` on the candidate side, in a fixed order (SLOs, telemetry, edges, invariants)."""
    return [
        *_slo_checks(contract, _foreign_requests(con, contract, candidate, candidate_requests)),
        *_telemetry_checks(con, contract, baseline, candidate),
        *_edge_checks(con, contract, candidate),
        *_invariant_checks(contract, candidate, invariant_checker),
    ]
