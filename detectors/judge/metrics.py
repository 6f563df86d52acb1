"""The metrics of the gate: what each one measures, which direction is harm, its minimum effect, and its judge.

Each ``judge_*`` function turns the two samples of one metric into a :class:`MetricResult`
with the numbers a reviewer needs (baseline and candidate values, effect with its
confidence interval, one-sided p-value in the harmful direction); the outcome (pass,
marginal, fail) is decided afterwards for all metrics together by
:func:`detectors.judge.verdict.decide`, which corrects for testing many metrics at once.

Effects are relative changes (0.28 = +28 %) except for error ratios (absolute
difference, 0.01 = +1 percentage point) and new log templates (a count).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from detectors.judge.mann_whitney import shift_test
from detectors.judge.proportions import proportion_test

__all__ = [
    "DEFAULT_SPECS",
    "MetricKind",
    "MetricResult",
    "MetricSpec",
    "Outcome",
    "insufficient",
    "judge_errors",
    "judge_latency",
    "judge_new_templates",
    "judge_quantile",
    "judge_sample",
]

FloatArray = NDArray[np.float64]

MetricKind = Literal[
    "latency",
    "latency_p99",
    "error_ratio",
    "calls_per_request",
    "gauge",
    "histogram_metric",
    "new_log_templates",
    "invariants",
    "contract",
]
Outcome = Literal["pass", "marginal", "fail", "insufficient", "not_checked"]
Rule = Literal["test", "interval", "count", "check"]
"""How the outcome is decided: a significance test + minimum effect, a confidence interval, a count, a yes/no check."""

_BOOTSTRAP_RESAMPLES = 200
_BOOTSTRAP_SEED = 20260302
"""Fixed: the gate is deterministic, the same samples give the same interval."""


class MetricSpec(BaseModel):
    """How one kind of metric is judged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    direction: Literal["increase", "decrease"] = "increase"
    """The harmful direction: only an increase in latency is harm."""
    min_effect: float = Field(ge=0)
    """Smallest harmful effect that fails the metric (relative, or absolute fraction for error ratios, or a count)."""
    critical: bool = False
    """A failing critical metric fails the gate on its own."""
    weight: float = Field(1.0, gt=0)
    """Weight in the 0-100 score."""
    min_samples: int = Field(0, ge=0)
    """Fewer samples on either side: the metric is 'insufficient', never a silent pass."""
    floor: float = Field(0.0, ge=0)
    """Relative effects divide by max(|baseline median|, floor): a queue of 0 going to 0.2 is not +inf %."""


DEFAULT_SPECS: dict[str, MetricSpec] = {
    "latency": MetricSpec(min_effect=0.05, critical=True, weight=3.0, min_samples=300),
    "latency_p99": MetricSpec(min_effect=0.20, min_samples=1000),
    "error_ratio": MetricSpec(min_effect=0.005, critical=True, weight=3.0, min_samples=300),
    "calls_per_request": MetricSpec(min_effect=0.10, min_samples=300, floor=1.0),
    "gauge": MetricSpec(min_effect=0.25, min_samples=20, floor=1.0),
    "histogram_metric": MetricSpec(min_effect=0.20, min_samples=10),
    "new_log_templates": MetricSpec(min_effect=5, weight=1.0),
}
"""Defaults per metric kind; a contract or a caller may override them."""


class MetricResult(BaseModel):
    """One metric of the gate, judged: the numbers a reviewer reads and the outcome."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Stable key, e.g. ``latency api:GET /items``."""
    kind: MetricKind
    entity: str
    """What was measured: ``service:operation``, a metric name, a service."""
    rule: Rule
    critical: bool
    direction: Literal["increase", "decrease"] = "increase"
    min_effect: float = 0.0
    outcome: Outcome = "pass"
    n_baseline: int = 0
    n_candidate: int = 0
    baseline: float | None = None
    candidate: float | None = None
    unit: str = ""
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    """One-sided p-value in the harmful direction."""
    q_value: float | None = None
    """p-value adjusted (Holm) over all tested metrics of the gate."""
    weight: float = 1.0
    text: str = ""
    """One line for a reviewer: 'p99 180 ms -> 231 ms, typical +28 % [+19 %, +37 %]'."""
    reason: str = ""
    """Why the outcome (set by the verdict, or why the metric was not judged)."""
    details: dict[str, float | str] = {}


def _pct(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x * 100:+.1f} %"


def _interval(low: float, high: float) -> str:
    return f"[{_pct(low)}, {_pct(high)}]"


