"""Robust baselines: hand-computed cases, a naive reference, 1-D/2-D agreement, seasonality detection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

import analysis.baselines as bl
from analysis.baselines import (
    Baseline,
    auto_baseline,
    daily_baseline,
    detect_seasonality,
    detect_seasonality_per_series,
    robust_zscore,
    seasonal_baseline,
    trailing_baseline,
    weekly_baseline,
)

NAN = math.nan
RES_S = 300  # 5-minute resolution
DAY = 86_400 // RES_S  # 288 points
WEEK = 7 * DAY
N_14_DAYS = 14 * DAY


def _fields(b: Baseline) -> list[NDArray[np.float64]]:
    return [b.center, b.spread, b.lower, b.upper, b.support.astype(np.float64)]


def _assert_same(a: Baseline, b: Baseline) -> None:
    for x, y in zip(_fields(a), _fields(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12, equal_nan=True)


def _naive(
    x: NDArray[np.float64], lags: list[int], min_support: int, band: tuple[float, float]
) -> list[NDArray[np.float64]]:
    """Point-by-point reference implementation with numpy's median and quantile."""
    n = len(x)
    out = [np.full(n, np.nan) for _ in range(5)]
    for t in range(n):
        ref = np.array([x[t - lag] for lag in lags if t - lag >= 0], dtype=np.float64)
        ref = ref[~np.isnan(ref)]
        out[4][t] = len(ref)
        if len(ref) >= min_support:
            med = float(np.median(ref))
            mad = float(np.median(np.abs(ref - med)))
            out[0][t] = med
            out[1][t] = max(1.4826 * mad, 1e-3 * abs(med), 1e-9)
            out[2][t], out[3][t] = np.quantile(ref, band)
    return out


# -- exact small cases ------------------------------------------------------------------

X_SMALL = np.array([1.0, 5.0, 2.0, NAN, 8.0, 3.0, 4.0, 100.0, 6.0])


def test_trailing_hand_computed() -> None:
    b = trailing_baseline(X_SMALL, window=3, min_support=2)
    # t=2: ref {1,5}; t=3: {1,5,2}; t=4: {5,2}; t=5: {2,8}; t=6: {8,3}; t=7: {3,4}; t=8: {3,4,100}
    np.testing.assert_array_equal(b.support, [0, 1, 2, 3, 2, 2, 2, 3, 3])
    np.testing.assert_array_equal(b.center, [NAN, NAN, 3.0, 2.0, 3.5, 5.0, 5.5, 4.0, 4.0])
    mad = np.array([NAN, NAN, 2.0, 1.0, 1.5, 3.0, 2.5, 1.0, 1.0])
    np.testing.assert_allclose(b.spread, 1.4826 * mad, rtol=1e-15, equal_nan=True)
    # t=3: sorted {1,2,5}: q05 at rank 0.1 -> 1.1, q95 at rank 1.9 -> 2 + 0.9 * 3 = 4.7
    assert b.lower[3] == pytest.approx(1.1)
    assert b.upper[3] == pytest.approx(4.7)
    # t=8: sorted {3,4,100}: the outlier moves the upper band but not the median or the MAD
    assert b.upper[8] == pytest.approx(4 + 0.9 * 96)
    assert b.center[8] == 4.0
    assert b.spread[8] == pytest.approx(1.4826)
    assert b.method == "trailing(window=3)"
    assert b.series_methods == ("trailing(window=3)",)


def test_seasonal_hand_computed() -> None:
    x = np.array([10.0, 0.0, 20.0, 0.0, 30.0, 0.0, NAN, 0.0, 14.0, 0.0])
    b = seasonal_baseline(x, period=2, seasons=3, min_support=2)
    # t=6 (even): refs t-2, t-4, t-6 = {30, 20, 10}; t=8: {NaN, 30, 20}; t=9: {0, 0, 0}
    np.testing.assert_array_equal(b.support, [0, 0, 1, 1, 2, 2, 3, 3, 2, 3])
    assert b.center[6] == 20.0
    assert b.spread[6] == pytest.approx(1.4826 * 10.0)
    assert b.center[8] == 25.0
    assert b.spread[8] == pytest.approx(1.4826 * 5.0)
    # flat zero reference: MAD 0, spread floored at the absolute floor, never 0
    assert b.center[9] == 0.0
    assert b.spread[9] == bl.SPREAD_ABS_FLOOR
    assert np.isnan(b.center[3])  # support 1 < min_support 2
    assert b.method == "seasonal(period=2,seasons=3,tolerance=0)"


