"""The traffic factor: how much busier the system as a whole is at each point than in its history.

A request rate moves with the demand on the whole system (the time of day, the day of the
week, a holiday, a campaign's surge) and with faults that touch one operation (a retry
storm multiplies its callee's calls, a removed call edge empties its callee). Demand
moves every operation together; a fault moves a few. ``traffic_factor`` estimates the
common part robustly, so a rate divided by it keeps the faults and loses the traffic
shapes, including the ones a short history has never shown (a daily ramp learned from 6
hours is no ramp at all).

Per point ``t`` (all series share the time axis):

1. each series' ratio to its own history median, ``r_i(t) = x_i(t) / m_i`` (series with a
   positive history median only; ``x_i(t)`` the mean over ``w`` points centred on t, so that a
   minute of thin traffic is not read as demand: ``w`` is ``smooth`` points, or as many more
   as all the series need to carry ``POOLED_REQUESTS`` requests around that point, up to an
   hour: at 5 requests a minute over all the series, a factor read from 5 minutes is off by
   20 % at one sigma, and every rate divided by it moves with it);
2. the median ratio over series weighted by their history medians, ``med(t)``, needing
   ``min_series`` ratios (a sparse series' empty minutes pull an unweighted median to 0);
3. the factor is the pooled ratio of the series within a factor ``band`` of the median or
   within Poisson noise of it (``resolution_s`` turns rates into requests; a quiet series'
   empty minutes are demand too), ``sum x_i(t) / sum m_i``: busy series weigh more (less
   Poisson noise) and a few series that moved on their own (the faults) are left out;
4. points without an estimate take the nearest earlier one (the first known one at the
   start); the factor is scaled so that its median over the history is 1.

With fewer than ``min_series`` usable series there is no common part to tell apart from a
fault, and the answer is None: callers then keep the rates as they are.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

MIN_SERIES = 3
"""Series needed at a point for a median that one moving series cannot drag."""
BAND = 2.0
"""Series within this factor of the median ratio join the pooled estimate."""


SMOOTH = 5
"""Points pooled around each point (centred) at the least: demand moves over minutes, and a minute of thin traffic
is noise."""
POOLED_REQUESTS = 100.0
"""Requests the pooled points should carry: the factor's Poisson error is then about 10 % (1 / sqrt(100))."""
WIDTHS = (5, 9, 15, 31, 61)
"""Pooling widths tried, narrowest first: thin traffic is pooled over up to an hour of points."""


def _centred_mean(x: FloatArray, width: int) -> FloatArray:
    """Mean of each row over ``width`` points centred on each point (NaN ignored; NaN where none is present)."""
    if width <= 1:
        return x
    ok = np.isfinite(x)
    pad = width // 2
    sums = np.cumsum(np.pad(np.where(ok, x, 0.0), ((0, 0), (pad + 1, pad))), axis=1)
    counts = np.cumsum(np.pad(ok.astype(np.float64), ((0, 0), (pad + 1, pad))), axis=1)
    s = sums[:, width:] - sums[:, :-width]
    c = counts[:, width:] - counts[:, :-width]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(c > 0, s / c, np.nan)
    return out


