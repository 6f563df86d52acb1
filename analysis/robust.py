"""Robust statistics every baseline and detector shares: NaN-median, robust sigma, trailing sums.

Vectorised over rows (the last axis is time or the sample); NaN and inf are "no value" and
never raise warnings. One implementation each, so every detector measures spread alike.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

MAD_TO_SIGMA = 1.4826
"""1 / Phi^-1(3/4): makes the MAD a consistent estimator of sigma for normal data."""
MEAN_AD_TO_SIGMA = math.sqrt(math.pi / 2.0)
"""sqrt(pi / 2) = 1.2533: makes the mean absolute deviation consistent for normal data."""


def as_rows(values: ArrayLike) -> tuple[NDArray[np.float64], bool]:
    """(values as a float64 ``[n_series, n_times]`` array, whether the input was 1-D)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        return arr[np.newaxis, :], True
    if arr.ndim == 2:
        return arr, False
    raise ValueError(f"values must be 1-D [n_times] or 2-D [n_series, n_times], got shape {arr.shape}")


def nanmedian_last(a: FloatArray, min_count: int = 1) -> FloatArray:
    """Median over the last axis of the finite values; NaN where fewer than ``min_count`` (sort-based, no warnings)."""
    if a.shape[-1] == 0:
        return np.full(a.shape[:-1], np.nan)
    finite = np.isfinite(a)
    count = finite.sum(axis=-1)
    ordered = np.where(finite, a, np.nan)  # a copy (inf -> NaN), sorted in place; NaN sorts last
    ordered.sort(axis=-1)
    n = np.maximum(count, 1)
    lo = np.take_along_axis(ordered, ((n - 1) // 2)[..., np.newaxis], axis=-1)[..., 0]
    hi = np.take_along_axis(ordered, (n // 2)[..., np.newaxis], axis=-1)[..., 0]
    out: FloatArray = np.where(count >= max(min_count, 1), 0.5 * (lo + hi), np.nan)
    return out


def robust_sigma(x: FloatArray, mad_bias: FloatArray | float = 1.0) -> tuple[FloatArray, FloatArray]:
    """(median, sigma) over the last axis, finite values only.

    sigma is 1.4826 * MAD / ``mad_bias`` (a small-sample correction, 1 = none), or, where the
    MAD is 0 (ties: a mostly constant or mostly zero series), sqrt(pi/2) * the mean absolute
    deviation, so such a series never gets a zero scale that would make every move infinitely
    significant. Both are NaN for a row without values.
    """
    center = nanmedian_last(x)
    dev = np.abs(x - center[..., np.newaxis])
    mad = MAD_TO_SIGMA * nanmedian_last(dev) / mad_bias
    finite = np.isfinite(dev)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ad = MEAN_AD_TO_SIGMA * np.where(finite, dev, 0.0).sum(axis=-1) / finite.sum(axis=-1)
    sigma: FloatArray = np.where(mad > 0, mad, mean_ad)
    return center, sigma


def trailing_sum(x: FloatArray, window: int) -> FloatArray:
    """Sum of each row over the ``window`` points ending at each point (fewer terms at the start), along axis 1."""
    out: FloatArray = np.cumsum(x, axis=1)
    if window < x.shape[1]:
        out[:, window:] -= out[:, :-window].copy()
    return out
