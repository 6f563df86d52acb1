"""Which series repeat themselves, and with what period: seasonality detection from the
autocorrelation of detrended series (daily, weekly), used by ``analysis.baselines.auto_baseline``
and by detectors that take a seasonal profile out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.robust import MAD_TO_SIGMA, as_rows, nanmedian_last

DAY_S = 86_400
WEEK_S = 7 * DAY_S
NESTED_PERIOD_MARGIN = 0.1
"""A period that is a multiple of a shorter detected one must beat its ACF by this much."""
_MIN_PAIRS = 20
"""Fewer present (x_t, x_t+lag) pairs than this leave the ACF at that lag undefined."""


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
    block_median = nanmedian_last(padded.reshape(n_series, n_blocks, block))
    starts = np.arange(n_blocks) * block
    block_centre = (starts + np.minimum(starts + block, n_times) - 1) / 2.0
    windows = np.lib.stride_tricks.sliding_window_view(block_median, k, axis=1)
    level = _fill_along_time(nanmedian_last(windows, min_count=max(1, k // 2)))
    level_t = (block_centre[: n_blocks - k + 1] + block_centre[k - 1 :]) / 2.0
    slope = np.nan_to_num(nanmedian_last(np.diff(level, axis=1) / np.diff(level_t)))
    t = np.arange(n_times, dtype=np.float64)
    pos = np.interp(t, level_t, np.arange(len(level_t), dtype=np.float64))  # fractional index, clamped
    j0 = np.floor(pos).astype(np.intp)
    j1 = np.minimum(j0 + 1, len(level_t) - 1)
    w = pos - j0
    beyond = np.minimum(t - level_t[0], 0.0) + np.maximum(t - level_t[-1], 0.0)
    resid = x - (level[:, j0] * (1.0 - w) + level[:, j1] * w + slope[:, np.newaxis] * beyond)
    center = nanmedian_last(resid)[:, np.newaxis]
    reach = 4.0 * MAD_TO_SIGMA * nanmedian_last(np.abs(resid - center))[:, np.newaxis]
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
    x, _ = as_rows(values)
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