def _weighted_median(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Per column, the weighted median of the finite values (NaN where none is finite)."""
    ok = np.isfinite(values)
    order = np.argsort(np.where(ok, values, np.inf), axis=0)
    v = np.take_along_axis(values, order, axis=0)
    cum = np.cumsum(np.take_along_axis(np.where(ok, weights, 0.0), order, axis=0), axis=0)
    first = np.argmax(cum >= cum[-1] / 2.0, axis=0)
    out: FloatArray = np.where(cum[-1] > 0, v[first, np.arange(values.shape[1])], np.nan)
    return out


def pooled(values: FloatArray, least: int, resolution_s: float) -> tuple[FloatArray, NDArray[np.int64]]:
    """(each row's mean over the points pooled around each point, the number of points pooled there).

    At each point the narrowest of ``WIDTHS`` (at least ``least``) over which all the rows together carry
    ``POOLED_REQUESTS`` requests (``resolution_s`` turns rates into requests), the widest where none does: a
    quiet night is pooled over up to an hour, a busy hour or a surge's edge keeps a few minutes.
    """
    widths = [w for w in WIDTHS if w >= least] or [least]
    x = np.maximum(values, 0.0)
    out = np.full(x.shape, np.nan)
    chosen = np.zeros(x.shape[1], dtype=np.int64)
    for w in reversed(widths):  # narrower widths overwrite wider ones wherever they suffice
        xs = _centred_mean(x, w)
        enough = np.nansum(xs, axis=0) * resolution_s * w >= POOLED_REQUESTS
        take = enough | (chosen == 0)
        out[:, take] = xs[:, take]
        chosen[take] = w
    return out, chosen


def traffic_factor(
    values: FloatArray,
    history_end: int,
    *,
    min_series: int = MIN_SERIES,
    band: float = BAND,
    smooth: int = SMOOTH,
    resolution_s: float = 60.0,
) -> FloatArray | None:
    """Return the traffic factor per point (1.0 = the history's typical demand) of ``values`` [n_series, n_times].

    ``history_end`` is the index of the first point that is not history (0 = use the whole
    series). Values are rates (any unit, >= 0; NaN = gap). None when fewer than
    ``min_series`` series have a positive history median, or no point has an estimate.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"values must be 2-D [n_series, n_times], got shape {x.shape}")
    if band <= 1.0:
        raise ValueError(f"band must be > 1, got {band}")
    n, t = x.shape
    if n < min_series or t == 0:
        return None
    h_end = history_end if 0 < history_end <= t else t
    xs, width = pooled(x, smooth, resolution_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # the history pooled on its own: pooling across its end would lend it the window's traffic
        m = np.nanmedian(pooled(x[:, :h_end], smooth, resolution_s)[0], axis=1)
    usable = np.isfinite(m) & (m > 0)
    if usable.sum() < min_series:
        return None
    xs, ms = xs[usable], m[usable][:, np.newaxis]
    ratio = xs / ms
    finite = np.isfinite(ratio)
    count = finite.sum(axis=0)
    med = _weighted_median(ratio, np.broadcast_to(ms, ratio.shape))
    known = (count >= min_series) & np.isfinite(med) & (med > 0)
    # Near the median: within ``band``, or within Poisson noise of it (3 sigma + 1 request over the pooled
    # points): a quiet series' empty minutes are demand too, and leaving them out would bias the factor up.
    expected = ms * med[np.newaxis, :] * resolution_s * width[np.newaxis, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        close = np.abs(xs * resolution_s * width[np.newaxis, :] - expected) <= 3.0 * np.sqrt(expected) + 1.0
        near = finite & (close | ((ratio > 0) & (np.abs(np.log(ratio) - np.log(med)) <= np.log(band))))
    num = np.where(near, xs, 0.0).sum(axis=0)
    den = np.where(near, ms, 0.0).sum(axis=0)
    known &= den > 0
    if not known.any():
        return None
    factor = np.full(t, np.nan)
    factor[known] = num[known] / den[known]
    # the nearest earlier estimate fills a point without one; the first estimate fills the start
    idx = np.where(known, np.arange(t), -1)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(known))
    factor = factor[np.where(idx >= 0, idx, first)]
    scale = float(np.median(factor[:h_end]))
    out: FloatArray = factor / scale if scale > 0 else factor
    return out


MAX_ELASTICITY = 3.0
"""Largest elasticity to traffic credited to a series (a queue near capacity grows several times faster than its
load; beyond this a change is the series' own)."""


def elasticity(
    values: FloatArray, factor: FloatArray, history_end: int, *, min_points: int = 30, min_spread: float = 0.05
) -> FloatArray:
    """Return each series' elasticity to traffic (d log value / d log factor) learned from the history, in [0, 3].

    Least squares of ``log(value + d)`` on ``log(factor)`` over the history points (``d`` =
    1 % of the series' history median, so zeros stay finite); 0 where the series does not
    follow demand; NaN where the history cannot teach it (fewer than ``min_points`` points,
    or traffic varying by less than ``min_spread`` in log units: a flat history says nothing
    about how a series follows demand).
    """
    x = np.asarray(values, dtype=np.float64)
    f = np.asarray(factor, dtype=np.float64)
    h = history_end if 0 < history_end <= x.shape[1] else x.shape[1]
    xh, lf = x[:, :h], np.log(np.where(f[:h] > 0, f[:h], np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d = 0.01 * np.nanmedian(np.where(xh > 0, xh, np.nan), axis=1, keepdims=True)
        y = np.log(np.where(xh >= 0, xh, np.nan) + d)
    ok = np.isfinite(y) & np.isfinite(lf)[np.newaxis, :]
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fx = np.where(ok, lf[np.newaxis, :], 0.0)
        fy = np.where(ok, y, 0.0)
        mx, my = fx.sum(axis=1) / n, fy.sum(axis=1) / n
        dx = np.where(ok, fx - mx[:, np.newaxis], 0.0)
        dy = np.where(ok, fy - my[:, np.newaxis], 0.0)
        var = (dx * dx).sum(axis=1) / n
        beta = (dx * dy).sum(axis=1) / n / var
    learnable = (n >= min_points) & (np.sqrt(var) >= min_spread) & np.isfinite(beta)
    out: FloatArray = np.where(learnable, np.clip(beta, 0.0, MAX_ELASTICITY), np.nan)
    return out


def beyond_history(factor: FloatArray, history_end: int, margin: float = 1.1) -> NDArray[np.bool_]:
    """Points where the traffic factor leaves the range the history saw, widened by ``margin``: there a series
    whose elasticity is unknown cannot be told apart from the demand on it."""
    f = np.asarray(factor, dtype=np.float64)
    h = f[: history_end if 0 < history_end <= f.size else f.size]
    h = h[np.isfinite(h)]
    if h.size == 0:
        return np.ones(f.shape, dtype=bool)
    out: NDArray[np.bool_] = (f < h.min() / margin) | (f > h.max() * margin)
    return out


def at_constant_traffic(values: FloatArray, factor: FloatArray, beta: FloatArray | None = None) -> FloatArray:
    """Return ``values`` [n, t] as they would be at the history's typical traffic: ``values / factor ** beta``.

    ``beta`` is each series' elasticity (1.0 for all when None: rates are proportional to demand; NaN as 0).
    """
    x = np.asarray(values, dtype=np.float64)
    b = np.ones(x.shape[0]) if beta is None else np.nan_to_num(np.asarray(beta, dtype=np.float64))
    out: FloatArray = x / np.power(np.asarray(factor, dtype=np.float64)[np.newaxis, :], b[:, np.newaxis])
    return out


FOLLOWS_DEMAND = 0.1
"""Elasticity from which a gauge follows demand: below it, twice the demand moves the gauge by under 7 %, a third of
the detectors' 20 % level floor (a memory gauge's learned elasticity is 0 up to the fit's noise)."""


def gauges_at_seen_demand(values: FloatArray, factor: FloatArray, history_end: int) -> FloatArray:
    """Return gauges [n, t] with the part demand explains taken out, and gaps where demand leaves what the history saw.

    Each gauge is divided by ``factor`` raised to its elasticity learned from the history (in-flight
    requests follow demand; a memory gauge does not: elasticity 0). The history teaches that relation
    only over the demand it saw: where demand goes beyond it by more than 10 % either way (a first
    weekend, a holiday's trough, a surge), an elasticity extrapolated says nothing (in-flight requests
    follow demand with an elasticity that changes with load, so a fit over the daily cycle's busy hours,
    extrapolated to a holiday's trough, overstates what the trough takes away), and one the history
    could not teach (NaN) neither. Those points become gaps for every gauge that follows demand (elasticity at least
    ``FOLLOWS_DEMAND``) or may (NaN).
    """
    beta = elasticity(values, factor, history_end)
    out = at_constant_traffic(values, factor, beta)
    follows = ~(beta < FOLLOWS_DEMAND)
    if follows.any():
        out[np.ix_(follows, beyond_history(factor, history_end))] = np.nan
    return out


UNSEEN_ELASTICITY = 0.5
"""Elasticity assumed for demand the history never showed: a load-dependent series (a latency) may rise by up to
sqrt(k) when demand grows k-fold beyond anything seen, without anything being wrong (queues within capacity grow
with load; the history could not say how much). A fault (a saturated queue: multiples; a regression at constant
demand: any size) stays visible beyond this allowance; the benign-surge worlds of the adversary test it."""


def at_seen_traffic(
    values: FloatArray,
    factor: FloatArray,
    beta: FloatArray,
    history_end: int,
    *,
    unseen: float = UNSEEN_ELASTICITY,
    margin: float = 1.1,
) -> FloatArray:
    """Return ``values`` [n, t] with the part demand explains taken out: divided by ``factor ** beta`` (the learned
    elasticity, NaN as 0) where demand is above the history's typical level (factor 1) and within its range (widened
    by ``margin``); above the range by the same at the range's top times ``(factor / top) ** max(beta, unseen)``
    (continuous there); at or below typical demand not at all.

    Lighter load than usual explains no slowdown, so it must not make one either: dividing by a factor below 1
    raises a value, and the elasticity of a per-minute quantile is partly the order statistic's own (the p99 of 2
    requests is their maximum, and more requests give a larger maximum), so at a daily trough a latency that did
    not move would read as a slowdown."""
    x = np.asarray(values, dtype=np.float64)
    f = np.asarray(factor, dtype=np.float64)
    b = np.nan_to_num(np.asarray(beta, dtype=np.float64))[:, np.newaxis]
    h = f[: history_end if 0 < history_end <= f.size else f.size]
    h = h[np.isfinite(h) & (h > 0)]
    if h.size == 0:
        return x
    lo, hi = max(h.min() / margin, 1.0), max(h.max() * margin, 1.0)
    edge = np.clip(f, lo, hi)[np.newaxis, :]
    beyond = np.maximum(f / hi, 1.0)[np.newaxis, :]  # below the range: lighter load explains no slowdown
    out: FloatArray = x / (np.power(edge, b) * np.power(beyond, np.maximum(b, unseen)))
    return out
