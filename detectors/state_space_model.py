"""The signal model of the state-space detector: transform, deseasonalise, standardise.

``detectors.state_space`` filters what this module prepares: every series in the
transformed unit (log for positive kinds), its seasonal component removed where the
baseline is seasonal, and standardised by a robust noise sigma learned from the history,
with the level walk's variance and the low-frequency excess the slope's error needs
(see ``StateSpace``'s docstring for the method).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis.baselines import Baseline
from analysis.robust import robust_sigma, trailing_sum

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DAY_S = 86_400
LOG_FLOOR = 1e-3
"""Positive kinds: log(x + 1e-3 * history median), so a zero is a large but finite drop; also the sigma
floor in log units (0.1 %)."""
SHORT_LAG_S = 3_600
"""The noise variance is half that of differences this far apart (or of lag 1, when larger): noise correlated
over less than an hour is noise, not predictability the filter could use."""
MAD_VAR_FACTOR = 5.4
"""The relative variance of a squared 1.4826 * MAD scale is about 5.4 / n (the MAD's efficiency is 0.37)."""
WALK_SE = 5.0
"""A wandering level is assumed only when block means vary beyond white noise by this many standard errors:
a walk assumed on white noise explains any slope and blinds the drift test, so it must be rare (~0.3 %)."""
SPREAD_TOLERANCE = 2.0
"""History slope statistics spread up to twice N(0, 1) before they rescale the test: their memory is days
long, so a few days of history estimate that spread roughly (99 % of white-noise histories stay below 2.3)."""
INIT_POINTS = 5
"""The level starts at the median of the first valid points, so one outlier cannot start it off."""
SLOPE_PRIOR_VAR = 1.0
"""Initial slope variance in (noise sigma per step)^2: vague next to any real drift."""


@dataclass(frozen=True)
class Model:
    """Every series after the model of the signal: transformed, deseasonalised, standardised."""

    y: FloatArray
    """[n, t] standardised values (NaN = skipped)."""
    q_level: FloatArray
    """[n] level random-walk variance over the noise variance."""
    sigma: FloatArray
    """[n] noise sigma in the transformed unit (log for positive kinds)."""
    offset: FloatArray
    """[n] value subtracted before standardising (transformed unit)."""
    low_freq_ratio: FloatArray
    """[n] >= 1: block-mean variance beyond the model's (noise correlated over many steps), shrunk."""
    seasonal: BoolArray | None = None
    """[n] the series' baseline is seasonal: its daily (or weekly) shape is known and taken out."""


def seasonal_term(baseline: Baseline, shape: tuple[int, int], delta: FloatArray, positive: bool) -> FloatArray:
    """[n, t] seasonal component to subtract (0 for non-seasonal series, NaN where it is unknown)."""
    n = shape[0]
    center = np.broadcast_to(np.asarray(baseline.center, dtype=np.float64), shape)
    support = np.broadcast_to(np.asarray(baseline.support), shape)
    per_series = baseline.seasonality(n)
    term = np.zeros(shape)
    distinct = {s for s in per_series if s is not None}
    for key in sorted(distinct, key=lambda s: (s.period, s.seasons, s.tolerance)):  # distinct seasonal sets
        rows = np.array([i for i, s in enumerate(per_series) if s == key], dtype=np.intp)
        period, seasons, tolerance = key.period, key.seasons, key.tolerance
        c = center[rows]
        if positive:
            c = np.log(np.where(c + delta[rows] > 0, c + delta[rows], np.nan))
        ok = np.isfinite(c) & (support[rows] >= 1) & (support[rows] <= seasons * (2 * tolerance + 1))
        # Centred per row first, so the running sums round at the scale of the shape, not of the level.
        c = c - np.where(ok, c, 0.0).sum(axis=1, keepdims=True) / np.maximum(ok.sum(axis=1, keepdims=True), 1)
        cnt = trailing_sum(ok.astype(np.float64), period)
        mean = trailing_sum(np.where(ok, c, 0.0), period) / np.maximum(cnt, 1.0)
        # The mean of a partial period is biased by the shape itself: nine tenths of one are required.
        term[rows] = np.where(ok & (cnt >= 0.9 * period), c - mean, np.nan)
    return term


def robust_noise(y: FloatArray, n_hist: int, short_lag: int, max_block: int, positive: bool) -> Model:
    """Standardise ``y`` by its robust noise sigma and estimate the level walk (see the class docstring)."""
    yh = y[:, :n_hist]  # a slice: without gaps, the medians below take numpy's fast path
    d1 = yh[:, 1:] - yh[:, :-1]
    v1 = sigma_and_count(d1)[0] ** 2
    short_lag = max(1, min(short_lag, n_hist // 4))
    vs = sigma_and_count(yh[:, short_lag:] - yh[:, :-short_lag])[0] ** 2 if short_lag > 1 else v1
    block = max(2, min(max_block, n_hist // 30))
    sdb, nd = sigma_and_count(block_mean_diffs(yh, block))
    se = np.sqrt(MAD_VAR_FACTOR / np.maximum(nd, 1.0))
    excess = np.where(np.isfinite(sdb), sdb**2 - np.maximum(v1, vs) / block * (1.0 + WALK_SE * se), 0.0)
    q = np.maximum(excess, 0.0) * 3.0 * block / (2.0 * block**2 + 1.0)
    s2 = np.maximum(np.maximum(vs - short_lag * q, v1 - q) / 2.0, v1 / 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        offset = np.nan_to_num(np.nanmedian(yh, axis=1))
        scale = np.nan_to_num(np.nanmedian(np.abs(yh), axis=1))
        quantum = np.nanmin(np.where(np.abs(d1) > 0, np.abs(d1), np.nan), axis=1, initial=np.inf)
    quantum = np.where(np.isfinite(quantum), quantum, 0.0)
    floor = LOG_FLOOR if positive else np.maximum(LOG_FLOOR * scale, 1e-300)
    sigma = np.where(np.isfinite(s2), np.maximum(np.maximum(np.sqrt(s2), floor), quantum / 2.0), np.nan)
    # Noise correlated beyond a step (not a walk) widens the slope's error: block means over an hour vary
    # more than the model says; the ratio, shrunk by two standard errors, is at least 1.
    short_block = max(2, min(short_lag, n_hist // 30))
    sdl, nl = sigma_and_count(block_mean_diffs(yh, short_block))
    modelled = 2.0 * sigma**2 / short_block + q * (2.0 * short_block**2 + 1.0) / (3.0 * short_block)
    shrink = 1.0 + 2.0 * np.sqrt(MAD_VAR_FACTOR / np.maximum(nl, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        low_freq = np.maximum(np.nan_to_num(sdl**2 / (modelled * shrink)), 1.0)
        q_std = np.nan_to_num(q / sigma**2)
    ys = (y - offset[:, np.newaxis]) / sigma[:, np.newaxis]
    return Model(ys, q_std, sigma, offset, low_freq)


def sigma_and_count(d: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(robust sigma of each row (``analysis.robust``), its count of values), NaNs ignored."""
    return robust_sigma(d)[1], np.isfinite(d).sum(axis=1).astype(np.float64)


def block_mean_diffs(y: FloatArray, block: int) -> FloatArray:
    """[n, b - 1] differences of consecutive means of ``block`` points (NaN where a block is under half full)."""
    n, t = y.shape
    nb = t // block
    if nb < 2:
        return np.full((n, 1), np.nan)
    cut = y[:, : nb * block].reshape(n, nb, block)
    ok = np.isfinite(cut)
    cnt = ok.sum(axis=2)
    mean = np.where(cnt >= block / 2, np.where(ok, cut, 0.0).sum(axis=2) / np.maximum(cnt, 1), np.nan)
    out: FloatArray = mean[:, 1:] - mean[:, :-1]
    return out


def initial_level(y: FloatArray) -> FloatArray:
    """[n] median of each row's first ``INIT_POINTS`` valid values (0 for an empty row)."""
    valid = np.isfinite(y)
    first = np.where(valid & (np.cumsum(valid, axis=1) <= INIT_POINTS), y, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out: FloatArray = np.nan_to_num(np.nanmedian(first, axis=1))
    return out


def history_length(t: int, window_start: int) -> int:
    """Points of history: those before ``window_start``, or all of them when there are none."""
    return window_start if 0 < window_start < t else t