def test_seasonal_tolerance_widens_each_season() -> None:
    x = np.arange(12, dtype=np.float64)
    b = seasonal_baseline(x, period=5, seasons=2, tolerance=1, min_support=1)
    # t=11: lags {4,5,6,9,10,11} -> values {7,6,5,2,1,0}
    assert b.support[11] == 6
    assert b.center[11] == pytest.approx(3.5)
    # t=4: lags 4 -> value 0 (lags 5 and 6 fall before the start)
    assert b.support[4] == 1
    assert b.center[4] == 0.0


def test_spread_floor_is_relative_to_center() -> None:
    b = trailing_baseline(np.full(20, 250.0), window=5, min_support=5)
    assert np.all(b.spread[5:] == pytest.approx(1e-3 * 250.0))


def test_min_support_respected() -> None:
    x = np.arange(30, dtype=np.float64)
    x[10:20] = NAN
    b = trailing_baseline(x, window=6, min_support=4)
    enough = b.support >= 4
    assert not enough.all()
    assert enough.any()
    for arr in (b.center, b.spread, b.lower, b.upper):
        assert np.isnan(arr[~enough]).all()
        assert not np.isnan(arr[enough]).any()


def test_nan_gaps_are_skipped_not_counted() -> None:
    x = np.array([1.0, 2.0, NAN, NAN, 3.0, NAN, 50.0])
    b = trailing_baseline(x, window=4, min_support=1)
    assert b.support.tolist() == [0, 1, 2, 2, 2, 2, 1]
    assert b.center[6] == 3.0  # refs {NaN, NaN, 3, NaN}
    assert b.center[5] == 2.5  # refs {2, NaN, NaN, 3} -> median of {2, 3}


# -- against a naive implementation, 1-D vs 2-D, chunking --------------------------------

series_2d = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 3), st.integers(1, 40)),
    elements=st.one_of(st.just(NAN), st.integers(-5, 5).map(float), st.floats(-1e3, 1e3)),
)


@settings(deadline=None, max_examples=60)
@given(x=series_2d, window=st.integers(1, 8), min_support=st.integers(1, 4))
def test_trailing_matches_naive_and_stacks(x: NDArray[np.float64], window: int, min_support: int) -> None:
    min_support = min(min_support, window)
    band = (0.05, 0.95)
    b2 = trailing_baseline(x, window=window, min_support=min_support, band=band)
    assert b2.center.shape == x.shape
    assert b2.support.dtype == np.int64
    for i, row in enumerate(x):
        b1 = trailing_baseline(row, window=window, min_support=min_support, band=band)
        assert b1.center.shape == row.shape
        for got2, got1, want in zip(
            _fields(b2), _fields(b1), _naive(row, list(range(1, window + 1)), min_support, band), strict=True
        ):
            np.testing.assert_allclose(got1, want, rtol=1e-12, atol=1e-12, equal_nan=True)
            np.testing.assert_array_equal(got2[i], got1)


@settings(deadline=None, max_examples=60)
@given(
    x=series_2d,
    period=st.integers(1, 6),
    seasons=st.integers(1, 4),
    tolerance=st.integers(0, 2),
    band=st.tuples(st.floats(0, 0.5), st.floats(0.5, 1)),
)
def test_seasonal_matches_naive_and_stacks(
    x: NDArray[np.float64], period: int, seasons: int, tolerance: int, band: tuple[float, float]
) -> None:
    offsets = {k * period + d for k in range(1, seasons + 1) for d in range(-tolerance, tolerance + 1)}
    lags = sorted(lag for lag in offsets if lag >= 1)
    b2 = seasonal_baseline(x, period=period, seasons=seasons, tolerance=tolerance, min_support=1, band=band)
    for i, row in enumerate(x):
        b1 = seasonal_baseline(row, period=period, seasons=seasons, tolerance=tolerance, min_support=1, band=band)
        for got2, got1, want in zip(_fields(b2), _fields(b1), _naive(row, lags, 1, band), strict=True):
            np.testing.assert_allclose(got1, want, rtol=1e-12, atol=1e-12, equal_nan=True)
            np.testing.assert_array_equal(got2[i], got1)


