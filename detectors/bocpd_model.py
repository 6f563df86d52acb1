"""The model half of Bayesian online change-point detection (Adams & MacKay 2007): conjugate
predictive likelihoods (Normal-Gamma, Poisson-Gamma, Beta-Binomial), the run-length filter, and
the reference each series is standardised by (robust centre and scale, serial dependence,
seasonal profile). The decision rule that turns its run-length posterior into alerts is
``detectors.bocpd.BayesianChangePoint``.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

from analysis.baselines import detect_seasonality_per_series
from analysis.robust import nanmedian_last, robust_sigma
from detectors.base import BoolArray, FloatArray, SeriesBatch

_MIN_REFERENCE = 30
"""A series needs this many present history points to standardise on its history alone."""
_CLIP_DIFFERENCES = 5.0
"""Differences are winsorised at this many robust sigmas before their mean square is taken."""
_MAX_LOG_ODDS = 700.0
"""Posterior log-odds are capped here (exp(700) ~ 1e304) so they stay finite."""


class ConjugateModel(Protocol):
    """The observation model of one segment: predictive densities and sufficient statistics per run length.

    Column ``j`` (0 .. R) of every array holds the posterior after the last ``j`` present
    observations of each series (column 0 is the prior; column R, the cap, is the last R).
    """

    def log_predictive(self, t: int) -> FloatArray:
        """``[series, R + 1]`` log predictive density of observation ``t`` under each run length.

        Terms that depend on the observation only (e.g. ``log x!``) are dropped: they cancel
        in the run-length posterior and in every posterior odds computed from it.
        """
        ...

    def update(self, t: int, present: BoolArray) -> None:
        """Shift the runs by one with observation ``t`` (rows not ``present`` keep their state)."""
        ...


class NormalGamma:
    """Gaussian segments with unknown mean and precision (Normal-Gamma prior, Student-t predictive)."""

    def __init__(
        self, x: FloatArray, r_max: int, *, kappa0: float, alpha0: float, beta0: FloatArray, max_dof: float
    ) -> None:
        self.x = np.nan_to_num(x)
        j = np.arange(r_max + 1, dtype=np.float64)
        kappa, alpha = kappa0 + j, alpha0 + 0.5 * j
        self.g = kappa / (kappa + 1.0)
        self.h = 1.0 / (kappa + 1.0)
        # Student-t with location mu, scale^2 beta / (alpha g) and nu = min(2 alpha, max_dof) degrees of freedom
        nu = np.minimum(2.0 * alpha, max_dof)
        self.a = 0.5 * (nu + 1.0)
        self.k = 2.0 * alpha / nu
        self.c = gammaln(self.a) - gammaln(0.5 * nu) - 0.5 * np.log(np.pi * nu / (alpha * self.g))
        self.beta0 = beta0
        self.mu = np.zeros((x.shape[0], r_max + 1))
        self.beta = np.repeat(beta0[:, np.newaxis], r_max + 1, axis=1)
        self._d = np.empty_like(self.mu)
        self._u = np.empty_like(self.mu)

    def log_predictive(self, t: int) -> FloatArray:
        np.subtract(self.x[:, t, np.newaxis], self.mu, out=self._d)
        np.multiply(self._d, self._d, out=self._u)
        self._u *= 0.5 * self.g  # u = kappa d^2 / (2 (kappa + 1)), the increment of beta
        out = np.divide(self._u, self.beta)
        out *= self.k
        np.log1p(out, out=out)
        out *= -self.a
        out -= 0.5 * np.log(self.beta)
        out += self.c
        return out

    def update(self, t: int, present: BoolArray) -> None:
        mu, beta = np.empty_like(self.mu), np.empty_like(self.beta)
        np.multiply(self._d[:, :-1], self.h[:-1], out=mu[:, 1:])
        mu[:, 1:] += self.mu[:, :-1]
        np.add(self.beta[:, :-1], self._u[:, :-1], out=beta[:, 1:])
        mu[:, 0], beta[:, 0] = 0.0, self.beta0
        if not present.all():
            mu[~present], beta[~present] = self.mu[~present], self.beta[~present]
        self.mu, self.beta = mu, beta


class _LogGammaTrack:
    """A positive parameter x per run length, with lgamma(x) cached.

    ``rise(k)`` returns lgamma(x + k) - lgamma(x) (the log rising factorial of the
    predictive densities); lgamma(x + k) is kept, because after ``update`` it is lgamma of
    the grown runs, so each step costs one lgamma per element instead of two.
    """

    def __init__(self, x0: FloatArray, cols: int) -> None:
        self.x0, self.g0 = x0, gammaln(x0)
        self.x = np.repeat(x0[:, np.newaxis], cols, axis=1)
        self.g = np.repeat(self.g0[:, np.newaxis], cols, axis=1)
        self._gk = self.g

    def rise(self, k: FloatArray) -> FloatArray:
        self._gk = gammaln(self.x + k)
        out: FloatArray = self._gk - self.g
        return out

    def update(self, k: FloatArray, present: BoolArray) -> None:
        x, g = np.empty_like(self.x), np.empty_like(self.g)
        np.add(self.x[:, :-1], k, out=x[:, 1:])
        g[:, 1:] = self._gk[:, :-1]
        x[:, 0], g[:, 0] = self.x0, self.g0
        if not present.all():
            x[~present], g[~present] = self.x[~present], self.g[~present]
        self.x, self.g = x, g


class PoissonGamma:
    """Poisson segments, c_t ~ Poisson(lambda s_t) with a known exposure s_t, Gamma(a, b) prior on lambda.

    The predictive is negative-binomial: log p = lgamma(c + a) - lgamma(a) + a log(b / (b + s))
    - c log(b + s) (+ terms of c and s only); the update is a += c, b += s.
    """

    def __init__(
        self, c: FloatArray, exposure: FloatArray | None, r_max: int, *, a0: FloatArray, b0: FloatArray
    ) -> None:
        self.c = np.nan_to_num(c)
        self.s = None if exposure is None else np.nan_to_num(exposure, nan=1.0)
        self.a = _LogGammaTrack(a0, r_max + 1)
        self.b0 = b0
        self.b = b0[:, np.newaxis] + np.arange(r_max + 1, dtype=np.float64)
        # without an exposure b depends on the run length only: its logs are computed once
        self.log_q = np.log(self.b / (self.b + 1.0))
        self.log_b1 = np.log(self.b + 1.0)

    def log_predictive(self, t: int) -> FloatArray:
        c = self.c[:, t, np.newaxis]
        out = self.a.rise(c)
        if self.s is None:
            out += self.a.x * self.log_q
            out -= c * self.log_b1
        else:
            log_bs = np.log(self.b + self.s[:, t, np.newaxis])
            out += self.a.x * (np.log(self.b) - log_bs)
            out -= c * log_bs
        return out

    def update(self, t: int, present: BoolArray) -> None:
        self.a.update(self.c[:, t, np.newaxis], present)
        if self.s is not None:
            b = np.empty_like(self.b)
            np.add(self.b[:, :-1], self.s[:, t, np.newaxis], out=b[:, 1:])
            b[:, 0] = self.b0
            if not present.all():
                b[~present] = self.b[~present]
            self.b = b


class BetaBinomial:
    """Binomial segments (e failed of n) with a Beta(a, b) prior on the failure probability.

    log p = [lgamma(e + a) - lgamma(a)] + [lgamma(f + b) - lgamma(b)] - [lgamma(n + a + b)
    - lgamma(a + b)] (+ log C(n, e), a term of the observation only), f = n - e; the update
    is a += e, b += f.
    """

    def __init__(self, e: FloatArray, n: FloatArray, r_max: int, *, a0: FloatArray, b0: FloatArray) -> None:
        self.e, self.f = np.nan_to_num(e), np.nan_to_num(n - e)
        self.n = self.e + self.f
        self.a = _LogGammaTrack(a0, r_max + 1)
        self.b = _LogGammaTrack(b0, r_max + 1)
        self.ab = _LogGammaTrack(a0 + b0, r_max + 1)

    def log_predictive(self, t: int) -> FloatArray:
        e, f, n = self.e[:, t, np.newaxis], self.f[:, t, np.newaxis], self.n[:, t, np.newaxis]
        out = self.a.rise(e)
        out += self.b.rise(f)
        out -= self.ab.rise(n)
        return out

    def update(self, t: int, present: BoolArray) -> None:
        self.a.update(self.e[:, t, np.newaxis], present)
        self.b.update(self.f[:, t, np.newaxis], present)
        self.ab.update(self.n[:, t, np.newaxis], present)


def run_length_filter(
    model: ConjugateModel,
    present: BoolArray,
    temper: FloatArray,
    *,
    hazard: float,
    r_max: int,
    recent: int,
    start: int = 0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per point (``[series, times]`` each): P(a change within the last ``recent`` points), its
    log-odds, and the log-odds of a change within the last ``r_max`` points.

    The recursion of Adams & MacKay (2007) in log space, one time step at a time for all
    series at once. ``lw[:, L]`` is log P(the current segment has L points | data); a new
    observation either extends the segment (probability 1 - hazard) or starts a new one
    (hazard). Run lengths are capped at ``r_max``: the mass of longer runs is merged into
    the cap, whose model is fitted to the last ``r_max`` points (a sliding window), so the
    cost is O(series x r_max) per step and a long run forgets its oldest points. The first
    segment of each series (which starts at its first present point, not at a change) is
    never counted as a change. Gaps (not ``present``) leave the state unchanged and score 0,
    as do the points before ``start``, where the recursion begins.
    """
    n_series, n_times = present.shape
    cols = r_max + 1
    log_h, log_1mh = math.log(hazard), math.log1p(-hazard)
    # lw[:, L] = log P(L | data) + log(1 - hazard): the log prior that the run grows, kept with it
    lw = np.full((n_series, cols), -np.inf)
    lw[:, 0] = log_1mh  # before the first observation: an empty segment, certainly
    seen = np.zeros(n_series, dtype=np.int64)  # present points so far = length of the first segment
    rows = np.arange(n_series)
    score = np.zeros((n_series, n_times))
    odds_recent = np.full((n_series, n_times), -_MAX_LOG_ODDS)
    odds_any = np.full((n_series, n_times), -_MAX_LOG_ODDS)
    for t in range(start, n_times):  # sequential in time, vectorised over series and run lengths
        here = present[:, t]
        if not here.any():
            continue
        lj = model.log_predictive(t)
        lj *= temper[:, np.newaxis]
        # prior over the number of points before x_t in its segment: 0 = x_t starts a new one
        lj[:, 1:] += lw[:, 1:]
        lj[:, 0] += np.logaddexp(log_h, lw[:, 0])
        peak = lj.max(axis=1, keepdims=True)
        lj -= peak
        mass = np.exp(lj)
        total = mass.sum(axis=1)
        # new lengths 1..R from 0..R-1 points before, the cap also keeps its own mass
        norm = (log_1mh - np.log(total))[:, np.newaxis]
        new = np.empty_like(lw)
        new[:, 0] = -np.inf
        np.add(lj[:, :-1], norm, out=new[:, 1:])
        new[:, -1] = np.logaddexp(lj[:, -2], lj[:, -1]) + norm[:, 0]
        first = mass[rows, np.minimum(seen, r_max)]  # the first segment: no change so far
        recent_change = np.maximum(mass[:, :recent].sum(axis=1) - np.where(seen < recent, first, 0.0), 0.0)
        no_change = mass[:, -2:].sum(axis=1) + np.where(seen < r_max - 1, first, 0.0)
        with np.errstate(divide="ignore"):
            lo_recent = np.log(recent_change) - np.log(np.maximum(total - recent_change, 0.0))
            lo_any = np.log(np.maximum(total - no_change, 0.0)) - np.log(no_change)
        score[:, t] = np.where(here, recent_change / total, 0.0)
        odds_recent[:, t] = np.where(here, np.clip(lo_recent, -_MAX_LOG_ODDS, _MAX_LOG_ODDS), -_MAX_LOG_ODDS)
        odds_any[:, t] = np.where(here, np.clip(lo_any, -_MAX_LOG_ODDS, _MAX_LOG_ODDS), -_MAX_LOG_ODDS)
        lw = new if here.all() else np.where(here[:, np.newaxis], new, lw)
        seen += here
        model.update(t, here)
    return score, odds_recent, odds_any


