"""The model of a series: how surprising is the newest stretch, at several time scales.

For each scale ``k`` (1, 4, 16, 64 points: a spike, a burst, a shift, a slow excursion) the
statistic is the distance between the mean of the last ``k`` points and the median of the
``max(8, k)`` points just before them: a two-window comparison that sees a level change at
its onset and forgets it once both windows are in the new regime (the detector re-learns
by construction; nothing needs resetting).

Each statistic is turned into *decades of evidence* ``D = -log10 p`` by comparing it with
the statistic's own recent extremes: its 99th percentile over the ``WINDOW`` previous points
is mapped to the two-sided normal 99 % point (2.576) and the tail beyond is normal. So the
scale adapts to every series (and keeps adapting as its noise changes), a statistic twice
its usual 1 % extreme is strong evidence whatever the unit, and series with frequent big
moves (spiky metrics) need bigger moves. Points flagged as events can be left out of that
reference (``mask``) so that an incident does not widen the scale that judges the next one.
Offline, a point with fewer than ``MIN_HISTORY`` earlier values borrows the quantile of the
whole series; causally it has no evidence yet.

``D`` over several scales (and several models of the series, e.g. with and without the
seasonal profile) is the maximum minus log10 of their number (Bonferroni), floored at 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr

from detectors.series.robust import FloatArray, lag, rolling, rolling_quantile

SCALES = (1, 4, 16, 64)
WINDOW = 1000
QUANTILE = 0.99
Z_AT_QUANTILE = 2.5758293035489004
"""Two-sided standard normal quantile of QUANTILE."""
MIN_HISTORY = 20
MIN_REFERENCE = 8
LN10 = math.log(10.0)

BoolArray = np.ndarray


def scales_for(n: int) -> tuple[int, ...]:
    """The scales a series of ``n`` points can support (a window under a quarter of the series)."""
    return tuple(k for k in SCALES if k == 1 or k < n // 4)


def shift(e: FloatArray, k: int) -> FloatArray:
    """|mean of the last k points - median of the max(8, k) points before them| (NaN without data)."""
    recent = e if k == 1 else rolling(e, k, "mean", max(1, k // 2))
    reach = max(MIN_REFERENCE, k)
    before = lag(rolling(e, reach, "median", max(2, reach // 2)), k)
    return np.abs(recent - before)


def decades(stat: FloatArray, mask: BoolArray | None, causal: bool, floor: float) -> FloatArray:
    """-log10 of the two-sided tail probability of each value against its trailing 99th percentile."""
    reference = stat if mask is None else np.where(mask, np.nan, stat)
    scale = lag(rolling_quantile(reference, WINDOW, QUANTILE, MIN_HISTORY), 1)
    if not causal:
        present = reference[np.isfinite(reference)]
        overall = float(np.quantile(present, QUANTILE)) if len(present) else np.nan
        scale = np.where(np.isfinite(scale), scale, overall)
    z = stat / np.maximum(scale, floor) * Z_AT_QUANTILE
    log_p = (math.log(2.0) + log_ndtr(-np.where(np.isfinite(z), z, 0.0))) / LN10
    return np.where(np.isfinite(z), -log_p, 0.0)


def by_scale(models: list[FloatArray], mask: BoolArray | None, causal: bool, floor: float) -> dict[int, FloatArray]:
    """Per scale, the decades of evidence of the strongest model at every point (not yet corrected)."""
    n = len(models[0])
    out: dict[int, FloatArray] = {}
    for k in scales_for(n):
        out[k] = np.max([decades(shift(e, k), mask, causal, floor) for e in models], axis=0)
    return out


def combine(scales: dict[int, FloatArray], models: int, scales_from: int = 1) -> FloatArray:
    """The strongest scale from ``scales_from`` points up, Bonferroni-corrected over the scales and models used
    (the longest scale alone when none is that long)."""
    used = [k for k in scales if k >= scales_from] or [max(scales)]
    best = np.max([scales[k] for k in used], axis=0)
    return np.asarray(np.maximum(best - math.log10(models * len(used)), 0.0), dtype=np.float64)
