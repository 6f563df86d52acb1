"""Level shifts: a two-sided CUSUM over robust residuals against a reference that cannot absorb the change.

Two pieces, as in ruptures (a model of the signal, a decision rule), each swappable:

- ``detectors.level_shift_model``: the model. Each point becomes a robust z-score against what the series
  looked like before the window under test, rescaled by the long-run variance of those
  z-scores so that, under "no change", they behave like independent N(0, 1) draws.
- ``two_sided_cusum``: the decision rule, Page's CUSUM on those standardised residuals, with
  its null calibration (Siegmund's approximation of the run length) giving scores and
  p-values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from analysis.baselines import Baseline
from detectors.base import BoolArray, Detection, Detector, FloatArray, IntArray, SeriesBatch
from detectors.level_shift_model import (
    SPREAD_SMOOTHING,
    Residuals,
    block_points,
    blockwise_mean,
    given_reference,
    long_run_variance,
    own_reference,
    uses_given_baseline,
)

SIEGMUND_CORRECTION = 1.166
"""2 * 0.583 = -2 * zeta(1/2) / sqrt(2 pi): Siegmund's (1985) correction of the threshold for the
overshoot of a Gaussian random walk over the boundary (the ``+ 1.166`` in ``h + 1.166``)."""

_CENTRE_BLOCK = 30
"""Points per block of the re-centring estimate (median over blocks of block means of z)."""
_GUARD_ERRORS = 2.0
"""Standard errors of the reference level added to k (``Residuals.guard``)."""
_MEDIAN_EFFICIENCY = 1.25
"""sqrt(pi / 2): standard error of a median relative to a mean, for normal data."""


@dataclass(frozen=True)
class LevelShift(Detector):
    """Return per-point CUSUM scores and alerts for level shifts, with per-series p-values and change starts.

    Method: Page's two-sided CUSUM (E. S. Page, 1954, "Continuous inspection schemes",
    Biometrika 41) on robust residuals. Each present point gets a robust z-score
    ``z = (x - center) / spread`` (robust location / 1.4826 * MAD; Hampel 1974), winsorised at
    +-``clip_z`` so one outlier moves the CUSUM by at most ``clip_z - k``. Two one-sided
    statistics ``S+_t = max(0, S+_{t-1} + y_t - k)`` and ``S-_t = max(0, S-_{t-1} - y_t - k)``
    run over the window under test (a gap holds them). Written as ``S_t = W_t - min_{u<=t}
    W_u`` with ``W`` the cumulative sum of ``y - k`` (Lindley's form, computed with one
    ``cumsum`` and one running minimum, vectorised across series and time), this is also
    the Page-Hinkley test (Hinkley 1971, "Inference about the change-point from cumulative
    sum tests", Biometrika 58) with tolerance ``delta = k`` and threshold ``lambda = h`` and a
    *known* reference mean; the textbook Page-Hinkley instead centres on the running mean of
    the stream itself, which drifts towards the new level after a change, so the CUSUM form
    with a frozen reference is the decision rule here. An alert starts when a statistic
    reaches ``h`` and lasts until it returns to 0 (the whole excursion, not one point);
    the change start is the point after the statistic was last 0 before the crossing
    (Page's estimate; the maximum-likelihood change point of a step, Hinkley 1971).

    The reference must not absorb the change (a 60-point trailing median follows a step
    within half an hour). When ``batch.baseline`` is seasonal (its method is not
    ``trailing``), its per-point center is used as given (it comes from earlier periods,
    not from the window) and its spread is made the scale of ``x - center``: corrected for
    the small-sample bias of a MAD of a few seasons, smoothed over time, and widened for the
    error of the center itself (``given_reference``). Otherwise (trailing baseline, or
    none) the reference is the detector's own, over ``reference_s`` seconds of history cut
    into ~16 blocks: the median of the blocks' winsorised means (a remedian, Rousseeuw &
    Bassett 1990; means, because the CUSUM sums residuals and a median-centred skewed
    series would drift), with a spread combining the median within-block MAD and the MAD of
    the block levels in quadrature, so slow wander counts as noise. It is frozen at
    ``batch.window_start``; without enough history there (fewer than ``min_reference``
    points) or with ``window_start == 0`` it rolls block by block over the preceding
    ``reference_s`` seconds, and a change is absorbed only once it fills half of that span.
    The window is scanned; the history only calibrates. z is finally re-centred on its
    mean under the reference (the median over 30-point blocks of block means of z).

    Real series are autocorrelated and heavy-tailed, and CUSUM thresholds assume
    independent N(0, 1) increments, so z is divided by the square root of its long-run
    variance ``lrv`` on the reference points: the largest of two batch-means estimates
    (overlapping batches of ``lrv_batch`` and 3 * ``lrv_batch`` points, Meketon & Schmeiser
    1984, "Overlapping batch means: something for nothing?"; winsorised variance of the
    standardised sums, so the blocks of an old level shift barely count) and the AR(1) value
    ``var * (1 + rho) / (1 - rho)`` from the semi-variogram at lags 1 and 2 (``rho = v2 / v1
    - 1``, capped at ``max_rho``; differences ignore level shifts and keep heavy tails);
    never below 1. The CUSUM's false-alarm rate is exponential in ``h / variance``, so an
    underestimated variance, not a missed shift, is the costly error.

    The change is dated where a shift from the reference level most likely began
    (:func:`likeliest_start`) within the alarming excursion, not at the excursion's start:
    noise opens an excursion early, and the median levels before and after are read from
    the dated change on.

    Null calibration (p-values and scores): Siegmund's corrected diffusion approximation
    of the average run length of a one-sided CUSUM of N(0, 1) increments (D. Siegmund,
    1985, "Sequential Analysis: Tests and Confidence Intervals", Springer),
    ``ARL(m) = (exp(2 k b) - 2 k b - 1) / (2 k^2)`` with ``b = m + 1.166``, and the
    exponential law of a long run length, so ``P(max over n points >= m) = 1 - exp(-n /
    ARL(m))``; two sides give ``1 - exp(-2 n / ARL(m))`` (Sidak). This is chosen over a
    Bonferroni bound on the segment means because it approximates the null law of the very
    statistic the decision uses (the tests check it against simulated N(0, 1) CUSUMs) rather
    than bounding a different one loosely, so a p-value is the false-alarm probability of
    the CUSUM over the ``n`` points scanned and Benjamini-Hochberg across series is sound. ``p_value`` is
    that probability for the largest statistic of the strongest alarm (1.0 without one),
    and ``score`` at each point is ``1 - p`` of its current statistic.

    Parameters (defaults work without tuning at any scale: everything is in robust
    sigmas of the series' own reference):

    - ``k`` (robust sigmas, 0.5): reference value; the CUSUM is tuned to shifts of 2 k = 1
      sigma and ignores sustained deviations smaller than k. Each point adds a guard of
      two standard errors of the reference level, ``2.5 / sqrt(N)`` for a level estimated
      from N points (0.07 for a day of minutes), since an error in the level is a drift
      the CUSUM would sum; p-values use the nominal k, so they stay conservative.
    - ``h`` (robust sigmas, 15): decision threshold. ARL(15) = 2.1e7 points: a week at one
      minute (10,080 points) of pure noise alarms with probability 1e-3; a step of 3
      sigmas crosses it after about 6 points (h / (3 - k) plus noise).
    - ``clip_z`` (robust sigmas, 8): winsorisation of z.
    - ``reference_s`` (seconds, 86,400): history span of the detector's own reference.
    - ``min_reference`` (points, 60): present reference points needed before a series is
      scanned at all.
    - ``lrv_batch`` (points, 10): batch length of the long-run variance estimate.
    - ``max_rho`` (unitless, 0.95): cap of the AR(1) autocorrelation (variance factor 39).

    ``details``: ``cusum_max`` (largest statistic of the strongest alarm), ``direction``
    (+1 up, -1 down), ``first_alert_index`` (the crossing), ``end_index`` (last point of
    the excursion), ``shift_sigma`` (median z over the excursion) and ``lrv``; ``before``
    is the median reference level over the excursion, ``after`` the median value.

    >>> import numpy as np
    >>> from detectors.base import SeriesBatch, SignalKey
    >>> rng = np.random.default_rng(7)
    >>> x = 100.0 + rng.standard_normal((1, 600))
    >>> x[0, 450:] += 3.0
    >>> keys = [SignalKey("gauge", "svc", "op")]
    >>> times = np.arange(600, dtype=np.int64) * 60_000_000_000
    >>> batch = SeriesBatch(keys, times, x, np.full((1, 600), 100.0), 60, window_start=400)
    >>> d = LevelShift().detect(batch)
    >>> alarms = np.flatnonzero(d.alert[0])
    >>> int(d.change_index[0]), int(alarms[0]), int(alarms[-1]), len(alarms), bool(d.p_value[0] < 1e-100)
    (450, 456, 599, 144, True)
    >>> round(float(d.effect[0]), 3)
    0.029
    """

    name: ClassVar[str] = "level_shift"
    kinds: ClassVar[tuple[str, ...]] = ("latency_", "rate", "gauge", "histogram_", "counter_rate", "log_rate")

    k: float = 0.5
    h: float = 15.0
    clip_z: float = 8.0
    reference_s: int = 86_400
    min_reference: int = 60
    lrv_batch: int = 10
    max_rho: float = 0.95

    def detect(self, batch: SeriesBatch) -> Detection:
        """Return the Detection of ``batch`` (see the class docstring)."""
        n, t = batch.shape
        if n == 0 or t == 0 or batch.window_start >= t:
            return Detection.quiet((n, t))
        # Points older than the reference span (plus slack for block alignment and the spread
        # smoothing) cannot change the result, so a week of history costs what a day does.
        span = self._span(batch.resolution_s)
        slack = 2 * block_points(span) + max(SPREAD_SMOOTHING) // 2
        first = max(0, batch.window_start - span - slack)
        part = _tail(batch, first)
        model = self.residuals(part)
        up, down = two_sided_cusum(model.y, self.k + model.guard)
        return _pad_front(self._decide(part, model, up, down), first, t)

    def _span(self, resolution_s: int) -> int:
        """Points of history the reference is taken from."""
        return max(self.min_reference, self.reference_s // max(1, resolution_s))

    def residuals(self, batch: SeriesBatch) -> Residuals:
        """Return the standardised residuals of ``batch`` against a reference that does not absorb changes."""
        x = np.where(np.isfinite(batch.values) & (batch.samples > 0), batch.values, np.nan)
        n, t = x.shape
        ws = max(0, batch.window_start)
        span = self._span(batch.resolution_s)
        given = uses_given_baseline(batch)
        center = np.full((n, t), np.nan)
        spread = np.full((n, t), np.nan)
        scanned = np.zeros((n, t), dtype=bool)
        calib = np.zeros((n, t), dtype=bool)
        support = np.full((n, t), np.nan)  # points behind the reference level
        own = np.flatnonzero(~given)
        if own.size:
            c, s, sc, ca, sup = own_reference(x[own], ws, span, self.min_reference, self.clip_z)
            center[own], spread[own], scanned[own], calib[own], support[own] = c, s, sc, ca, sup
        theirs = np.flatnonzero(given)
        if theirs.size and batch.baseline is not None:
            c, s = given_reference(batch, theirs)
            ok = np.isfinite(x[theirs]) & np.isfinite(c) & np.isfinite(s)
            idx = np.arange(t)
            history = ok & (idx < ws) & (idx >= ws - span)
            enough = history.sum(axis=1) >= self.min_reference
            center[theirs], spread[theirs] = c, s
            scanned[theirs] = ok & (idx >= ws)
            calib[theirs] = np.where(enough[:, np.newaxis], history, ok & (idx >= ws))
            # Their center is re-estimated per point (its error is in the scale); what persists
            # is the error of the re-centring below, estimated from the calibration points.
            support[theirs] = calib[theirs].sum(axis=1, keepdims=True)
        present = np.isfinite(x) & np.isfinite(center) & (spread > 0)
        scanned &= present
        calib &= present
        with np.errstate(invalid="ignore", divide="ignore"):
            z_all = np.clip((x - center) / spread, -self.clip_z, self.clip_z)
        # Centre on the mean of z under the reference: a median-based baseline of skewed data
        # (or a seasonal one that lags a trend) leaves E[z] != 0, which the CUSUM would sum.
        shift = blockwise_mean(np.where(calib, z_all, np.nan), _CENTRE_BLOCK)
        z_all = np.clip(z_all - shift[:, np.newaxis], -self.clip_z, self.clip_z)
        lrv = long_run_variance(np.where(calib, z_all, np.nan), self.lrv_batch, self.max_rho)
        z = np.where(scanned, z_all, np.nan)
        y = np.where(scanned, z_all / np.sqrt(lrv)[:, np.newaxis], np.nan)
        expected = center + shift[:, np.newaxis] * spread
        with np.errstate(invalid="ignore", divide="ignore"):
            guard = np.where(scanned, _GUARD_ERRORS * _MEDIAN_EFFICIENCY / np.sqrt(support), 0.0)
        return Residuals(y=y, z=z, expected=expected, scanned=scanned, lrv=lrv, own=~given, guard=guard)

    def _decide(self, batch: SeriesBatch, model: Residuals, up: FloatArray, down: FloatArray) -> Detection:
        """Per series: the strongest excursion's p-value, change start, levels and details."""
        n, t = batch.shape
        n_scanned = model.scanned.sum(axis=1)
        current = np.maximum(up, down)
        live = model.scanned & (current > 0)  # elsewhere p = 1 (score 0): skip the arithmetic
        score = np.zeros((n, t))
        score[live] = 1.0 - false_alarm_probability(
            current[live], self.k, np.broadcast_to(n_scanned[:, None], (n, t))[live]
        )
        alert_up = _excursion_alerts(up, self.h) & model.scanned
        alert_down = _excursion_alerts(down, self.h) & model.scanned
        alert = alert_up | alert_down
        p_value = np.ones(n)
        change = np.full(n, -1, dtype=np.int64)
        before, after = np.full(n, np.nan), np.full(n, np.nan)
        keys = ("cusum_max", "direction", "first_alert_index", "end_index", "shift_sigma")
        details = {key: np.full(n, np.nan) for key in keys}
        m_up = np.where(alert_up, up, -np.inf).max(axis=1)
        m_down = np.where(alert_down, down, -np.inf).max(axis=1)
        for i in np.flatnonzero(alert.any(axis=1)):  # a loop over alerting series only
            rising = bool(m_up[i] >= m_down[i])
            stat = up[i] if rising else down[i]
            flags = alert_up[i] if rising else alert_down[i]
            peak = int(np.argmax(np.where(flags, stat, -np.inf)))
            zeros_before = np.flatnonzero(stat[:peak] == 0.0)
            start = int(zeros_before[-1]) + 1 if zeros_before.size else 0
            start = likeliest_start(model.y[i] * (1.0 if rising else -1.0), start, peak)
            zeros_after = np.flatnonzero(stat[peak:] == 0.0)
            stop = peak + int(zeros_after[0]) if zeros_after.size else t  # exclusive
            run = np.zeros(t, dtype=bool)
            run[start:stop] = model.scanned[i, start:stop]
            start = int(np.flatnonzero(run)[0])  # the first present point after the last zero
            m = float(stat[peak])
            p_value[i] = float(false_alarm_probability(np.array(m), self.k, np.array(n_scanned[i])))
            change[i] = start
            before[i] = float(np.median(model.expected[i, run]))
            after[i] = float(np.median(batch.values[i, run]))
            details["cusum_max"][i] = m
            details["direction"][i] = 1.0 if rising else -1.0
            details["first_alert_index"][i] = float(start + np.argmax(flags[start:]))
            details["end_index"][i] = float(np.flatnonzero(run)[-1])
            details["shift_sigma"][i] = float(np.median(model.z[i, run]))
        details["lrv"] = model.lrv
        with np.errstate(divide="ignore", invalid="ignore"):
            effect = np.where(np.abs(before) > 0, (after - before) / np.abs(before), np.nan)
        return Detection(
            score=np.clip(score, 0.0, 1.0),
            alert=alert,
            p_value=p_value,
            change_index=change,
            effect=effect,
            before=before,
            after=after,
            details=details,
        )


def _tail(batch: SeriesBatch, first: int) -> SeriesBatch:
    """``batch`` without its first ``first`` points (the same object when ``first`` is 0)."""
    if first == 0:
        return batch
    base = batch.baseline
    if base is not None:
        base = Baseline(
            center=base.center[..., first:],
            spread=base.spread[..., first:],
            lower=base.lower[..., first:],
            upper=base.upper[..., first:],
            support=base.support[..., first:],
            method=base.method,
            series_methods=base.series_methods,
            seasonal=base.seasonal,
            series_seasonal=base.series_seasonal,
        )
    return SeriesBatch(
        keys=batch.keys,
        times_ns=batch.times_ns[first:],
        values=batch.values[:, first:],
        samples=batch.samples[:, first:],
        resolution_s=batch.resolution_s,
        baseline=base,
        window_start=batch.window_start - first,
    )


def _pad_front(det: Detection, first: int, t: int) -> Detection:
    """``det`` of a batch's last ``t - first`` points as a Detection of all ``t`` (nothing in front)."""
    if first == 0:
        return det
    n = det.score.shape[0]
    score = np.zeros((n, t))
    score[:, first:] = det.score
    alert = np.zeros((n, t), dtype=bool)
    alert[:, first:] = det.alert
    details = dict(det.details)
    for key in ("first_alert_index", "end_index"):
        details[key] = det.details[key] + first
    change = np.where(det.change_index >= 0, det.change_index + first, -1).astype(np.int64)
    return Detection(score, alert, det.p_value, change, det.effect, det.before, det.after, details)


def likeliest_start(y: FloatArray, start: int, peak: int) -> int:
    """The most likely start in [start, peak] of a rise of ``y`` that lasts to ``peak`` (NaN points skipped).

    Page's estimate, the CUSUM's last zero before its peak, starts the excursion at the first
    point where ``y`` exceeded the reference value ``k``, which noise does early: a shift of
    several ``k`` is often dated minutes before it began. The maximum-likelihood start of a shift
    of unknown size from the reference level (0) maximises ``S^2 / N`` with ``S`` the sum of the
    ``N`` points from the start to the peak (a change in mean of Gaussian points).
    """
    seg = y[start : peak + 1]
    ok = np.isfinite(seg)
    total = np.cumsum(np.where(ok, seg, 0.0)[::-1])[::-1]
    count = np.cumsum(ok[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.where((count > 0) & (total > 0), total * total / count, -np.inf)
    return start + int(np.argmax(fit)) if np.isfinite(fit).any() else start


def two_sided_cusum(y: FloatArray, k: float | FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return (S+, S-), Page's upper and lower CUSUM of each row of ``y`` with reference value ``k``.

    ``S_t = max(0, S_{t-1} + y_t - k)`` from ``S_{-1} = 0`` equals ``W_t - min(0, min_{u<=t} W_u)``
    with ``W`` the cumulative sum of ``y - k`` (Lindley's recursion solved), so both sides
    are computed without a loop over time. A NaN point (a gap, or outside the window)
    holds both statistics where they are. ``k`` may vary per point (broadcast against ``y``).
    """
    hold = np.isnan(y)
    out: list[FloatArray] = []
    for sign in (1.0, -1.0):
        steps = np.where(hold, 0.0, sign * y - k)
        w = np.cumsum(steps, axis=1)
        low = np.minimum(np.minimum.accumulate(w, axis=1), 0.0)
        out.append(np.maximum(w - low, 0.0))
    return out[0], out[1]


def false_alarm_probability(m: FloatArray, k: float, n: FloatArray | IntArray) -> FloatArray:
    """Return P(either side of a two-sided CUSUM of ``n`` N(0, 1) points reaches ``m``), Siegmund's approximation.

    ``ARL(m) = (exp(2 k b) - 2 k b - 1) / (2 k^2)``, ``b = m + 1.166``, one side; run length
    approximately exponential, so over ``n`` points and two sides ``1 - exp(-2 n / ARL)``.
    Computed as ``2 k^2 n e^{-a} / (1 - (1 + a) e^{-a})`` with ``a = 2 k b`` so that it does
    not overflow for large ``m``. 1.0 where ``n`` is 0.
    """
    a = 2.0 * k * (np.maximum(np.asarray(m, dtype=np.float64), 0.0) + SIEGMUND_CORRECTION)
    decay = np.exp(-a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rate = 2.0 * k * k * np.asarray(n, dtype=np.float64) * decay / (1.0 - (1.0 + a) * decay)
        p = -np.expm1(-2.0 * rate)
    out: FloatArray = np.where(np.asarray(n) > 0, np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0), 1.0)
    return out


def _excursion_alerts(stat: FloatArray, h: float) -> BoolArray:
    """Points of each row that lie in an excursion of ``stat`` (above 0) which has already reached ``h``."""
    idx = np.arange(stat.shape[1])
    last_zero = np.maximum.accumulate(np.where(stat == 0.0, idx, -1), axis=1)
    last_cross = np.maximum.accumulate(np.where(stat >= h, idx, -1), axis=1)
    out: BoolArray = last_cross > last_zero
    return out
