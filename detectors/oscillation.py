"""Oscillation: a dominant periodic component (Welch periodogram, Fisher's g-test)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.signal import welch

from analysis.baselines import DAY_S, MAD_TO_SIGMA, Baseline, auto_baseline
from detectors.base import Detection, Detector, FloatArray, SeriesBatch

_CHUNK_SERIES = 128


@dataclass(frozen=True, eq=False)
class _Peak:
    """Per series: the spectral test's outcome (the model half; the decision rule reads it)."""

    p_value: FloatArray
    """Fisher's p-value of the largest whitened ordinate."""
    g: FloatArray
    freq: FloatArray
    """Frequency of the peak bin, cycles per point."""
    period_pts: FloatArray
    """Refined period, points."""
    background: FloatArray
    """Background spectral density at the peak (standardised units^2 per cycle per point)."""
    variance: FloatArray
    """Variance of the peak above the background (standardised units^2)."""
    fraction: FloatArray
    """``variance`` over the residual variance."""
    oscillating: NDArray[np.bool_]


def fisher_g_pvalue(g: FloatArray, q: NDArray[np.int64]) -> FloatArray:
    """Upper bound of Fisher's (1929) p-value for the largest of ``q`` periodogram ordinates holding ``g`` of the sum.

    The exact null probability is sum_j (-1)^(j-1) C(q, j) (1 - j g)^(q-1) over j <= 1/g;
    its first term q (1 - g)^(q-1) is an upper bound (Bonferroni), equal to it to many
    digits wherever the p-value is small, and free of the alternating sum's cancellation.
    """
    qf = q.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.log(qf) + (qf - 1.0) * np.log1p(-np.clip(g, 0.0, 1.0 - 1e-15))
    out: FloatArray = np.where((q >= 2) & np.isfinite(g), np.minimum(1.0, np.exp(log_p)), 1.0)
    return out


def _seasonal_rows(baseline: Baseline, n: int) -> NDArray[np.bool_]:
    """Which series have a seasonal baseline (its residual may keep the seasonal cycle's harmonics)."""
    return np.array([s is not None for s in baseline.seasonality(n)], dtype=bool)


def _background(power: FloatArray, min_band: int) -> FloatArray:
    """Smooth spectral background of each row of ``power`` (column = frequency bin, 0 = DC, never used).

    Band medians interpolated linearly in log-log: bands of bins 1 .. K grow geometrically
    (x1.25) with at least ``min_band`` bins, so power-law (red) spectra are followed at
    every scale while one peak (3-4 bins under a Hann window) cannot move a band's median
    much (Mann & Lees 1996, "Robust estimation of background noise and signal detection
    in climatic time series", Climatic Change 33: median smoothing).
    Beyond the first and last band centres the line continues with the end slopes.
    """
    k_all = power.shape[1]
    edges = [1]
    while edges[-1] < k_all:
        edges.append(min(k_all, max(edges[-1] + min_band, int(np.ceil(edges[-1] * 1.25)))))
    if len(edges) > 2 and edges[-1] - edges[-2] < min_band // 2:
        edges.pop(-2)  # a runt last band would give a noisy end slope
    log_k = np.log(np.arange(k_all, dtype=np.float64).clip(min=1.0))
    centres = np.array([log_k[a:b].mean() for a, b in pairwise(edges)])
    medians = np.stack([np.median(power[:, a:b], axis=1) for a, b in pairwise(edges)], axis=1)
    level = np.log(np.maximum(medians, 1e-300))
    if len(centres) == 1:
        return np.repeat(np.exp(level), k_all, axis=1)
    pos = np.clip(np.searchsorted(centres, log_k) - 1, 0, len(centres) - 2)  # segment per bin, ends extended
    c0, c1 = centres[pos], centres[pos + 1]
    w = (log_k - c0) / (c1 - c0)
    out: FloatArray = np.exp(level[:, pos] * (1.0 - w) + level[:, pos + 1] * w)
    return out


