"""SparseShift: a batch job's durations judged on their observations, not on a minute grid."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.base import SeriesBatch, SignalKey
from detectors.sparse import SparseShift

NS_MIN = 60_000_000_000


def _job(seed: int, *, shift: float, every: int = 10, history_min: int = 1440, window_min: int = 180) -> SeriesBatch:
    """One run every ``every`` minutes, ~45 s each; from 60 minutes into the window, ``shift`` x longer."""
    rng = np.random.default_rng(seed)
    t = history_min + window_min
    values = np.full((1, t), np.nan)
    runs = np.arange(0, t, every)
    values[0, runs] = 45.0 * np.exp(0.2 * rng.standard_normal(len(runs)))
    values[0, runs[runs >= history_min + 60]] *= shift
    samples = np.where(np.isfinite(values), 1.0, 0.0)
    return SeriesBatch(
        keys=[SignalKey("histogram_p50", "inventory", None, "job.duration")],
        times_ns=np.arange(t, dtype=np.int64) * NS_MIN,
        values=values,
        samples=samples,
        resolution_s=60,
        window_start=history_min,
    )


def test_a_slower_job_is_found_at_its_first_slow_run() -> None:
    batch = _job(3, shift=1.8)
    det = SparseShift().detect(batch)
    assert det.change_index[0] == 1440 + 60  # pinned: the first run of the shifted window
    assert det.p_value[0] < 1e-4
    assert det.effect[0] == pytest.approx(0.8, abs=0.15)
    assert det.alert[0, 1500] and not det.alert[0, :1500].any()


@pytest.mark.parametrize("seed", range(20))
def test_a_steady_job_raises_nothing(seed: int) -> None:
    det = SparseShift().detect(_job(seed, shift=1.0))
    assert det.change_index[0] == -1 and not det.alert.any()


def test_a_job_seen_a_few_times_says_nothing() -> None:
    det = SparseShift().detect(_job(1, shift=3.0, every=60, history_min=360))
    assert det.change_index[0] == -1  # six runs of history cannot make any p-value small enough


def test_small_shifts_stay_below_the_minimum_effect() -> None:
    det = SparseShift(min_effect=0.2).detect(_job(2, shift=1.1))
    assert det.change_index[0] == -1


def test_a_job_every_five_minutes_is_judged_on_its_runs_in_a_detection_run() -> None:
    # found by the adversary (dev world 20196): 12 runs an hour met the sparse floor, so only the per-point
    # detectors looked, and they see a level in scattered points; half the grid empty makes a series sparse
    from detectors.noise import NoiseControl
    from detectors.run import _sparse_tests

    tests = _sparse_tests(_job(5, shift=1.75, every=5, history_min=360, window_min=180), NoiseControl())
    assert tests and tests[0].passing.tolist() == [True]
    assert tests[0].detection.change_index[0] >= 360 + 60
    assert not _sparse_tests(_job(5, shift=1.0, every=5, history_min=360, window_min=180), NoiseControl())[0].passing[0]


@pytest.mark.parametrize("seed", range(6))
def test_a_high_run_before_the_change_does_not_pull_the_change_earlier(seed: int) -> None:
    # found by the adversary (dev worlds 21201, 21208): a run above the history's 90th percentile two runs
    # before a shift ranks high, so a rank statistic (Pettitt's) moved the change to it, before the fault began
    batch = _job(seed, shift=2.5)
    batch.values[0, 1440 + 40] = 45.0 * np.exp(0.5)  # 2.5 sigma above the median: the top percent of history
    det = SparseShift().detect(batch)
    assert det.change_index[0] == 1440 + 60
