"""Robust baselines for regular time series: trailing, seasonal and auto-selected.

A signal is a regular series: ``values`` (float64, NaN = missing) on a time axis with a
fixed step of ``resolution_s`` seconds. Every function takes one series (1-D,
``[n_times]``) or many sharing one time axis (2-D, ``[n_series, n_times]``) and returns
arrays of the same shape, computed for all series at once.

A baseline says, for each point ``t``, what the series looked like in a *reference set*
of earlier points, NaNs ignored:

- trailing: the ``window`` points strictly before ``t`` (``t - window .. t - 1``);
- seasonal: the points one, two, ... ``seasons`` periods before ``t`` (each optionally
  widened by ``tolerance`` neighbouring points either side, against timing jitter).

From the reference values it reports the median (``center``), the normal-consistent MAD
(``spread`` = 1.4826 * median(|x - median|), Hampel 1974; Rousseeuw & Croux 1993, 1.4826 =
1 / Phi^-1(3/4); floored at max(1e-3 * |center|, 1e-9) so a flat reference set does not
give a zero scale), a quantile band (``lower``/``upper``, linear interpolation: Hyndman &
Fan 1996 type 7, numpy's default) and ``support``, the number of reference values used.
All of them are in the series' own unit, except ``support`` (a count). The robust z-score
(Iglewicz & Hoaglin 1993) is ``(values - center) / spread``.

Reference values are gathered with one fancy-index per chunk into a ``[series, times,
references]`` block, sorted along the last axis (NaN sorts last, so the ``n`` present
values are the first ``n``), and order statistics are read at per-point indices. Chunks
of 256 Ki reference values bound the temporary memory to a few MB whatever the input
size; the outputs are the only full-size allocations. The time axis itself is not needed:
the series is regular, so "k periods earlier" is "k * period points earlier".

Seasonality is detected, not assumed: ``detect_seasonality`` checks each candidate period
by the autocorrelation of the detrended series at that lag; ``auto_baseline`` gives
seasonal series a seasonal baseline and the others a trailing one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.robust import MAD_TO_SIGMA, as_rows
from analysis.seasonality import DAY_S, NESTED_PERIOD_MARGIN, WEEK_S, detect_seasonality, detect_seasonality_per_series

__all__ = [
    "DAY_S",
    "MAD_TO_SIGMA",
    "NESTED_PERIOD_MARGIN",
    "SPREAD_ABS_FLOOR",
    "SPREAD_REL_FLOOR",
    "WEEK_S",
    "Baseline",
    "Seasonality",
    "auto_baseline",
    "daily_baseline",
    "detect_seasonality",
    "detect_seasonality_per_series",
    "robust_zscore",
    "seasonal_baseline",
    "trailing_baseline",
    "weekly_baseline",
]


SPREAD_REL_FLOOR = 1e-3
"""``spread`` is at least this fraction of ``|center|`` (a perfectly flat reference set
would otherwise give a zero scale and infinite z-scores for any change) ..."""

SPREAD_ABS_FLOOR = 1e-9
"""... and at least this, in the series' unit, so a flat zero reference is not 0 either."""


_CHUNK_ELEMENTS = 1 << 18
"""Reference values gathered per chunk: 256 Ki float64 = 2 MiB per temporary, small enough
to stay in cache and be reused by the allocator (32 MiB chunks ran 2.4x slower)."""

_DEFAULT_TRAILING_WINDOW = 60


@dataclass(frozen=True)
class Seasonality:
    """A seasonal reference set: the same point ``seasons`` periods back, +- ``tolerance`` points.

    ``period`` and ``tolerance`` are in points of the series' resolution.
    """

    period: int
    seasons: int
    tolerance: int


