"""Effect sizes for before/after comparisons of summarised windows (means, ratios).

Kept here, with the other statistics, so that callers that only hold summaries (the
investigation tools read per-operation means, deviations and counts from SQL) use one
definition instead of writing their own. Vectorised: scalars or arrays alike.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
ArrayLike = float | npt.ArrayLike


Summary = tuple[ArrayLike, ArrayLike, ArrayLike]
"""(mean, standard deviation, count) of one window."""


def welch_z(before: Summary, after: Summary) -> FloatArray:
    """Welch's statistic (mean1 - mean0) / sqrt(sd0^2/n0 + sd1^2/n1); 0 where the spread is 0.

    Counts below 1 are taken as 1. With the sizes of request windows (hundreds and more) it
    is read as a standard normal deviate.
    """
    (mean0, sd0, n0), (mean1, sd1, n1) = before, after
    m0, m1 = np.asarray(mean0, dtype=np.float64), np.asarray(mean1, dtype=np.float64)
    k0, k1 = np.maximum(np.asarray(n0, dtype=np.float64), 1.0), np.maximum(np.asarray(n1, dtype=np.float64), 1.0)
    se = np.sqrt(np.asarray(sd0, dtype=np.float64) ** 2 / k0 + np.asarray(sd1, dtype=np.float64) ** 2 / k1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, (m1 - m0) / se, 0.0)


def two_proportion_z(p0: ArrayLike, n0: ArrayLike, p1: ArrayLike, n1: ArrayLike) -> FloatArray:
    """Pooled two-proportion statistic (p1 - p0) / sqrt(p (1 - p) (1/n0 + 1/n1)); 0 when p is 0 or 1."""
    a, b = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    k0, k1 = np.maximum(np.asarray(n0, dtype=np.float64), 1.0), np.maximum(np.asarray(n1, dtype=np.float64), 1.0)
    pooled = (a * k0 + b * k1) / (k0 + k1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / k0 + 1 / k1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, (b - a) / se, 0.0)


def two_sided_p(z: ArrayLike) -> FloatArray:
    """Two-sided normal tail probability of a standard normal deviate."""
    return np.asarray(2.0 * stats.norm.sf(np.abs(np.asarray(z, dtype=np.float64))), dtype=np.float64)
