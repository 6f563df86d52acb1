"""detect-series' detection on seeded signals with known answers: excursions, regime changes,
seasonality, graded scores, bounded alerts, and causal runs that never look ahead."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.series.changepoint import changepoints
from detectors.series.events import ALERT_DECADES, HOLD_MAX, find_events, onset_decades, to_score
from detectors.series.grid import regularise
from detectors.series.seasonality import detect as detect_season
from detectors.single import detect_series

MINUTE = 60.0


def _minutes(n: int) -> np.ndarray:
    return 1.7e9 + MINUTE * np.arange(n)


def _onsets(alert: np.ndarray) -> list[int]:
    return np.flatnonzero(alert & ~np.concatenate([[False], alert[:-1]])).tolist()


def test_white_noise_raises_no_alert_in_any_mode() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(100.0, 5.0, 5000)
    for mode in ("auto", "anomaly", "changepoint"):
        for causal in (False, True):
            result = detect_series(_minutes(5000), x, mode, causal)  # type: ignore[arg-type]
            assert result.alert.sum() == 0, (mode, causal, _onsets(result.alert))
            assert result.score.min() >= 0.0 and result.score.max() < 0.5


def test_a_lasting_shift_is_one_onset_then_the_detector_relearns() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(10.0, 1.0, 3000)
    x[2000:] += 6.0
    for mode, causal in (("anomaly", False), ("anomaly", True), ("changepoint", False), ("auto", False)):
        result = detect_series(_minutes(3000), x, mode, causal)  # type: ignore[arg-type]
        onsets = _onsets(result.alert)
        assert len(onsets) == 1, (mode, causal, onsets)
        assert 1998 <= onsets[0] <= 2004, (mode, causal, onsets)
        assert result.alert.sum() <= HOLD_MAX
        assert result.score[2100:].max() < 0.5  # the new level is normal now


def test_a_spike_is_an_excursion_not_a_regime() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, 2000)
    x[1500] += 15.0
    anomaly = detect_series(_minutes(2000), x, "anomaly")
    assert _onsets(anomaly.alert) == [1500]
    auto = detect_series(_minutes(2000), x, "auto")
    assert auto.alert.sum() == 0  # not a change of regime ...
    assert int(np.argmax(auto.score)) == 1500 and auto.score[1500] > 0.5  # ... but the most unusual point


def test_scores_are_graded_and_rank_bigger_changes_higher() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 1.0, 4000)
    x[1000] += 6.0
    x[2000] += 9.0
    x[3000] += 20.0
    score = detect_series(_minutes(4000), x, "anomaly").score
    assert score[1000] < score[2000] < score[3000] < 1.0
    assert len(np.unique(np.round(score, 6))) > 100  # an evidence scale, not a flag


@given(d=st.lists(st.floats(0, 40, allow_nan=False), min_size=1, max_size=200))
def test_score_is_monotone_in_evidence_and_half_at_the_alert_level(d: list[float]) -> None:
    decades = np.array(d)
    score = to_score(decades)
    assert np.all((score >= 0) & (score < 1))
    order = np.argsort(decades)
    assert np.all(np.diff(score[order]) >= -1e-15)
    assert to_score(np.array([ALERT_DECADES]))[0] == pytest.approx(0.5)


def test_offline_scoring_puts_each_event_on_its_onset_once() -> None:
    d = np.zeros(50)
    d[10:20] = [4, 4.5, 9, 12, 8, 7, 6, 5, 4, 3.5]
    events = find_events(d)
    assert [(e.start, e.end, e.peak) for e in events] == [(10, 20, 13)]
    scored = onset_decades(d, events, causal=False)
    assert scored[10] == 12 and np.count_nonzero(scored) == 1
    causal = onset_decades(d, events, causal=True)  # what was known at the onset
    assert causal[10] == 4 and np.count_nonzero(causal) == 1


def test_daily_seasonality_is_found_and_a_missing_peak_is_an_excursion() -> None:
    rng = np.random.default_rng(21)
    n = 1440 * 6
    t = np.arange(n)
    x = 100 + 30 * np.clip(np.sin(2 * np.pi * t / 1440), 0, None) + rng.normal(0, 1.0, n)
    grid = regularise(_minutes(n), x)
    assert detect_season(grid.values, grid).period == 1440
    peak = 4 * 1440 + 360  # the noon peak of day five does not happen
    x[peak - 60 : peak + 60] = 100 + rng.normal(0, 1.0, 120)
    result = detect_series(_minutes(n), x, "anomaly")
    onsets = _onsets(result.alert)
    assert onsets and all(peak - 120 <= o <= peak + 60 for o in onsets), onsets


def test_no_seasonality_is_claimed_for_noise_or_a_single_cycle() -> None:
    rng = np.random.default_rng(2)
    noise = rng.normal(size=3000)
    assert detect_season(noise, regularise(_minutes(3000), noise)).period == 0
    one_cycle = np.sin(2 * np.pi * np.arange(1440) / 1440)  # a day of data cannot teach a daily pattern
    assert detect_season(one_cycle, regularise(_minutes(1440), one_cycle)).period == 0


def test_segmentation_finds_shifts_and_trend_breaks_but_not_outliers_or_a_straight_trend() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 1.0, 600)
    x[200:] += 5.0
    x[400:] += 0.3 * np.arange(200)  # a new trend from 400
    x[[50, 300, 500]] += 12.0  # outliers
    found = changepoints(regularise(_minutes(600), x))
    assert len(found.indices) == 2
    assert abs(found.indices[0] - 200) <= 2 and abs(found.indices[1] - 400) <= 5
    trend = 0.05 * np.arange(600) + rng.normal(0.0, 1.0, 600)
    assert changepoints(regularise(_minutes(600), trend)).indices == []


def test_short_yearly_series_get_their_change_points() -> None:
    rng = np.random.default_rng(9)
    x = np.r_[rng.normal(10, 1, 12), rng.normal(18, 1, 10)]  # 22 years, one regime change
    result = detect_series(1e9 + 365.25 * 86400 * np.arange(22), x, "changepoint")
    assert [o for o in _onsets(result.alert)] in ([12], [11], [13])


@given(seed=st.integers(0, 2**16), cut=st.integers(300, 1900))
@settings(max_examples=12, deadline=None)
def test_causal_results_never_depend_on_later_rows(seed: int, cut: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, 2000) + 3 * np.sin(np.arange(2000) * 2 * np.pi / 60)
    x[rng.integers(100, 1900, 3)] += 10.0
    x[rng.integers(500, 1500) :] += 4.0
    t = _minutes(2000)
    for mode in ("auto", "anomaly", "changepoint"):
        full = detect_series(t, x, mode, causal=True)  # type: ignore[arg-type]
        prefix = detect_series(t[:cut], x[:cut], mode, causal=True)  # type: ignore[arg-type]
        assert np.array_equal(full.score[:cut], prefix.score), mode
        assert np.array_equal(full.alert[:cut], prefix.alert), mode


def test_detection_is_deterministic_and_row_order_free() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(0.0, 1.0, 1500)
    x[700:] += 5
    t = _minutes(1500)
    first = detect_series(t, x)
    perm = rng.permutation(1500)
    shuffled = detect_series(t[perm], x[perm])
    assert np.array_equal(first.score[perm], shuffled.score)
    assert np.array_equal(first.alert[perm], shuffled.alert)


def test_constant_and_tiny_series_are_quiet() -> None:
    for x in (np.full(100, 7.0), np.array([1.0, 2.0, 1.5])):
        result = detect_series(None, x)
        assert result.alert.sum() == 0 and np.all(result.score == 0.0)
