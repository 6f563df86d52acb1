"""Local-linear-trend Kalman filter: level anomalies from innovations, slow drifts from the slope."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from analysis.baselines import MAD_TO_SIGMA, auto_baseline
from detectors.base import Detection, Detector, FloatArray, SeriesBatch, level_change
from detectors.state_space_model import (
    DAY_S,
    LOG_FLOOR,
    SHORT_LAG_S,
    SLOPE_PRIOR_VAR,
    SPREAD_TOLERANCE,
    Model,
    history_length,
    initial_level,
    robust_noise,
    seasonal_term,
)

__all__ = ["StateSpace"]

IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class _Filtered:
    """What the filter pass leaves for the decision rule."""

    innov_stat: FloatArray
    """[n, t] sqrt(m) * smallest same-sign |innovation| of the last m valid points (0 when none)."""
    innov_alarm: BoolArray
    """[n, t] points of an m-run of same-sign innovations beyond the threshold."""
    slope_z: FloatArray
    """[n, t] filtered slope over its null standard error (predicted through gaps, NaN before the start)."""
    slope: FloatArray
    """[n] filtered slope at the last valid point (standardised units per step)."""
    level: FloatArray
    """[n] filtered level at the last valid point (standardised units)."""
    huber_ratio: FloatArray
    """[n] >= 1: mean psi(z)^2 of the history innovations over its value for normal data."""


@dataclass(frozen=True)
class StateSpace(Detector):
    """Return level anomalies and slow drifts from a robust local-linear-trend Kalman filter.

    Model (Harvey 1989, "Forecasting, Structural Time Series Models and the Kalman
    Filter"; Durbin & Koopman 2012, "Time Series Analysis by State Space Methods"):
    ``y_t = mu_t + eps_t``, ``mu_t+1 = mu_t + nu_t + xi_t``, ``nu_t+1 = nu_t + zeta_t``.
    ``y`` is ``log(x + 1e-3 * median)`` for positive kinds (latency, histogram quantiles,
    rate: relative changes, any scale) and ``x`` for gauges. Gaps (NaN, ``samples <= 0``,
    negative values of positive kinds) are skipped: the state is predicted through them; a
    positive series without a positive value in its history is skipped whole.

    Seasonality comes from ``batch.baseline`` (``auto_baseline`` when None). Where a
    series' baseline is ``seasonal(period=P, ...)`` the filter sees ``y - center + level``,
    ``level`` being the trailing mean of ``center`` over one period: the daily shape goes,
    a trend stays (the median of past seasons lags a drift; its trailing mean lags the same).
    Points whose centre is not seasonal (``support`` above seasons x (2 tolerance + 1):
    ``auto_baseline``'s trailing stand-in for the first periods) are skipped, as a raw daily
    cycle would read as trends. Any other baseline: no seasonal term.

    Variances come from the history (before ``window_start``; the whole series when it is
    0) by robust moments, not a fragile maximum likelihood. Noise ``s^2``: half the squared
    1.4826 * MAD of differences at lag 1 and at one hour, the larger (the walk's share
    removed); at least half the smallest nonzero step (quantised values) and 0.1 % for
    logs. Level walk ``q``: differences of block means vary by ``2 s^2 / B + q (2 B^2 + 1) /
    (3 B)``; ``q`` is the excess beyond five standard errors (B: 30 blocks, at most a quarter
    of ``trend_window_s``). The slope variance is a design choice, ``q_zeta = (resolution_s /
    trend_window_s)^4`` of the noise: the slope is then a local fit over about
    ``trend_window_s`` (the smooth-trend model's equivalent kernel, Silverman 1984). The
    update is Huber-clipped at ``huber_c`` (Masreliez & Martin 1977): one outlier moves the
    state by at most ``huber_c`` sigmas' worth.

    Decision rules, at valid points from ``window_start`` on after ``burn_in`` valid points:

    - anomaly / level change: ``m_innovations`` consecutive valid standardised innovations
      ``v_t / sqrt(F_t)`` of one sign beyond ``innovation_z``. The run's points alert and the
      level restarts at the last one (an intervention, so a new level is not read as a
      trend). Statistic: ``sqrt(m) * min |z|`` of the run, never above the Stouffer sum of m
      independent N(0, 1) innovations under the null.
    - slow drift: the filtered slope over its standard error beyond ``trend_z`` for at least
      ``trend_sustain_s``. The standard error is exact for the filter's own gains when the
      true slope is zero (the error recursion of a filter run with a slope noise the data
      lack: ``S' = (I - K Z) S (I - K Z)' + K K'``, then ``T S T' + diag(q, 0)``), times the
      largest of: the Huber ratio of the history innovations (heavy tails), the
      block-mean variance left unexplained at one hour (correlated noise, shrunk by two
      standard errors), and ``(spread / 2)^2`` of the history's own slope statistics (a
      walk the moments missed). Each factor is at least 1. A level walking by ~1 %/sqrt(day)
      on 5 % noise is a drift at this sensitivity: a few days cannot tell them apart.

    ``p_value``: two-sided normal tail of the strongest statistic at an alerting point,
    Sidak-corrected over the ``2 N`` tests of the series (N tested points, two statistics
    each): ``1 - (1 - p)^(2N)``; 1.0 without alert. Exact for independent tests, conservative
    for the positively dependent ones here (neighbouring slopes nearly coincide); Gaussian
    tails are assumed, heavier real tails are what the persistence rules guard against.
    ``score``: ``1 -`` the corrected p of each point (0 where untested). ``change_index``: the
    first point of the alerting run holding the strongest statistic. ``details``:
    ``trend_per_day`` (the filtered slope at the last valid point as a relative change per
    day, 0.01 = +1 %/day; gauges relative to the level's magnitude; a filtered slope lags a
    fresh drift: two days after detection it reads about 70 % of the rate), ``trend_z`` (its
    statistic), ``noise_sigma`` (in the transformed unit) and ``alarm_kind`` (0 none,
    1 anomaly / level, 2 drift).

    Parameters (every threshold is in noise sigmas, so the defaults fit any scale):
    ``trend_window_s`` (s, 2 days) the slope's memory; ``trend_z`` (5.0) and
    ``trend_sustain_s`` (s, 1 h) the drift rule; ``innovation_z`` (4.0) and ``m_innovations``
    (5 points) the anomaly rule; ``huber_c`` (2.5) the clipping; ``burn_in`` (30 valid points);
    ``drift_history_s`` (s, 2 days) the history a drift claim needs on a series whose baseline is
    not seasonal: seasonality is detected over two cycles (``analysis.baselines``), so with less
    history a daily ramp cannot be told from a trend and the detector claims no trend at all
    (levels still alarm); a seasonal baseline has taken the day's shape out already.
    The defaults catch +1 %/day on 5 % noise at 5 minutes within 3 days (median 2.1) and keep
    white, Student-t, AR(1) and Poisson noise quiet.
    """

    name: ClassVar[str] = "state_space"
    kinds: ClassVar[tuple[str, ...]] = ("latency_", "gauge", "histogram_", "rate")

    trend_window_s: float = 2 * DAY_S
    trend_z: float = 5.0
    trend_sustain_s: float = 3_600.0
    innovation_z: float = 4.0
    m_innovations: int = 5
    huber_c: float = 2.5
    burn_in: int = 30
    drift_history_s: float = 2 * DAY_S

    def detect(self, batch: SeriesBatch) -> Detection:
        """Return the anomalies and drifts of every series of ``batch``."""
        n, t = batch.shape
        if n == 0 or t == 0:
            return Detection.quiet((n, t))
        model = self._model(batch)
        filtered = self._filter(model, batch.window_start, batch.resolution_s)
        return self._decide(batch, model, filtered)

    # -- model of the signal ----------------------------------------------------------

    def _model(self, batch: SeriesBatch) -> Model:
        n, t = batch.shape
        raw = np.asarray(batch.values, dtype=np.float64)
        gap = ~np.isfinite(raw) | (np.asarray(batch.samples, dtype=np.float64) <= 0)
        n_hist = history_length(t, batch.window_start)
        positive = bool(batch.keys) and batch.keys[0].kind != "gauge"
        x = np.where(gap, np.nan, raw)
        delta = np.zeros((n, 1))
        y = x
        if positive:
            x = np.where(x >= 0, x, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                positive_hist = np.where(x[:, :n_hist] > 0, x[:, :n_hist], np.nan)
                delta = LOG_FLOOR * np.nanmedian(positive_hist, axis=1, keepdims=True)
            y = np.log(x + delta)
        baseline = batch.baseline if batch.baseline is not None else auto_baseline(x, resolution_s=batch.resolution_s)
        y = y - seasonal_term(baseline, (n, t), delta, positive)
        res = max(batch.resolution_s, 1)
        max_block = max(2, round(self.trend_window_s / res / 4))
        seasonal = np.array([s is not None for s in baseline.seasonality(n)], dtype=bool)
        model = robust_noise(y, n_hist, max(1, round(SHORT_LAG_S / res)), max_block, positive)
        return replace(model, seasonal=seasonal)

    # -- filter -----------------------------------------------------------------------

    def _filter(self, model: Model, window_start: int, resolution_s: int) -> _Filtered:
        n, t = model.y.shape
        q_slope = (max(resolution_s, 1) / max(self.trend_window_s, resolution_s, 1)) ** 4
        # Time-major copies: each step reads and writes one contiguous row of n series.
        y = np.ascontiguousarray(model.y.T)
        valid = np.isfinite(y)
        eligible = valid & (np.cumsum(valid, axis=0) > self.burn_in)  # restarts and tests after the burn-in
        n_hist = history_length(t, window_start)
        state = _TrendState(initial_level(model.y))
        runs = _InnovationRuns(n, max(1, self.m_innovations))
        innov_stat = np.zeros((t, n))
        innov_alarm = np.zeros((t, n), dtype=bool)
        slope_z = np.full((t, n), np.nan)
        started = np.zeros(n, dtype=bool)
        last_slope, last_level = np.full(n, np.nan), np.full(n, np.nan)
        psi_sum, psi_cnt = np.zeros(n), np.zeros(n)
        for j in range(t):  # vectorised across series; the recursion is sequential in time
            ok = valid[j]
            started |= ok
            z, zc = state.update(y[j], ok, self.huber_c)
            r = np.flatnonzero(eligible[j])
            if r.size:
                stat = runs.push(r, z[r], j)
                innov_stat[j, r] = stat
                fired = r[stat >= runs.root_m * self.innovation_z]
                if fired.size:
                    for tk in runs.times(fired):  # the m run positions, vectorised over firing series
                        innov_alarm[tk, fired] = True
                        innov_stat[tk, fired] = np.maximum(innov_stat[tk, fired], innov_stat[j, fired])
                    runs.clear(fired)
                    state.restart_level(fired, y[j, fired])
                if j < n_hist:
                    psi_sum[r] += zc[r] ** 2
                    psi_cnt[r] += 1.0
            slope_z[j] = np.where(started, state.slope_z(), np.nan)
            np.copyto(last_slope, state.a1, where=ok)
            np.copyto(last_level, state.a0, where=ok)
            state.predict(started, model.q_level, q_slope)
        ratio = np.where(psi_cnt > 0, psi_sum / np.maximum(psi_cnt, 1.0) / _huber_second_moment(self.huber_c), 1.0)
        return _Filtered(innov_stat.T, innov_alarm.T, slope_z.T, last_slope, last_level, np.maximum(ratio, 1.0))

    # -- decision rule ----------------------------------------------------------------

    def _decide(self, batch: SeriesBatch, model: Model, f: _Filtered) -> Detection:
        n, t = batch.shape
        valid = np.isfinite(model.y)
        warm = valid & (np.cumsum(valid, axis=1) > self.burn_in)
        tested = warm & (np.arange(t) >= batch.window_start)
        n_hist = history_length(t, batch.window_start)
        zb = f.slope_z / np.sqrt(_slope_inflation(model, f, warm[:, :n_hist]))
        # A trend needs a history that can tell it from the day's own shape (module docstring).
        known = model.seasonal if model.seasonal is not None else np.zeros(n, dtype=bool)
        may_drift = known | (n_hist * batch.resolution_s >= self.drift_history_s)
        zb = np.where(may_drift[:, np.newaxis], zb, 0.0)
        sustain = max(1, math.ceil(self.trend_sustain_s / max(batch.resolution_s, 1)))
        alert = tested & (f.innov_alarm | _sustained(zb, self.trend_z, sustain))
        strength = np.where(tested, np.maximum(f.innov_stat, np.abs(np.nan_to_num(zb))), 0.0)
        n_tests = 2.0 * tested.sum(axis=1)
        score = np.zeros((n, t))
        score[tested] = 1.0 - _sidak(strength[tested], np.broadcast_to(n_tests[:, np.newaxis], (n, t))[tested])
        rows = np.arange(n)
        any_alert = alert.any(axis=1)
        best = np.argmax(np.where(alert, strength, -1.0), axis=1)
        change_index = np.full(n, -1, dtype=np.int64)
        for i in np.flatnonzero(any_alert):  # a loop over alerting series only
            # Back from the strongest point to the last valid point that does not alert (gaps do not count).
            breaks = np.flatnonzero(valid[i, : best[i]] & ~alert[i, : best[i]])
            first = int(breaks[-1]) + 1 if breaks.size else 0
            change_index[i] = first + int(np.argmax(alert[i, first:]))
        before, after, effect = level_change(
            np.where(valid, np.asarray(batch.values, np.float64), np.nan), change_index
        )
        last = t - 1 - np.argmax(valid[:, ::-1], axis=1)
        is_level = f.innov_stat[rows, best] >= np.abs(zb[rows, best])
        details = {
            "trend_per_day": _trend_per_day(batch, model, f),
            "trend_z": np.where(valid.any(axis=1), zb[rows, last], np.nan),
            "noise_sigma": model.sigma.copy(),
            "alarm_kind": np.where(any_alert, np.where(is_level, 1.0, 2.0), 0.0),
        }
        p_value = np.where(any_alert, _sidak(strength[rows, best], n_tests), 1.0)
        return Detection(score, alert, p_value, change_index, effect, before, after, details)


class _TrendState:
    """Local-linear-trend state of n series: filtered estimates, their covariance ``P`` under the model, and
    ``S``, the covariance of the same estimates' errors when the true slope is 0 (for the slope's null)."""

    def __init__(self, level: FloatArray) -> None:
        n = level.shape[0]
        self.a0, self.a1 = level.copy(), np.zeros(n)
        self.p00, self.p01, self.p11 = np.ones(n), np.zeros(n), np.full(n, SLOPE_PRIOR_VAR)
        self.s00, self.s01, self.s11 = np.ones(n), np.zeros(n), np.zeros(n)

    def update(self, y: FloatArray, ok: BoolArray, clip: float) -> tuple[FloatArray, FloatArray]:
        """Take one observation per series (where ``ok``); return (standardised innovation, clipped one)."""
        f = self.p00 + 1.0
        sf = np.sqrt(f)
        z = (y - self.a0) / sf
        zc = np.where(ok, np.clip(z, -clip, clip), 0.0)
        g0 = np.where(ok, self.p00 / f, 0.0)
        g1 = np.where(ok, self.p01 / f, 0.0)
        step = zc * sf
        self.a0 += g0 * step
        self.a1 += g1 * step
        self.p11 -= g1 * self.p01
        self.p01 *= 1.0 - g0
        self.p00 *= 1.0 - g0
        # S' = (I - K Z) S (I - K Z)' + K K': the error of this gain when the data have no trend.
        self.s11 += g1 * g1 * (self.s00 + 1.0) - 2.0 * g1 * self.s01
        self.s01 = (1.0 - g0) * (self.s01 - g1 * self.s00) + g0 * g1
        self.s00 = (1.0 - g0) ** 2 * self.s00 + g0 * g0
        return z, zc

    def restart_level(self, rows: IntArray, y: FloatArray) -> None:
        """Re-initialise the level of ``rows`` at ``y`` (one observation's worth of uncertainty)."""
        self.a0[rows] = y
        self.p00[rows], self.p01[rows], self.s00[rows], self.s01[rows] = 1.0, 0.0, 1.0, 0.0

    def slope_z(self) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            out: FloatArray = np.where(self.s11 > 0, self.a1 / np.sqrt(self.s11), 0.0)
        return out

    def predict(self, started: BoolArray, q_level: FloatArray, q_slope: float) -> None:
        """One step ahead (series that have not started keep their initial state)."""
        go = np.where(started, 1.0, 0.0)
        self.a0 += go * self.a1
        self.p00 += go * (2.0 * self.p01 + self.p11 + q_level)
        self.p01 += go * self.p11
        self.p11 += go * q_slope
        self.s00 += go * (2.0 * self.s01 + self.s11 + q_level)
        self.s01 += go * self.s11


class _InnovationRuns:
    """The last m standardised innovations of each series (a ring buffer, [m, n]) and the times they came at."""

    def __init__(self, n: int, m: int) -> None:
        self.z = np.zeros((m, n))
        self.t = np.zeros((m, n), dtype=np.intp)
        self.pos = np.zeros(n, dtype=np.intp)
        self.m = m
        self.root_m = math.sqrt(m)

    def push(self, rows: IntArray, z: FloatArray, j: int) -> FloatArray:
        """Add ``z`` at time ``j`` for ``rows``; return sqrt(m) * smallest same-sign |z| of their last m (>= 0)."""
        p = self.pos[rows]
        self.z[p, rows] = z
        self.t[p, rows] = j
        self.pos[rows] = (p + 1) % self.m
        recent = self.z if rows.size == self.z.shape[1] else self.z[:, rows]  # all rows: no gather
        run = np.maximum(recent.min(axis=0), -recent.max(axis=0))
        out: FloatArray = self.root_m * np.maximum(run, 0.0)
        return out

    def times(self, rows: IntArray) -> list[IntArray]:
        return [self.t[k, rows] for k in range(self.m)]

    def clear(self, rows: IntArray) -> None:
        self.z[:, rows] = 0.0


def _slope_inflation(model: Model, f: _Filtered, hist: BoolArray) -> FloatArray:
    """[n, 1] factor (>= 1) on the slope's null variance: heavy tails, correlated noise, a wandering history.

    ``hist`` [n, h] marks the warm history points among the first h of each series.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = np.abs(f.slope_z[:, : hist.shape[1]])
        spread = MAD_TO_SIGMA * np.nanmedian(np.where(hist, z, np.nan), axis=1)
    history = np.nan_to_num(spread / SPREAD_TOLERANCE) ** 2
    factor = np.maximum(np.maximum(f.huber_ratio, model.low_freq_ratio), np.maximum(history, 1.0))
    out: FloatArray = factor[:, np.newaxis]
    return out


def _trend_per_day(batch: SeriesBatch, model: Model, f: _Filtered) -> FloatArray:
    """[n] filtered slope at the last valid point as a relative change per day (NaN when undefined)."""
    per_day = f.slope * model.sigma * (DAY_S / max(batch.resolution_s, 1))
    if not batch.keys or batch.keys[0].kind != "gauge":
        out: FloatArray = np.expm1(per_day)
        return out
    level = np.abs(f.level * model.sigma + model.offset)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel: FloatArray = np.where(level > 0, per_day / level, np.nan)
    return rel


def _sustained(z: FloatArray, threshold: float, length: int) -> BoolArray:
    """Points in runs of at least ``length`` consecutive ``z >= threshold`` (or all ``<= -threshold``), per row."""
    n, t = z.shape
    side = np.zeros((n, t), dtype=np.int8)
    side[z >= threshold] = 1
    side[z <= -threshold] = -1
    change = np.ones((n, t), dtype=bool)
    change[:, 1:] = side[:, 1:] != side[:, :-1]
    segment = np.cumsum(change.ravel()) - 1  # a new segment at each row start and at each change of side
    run = np.bincount(segment)[segment].reshape(n, t)
    out: BoolArray = (side != 0) & (run >= length)
    return out


def _sidak(z: FloatArray, n_tests: FloatArray) -> FloatArray:
    """Sidak-corrected two-sided normal tail of ``z`` over ``n_tests`` tests: 1 - (1 - p)^n, computed stably."""
    p = 2.0 * ndtr(-np.maximum(z, 1e-12))
    out: FloatArray = np.clip(-np.expm1(n_tests * np.log1p(-p)), 0.0, 1.0)
    return out


def _huber_second_moment(c: float) -> float:
    """E[min(Z^2, c^2)] for Z ~ N(0, 1)."""
    phi = math.exp(-c * c / 2.0) / math.sqrt(2.0 * math.pi)
    tail = float(ndtr(-c))
    return (1.0 - 2.0 * tail) - 2.0 * c * phi + 2.0 * c * c * tail