def _num(x: float, unit: str) -> str:
    return f"{x:.4g} {unit}".rstrip()


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _header(
    kind: MetricKind, entity: str, spec: MetricSpec, rule: Rule, *, n_b: int = 0, n_c: int = 0
) -> dict[str, Any]:
    """The fields every judged metric shares: its name, the spec's rules, the sample sizes."""
    return {
        "name": f"{kind} {entity}", "kind": kind, "entity": entity, "rule": rule, "critical": spec.critical,
        "direction": spec.direction, "min_effect": spec.min_effect, "n_baseline": n_b, "n_candidate": n_c,
        "weight": spec.weight,
    }  # fmt: skip


def insufficient(
    kind: MetricKind, entity: str, spec: MetricSpec, n_baseline: int, n_candidate: int, *, what: str = "samples"
) -> MetricResult:
    """A metric with too few samples on a side: the reason says how many and how many are needed."""
    short = [
        f"{side} {n}" for side, n in (("baseline", n_baseline), ("candidate", n_candidate)) if n < spec.min_samples
    ]
    return MetricResult(
        **_header(kind, entity, spec, "test", n_b=n_baseline, n_c=n_candidate),
        outcome="insufficient",
        text=f"insufficient data: {', '.join(short)} {what}, need {spec.min_samples}",
        reason=f"{', '.join(short)} {what}, need {spec.min_samples}",
    )


def judge_latency(entity: str, baseline_ns: FloatArray, candidate_ns: FloatArray, spec: MetricSpec) -> MetricResult:
    """Latency: Mann-Whitney on ln(duration); effect = exp(Hodges-Lehmann shift) - 1, a typical relative change."""
    n_b, n_c = int(baseline_ns.size), int(candidate_ns.size)
    if min(n_b, n_c) < max(spec.min_samples, 1):
        return insufficient("latency", entity, spec, n_b, n_c, what="requests")
    test = shift_test(np.log(np.maximum(baseline_ns, 1.0)), np.log(np.maximum(candidate_ns, 1.0)))
    effect, low, high = math.expm1(test.shift), math.expm1(test.ci_low), math.expm1(test.ci_high)
    q_b = np.quantile(baseline_ns, [0.5, 0.99]) / 1e6
    q_c = np.quantile(candidate_ns, [0.5, 0.99]) / 1e6
    p = test.p_greater if spec.direction == "increase" else test.p_less
    return MetricResult(
        **_header("latency", entity, spec, "test", n_b=n_b, n_c=n_c),
        baseline=float(q_b[0]),
        candidate=float(q_c[0]),
        unit="ms",
        effect=effect,
        ci_low=_finite(low),
        ci_high=_finite(high),
        p_value=p,
        text=(
            f"p50 {q_b[0]:.4g} ms -> {q_c[0]:.4g} ms, p99 {q_b[1]:.4g} ms -> {q_c[1]:.4g} ms, "
            f"typical {_pct(effect)} {_interval(low, high)}"
        ),
        details={"p99_baseline_ms": float(q_b[1]), "p99_candidate_ms": float(q_c[1])},
    )


