"""Two-proportion judge for error ratios: Fisher's exact test and the Newcombe interval of the difference.

The test is Fisher's exact test of the 2x2 table (candidate, baseline) x (error, ok),
one-sided in each direction: exact at the small error counts a canary sees (3 errors in
300 requests), where the normal approximation misleads. The effect is the difference of
the error ratios (candidate - baseline, a fraction; x100 for percentage points) with
Newcombe's (1998) hybrid score interval (method 10), built from the two Wilson (1927)
score intervals; it stays inside [-1, 1] and behaves at 0 errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import fisher_exact, norm

__all__ = ["ProportionTest", "proportion_test", "wilson_interval"]


@dataclass(frozen=True)
class ProportionTest:
    """Returns of :func:`proportion_test`: error counts, ratios (fractions) and the difference candidate - baseline."""

    n_baseline: int
    errors_baseline: int
    n_candidate: int
    errors_candidate: int
    ratio_baseline: float
    ratio_candidate: float
    p_greater: float
    """One-sided Fisher p-value of "the candidate's error ratio is higher"."""
    p_less: float
    difference: float
    """ratio_candidate - ratio_baseline (fraction; 0.01 = +1 percentage point)."""
    ci_low: float
    ci_high: float
    confidence: float


def wilson_interval(errors: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (fractions) of a binomial proportion ``errors / n``."""
    if n <= 0 or not 0 <= errors <= n:
        raise ValueError(f"wilson_interval: need 0 <= errors <= n and n > 0, got errors={errors}, n={n}")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = errors / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact at the ends: rounding must not push the bound past the observed 0 or 1.
    low = 0.0 if errors == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if errors == n else max(p, min(1.0, centre + half))
    return low, high


def proportion_test(
    errors_baseline: int, n_baseline: int, errors_candidate: int, n_candidate: int, confidence: float = 0.95
) -> ProportionTest:
    """Fisher's exact test (both one-sided p-values) and the Newcombe interval of the error-ratio difference."""
    for name, k, n in (("baseline", errors_baseline, n_baseline), ("candidate", errors_candidate, n_candidate)):
        if n <= 0 or not 0 <= k <= n:
            raise ValueError(f"proportion_test: {name} needs 0 <= errors <= requests and requests > 0, got {k}/{n}")
    table = [[errors_candidate, n_candidate - errors_candidate], [errors_baseline, n_baseline - errors_baseline]]
    p_greater = float(fisher_exact(table, alternative="greater").pvalue)
    p_less = float(fisher_exact(table, alternative="less").pvalue)
    p1, p2 = errors_baseline / n_baseline, errors_candidate / n_candidate
    l1, u1 = wilson_interval(errors_baseline, n_baseline, confidence)
    l2, u2 = wilson_interval(errors_candidate, n_candidate, confidence)
    diff = p2 - p1
    low = max(-1.0, diff - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2))
    high = min(1.0, diff + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))
    return ProportionTest(
        n_baseline,
        errors_baseline,
        n_candidate,
        errors_candidate,
        p1,
        p2,
        p_greater,
        p_less,
        diff,
        low,
        high,
        confidence,
    )