# 37: a few points of one series per chunk; 16_000: two whole series per chunk, the last one partial
@pytest.mark.parametrize("chunk_elements", [37, 16_000])
def test_chunked_equals_unchunked(monkeypatch: pytest.MonkeyPatch, chunk_elements: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 300))
    x[rng.random(x.shape) < 0.2] = NAN
    whole_t = trailing_baseline(x, window=25, min_support=5)
    whole_s = seasonal_baseline(x, period=40, seasons=3, tolerance=1)
    monkeypatch.setattr(bl, "_CHUNK_ELEMENTS", chunk_elements)
    _assert_same(trailing_baseline(x, window=25, min_support=5), whole_t)
    _assert_same(seasonal_baseline(x, period=40, seasons=3, tolerance=1), whole_s)


@settings(deadline=None, max_examples=50)
@given(
    c=st.floats(-1e6, 1e6),
    n=st.integers(2, 60),
    window=st.integers(1, 10),
    period=st.integers(1, 5),
)
def test_constant_series_center_is_the_constant(c: float, n: int, window: int, period: int) -> None:
    x = np.full((2, n), c)
    for b, first_supported in (
        (trailing_baseline(x, window=window, min_support=1), 1),
        (seasonal_baseline(x, period=period, seasons=3, min_support=1), period),
    ):
        ok = b.support >= 1
        assert ok[:, first_supported:].all()
        assert (b.center[ok] == c).all()
        assert (b.lower[ok] == c).all()
        assert (b.upper[ok] == c).all()
        assert (b.spread[ok] > 0).all()
        assert (robust_zscore(x, b)[ok] == 0).all()


# -- daily / weekly wrappers ------------------------------------------------------------


def test_daily_and_weekly_are_seasonal_with_calendar_periods() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3 * WEEK))
    _assert_same(daily_baseline(x, resolution_s=RES_S, days=5), seasonal_baseline(x, period=DAY, seasons=5))
    w = weekly_baseline(x, resolution_s=RES_S, weeks=2, min_support=2)
    _assert_same(w, seasonal_baseline(x, period=WEEK, seasons=2, min_support=2))
    assert w.support[:, 2 * WEEK :].min() == 2
    assert w.support[:, :WEEK].max() == 0


# -- seasonality detection ---------------------------------------------------------------