@dataclass(frozen=True, eq=False)
class Baseline:
    """Per-point robust expectation of a series (or of each of many series).

    All arrays have the shape of the input values. Where ``support < min_support`` the
    four statistics are NaN. ``eq=False``: arrays do not compare as one truth value, so
    baselines compare (and hash) by identity.
    """

    center: NDArray[np.float64]
    """Median of the reference values (series unit)."""
    spread: NDArray[np.float64]
    """1.4826 * MAD of the reference values, floored at max(1e-3 * |center|, 1e-9) (series unit)."""
    lower: NDArray[np.float64]
    """Lower band quantile of the reference values (default 5th percentile)."""
    upper: NDArray[np.float64]
    """Upper band quantile of the reference values (default 95th percentile)."""
    support: NDArray[np.int64]
    """Number of non-NaN reference values per point."""
    method: str
    """How the reference set was chosen, e.g. ``trailing(window=60)``,
    ``seasonal(period=288,seasons=7,tolerance=0)``, or ``mixed`` (see ``series_methods``)."""
    series_methods: tuple[str, ...] = ()
    """The method of each series, in row order (one entry for 1-D input)."""
    seasonal: Seasonality | None = None
    """The seasonal reference set every series shares (None: not seasonal, or mixed)."""
    series_seasonal: tuple[Seasonality | None, ...] = ()
    """The seasonal reference set of each series, in row order (None for a trailing one)."""

    def seasonality(self, n: int) -> tuple[Seasonality | None, ...]:
        """Per series of ``n``: its seasonal reference set as data (None: not seasonal)."""
        return self.series_seasonal if len(self.series_seasonal) == n else (self.seasonal,) * n


def _check_common(min_support: int, band: tuple[float, float]) -> None:
    if min_support < 1:
        raise ValueError(f"min_support must be >= 1, got {min_support}")
    lo, hi = band
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"band must satisfy 0 <= lower <= upper <= 1, got {band}")


def _take(sorted_ref: NDArray[np.float64], idx: NDArray[np.intp]) -> NDArray[np.float64]:
    """``sorted_ref[..., idx[...]]`` along the last axis."""
    return np.take_along_axis(sorted_ref, idx[..., np.newaxis], axis=-1)[..., 0]


def _quantile_sorted(sorted_ref: NDArray[np.float64], n: NDArray[np.intp], q: float) -> NDArray[np.float64]:
    """Type-7 quantile of the first ``n`` values of each sorted row (numpy's ``linear``, same lerp)."""
    h = (n - 1) * q
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    frac = h - lo
    a = _take(sorted_ref, lo)
    b = _take(sorted_ref, hi)
    diff = b - a
    # numpy's _lerp: interpolate from the nearer end so the result is monotone in q.
    out: NDArray[np.float64] = np.where(frac >= 0.5, b - diff * (1.0 - frac), a + diff * frac)
    return out


