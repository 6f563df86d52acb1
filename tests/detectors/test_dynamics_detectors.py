"""Dynamics detectors: early warning (critical slowing down), oscillation, retry feedback.

Each detector: pinned alarm indices on a seeded signal with a known answer (and the delay
after the true change), quiet noise models raise nothing, a batch of 200 series equals
200 single runs, gaps are safe, scale does not matter, runs are deterministic.

Over 450 lines: three detectors share the signal builders and the batch-equals-single checks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from itertools import permutations
from random import Random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from analysis.baselines import Baseline, Seasonality, auto_baseline, seasonal_baseline, trailing_baseline
from detectors.base import Detection, FloatArray, SeriesBatch, SignalKey
from detectors.early_warning import EarlyWarning, kendall_upper_tail
from detectors.oscillation import Oscillation, fisher_g_pvalue
from detectors.retry_feedback import RetryFeedback

T = 1440  # one day at 1-minute resolution
MINUTE_NS = 60_000_000_000


def _batch(
    values: FloatArray,
    kind: str = "gauge",
    *,
    resolution_s: int = 60,
    baseline: Baseline | None = None,
    window_start: int = 0,
    samples: FloatArray | None = None,
) -> SeriesBatch:
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n, t = v.shape
    return SeriesBatch(
        keys=[SignalKey(kind, "svc", f"op-{i}") for i in range(n)],
        times_ns=np.arange(t, dtype=np.int64) * resolution_s * 1_000_000_000,
        values=v,
        samples=np.full((n, t), 100.0) if samples is None else samples,
        resolution_s=resolution_s,
        baseline=baseline,
        window_start=window_start,
    )


def _runs(alert: np.ndarray) -> list[tuple[int, int]]:
    """Alert runs of one row as [start, stop) pairs: an exact, compact pin of every alarm index."""
    idx = np.flatnonzero(alert)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    stops = np.r_[idx[breaks], idx[-1]] + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _ar1(phi: FloatArray, noise: FloatArray) -> FloatArray:
    """AR(1) rows x[t] = phi[t] x[t-1] + noise[t] (vectorised over rows, a loop over time)."""
    x = np.zeros_like(noise)
    for t in range(1, noise.shape[1]):
        x[:, t] = phi[t] * x[:, t - 1] + noise[:, t]
    return x


def _assert_same(a: Detection, b: Detection) -> None:
    np.testing.assert_array_equal(a.alert, b.alert)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.p_value, b.p_value)
    np.testing.assert_array_equal(a.change_index, b.change_index)
    np.testing.assert_array_equal(a.effect, b.effect)
    np.testing.assert_array_equal(a.before, b.before)
    np.testing.assert_array_equal(a.after, b.after)
    assert a.details.keys() == b.details.keys()
    for k in a.details:
        np.testing.assert_array_equal(a.details[k], b.details[k])


def _assert_well_formed(d: Detection, shape: tuple[int, int]) -> None:
    n, t = shape
    assert d.score.shape == d.alert.shape == (n, t)
    assert np.all((d.score >= 0) & (d.score <= 1))
    assert d.p_value.shape == d.change_index.shape == d.effect.shape == d.before.shape == d.after.shape == (n,)
    assert np.all((d.p_value >= 0) & (d.p_value <= 1))
    alerting = d.alert.any(axis=1)
    np.testing.assert_array_equal(d.change_index >= 0, alerting)
    assert np.all(d.p_value[~alerting] == 1.0)


def _single_vs_batch(detect: Callable[[SeriesBatch], Detection], rows: FloatArray, kind: str = "gauge") -> None:
    """Running 200 series together gives, per series, what running each alone gives."""
    together = detect(_batch(rows, kind))
    for i in range(rows.shape[0]):
        alone = detect(_batch(rows[i : i + 1], kind))
        np.testing.assert_array_equal(together.alert[i], alone.alert[0])
        np.testing.assert_allclose(together.score[i], alone.score[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(together.p_value[i], alone.p_value[0], rtol=1e-9)
        assert together.change_index[i] == alone.change_index[0]


# --- Early warning -------------------------------------------------------------------

RAMP_START = 720


def _ramp(seeds: list[int]) -> FloatArray:
    """AR(1) at 0.2 for half a day, then its coefficient ramps to 0.97 (a queue nearing saturation)."""
    phi = np.r_[np.full(RAMP_START, 0.2), np.linspace(0.2, 0.97, T - RAMP_START)]
    noise = np.stack([np.random.default_rng(s).standard_normal(T) for s in seeds])
    return 50.0 + _ar1(phi, noise)


def _stationary(seeds: list[int], phi: float = 0.5) -> FloatArray:
    noise = np.stack([np.random.default_rng(s).standard_normal(T) for s in seeds])
    return 50.0 + _ar1(np.full(T, phi), noise)


def test_early_warning_pins_the_alarms_of_a_ramp_towards_a_transition() -> None:
    d = EarlyWarning().detect(_batch(_ramp([7])))
    _assert_well_formed(d, (1, T))
    assert _runs(d.alert[0]) == [(1260, 1300), (1320, 1440)]
    assert d.change_index[0] == 1320  # the run of the strongest alarm
    assert d.p_value[0] == pytest.approx(0.0027529761904761907)
    # Detected before the transition (the end of the ramp), 540 points into the ramp.
    first = int(np.argmax(d.alert[0]))
    assert RAMP_START < first <= T - 180
    assert d.details["tau_variance"][0] >= 0.6 and d.details["tau_autocorrelation"][0] >= 0.6
    assert d.details["variance_ratio"][0] >= 2.0
    assert d.after[0] > d.before[0] > 0 and d.effect[0] >= np.sqrt(2.0) - 1.0


def test_early_warning_separates_ramps_from_stationary_noise() -> None:
    det = EarlyWarning()
    ramps = det.detect(_batch(_ramp(list(range(100)))))
    flat = det.detect(_batch(_stationary(list(range(100, 200)))))
    assert ramps.alert.any(axis=1).mean() >= 0.3
    assert flat.alert.any(axis=1).mean() <= 0.03


@pytest.mark.parametrize("model", ["gaussian", "student_t", "ar1_0.5", "ar1_0.9"])
def test_early_warning_quiet_noise_raises_nothing(model: str) -> None:
    rng = np.random.default_rng(42)
    if model == "gaussian":
        x = 100.0 + rng.standard_normal((20, T))
    elif model == "student_t":
        x = 100.0 + rng.standard_t(3, (20, T))
    else:
        x = 100.0 + _ar1(np.full(T, float(model.split("_")[1])), rng.standard_normal((20, T)))
    d = EarlyWarning().detect(_batch(x))
    _assert_well_formed(d, (20, T))
    assert not d.alert.any()


def test_early_warning_quiet_daily_seasonal_series_with_its_baseline() -> None:
    rng = np.random.default_rng(5)
    t_s = np.arange(3 * 288) * 300
    x = 100.0 * (1 + 0.3 * np.sin(2 * np.pi * t_s / 86_400)) * (1 + 0.05 * rng.standard_normal((20, t_s.size)))
    batch = _batch(x, resolution_s=300, baseline=auto_baseline(x, resolution_s=300))
    assert not EarlyWarning().detect(batch).alert.any()


def test_early_warning_batch_equals_single_runs() -> None:
    rows = np.concatenate([_ramp(list(range(100))), _stationary(list(range(100, 200)))])
    _single_vs_batch(EarlyWarning().detect, rows)


def test_early_warning_gaps_are_skipped() -> None:
    x = _stationary(list(range(20)))
    samples = np.full(x.shape, 100.0)
    x[:, 300:420] = np.nan
    samples[:, 900:1000] = 0.0
    x[::3, ::7] = np.nan
    d = EarlyWarning().detect(_batch(x, samples=samples))
    _assert_well_formed(d, x.shape)
    assert not d.alert.any()
    ramp = _ramp([7])
    ramp[0, 800:830] = np.nan
    d = EarlyWarning().detect(_batch(ramp))
    _assert_well_formed(d, ramp.shape)
    assert d.alert[0, RAMP_START:].any()


@pytest.mark.parametrize("factor", [1e6, 1e-6])
def test_early_warning_scale_invariant(factor: float) -> None:
    x = np.concatenate([_ramp([7, 10]), _stationary([1, 2])])
    base = EarlyWarning().detect(_batch(x))
    scaled = EarlyWarning().detect(_batch(x * factor))
    np.testing.assert_array_equal(base.alert, scaled.alert)
    np.testing.assert_allclose(base.p_value, scaled.p_value)


def test_early_warning_deterministic_and_window_start_respected() -> None:
    batch = _batch(_ramp([7]), window_start=1300)
    a, b = EarlyWarning().detect(batch), EarlyWarning().detect(batch)
    _assert_same(a, b)
    assert _runs(a.alert[0]) == [(1320, 1440)]


@cache
def _all_taus(n: int) -> FloatArray:
    """Kendall's tau against time of every permutation of n points."""
    return np.array([kendalltau(np.arange(n), p).statistic for p in permutations(range(n))])


