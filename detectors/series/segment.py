"""Optimal segmentation under a penalised cost: PELT (Killick, Fearnhead & Eckley 2012,
"Optimal detection of changepoints with a linear computational cost", JASA 107).

The cost is the residual sum of squares of a straight line fitted to each segment
(segments may jump and bend: a level shift, a new trend or both), computed in O(1) per
segment from cumulative sums. ``search`` minimises ``sum(cost) + penalty x changes`` over
all segmentations with segments of at least ``min_size`` points; PELT's pruning
(F(tau) + C(tau, t) > F(t) rules tau out for good, valid because splitting a least-squares
segment never raises its cost) keeps it fast when changes are frequent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors.series.robust import FloatArray

IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class LineCost:
    """Cumulative sums that give the least-squares line cost of any segment [a, b) in O(1)."""

    n1: FloatArray
    st: FloatArray
    stt: FloatArray
    sx: FloatArray
    stx: FloatArray
    sxx: FloatArray

    @classmethod
    def of(cls, x: FloatArray) -> LineCost:
        t = np.arange(len(x), dtype=np.float64)
        t -= t.mean()  # centred time keeps the sums well conditioned

        def cum(a: FloatArray) -> FloatArray:
            return np.concatenate([[0.0], np.cumsum(a)])

        return cls(cum(np.ones(len(x))), cum(t), cum(t * t), cum(x), cum(t * x), cum(x * x))

    def __call__(self, a: IntArray | int, b: int) -> FloatArray:
        """Residual sum of squares of the best line through x[a:b] (vectorised over ``a``)."""
        m = self.n1[b] - self.n1[a]
        st = self.st[b] - self.st[a]
        sx = self.sx[b] - self.sx[a]
        vtt = self.stt[b] - self.stt[a] - st * st / m
        vtx = self.stx[b] - self.stx[a] - st * sx / m
        rss = self.sxx[b] - self.sxx[a] - sx * sx / m
        slope_part = np.where(vtt > 1e-12, vtx * vtx / np.maximum(vtt, 1e-12), 0.0)
        return np.asarray(np.maximum(rss - slope_part, 0.0), dtype=np.float64)


def search(x: FloatArray, penalty: float, min_size: int = 3) -> list[int]:
    """Change points (index of the first point of each new segment) minimising cost + penalty per change."""
    n = len(x)
    if n < 2 * min_size:
        return []
    cost = LineCost.of(x)
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    previous = np.zeros(n + 1, dtype=np.int64)
    candidates = np.array([0], dtype=np.int64)
    for t in range(min_size, n + 1):
        newest = t - min_size
        if newest >= min_size:
            candidates = np.append(candidates, newest)
        fit = best[candidates] + cost(candidates, t)
        j = int(np.argmin(fit))
        best[t] = fit[j] + penalty
        previous[t] = candidates[j]
        candidates = candidates[fit <= best[t]]
    changes: list[int] = []
    t = n
    while t > 0:
        t = int(previous[t])
        if t > 0:
            changes.append(t)
    return sorted(changes)


def split_gain(cost: LineCost, a: int, c: int, b: int) -> float:
    """How much a change at ``c`` lowers the cost of segment [a, b) (>= 0)."""
    whole = float(cost(np.array([a]), b)[0])
    parts = float(cost(np.array([a]), c)[0]) + float(cost(np.array([c]), b)[0])
    return max(whole - parts, 0.0)
