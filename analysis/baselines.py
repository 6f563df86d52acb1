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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DAY_S",
    "MAD_TO_SIGMA",
    "NESTED_PERIOD_MARGIN",
    "SPREAD_ABS_FLOOR",
    "SPREAD_REL_FLOOR",
    "WEEK_S",
    "Baseline",
    "auto_baseline",
    "daily_baseline",
    "detect_seasonality",
    "detect_seasonality_per_series",
    "robust_zscore",
    "seasonal_baseline",
    "trailing_baseline",
    "weekly_baseline",
]

DAY_S = 86_400
WEEK_S = 7 * DAY_S

MAD_TO_SIGMA = 1.4826
"""1 / Phi^-1(3/4): makes the MAD a consistent estimator of sigma for normal data."""

SPREAD_REL_FLOOR = 1e-3
"""``spread`` is at least this fraction of ``|center|`` (a perfectly flat reference set
would otherwise give a zero scale and infinite z-scores for any change) ..."""

SPREAD_ABS_FLOOR = 1e-9
"""... and at least this, in the series' unit, so a flat zero reference is not 0 either."""

NESTED_PERIOD_MARGIN = 0.1
"""A period that is a multiple of a shorter detected one must beat its ACF by this much."""

_MIN_PAIRS = 20
"""Fewer present (x_t, x_t+lag) pairs than this leave the ACF at that lag undefined."""

_CHUNK_ELEMENTS = 1 << 18
"""Reference values gathered per chunk: 256 Ki float64 = 2 MiB per temporary, small enough
to stay in cache and be reused by the allocator (32 MiB chunks ran 2.4x slower)."""

_DEFAULT_TRAILING_WINDOW = 60


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


def _as_2d(values: ArrayLike) -> tuple[NDArray[np.float64], bool]:
    """(values as a float64 ``[n_series, n_times]`` array, whether the input was 1-D)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        return arr[np.newaxis, :], True
    if arr.ndim == 2:
        return arr, False
    raise ValueError(f"values must be 1-D [n_times] or 2-D [n_series, n_times], got shape {arr.shape}")


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
    values: ArrayLike, lags: NDArray[np.intp], *, min_support: int, band: tuple[float, float], method: str
) -> Baseline:
    """Baseline whose reference set at ``t`` is ``values[t - lag]`` for each lag (all >= 1); out of range = missing."""
    x, one_d = _as_2d(values)
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
    return Baseline(center, spread, lower, upper, support, method, (method,) * n_series)


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
    return _lagged_baseline(values, lags, min_support=min_support, band=band, method=method)


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


def _nanmedian_last(a: NDArray[np.float64], min_count: int = 1) -> NDArray[np.float64]:
    """Median over the last axis, NaNs ignored; NaN where fewer than ``min_count`` values are present."""
    count = a.shape[-1] - np.isnan(a).sum(axis=-1)
    ordered = np.sort(a, axis=-1)
    n = np.maximum(count, 1).astype(np.intp)
    out = 0.5 * (_take(ordered, (n - 1) // 2) + _take(ordered, n // 2))
    out[count < min_count] = np.nan
    return out


def _fill_along_time(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x`` with each NaN replaced by the nearest earlier value of its row, leading NaNs by the first value."""
    n_series, n_times = x.shape
    valid = ~np.isnan(x)
    last = np.maximum.accumulate(np.where(valid, np.arange(n_times), -1), axis=1)
    first = valid.argmax(axis=1)[:, np.newaxis]
    out: NDArray[np.float64] = x[np.arange(n_series)[:, np.newaxis], np.where(last >= 0, last, first)]
    return out


