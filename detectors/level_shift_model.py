"""The model half of the level-shift detector: robust residuals against a reference that cannot
absorb the change (a given baseline, or the series' own remedian of block levels before the
window), rescaled by their long-run variance so that under no change they behave like
independent N(0, 1) draws. The decision rule (a two-sided CUSUM) is detectors.level_shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.baselines import SPREAD_ABS_FLOOR, SPREAD_REL_FLOOR
from analysis.robust import MAD_TO_SIGMA, nanmedian_last, robust_sigma
from detectors.base import BoolArray, FloatArray, IntArray, SeriesBatch

SPREAD_SMOOTHING = (31, 241)
"""Points in the two centred moving means of a given baseline's spread (the larger is used)."""
_REFERENCE_BLOCKS = 16
"""The reference span is cut into about this many blocks (remedian: median of block levels)."""
_MIN_BLOCK = 10
"""Smallest reference block, points (a block level of fewer points is too noisy)."""
_MIN_LRV_BLOCKS = 16
"""A batch-means variance needs this many batches' worth of present points (else ignored)."""
_MAD_BIAS = np.array([0.838, 0.672, 0.734, 0.822, 0.839, 0.878, 0.886, 0.908])
"""E[1.4826 * MAD_m] / sigma for m = 2 .. 9 normal values (simulated, 4e5 samples each; the
MAD of an even count averages the two middle deviations, as ``analysis.baselines`` does)."""


_WINSOR_REACH = 2.5
"""Winsorisation of the batch sums, in robust sigmas."""
_WINSOR_CONSISTENCY = 0.9775
"""E[min(Z^2, 2.5^2)] for Z ~ N(0, 1)."""


@dataclass(frozen=True, eq=False)
class Residuals:
    """What ``residuals`` makes of a batch (arrays ``[n_series, n_times]`` unless stated)."""

    y: FloatArray
    """Standardised residuals for the CUSUM: z / sqrt(lrv); NaN where not scanned (holds the CUSUM)."""
    z: FloatArray
    """Robust z-scores (winsorised), NaN where the point is a gap or not scanned."""
    expected: FloatArray
    """The reference level of each point (series unit), NaN where undefined."""
    scanned: BoolArray
    """Points the CUSUM looks at: present, in the window under test, with a reference."""
    lrv: FloatArray
    """Per series: long-run variance factor of z under the reference (>= 1, unitless)."""
    own: BoolArray
    """Per series: whether the reference is the detector's own (True) or ``batch.baseline`` (False)."""
    guard: FloatArray
    """Added to k per point (units of y): two standard errors of the reference level, which
    is estimated from ``N`` points and so is off by about ``1.25 / sqrt(N)`` in units of y
    whatever the autocorrelation (the same ``lrv`` scales both). That error does not
    average out: it is a drift the CUSUM would sum, so it widens the dead band instead."""


def block_points(span: int) -> int:
    """Points per block of the detector's own reference over ``span`` points."""
    return max(_MIN_BLOCK, math.ceil(span / _REFERENCE_BLOCKS))


def uses_given_baseline(batch: SeriesBatch) -> BoolArray:
    """Per series: whether ``batch.baseline`` is used as given (not a trailing one, which would absorb a change)."""
    n = batch.shape[0]
    base = batch.baseline
    if base is None:
        return np.zeros(n, dtype=bool)
    methods = base.series_methods if len(base.series_methods) == n else (base.method,) * n
    # Unknown methods ("mixed" without per-series methods) are used as given: freezing a
    # seasonal baseline would turn its pattern into false alarms.
    return np.array([not m.startswith("trailing") for m in methods], dtype=bool)


