"""Bayesian online change-point detection: the run-length posterior of each series, vectorised."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

from analysis.baselines import MAD_TO_SIGMA, detect_seasonality_per_series
from detectors.base import Detection, FloatArray, SeriesBatch, level_change

BoolArray = NDArray[np.bool_]

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


def _nanmedian_rows(a: FloatArray) -> FloatArray:
    """Median of each row, NaNs ignored (NaN for an all-NaN row), without warnings."""
    count = (~np.isnan(a)).sum(axis=1)
    ordered = np.sort(a, axis=1)  # NaN sorts last
    k = np.maximum(count, 1)
    rows = np.arange(a.shape[0])
    out: FloatArray = 0.5 * (ordered[rows, (k - 1) // 2] + ordered[rows, k // 2])
    out[count == 0] = np.nan
    return out


def _reference(y: FloatArray, window_start: int) -> FloatArray:
    """``y`` restricted to each series' reference points: its history, or all of it when the history is short."""
    if window_start <= 0:
        return y
    history = np.full_like(y, np.nan)
    history[:, :window_start] = y[:, :window_start]
    short = (~np.isnan(history)).sum(axis=1) < _MIN_REFERENCE
    return np.where(short[:, np.newaxis], y, history)


def _center_scale(ref: FloatArray, *, log_domain: bool) -> tuple[FloatArray, FloatArray]:
    """(median, robust sigma) of each row: 1.4826 MAD, else 1.2533 x mean absolute deviation, floored.

    The floor is 1e-3 (0.1 %) on log values, 1e-3 x |median| on values (as in
    ``analysis.baselines``), so that a flat reference does not give a zero scale.
    """
    center = _nanmedian_rows(ref)
    dev = np.abs(ref - center[:, np.newaxis])
    scale = MAD_TO_SIGMA * _nanmedian_rows(dev)
    present = ~np.isnan(dev)
    mean_dev = np.where(present, dev, 0.0).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    scale = np.where(scale > 0, scale, math.sqrt(math.pi / 2.0) * mean_dev)
    center = np.nan_to_num(center)
    floor = np.full_like(center, 1e-3) if log_domain else np.maximum(1e-3 * np.abs(center), 1e-300)
    return center, np.maximum(np.nan_to_num(scale), floor)


