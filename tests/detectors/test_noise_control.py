"""Noise control: Benjamini-Hochberg q-values and the effect, persistence, traffic and drift floors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.base import Detection, SeriesBatch, SignalKey
from detectors.noise import NoiseControl, benjamini_hochberg, candidates, longest_run


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=60))
def test_bh_q_values_match_scipy_and_keep_the_order(ps: list[float]) -> None:
    p = np.array(ps)
    q = benjamini_hochberg(p)
    np.testing.assert_allclose(q, stats.false_discovery_control(p, method="bh"), rtol=1e-12, atol=1e-15)
    assert np.all(q >= p - 1e-15) and np.all(q <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= -1e-15)  # a smaller p never gets a larger q


def test_bh_of_nothing_is_nothing() -> None:
    assert benjamini_hochberg(np.array([])).size == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=12, max_size=12), min_size=1, max_size=8))
def test_longest_run_matches_a_plain_scan(rows: list[list[bool]]) -> None:
    alert = np.array(rows)
    expected = []
    for row in rows:
        best = run = 0
        for a in row:
            run = run + 1 if a else 0
            best = max(best, run)
        expected.append(best)
    assert longest_run(alert).tolist() == expected


def _batch(kind: str, samples_per_point: float | np.ndarray, n: int = 4, t: int = 120) -> SeriesBatch:
    keys = [SignalKey(kind, "svc", f"op{i}") for i in range(n)]
    return SeriesBatch(
        keys=keys,
        times_ns=np.arange(t, dtype=np.int64) * 60_000_000_000,
        values=np.ones((n, t)),
        samples=np.broadcast_to(samples_per_point, (n, t)).astype(float),
        resolution_s=60,
        window_start=60,
    )


def _detection(effect: list[float], run: list[int], details: dict[str, list[float]] | None = None) -> Detection:
    n, t = len(effect), 120
    alert = np.zeros((n, t), dtype=bool)
    for i, r in enumerate(run):
        alert[i, 70 : 70 + r] = True
    return Detection(
        score=alert.astype(float),
        alert=alert,
        p_value=np.full(n, 1e-9),
        change_index=np.where(np.array(run) > 0, 70, -1).astype(np.int64),
        effect=np.array(effect),
        before=np.ones(n),
        after=1.0 + np.array(effect),
        details={k: np.array(v) for k, v in (details or {}).items()},
    )


def test_floors_drop_small_short_and_thin_alarms() -> None:
    control = NoiseControl()
    det = _detection(effect=[0.5, 0.05, 0.5, -0.5], run=[10, 10, 2, 10])
    # a faster service is no performance gap (slower_only); both directions count when asked
    assert candidates(_batch("latency_p99", 5.0), det, control).tolist() == [True, False, False, False]
    both = NoiseControl(slower_only=False)
    assert candidates(_batch("latency_p99", 5.0), det, both).tolist() == [True, False, False, True]
    # 3 requests an hour behind every series: nothing may page.
    assert not candidates(_batch("latency_p99", 0.05), det, control).any()


def test_error_ratio_is_judged_in_percentage_points() -> None:
    det = _detection(effect=[9.0, 9.0], run=[10, 10], details={"delta_pp": [0.002, 0.03]})
    assert candidates(_batch("error_ratio", 5.0, n=2), det, NoiseControl()).tolist() == [False, True]


@pytest.mark.parametrize(("trend", "passes"), [(0.01, True), (-0.02, False), (0.001, False)])
def test_a_drift_is_judged_on_its_slope_not_its_level(trend: float, passes: bool) -> None:
    det = _detection(effect=[0.03], run=[10], details={"alarm_kind": [2.0], "trend_per_day": [trend]})
    assert candidates(_batch("latency_p99", 5.0, n=1), det, NoiseControl()).tolist()[0] is passes
    both_ways = candidates(_batch("latency_p99", 5.0, n=1), det, NoiseControl(slower_only=False)).tolist()[0]
    assert both_ways is (abs(trend) >= NoiseControl().min_drift_per_day)
    assert candidates(_batch("gauge", 5.0, n=1), det, NoiseControl()).tolist()[0] is both_ways  # any direction
    level = _detection(effect=[0.03], run=[10], details={"alarm_kind": [1.0], "trend_per_day": [trend]})
    assert not candidates(_batch("latency_p99", 5.0, n=1), level, NoiseControl()).any()


def test_a_gauge_needs_an_absolute_change_too() -> None:
    det = _detection(effect=[3.0, 3.0], run=[10, 10])
    det.before[:] = [1e-4, 0.02]
    det.after[:] = [4e-4, 0.08]
    assert candidates(_batch("gauge", 5.0, n=2), det, NoiseControl()).tolist() == [False, True]


def test_a_sparse_metric_persists_across_its_empty_minutes() -> None:
    """A metric reporting every 5 minutes: its alarms are 5 points apart but consecutive."""
    every_tenth = np.zeros(120)
    every_tenth[::5] = 1.0
    det = _detection(effect=[0.8], run=[0])
    det.alert[0, 70::5] = True
    det.change_index[0] = 70
    assert candidates(_batch("histogram_p50", every_tenth, n=1), det, NoiseControl()).tolist() == [True]
    # The same sparse alarms on a request series are too thin (12 requests an hour).
    assert candidates(_batch("latency_p99", every_tenth, n=1), det, NoiseControl()).tolist() == [False]


def test_longest_run_skips_unobserved_points() -> None:
    alert = np.array([[True, False, True, False, True, False]])
    assert longest_run(alert).tolist() == [1]
    assert longest_run(alert, np.array([[True, False, True, False, True, False]])).tolist() == [3]
