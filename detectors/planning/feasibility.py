"""The latency floor a dependency chain puts under an SLO: no code can beat the calls it waits for.

An operation waits for its synchronous calls in *stages*: each sequential call is a stage,
the calls made in parallel form one stage (it lasts as long as its slowest call); async
calls are handed off and cost nothing here, and optional calls (not on every request)
set no floor. With T its duration, Y_j the stages' durations and own work >= 0,
T >= sum_j Y_j, and Y_j >= X_i for each call i of stage j. For the q-quantile
(lower, inverted-CDF definition) of T, two floors hold without any assumption of
independence:

- max floor: T >= X_i for every call, so Q_T(q) >= max_i Q_i(q);
- sum floor (Bonferroni): with m stages and a_j = max_{i in j} Q_i(q/m),
  {T <= t} for t < sum_j a_j needs some Y_j < a_j, each of probability < q/m, so
  P(T <= t) < q and Q_T(q) >= sum_j a_j.

``latency_floor`` returns the larger of the two, with the parts behind it. Quantiles of
calls without data are unknown and left out (the floor then only gets lower: still a
floor). The bound is exact for empirical distributions (property-tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Floor", "Wait", "latency_floor"]

Mode = Literal["sequential", "parallel", "async"]


@dataclass(frozen=True)
class Wait:
    """One call the operation makes on every request: the callee and how the caller waits for it."""

    callee: str
    mode: Mode = "sequential"


@dataclass(frozen=True)
class Floor:
    """A lower bound on an operation's q-quantile latency (ms), and how it was reached."""

    value_ms: float
    quantile: float
    method: Literal["max", "sum", "none"]
    """``max``: the slowest call's own quantile; ``sum``: stages at level q/m summed; ``none``: no call has data."""
    parts: tuple[tuple[str, float, float], ...]
    """(callee or stage, quantile level used, its value in ms) behind ``value_ms``."""
    unknown: tuple[str, ...] = ()
    """Callees without data, left out of the floor."""


def _stages(waits: Sequence[Wait]) -> list[tuple[str, ...]]:
    seq = [(w.callee,) for w in waits if w.mode == "sequential"]
    par = tuple(w.callee for w in waits if w.mode == "parallel")
    return [*seq, *([par] if par else [])]


def latency_floor(waits: Sequence[Wait], q: float, quantile: Callable[[str, float], float | None]) -> Floor:
    """The floor under the ``q``-quantile of an operation making ``waits`` (see the module docstring).

    ``quantile(callee, level)`` is the callee's ``level``-quantile in ms as callers wait for
    it (inverted CDF), or None without data.
    """
    if not 0 < q < 1:
        raise ValueError(f"quantile level {q} is not in (0, 1)")
    stages = _stages(waits)
    unknown = tuple(sorted({c for s in stages for c in s if quantile(c, q) is None}))
    best = Floor(0.0, q, "none", (), unknown)
    for stage in stages:
        for callee in stage:
            v = quantile(callee, q)
            if v is not None and v > best.value_ms:
                best = Floor(v, q, "max", ((callee, q, v),), unknown)
    m = len(stages)
    if m >= 2:
        level = q / m
        parts: list[tuple[str, float, float]] = []
        for stage in stages:
            known = [(c, v) for c in stage if (v := quantile(c, level)) is not None]
            if known:
                name, v = max(known, key=lambda cv: cv[1])
                parts.append((" | ".join(stage) if len(stage) > 1 else name, level, v))
        total = sum(p[2] for p in parts)
        if total > best.value_ms:
            best = Floor(total, q, "sum", tuple(parts), unknown)
    return best