T = np.arange(N_14_DAYS)
WEEKEND = ((T // DAY) % 7) >= 5


def _noise(seed: int, scale: float = 1.0) -> NDArray[np.float64]:
    return np.random.default_rng(seed).normal(scale=scale, size=N_14_DAYS)


@pytest.mark.parametrize("seed", range(5))
def test_white_noise_has_no_seasonality(seed: int) -> None:
    assert detect_seasonality(_noise(seed), resolution_s=RES_S) is None


@pytest.mark.parametrize("seed", range(5))
def test_trending_series_has_no_seasonality(seed: int) -> None:
    x = 100.0 + 0.02 * T + _noise(seed)  # the trend moves the level by 80 sigma over the 14 days
    assert detect_seasonality(x, resolution_s=RES_S) is None


@pytest.mark.parametrize("seed", range(5))
def test_daily_sine_is_daily(seed: int) -> None:
    x = 50.0 + np.sin(2 * np.pi * T / DAY) + _noise(seed, 0.5)
    assert detect_seasonality(x, resolution_s=RES_S) == 86_400
    # the same pattern on a trend, and with 30 % of the points (and a 2-day block) missing
    assert detect_seasonality(x + 0.003 * T, resolution_s=RES_S) == 86_400
    gappy = x.copy()
    gappy[np.random.default_rng(seed).random(N_14_DAYS) < 0.3] = NAN
    gappy[3 * DAY : 5 * DAY] = NAN
    assert detect_seasonality(gappy, resolution_s=RES_S) == 86_400


@pytest.mark.parametrize("seed", range(5))
def test_weekday_weekend_step_is_weekly_when_stronger(seed: int) -> None:
    daily = 0.5 * np.sin(2 * np.pi * T / DAY)
    strong_week = 3.0 * WEEKEND + daily + _noise(seed, 0.5)
    assert detect_seasonality(strong_week, resolution_s=RES_S) == 604_800
    weak_week = 0.3 * WEEKEND + 2 * daily + _noise(seed, 0.5)  # the daily pattern dominates
    assert detect_seasonality(weak_week, resolution_s=RES_S) == 86_400


@pytest.mark.parametrize("seed", range(3))
def test_level_shifts_and_spikes_are_not_seasonal(seed: int) -> None:
    shift = 5.0 * (T > 7.3 * DAY)  # a deploy half-way: week 2 above week 1 is not a weekly cycle
    assert detect_seasonality(shift + _noise(seed), resolution_s=RES_S) is None
    assert detect_seasonality(0.01 * T + shift + _noise(seed), resolution_s=RES_S) is None
    spikes = 30.0 * (np.random.default_rng(seed).random(N_14_DAYS) < 0.01)
    assert detect_seasonality(spikes + _noise(seed), resolution_s=RES_S) is None
    daily = np.sin(2 * np.pi * T / DAY) + _noise(seed, 0.5)
    assert detect_seasonality(daily + spikes, resolution_s=RES_S) == 86_400  # spikes do not mask the cycle
    assert detect_seasonality(daily + 3.0 * (T > 7.3 * DAY), resolution_s=RES_S) == 86_400


def test_too_few_cycles_or_flat_gives_none() -> None:
    x = np.sin(2 * np.pi * T / DAY) + _noise(0, 0.1)
    assert detect_seasonality(x[: int(1.5 * DAY)], resolution_s=RES_S) is None  # fewer than 2 days
    assert detect_seasonality(x[: int(1.5 * DAY)], resolution_s=RES_S, min_cycles=1.2) == 86_400
    assert detect_seasonality(np.full(N_14_DAYS, 3.0), resolution_s=RES_S) is None
    assert detect_seasonality(np.full(N_14_DAYS, NAN), resolution_s=RES_S) is None
    assert detect_seasonality(x, resolution_s=RES_S, min_acf=0.99) is None
    # a period barely shorter than the series: no full window to estimate the level from
    assert detect_seasonality(np.arange(36.0) % 5, resolution_s=1, candidates_s=(35,), min_cycles=1) is None


def test_too_few_lagged_pairs_gives_none() -> None:
    x = np.sin(2 * np.pi * T / DAY) + _noise(0, 0.01)
    # even days only, plus 8 points of day 1: 16 pairs one day apart, 8 one week apart (< 20)
    present = ((T // DAY) % 2 == 0) | ((T >= DAY + 100) & (T < DAY + 108))
    assert detect_seasonality(np.where(present, x, NAN), resolution_s=RES_S) is None


def test_detection_per_series_matches_one_at_a_time() -> None:
    rows = np.stack([_noise(1), np.sin(2 * np.pi * T / DAY) + _noise(2, 0.5), 3.0 * WEEKEND + _noise(3, 0.5)])
    got = detect_seasonality_per_series(rows, resolution_s=RES_S)
    assert got == [None, 86_400, 604_800]
    assert got == [detect_seasonality(r, resolution_s=RES_S) for r in rows]
    with pytest.raises(ValueError, match="1-D"):
        detect_seasonality(rows, resolution_s=RES_S)


# -- auto baseline ----------------------------------------------------------------------


def test_auto_baseline_picks_per_series_and_stacks() -> None:
    daily = 10.0 + 3.0 * np.sin(2 * np.pi * T / DAY) + _noise(4, 0.5)
    rows = np.stack([daily, 10.0 + _noise(5)])
    b = auto_baseline(rows, resolution_s=RES_S)
    assert b.method == "mixed"
    assert b.series_methods == ("seasonal(period=288,seasons=7,tolerance=0)", "trailing(window=60)")
    for i, row in enumerate(rows):
        one = auto_baseline(row, resolution_s=RES_S)
        assert one.method == b.series_methods[i]
        for got2, got1 in zip(_fields(b), _fields(one), strict=True):
            np.testing.assert_array_equal(got2[i], got1)
    auto = auto_baseline(daily, resolution_s=RES_S)
    seasonal = seasonal_baseline(daily, period=DAY, seasons=7)
    trailing = trailing_baseline(daily, window=60)
    for got, want_s, want_t in zip(_fields(auto), _fields(seasonal), _fields(trailing), strict=True):
        # seasonal once 3 whole days exist; the trailing baseline stands in before that
        np.testing.assert_allclose(got[3 * DAY :], want_s[3 * DAY :], rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got[: 3 * DAY], want_t[: 3 * DAY], rtol=1e-12, equal_nan=True)
    assert not np.isnan(auto.center[60 : 3 * DAY]).any()
    # seasons grow with the history: 3 references from day 3 on, 7 from day 7 on
    assert b.support[0, 3 * DAY] == 3
    assert b.support[0, 7 * DAY :].min() == 7
    # the seasonal baseline follows the daily cycle; a trailing one would lag it
    z = robust_zscore(daily, auto_baseline(daily, resolution_s=RES_S))[3 * DAY :]
    assert np.nanmedian(np.abs(z)) < 1.0
    short = auto_baseline(10.0 + _noise(6), resolution_s=RES_S, trailing_window=5)
    assert short.method == "trailing(window=5)"
    assert short.support.max() == 5


# -- robust z-score ---------------------------------------------------------------------


def test_zscore_of_a_step_is_large_after_and_standard_before() -> None:
    rng = np.random.default_rng(11)
    x = 20.0 + rng.normal(size=2000)
    x[1500:] += 6.0
    z = robust_zscore(x, trailing_baseline(x, window=60))
    before = z[60:1500]
    assert abs(np.median(before)) < 0.3
    assert 0.7 <= 1.4826 * np.median(np.abs(before - np.median(before))) <= 1.4
    # large while the window still holds the old level; it fades as the new level fills the window
    assert np.median(z[1500:1510]) > 4.0
    assert np.all(z[1500:1510] > 2.5)
    assert np.median(z[1600:]) < 1.0


def test_zscore_nan_propagates_and_shape_is_checked() -> None:
    x = np.array([1.0, 2.0, 3.0, NAN, 5.0, 6.0])
    b = trailing_baseline(x, window=2, min_support=2)
    z = robust_zscore(x, b)
    assert np.isnan(z[[0, 1, 3, 4, 5]]).all()  # under 2 refs at 0, 1, 4, 5; value missing at 3
    assert z[2] == pytest.approx((3.0 - 1.5) / (1.4826 * 0.5))
    with pytest.raises(ValueError, match="!= baseline shape"):
        robust_zscore(np.stack([x, x]), b)  # would broadcast silently


# -- bad arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: trailing_baseline(np.zeros((2, 2, 2)), window=3),
        lambda: trailing_baseline(np.zeros(5), window=0),
        lambda: trailing_baseline(np.zeros(5), window=3, min_support=4),
        lambda: trailing_baseline(np.zeros(5), window=3, min_support=0),
        lambda: trailing_baseline(np.zeros(5), window=3, min_support=1, band=(0.9, 0.1)),
        lambda: seasonal_baseline(np.zeros(5), period=0, seasons=1),
        lambda: seasonal_baseline(np.zeros(5), period=2, seasons=2, min_support=3),
        lambda: daily_baseline(np.zeros(5), resolution_s=0),
    ],
)
def test_bad_arguments_raise(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call()