def _robust_stats(
    ref: NDArray[np.float64], min_support: int, band: tuple[float, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """(median, floored 1.4826 * MAD, lower, upper, support) over the last axis of ``ref``, NaNs ignored.

    ``ref`` is sorted in place.
    """
    support = ref.shape[-1] - np.isnan(ref).sum(axis=-1, dtype=np.int64)
    ref.sort(axis=-1)  # NaN last: the present values are the first `support` of each row
    n = np.maximum(support, 1).astype(np.intp)
    mid_lo = (n - 1) // 2
    mid_hi = n // 2
    center = 0.5 * (_take(ref, mid_lo) + _take(ref, mid_hi))
    dev = ref - center[..., np.newaxis]
    np.abs(dev, out=dev)
    dev.sort(axis=-1)
    mad = 0.5 * (_take(dev, mid_lo) + _take(dev, mid_hi))
    spread = np.maximum(MAD_TO_SIGMA * mad, np.maximum(SPREAD_REL_FLOOR * np.abs(center), SPREAD_ABS_FLOOR))
    lower = _quantile_sorted(ref, n, band[0])
    upper = _quantile_sorted(ref, n, band[1])
    short = support < min_support
    for arr in (center, spread, lower, upper):
        arr[short] = np.nan
    return center, spread, lower, upper, support


def _lagged_baseline(
    values: ArrayLike,
    lags: NDArray[np.intp],
    *,
    min_support: int,
    band: tuple[float, float],
    method: str,
    seasonal: Seasonality | None = None,
) -> Baseline:
    """Baseline whose reference set at ``t`` is ``values[t - lag]`` for each lag (all >= 1); out of range = missing."""
    x, one_d = as_rows(values)
    n_series, n_times = x.shape
    k = len(lags)
    max_lag = int(lags.max())
    padded = np.concatenate([np.full((n_series, max_lag), np.nan), x], axis=1)
    stats = [np.empty((n_series, n_times)) for _ in range(4)]  # the chunks below fill every element
    support = np.empty((n_series, n_times), dtype=np.int64)
    times_per_chunk = max(1, min(n_times, _CHUNK_ELEMENTS // k))
    series_per_chunk = max(1, _CHUNK_ELEMENTS // (times_per_chunk * k))
    for s0 in range(0, n_series, series_per_chunk):
        s1 = min(n_series, s0 + series_per_chunk)
        for t0 in range(0, n_times, times_per_chunk):
            t1 = min(n_times, t0 + times_per_chunk)
            idx = max_lag + np.arange(t0, t1)[:, np.newaxis] - lags[np.newaxis, :]
            ref = padded[s0:s1][:, idx]  # [series, times, references]
            *chunk_stats, chunk_support = _robust_stats(ref, min_support, band)
            for out, got in zip(stats, chunk_stats, strict=True):
                out[s0:s1, t0:t1] = got
            support[s0:s1, t0:t1] = chunk_support
    center, spread, lower, upper = stats
    if one_d:
        center, spread, lower, upper, support = center[0], spread[0], lower[0], upper[0], support[0]
    return Baseline(
        center, spread, lower, upper, support, method, (method,) * n_series, seasonal, (seasonal,) * n_series
    )


def trailing_baseline(
    values: ArrayLike, *, window: int, min_support: int = 10, band: tuple[float, float] = (0.05, 0.95)
) -> Baseline:
    """Return the trailing-window robust baseline of each point of ``values`` (1-D or 2-D).

    The reference set of point ``t`` is the ``window`` points strictly before it
    (``t - window .. t - 1``; fewer at the start of the series), NaNs ignored. ``center`` is
    their median, ``spread`` 1.4826 * MAD floored at max(1e-3 * |center|, 1e-9), ``lower`` and
    ``upper`` the ``band`` quantiles (type 7), all in the series' unit; NaN where fewer than
    ``min_support`` reference values are present. ``method`` is ``trailing(window=W)``.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    _check_common(min_support, band)
    if min_support > window:
        raise ValueError(f"min_support={min_support} can never be reached with window={window}")
    lags = np.arange(1, window + 1, dtype=np.intp)
    return _lagged_baseline(values, lags, min_support=min_support, band=band, method=f"trailing(window={window})")


def seasonal_baseline(
    values: ArrayLike,
    *,
    period: int,
    seasons: int,
    min_support: int = 3,
    band: tuple[float, float] = (0.05, 0.95),
    tolerance: int = 0,
) -> Baseline:
    """Return the seasonal robust baseline of each point of ``values`` (1-D or 2-D).

    The reference set of point ``t`` is ``values[t - k * period + d]`` for ``k = 1 ..
    seasons`` and ``d = -tolerance .. tolerance`` (``period`` and ``tolerance`` in points),
    keeping only offsets strictly before ``t`` and counting each point once when
    neighbourhoods overlap; points before the start of the series and NaNs are missing.
    Statistics as in ``trailing_baseline``: median, floored 1.4826 * MAD, ``band``
    quantiles, NaN where fewer than ``min_support`` values are present. ``method`` is
    ``seasonal(period=P,seasons=S,tolerance=T)``.
    """
    if period < 1 or seasons < 1 or tolerance < 0:
        raise ValueError(f"need period >= 1, seasons >= 1, tolerance >= 0; got {period}, {seasons}, {tolerance}")
    _check_common(min_support, band)
    offsets = (np.arange(1, seasons + 1)[:, np.newaxis] * period + np.arange(-tolerance, tolerance + 1)).ravel()
    lags = np.unique(offsets[offsets >= 1]).astype(np.intp)
    if min_support > len(lags):
        raise ValueError(f"min_support={min_support} can never be reached with {len(lags)} reference offsets")
    method = f"seasonal(period={period},seasons={seasons},tolerance={tolerance})"
    seasonal = Seasonality(period, seasons, tolerance)
    return _lagged_baseline(values, lags, min_support=min_support, band=band, method=method, seasonal=seasonal)


def _period_points(period_s: int, resolution_s: int) -> int:
    if resolution_s < 1 or resolution_s > period_s:
        raise ValueError(f"resolution_s must be in [1, {period_s}], got {resolution_s}")
    return period_s // resolution_s


def daily_baseline(
    values: ArrayLike,
    *,
    resolution_s: int,
    days: int = 7,
    min_support: int = 3,
    band: tuple[float, float] = (0.05, 0.95),
    tolerance: int = 0,
) -> Baseline:
    """Return ``seasonal_baseline`` with period = 86400 // ``resolution_s`` points and ``days`` seasons."""
    period = _period_points(DAY_S, resolution_s)
    return seasonal_baseline(
        values, period=period, seasons=days, min_support=min_support, band=band, tolerance=tolerance
    )


def weekly_baseline(
    values: ArrayLike,
    *,
    resolution_s: int,
    weeks: int = 4,
    min_support: int = 3,
    band: tuple[float, float] = (0.05, 0.95),
    tolerance: int = 0,
) -> Baseline:
    """Return ``seasonal_baseline`` with period = 604800 // ``resolution_s`` points and ``weeks`` seasons."""
    period = _period_points(WEEK_S, resolution_s)
    return seasonal_baseline(
        values, period=period, seasons=weeks, min_support=min_support, band=band, tolerance=tolerance
    )


def auto_baseline(values: ArrayLike, *, resolution_s: int, trailing_window: int | None = None) -> Baseline:
    """Return a baseline of each series of ``values`` (1-D or 2-D), seasonal where seasonality is detected.

    Each series is checked with ``detect_seasonality`` (candidates one day and one week).
    A series with detected period P seconds gets ``seasonal_baseline`` with period P //
    ``resolution_s`` points and as many seasons as are available before each point, at
    most 7 for a daily period and 4 for a weekly one (28 days // P, capped at 7), with the
    default ``min_support`` (3); until 3 whole periods exist its points take the trailing
    baseline instead (so a seasonal series is never without a baseline). Other series get
    ``trailing_baseline`` with ``trailing_window`` points (default 60) and ``min_support``
    = min(10, window). Series sharing a method are computed together. ``method`` is the
    common method string when all series share one, else ``mixed``; ``series_methods``
    lists each series' method.
    """
    x, one_d = as_rows(values)
    window = _DEFAULT_TRAILING_WINDOW if trailing_window is None else trailing_window
    periods = detect_seasonality_per_series(x, resolution_s=resolution_s)
    n_series, n_times = x.shape
    stats = [np.full((n_series, n_times), np.nan) for _ in range(4)]
    support = np.zeros((n_series, n_times), dtype=np.int64)
    series_methods = [""] * n_series
    series_seasonal: list[Seasonality | None] = [None] * n_series
    for period_s in set(periods):
        rows = np.array([i for i, p in enumerate(periods) if p == period_s], dtype=np.intp)
        if period_s is None:
            part = trailing_baseline(x[rows], window=window, min_support=min(10, window))
        else:
            seasons = max(1, min(7, 28 * DAY_S // period_s))
            part = seasonal_baseline(x[rows], period=period_s // resolution_s, seasons=seasons)
            # Until enough whole periods exist, the trailing baseline stands in.
            early = trailing_baseline(x[rows], window=window, min_support=min(10, window))
            missing = np.isnan(part.center)
            part = Baseline(
                center=np.where(missing, early.center, part.center),
                spread=np.where(missing, early.spread, part.spread),
                lower=np.where(missing, early.lower, part.lower),
                upper=np.where(missing, early.upper, part.upper),
                support=np.where(missing, early.support, part.support),
                method=part.method,
                seasonal=part.seasonal,
            )
        for out, got in zip(stats, (part.center, part.spread, part.lower, part.upper), strict=True):
            out[rows] = got
        support[rows] = part.support
        for i in rows:
            series_methods[i] = part.method
            series_seasonal[i] = part.seasonal
    distinct = set(series_methods)
    method = distinct.pop() if len(distinct) == 1 else "mixed"
    common = series_seasonal[0] if len(set(series_seasonal)) == 1 and series_seasonal else None
    center, spread, lower, upper = stats
    if one_d:
        center, spread, lower, upper, support = center[0], spread[0], lower[0], upper[0], support[0]
    return Baseline(
        center, spread, lower, upper, support, method, tuple(series_methods), common, tuple(series_seasonal)
    )


def robust_zscore(values: ArrayLike, baseline: Baseline) -> NDArray[np.float64]:
    """Return the robust z-score ``(values - center) / spread`` (unitless), NaN where either is NaN.

    With ``spread`` = 1.4826 * MAD this is the modified z-score of Iglewicz & Hoaglin
    (1993) measured against the reference set: about N(0, 1) for normal data while the
    series behaves like its baseline. ``values`` must have the baseline's shape.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.shape != baseline.center.shape:
        raise ValueError(f"values shape {x.shape} != baseline shape {baseline.center.shape}")
    out: NDArray[np.float64] = (x - baseline.center) / baseline.spread
    return out
