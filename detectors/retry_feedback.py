"""Retry feedback: errors that lead the request rate (a retry storm), by lagged cross-correlation."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

from analysis.baselines import MAD_TO_SIGMA, Baseline, trailing_baseline
from detectors.base import Detection, Detector, FloatArray, SeriesBatch

_MIN_PAIRS = 30
"""Fewer valid pairs than this leave a correlation undefined."""

_TRAILING = 60
"""Window of the trailing baseline used when a batch has none, points."""


def lagged_correlation(x: FloatArray, y: FloatArray, lag: int) -> tuple[FloatArray, FloatArray]:
    """(Pearson correlation of x[t] with y[t + lag], number of pairs) per row, over pairs where both are present."""
    t = x.shape[1]
    if lag >= 0:
        a, b = x[:, : t - lag], y[:, lag:]
    else:
        a, b = x[:, -lag:], y[:, : t + lag]
    both = np.isfinite(a) & np.isfinite(b)
    k = both.sum(axis=1).astype(np.float64)
    safe = np.maximum(k, 1.0)[:, np.newaxis]
    da = np.where(both, a - np.where(both, a, 0.0).sum(axis=1, keepdims=True) / safe, 0.0)
    db = np.where(both, b - np.where(both, b, 0.0).sum(axis=1, keepdims=True) / safe, 0.0)
    denom = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((k >= _MIN_PAIRS) & (denom > 0), (da * db).sum(axis=1) / denom, np.nan)
    return r, k


def _robust_standardise(d: FloatArray, clip: float) -> FloatArray:
    """Each row minus its median, over 1.4826 * MAD (the standard deviation when the MAD is 0), winsorised."""
    out = np.full_like(d, np.nan)
    rows = np.isfinite(d).sum(axis=1) > 1
    if rows.any():
        x = d[rows]
        med = np.nanmedian(x, axis=1, keepdims=True)
        mad = MAD_TO_SIGMA * np.nanmedian(np.abs(x - med), axis=1, keepdims=True)
        std = np.nanstd(x, axis=1, keepdims=True)
        scale = np.where(mad > 0, mad, np.where(std > 0, std, 1.0))
        out[rows] = np.clip((x - med) / scale, -clip, clip)
    return out


class RetryFeedback(Detector):
    """Retry storms: the error ratio leads the request rate (errors -> retries -> load).

    Method: cross-correlation of prewhitened series (Box & Jenkins 1976, "Time Series
    Analysis: Forecasting and Control", ch. 11: identify a lead by the cross-correlation
    of the differenced or prewhitened input and output) with Bartlett's (1935, "Some
    aspects of the time-correlation problem in regard to tests of significance", JRSS 98)
    large-sample variance of a cross-correlation between independent series,
    var r_xy(L) ~ (1 / N) * (1 + 2 * sum_j rho_x(j) rho_y(j)). When clients retry failed
    calls, a burst of errors adds requests a few points later, and if the added load
    causes more errors the loop feeds itself (the "retry storm" / metastable failure of
    Bronson, Aghayev, Charapko & Zhu 2021, "Metastable failures in distributed systems",
    HotOS).

    It reads two signals of the same entities (``pairs_with = "rate"``): ``detect(batch)``
    takes the error-ratio batch with the rate batch as its ``partner`` (row i of both is one
    service operation; keys equal except ``kind``; same time grid and ``window_start``), as
    the runner builds it (``detectors.batches.paired``), and is ``detect_pair(error_ratio,
    rate)``; without a partner one series cannot show that another follows it, so it is quiet.

    1. Span: from ``window_start`` to the end, extended back to at least ``min_points``
       points. Gaps (NaN, samples == 0) are skipped, never filled.
    2. Prewhitening: first differences of both series (trends and slow seasonality go),
       standardised by their median and 1.4826 * MAD and winsorised at 6 (one
       coincident pair of spikes cannot make a correlation).
    3. Cross-correlation r(L) of the error-ratio differences at t with the rate
       differences at t + L, for L = -``max_lag`` .. ``max_lag`` points. Bartlett's
       variance inflation 1 + 2 sum_{j=1..max_lag} rho_e(j) rho_r(j) (floored at 1: never
       narrower than 1 / sqrt(N)) accounts for the autocorrelation the differences keep
       (differenced white noise has rho(1) = -0.5 and a plain 1 / sqrt(N) would be too
       narrow by ~20 %). z(L) = r(L) sqrt(N_L / inflation); the one-sided p-value of the
       best positive lag L* (errors first), Bonferroni-corrected over the ``max_lag``
       lags, is the series' p-value.
    4. A lead, not a common cause: r(L*) must be at least ``min_correlation`` and exceed
       r(0) and every r(L < 0); a load surge that raises both at once (or load that
       causes errors) peaks at L <= 0. Retries faster than one point look like a common
       cause and are not claimed.
    5. The rate rose: alerts (points at or after ``window_start``) where the rate is at
       least ``rise_z`` robust standard deviations and ``min_rate_rise`` above its
       baseline and the error ratio L* points earlier at least ``rise_z`` robust standard
       deviations above its own (baselines: the batches' own, else a trailing median /
       MAD over 60 points). The relative floor keeps out the small echo a lone error
       blip leaves in a coupled rate. ``change_index`` is the first alert.

    Outputs (indexed like the pair): ``score`` = (1 - p) * (1 - exp(-min(rate z, lagged
    error z) / rise_z)); ``before`` / ``after`` the error ratio before the storm and at
    the errors that drove it (medians); ``effect`` their relative change; ``details``:
    ``lag_points``, ``lag_s``, ``xcorr`` (r(L*)), ``delta_pp`` (after - before, error
    ratio), ``rate_before``, ``rate_after`` (rate medians before and during the storm)
    and ``rate_effect`` (their relative change).

    Parameters: ``max_lag`` (points, default 10: ten minutes at 1-minute resolution
    covers client back-off schedules), ``alpha`` (default 1e-3, after Bonferroni),
    ``min_correlation`` (default 0.3), ``rise_z`` (robust standard deviations, default 3),
    ``min_rate_rise`` (default 0.1 = +10 % over the rate's baseline), ``min_points``
    (default 240).
    """

    name: ClassVar[str] = "retry_feedback"
    kinds: ClassVar[tuple[str, ...]] = ("error_ratio",)
    pairs_with: ClassVar[str | None] = "rate"

    def __init__(
        self,
        *,
        max_lag: int = 10,
        alpha: float = 1e-3,
        min_correlation: float = 0.3,
        rise_z: float = 3.0,
        min_rate_rise: float = 0.1,
        min_points: int = 240,
        clip_sigmas: float = 6.0,
    ) -> None:
        if max_lag < 1 or min_points < 4 * max_lag:
            raise ValueError(f"need max_lag >= 1 and min_points >= 4 * max_lag, got {max_lag}, {min_points}")
        self.max_lag = max_lag
        self.alpha = alpha
        self.min_correlation = min_correlation
        self.rise_z = rise_z
        self.min_rate_rise = min_rate_rise
        self.min_points = min_points
        self.clip_sigmas = clip_sigmas

    def detect(self, batch: SeriesBatch) -> Detection:
        """``detect_pair`` of the error-ratio batch and its ``partner`` rate batch; quiet without a partner."""
        if batch.partner is None:
            return Detection.quiet(batch.shape)
        return self.detect_pair(batch, batch.partner)

    @staticmethod
    def _check_pair(error_ratio: SeriesBatch, rate: SeriesBatch) -> None:
        if error_ratio.shape != rate.shape or not np.array_equal(error_ratio.times_ns, rate.times_ns):
            raise ValueError("error_ratio and rate batches must share shape and time grid")
        if error_ratio.window_start != rate.window_start:
            raise ValueError("error_ratio and rate batches must share window_start")
        for e, r in zip(error_ratio.keys, rate.keys, strict=True):
            if (e.service, e.operation, e.metric, e.attributes) != (r.service, r.operation, r.metric, r.attributes):
                raise ValueError(f"series mismatch: {e.label()} vs {r.label()}")

    @staticmethod
    def _zscores(x: FloatArray, baseline: Baseline | None, start: int) -> tuple[FloatArray, FloatArray]:
        """(robust z-score, relative rise) of each point from ``start`` on, against the batch's baseline.

        Without one, a trailing 60-point median / MAD computed from 60 points before
        ``start`` only (earlier points are NaN: nothing reads them).
        """
        if baseline is not None and baseline.center.shape == x.shape:
            center = np.asarray(baseline.center, dtype=np.float64)
            spread = np.asarray(baseline.spread, dtype=np.float64)
        else:
            b0 = max(0, start - _TRAILING)
            own = trailing_baseline(x[:, b0:], window=_TRAILING, min_support=10)
            center = np.full_like(x, np.nan)
            spread = np.full_like(x, np.nan)
            center[:, b0:], spread[:, b0:] = own.center, own.spread
        with np.errstate(divide="ignore", invalid="ignore"):
            z: FloatArray = (x - center) / spread
            rise: FloatArray = np.where(center > 0, x / center - 1.0, np.nan)
        return z, rise

    def detect_pair(self, error_ratio: SeriesBatch, rate: SeriesBatch) -> Detection:
        """Per point: evidence that errors L* points earlier drove the rate up, and its alert (see class doc)."""
        self._check_pair(error_ratio, rate)
        n, t = error_ratio.shape
        s0 = max(0, min(error_ratio.window_start, t - self.min_points))
        if n == 0 or t - s0 < 4 * self.max_lag:
            return Detection.quiet((n, t))
        e = np.where((error_ratio.samples > 0) & np.isfinite(error_ratio.values), error_ratio.values, np.nan)
        r = np.where((rate.samples > 0) & np.isfinite(rate.values), rate.values, np.nan)

        de = _robust_standardise(np.diff(e[:, s0:], axis=1), self.clip_sigmas)
        dr = _robust_standardise(np.diff(r[:, s0:], axis=1), self.clip_sigmas)
        lags = np.arange(-self.max_lag, self.max_lag + 1)
        xcorr = np.full((n, len(lags)), np.nan)
        pairs = np.zeros((n, len(lags)))
        for j, lag in enumerate(lags.tolist()):  # a loop over lags, vectorised over series
            xcorr[:, j], pairs[:, j] = lagged_correlation(de, dr, lag)
        inflation = np.ones(n)
        for k in range(1, self.max_lag + 1):
            acf_e, _ = lagged_correlation(de, de, k)
            acf_r, _ = lagged_correlation(dr, dr, k)
            inflation += 2.0 * np.nan_to_num(acf_e * acf_r)
        inflation = np.maximum(inflation, 1.0)

        positive = lags > 0
        with np.errstate(invalid="ignore"):
            z_lag = xcorr[:, positive] * np.sqrt(pairs[:, positive] / inflation[:, np.newaxis])
        z_lag = np.nan_to_num(z_lag, nan=-np.inf)
        best = np.argmax(z_lag, axis=1)
        rows = np.arange(n)
        lag_best = lags[positive][best]
        r_best = xcorr[:, positive][rows, best]
        p_series = np.minimum(1.0, self.max_lag * norm.sf(z_lag[rows, best]))
        others = np.nanmax(np.where(np.isfinite(xcorr[:, ~positive]), xcorr[:, ~positive], -np.inf), axis=1)
        leads = (np.nan_to_num(r_best, nan=-1.0) >= self.min_correlation) & (np.nan_to_num(r_best, nan=-1.0) > others)
        significant = leads & (p_series <= self.alpha)

        rate_z, rate_rise = self._zscores(r, rate.baseline, s0)
        err_z, _ = self._zscores(e, error_ratio.baseline, max(0, s0 - self.max_lag))
        idx = np.arange(t)[np.newaxis, :] - lag_best[:, np.newaxis]
        lagged_err_z = np.where(idx >= 0, err_z[rows[:, np.newaxis], np.maximum(idx, 0)], np.nan)
        drive = np.nan_to_num(np.minimum(rate_z, lagged_err_z), nan=0.0)
        drive[:, :s0] = 0.0
        score = (1.0 - p_series)[:, np.newaxis] * (1.0 - np.exp(-np.maximum(drive, 0.0) / self.rise_z))
        alert = significant[:, np.newaxis] & (drive >= self.rise_z) & (np.nan_to_num(rate_rise) >= self.min_rate_rise)
        alert[:, : error_ratio.window_start] = False

        return self._summarise(
            e, r, alert, score, p_series=p_series, lag=lag_best, r_best=r_best, resolution_s=error_ratio.resolution_s
        )

    @staticmethod
    def _summarise(
        e: FloatArray,
        r: FloatArray,
        alert: NDArray[np.bool_],
        score: FloatArray,
        *,
        p_series: FloatArray,
        lag: NDArray[np.int64],
        r_best: FloatArray,
        resolution_s: int,
    ) -> Detection:
        """The Detection: levels of the error ratio and of the rate before and during the storm."""
        n = e.shape[0]
        any_alert = alert.any(axis=1)
        change = np.where(any_alert, np.argmax(alert, axis=1), -1).astype(np.int64)
        p_value = np.where(any_alert, p_series, 1.0)
        nan = np.full(n, np.nan)
        before, after = nan.copy(), nan.copy()
        rate_before, rate_after = nan.copy(), nan.copy()
        for i in np.flatnonzero(any_alert):  # a loop over alerting series only
            c, k = int(change[i]), int(lag[i])
            storm = np.flatnonzero(alert[i])
            pre_e, pre_r = e[i, : max(c - k, 0)], r[i, :c]
            if np.isfinite(pre_e).any():
                before[i] = np.nanmedian(pre_e)
            if np.isfinite(pre_r).any():
                rate_before[i] = np.nanmedian(pre_r)
            after[i] = np.nanmedian(e[i, storm - k])
            rate_after[i] = np.nanmedian(r[i, storm])
        with np.errstate(divide="ignore", invalid="ignore"):
            effect = np.where(np.abs(before) > 0, (after - before) / np.abs(before), np.nan)
            rate_effect = np.where(np.abs(rate_before) > 0, (rate_after - rate_before) / np.abs(rate_before), np.nan)
        details = {
            "lag_points": np.where(any_alert, lag.astype(np.float64), nan),
            "lag_s": np.where(any_alert, lag * float(resolution_s), nan),
            "xcorr": np.where(any_alert, r_best, nan),
            "delta_pp": after - before,
            "rate_before": rate_before,
            "rate_after": rate_after,
            "rate_effect": rate_effect,
        }
        return Detection(score, alert, p_value, change, effect, before, after, details)
