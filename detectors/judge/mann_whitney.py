"""Mann-Whitney U test with the Hodges-Lehmann shift and its distribution-free confidence interval.

The judge of Netflix/Spinnaker Kayenta (``MannWhitneyClassifier``): a one-sided
Mann-Whitney U (Wilcoxon rank-sum) test of "the candidate is larger than the baseline",
and as effect size the Hodges-Lehmann estimate of the location shift (the median of all
candidate - baseline pairwise differences) with the Moses (1953) confidence interval, the
order statistics of those differences at the normal-approximation ranks (Hollander &
Wolfe, *Nonparametric Statistical Methods*, 3rd ed., 4.3). Latency is judged on
ln(duration), where a shift is a ratio: ``exp(shift) - 1`` is the typical relative change.

The n x m pairwise differences are never materialised: the k-th smallest difference is
found by bisection on the value, each step counting the pairs below it with one
``searchsorted`` of the candidate sample into the sorted baseline (O(m log n)), so
10^5 requests per side cost well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import mannwhitneyu, norm

__all__ = ["ShiftTest", "kth_smallest_differences", "shift_test"]

FloatArray = NDArray[np.float64]

_BISECTION_STEPS = 64
"""Halvings of the search interval: the answer is exact to ~2^-64 of the data range (float resolution)."""


@dataclass(frozen=True)
class ShiftTest:
    """Returns of :func:`shift_test`: candidate minus baseline, in the unit of the samples."""

    n_baseline: int
    n_candidate: int
    p_greater: float
    """One-sided p-value of "candidate is stochastically larger" (tie-corrected normal approximation)."""
    p_less: float
    """One-sided p-value of "candidate is stochastically smaller"."""
    shift: float
    """Hodges-Lehmann estimate: median of all candidate - baseline differences."""
    ci_low: float
    """Lower bound of the two-sided ``confidence`` interval of the shift (-inf when the samples are too small)."""
    ci_high: float
    """Upper bound of the interval (+inf when the samples are too small)."""
    confidence: float


def _count_at_most(baseline_sorted: FloatArray, candidate: FloatArray, d: FloatArray) -> NDArray[np.int64]:
    """For each d, the number of pairs (x, y) with y - x <= d, i.e. x >= y - d."""
    n = baseline_sorted.size
    below = np.searchsorted(baseline_sorted, candidate[None, :] - d[:, None], side="left")
    return np.asarray((n - below).sum(axis=1), np.int64)


def kth_smallest_differences(baseline: FloatArray, candidate: FloatArray, ks: NDArray[np.int64]) -> FloatArray:
    """The k-th smallest (1-based) of the differences candidate[j] - baseline[i], for each k in ``ks``.

    Bisection on the value, all ks at once: the invariant is count(lo) < k <= count(hi).
    """
    x = np.sort(np.asarray(baseline, np.float64))
    y = np.asarray(candidate, np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("kth_smallest_differences: both samples must be non-empty")
    total = x.size * y.size
    if np.any(ks < 1) or np.any(ks > total):
        raise ValueError(f"kth_smallest_differences: ranks must be in 1..{total}")
    lowest = float(y.min() - x[-1])
    highest = float(y.max() - x[0])
    span = max(highest - lowest, 1e-300)
    lo = np.full(ks.size, lowest - span * 1e-9 - 1e-300)
    hi = np.full(ks.size, highest)
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        up = _count_at_most(x, y, mid) >= ks
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
        if np.all(hi - lo <= span * 1e-12):
            break
    # The k-th smallest is a data value within float rounding of hi: snap to the nearest
    # difference, looking at both neighbours of y - hi in the sorted baseline.
    nearest = hi.copy()
    for i, h in enumerate(hi):  # a handful of ranks (4), not a data loop
        at = np.searchsorted(x, y - h, side="left")
        near = np.concatenate((y - x[np.minimum(at, x.size - 1)], y - x[np.maximum(at - 1, 0)]))
        nearest[i] = float(near[np.argmin(np.abs(near - h))])
    return nearest


def shift_test(baseline: FloatArray, candidate: FloatArray, confidence: float = 0.95) -> ShiftTest:
    """Mann-Whitney U of ``candidate`` against ``baseline`` with the Hodges-Lehmann shift and Moses interval.

    Both samples must be non-empty and finite. The interval uses the rank
    C = floor(nm/2 - z * sqrt(nm(n+m+1)/12)); with too few pairs for that rank it is
    unbounded on both sides (reported as -inf / +inf).
    """
    x = np.asarray(baseline, np.float64)
    y = np.asarray(candidate, np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("shift_test: both samples must be non-empty")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("shift_test: samples must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"shift_test: confidence must be in (0, 1), got {confidence}")
    n, m = x.size, y.size
    if np.all(x == x[0]) and np.all(y == x[0]):
        p_greater = p_less = 1.0  # all values tied: no evidence either way (scipy would return NaN)
    else:
        p_greater = float(mannwhitneyu(y, x, alternative="greater", method="asymptotic").pvalue)
        p_less = float(mannwhitneyu(y, x, alternative="less", method="asymptotic").pvalue)
    total = n * m
    z = float(norm.ppf(0.5 + confidence / 2))
    c = math.floor(total / 2 - z * math.sqrt(total * (n + m + 1) / 12))
    half = (total + 1) // 2
    ranks = [half, total // 2 + 1 if total % 2 == 0 else half]
    bounded = c >= 1
    if bounded:
        ranks += [c, total - c + 1]
    values = kth_smallest_differences(x, y, np.asarray(ranks, np.int64))
    shift = float((values[0] + values[1]) / 2)
    ci_low, ci_high = (float(values[2]), float(values[3])) if bounded else (-math.inf, math.inf)
    return ShiftTest(n, m, p_greater, p_less, shift, ci_low, ci_high, confidence)