@settings(deadline=None, max_examples=60)
@given(st.integers(min_value=2, max_value=7), st.randoms(use_true_random=False))
def test_kendall_upper_tail_is_the_exact_permutation_null(n: int, rnd: Random) -> None:
    perm = list(range(n))
    rnd.shuffle(perm)
    tau = kendalltau(np.arange(n), perm).statistic
    # The exact one-sided p-value: the share of permutations at least as concordant.
    expected = float(np.mean(_all_taus(n) >= tau - 1e-12))
    assert kendall_upper_tail(np.array([tau]), n)[0] == pytest.approx(expected)
    # A tau between attainable values is referred to the next attainable one up (conservative).
    assert kendall_upper_tail(np.array([tau - 1e-3]), n)[0] >= expected


# --- Oscillation ---------------------------------------------------------------------

ONSET = 720


def _queue(seed: int, onset: int = ONSET, amplitude: float = 8.0) -> FloatArray:
    """Queue depth at 1-minute resolution: 40 +- noise, a 20-minute oscillation from ``onset``."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    wave = np.where(t >= onset, amplitude * np.sin(2 * np.pi * t / 20), 0.0)
    return np.maximum(0.0, np.round(40.0 + wave + 4.0 * rng.standard_normal(T)))[np.newaxis, :]


def test_oscillation_pins_the_alarms_of_a_queue_that_starts_oscillating() -> None:
    d = Oscillation().detect(_batch(_queue(1)))
    _assert_well_formed(d, (1, T))
    assert _runs(d.alert[0]) == [(755, 1440)]
    assert d.change_index[0] == 755
    assert ONSET <= d.change_index[0] <= ONSET + 60  # within three periods of the onset
    assert d.p_value[0] < 1e-20
    assert abs(d.details["period_s"][0] - 1200.0) <= 120.0
    assert d.details["amplitude"][0] == pytest.approx(5.7, rel=0.2)  # 8 for half the day
    assert d.before[0] < 40.0 < d.after[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_oscillation_finds_a_20_minute_period_over_a_day(seed: int) -> None:
    d = Oscillation().detect(_batch(_queue(seed, onset=0)))
    assert d.alert[0].mean() > 0.9
    assert abs(d.details["period_s"][0] - 1200.0) <= 120.0
    assert d.details["amplitude"][0] == pytest.approx(8.0, rel=0.15)


@pytest.mark.parametrize("model", ["gaussian", "student_t", "red_ar1_0.9", "random_walk", "poisson"])
def test_oscillation_quiet_noise_raises_nothing(model: str) -> None:
    rng = np.random.default_rng(9)
    shape = (50, T)
    if model == "gaussian":
        x = 40.0 + 4.0 * rng.standard_normal(shape)
    elif model == "student_t":
        x = 40.0 + rng.standard_t(2, shape)
    elif model == "red_ar1_0.9":
        x = 40.0 + _ar1(np.full(T, 0.9), rng.standard_normal(shape))
    elif model == "random_walk":
        x = 40.0 + np.cumsum(rng.standard_normal(shape), axis=1)
    else:
        x = rng.poisson(3.0, shape).astype(np.float64)
    d = Oscillation().detect(_batch(x))
    _assert_well_formed(d, shape)
    assert not d.alert.any()


def test_oscillation_ignores_the_daily_cycle_with_a_seasonal_baseline() -> None:
    rng = np.random.default_rng(4)
    t_s = np.arange(3 * 288) * 300  # 3 days at 5 minutes
    x = 100.0 * (1 + 0.5 * np.sin(2 * np.pi * t_s / 86_400)) + 5.0 * rng.standard_normal((20, t_s.size))
    given_baseline = seasonal_baseline(x, period=288, seasons=7, min_support=1)
    assert not Oscillation().detect(_batch(x, resolution_s=300, baseline=given_baseline)).alert.any()
    auto = auto_baseline(x, resolution_s=300)
    assert auto.method.startswith("seasonal")
    assert not Oscillation().detect(_batch(x, resolution_s=300, baseline=auto)).alert.any()


def test_oscillation_ignores_daily_harmonics_a_seasonal_baseline_leaves() -> None:
    # A week at 1 minute whose daily pattern (a fundamental and a 12-hour harmonic) swings
    # more than the baseline says: the residual keeps the daily cycle and its harmonic,
    # which are seasonality and must not count as an oscillation.
    rng = np.random.default_rng(8)
    w = 2 * np.pi * np.arange(7 * 1440) / 1440
    day = np.sin(w) + 0.6 * np.sin(2 * w + 0.5)
    x = 100.0 * (1 + 0.3 * day) + 5.0 * rng.standard_normal((10, w.size))
    center = np.broadcast_to(100.0 * (1 + 0.2 * day), x.shape).copy()
    ones = np.ones(x.shape, dtype=np.int64)
    method, season = "seasonal(period=1440,seasons=7,tolerance=0)", Seasonality(1440, 7, 0)
    weak = Baseline(center, np.full(x.shape, 5.0), center, center, ones, method, seasonal=season)
    alerts = Oscillation().detect(_batch(x, baseline=weak)).alert.any()
    assert not alerts
    # The teeth of the rule: without it the 12-hour harmonic is reported.
    d = Oscillation(daily_harmonics=0).detect(_batch(x, baseline=weak))
    assert d.alert.any()
    assert np.nanmedian(d.details["period_s"]) == pytest.approx(12 * 3600, rel=0.05)


def test_oscillation_batch_equals_single_runs() -> None:
    rng = np.random.default_rng(0)
    onsets = rng.integers(0, 1200, 100)
    waves = [_queue(s, onset=int(o)) for s, o in zip(range(100), onsets, strict=True)]
    rows = np.concatenate([*waves, 40.0 + 4.0 * rng.standard_normal((100, T))])
    _single_vs_batch(Oscillation().detect, rows)


def test_oscillation_gaps_are_skipped() -> None:
    x = _queue(0, onset=0)
    samples = np.full(x.shape, 100.0)
    x[0, 200:260] = np.nan
    samples[0, 900:940] = 0.0
    d = Oscillation().detect(_batch(x, samples=samples))
    _assert_well_formed(d, x.shape)
    assert abs(d.details["period_s"][0] - 1200.0) <= 120.0
    assert not d.alert[0, 200:260].any()  # no evidence where there is no data
    rng = np.random.default_rng(1)
    noise = 40.0 + 4.0 * rng.standard_normal((20, T))
    noise[:, 100:400] = np.nan
    noise[:, ::10] = np.nan  # a periodic gap pattern must not look periodic
    assert not Oscillation().detect(_batch(noise)).alert.any()
    mostly_gaps = noise.copy()
    mostly_gaps[:, 400:1200] = np.nan
    d = Oscillation().detect(_batch(mostly_gaps))
    assert not d.alert.any() and np.all(d.p_value == 1.0)


@pytest.mark.parametrize("factor", [1e6, 1e-6])
def test_oscillation_scale_invariant(factor: float) -> None:
    x = np.concatenate([_queue(0), _queue(1, onset=0), 40.0 + np.random.default_rng(2).standard_normal((2, T))])
    base = Oscillation().detect(_batch(x))
    scaled = Oscillation().detect(_batch(x * factor))
    np.testing.assert_array_equal(base.alert, scaled.alert)
    np.testing.assert_allclose(base.details["period_s"], scaled.details["period_s"])
    np.testing.assert_allclose(base.details["amplitude"] * factor, scaled.details["amplitude"])


def test_oscillation_deterministic_and_window_start_respected() -> None:
    batch = _batch(_queue(0), window_start=1000)
    a, b = Oscillation().detect(batch), Oscillation().detect(batch)
    _assert_same(a, b)
    assert _runs(a.alert[0]) == [(1000, 1440)]


@settings(deadline=None, max_examples=50)
@given(st.integers(min_value=2, max_value=40), st.floats(min_value=0.0, max_value=1.0))
def test_fisher_g_pvalue_bounds_the_exact_formula(q: int, g: float) -> None:
    # Fisher (1929): P(g >= x) = sum_{j=1}^{floor(1/x)} (-1)^(j-1) C(q, j) (1 - j x)^(q-1).
    from math import comb, floor

    terms = range(1, (q if g * q <= 1 else floor(1 / g)) + 1)  # C(q, j) = 0 beyond q
    exact = 1.0 if g == 0 else sum((-1) ** (j - 1) * comb(q, j) * (1 - j * g) ** (q - 1) for j in terms)
    bound = float(fisher_g_pvalue(np.array([g]), np.array([q], dtype=np.int64))[0])
    assert 0.0 <= bound <= 1.0
    assert bound >= min(1.0, exact) - 1e-9
    if exact < 1e-3:
        assert bound == pytest.approx(exact, rel=1e-2)


# --- Retry feedback --------------------------------------------------------------------

BURSTS = ((400, 410, 0.25), (900, 908, 0.3))


def _storm(seeds: list[int], lag: int = 2) -> tuple[FloatArray, FloatArray]:
    """Error ratio with two bursts; rate = 100 * (1 + 3 * error ratio ``lag`` points earlier) + noise."""
    es, rs = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        p = np.full(T, 0.01)
        for a, b, level in BURSTS:
            p[a:b] = level
        e = rng.binomial(1000, p) / 1000.0
        lagged = np.r_[np.zeros(lag), e[:-lag]]
        es.append(e)
        rs.append(100.0 * (1 + 3 * lagged) + rng.normal(0, 3, T))
    return np.stack(es), np.stack(rs)


def _independent(seeds: list[int]) -> tuple[FloatArray, FloatArray]:
    es, rs = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        es.append(rng.binomial(1000, 0.01, T) / 1000.0)
        rs.append(100.0 + rng.normal(0, 3, T))
    return np.stack(es), np.stack(rs)


def _pair(e: FloatArray, r: FloatArray, window_start: int = 0) -> tuple[SeriesBatch, SeriesBatch]:
    return _batch(e, "error_ratio", window_start=window_start), _batch(r, "rate", window_start=window_start)


def test_retry_feedback_pins_the_alarms_of_a_retry_storm() -> None:
    d = RetryFeedback().detect_pair(*_pair(*_storm([0])))
    _assert_well_formed(d, (1, T))
    assert _runs(d.alert[0]) == [(402, 412), (902, 910)]
    assert d.change_index[0] == 402 == BURSTS[0][0] + 2  # the rate follows the errors by 2 points
    assert d.details["lag_points"][0] == 2 and d.details["lag_s"][0] == 120
    assert d.p_value[0] < 1e-20
    assert d.before[0] == pytest.approx(0.01, abs=0.005)
    assert d.details["delta_pp"][0] > 0.2
    assert d.details["rate_effect"][0] > 0.5


@pytest.mark.parametrize("lag", [1, 5, 9])
def test_retry_feedback_finds_the_lag(lag: int) -> None:
    d = RetryFeedback().detect_pair(*_pair(*_storm([3, 4], lag=lag)))
    assert np.all(d.details["lag_points"] == lag)
    assert np.all(d.change_index == BURSTS[0][0] + lag)


@pytest.mark.parametrize("model", ["independent", "heavy_tailed", "seasonal", "common_cause", "rate_leads"])
def test_retry_feedback_quiet_pairs_raise_nothing(model: str) -> None:
    rng = np.random.default_rng(13)
    shape = (50, T)
    t = np.arange(T)
    if model == "independent":
        e, r = _independent(list(range(50)))
    elif model == "heavy_tailed":
        e = np.clip(0.01 + 0.002 * rng.standard_t(2, shape), 0, 1)
        r = 100.0 + 3.0 * rng.standard_t(2, shape)
    elif model == "seasonal":
        day = np.sin(2 * np.pi * t / T)
        e = rng.binomial(1000, 0.01 * (1 + 0.5 * day), shape) / 1000.0
        r = 100.0 * (1 + 0.5 * day) + rng.normal(0, 3, shape)
    else:
        # A traffic surge raises the rate and (at once, or 2 points later) the errors:
        # load causing errors, not errors causing load.
        surge = np.zeros(shape)
        for i in range(shape[0]):
            for s in rng.choice(np.arange(50, T - 30), 4, replace=False):
                surge[i, s : s + 10] = rng.uniform(0.5, 2.0)
        r = 100.0 * (1 + surge) + rng.normal(0, 3, shape)
        driver = surge if model == "common_cause" else np.c_[np.zeros((shape[0], 2)), surge[:, :-2]]
        e = rng.binomial(1000, 0.01 + 0.1 * driver) / 1000.0
    d = RetryFeedback().detect_pair(*_pair(e, r))
    _assert_well_formed(d, shape)
    assert not d.alert.any()


def test_retry_feedback_single_batch_is_quiet_and_pairs_must_match() -> None:
    e, r = _storm([0])
    err, rate = _pair(e, r)
    assert not RetryFeedback().detect(err).alert.any()
    other = SeriesBatch([SignalKey("rate", "svc", "other")], rate.times_ns, r, rate.samples, 60)
    with pytest.raises(ValueError, match="mismatch"):
        RetryFeedback().detect_pair(err, other)


def test_retry_feedback_batch_equals_single_runs() -> None:
    e1, r1 = _storm(list(range(100)))
    e2, r2 = _independent(list(range(100, 200)))
    e, r = np.concatenate([e1, e2]), np.concatenate([r1, r2])
    det = RetryFeedback()
    together = det.detect_pair(*_pair(e, r))
    assert together.alert[:100].any(axis=1).all() and not together.alert[100:].any()
    for i in range(200):
        alone = det.detect_pair(*_pair(e[i : i + 1], r[i : i + 1]))
        np.testing.assert_array_equal(together.alert[i], alone.alert[0])
        np.testing.assert_allclose(together.score[i], alone.score[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(together.p_value[i], alone.p_value[0], rtol=1e-9)


def test_retry_feedback_gaps_are_skipped() -> None:
    e, r = _storm([0, 1])
    samples = np.full(e.shape, 1000.0)
    e[:, 600:700] = np.nan
    r[:, 650:720] = np.nan
    samples[:, 1100:1150] = 0.0
    d = RetryFeedback().detect_pair(_batch(e, "error_ratio", samples=samples), _batch(r, "rate", samples=samples))
    _assert_well_formed(d, e.shape)
    assert np.all(d.details["lag_points"] == 2)
    assert not d.alert[:, 600:720].any()
    ei, ri = _independent(list(range(20)))
    ei[:, 200:300] = np.nan
    ri[:, ::9] = np.nan
    assert not RetryFeedback().detect_pair(*_pair(ei, ri)).alert.any()


@pytest.mark.parametrize("factor", [1e6, 1e-6])
def test_retry_feedback_scale_invariant(factor: float) -> None:
    e, r = _storm([0, 1])
    ei, ri = _independent([2, 3])
    e, r = np.concatenate([e, ei]), np.concatenate([r, ri])
    base = RetryFeedback().detect_pair(*_pair(e, r))
    scaled = RetryFeedback().detect_pair(*_pair(e, r * factor))
    np.testing.assert_array_equal(base.alert, scaled.alert)
    np.testing.assert_allclose(base.p_value, scaled.p_value, rtol=1e-6)
    np.testing.assert_allclose(base.details["rate_after"] * factor, scaled.details["rate_after"])


def test_retry_feedback_deterministic_and_window_start_respected() -> None:
    e, r = _storm([0])
    pair = _pair(e, r, window_start=800)
    a, b = RetryFeedback().detect_pair(*pair), RetryFeedback().detect_pair(*pair)
    _assert_same(a, b)
    assert _runs(a.alert[0]) == [(902, 910)]


def test_retry_feedback_uses_given_baselines() -> None:
    e, r = _storm([0])
    err = _batch(e, "error_ratio", baseline=trailing_baseline(e, window=60))
    rate = _batch(r, "rate", baseline=trailing_baseline(r, window=60))
    assert _runs(RetryFeedback().detect_pair(err, rate).alert[0]) == [(402, 412), (902, 910)]