def _dependence(ref: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(variance, lag-1 autocorrelation in [0, 0.9]) of each row, from squared differences at lags 1 and 2.

    For a stationary AR(1)-like series, D_k = E[(y_t - y_t-k)^2] = 2 var (1 - rho^k), so
    rho = D_2 / D_1 - 1 and var = D_1 / (2 (1 - rho)). Differences ignore the level, so a
    level shift inside the reference barely moves either (a median/MAD would see two modes).
    The ratio is noisy for sparse, discrete data (mostly zeros), so rho is the smaller of
    it and the ordinary lag-1 correlation (which a level shift inflates instead).
    """

    def mean_sq_diff(lag: int) -> FloatArray:
        d = ref[:, lag:] - ref[:, :-lag]
        center, scale = _center_scale(d, log_domain=False)
        reach = (_CLIP_DIFFERENCES * scale)[:, np.newaxis]
        d = np.clip(d - center[:, np.newaxis], -reach, reach)  # a few outliers or steps cannot dominate
        ok = ~np.isnan(d)
        out: FloatArray = np.where(ok, d * d, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
        return out

    if ref.shape[1] < 3:
        return np.ones(ref.shape[0]), np.zeros(ref.shape[0])
    d1, d2 = mean_sq_diff(1), mean_sq_diff(2)
    center, scale = _center_scale(ref, log_domain=False)
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
        profile = _nanmedian_rows(by_phase).reshape(k, period)
        wrapped = np.concatenate([profile[:, -half:], profile, profile[:, :half]], axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(wrapped, 2 * half + 1, axis=1)
        out[lo : lo + k] = _nanmedian_rows(windows.reshape(k * period, 2 * half + 1)).reshape(k, period)
    return out


def _seasonal_component(
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
        level = _nanmedian_rows(profile)[:, np.newaxis]
        if multiplicative:
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(level > 0, profile / level, 1.0)
            out[rows] = np.maximum(np.nan_to_num(factor, nan=1.0), 0.05)[:, phase % period]
        else:
            out[rows] = np.nan_to_num(profile - level)[:, phase % period]
    return out


def _pooled_ratio_change(
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


def _persistent(high: BoolArray, present: BoolArray, points: int) -> BoolArray:
    """``high`` where it has held for at least ``points`` consecutive present points (gaps neither break nor count)."""
    n, t = high.shape
    count = np.cumsum(present, axis=1)
    idx = np.broadcast_to(np.arange(t), (n, t))
    last_low = np.maximum.accumulate(np.where(present & ~high, idx, -1), axis=1)
    before = np.where(last_low >= 0, np.take_along_axis(count, np.maximum(last_low, 0), axis=1), 0)
    result: BoolArray = high & (count - before >= points)
    return result


@dataclass(frozen=True)
class BayesianChangePoint:
    """Return, per point, the posterior probability of a recent change point (BOCPD).

    Method: Bayesian online change-point detection, R. P. Adams & D. J. C. MacKay (2007),
    "Bayesian Online Changepoint Detection", arXiv:0710.3742. Each series is a sequence of
    segments of independent observations from a conjugate model; the posterior over the
    length of the current segment (the run length) is updated point by point with a
    constant hazard, for all series at once (``run_length_filter``; run lengths capped at
    ``max_run_points``, longer runs merged into a sliding window of that many points).
    The model of a segment (``NormalGamma``, ``PoissonGamma``, ``BetaBinomial``) and the
    decision rule below are separate pieces. Models per kind:

    - ``latency_*``, ``histogram_*``: Normal-Gamma (Student-t predictive) on log values
      (positive, multiplicative noise); ``gauge`` (and any other kind): the same on the
      values. Values are standardised by the median and 1.4826 MAD of the reference (the
      points before ``window_start``; the whole series when the history has fewer than
      30 points) and winsorised at +-``clip_sigma``, so the priors are scale-free and one
      huge outlier cannot inflate every run's variance. Prior: mean 0 worth
      ``prior_points`` observations; variance the reference's (from squared successive
      differences, see ``_dependence``) worth ``precision_prior_points`` observations, so
      a run of identical (quantised) values is not a "quieter segment". The predictive
      keeps at most ``tail_dof`` degrees of freedom (a conjugate predictive turns
      Gaussian as a run grows, under which one 8-sigma outlier is a certain change;
      heavy tails as in the robust BOCPD of Knoblauch, Jewson & Damoulas 2018, "Doubly
      Robust Bayesian Inference for Non-Stationary Streaming Data with beta-Divergences").
    - ``rate``: Poisson-Gamma on counts = value * ``resolution_s``, quasi-Poisson: counts
      are divided by the reference's dispersion phi (variance of the Pearson residuals; at
      least 1 when the counts are whole numbers, the Poisson noise floor), so that real,
      overdispersed traffic is not a change every minute, and k x the counts give the
      same answer whenever phi > 1. Quasi-counts are winsorised at +-``clip_sigma``
      Poisson sigmas (+1) around the level. Prior Gamma with the reference level as its
      mean, worth ``prior_points`` points but with shape at least 1 (a J-shaped prior
      would take every run of zeros for a new, lower rate) unless that makes it worth
      over 10 points (rates under 0.1 per point, where the bias is negligible).
    - ``error_ratio``: Beta-Binomial on failed of total per point (``batch.errors``, else
      ``values * samples``, of ``batch.samples``), quasi-binomial with the dispersion phi
      = max(1, variance of the reference's Pearson residuals around the pooled ratio);
      prior Beta with the pooled reference ratio as its mean, worth ``prior_points``
      typical points, both shapes at least 1 unless that makes it worth over 10 points.

    Daily and weekly patterns (``analysis.baselines.detect_seasonality``) are removed
    first: the median profile per phase (history if it spans two periods, else the whole
    series; smoothed over +-1/48 period) is subtracted from (log) values and enters counts
    as the Poisson exposure. Error ratios are taken as they are. Serial correlation: each
    series' predictive log densities are multiplied by (1 - rho) / (1 + rho), rho its
    lag-1 autocorrelation in [0, 0.9] in the reference (``_dependence``), the factor by
    which correlation shrinks the information in a mean: a power likelihood, so an AR(1)
    wander is not a sequence of changes.

    Decision: ``score[i, t]`` = P(the current segment started within the last
    ``recent_points`` points | data up to t), the first segment of the series not
    counting as a change. A point alerts when the score is >= ``threshold`` for
    ``persistence`` consecutive present points, after ``warmup_points`` present points,
    inside the window under test. Gaps (NaN, samples == 0, non-positive values on a log
    scale) are skipped: the recursion does not advance and they score 0. The recursion
    starts 2 ``max_run_points`` before ``window_start`` (earlier points shape the
    reference only; they score 0). ``change_index`` is the first alert of the strongest
    alarm; ``before``/``after``/``effect`` are the medians around it
    (``detectors.base.level_change``); for error ratios the pooled ratios sum(errors) /
    sum(samples), with ``details["delta_pp"]`` = after - before.

    p-value: the Bayes factor BF_t = posterior odds / prior odds of "a change within the
    last ``max_run_points`` points" has expectation 1 under the model's no-change
    hypothesis, so P(BF_t >= x) <= 1 / x (Markov). An alarm's evidence is the largest
    BF_t from its first alert up to ``max_run_points`` later; a union bound over the N
    present points of the window gives p = min(1, N / BF). It is conservative (the BF_t
    of neighbouring points are strongly dependent, and no alarm gives 1), valid as far
    as the segment model holds, which the dispersion, tail and correlation corrections
    above are there to keep true; ``details["log10_bayes_factor"]`` holds log10 BF.

    Parameters (defaults chosen on simulated quiet and shifted series, see the tests; no
    tuning per series is needed, every statistic is relative to the series' own reference):
    ``expected_run_points`` (points, 3000: hazard 1/3000 per point, a change every ~2
    days a priori at 1-minute resolution; 1/250 alerted on 1-2 % of white-noise series
    per 4000 points), ``max_run_points`` (points, 300), ``recent_points`` (points, 20),
    ``threshold`` (probability, 0.9), ``persistence`` (points, 3), ``warmup_points``
    (points, 30), ``clip_sigma`` (robust sigmas, 8), ``prior_points`` (observations, 0.1:
    a new segment's prior predictive is ~3.3 noise sigmas wide), ``precision_prior_points``
    (observations, 20), ``tail_dof`` (Student-t degrees of freedom, 5), ``seasonal``
    (remove daily and weekly patterns, True), ``temper`` (correct for serial correlation,
    True). With them, on Gaussian noise a 3-sigma level shift alerts after a median 6 and
    at most ~10 points, a 2-sigma one after ~10 (93 % within 15), an error ratio going
    from 0.2 % to 3 % at 100 requests per point after ~5 (98 % within 10), while
    i.i.d., heavy-tailed, autocorrelated, quantised, overdispersed-count and
    daily-seasonal quiet series stay silent (about one alarm per million points).
    ``batch.baseline`` is not used: the model needs a per-series reference, not a
    per-point one.

    Example (pinned in ``tests/detectors/test_bocpd_detector.py``)::

        rng = np.random.default_rng(42)
        x = 100 + 10 * rng.standard_normal(600)
        x[400:] += 30  # +3 sigma at t = 400; history = points before 300
        d = BayesianChangePoint().detect(SeriesBatch([SignalKey("gauge", "svc")], np.arange(600) * 60_000_000_000,
                                                     x[np.newaxis], np.full((1, 600), 100.0), 60, window_start=300))
        np.flatnonzero(d.alert[0])  # 406, 407, ..., 419; change_index 406, p_value ~ 6e-55, effect ~ +0.29
    """

    name: ClassVar[str] = "bocpd"
    kinds: ClassVar[tuple[str, ...]] = ("latency_", "rate", "gauge", "histogram_", "error_ratio")

    expected_run_points: float = 3000.0
    max_run_points: int = 300
    recent_points: int = 20
    threshold: float = 0.9
    persistence: int = 3
    clip_sigma: float = 8.0
    prior_points: float = 0.1
    precision_prior_points: float = 20.0
    seasonal: bool = True
    temper: bool = True
    tail_dof: float = 5.0
    warmup_points: int = 30

    def detect(self, batch: SeriesBatch) -> Detection:
        """Return the detection of ``batch`` (see the class docstring)."""
        n, t = batch.shape
        if n == 0 or t == 0:
            return Detection.quiet((n, t))
        kind = batch.keys[0].kind if batch.keys else "gauge"
        r_max = max(self.recent_points + 1, min(self.max_run_points, t))
        model, present, rho = self._model(batch, kind, r_max)
        hazard = 1.0 / self.expected_run_points
        temper = (1.0 - rho) / (1.0 + rho) if self.temper else np.ones_like(rho)
        # The run-length state forgets what lies more than r_max points back (the cap is a
        # sliding window), so the recursion starts 2 r_max points before the window under test.
        start = max(0, min(batch.window_start, t) - 2 * r_max)
        filtered = run_length_filter(
            model, present, temper, hazard=hazard, r_max=r_max, recent=self.recent_points, start=start
        )
        return self._decide(batch, kind, filtered, present, r_max)

    def _model(self, batch: SeriesBatch, kind: str, r_max: int) -> tuple[ConjugateModel, BoolArray, FloatArray]:
        """The conjugate model of ``kind`` over the batch's observations, and where they are present."""
        values = np.asarray(batch.values, dtype=np.float64)
        samples = np.asarray(batch.samples, dtype=np.float64)
        ws = min(max(batch.window_start, 0), values.shape[1])
        valid = np.isfinite(values) & ~(samples <= 0)  # NaN samples: unknown, not a gap
        if kind == "error_ratio":
            return self._binomial(batch, values, samples, ws, r_max)
        if kind == "rate":
            return self._poisson(values, valid & (values >= 0), batch.resolution_s, ws, r_max)
        logs = kind.startswith(("latency_", "histogram_"))
        if logs:
            valid &= values > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(valid, np.log(np.where(valid, values, 1.0)), np.nan)
        else:
            y = np.where(valid, values, np.nan)
        if self.seasonal:
            pattern = _seasonal_component(y, resolution_s=batch.resolution_s, window_start=ws, multiplicative=False)
            y = y if pattern is None else y - pattern
        center, scale = _center_scale(_reference(y, ws), log_domain=logs)
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.clip((y - center[:, np.newaxis]) / scale[:, np.newaxis], -self.clip_sigma, self.clip_sigma)
        var, rho = _dependence(_reference(z, ws))
        half = 0.5 * self.precision_prior_points
        model = NormalGamma(
            z,
            r_max,
            kappa0=self.prior_points,
            alpha0=half,
            beta0=half * np.maximum(var, 1e-2),
            max_dof=self.tail_dof,
        )
        return model, valid, rho

    def _poisson(
        self, values: FloatArray, valid: BoolArray, resolution_s: int, ws: int, r_max: int
    ) -> tuple[ConjugateModel, BoolArray, FloatArray]:
        counts = np.where(valid, values * resolution_s, np.nan)
        whole = np.all(~valid | (np.abs(counts - np.round(counts)) <= 1e-6 * np.maximum(1.0, counts)), axis=1)
        exposure = None
        if self.seasonal:
            exposure = _seasonal_component(counts, resolution_s=resolution_s, window_start=ws, multiplicative=True)
        s = np.ones_like(counts) if exposure is None else exposure
        ref = _reference(counts / s, ws)
        level, _ = _center_scale(ref, log_domain=False)
        seen = ~np.isnan(ref)
        mean = np.where(seen, ref, 0.0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
        level = np.where(level > 0, level, mean)[:, np.newaxis]
        expected = level * s
        with np.errstate(divide="ignore", invalid="ignore"):
            pearson = np.where(expected > 0, (counts - expected) / np.sqrt(expected), np.nan)
        var, rho = _dependence(_reference(pearson, ws))
        # quasi-Poisson dispersion; the Poisson noise floor for whole counts, else a 0.1 % relative floor
        phi = np.maximum(np.nan_to_num(var), np.where(whole, 1.0, 1e-6 * level[:, 0]))
        phi = np.where(phi > 0, phi, 1.0)[:, np.newaxis]
        lam = level / phi
        reach = self.clip_sigma * (np.sqrt(lam * s) + 1.0)
        q = np.clip(counts / phi, np.maximum(lam * s - reach, 0.0), lam * s + reach)
        # Worth b0 = prior_points points, but with shape a0 >= 1 (a J-shaped prior would take
        # every run of zeros for a new, lower rate) unless that would be worth over 10 points.
        b0 = np.maximum(self.prior_points, np.minimum(1.0 / np.maximum(lam[:, 0], 1e-300), 10.0))
        a0 = np.maximum(b0 * lam[:, 0], 1e-3)
        return PoissonGamma(q, exposure, r_max, a0=a0, b0=b0), valid, rho

    def _binomial(
        self, batch: SeriesBatch, values: FloatArray, samples: FloatArray, ws: int, r_max: int
    ) -> tuple[ConjugateModel, BoolArray, FloatArray]:
        errors = values * samples if batch.errors is None else np.asarray(batch.errors, dtype=np.float64)
        valid = np.isfinite(errors) & np.isfinite(samples) & (samples > 0) & (errors >= 0)
        n = np.where(valid, samples, np.nan)
        e = np.where(valid, np.minimum(errors, samples), np.nan)
        ref_e, ref_n = _reference(e, ws), _reference(n, ws)
        p0 = (np.nansum(ref_e, axis=1) + 0.5) / (np.nansum(ref_n, axis=1) + 1.0)
        p0c = p0[:, np.newaxis]
        with np.errstate(invalid="ignore", divide="ignore"):
            pearson = (ref_e - ref_n * p0c) / np.sqrt(ref_n * p0c * (1.0 - p0c))
        var, rho = _dependence(pearson)
        phi = np.maximum(var, 1.0)[:, np.newaxis]  # binomial noise is the floor
        nq, eq = n / phi, e / phi
        reach = self.clip_sigma * (np.sqrt(nq * p0c * (1.0 - p0c)) + 1.0)
        eq = np.minimum(eq, np.minimum(nq * p0c + reach, nq))
        typical = np.nan_to_num(_nanmedian_rows(ref_n) / phi[:, 0], nan=1.0)
        strength = self.prior_points * typical
        # a0, b0 >= 1 (not J-shaped: runs of zeros are no evidence) unless worth over 10 points
        strength = np.maximum(strength, np.minimum(1.0 / np.minimum(p0, 1.0 - p0), 10.0 * typical))
        model = BetaBinomial(eq, nq, r_max, a0=strength * p0, b0=strength * (1.0 - p0))
        return model, valid, rho

    def _decide(
        self,
        batch: SeriesBatch,
        kind: str,
        filtered: tuple[FloatArray, FloatArray, FloatArray],
        present: BoolArray,
        r_max: int,
    ) -> Detection:
        score, odds_recent, odds_any = filtered
        n, t = score.shape
        ws = min(max(batch.window_start, 0), t)
        warm = np.cumsum(present, axis=1) > self.warmup_points
        alert = _persistent((score >= self.threshold) & present & warm, present, self.persistence)
        alert[:, :ws] = False
        idx = np.broadcast_to(np.arange(t), (n, t))
        prev = np.zeros_like(alert)
        prev[:, 1:] = alert[:, :-1]
        last_start = np.maximum.accumulate(np.where(alert & ~prev, idx, -1), axis=1)
        # the strongest alarm: the one whose alerting points reach the highest odds of a recent change
        rows = np.arange(n)
        alerting = alert.any(axis=1)
        peak = np.where(alert, odds_recent, -np.inf).argmax(axis=1)
        change_index = np.where(alerting, last_start[rows, peak], -1).astype(np.int64)
        # its evidence: the largest Bayes factor of "a change within the last r_max points"
        # from its first alert to r_max points later
        hazard = 1.0 / self.expected_run_points
        prior_change = -math.expm1(r_max * math.log1p(-hazard))
        log_bf = odds_any - math.log(prior_change / (1.0 - prior_change))
        start = change_index[:, np.newaxis]
        backed = (start >= 0) & (idx >= start) & (idx < start + r_max) & present
        strength = np.where(backed, log_bf, -np.inf).max(axis=1)
        n_tests = np.maximum(present[:, ws:].sum(axis=1), 1)
        p_value = np.where(alerting, np.exp(np.minimum(np.log(n_tests) - strength, 0.0)), 1.0)
        details = {"log10_bayes_factor": np.where(alerting, strength / math.log(10.0), np.nan)}
        if kind == "error_ratio":
            before, after, effect = _pooled_ratio_change(batch, present, change_index)
            details["delta_pp"] = after - before
        else:
            values = np.asarray(batch.values, dtype=np.float64)
            before, after, effect = level_change(np.where(present, values, np.nan), change_index)
        return Detection(
            score=np.clip(score, 0.0, 1.0),
            alert=alert,
            p_value=np.clip(p_value, 0.0, 1.0),
            change_index=change_index,
            effect=effect,
            before=before,
            after=after,
            details=details,
        )