def _detrend(x: NDArray[np.float64], lag: int) -> NDArray[np.float64]:
    """Residual of each row around its level at the scale of one period of ``lag`` points, winsorised.

    The level is a centred running median over one period, computed as the median of
    k ~ 12 consecutive block medians of ~lag/12 points each (a remedian, Rousseeuw &
    Bassett 1990; cheap and NaN-tolerant: a block median ignores NaNs, a window needs half
    its blocks). Over a whole period a pattern of that period (or of a divisor of it)
    has a constant median, so it stays in the residual, while trends and level shifts go
    to the level (a running median keeps a step a step, where a moving average or a
    fitted line would smear it into a ramp that looks periodic over two cycles). Levels
    are interpolated linearly between window centres; before the first and after the last
    full window they are extrapolated with the median slope between consecutive levels,
    so a trend continues to the ends and a one-off shift does not tilt them. Residuals
    are clipped to median +- 4 * 1.4826 * MAD so that a few spikes cannot mask (or fake)
    a correlation. All-NaN when the series has less than one period plus one block.
    """
    n_series, n_times = x.shape
    block = max(1, lag // 12)
    k = max(1, round(lag / block))
    n_blocks = -(-n_times // block)
    if n_blocks < k + 1:
        return np.full_like(x, np.nan)
    padded = np.full((n_series, n_blocks * block), np.nan)
    padded[:, :n_times] = x
    block_median = _nanmedian_last(padded.reshape(n_series, n_blocks, block))
    starts = np.arange(n_blocks) * block
    block_centre = (starts + np.minimum(starts + block, n_times) - 1) / 2.0
    windows = np.lib.stride_tricks.sliding_window_view(block_median, k, axis=1)
    level = _fill_along_time(_nanmedian_last(windows, min_count=max(1, k // 2)))
    level_t = (block_centre[: n_blocks - k + 1] + block_centre[k - 1 :]) / 2.0
    slope = np.nan_to_num(_nanmedian_last(np.diff(level, axis=1) / np.diff(level_t)))
    t = np.arange(n_times, dtype=np.float64)
    pos = np.interp(t, level_t, np.arange(len(level_t), dtype=np.float64))  # fractional index, clamped
    j0 = np.floor(pos).astype(np.intp)
    j1 = np.minimum(j0 + 1, len(level_t) - 1)
    w = pos - j0
    beyond = np.minimum(t - level_t[0], 0.0) + np.maximum(t - level_t[-1], 0.0)
    resid = x - (level[:, j0] * (1.0 - w) + level[:, j1] * w + slope[:, np.newaxis] * beyond)
    center = _nanmedian_last(resid)[:, np.newaxis]
    reach = 4.0 * MAD_TO_SIGMA * _nanmedian_last(np.abs(resid - center))[:, np.newaxis]
    out: NDArray[np.float64] = np.where(reach > 0, np.clip(resid, center - reach, center + reach), resid)
    return out


def _lag_correlation(x: NDArray[np.float64], lag: int) -> NDArray[np.float64]:
    """Pearson correlation of each row with itself ``lag`` points later, over pairs where both are present."""
    a, b = x[:, :-lag], x[:, lag:]
    both = ~(np.isnan(a) | np.isnan(b))
    n = both.sum(axis=1)
    safe_n = np.maximum(n, 1)
    da = np.where(both, a - (np.where(both, a, 0.0).sum(axis=1) / safe_n)[:, np.newaxis], 0.0)
    db = np.where(both, b - (np.where(both, b, 0.0).sum(axis=1) / safe_n)[:, np.newaxis], 0.0)
    denom = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    ok = (n >= _MIN_PAIRS) & (denom > 0)
    out: NDArray[np.float64] = np.full(x.shape[0], np.nan)
    out[ok] = (da * db).sum(axis=1)[ok] / denom[ok]
    return out


def detect_seasonality_per_series(
    values: ArrayLike,
    *,
    resolution_s: int,
    candidates_s: Sequence[int] = (DAY_S, WEEK_S),
    min_acf: float = 0.3,
    min_cycles: float = 2.0,
) -> list[int | None]:
    """Return ``detect_seasonality`` of each series of ``values`` (1-D: a one-element list), vectorised."""
    x, _ = _as_2d(values)
    if resolution_s < 1:
        raise ValueError(f"resolution_s must be >= 1, got {resolution_s}")
    n_series, n_times = x.shape
    best_s = np.zeros(n_series, dtype=np.int64)  # 0 = no period detected yet
    best_acf = np.full(n_series, -np.inf)
    for cand_s in sorted(set(candidates_s)):
        lag = cand_s // resolution_s
        if lag < 2 or n_times * resolution_s < min_cycles * cand_s or n_times <= lag:
            continue
        acf = np.nan_to_num(_lag_correlation(_detrend(x, lag), lag), nan=-np.inf)
        nested = (best_s > 0) & (cand_s % np.maximum(best_s, 1) == 0)
        wins = (acf > min_acf) & (acf > best_acf + np.where(nested, NESTED_PERIOD_MARGIN, 0.0))
        best_s = np.where(wins, cand_s, best_s)
        best_acf = np.where(wins, acf, best_acf)
    return [int(s) if s > 0 else None for s in best_s]


def detect_seasonality(
    values: ArrayLike,
    *,
    resolution_s: int,
    candidates_s: Sequence[int] = (DAY_S, WEEK_S),
    min_acf: float = 0.3,
    min_cycles: float = 2.0,
) -> int | None:
    """Return the seasonal period of a 1-D series in seconds, or None when it has none.

    For each candidate period (seconds; lag = period // ``resolution_s`` points, at least
    2) that the series spans at least ``min_cycles`` times, the series is detrended (minus
    a centred running median over one period, residuals winsorised; see ``_detrend``) and
    its autocorrelation at that lag is the Pearson correlation over the pairs
    ``(r_t, r_t+lag)`` where both are present (NaN gaps are skipped, not filled; at least
    20 pairs). The answer is the candidate with the highest autocorrelation above
    ``min_acf``, with one exception for nested periods: a pattern of period P also repeats
    at every multiple of P, so a candidate that is a multiple of a shorter winner must beat
    its autocorrelation by ``NESTED_PERIOD_MARGIN`` (0.1) to replace it (a daily pattern
    stays daily; a weekday/weekend pattern becomes weekly). ACF-based period detection as
    in Box & Jenkins (1976) and Wang, Smith & Hyndman (2006). Over only two cycles the
    estimate is noisy for strongly autocorrelated series: a random walk passes at the
    longest lag about one time in five over two cycles, one in twenty over three; raise
    ``min_cycles`` to be stricter.
    """
    if np.ndim(values) != 1:
        raise ValueError("detect_seasonality takes one 1-D series; use detect_seasonality_per_series for 2-D")
    return detect_seasonality_per_series(
        values, resolution_s=resolution_s, candidates_s=candidates_s, min_acf=min_acf, min_cycles=min_cycles
    )[0]


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
    x, one_d = _as_2d(values)
    window = _DEFAULT_TRAILING_WINDOW if trailing_window is None else trailing_window
    periods = detect_seasonality_per_series(x, resolution_s=resolution_s)
    n_series, n_times = x.shape
    stats = [np.full((n_series, n_times), np.nan) for _ in range(4)]
    support = np.zeros((n_series, n_times), dtype=np.int64)
    series_methods = [""] * n_series
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
            )
        for out, got in zip(stats, (part.center, part.spread, part.lower, part.upper), strict=True):
            out[rows] = got
        support[rows] = part.support
        for i in rows:
            series_methods[i] = part.method
    distinct = set(series_methods)
    method = distinct.pop() if len(distinct) == 1 else "mixed"
    center, spread, lower, upper = stats
    if one_d:
        center, spread, lower, upper, support = center[0], spread[0], lower[0], upper[0], support[0]
    return Baseline(center, spread, lower, upper, support, method, tuple(series_methods))


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
