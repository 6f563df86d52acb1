"""BayesianChangePoint (BOCPD): pinned alarms, quiet signals, vectorisation, gaps, scale, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from detectors.base import Detection, SeriesBatch, SignalKey
from detectors.bocpd import BayesianChangePoint

DET = BayesianChangePoint()
MINUTE_NS = 60_000_000_000


def make_batch(
    kind: str,
    values: NDArray[np.float64],
    *,
    samples: NDArray[np.float64] | None = None,
    errors: NDArray[np.float64] | None = None,
    window_start: int = 0,
    resolution_s: int = 60,
) -> SeriesBatch:
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n, t = values.shape
    samples = np.full((n, t), 100.0) if samples is None else np.atleast_2d(samples).astype(np.float64)
    return SeriesBatch(
        keys=[SignalKey(kind, "svc", f"op-{i}") for i in range(n)],
        times_ns=np.arange(t, dtype=np.int64) * resolution_s * 1_000_000_000,
        values=values,
        samples=samples,
        resolution_s=resolution_s,
        errors=None if errors is None else np.atleast_2d(errors).astype(np.float64),
        window_start=window_start,
    )


def alarms(d: Detection, row: int = 0) -> list[int]:
    return [int(i) for i in np.flatnonzero(d.alert[row])]


def check_contract(d: Detection, shape: tuple[int, int]) -> None:
    n = shape[0]
    assert d.score.shape == d.alert.shape == shape
    assert d.p_value.shape == d.change_index.shape == d.effect.shape == d.before.shape == d.after.shape == (n,)
    assert np.all(np.isfinite(d.score)) and np.all((d.score >= 0) & (d.score <= 1))
    assert np.all((d.p_value >= 0) & (d.p_value <= 1))
    alerting = d.alert.any(axis=1)
    assert np.array_equal(d.change_index >= 0, alerting)
    assert np.all(d.p_value[~alerting] == 1.0)
    for i in np.flatnonzero(alerting):
        assert d.alert[i, d.change_index[i]]


# (1) seeded signals with a known answer: alarm indices pinned, detection delay bounded


def test_gauge_three_sigma_step_pinned_and_found_within_15_points() -> None:
    rng = np.random.default_rng(42)
    x = 100 + 10 * rng.standard_normal(600)
    x[400:] += 30  # +3 sigma at t = 400
    d = DET.detect(make_batch("gauge", x, window_start=300))
    check_contract(d, (1, 600))
    assert alarms(d) == list(range(406, 420))
    assert d.change_index[0] == 406 and d.change_index[0] - 400 <= 15
    assert d.p_value[0] < 1e-30
    assert d.effect[0] == pytest.approx(0.3, abs=0.05)
    assert d.before[0] == pytest.approx(100, abs=3) and d.after[0] == pytest.approx(130, abs=3)


def test_error_ratio_jump_pinned_and_found_within_10_points() -> None:
    rng = np.random.default_rng(7)
    p = np.full(600, 0.002)
    p[400:] = 0.03  # 0.2 % -> 3 % at 100 requests per point
    errors = rng.binomial(100, p).astype(float)
    d = DET.detect(make_batch("error_ratio", errors / 100, errors=errors, window_start=300))
    check_contract(d, (1, 600))
    assert alarms(d) == list(range(405, 419))
    assert 0 <= d.change_index[0] - 400 <= 10
    assert d.p_value[0] < 1e-30
    assert d.details["delta_pp"][0] == pytest.approx(0.028, abs=0.005)


def test_latency_step_pinned_with_relative_effect() -> None:
    rng = np.random.default_rng(3)
    lat = 2e8 * np.exp(0.1 * rng.standard_normal(600))
    lat[400:] *= 1.5
    d = DET.detect(make_batch("latency_p99", lat, window_start=300))
    assert alarms(d) == list(range(405, 420))
    assert d.effect[0] == pytest.approx(0.5, abs=0.05)


def test_rate_drop_pinned_poisson_counts() -> None:
    rng = np.random.default_rng(5)
    lam = np.full(600, 40.0 * 60)
    lam[400:] *= 0.7
    counts = rng.poisson(lam).astype(float)
    d = DET.detect(make_batch("rate", counts / 60, samples=counts, window_start=300))
    assert alarms(d) == list(range(402, 420))
    assert d.effect[0] == pytest.approx(-0.3, abs=0.02)


def test_many_seeds_three_sigma_within_15_points_and_error_jump_mostly_within_10() -> None:
    rng = np.random.default_rng(11)
    n, t, at = 100, 800, 500
    x = rng.standard_normal((n, t))
    x[:, at:] += 3
    d = DET.detect(make_batch("gauge", 5 + 0.1 * x, window_start=300))
    first = d.change_index
    assert np.all((first >= at) & (first - at <= 15))
    p = np.full((n, t), 0.002)
    p[:, at:] = 0.03
    e = rng.binomial(100, p).astype(float)
    d = DET.detect(make_batch("error_ratio", e / 100, errors=e, window_start=300))
    assert not d.alert[:, :at].any()
    assert np.mean((d.change_index >= at) & (d.change_index - at <= 10)) >= 0.95
    found = d.change_index >= 0
    assert found.mean() >= 0.98 and np.all(d.p_value[found] < 1e-6)


def test_errors_appearing_on_a_clean_endpoint_are_found_fast() -> None:
    rng = np.random.default_rng(1)
    n, t, at = 20, 800, 500
    p = np.zeros((n, t))
    p[:, at:] = 0.03  # no error at all in the history, then 3 %
    errors = rng.binomial(100, p).astype(float)
    d = DET.detect(make_batch("error_ratio", errors / 100, errors=errors, window_start=300))
    assert np.all((d.change_index >= at) & (d.change_index - at <= 6))
    assert np.all(d.p_value < 1e-30)
    assert np.all(d.before < 5e-4) and np.allclose(d.details["delta_pp"], 0.03, atol=0.005)


def test_level_shift_inside_a_daily_pattern_is_found() -> None:
    rng = np.random.default_rng(8)
    t = np.arange(4 * 288)  # 4 days at 5 minutes
    x = 50 + 20 * np.sin(2 * np.pi * t / 288) + 2 * rng.standard_normal(t.size)
    x[1000:] += 10  # 5 sigma of the noise, half the daily amplitude
    d = DET.detect(make_batch("gauge", x, window_start=3 * 288, resolution_s=300))
    assert 1000 <= d.change_index[0] <= 1010
    assert not d.alert[0, :1000].any()


# (2) quiet noisy signals raise nothing


def _quiet(kind: str, rng: np.random.Generator) -> SeriesBatch:
    n, t = 20, 1440
    if kind == "gaussian":
        return make_batch("gauge", 20 + 3 * rng.standard_normal((n, t)))
    if kind == "student_t3":
        return make_batch("latency_p99", 1e8 * np.exp(0.1 * rng.standard_t(3, (n, t))))
    if kind == "ar1":
        e = rng.standard_normal((n, t))
        x = np.zeros((n, t))
        for i in range(1, t):  # test data generation only
            x[:, i] = 0.6 * x[:, i - 1] + e[:, i]
        return make_batch("gauge", 1e-6 * (5 + x))
    if kind == "quantised":
        return make_batch("gauge", rng.poisson(0.5, (n, t)).astype(float))
    if kind == "poisson_rate":
        counts = rng.poisson(300, (n, t)).astype(float)
        return make_batch("rate", counts / 60, samples=counts)
    if kind == "overdispersed_rate":
        counts = rng.poisson(3000 * np.exp(0.2 * rng.standard_normal((n, t)))).astype(float)
        return make_batch("rate", counts / 60, samples=counts)
    if kind == "binomial_errors":
        errors = rng.binomial(100, 0.01, (n, t)).astype(float)
        return make_batch("error_ratio", errors / 100, errors=errors)
    phase = 2 * np.pi * np.arange(864) / 288  # 3 days at 5 minutes
    daily = 1 + 0.5 * np.sin(phase) + 0.2 * np.sin(2 * phase)
    if kind == "daily_gauge":
        return make_batch("gauge", 100 * daily + 3 * rng.standard_normal((n, 864)), resolution_s=300)
    if kind == "daily_latency":
        lat = 1e7 * daily * np.exp(0.05 * rng.standard_normal((n, 864)))
        return make_batch("latency_p50", lat, resolution_s=300)
    assert kind == "daily_rate"
    counts = rng.poisson(600 * daily, (n, 864)).astype(float)
    return make_batch("rate", counts / 300, samples=counts, resolution_s=300)


@pytest.mark.parametrize(
    "kind",
    [
        "gaussian",
        "student_t3",
        "ar1",
        "quantised",
        "poisson_rate",
        "overdispersed_rate",
        "binomial_errors",
        "daily_gauge",
        "daily_latency",
        "daily_rate",
    ],
)
def test_quiet_noisy_signals_raise_nothing(kind: str) -> None:
    batch = _quiet(kind, np.random.default_rng(2024))
    d = DET.detect(batch)
    check_contract(d, batch.shape)
    assert not d.alert.any()
    assert np.all(d.p_value == 1.0)
    assert np.all(d.change_index == -1)


def test_quiet_p_values_are_conservative_across_many_series() -> None:
    rng = np.random.default_rng(99)
    d = DET.detect(make_batch("gauge", rng.standard_t(4, (300, 1000))))
    for alpha in (0.001, 0.01, 0.05):
        assert np.mean(d.p_value <= alpha) <= alpha


# (3) vectorised: a batch gives, per series, what each series gives alone


def test_batch_of_200_equals_each_series_alone() -> None:
    rng = np.random.default_rng(5)
    n, t = 200, 400
    x = 10 + rng.standard_normal((n, t)) * rng.uniform(0.5, 2.0, (n, 1))
    x[::3, 250:] += 4
    x[1::7, 120:160] = np.nan
    x[2::11, 300:] *= rng.uniform(0.2, 3.0)
    batch = make_batch("gauge", x, window_start=200)
    together = DET.detect(batch)
    assert together.alert[::3].any(axis=1).mean() > 0.9
    for i in range(n):
        alone = DET.detect(make_batch("gauge", x[i], window_start=200))
        np.testing.assert_array_equal(alone.alert[0], together.alert[i])
        np.testing.assert_allclose(alone.score[0], together.score[i], rtol=0, atol=1e-12)
        assert alone.change_index[0] == together.change_index[i]
        np.testing.assert_allclose(alone.p_value[0], together.p_value[i], rtol=1e-9)


def test_batch_equals_alone_for_count_models() -> None:
    rng = np.random.default_rng(6)
    n, t = 12, 500
    counts = rng.poisson(np.where(np.arange(t) < 300, 200.0, 150.0), (n, t)).astype(float)
    errors = rng.binomial(counts.astype(int), 0.02).astype(float)
    for kind, values, errs in (("rate", counts / 60, None), ("error_ratio", errors / counts, errors)):
        together = DET.detect(make_batch(kind, values, samples=counts, errors=errs, window_start=200))
        for i in range(n):
            alone = DET.detect(
                make_batch(
                    kind, values[i], samples=counts[i], errors=None if errs is None else errs[i], window_start=200
                )
            )
            np.testing.assert_array_equal(alone.alert[0], together.alert[i])
            np.testing.assert_allclose(alone.score[0], together.score[i], rtol=0, atol=1e-12)


# (4) gaps


def test_gaps_cause_no_alert_and_no_crash() -> None:
    rng = np.random.default_rng(12)
    n, t = 6, 900
    x = 50 + 5 * rng.standard_normal((n, t))
    samples = np.full((n, t), 100.0)
    x[0, 300:450] = np.nan  # a long NaN run
    samples[1, 200:260] = 0  # a run without traffic (values are whatever was written there)
    x[1, 200:260] = 0.0
    x[2, :100] = np.nan  # leading gap
    x[3] = np.nan  # never any data
    x[4, ::2] = np.nan  # every other point missing
    x[5, 850:] = np.nan  # trailing gap
    for kind, values in (("gauge", x), ("latency_p90", x * 1e6), ("histogram_p99", x)):
        d = DET.detect(make_batch(kind, values, samples=samples))
        check_contract(d, (n, t))
        assert not d.alert.any(), kind
        assert np.all(d.score[0, 300:450] == 0) and np.all(d.score[1, 200:260] == 0)
    counts = rng.poisson(100, (n, t)).astype(float)
    counts[0, 300:450] = 0  # no requests: a gap for both count models
    counts[3] = 0
    errors = rng.binomial(counts.astype(int), 0.05).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = errors / counts
    for kind, values, errs in (("rate", counts / 60, None), ("error_ratio", ratio, errors)):
        d = DET.detect(make_batch(kind, values, samples=counts, errors=errs))
        check_contract(d, (n, t))
        assert not d.alert.any(), kind


def test_step_after_a_gap_is_still_found() -> None:
    rng = np.random.default_rng(13)
    x = 10 + rng.standard_normal(700)
    x[380:420] = np.nan
    x[420:] += 4
    d = DET.detect(make_batch("gauge", x, window_start=300))
    assert 420 <= d.change_index[0] <= 430


# (5) scale invariance


@pytest.mark.parametrize("factor", [1e6, 1e-6])
@pytest.mark.parametrize("kind", ["gauge", "latency_p99", "histogram_p50", "rate"])
def test_scaling_a_series_does_not_change_the_alerts(kind: str, factor: float) -> None:
    rng = np.random.default_rng(21)
    n, t = 8, 700
    if kind == "rate":  # overdispersed counts: the quasi-Poisson model is scale-free
        values = rng.poisson(600 * np.exp(0.1 * rng.standard_normal((n, t)))).astype(float) / 60
    else:
        values = 3.0 * np.exp(0.2 * rng.standard_normal((n, t)))
    values[: n // 2, 450:] *= 1.6
    base = DET.detect(make_batch(kind, values, window_start=300))
    scaled = DET.detect(make_batch(kind, values * factor, window_start=300))
    assert base.alert[: n // 2].any(axis=1).all() and not base.alert[n // 2 :].any()
    np.testing.assert_array_equal(base.alert, scaled.alert)
    np.testing.assert_array_equal(base.change_index, scaled.change_index)
    np.testing.assert_allclose(base.score, scaled.score, atol=1e-6)
    np.testing.assert_allclose(base.effect, scaled.effect, rtol=1e-9)


@settings(deadline=None, max_examples=12)
@given(exponent=st.integers(-6, 9), seed=st.integers(0, 2**16))
def test_any_scale_gives_the_same_alerts(exponent: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = 1.0 + 0.05 * rng.standard_normal((3, 400))
    x[0, 300:] += 0.3
    base = DET.detect(make_batch("gauge", x, window_start=200))
    scaled = DET.detect(make_batch("gauge", x * 10.0**exponent, window_start=200))
    np.testing.assert_array_equal(base.alert, scaled.alert)


# (6) determinism, and the contract on arbitrary input


def test_two_runs_give_identical_arrays() -> None:
    batch = _quiet("daily_rate", np.random.default_rng(1))
    first, second = DET.detect(batch), DET.detect(batch)
    for a, b in zip(
        (first.score, first.alert, first.p_value, first.change_index, first.effect),
        (second.score, second.alert, second.p_value, second.change_index, second.effect),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@settings(deadline=None, max_examples=25)
@given(
    kind=st.sampled_from(["gauge", "latency_p95", "rate", "error_ratio"]),
    t=st.integers(1, 120),
    scale=st.floats(1e-6, 1e9),
    nan_fraction=st.floats(0.0, 1.0),
    window_start=st.integers(0, 150),
    seed=st.integers(0, 2**16),
)
def test_any_input_honours_the_contract(
    *, kind: str, t: int, scale: float, nan_fraction: float, window_start: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = 3
    samples = rng.integers(0, 50, (n, t)).astype(float)
    values = scale * rng.lognormal(0.0, 1.0, (n, t))
    values[rng.random((n, t)) < nan_fraction] = np.nan
    errors = None
    if kind == "error_ratio":
        errors = np.floor(samples * rng.random((n, t)) * 0.2)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = errors / samples
    d = DET.detect(make_batch(kind, values, samples=samples, errors=errors, window_start=window_start))
    check_contract(d, (n, t))
    assert not d.alert[:, : min(window_start, t)].any()


def test_empty_batches() -> None:
    d = DET.detect(make_batch("gauge", np.zeros((0, 10))))
    assert d.score.shape == (0, 10)
    d = DET.detect(make_batch("gauge", np.zeros((2, 0))))
    assert d.alert.shape == (2, 0) and np.all(d.p_value == 1.0)
