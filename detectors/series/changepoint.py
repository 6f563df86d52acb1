"""Regime changes of a whole series, offline: the segmentation a reader would draw.

1. Gaps are interpolated for the search; a seasonal profile, when one is detected, is
   removed (a monthly cycle is not twelve changes a year).
2. Isolated outliers are clipped to 4 robust sigmas around a 5-point moving median (a spike
   is an anomaly, not two changes; the robust-segmentation idea of Fearnhead & Rigaill 2019,
   "Changepoint detection in the presence of outliers", JASA 114, done by winsorising).
3. PELT (``segment.search``) with least-squares lines per segment and the BIC penalty for
   three parameters per new segment (its start, level and slope): ``3 sigma^2 ln n``, where
   sigma^2 is the *long-run* noise variance (``robust.noise_variances``), so autocorrelated
   wander is not mistaken for changes (the penalty of a mean-shift test grows with the
   long-run variance: Lavielle & Moulines 2000), taken at its upper 75 % confidence bound
   so that a short series does not trust a lucky small estimate.
4. Series longer than ``MAX_SEARCH_POINTS`` are searched on block means, then each change
   is placed exactly within its block.

Each change gets its evidence in decades: the drop in cost it buys over its two neighbouring
segments, as a chi-square with two degrees of freedom in units of the long-run variance,
Bonferroni-corrected for the positions it could have taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detectors.series import seasonality
from detectors.series.grid import Grid
from detectors.series.robust import FloatArray, centred, noise_variances, robust_sd, variance_upper_bound
from detectors.series.segment import LineCost, search, split_gain

BIC_PARAMETERS = 3
MIN_SEGMENT = 3
MAX_SEARCH_POINTS = 5_000
OUTLIER_SIGMAS = 4.0
OUTLIER_WINDOW = 5
LN10 = math.log(10.0)


@dataclass(frozen=True, eq=False)
class Changes:
    indices: list[int]
    """Grid index of the first point of each new regime."""
    decades: list[float]
    """Evidence of each change, decades."""
    period: int


def _filled(x: FloatArray) -> FloatArray:
    present = np.isfinite(x)
    if present.all():
        return x.copy()
    idx = np.arange(len(x), dtype=np.float64)
    return np.interp(idx, idx[present], x[present])


def winsorise(y: FloatArray) -> FloatArray:
    """``y`` with isolated outliers clipped to OUTLIER_SIGMAS robust sigmas of a short moving median."""
    if len(y) < 2 * OUTLIER_WINDOW:
        return y
    median = centred(y, OUTLIER_WINDOW, "median")
    residual = y - median
    sigma = robust_sd(residual)
    if sigma <= 0:
        return y
    return np.asarray(median + np.clip(residual, -OUTLIER_SIGMAS * sigma, OUTLIER_SIGMAS * sigma), dtype=np.float64)


def _refine(y: FloatArray, changes: list[int], block: int) -> list[int]:
    """Each change moved to the best split within its block, between its neighbours."""
    cost = LineCost.of(y)
    bounds = [0, *changes, len(y)]
    out = []
    for i, c in enumerate(changes, start=1):
        low = max(bounds[i - 1] + MIN_SEGMENT, c - block)
        high = min(bounds[i + 1] - MIN_SEGMENT, c + block)
        options = range(low, high + 1) if low <= high else [c]
        best = max(options, key=lambda s: split_gain(cost, bounds[i - 1], s, bounds[i + 1]))
        out.append(best)
        bounds[i] = best
    return out


def changepoints(grid: Grid, period: int | None = None) -> Changes:
    """The segmentation of the series on ``grid`` and the evidence of each change (``period``: the
    seasonal period when already detected; None: detect it here)."""
    x = grid.values
    if np.isfinite(x).sum() < 2 * MIN_SEGMENT:
        return Changes([], [], 0)
    y = _filled(x)
    period = seasonality.detect(x, grid).period if period is None else period
    if period:
        y = y - seasonality.profile(x, period)
    y = winsorise(y)
    _, long_run, support = noise_variances(y)
    long_run = variance_upper_bound(long_run, support)
    n = len(y)
    if long_run <= 0:
        return Changes([], [], period)
    if n > MAX_SEARCH_POINTS:
        block = -(-n // MAX_SEARCH_POINTS)
        m = n // block
        means = y[: m * block].reshape(m, block).mean(axis=1)
        _, block_var, block_support = noise_variances(means)
        block_var = variance_upper_bound(block_var, block_support)
        coarse = search(means, BIC_PARAMETERS * block_var * math.log(m), MIN_SEGMENT)
        changes = _refine(y, [c * block for c in coarse], block)
    else:
        changes = search(y, BIC_PARAMETERS * long_run * math.log(n), MIN_SEGMENT)
    cost = LineCost.of(y)
    bounds = [0, *changes, n]
    decades = []
    for i, c in enumerate(changes, start=1):
        chi2 = split_gain(cost, bounds[i - 1], c, bounds[i + 1]) / long_run
        positions = bounds[i + 1] - bounds[i - 1]
        decades.append(max((chi2 / 2 - math.log(positions)) / LN10, 0.0))
    return Changes(changes, decades, period)
