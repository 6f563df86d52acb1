"""Robust building blocks for one regular series: rolling order statistics, lags, scales.

Rolling windows run in polars (compiled, O(n log w)); missing points are NaN in and out
and are skipped inside windows. Scales survive ties: quantised metrics (a counter that
moves in whole units, a percentage with one decimal) have a MAD of 0 most of the time, so
a scale is the larger of the MAD-based and a trimmed standard deviation.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.special import chdtri

from analysis.robust import MAD_TO_SIGMA

FloatArray = NDArray[np.float64]

_TRIM_TO_SIGMA = 0.7892
"""Standard deviation of the middle 90 % of a standard normal (the 5-95 % trimmed sd)."""

Statistic = Literal["mean", "median"]


def rolling(x: FloatArray, window: int, statistic: Statistic, min_points: int = 1) -> FloatArray:
    """Trailing ``statistic`` over the ``window`` points ending at each point (NaN where fewer than ``min_points``)."""
    series = pl.Series(x, dtype=pl.Float64).fill_nan(None)
    if statistic == "mean":
        out = series.rolling_mean(window_size=window, min_samples=min_points)
    else:
        out = series.rolling_median(window_size=window, min_samples=min_points)
    return out.fill_null(np.nan).to_numpy().astype(np.float64)


def rolling_quantile(x: FloatArray, window: int, q: float, min_points: int) -> FloatArray:
    """Trailing ``q`` quantile (linear interpolation) over the ``window`` points ending at each point."""
    series = pl.Series(x, dtype=pl.Float64).fill_nan(None)
    out = series.rolling_quantile(q, interpolation="linear", window_size=window, min_samples=min_points)
    return out.fill_null(np.nan).to_numpy().astype(np.float64)


def lag(x: FloatArray, k: int) -> FloatArray:
    """``x`` shifted ``k`` points later (the first ``k`` are NaN)."""
    out = np.full_like(x, np.nan)
    if k == 0:
        return x.copy()
    if k < len(x):
        out[k:] = x[:-k]
    return out


def centred(x: FloatArray, window: int, statistic: Statistic) -> FloatArray:
    """``statistic`` over the ``window`` points centred on each point (shorter at the ends)."""
    half = window // 2
    padded = np.concatenate([x, np.full(half, np.nan)])
    return rolling(padded, window, statistic)[half:]


def robust_sd(x: FloatArray) -> float:
    """Scale of ``x`` (NaN skipped) that ignores outliers and survives ties: max(1.4826 MAD, 5-95 % trimmed sd)."""
    v = x[np.isfinite(x)]
    if len(v) < 3:
        return float(np.std(v)) if len(v) else 0.0
    mad = MAD_TO_SIGMA * float(np.median(np.abs(v - np.median(v))))
    low, high = np.quantile(v, [0.05, 0.95])
    trimmed = v[(v >= low) & (v <= high)]
    return max(mad, float(np.std(trimmed)) / _TRIM_TO_SIGMA)


MAD_EFFICIENCY = 0.37
"""Asymptotic efficiency of the MAD for normal data: a MAD of m values is worth about 0.37 m degrees of freedom."""


def variance_upper_bound(variance: float, values: int, level: float = 0.75) -> float:
    """An upper ``level`` confidence bound of a MAD-based variance estimated from ``values`` values
    (chi-square with ``0.37 values`` degrees of freedom): short series must not trust a lucky small variance."""
    df = max(1.0, MAD_EFFICIENCY * values)
    return float(variance * df / chdtri(df, level))  # chdtri(df, q): the chi-square quantile with upper tail q


def noise_variances(x: FloatArray) -> tuple[float, float, int]:
    """(white, long-run) noise variance of ``x`` and the number of values the long-run one rests on,
    robust to level shifts and outliers.

    White: from second differences (their variance is 6 sigma^2 for white noise; a linear
    trend cancels out). Long-run (the variance that governs the error of a segment's mean
    when the noise is autocorrelated, sigma^2 (1 + 2 sum rho)): from second differences of
    consecutive means of blocks of ``sqrt(n)`` points (Carlstein 1986's batch means,
    differenced so that a trend cancels and a level shift or a bend moves two differences
    only). The long-run variance is never below the white one.
    """
    v = x[np.isfinite(x)]
    n = len(v)
    if n < 5:
        var = float(np.var(v)) if n else 0.0
        return var, var, max(n - 1, 1)
    white = robust_sd(np.diff(v, 2)) ** 2 / 6
    block = max(2, round(math.sqrt(n)))
    blocks = n // block
    if blocks >= 7:
        means = v[: blocks * block].reshape(blocks, block).mean(axis=1)
        long_run = block * robust_sd(np.diff(means, 2)) ** 2 / 6
        if long_run > white:
            return white, long_run, blocks - 2
    return white, white, n - 2


def resolution(x: FloatArray) -> float:
    """Smallest positive difference between distinct values: the series' quantisation step (0 if none)."""
    v = np.unique(x[np.isfinite(x)])
    if len(v) < 2:
        return 0.0
    d = np.diff(v)
    return float(d[d > 0].min())


def scale_floor(x: FloatArray) -> float:
    """The smallest scale a statistic of ``x`` may have: half its quantisation step, and a relative epsilon."""
    v = x[np.isfinite(x)]
    magnitude = float(np.max(np.abs(v))) if len(v) else 1.0
    return max(resolution(x) / 2, 1e-9 * max(magnitude, 1e-300), 1e-300) if math.isfinite(magnitude) else 1e-300
