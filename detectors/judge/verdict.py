"""From judged metrics to the gate's verdict: per-metric outcomes, the 0-100 score, pass / marginal / fail.

Per metric (``decide``):

- ``test`` rule: the one-sided p-values are adjusted with Holm's (1979) step-down
  method in two families, the critical metrics (whose failure fails the gate) and the
  others (whose failure makes it marginal), so checking 30 metrics does not buy 30
  chances of a false fail, and the many non-critical series do not dilute the power of
  the critical ones. Fail when q < alpha and the harmful effect reaches ``min_effect``;
  marginal when q < alpha and it reaches half of it; pass otherwise.
- ``interval`` rule (quantiles): fail when the whole 95 % interval lies beyond
  ``min_effect`` in the harmful direction; marginal when it excludes 0 and the point
  estimate reaches ``min_effect``.
- ``count`` and ``check`` rules arrive decided.

The gate (``gate_verdict``): insufficient data when no critical metric could be judged or
a required entity (an operation the contract declares) has too little data; fail when a
critical metric fails or the score drops below ``fail_score``; marginal when any metric
is marginal or a non-critical metric fails; pass otherwise. The score is
100 x sum(weight x credit) / sum(weight) over judged metrics, credit 1 pass, 0.5
marginal, 0 fail. Everything is a pure function of the results: the same input gives the
same verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from detectors.judge.metrics import MetricResult

__all__ = ["Verdict", "VerdictName", "decide", "gate_verdict", "holm"]

VerdictName = Literal["pass", "marginal", "fail", "insufficient"]

_CREDIT = {"pass": 1.0, "marginal": 0.5, "fail": 0.0}


class Verdict(BaseModel):
    """The gate's answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: VerdictName
    score: int
    """0-100: weighted share of judged metrics that passed (marginal counts half)."""
    summary: str
    reasons: list[str]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as the input), monotone and capped at 1."""
    p = np.asarray(p_values, np.float64)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]


def _harm(value: float, direction: str) -> float:
    return value if direction == "increase" else -value


def decide(results: Sequence[MetricResult], alpha: float = 0.01) -> list[MetricResult]:
    """Copies of ``results`` with outcome, q-value and reason set (see the module docstring)."""
    tested = [
        i for i, r in enumerate(results) if r.rule == "test" and r.outcome != "insufficient" and r.p_value is not None
    ]
    q: dict[int, float] = {}
    for family in (True, False):  # critical and non-critical metrics: one Holm family each
        members = [i for i in tested if results[i].critical is family]
        p_values = [results[i].p_value for i in members]
        q.update(zip(members, holm([1.0 if p is None else p for p in p_values]), strict=True))
    out: list[MetricResult] = []
    for i, r in enumerate(results):
        if r.outcome in ("insufficient", "not_checked") or r.rule in ("count", "check"):
            out.append(r.model_copy())
            continue
        effect = _harm(r.effect or 0.0, r.direction)
        if r.rule == "test":
            qv = q[i]
            if qv < alpha and effect >= r.min_effect:
                outcome, why = "fail", f"significant (q={qv:.2g}) and beyond the minimum effect {r.min_effect:g}"
            elif qv < alpha and effect >= r.min_effect / 2:
                outcome, why = "marginal", f"significant (q={qv:.2g}) but below the minimum effect {r.min_effect:g}"
            else:
                outcome, why = "pass", f"q={qv:.2g}, effect {effect:+.3g} (minimum {r.min_effect:g})"
            out.append(r.model_copy(update={"outcome": outcome, "q_value": qv, "reason": why}))
            continue
        low = r.ci_low if r.direction == "increase" else r.ci_high
        near = _harm(low if low is not None else 0.0, r.direction)
        if near >= r.min_effect:
            outcome, why = "fail", f"the whole interval is beyond the minimum effect {r.min_effect:g}"
        elif near > 0 and effect >= r.min_effect:
            outcome, why = "marginal", "harmful and beyond the minimum effect, but the interval reaches below it"
        else:
            outcome, why = "pass", f"the interval reaches {near:+.3g} (minimum effect {r.min_effect:g})"
        out.append(r.model_copy(update={"outcome": outcome, "reason": why}))
    return out


def gate_verdict(results: Iterable[MetricResult], required: Iterable[str] = (), fail_score: int = 60) -> Verdict:
    """The gate's verdict from decided metric results; ``required`` are entities that must have enough data."""
    rs = list(results)
    must = set(required)
    judged = [r for r in rs if r.outcome in _CREDIT]
    weight = sum(r.weight for r in judged)
    score = round(100 * sum(r.weight * _CREDIT[r.outcome] for r in judged) / weight) if weight else 0
    short = [r for r in rs if r.outcome == "insufficient" and r.critical]
    blocking = [r for r in short if r.entity in must]
    if blocking or not any(r.critical for r in judged):
        pool = blocking or short or [r for r in rs if r.outcome == "insufficient"]
        detail = f"{pool[0].entity}: {pool[0].reason}" if pool else "no requests in one of the windows"
        return Verdict(verdict="insufficient", score=0, summary=f"insufficient data: {detail}", reasons=[detail])
    failed = [r for r in rs if r.outcome == "fail"]
    critical = [r for r in failed if r.critical]
    marginal = [r for r in rs if r.outcome == "marginal"]
    reasons = [f"{r.name}: {r.text}" for r in (*critical, *[f for f in failed if not f.critical], *marginal)]
    skipped = [r for r in rs if r.outcome == "insufficient"]
    if skipped:
        reasons.append(f"not judged (too little data): {', '.join(r.name for r in skipped)}")
    if critical or score < fail_score:
        name: VerdictName = "fail"
        head = f"{len(critical)} critical metric(s) failed" if critical else f"score {score} below {fail_score}"
    elif failed or marginal:
        name, head = "marginal", f"{len(failed)} non-critical failure(s), {len(marginal)} marginal"
    else:
        name, head = "pass", f"{len(judged)} metrics judged, none regressed"
    return Verdict(verdict=name, score=score, summary=f"{name}: {head} (score {score})", reasons=reasons)
