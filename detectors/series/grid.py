"""Put any univariate series on a regular grid: the time axis the detectors work on.

Rows may come unsorted, duplicated, irregular, with gaps, on a calendar step (months,
quarters and years have no fixed length in seconds) or with no time at all. ``regularise``
returns one value per grid step (rows in one step averaged, empty steps NaN) and, for
every input row, the step it landed in, so results map back to rows one to one.

- No time axis: the grid is the row order (one row, one step).
- Calendar steps (a median step of 27-32 days, 88-93 days or 360-370 days): steps are
  calendar months, quarters or years counted from the first row, so January to February
  is one step whatever the number of days.
- Otherwise: the median positive step between sorted distinct times, rows rounded to the
  nearest step from the first.
- A grid that would be mostly empty (over ``SPARSE_FACTOR`` times as many steps as rows
  and more than ``SPARSE_MIN_STEPS`` steps: a few rows spread over years with a tiny
  typical step) falls back to the order of distinct times, so memory follows the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ScalarT = TypeVar("ScalarT", bound=np.generic)

Calendar = Literal["month", "quarter", "year"]
DAY_S = 86_400.0
SPARSE_FACTOR = 20
SPARSE_MIN_STEPS = 200_000
_CALENDAR_STEPS: tuple[tuple[Calendar, float, float, float], ...] = (
    ("month", 27 * DAY_S, 32 * DAY_S, 30.436875 * DAY_S),
    ("quarter", 88 * DAY_S, 93 * DAY_S, 91.310625 * DAY_S),
    ("year", 360 * DAY_S, 370 * DAY_S, 365.2425 * DAY_S),
)


@dataclass(frozen=True, eq=False)
class Grid:
    """A series on a regular grid and the way back to the input rows."""

    values: FloatArray
    """Mean of the rows in each step, NaN for a step without rows."""
    row_step: IntArray
    """For each input row (input order), the index of its step."""
    step_s: float
    """Nominal step in seconds (a calendar step's mean length); 1.0 for a row-order axis."""
    axis: Literal["time", "month", "quarter", "year", "rows"]
    """How steps were made: fixed seconds, calendar units, or row order (no usable time)."""

    @property
    def n(self) -> int:
        return len(self.values)

    def to_rows(self, per_step: NDArray[ScalarT]) -> NDArray[ScalarT]:
        """A per-step array read back per input row."""
        return per_step[self.row_step]


def _mean_per_step(steps: IntArray, values: FloatArray, n: int) -> FloatArray:
    present = np.isfinite(values)
    sums = np.bincount(steps, weights=np.where(present, values, 0.0), minlength=n)
    counts = np.bincount(steps, weights=present.astype(np.float64), minlength=n)
    out = np.full(n, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _calendar_steps(times_s: FloatArray, unit: Calendar) -> IntArray:
    """Calendar months / quarters / years since the earliest row (any year from 1 to 9999)."""
    seconds = np.floor(times_s).astype(np.int64).astype("datetime64[s]")
    months = seconds.astype("datetime64[M]").astype(np.int64)
    if unit == "year":
        index = seconds.astype("datetime64[Y]").astype(np.int64)
    elif unit == "quarter":
        index = np.floor_divide(months, 3)
    else:
        index = months
    return np.asarray(index - index.min(), dtype=np.int64)


def regularise(times_s: FloatArray | None, values: FloatArray) -> Grid:
    """The regular grid of a series given per row as seconds (any epoch; None = row order) and values."""
    values = np.asarray(values, dtype=np.float64)
    n_rows = len(values)
    if n_rows == 0:
        raise ValueError("no rows")
    if times_s is None:
        return Grid(values.copy(), np.arange(n_rows, dtype=np.int64), 1.0, "rows")
    times_s = np.asarray(times_s, dtype=np.float64)
    distinct = np.unique(times_s)
    steps = np.diff(distinct)
    if len(steps) == 0:
        return Grid(np.array([np.nanmean(values) if np.isfinite(values).any() else np.nan]),
                    np.zeros(n_rows, np.int64), 1.0, "rows")  # fmt: skip
    step_s = float(np.median(steps))
    for unit, low, high, mean_s in _CALENDAR_STEPS:
        if low <= step_s <= high:
            row_step = _calendar_steps(times_s, unit)
            n = int(row_step.max()) + 1
            if n <= SPARSE_FACTOR * n_rows:
                return Grid(_mean_per_step(row_step, values, n), row_step, mean_s, unit)
    row_step = np.rint((times_s - distinct[0]) / step_s).astype(np.int64)
    n = int(row_step.max()) + 1
    if n > SPARSE_FACTOR * n_rows and n > SPARSE_MIN_STEPS:
        row_step = np.searchsorted(distinct, times_s).astype(np.int64)
        return Grid(_mean_per_step(row_step, values, len(distinct)), row_step, step_s, "rows")
    return Grid(_mean_per_step(row_step, values, n), row_step, step_s, "time")