class Oscillation(Detector):
    """A dominant periodic component: Welch periodogram, whitened, tested with Fisher's g.

    Method: the spectrum is estimated with Welch's method (Welch 1967, "The use of fast
    Fourier transform for the estimation of power spectra", IEEE Trans. Audio
    Electroacoustics 15(2)) and its largest ordinate is tested with Fisher's g statistic
    (Fisher 1929, "Tests of significance in harmonic analysis", Proc. R. Soc. A 125):
    g = max_k r_k / sum_k r_k, p = P(g >= observed) for q independent exponential
    ordinates (the first, upper-bound term of Fisher's formula; ``fisher_g_pvalue``).
    Fisher's null is white noise and telemetry rarely is, so the ordinates are first
    divided by a robust smooth background (band medians interpolated in log-log, after
    Mann & Lees 1996): a red (autocorrelated) spectrum is flat after that, and only a
    peak above its neighbourhood counts. Welch averaging (3 half-overlapping segments)
    makes the ordinates far less dispersed than Fisher's exponential ones, so the p-value
    is conservative under the whitened null (on white, red, heavy-tailed and Poisson
    noise fewer than 0.3 % of series reach p < 0.1).

    1. Residuals: the series minus ``batch.baseline.center`` (without a baseline, the
       ``analysis.baselines.auto_baseline`` of the batch: seasonal where detected, else a
       trailing median of 60 points, which also damps periods longer than ~60 points),
       in robust standard deviations (1.4826 * MAD), winsorised at ``clip_sigmas``;
       gaps (NaN, samples == 0) then count as the residual median, 0 (a series with
       more than 25 % of its span missing is not tested).
    2. Span under test: the points from ``batch.window_start`` to the end, extended back
       into the history to at least ``min_points`` points (a periodogram needs cycles).
       Welch periodogram with Hann segments of half the span, linear detrend per segment.
    3. Periods considered: 2 points up to a quarter of the span (longer periods are
       trends at this length: a peak needs four cycles; the refined period must be in
       range too, so a longer cycle leaking into the first bins does not count). When
       the series' baseline is seasonal, bins within 2.5 bins (a Hann main lobe) of the
       daily cycle and its harmonics up to ``daily_harmonics`` are ignored: that cycle is
       the baseline's business, and its day-to-day changes leave harmonics in the
       residual. The daily period itself (in range over spans of 4 days or more) is
       ignored for every series: a daily cycle is seasonality, never an oscillation.
    4. A series oscillates when p <= ``alpha`` and the peak (its bins above the
       background) holds at least ``min_power_fraction`` of the residual variance: a
       tiny but regular wiggle in a smooth series is no oscillation worth a finding.
    5. Alerts mark where it oscillates (points with data at or after ``window_start``):
       complex demodulation at the peak frequency, averaged over the trailing 3 periods,
       gives a local amplitude whose square over its expectation under the background is
       about Exp(1) under noise; points where it reaches ``local_threshold`` alert.
       ``change_index`` is the first of them.

    Parameters: ``alpha`` (default 1e-4), ``min_power_fraction`` (default 0.1: the
    oscillation carries a tenth of the residual variance), ``min_points`` (points,
    default 512: periods up to 128 points, about 2 hours at 1-minute resolution, when
    the window under test is short), ``local_threshold`` (default 9.2 = -ln 1e-4, a
    point-wise test repeated over the span), ``daily_harmonics`` (default 24: periods
    24 h down to 1 h), ``clip_sigmas`` (robust standard deviations, default 6).

    Outputs: ``score`` = (1 - p) * (1 - exp(-local statistic)); ``p_value`` Fisher's p
    for alerting series (1.0 otherwise); ``before`` / ``after`` the trough and the crest
    (median level -/+ amplitude, the signal's unit); ``effect`` the peak-to-peak swing
    relative to the median level; ``details``: ``period_s`` (log-parabolic interpolation
    of the peak bin), ``amplitude`` (signal unit), ``power_fraction``, ``fisher_g``.
    """

    name: ClassVar[str] = "oscillation"
    kinds: ClassVar[tuple[str, ...]] = ("gauge", "latency_", "rate")

    def __init__(
        self,
        *,
        alpha: float = 1e-4,
        min_power_fraction: float = 0.1,
        min_points: int = 512,
        local_threshold: float = 9.2,
        daily_harmonics: int = 24,
        clip_sigmas: float = 6.0,
    ) -> None:
        if min_points < 64:
            raise ValueError(f"min_points must be >= 64, got {min_points}")
        self.alpha = alpha
        self.min_power_fraction = min_power_fraction
        self.min_points = min_points
        self.local_threshold = local_threshold
        self.daily_harmonics = daily_harmonics
        self.clip_sigmas = clip_sigmas

    def detect(self, batch: SeriesBatch) -> Detection:
        """Per point: evidence of a dominant oscillation there, and its alert (see class doc)."""
        n, t = batch.shape
        s0 = max(0, min(batch.window_start, t - self.min_points))
        span = t - s0
        if n == 0 or span < 64:
            return Detection.quiet((n, t))
        x = np.where((batch.samples > 0) & np.isfinite(batch.values), batch.values, np.nan)
        baseline = batch.baseline if batch.baseline is not None else auto_baseline(x, resolution_s=batch.resolution_s)
        z, present, scale, level = self._standardise(x[:, s0:], np.asarray(baseline.center, dtype=np.float64)[:, s0:])
        peak = self._spectral_peak(z, present, _seasonal_rows(baseline, n), batch.resolution_s)

        stat = np.zeros((n, span))
        for c0 in range(0, n, _CHUNK_SERIES):  # bounds the complex temporaries to a few tens of MB
            c1 = min(n, c0 + _CHUNK_SERIES)
            stat[c0:c1] = _local_statistic(
                z[c0:c1], present[c0:c1], peak.freq[c0:c1], peak.period_pts[c0:c1], peak.background[c0:c1]
            )
        score = np.zeros((n, t))
        score[:, s0:] = (1.0 - peak.p_value)[:, np.newaxis] * (1.0 - np.exp(-stat))
        alert = np.zeros((n, t), dtype=bool)
        alert[:, s0:] = peak.oscillating[:, np.newaxis] & (stat >= self.local_threshold) & present
        alert[:, : batch.window_start] = False

        any_alert = alert.any(axis=1)
        change = np.where(any_alert, np.argmax(alert, axis=1), -1).astype(np.int64)
        amplitude = np.sqrt(2.0 * peak.variance) * scale
        nan = np.full(n, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            effect = np.where(any_alert & (np.abs(level) > 0), 2.0 * amplitude / np.abs(level), nan)
        details = {
            "period_s": np.where(any_alert, peak.period_pts * batch.resolution_s, nan),
            "amplitude": np.where(any_alert, amplitude, nan),
            "power_fraction": np.where(any_alert, peak.fraction, nan),
            "fisher_g": np.where(any_alert, peak.g, nan),
        }
        before = np.where(any_alert, level - amplitude, nan)
        after = np.where(any_alert, level + amplitude, nan)
        return Detection(score, alert, np.where(any_alert, peak.p_value, 1.0), change, effect, before, after, details)

    def _standardise(
        self, x: FloatArray, center: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_], FloatArray, FloatArray]:
        """(residuals in robust standard deviations, gaps as 0; where data is; robust scale; median level) per row.

        Rows with less than 75 % of the span present are all-zero (never tested). Every
        statistic computed from the result is free of the series' unit.
        """
        n = x.shape[0]
        level = np.full(n, np.nan)
        has = np.isfinite(x).any(axis=1)
        level[has] = np.nanmedian(x[has], axis=1)
        r = x - np.where(np.isnan(center), level[:, np.newaxis], center)
        present = np.isfinite(r)
        tested = present.mean(axis=1) >= 0.75
        med = np.zeros(n)
        scale = np.ones(n)
        if tested.any():
            med[tested] = np.nanmedian(r[tested], axis=1)
            mad = MAD_TO_SIGMA * np.nanmedian(np.abs(r[tested] - med[tested, np.newaxis]), axis=1)
            std = np.nanstd(r[tested], axis=1)
            scale[tested] = np.where(mad > 0, mad, np.where(std > 0, std, 1.0))
        z = np.clip((r - med[:, np.newaxis]) / scale[:, np.newaxis], -self.clip_sigmas, self.clip_sigmas)
        z = np.where(present & tested[:, np.newaxis], z, 0.0)
        return z, present, scale, level

    def _spectral_peak(
        self, z: FloatArray, present: NDArray[np.bool_], seasonal: NDArray[np.bool_], resolution_s: int
    ) -> _Peak:
        """Each row's largest whitened Welch ordinate in the allowed band, Fisher's p-value and the decision."""
        n, span = z.shape
        rows = np.arange(n)
        variance = (z * z).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
        seg = span // 2
        freqs, power = welch(z, fs=1.0, window="hann", nperseg=seg, noverlap=seg // 2, detrend="linear", axis=-1)
        power = np.asarray(power, dtype=np.float64)
        k_all = len(freqs)
        background = _background(power, min_band=12)

        k = np.arange(k_all)
        allowed = np.broadcast_to((k >= max(1, -(-4 * seg // span))) & (k < seg / 2), (n, k_all)).copy()
        day_freq = resolution_s / DAY_S * np.arange(1, max(1, self.daily_harmonics) + 1)  # cycles per point
        near = np.abs(freqs[:, np.newaxis] - day_freq[np.newaxis, :]) * seg <= 2.5 + 1e-9
        allowed &= ~near[:, 0]  # the daily cycle itself is seasonality, never an oscillation
        if seasonal.any() and self.daily_harmonics > 0:
            allowed[seasonal] &= ~near.any(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            white = np.where(allowed & (background > 0), power / background, 0.0)
        peak = np.argmax(white, axis=1)
        total = white.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(total > 0, white[rows, peak] / total, np.nan)
        tested = variance > 0
        p_value = np.where(tested, fisher_g_pvalue(g, allowed.sum(axis=1).astype(np.int64)), 1.0)

        # The oscillation's variance: its peak bins above the background (density * bin width).
        raw = peak[:, np.newaxis] + np.arange(-2, 3)
        lobe = np.clip(raw, 0, k_all - 1)
        above = power[rows[:, np.newaxis], lobe] - background[rows[:, np.newaxis], lobe]
        excess = np.where(raw == lobe, np.maximum(above, 0.0), 0.0)
        peak_var = excess.sum(axis=1) / seg
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(tested, peak_var / variance, 0.0)
        period_pts = _refined_period(power, peak, seg)
        # Leakage can put the peak bin of a longer cycle inside the range; its refined period tells.
        short = np.nan_to_num(period_pts, nan=np.inf) <= span / 4.0
        oscillating = tested & short & (p_value <= self.alpha) & (fraction >= self.min_power_fraction)
        return _Peak(p_value, g, peak / seg, period_pts, background[rows, peak], peak_var, fraction, oscillating)


def _refined_period(power: FloatArray, peak: NDArray[np.intp], seg: int) -> FloatArray:
    """Period in points of each row's peak, refined by a parabola through the log power around the peak bin."""
    n, k_all = power.shape
    rows = np.arange(n)
    inner = (peak > 0) & (peak < k_all - 1)
    lo = np.log(np.maximum(power[rows, np.clip(peak - 1, 0, k_all - 1)], 1e-300))
    mid = np.log(np.maximum(power[rows, peak], 1e-300))
    hi = np.log(np.maximum(power[rows, np.clip(peak + 1, 0, k_all - 1)], 1e-300))
    curv = lo - 2.0 * mid + hi
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(inner & (curv < 0), 0.5 * (lo - hi) / curv, 0.0)
    freq = (peak + np.clip(delta, -0.5, 0.5)) / seg
    with np.errstate(divide="ignore"):
        out: FloatArray = np.where(freq > 0, 1.0 / freq, np.nan)
    return out


def _local_statistic(
    z: FloatArray, present: NDArray[np.bool_], freq: FloatArray, period_pts: FloatArray, bg: FloatArray
) -> FloatArray:
    """Per point, |demodulated mean over the trailing 3 periods|^2 over its expectation under the background.

    For a one-sided density S at f, the mean of M points of x_t e^(-2 pi i f t) has
    E|.|^2 ~ S / (2 M) under noise and A^2 / 4 for a sinusoid of amplitude A; the ratio
    is ~Exp(1) under noise. The window is 3 periods, within [16, span / 2] points.
    """
    n, t = z.shape
    width = np.clip(np.round(3.0 * np.nan_to_num(period_pts, nan=16.0)), 16, max(16, t // 2)).astype(np.int64)
    phase = np.exp(-2j * np.pi * freq[:, np.newaxis] * np.arange(t))
    c = np.concatenate([np.zeros((n, 1), complex), np.cumsum(z * phase, axis=1)], axis=1)
    cnt = np.concatenate([np.zeros((n, 1)), np.cumsum(present, axis=1)], axis=1)
    idx = np.arange(1, t + 1)[np.newaxis, :]
    lo = np.maximum(idx - width[:, np.newaxis], 0)
    rows = np.arange(n)[:, np.newaxis]
    m = cnt[rows, idx] - cnt[rows, lo]
    full = m >= 0.75 * width[:, np.newaxis]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (c[rows, idx] - c[rows, lo]) / m
        stat = np.abs(mean) ** 2 * 2.0 * m / bg[:, np.newaxis]
    out: FloatArray = np.where(full & np.isfinite(stat), stat, 0.0)
    return out