def given_reference(batch: SeriesBatch, rows: IntArray) -> tuple[FloatArray, FloatArray]:
    """(center, spread) of ``rows`` from ``batch.baseline``, the spread made the scale of ``x - center``.

    A baseline's spread is 1.4826 * MAD of ``m = support`` reference values: for small m it
    is biased low (divided by ``E[1.4826 MAD_m] / sigma`` for normal data: a table for m <=
    9, ``(m - 0.8) / m`` beyond) and scattered: the larger of its centred moving means over
    31 and 241 points keeps the daily shape of the noise without the point-to-point scatter
    (a locally low estimate is the dangerous one), and the center, a
    median of m values, has its own error, variance ``pi / (2 m)`` sigma^2 (an upper bound
    for m >= 3), so the residual's scale is ``sigma * sqrt(1 + pi / (2 m))``. Without this a
    seasonal baseline with 3 seasons gives residuals twice as wide as one with 7.
    """
    assert batch.baseline is not None
    n, t = batch.shape
    center = np.asarray(batch.baseline.center, dtype=np.float64).reshape(n, t)[rows]
    spread = np.asarray(batch.baseline.spread, dtype=np.float64).reshape(n, t)[rows]
    m = np.asarray(batch.baseline.support, dtype=np.float64).reshape(n, t)[rows]
    m = np.where(m >= 2, m, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        unbiased = spread / _mad_bias(m)
        local = np.maximum(*_moving_mean(unbiased, SPREAD_SMOOTHING))
        scale = local * np.sqrt(1.0 + np.pi / (2.0 * m))
    scale = np.maximum(scale, np.maximum(SPREAD_REL_FLOOR * np.abs(center), SPREAD_ABS_FLOOR))
    return center, np.where(np.isfinite(m), scale, np.nan)


def own_reference(
    x: FloatArray, ws: int, span: int, min_reference: int, clip_z: float
) -> tuple[FloatArray, FloatArray, BoolArray, BoolArray, FloatArray]:
    """(center, spread, scanned, calibration, support) from the series' own history (see the class docstring).

    Blocks of ``B = max(10, ceil(span / 16))`` points aligned so that ``ws`` starts a block;
    the reference of block j is the remedian of the (up to) ``ceil(span / B)`` blocks
    before it, or of those before the window's first block (frozen) when they hold at
    least ``min_reference`` points. Calibration points are the frozen reference span, or,
    for a rolling reference, the scanned points themselves.
    """
    n, t = x.shape
    block = block_points(span)
    width = max(1, math.ceil(span / block))
    pad = (-ws) % block
    n_blocks = -(-(pad + t) // block)
    padded = np.full((n, n_blocks * block), np.nan)
    padded[:, pad : pad + t] = x
    level, scale, count = _block_stats(padded.reshape(n, n_blocks, block), clip_z)
    count = np.where(count >= max(1, block // 2), count, 0)
    level[count == 0], scale[count == 0] = np.nan, np.nan

    def trailing(a: FloatArray, fill: float) -> FloatArray:
        """Windows ``[n, n_blocks, width]`` of the ``width`` blocks strictly before each block."""
        lead = np.full((n, width), fill)
        view = np.lib.stride_tricks.sliding_window_view(np.concatenate([lead, a], axis=1), width, axis=1)
        out: FloatArray = view[:, :n_blocks]
        return out

    levels = trailing(level, np.nan)
    support = trailing(count.astype(np.float64), 0.0).sum(axis=2)
    ref_center = nanmedian_last(levels)
    between = MAD_TO_SIGMA * nanmedian_last(np.abs(levels - ref_center[..., np.newaxis]))
    within = nanmedian_last(trailing(scale, np.nan))
    ref_spread = np.sqrt(np.nan_to_num(within) ** 2 + np.nan_to_num(between) ** 2)
    ref_spread = np.maximum(ref_spread, np.maximum(SPREAD_REL_FLOOR * np.abs(ref_center), SPREAD_ABS_FLOOR))
    idx = np.arange(t)
    ws_block = (ws + pad) // block  # ws < t, so ws_block < n_blocks
    frozen = (ws > 0) & (support[:, ws_block] >= min_reference)
    # Frozen series score the window and their own reference span against the window's reference.
    span_start = (ws_block - width) * block - pad
    history = (idx < ws) & (idx >= span_start) & np.isfinite(x)
    use_frozen = frozen[:, np.newaxis] & ((idx >= ws) | history)
    ref_idx = np.where(use_frozen, ws_block, ((idx + pad) // block)[np.newaxis, :])
    rows = np.arange(n)[:, np.newaxis]
    center = ref_center[rows, ref_idx]
    spread = ref_spread[rows, ref_idx]
    ok = np.isfinite(x) & (support[rows, ref_idx] >= min_reference) & np.isfinite(center)
    scanned = ok & (idx >= ws)
    calib = np.where(frozen[:, np.newaxis], history & ok, scanned)
    return center, spread, scanned, calib, support[rows, ref_idx]


def _mad_bias(m: FloatArray) -> FloatArray:
    """``E[1.4826 * MAD] / sigma`` for ``m`` normal values (m >= 2; NaN stays NaN)."""
    small = np.clip(np.nan_to_num(m), 2, len(_MAD_BIAS) + 1).astype(np.intp) - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(m <= len(_MAD_BIAS) + 1, _MAD_BIAS[small], (m - 0.8) / m)
    return out


def _block_stats(blocks: FloatArray, clip_z: float) -> tuple[FloatArray, FloatArray, IntArray]:
    """(level, scale, count) of each block ``[..., points]``, NaNs ignored.

    ``level`` is a winsorised mean (values clipped at median +- ``clip_z`` scales): the CUSUM
    sums residuals, so the reference must be the mean, which differs from the median for
    skewed data (latencies, counts); ``scale`` is 1.4826 * MAD (small-sample corrected, see
    ``given_reference``), or 1.2533 * the mean absolute deviation (also consistent for
    normal data) where the MAD is 0, as for sparse counts that are mostly one value.
    """
    count = np.isfinite(blocks).sum(axis=-1)
    med, scale = robust_sigma(blocks, _mad_bias(np.maximum(count, 2).astype(np.float64)))
    with np.errstate(invalid="ignore", divide="ignore"):
        reach = (clip_z * scale)[..., np.newaxis]
        clipped = np.clip(blocks, med[..., np.newaxis] - reach, med[..., np.newaxis] + reach)
        level = np.nansum(clipped, axis=-1) / count
    return level, scale, count


def _moving_mean(a: FloatArray, widths: tuple[int, ...]) -> list[FloatArray]:
    """Centred moving means of each row over each of ``widths`` points (odd), NaNs ignored; NaN where none."""
    n, t = a.shape
    ok = np.isfinite(a)
    reach = max(widths) // 2
    out: list[FloatArray] = []
    sums = []
    for series in (np.where(ok, a, 0.0), ok.astype(np.float64)):
        cum = np.zeros((n, t + 1 + 2 * reach))
        np.cumsum(series, axis=1, out=cum[:, reach + 1 : reach + 1 + t])
        cum[:, reach + 1 + t :] = cum[:, reach + t : reach + 1 + t]  # hold the total after the end
        sums.append(cum)
    total, count = sums
    for width in widths:
        half = width // 2
        hi = slice(reach + half + 1, reach + half + 1 + t)
        lo = slice(reach - half, reach - half + t)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((total[:, hi] - total[:, lo]) / (count[:, hi] - count[:, lo]))
    return out


def blockwise_mean(z: FloatArray, block: int) -> FloatArray:
    """Per row: the median over blocks of ``block`` points of the mean of ``z`` (NaN = not used).

    The mean within blocks is what the CUSUM accumulates; the median across blocks keeps a
    change that fills a few blocks from moving it. 0 for a row without a usable block.
    """
    n, t = z.shape
    n_blocks = t // block
    if n_blocks == 0:
        return np.zeros(n)
    blocks = z[:, : n_blocks * block].reshape(n, n_blocks, block)
    count = np.isfinite(blocks).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(count >= max(1, block // 2), np.nansum(blocks, axis=2) / count, np.nan)
    return np.nan_to_num(nanmedian_last(means))


def long_run_variance(z: FloatArray, batch_points: int, max_rho: float) -> FloatArray:
    """Per row: the long-run variance factor of ``z`` (NaN = not used), at least 1 (see the class docstring)."""
    n, t = z.shape
    estimates = [np.ones(n)]
    ok = np.isfinite(z)
    zeros = np.zeros((n, 1))
    total = np.concatenate([zeros, np.cumsum(np.where(ok, z, 0.0), axis=1)], axis=1)
    count = np.concatenate([zeros, np.cumsum(ok, axis=1, dtype=np.float64)], axis=1)
    for b in (batch_points, 3 * batch_points):
        if t < b:
            continue
        # Overlapping batch means (Meketon & Schmeiser 1984): every window of b points, not
        # only disjoint ones, for about 2/3 of the variance of the estimate.
        got = count[:, b:] - count[:, :-b]
        with np.errstate(invalid="ignore", divide="ignore"):
            sums = np.where(got >= max(1, b // 2), (total[:, b:] - total[:, :-b]) / np.sqrt(got), np.nan)
        enough = ok.sum(axis=1) >= _MIN_LRV_BLOCKS * b
        estimates.append(np.where(enough, _winsorised_variance(sums, stride=b), np.nan))
    if t > 2:
        # Semi-variogram at lags 1 and 2: v_j = mean((z_t - z_{t-j})^2) / 2 = var * (1 - rho^j) for
        # AR(1), so rho = v2 / v1 - 1 and var = v1 / (1 - rho). Differences ignore the level, so a
        # level shift in the reference span moves them by one term; squares keep the heavy tails.
        d1 = np.diff(z, axis=1)
        d2 = z[:, 2:] - z[:, :-2]
        n1 = np.isfinite(d1).sum(axis=1)
        n2 = np.isfinite(d2).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            v1 = np.nansum(d1 * d1, axis=1) / (2.0 * n1)
            v2 = np.nansum(d2 * d2, axis=1) / (2.0 * n2)
            rho = np.clip(v2 / v1 - 1.0, 0.0, max_rho)
            ar = v1 * (1.0 + rho) / (1.0 - rho) ** 2
        enough = np.minimum(n1, n2) >= _MIN_LRV_BLOCKS * batch_points
        estimates.append(np.where(enough, ar, np.nan))
    out: FloatArray = np.nanmax(np.stack(estimates), axis=0)
    return out


def _winsorised_variance(a: FloatArray, stride: int = 1) -> FloatArray:
    """Per row: the variance of ``a`` (NaN = absent), winsorised at median +- 2.5 * 1.4826 * MAD.

    Consistent for normal data (divided by E[min(Z^2, 2.5^2)] = 0.9775) and nearly as
    efficient as the plain variance, where the MAD alone has 37 % efficiency; a few
    outlying rows (the blocks of a level shift) move it by a bounded amount. The median and
    MAD only place the clip, so they are taken over every ``stride``-th value (the
    overlapping batch sums are nearly equal to their neighbours anyway).
    """
    sample = a[:, ::stride]
    centre = nanmedian_last(sample)
    reach = _WINSOR_REACH * MAD_TO_SIGMA * nanmedian_last(np.abs(sample - centre[:, np.newaxis]))
    dev = a - centre[:, np.newaxis]
    clipped = np.clip(dev, -reach[:, np.newaxis], reach[:, np.newaxis])
    count = np.isfinite(a).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.nansum(clipped * clipped, axis=1) / (_WINSOR_CONSISTENCY * count)
    return out
