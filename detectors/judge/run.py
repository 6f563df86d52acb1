"""Judge a candidate against a baseline on every metric of the gate, then decide the verdict.

Metrics per operation (SERVER/CONSUMER spans of the scope's services): latency
(Mann-Whitney on ln duration of successful requests), latency p99 (bootstrap interval),
error ratio (Fisher + Newcombe), calls per request (direct child spans, Mann-Whitney).
Per service: gauges (saturation: queue depth, in-flight), histogram metrics (per-interval
means, batch jobs included), new WARN/ERROR log templates. Plus the feature contract's
checks when one is given.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from detectors.judge.contract import Contract
from detectors.judge.contract_checks import InvariantChecker, check_contract
from detectors.judge.metrics import (
    DEFAULT_SPECS,
    MetricResult,
    MetricSpec,
    judge_errors,
    judge_latency,
    judge_new_templates,
    judge_quantile,
    judge_sample,
)
from detectors.judge.samples import Scope, gauge_samples, histogram_means, new_log_templates, requests
from detectors.judge.verdict import Verdict, decide, gate_verdict

__all__ = ["Judgement", "judge", "specs_for"]


class Judgement(BaseModel):
    """Every metric judged, and the verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    metrics: list[MetricResult]


def specs_for(contract: Contract | None, overrides: Mapping[str, MetricSpec] | None = None) -> dict[str, MetricSpec]:
    """The defaults, updated by ``overrides`` and then by the contract's ``thresholds``."""
    specs = {**DEFAULT_SPECS, **(overrides or {})}
    if contract:
        for kind, t in contract.thresholds.items():
            specs[kind] = specs[kind].model_copy(update={k: v for k, v in t.model_dump().items() if v is not None})
    return specs


def _groups(frame: pl.DataFrame) -> dict[tuple[str, str], pl.DataFrame]:
    return {(str(k[0]), str(k[1])): g for k, g in frame.group_by(["service", "operation"], maintain_order=True)}


def _values(groups: dict[str, pl.DataFrame], key: str) -> np.ndarray:
    g = groups.get(key)
    return np.zeros(0) if g is None else g["value"].to_numpy().astype(np.float64)


def _operation_metrics(
    base: pl.DataFrame, cand: pl.DataFrame, specs: Mapping[str, MetricSpec], added: set[str], declared: set[str]
) -> list[MetricResult]:
    gb, gc = _groups(base), _groups(cand)
    # Declared operations are judged even when absent: no data there is 'insufficient', never a pass.
    wanted = {(d.partition(":")[0], d.partition(":")[2]) for d in declared - added}
    out: list[MetricResult] = []
    for key in sorted(set(gb) | set(gc) | wanted):  # a loop over operations (tens), each judged vectorised
        entity = f"{key[0]}:{key[1]}"
        if entity in added and key not in gb:
            continue  # a new operation: only its contract checks apply
        b = gb.get(key, base.clear())
        c = gc.get(key, cand.clear())
        b_ok = b.filter(~pl.col("is_error"))["duration_ns"].to_numpy().astype(np.float64)
        c_ok = c.filter(~pl.col("is_error"))["duration_ns"].to_numpy().astype(np.float64)
        out.append(judge_latency(entity, b_ok, c_ok, specs["latency"]))
        out.append(judge_quantile(entity, b_ok, c_ok, specs["latency_p99"]))
        errors_b, errors_c = int(b["is_error"].sum()), int(c["is_error"].sum())
        out.append(judge_errors(entity, errors_b, b.height, errors_c, c.height, spec=specs["error_ratio"]))
        calls_b = b["calls"].to_numpy().astype(np.float64)
        calls_c = c["calls"].to_numpy().astype(np.float64)
        if calls_b.any() or calls_c.any():
            out.append(
                judge_sample(
                    "calls_per_request", entity, calls_b, calls_c, spec=specs["calls_per_request"], unit="calls"
                )
            )
    return out


def _keyed(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {str(k[0]): g for k, g in frame.group_by(["entity"], maintain_order=True)}


def _series_metrics(
    con: duckdb.DuckDBPyConnection, baseline: Scope, candidate: Scope, specs: Mapping[str, MetricSpec]
) -> list[MetricResult]:
    out: list[MetricResult] = []
    gb, gc = _keyed(gauge_samples(con, baseline)), _keyed(gauge_samples(con, candidate))
    for entity in sorted(set(gb) & set(gc)):
        out.append(judge_sample("gauge", entity, _values(gb, entity), _values(gc, entity), spec=specs["gauge"]))
    hb, hc = _keyed(histogram_means(con, baseline)), _keyed(histogram_means(con, candidate))
    for entity in sorted(set(hb) & set(hc)):
        out.append(
            judge_sample(
                "histogram_metric", entity, _values(hb, entity), _values(hc, entity), spec=specs["histogram_metric"]
            )
        )
    fresh = new_log_templates(con, baseline, candidate)
    services = sorted(set(candidate.services) | set(fresh["service"].to_list()))
    for service in services:
        rows = fresh.filter(pl.col("service") == service)
        new = [(str(t), int(c)) for t, c in zip(rows["template"], rows["count"], strict=True)]
        out.append(judge_new_templates(service, new, specs["new_log_templates"]))
    return out


def judge(
    con: duckdb.DuckDBPyConnection,
    baseline: Scope,
    candidate: Scope,
    *,
    contract: Contract | None = None,
    specs: Mapping[str, MetricSpec] | None = None,
    alpha: float = 0.01,
    fail_score: int = 60,
    invariant_checker: InvariantChecker | None = None,
) -> Judgement:
    """Judge ``candidate`` against ``baseline``: every metric, the contract's checks, the verdict.

    ``specs`` are complete per-kind settings (see :func:`specs_for`). Operations the
    contract declares must have enough data on both sides (or on the candidate, when
    added); otherwise the verdict is 'insufficient'.
    """
    chosen = dict(specs) if specs is not None else specs_for(contract)
    base, cand = requests(con, baseline), requests(con, candidate)
    added = {o.name for o in contract.operations if o.added} if contract else set()
    declared = {o.name for o in contract.operations} if contract else set()
    results = _operation_metrics(base, cand, chosen, added, declared)
    results += _series_metrics(con, baseline, candidate, chosen)
    if contract is not None:
        results += check_contract(
            con,
            contract,
            baseline=baseline,
            candidate=candidate,
            candidate_requests=cand,
            invariant_checker=invariant_checker,
        )
    decided = decide(results, alpha)
    return Judgement(verdict=gate_verdict(decided, declared, fail_score), metrics=decided)