def judge_quantile(
    entity: str, baseline_ns: FloatArray, candidate_ns: FloatArray, spec: MetricSpec, q: float = 0.99
) -> MetricResult:
    """A latency quantile: ratio candidate/baseline - 1 with a seeded percentile-bootstrap 95 % interval.

    Decided by its interval (no p-value): it fails when even the lower bound exceeds the
    minimum effect, so a tail-only regression is caught once there are enough requests.
    """
    kind: MetricKind = "latency_p99"
    n_b, n_c = int(baseline_ns.size), int(candidate_ns.size)
    if min(n_b, n_c) < max(spec.min_samples, 1):
        return insufficient(kind, entity, spec, n_b, n_c, what="requests")
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    base = np.asarray(baseline_ns, np.float64)
    cand = np.asarray(candidate_ns, np.float64)
    chunk = max(1, 5_000_000 // max(n_b, n_c))
    ratios: list[FloatArray] = []
    for start in range(0, _BOOTSTRAP_RESAMPLES, chunk):  # chunks bound the memory of the resample matrix
        b = min(chunk, _BOOTSTRAP_RESAMPLES - start)
        qb = np.quantile(base[rng.integers(0, n_b, (b, n_b))], q, axis=1)
        qc = np.quantile(cand[rng.integers(0, n_c, (b, n_c))], q, axis=1)
        ratios.append(qc / np.maximum(qb, 1.0))
    boot = np.concatenate(ratios) - 1
    low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    vb, vc = float(np.quantile(base, q)) / 1e6, float(np.quantile(cand, q)) / 1e6
    effect = vc / max(vb, 1e-9) - 1
    if spec.direction == "decrease":
        low, high = high, low
    label = f"p{round(q * 100)}"
    return MetricResult(
        **_header(kind, entity, spec, "interval", n_b=n_b, n_c=n_c),
        baseline=vb,
        candidate=vc,
        unit="ms",
        effect=effect,
        ci_low=min(low, high),
        ci_high=max(low, high),
        text=f"{label} {vb:.4g} ms -> {vc:.4g} ms, {_pct(effect)} {_interval(min(low, high), max(low, high))}",
    )


def judge_errors(
    entity: str, errors_baseline: int, n_baseline: int, errors_candidate: int, n_candidate: int, *, spec: MetricSpec
) -> MetricResult:
    """Error ratio: Fisher's exact test; effect = difference of ratios with the Newcombe interval."""
    if min(n_baseline, n_candidate) < max(spec.min_samples, 1):
        return insufficient("error_ratio", entity, spec, n_baseline, n_candidate, what="requests")
    t = proportion_test(errors_baseline, n_baseline, errors_candidate, n_candidate)
    p = t.p_greater if spec.direction == "increase" else t.p_less
    pp = 100.0
    return MetricResult(
        **_header("error_ratio", entity, spec, "test", n_b=n_baseline, n_c=n_candidate),
        baseline=t.ratio_baseline,
        candidate=t.ratio_candidate,
        unit="ratio",
        effect=t.difference,
        ci_low=t.ci_low,
        ci_high=t.ci_high,
        p_value=p,
        text=(
            f"errors {t.ratio_baseline * pp:.2f} % -> {t.ratio_candidate * pp:.2f} % "
            f"({errors_baseline}/{n_baseline} -> {errors_candidate}/{n_candidate}), "
            f"{t.difference * pp:+.2f} pp [{t.ci_low * pp:+.2f}, {t.ci_high * pp:+.2f}]"
        ),
    )


def judge_sample(
    kind: MetricKind, entity: str, baseline: FloatArray, candidate: FloatArray, *, spec: MetricSpec, unit: str = ""
) -> MetricResult:
    """Any other numeric metric (calls per request, gauges, histogram-metric means): Mann-Whitney on the values.

    Effect = Hodges-Lehmann shift / max(|baseline median|, floor), a relative change.
    """
    n_b, n_c = int(baseline.size), int(candidate.size)
    if min(n_b, n_c) < max(spec.min_samples, 1):
        return insufficient(kind, entity, spec, n_b, n_c)
    test = shift_test(baseline, candidate)
    med_b, med_c = float(np.median(baseline)), float(np.median(candidate))
    scale = max(abs(med_b), spec.floor, 1e-12)
    effect, low, high = test.shift / scale, test.ci_low / scale, test.ci_high / scale
    p = test.p_greater if spec.direction == "increase" else test.p_less
    return MetricResult(
        **_header(kind, entity, spec, "test", n_b=n_b, n_c=n_c),
        baseline=med_b,
        candidate=med_c,
        unit=unit,
        effect=effect,
        ci_low=_finite(low),
        ci_high=_finite(high),
        p_value=p,
        text=f"median {_num(med_b, unit)} -> {_num(med_c, unit)}, shift {_pct(effect)} {_interval(low, high)}",
    )


def judge_new_templates(entity: str, new: list[tuple[str, int]], spec: MetricSpec) -> MetricResult:
    """New WARN/ERROR log templates: in the candidate, never in the baseline, at least ``min_effect`` times."""
    loud = [(t, c) for t, c in new if c >= spec.min_effect]
    shown = "; ".join(f"{t!r} x{c}" for t, c in loud[:3]) + (" ..." if len(loud) > 3 else "")
    return MetricResult(
        **_header("new_log_templates", entity, spec, "count", n_b=0, n_c=sum(c for _, c in new)),
        outcome="fail" if loud else "pass",
        baseline=0.0,
        candidate=float(len(loud)),
        unit="templates",
        effect=float(len(loud)),
        text=f"{len(loud)} new WARN/ERROR log templates" + (f": {shown}" if loud else ""),
        reason=f"templates seen >= {spec.min_effect:g} times in the candidate and never in the baseline",
    )
