"""Seasonality of one regular series: is there a period, and what is its shape.

A period is *detected*, never assumed (Hyndman & Athanasopoulos, "Forecasting: principles
and practice", ch. 6: decomposition; the candidate search follows Vlachos, Yu & Castelli
2005, "On periodicity detection and structural periodic similarity": autocorrelation peaks
checked by the fit they give):

- candidates: the strongest local maxima of the autocorrelation of the linearly detrended
  series (above ``MIN_ACF``), and the calendar periods the time axis suggests (a day and a
  week of steps for sub-daily data, 7 for daily, 12 for monthly, 4 for quarterly);
- each candidate is judged by how much subtracting its seasonal profile shrinks the
  variation around a moving average one period long (which removes level and trend but
  not seasonality): ``ratio`` = mean |residual| / mean |original|, the profile of each
  period estimated from the other half of the periods (two-fold cross-validation, so long
  candidates with few repetitions cannot win by fitting the noise);
- the best candidate wins, except that a divisor of it that fits almost as well (within
  ``FUNDAMENTAL_SLACK``) is preferred (a week of data is also "periodic" at 3 days) and a
  calendar period next to an autocorrelation peak is preferred to the peak;
- a period is kept only when the series holds ``MIN_PERIODS`` of it and the profile
  removes a real share of the variation (``ratio`` <= ``MAX_RATIO``): a detector that cannot
  know the seasonality says less, so a doubtful period is no period.

The profile is the per-phase median of values minus each period's own median (a shape, not
a level), either over the whole series (offline) or over the ``CAUSAL_PERIODS`` periods
before each point (causal: no look-ahead).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from detectors.series.grid import Grid
from detectors.series.robust import FloatArray, centred, lag

MIN_ACF = 0.2
MIN_PERIODS = 3
MAX_RATIO = 0.75
FUNDAMENTAL_SLACK = 0.1
CALENDAR_SLACK = 0.05
MAX_ACF_CANDIDATES = 8
CAUSAL_PERIODS = 4


@dataclass(frozen=True)
class Season:
    """A detected period (in grid steps) and how much of the variation its profile explains."""

    period: int
    """0 = no seasonality."""
    ratio: float
    """Mean |deseasonalised deviation| / mean |deviation| around a one-period moving average (lower = stronger)."""


def calendar_periods(grid: Grid) -> list[int]:
    """Periods the time axis suggests, in steps: day and week for sub-daily data, week for daily, year for months."""
    if grid.axis == "month":
        return [12]
    if grid.axis == "quarter":
        return [4]
    if grid.axis != "time":
        return []
    out = []
    for span_s in (86_400.0, 7 * 86_400.0):
        steps = span_s / grid.step_s
        if steps >= 3 and abs(steps - round(steps)) < 1e-6:
            out.append(round(steps))
    return out


def _autocorrelation(x: FloatArray) -> FloatArray:
    """Autocorrelation of the gap-interpolated, linearly detrended series at every lag (FFT)."""
    n = len(x)
    present = np.isfinite(x)
    idx = np.arange(n, dtype=np.float64)
    y = np.interp(idx, idx[present], x[present])
    t = idx - idx.mean()
    y = y - y.mean()
    y = y - t * float(t @ y) / float(t @ t)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(y, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    return acf / acf[0] if acf[0] > 0 else np.zeros(n)


def _variation(x: FloatArray, period: int) -> float:
    """Mean |x - its centred moving average of one period| (level and trend removed, seasonality kept)."""
    return float(np.nanmean(np.abs(x - centred(x, period, "mean"))))


def _shape(detrended: FloatArray) -> FloatArray:
    """Per-phase median of rows of (value - the row's median), centred; 0 where a phase has no data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a phase with no data: NaN, filled below
        shape = np.nanmedian(detrended, axis=0)
    return np.nan_to_num(shape - np.nanmedian(shape))


def _table(x: FloatArray, period: int) -> FloatArray:
    """The series as rows of one period each (the last row padded with NaN), each row minus its median."""
    rows = -(-len(x) // period)
    flat = np.full(rows * period, np.nan)
    flat[: len(x)] = x
    table = flat.reshape(rows, period)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a period with no data
        return np.asarray(table - np.nanmedian(table, axis=1, keepdims=True), dtype=np.float64)


def profile(x: FloatArray, period: int) -> FloatArray:
    """Offline seasonal component of every point: per-phase median of (value - its period's median)."""
    table = _table(x, period)
    return np.tile(_shape(table), table.shape[0])[: len(x)]


def _held_out_profile(x: FloatArray, period: int) -> FloatArray:
    """The seasonal component of each period estimated from the *other* half of the periods (even / odd),
    so that a candidate is judged on data its profile did not see (a profile fitted to three
    repetitions would otherwise match a third of the noise exactly)."""
    table = _table(x, period)
    even, odd = _shape(table[0::2]), _shape(table[1::2])
    out = np.empty_like(table)
    out[0::2] = odd
    out[1::2] = even
    return out.reshape(-1)[: len(x)]


def causal_profile(x: FloatArray, period: int) -> FloatArray:
    """Seasonal component from the ``CAUSAL_PERIODS`` periods before each point only (NaN before one period)."""
    level = centred(x, period, "mean")
    # the centred level of point t - j*period needs points up to t - j*period + period/2 < t: causal for j >= 1
    detrended = x - level
    past = np.vstack([lag(detrended, j * period) for j in range(1, CAUSAL_PERIODS + 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no past period yet: NaN
        return np.asarray(np.nanmedian(past, axis=0), dtype=np.float64)


def detect(x: FloatArray, grid: Grid | None = None) -> Season:
    """The series' period (0 if none is convincing) from the values and, when known, the time axis."""
    n = len(x)
    present = np.isfinite(x)
    if present.sum() < 4 * MIN_PERIODS:
        return Season(0, 1.0)
    longest = n // MIN_PERIODS
    candidates: set[int] = set()
    if longest > 4:
        acf = _autocorrelation(x)[: longest + 1]
        inner = acf[2:-1]
        maxima = np.flatnonzero((inner > acf[1:-2]) & (inner >= acf[3:])) + 2
        peaks = sorted((int(p) for p in maxima if acf[p] > MIN_ACF and p >= 3), key=lambda p: -acf[p])
        candidates.update(peaks[:MAX_ACF_CANDIDATES])
    calendar = [p for p in (calendar_periods(grid) if grid is not None else []) if 3 <= p <= longest]
    candidates.update(calendar)
    ratios: dict[int, float] = {}
    for period in sorted(candidates):
        base = _variation(x, period)
        if base > 0:
            ratios[period] = _variation(x - _held_out_profile(x, period), period) / base
    if not ratios:
        return Season(0, 1.0)
    best = min(ratios, key=lambda p: ratios[p])
    slack = ratios[best] * (1 + FUNDAMENTAL_SLACK) + 0.02
    divisors = [p for p in ratios if p < best and abs(best / p - round(best / p)) < 0.02 and ratios[p] <= slack]
    if divisors:
        best = min(divisors, key=lambda p: ratios[p])
    for period in calendar:
        near = abs(best - period) / period < 0.03
        if period in ratios and near and ratios[period] <= ratios[best] * (1 + CALENDAR_SLACK) + 0.01:
            best = period
    ratio = ratios[best]
    return Season(best, ratio) if ratio <= MAX_RATIO else Season(0, ratio)
