"""Count models of the error-rate detector: expectations, dispersions and exact tail probabilities.

``detectors.error_rate`` decides with what this module computes: binomial tails for error
counts, two-sided Poisson tails (through the Poisson-gamma duality) for request counts
divided by their negative-binomial dispersion, expectations from the history or the
baseline, and the run bookkeeping of alarms (see ``ErrorRate``'s docstring for the method).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from analysis.robust import nanmedian_last, robust_sigma
from detectors.base import BoolArray, FloatArray, IntArray, SeriesBatch

DISPERSION_FLOOR = 1e-6
"""Smallest squared relative spread of a rate (0.1 % relative; as ``SPREAD_REL_FLOOR`` in analysis.baselines)."""

MIN_HISTORY = 10
"""Fewer usable history points than this and the whole series serves as history."""


def history_mask(present: BoolArray, window_start: int, min_points: int = MIN_HISTORY) -> BoolArray:
    """Points used as history: before ``window_start`` (all when 0 or when a series has too few there)."""
    _, t = present.shape
    before = present & (np.arange(t) < window_start) if window_start > 0 else present
    short = before.sum(axis=1) < min_points
    return np.where(short[:, np.newaxis], present, before)


def binom_sf(k: FloatArray, n: FloatArray, p: FloatArray) -> FloatArray:
    """P(X >= k) for X ~ Binomial(n, p), vectorised and continuous in k and n.

    Equal to ``scipy.stats.binom.sf(k - 1, n, p)`` for integer counts, through the identity
    P(X >= k) = I_p(k, n - k + 1) (regularised incomplete beta); 1 where k <= 0.
    """
    out = np.ones_like(k)
    m = (k > 0) & (n > 0)
    km = np.minimum(k[m], n[m])
    out[m] = special.betainc(km, n[m] - km + 1.0, np.broadcast_to(p, k.shape)[m])
    return out


def poisson_two_sided(k: FloatArray, lam: FloatArray) -> FloatArray:
    """Two-sided p-value min(1, 2 P(X on k's side of lam, as far)) for X ~ Poisson(lam), continuous in k.

    P(X >= k) = P(Gamma(k) <= lam) and P(X <= k) = P(Gamma(k + 1) > lam) (the
    Poisson-gamma duality), exact for integer k and fast for large counts. Only the tail on
    the observation's side is computed (the smaller one, but within a unit of the mean where
    both are about one half and the p-value is 1 anyway).
    """
    above = k > lam
    tail = np.empty_like(k)
    tail[above] = special.gammainc(k[above], lam[above])
    tail[~above] = special.gammaincc(k[~above] + 1.0, lam[~above])
    out: FloatArray = np.minimum(1.0, 2.0 * tail)
    return out


def rate_counts(batch: SeriesBatch) -> tuple[FloatArray, BoolArray, BoolArray]:
    """(counts = values * resolution_s, 0 at gaps; present points; series whose counts are whole numbers)."""
    values = np.asarray(batch.values, dtype=np.float64)
    samples = np.asarray(batch.samples, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        present = np.isfinite(values) & np.isfinite(samples) & (samples > 0) & (values >= 0)
    counts = np.where(present, values * float(batch.resolution_s), 0.0)
    whole = np.abs(counts - np.round(counts)) <= 1e-6 * np.maximum(1.0, counts)
    event_counts = np.all(whole | ~present, axis=1) & present.any(axis=1)
    return counts, present, event_counts


def expectation(
    counts: FloatArray, present: BoolArray, hist: BoolArray, center: FloatArray | None
) -> tuple[FloatArray, BoolArray]:
    """(expected count per point, 0 where not modelled; modelled points).

    The expectation is ``center`` (the baseline centre in counts) where given and positive,
    else the median count over ``hist`` (the mean when the median is 0); points without a
    positive expectation are not modelled.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(hist, counts, 0.0).sum(axis=1) / hist.sum(axis=1)
    median = nanmedian_last(np.where(hist, counts, np.nan))
    mu = np.broadcast_to(np.where(median > 0, median, mean)[:, np.newaxis], counts.shape)
    with np.errstate(invalid="ignore"):
        if center is not None:
            mu = np.where(np.isfinite(center) & (center > 0), center, mu)
        modelled = present & np.isfinite(mu) & (mu > 0)
    return np.where(modelled, mu, 0.0), modelled


def overdispersion(rel: FloatArray, expected: FloatArray, u: FloatArray) -> FloatArray:
    """Per series, the NB2 factor a of var = u * mu + a * mu^2, from relative residuals (NaN = unused).

    var(S / M - 1) = u / M + a, so a = sigma^2 - median(u / M) with sigma the robust scale of the
    residuals; ``u`` per series [n] or per window [n, t]; at least ``DISPERSION_FLOOR``; +inf
    without any residual.
    """
    _, sigma = robust_sigma(rel)
    share = u[:, np.newaxis] if u.ndim == 1 else u
    with np.errstate(divide="ignore", invalid="ignore"):
        poisson_share = np.nan_to_num(nanmedian_last(np.where(np.isfinite(expected), share / expected, np.nan)))
    a = np.nan_to_num(sigma**2 - poisson_share, nan=np.inf)
    out: FloatArray = np.maximum(a, DISPERSION_FLOOR)
    return out


def poisson_share(batch: SeriesBatch, counts: FloatArray, present: BoolArray, event_counts: BoolArray) -> FloatArray:
    """[n, t] weight of the Poisson part of each point's variance, in the counts' own scale.

    1 for event counts. For counts scaled from events (a rate at constant traffic: values =
    requests / factor, ``samples`` = the requests, so counts / samples is typically near 1),
    var = requests / factor^2, so the weight is counts / samples (1 / factor); points without a
    request borrow their series' median. 0 for
    counts that are no events at all (a derived rate: scale-free).
    """
    samples = np.asarray(batch.samples, dtype=np.float64)
    requests = present & (samples >= 1.0)
    whole = np.abs(samples - np.round(samples)) <= 1e-6 * np.maximum(1.0, samples)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(requests, counts / samples, np.nan)
    fill = np.nan_to_num(nanmedian_last(ratio))
    # the traffic factor is 1 at the history's typical demand: a typical ratio far from 1 is no such scaling
    scaled = ~event_counts & np.all(whole | ~requests, axis=1) & requests.any(axis=1) & (fill > 0.5) & (fill < 2.0)
    out = np.zeros(counts.shape)
    out[event_counts] = 1.0
    out[scaled] = np.where(requests[scaled], ratio[scaled], fill[scaled, np.newaxis])
    return out


def clean_history(q_alert: FloatArray, hist: BoolArray, span: int) -> BoolArray:
    """``hist`` without its alarming points and the ``span`` - 1 points before each (their windows)."""
    _, nxt = last_and_next(np.isfinite(q_alert) & hist)
    out: BoolArray = hist & (nxt - np.arange(hist.shape[1]) >= span)
    return out


def pooled_ratio(err: FloatArray, req: FloatArray, mask: BoolArray) -> FloatArray:
    """Per row, (errors + 0.5) / (requests + 1) over ``mask``: the pooled ratio with half an error of prior."""
    out: FloatArray = (np.where(mask, err, 0.0).sum(axis=1) + 0.5) / (np.where(mask, req, 0.0).sum(axis=1) + 1.0)
    return out


def expected_ratio(p0: FloatArray, center: FloatArray | None, t: int) -> FloatArray:
    """Expected error ratio per point (one column without a baseline): ``p0``, raised to ``center`` where higher."""
    if center is None:
        return p0[:, np.newaxis].copy()
    out = np.repeat(p0[:, np.newaxis], t, axis=1)
    with np.errstate(invalid="ignore"):
        higher = np.isfinite(center) & (center > out)
    out[higher] = np.minimum(center[higher], 1.0)
    return out


def last_and_next(alert: BoolArray) -> tuple[IntArray, IntArray]:
    """Per point, the index of the last alarm at or before it and of the next at or after it (-+2^40: none)."""
    idx = np.arange(alert.shape[1], dtype=np.int64)
    none = np.int64(1 << 40)
    last = np.maximum.accumulate(np.where(alert, idx, -none), axis=1)
    nxt = np.minimum.accumulate(np.where(alert, idx, none)[:, ::-1], axis=1)[:, ::-1]
    return last, nxt


def strongest_run(alert: BoolArray, q_alert: FloatArray, span: int) -> tuple[IntArray, IntArray]:
    """(first alarm, estimated last changed point) of the run holding each series' smallest ``q_alert`` (-1 = none).

    A run is a stretch of alarms whose silences are at most ``span`` points long (a window
    test may pause inside one incident). A window of ``span`` points keeps alarming for
    ``span`` - 1 points after the change ends, so a run that ends before the series does is
    taken to cover the change up to ``span`` - 1 points before its last alarm.
    """
    n, t = alert.shape
    idx = np.arange(t)
    has = alert.any(axis=1)
    best = np.maximum(np.argmin(np.where(alert, q_alert, np.inf), axis=1), 0)
    last, nxt = last_and_next(alert)
    inside = alert | ((idx - last <= span) & (nxt - idx <= span))
    previous = np.zeros_like(inside)
    previous[:, 1:] = inside[:, :-1]
    starts = np.maximum.accumulate(np.where(inside & ~previous, idx, -1), axis=1)
    ends = np.minimum.accumulate(np.where(inside, t, idx)[:, ::-1], axis=1)[:, ::-1] - 1
    rows = np.arange(n)
    start = starts[rows, best]
    end = ends[rows, best]
    end = np.where(end < t - 1, np.maximum(start, end - (span - 1)), end)
    return np.where(has, start, -1).astype(np.int64), np.where(has, end, -1).astype(np.int64)


def run_sum(x: FloatArray, start: IntArray, end: IntArray) -> FloatArray:
    """Per row, the sum of ``x[start .. end]`` (NaN where start < 0)."""
    cs = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    rows = np.arange(x.shape[0])
    s = np.maximum(start, 0)
    e = np.maximum(end, 0)
    out: FloatArray = np.where(start >= 0, cs[rows, e + 1] - cs[rows, s], np.nan)
    return out


def score(q: FloatArray, alpha: float) -> FloatArray:
    """Squash -log10(q) to [0, 1): 0 at q = 1, 0.5 exactly at the alarm threshold q = alpha."""
    evidence = np.maximum(-np.log10(np.clip(q, 1e-300, 1.0)), 0.0)
    out: FloatArray = evidence / (evidence + -np.log10(alpha))
    return out
