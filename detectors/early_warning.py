"""Early-warning signals of a critical transition: rising variance and lag-1 autocorrelation."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from analysis.baselines import MAD_TO_SIGMA, trailing_baseline
from detectors.base import Detection, Detector, FloatArray, SeriesBatch

_EPS = 1e-12
_CHUNK_SERIES = 128


def _window_sum(a: FloatArray, window: int) -> FloatArray:
    """Sum of ``a`` over the trailing ``window`` points ``(t - window, t]`` of each row (fewer at the start)."""
    c = np.cumsum(a, axis=1)
    out = c.copy()
    out[:, window:] -= c[:, :-window]
    return out


def _rolling_indicators(r: FloatArray, window: int, min_count: int) -> tuple[FloatArray, FloatArray]:
    """(variance, lag-1 autocorrelation) of each row over the trailing ``window`` points, NaNs skipped.

    NaN where fewer than ``min_count`` values (or consecutive pairs) are present.
    """
    valid = np.isfinite(r)
    x = np.where(valid, r, 0.0)
    n = _window_sum(valid.astype(np.float64), window)
    s1 = _window_sum(x, window)
    s2 = _window_sum(x * x, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1.0)
    var[n < min_count] = np.nan
    # Pairs (r[t-1], r[t]) inside the window: the later point in (t - window + 1, t].
    pair = np.zeros_like(valid)
    pair[:, 1:] = valid[:, 1:] & valid[:, :-1]
    a = np.zeros_like(x)
    a[:, 1:] = np.where(pair[:, 1:], x[:, :-1], 0.0)
    b = np.where(pair, x, 0.0)
    w = window - 1
    np_ = _window_sum(pair.astype(np.float64), w)
    sa, sb = _window_sum(a, w), _window_sum(b, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = _window_sum(a * b, w) - sa * sb / np_
        va = np.maximum(_window_sum(a * a, w) - sa * sa / np_, 0.0)
        vb = np.maximum(_window_sum(b * b, w) - sb * sb / np_, 0.0)
        denom = np.sqrt(va * vb)
        ac = np.where(denom > _EPS * np.maximum(va + vb, _EPS), cov / denom, np.nan)
    ac[np_ < min_count] = np.nan
    return var, np.clip(ac, -1.0, 1.0)


def _rolling_kendall_tau(v: FloatArray, m: int) -> FloatArray:
    """Kendall's tau-a of each row of ``v`` against time over the trailing ``m`` columns, NaNs skipped.

    Sliding the window one column adds the pairs of the new point with the m - 1 before
    it and drops the pairs of the point that leaves, so the sum of pair signs S is a
    cumulative sum of (added - dropped), both gathered lag by lag: O(m) vectorised passes
    over the array, exact (integer sums). NaN before the first full window and where
    fewer than half the pairs are present.
    """
    n_rows, g = v.shape
    added = np.zeros((n_rows, g), dtype=np.int32)
    dropped = np.zeros((n_rows, g), dtype=np.int32)
    added_n = np.zeros((n_rows, g), dtype=np.int32)
    dropped_n = np.zeros((n_rows, g), dtype=np.int32)
    for k in range(1, min(m, g)):  # a loop over lags, vectorised over rows and windows
        d = v[:, k:] - v[:, :-k]  # pair (j - k, j) at column j - k
        s = (d > 0).view(np.int8) - (d < 0).view(np.int8)  # NaN compares False: a missing pair adds 0
        ok = ~np.isnan(d)
        added[:, k:] += s
        added_n[:, k:] += ok
        # The window ending at j loses point j - m, whose pair with j - m + k sits at column j - m.
        if g > m:  # a series shorter than one window never drops a point
            dropped[:, m:] += s[:, : g - m]
            dropped_n[:, m:] += ok[:, : g - m]
    total = np.cumsum(added - dropped, axis=1, dtype=np.int64)
    count = np.cumsum(added_n - dropped_n, axis=1, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = total / count
    tau[:, : m - 1] = np.nan
    tau[count < 0.5 * m * (m - 1) / 2] = np.nan
    return tau


def kendall_upper_tail(tau: FloatArray, n: int) -> FloatArray:
    """P(T >= tau) for Kendall's tau T of ``n`` independent points (exact permutation null; NaN -> 1).

    The number of inversions of a random permutation of n follows the Mahonian
    distribution (computed by the usual recursion); tau >= t means at most
    floor((1 - t) * M / 2) inversions, M = n (n - 1) / 2. Taking the floor keeps the
    p-value conservative for a tau measured on more points than ``n``.
    """
    m_pairs = n * (n - 1) // 2
    counts = np.zeros(m_pairs + 1)
    counts[0] = 1.0
    for size in range(2, n + 1):  # inserting element `size` adds 0 .. size - 1 inversions
        counts = np.convolve(counts, np.ones(size))[: m_pairs + 1]
    cdf = np.cumsum(counts) / counts.sum()
    inversions = np.floor((1.0 - np.nan_to_num(tau, nan=-1.0)) * m_pairs / 2.0 + 1e-9)
    idx = np.clip(inversions, 0, m_pairs).astype(np.intp)
    out: FloatArray = np.minimum(cdf[idx], 1.0)
    return out


def _run_start(alert: NDArray[np.bool_]) -> NDArray[np.int64]:
    """For each point, the index of the first point of the alert run it belongs to (0 outside runs)."""
    t = alert.shape[1]
    begins = alert.copy()
    begins[:, 1:] &= ~alert[:, :-1]
    out: NDArray[np.int64] = np.maximum.accumulate(np.where(begins, np.arange(t), 0), axis=1).astype(np.int64)
    return out


class EarlyWarning(Detector):
    """Critical slowing down: rising variance and lag-1 autocorrelation before a transition.

    Method: Scheffer, Bascompte, Brock, Brovkin, Carpenter, Dakos, Held, van Nes,
    Rietkerk & Sugihara (2009), "Early-warning signals for critical transitions", Nature
    461; indicators and trend statistic as in Dakos, Carpenter, Brock, Ellison, Guttal,
    Ives, Kéfi, Livina, Seekell, van Nes & Scheffer (2012), "Methods for detecting early
    warnings of critical transitions in time series illustrated using simulated ecological
    data", PLoS ONE 7(7). A system losing resilience (a queue approaching saturation, a
    pool near exhaustion) recovers ever more slowly from small perturbations, so its
    fluctuations grow larger and more persistent before it tips.

    1. Residuals: the series minus ``batch.baseline.center`` (a seasonal baseline removes
       the daily cycle: that is the seasonality handling) or, without one, minus its
       trailing median over ``window`` points; divided by the series' robust scale
       (1.4826 * MAD, so every score is scale-free) and winsorised at ``clip_sigmas``.
    2. Indicators over a trailing ``window`` of points: the variance and the lag-1
       autocorrelation of the residuals (gaps skipped; at least half the window present).
    3. Trend: Kendall's tau of each indicator against time over the trailing
       ``trend_window`` points, the indicator sampled every ``window // 6`` points (the
       indicators barely move within a sixth of their window; sampling keeps the cost at
       O(points * trend_window / step^2) per series). Evaluated every ``window // 6``
       points from the first; a point carries the decision of the last evaluation at or
       before it (a delay of at most 9 points with the defaults).
    4. Alert (points with data at or after ``batch.window_start``) when both taus are at
       least ``tau_threshold`` and the variance at the point is at least
       ``variance_ratio`` times the variance of the first indicator window of the trend
       window.

    p-value: the rolling indicators overlap, so consecutive values are far from
    independent. Conservatively, a trend window holds ``n_eff = trend_window // window``
    independent pieces of evidence (the integrated autocorrelation of a window statistic
    is about one window; the Hamed & Rao 1998 variance correction of Kendall's statistic
    with the triangular autocorrelation of a rolling window gives n_eff = 9.1 for the
    defaults, more than the 8 used). Each tau is referred to the exact permutation null of
    Kendall's tau for ``n_eff`` points (``kendall_upper_tail``), and the point's p-value
    is the larger of the two (an intersection-union test: both trends must be present,
    so the larger p-value is valid whatever their dependence). With the defaults a tau
    of 0.6 gives p = 0.016 and the smallest possible p-value is 1 / 8! = 2.5e-5: on one
    series this method is modest evidence by construction. ``score`` is 1 - that
    p-value (0 where undefined); ``p_value`` is the strongest alarm's (the smallest
    p-value among alerting points, the earliest on ties).

    Parameters: ``window`` (points, default 60: one hour at 1-minute resolution),
    ``trend_window`` (points, default 480: eight windows; with four, 240 points, stationary
    red noise (AR(1) 0.8 - 0.95, random walks) met the alert rule on 30-40 % of series per
    day, with eight on 1-2 %, while a ramp of the AR coefficient from 0.2 to 0.97 over
    half a day is caught about half the time: critical slowing down is a weak signal over
    short windows), ``tau_threshold`` (default 0.6, a clear monotone rise of both
    indicators), ``variance_ratio`` (default 2.0, unitless), ``clip_sigmas`` (robust
    standard deviations, default 8: spikes cannot fake a variance trend, growth to ~8x
    the usual spread still counts). ``before``/``after`` are the residual standard
    deviations (the signal's unit) at the start of the trend window and at the strongest
    alarm, and ``effect`` their relative change; ``details`` holds ``tau_variance``,
    ``tau_autocorrelation`` and ``variance_ratio`` at the strongest alarm.
    """

    name: ClassVar[str] = "early_warning"
    kinds: ClassVar[tuple[str, ...]] = ("latency_", "gauge", "rate")

    def __init__(
        self,
        *,
        window: int = 60,
        trend_window: int = 480,
        tau_threshold: float = 0.6,
        variance_ratio: float = 2.0,
        clip_sigmas: float = 8.0,
    ) -> None:
        if window < 10 or trend_window < 2 * window:
            raise ValueError(f"need window >= 10 and trend_window >= 2 * window, got {window}, {trend_window}")
        self.window = window
        self.trend_window = trend_window
        self.tau_threshold = tau_threshold
        self.variance_ratio = variance_ratio
        self.clip_sigmas = clip_sigmas

    def _residuals(self, x: FloatArray, center: FloatArray | None) -> tuple[FloatArray, FloatArray]:
        """(residuals in robust standard deviations, the robust scale of each series in its unit)."""
        if center is None:
            center = trailing_baseline(x, window=self.window, min_support=self.window // 4).center
        r = x - center  # NaN where the baseline has none yet: skipped like a gap
        present = np.isfinite(r).any(axis=1)
        scale = np.ones(len(r))
        if present.any():
            med = np.nanmedian(r[present], axis=1, keepdims=True)
            mad = MAD_TO_SIGMA * np.nanmedian(np.abs(r[present] - med), axis=1)
            std = np.nanstd(r[present], axis=1)
            scale[present] = np.where(mad > 0, mad, np.where(std > 0, std, 1.0))
        z = r / scale[:, np.newaxis]
        return np.clip(z, -self.clip_sigmas, self.clip_sigmas), scale

    def _grid_statistics(
        self, x: FloatArray, center: FloatArray | None, grid: NDArray[np.intp], m: int
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
        """(variance now, variance at the trend window's start, tau of each indicator) per evaluation point; data mask.

        Variances are in the signal's unit squared; the mask is per point.
        """
        z, scale = self._residuals(x, center)
        var, ac = _rolling_indicators(z, self.window, self.window // 2)
        early = grid - (self.trend_window - self.window)  # the first indicator window inside the trend window
        var_start = np.full((len(x), len(grid)), np.nan)
        var_start[:, early >= 0] = var[:, early[early >= 0]]
        s2 = (scale * scale)[:, np.newaxis]
        tau_var = _rolling_kendall_tau(var[:, grid], m)
        tau_ac = _rolling_kendall_tau(ac[:, grid], m)
        return var[:, grid] * s2, var_start * s2, tau_var, tau_ac, np.isfinite(z)

    def detect(self, batch: SeriesBatch) -> Detection:
        """Per point: 1 - p of a joint rise of variance and autocorrelation, and its alert (see class doc)."""
        n, t = batch.shape
        if n == 0 or t == 0:
            return Detection.quiet((n, t))
        step = max(1, self.window // 6)
        m = max(3, self.trend_window // step)
        grid = np.arange(0, t, step)
        var_now, var_start, tau_var, tau_ac = (np.empty((n, len(grid))) for _ in range(4))
        present = np.empty((n, t), dtype=bool)
        for c0 in range(0, n, _CHUNK_SERIES):  # rows are independent; chunks bound the temporaries
            c1 = min(n, c0 + _CHUNK_SERIES)
            values, samples = batch.values[c0:c1], batch.samples[c0:c1]
            x = np.where((samples > 0) & np.isfinite(values), values, np.nan)
            center = None if batch.baseline is None else np.asarray(batch.baseline.center[c0:c1], dtype=np.float64)
            stats = self._grid_statistics(x, center, grid, m)
            var_now[c0:c1], var_start[c0:c1], tau_var[c0:c1], tau_ac[c0:c1], present[c0:c1] = stats
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = var_now / var_start

        n_eff = max(2, self.trend_window // self.window)
        p_grid = np.maximum(kendall_upper_tail(tau_var, n_eff), kendall_upper_tail(tau_ac, n_eff))
        cond = (
            (np.nan_to_num(tau_var, nan=-1.0) >= self.tau_threshold)
            & (np.nan_to_num(tau_ac, nan=-1.0) >= self.tau_threshold)
            & (np.nan_to_num(ratio, nan=0.0) >= self.variance_ratio)
        )

        g_of_t = np.arange(t) // step
        alert = cond[:, g_of_t] & present  # no alarm where there is no data
        alert[:, : batch.window_start] = False
        p_point = p_grid[:, g_of_t]
        score = np.clip(1.0 - p_point, 0.0, 1.0)

        p_value = np.ones(n)
        change = np.full(n, -1, dtype=np.int64)
        before, after, effect = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        details = {k: np.full(n, np.nan) for k in ("tau_variance", "tau_autocorrelation", "variance_ratio")}
        alerting = np.flatnonzero(alert.any(axis=1))
        if alerting.size:
            starts = _run_start(alert)
            masked = np.where(alert, p_point, np.inf)
            strongest = np.argmin(masked, axis=1)  # earliest among ties
            for i in alerting:  # a loop over alerting series only
                s = int(strongest[i])
                g = s // step
                p_value[i] = p_point[i, s]
                change[i] = starts[i, s]
                sd_now = float(np.sqrt(var_now[i, g]))
                sd_then = float(np.sqrt(var_start[i, g]))
                before[i], after[i] = sd_then, sd_now
                effect[i] = sd_now / sd_then - 1.0 if sd_then > 0 else np.nan
                details["tau_variance"][i] = tau_var[i, g]
                details["tau_autocorrelation"][i] = tau_ac[i, g]
                details["variance_ratio"][i] = ratio[i, g]
        return Detection(score, alert, p_value, change, effect, before, after, details)