def reference(y: FloatArray, window_start: int) -> FloatArray:
    """``y`` restricted to each series' reference points: its history, or all of it when the history is short."""
    if window_start <= 0:
        return y
    history = np.full_like(y, np.nan)
    history[:, :window_start] = y[:, :window_start]
    short = (~np.isnan(history)).sum(axis=1) < _MIN_REFERENCE
    return np.where(short[:, np.newaxis], y, history)


def center_scale(ref: FloatArray, *, log_domain: bool) -> tuple[FloatArray, FloatArray]:
    """(median, robust sigma) of each row: 1.4826 MAD, else 1.2533 x mean absolute deviation, floored.

    The floor is 1e-3 (0.1 %) on log values, 1e-3 x |median| on values (as in
    ``analysis.baselines``), so that a flat reference does not give a zero scale.
    """
    center, scale = robust_sigma(ref)
    center = np.nan_to_num(center)
    floor = np.full_like(center, 1e-3) if log_domain else np.maximum(1e-3 * np.abs(center), 1e-300)
    return center, np.maximum(np.nan_to_num(scale), floor)


def dependence(ref: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(variance, lag-1 autocorrelation in [0, 0.9]) of each row, from squared differences at lags 1 and 2.

    For a stationary AR(1)-like series, D_k = E[(y_t - y_t-k)^2] = 2 var (1 - rho^k), so
    rho = D_2 / D_1 - 1 and var = D_1 / (2 (1 - rho)). Differences ignore the level, so a
    level shift inside the reference barely moves either (a median/MAD would see two modes).
    The ratio is noisy for sparse, discrete data (mostly zeros), so rho is the smaller of
    it and the ordinary lag-1 correlation (which a level shift inflates instead).
    """

    def mean_sq_diff(lag: int) -> FloatArray:
        d = ref[:, lag:] - ref[:, :-lag]
        center, scale = center_scale(d, log_domain=False)
        reach = (_CLIP_DIFFERENCES * scale)[:, np.newaxis]
        d = np.clip(d - center[:, np.newaxis], -reach, reach)  # a few outliers or steps cannot dominate
        ok = ~np.isnan(d)
        out: FloatArray = np.where(ok, d * d, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
        return out

    if ref.shape[1] < 3:
        return np.ones(ref.shape[0]), np.zeros(ref.shape[0])
    d1, d2 = mean_sq_diff(1), mean_sq_diff(2)
    center, scale = center_scale(ref, log_domain=False)
    reach = (_CLIP_DIFFERENCES * scale)[:, np.newaxis]
    y = np.clip(ref - center[:, np.newaxis], -reach, reach)
    a, b = y[:, :-1], y[:, 1:]
    both = ~(np.isnan(a) | np.isnan(b))
    count = np.maximum(both.sum(axis=1), 1)
    da = np.where(both, a - (np.where(both, a, 0.0).sum(axis=1) / count)[:, np.newaxis], 0.0)
    db = np.where(both, b - (np.where(both, b, 0.0).sum(axis=1) / count)[:, np.newaxis], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_diff = np.nan_to_num(d2 / d1 - 1.0)
        rho_corr = np.nan_to_num((da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1)))
    rho = np.clip(np.minimum(rho_diff, rho_corr), 0.0, 0.9)
    return d1 / (2.0 * (1.0 - rho)), rho


def _seasonal_profile(ref: FloatArray, period: int) -> FloatArray:
    """``[series, period]`` median of ``ref`` at each phase (index mod ``period``), circularly smoothed.

    The phase median over cycles is smoothed by a circular running median over +-1/48 of
    the period (30 minutes of a day), so that three cycles give a usable profile. NaN
    where a phase was never observed.
    """
    n, t = ref.shape
    cycles = -(-t // period)
    half = max(period // 48, 1)
    out = np.empty((n, period))
    chunk = max(1, (1 << 20) // (period * max(cycles, 2 * half + 1)))  # rows per chunk: ~8 MB temporaries
    for lo in range(0, n, chunk):  # bounded memory; a loop over row chunks, not over points
        part = ref[lo : lo + chunk]
        k = part.shape[0]
        padded = np.full((k, cycles * period), np.nan)
        padded[:, :t] = part
        by_phase = padded.reshape(k, cycles, period).transpose(0, 2, 1).reshape(k * period, cycles)
        profile = nanmedian_last(by_phase).reshape(k, period)
        wrapped = np.concatenate([profile[:, -half:], profile, profile[:, :half]], axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(wrapped, 2 * half + 1, axis=1)
        out[lo : lo + k] = nanmedian_last(windows.reshape(k * period, 2 * half + 1)).reshape(k, period)
    return out


def seasonal_component(
    y: FloatArray, *, resolution_s: int, window_start: int, multiplicative: bool
) -> FloatArray | None:
    """Per point, the daily or weekly pattern of ``y`` where ``detect_seasonality`` finds one (None: nowhere).

    The pattern is the phase profile (``_seasonal_profile``) of the history when it spans
    two periods, else of the whole series (a median over cycles, so a change lasting less
    than half the cycles stays out of it), relative to its median: an offset to subtract
    (additive; 0 for series without a pattern) or a factor (multiplicative, floored at
    0.05; 1 for series without a pattern).
    """
    periods = detect_seasonality_per_series(y, resolution_s=resolution_s)
    if all(p is None for p in periods):
        return None
    out = np.full_like(y, 1.0 if multiplicative else 0.0)
    phase = np.arange(y.shape[1])
    for period_s in sorted({p for p in periods if p is not None}):  # one or two distinct periods
        rows = np.array([i for i, p in enumerate(periods) if p == period_s], dtype=np.intp)
        period = period_s // resolution_s
        ref = y[rows, :window_start] if window_start >= 2 * period else y[rows]
        profile = _seasonal_profile(ref, period)
        level = nanmedian_last(profile)[:, np.newaxis]
        if multiplicative:
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(level > 0, profile / level, 1.0)
            out[rows] = np.maximum(np.nan_to_num(factor, nan=1.0), 0.05)[:, phase % period]
        else:
            out[rows] = np.nan_to_num(profile - level)[:, phase % period]
    return out


def pooled_ratio_change(
    batch: SeriesBatch, present: BoolArray, change_index: NDArray[np.int64]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(before, after, relative effect) of error ratios as sum(errors) / sum(samples) either side of the change."""
    samples = np.where(present, np.asarray(batch.samples, dtype=np.float64), 0.0)
    values = np.asarray(batch.values, dtype=np.float64)
    errors = values * samples if batch.errors is None else np.asarray(batch.errors, dtype=np.float64)
    errors = np.where(present, np.nan_to_num(errors), 0.0)
    n = change_index.shape[0]
    before, after = np.full(n, np.nan), np.full(n, np.nan)
    for i in np.flatnonzero(change_index >= 0):  # a loop over alerting series only
        c = int(change_index[i])
        pre_n, post_n = samples[i, :c].sum(), samples[i, c:].sum()
        if pre_n > 0 and post_n > 0:
            before[i], after[i] = errors[i, :c].sum() / pre_n, errors[i, c:].sum() / post_n
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = np.where(before > 0, (after - before) / before, np.nan)
    return before, after, effect


def persistent(high: BoolArray, present: BoolArray, points: int) -> BoolArray:
    """``high`` where it has held for at least ``points`` consecutive present points (gaps neither break nor count)."""
    n, t = high.shape
    count = np.cumsum(present, axis=1)
    idx = np.broadcast_to(np.arange(t), (n, t))
    last_low = np.maximum.accumulate(np.where(present & ~high, idx, -1), axis=1)
    before = np.where(last_low >= 0, np.take_along_axis(count, np.maximum(last_low, 0), axis=1), 0)
    result: BoolArray = high & (count - before >= points)
    return result
