"""The regular grid under any time axis: rows map back one to one, steps hold their rows' mean."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.series.grid import regularise


def _seconds(*stamps: dt.datetime) -> np.ndarray:
    epoch = dt.datetime(1970, 1, 1)
    return np.array([(s - epoch).total_seconds() for s in stamps])


@given(
    steps=st.lists(st.integers(0, 5), min_size=3, max_size=200),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_every_row_lands_on_a_step_holding_the_mean_of_its_rows(steps: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = np.cumsum(np.array(steps) * 60.0) + 1.7e9
    rng.shuffle(times)  # unsorted, with duplicates where a step was 0
    values = rng.normal(size=len(times))
    grid = regularise(times, values)
    assert len(grid.row_step) == len(times)
    assert grid.row_step.min() == 0 and grid.row_step.max() == grid.n - 1
    for step in np.unique(grid.row_step):
        assert np.isclose(grid.values[step], values[grid.row_step == step].mean())
    order = np.argsort(times, kind="stable")
    assert np.all(np.diff(grid.row_step[order]) >= 0)  # time order is kept


def test_calendar_months_are_one_step_whatever_their_length() -> None:
    stamps = [dt.datetime(1998 + m // 12, m % 12 + 1, 1) for m in range(36)]
    grid = regularise(_seconds(*stamps), np.arange(36.0))
    assert grid.axis == "month"
    assert grid.row_step.tolist() == list(range(36))
    assert np.array_equal(grid.values, np.arange(36.0))


def test_years_from_the_first_century_are_a_yearly_grid() -> None:
    stamps = [dt.datetime(y, 1, 1) for y in range(1, 40)]
    grid = regularise(_seconds(*stamps), np.arange(39.0))
    assert grid.axis == "year" and grid.n == 39


def test_no_time_axis_is_row_order() -> None:
    grid = regularise(None, np.array([3.0, 1.0, 2.0]))
    assert grid.axis == "rows" and grid.values.tolist() == [3.0, 1.0, 2.0]


def test_gaps_stay_missing_steps() -> None:
    times = np.array([0, 60, 120, 600, 660], dtype=float)
    grid = regularise(times, np.ones(5))
    assert grid.n == 12 and int(np.isnan(grid.values).sum()) == 7


def test_a_mostly_empty_grid_falls_back_to_the_order_of_times() -> None:
    times = np.concatenate([np.arange(1000.0), 1e9 + np.arange(1000.0)])  # one step of 1 s, then 30 years away
    grid = regularise(times, np.ones(2000))
    assert grid.axis == "rows" and grid.n == 2000
