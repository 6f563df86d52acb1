"""ErrorRate: binomial tests of error ratios, overdispersed count tests of rates, SLO burn-rate alerts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike, NDArray

from analysis.baselines import Baseline, auto_baseline, trailing_baseline
from detectors.base import Detection, SeriesBatch, SignalKey
from detectors.error_rate import ErrorRate

MINUTE_NS = 60_000_000_000
FloatArray = NDArray[np.float64]


def ratio_batch(p: ArrayLike, requests: ArrayLike, seed: int, *, window_start: int = 0, res: int = 60) -> SeriesBatch:
    """Error counts drawn Binomial(requests, p) per point; values = errors / requests."""
    rng = np.random.default_rng(seed)
    prob = np.atleast_2d(np.asarray(p, dtype=np.float64))
    n, t = prob.shape
    samples = np.broadcast_to(np.asarray(requests, dtype=np.float64), (n, t)).copy()
    errors = rng.binomial(samples.astype(np.int64), np.clip(prob, 0.0, 1.0)).astype(np.float64)
    return SeriesBatch(
        keys=[SignalKey("error_ratio", "svc", f"op-{i}") for i in range(n)],
        times_ns=np.arange(t, dtype=np.int64) * res * 1_000_000_000,
        values=errors / samples,
        samples=samples,
        resolution_s=res,
        errors=errors,
        window_start=window_start,
    )


def nb_counts(mean: ArrayLike, size: float, rng: np.random.Generator) -> FloatArray:
    """Negative-binomial counts with the given mean and size (variance mean + mean^2 / size)."""
    m = np.asarray(mean, dtype=np.float64)
    out: FloatArray = rng.negative_binomial(size, size / (size + m)).astype(np.float64)
    return out


def rate_batch(
    counts: ArrayLike, *, res: int = 60, window_start: int = 0, baseline: Baseline | None = None
) -> SeriesBatch:
    """A rate batch whose values are ``counts`` per point divided by the resolution."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    n, t = c.shape
    return SeriesBatch(
        keys=[SignalKey("rate", "svc", f"op-{i}") for i in range(n)],
        times_ns=np.arange(t, dtype=np.int64) * res * 1_000_000_000,
        values=c / res,
        samples=np.full((n, t), 100.0),
        resolution_s=res,
        baseline=baseline,
        window_start=window_start,
    )


def row(batch: SeriesBatch, i: int) -> SeriesBatch:
    """Series ``i`` of ``batch`` alone."""
    b = batch.baseline
    base = None
    if b is not None:
        base = Baseline(b.center[i : i + 1], b.spread[i : i + 1], b.lower[i : i + 1], b.upper[i : i + 1],
                        b.support[i : i + 1], b.method)  # fmt: skip
    return SeriesBatch(
        keys=batch.keys[i : i + 1],
        times_ns=batch.times_ns,
        values=batch.values[i : i + 1],
        samples=batch.samples[i : i + 1],
        resolution_s=batch.resolution_s,
        baseline=base,
        errors=None if batch.errors is None else batch.errors[i : i + 1],
        window_start=batch.window_start,
    )


def check_invariants(d: Detection, batch: SeriesBatch) -> None:
    """Shapes, ranges and the links between the per-point and per-series fields."""
    n, t = batch.shape
    assert d.score.shape == d.alert.shape == (n, t)
    assert np.all((d.score >= 0) & (d.score <= 1))
    assert np.all((d.p_value > 0) & (d.p_value <= 1))
    assert not d.alert[:, : batch.window_start].any()
    assert not (d.alert & ~np.isfinite(batch.values)).any()
    has = d.alert.any(axis=1)
    np.testing.assert_array_equal(d.change_index >= 0, has)
    np.testing.assert_array_equal(d.p_value < 1, has)
    rows = np.flatnonzero(has)
    assert d.alert[rows, d.change_index[rows]].all()


# (1) pinned alarms on a seeded signal, and the detection delay ---------------------------------


def test_error_ratio_jump_is_pinned_and_found_within_five_points() -> None:
    p = np.full(720, 0.002)
    p[600:620] = 0.03  # 20 minutes at 3 % errors, 100 requests a minute
    d = ErrorRate().detect(ratio_batch(p, 100, seed=0, window_start=480))
    alarms = np.flatnonzero(d.alert[0])
    assert alarms.tolist() == list(range(603, 627))
    assert alarms[0] - 600 <= 5
    assert d.change_index[0] == 603
    assert d.p_value[0] < 1e-20
    assert d.before[0] == pytest.approx(0.00236, abs=1e-5)  # p0 with its half-error prior
    assert 0.02 < d.after[0] < 0.04
    assert d.effect[0] == pytest.approx((d.after[0] - d.before[0]) / d.before[0])
    assert d.details["delta_pp"][0] == pytest.approx(100 * (d.after[0] - d.before[0]))
    assert d.score[0, 610] > 0.5 > d.score[0, 500]


@pytest.mark.parametrize("seed", range(8))
def test_error_ratio_delay_without_history(seed: int) -> None:
    """window_start = 0: the incident is in the pooled history, which pass two leaves out."""
    p = np.full(600, 0.002)
    p[400:] = 0.03
    d = ErrorRate().detect(ratio_batch(p, 100, seed=seed))
    alarms = np.flatnonzero(d.alert[0])
    assert 400 <= alarms[0] <= 405
    assert d.details["p0"][0] < 0.004


def test_rate_drop_is_pinned_and_found_within_five_points() -> None:
    mean = np.full(1200, 600.0)  # 10 requests/s at 1-minute resolution
    mean[1000:1030] = 300.0  # half the traffic for 30 minutes
    counts = nb_counts(mean, 50, np.random.default_rng(0))  # overdispersed: CV 0.14 instead of 0.04
    d = ErrorRate().detect(rate_batch(counts, window_start=900))
    alarms = np.flatnonzero(d.alert[0])
    assert alarms.tolist() == list(range(1004, 1033))
    assert alarms[0] - 1000 <= 5
    assert d.change_index[0] == 1004
    assert d.p_value[0] < 1e-20
    assert d.before[0] == pytest.approx(9.9)  # requests/s: the history median
    assert d.effect[0] == pytest.approx(-0.5, abs=0.05)
    assert d.details["event_counts"][0] == 1.0


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_rate_drop_and_surge_with_a_trailing_baseline(factor: float) -> None:
    mean = np.full(900, 3000.0)
    mean[700:725] *= factor  # shorter than half the baseline window: the baseline does not follow it
    counts = nb_counts(mean, 100, np.random.default_rng(4))
    batch = rate_batch(counts, window_start=600, baseline=trailing_baseline(counts / 60, window=60))
    d = ErrorRate().detect(batch)
    alarms = np.flatnonzero(d.alert[0])
    assert 700 <= alarms[0] <= 705
    assert np.sign(d.effect[0]) == np.sign(factor - 1)


# noise floor and SLO burn rates --------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_two_requests_a_minute_never_page(seed: int) -> None:
    p = np.full(600, 0.002)
    p[400:460] = 0.03  # the same jump, one hour long, at 2 requests/minute
    d = ErrorRate().detect(ratio_batch(p, 2, seed=seed))
    assert not d.alert.any()
    assert d.p_value[0] == 1.0


def test_burn_rate_alert_for_two_percent_errors_with_a_999_slo() -> None:
    batch = ratio_batch(np.full(720, 0.02), 100, seed=1)  # constant: no change, but 20x the budget
    assert not ErrorRate().detect(batch).alert.any()
    d = ErrorRate(slo=0.999).detect(batch)
    assert d.alert[0].sum() == 720
    assert 14.4 < d.details["burn_rate_1h"][0] < 40
    assert d.details["burn_rate_6h"][0] > 6
    assert d.p_value[0] < 1e-6
    check_invariants(d, batch)


def test_no_burn_rate_alert_for_half_the_budget() -> None:
    d = ErrorRate(slo=0.999).detect(ratio_batch(np.full(720, 0.0005), 100, seed=1))
    assert not d.alert.any()
    assert d.details["burn_rate_1h"][0] < 3


def test_burn_rate_respects_the_noise_floor() -> None:
    d = ErrorRate(slo=0.999).detect(ratio_batch(np.full(720, 0.02), 2, seed=1))
    assert not d.alert.any()
    assert np.isnan(d.details["burn_rate_1h"][0])


# (2) quiet signals raise nothing -----------------------------------------------------------------


@pytest.mark.parametrize("noise", ["gaussian", "student_t", "seasonal"])
def test_quiet_error_ratios_raise_nothing(noise: str) -> None:
    """Binomial errors around a jittered ratio; heavy-tailed traffic; a daily cycle, with and without a baseline."""
    rng = np.random.default_rng(11)
    n, t, res = 20, 1440, 60
    p = np.clip(0.01 + 0.002 * rng.standard_normal((n, t)), 0, 1)
    requests: FloatArray = np.full((n, t), 100.0)
    if noise == "student_t":  # bursts of traffic, the error ratio unchanged
        requests = np.maximum(np.round(100 * (1 + 0.3 * rng.standard_t(3, (n, t)))), 1.0)
    batch = ratio_batch(p, requests, seed=12, res=res)
    if noise == "seasonal":  # 3 days at 5-minute resolution: 0.7 % errors at night, 1.3 % at the peak
        t, res = 864, 300
        p = np.broadcast_to(0.01 + 0.003 * np.sin(2 * np.pi * np.arange(t) / 288), (n, t))
        # A constant p0 knows no cycle: 100 requests a point stay under the guards ...
        assert not ErrorRate().detect(ratio_batch(p, 100, seed=12, res=res)).alert.any()
        # ... 1000 are tested against a baseline that follows the cycle.
        batch = ratio_batch(p, 1000, seed=12, res=res)
        batch = SeriesBatch(batch.keys, batch.times_ns, batch.values, batch.samples, res, errors=batch.errors,
                            baseline=auto_baseline(batch.values, resolution_s=res))  # fmt: skip
    d = ErrorRate(slo=0.95).detect(batch)
    assert not d.alert.any()
    check_invariants(d, batch)


@pytest.mark.parametrize("noise", ["gaussian", "student_t", "negative_binomial"])
def test_quiet_rates_raise_nothing(noise: str) -> None:
    rng = np.random.default_rng(21)
    n, t = 20, 1440
    if noise == "gaussian":
        counts = 6e4 * (1 + 0.05 * rng.standard_normal((n, t)))
    elif noise == "student_t":  # heavy tails: spikes of 30 % and more every few hundred points
        counts = 6e4 * np.maximum(1 + 0.03 * rng.standard_t(3, (n, t)), 0.0)
    else:
        counts = nb_counts(np.full((n, t), 600.0), 50, rng)
    for baseline in (None, trailing_baseline(counts / 60, window=60)):
        d = ErrorRate().detect(rate_batch(counts, baseline=baseline))
        assert not d.alert.any()


@pytest.mark.parametrize("with_baseline", [False, True])
def test_quiet_seasonal_rate_raises_nothing(with_baseline: bool) -> None:
    t = 864  # 3 days at 5 minutes
    mean = 3000 * (1 + 0.6 * np.sin(2 * np.pi * np.arange(t) / 288))
    counts = nb_counts(np.broadcast_to(mean, (20, t)), 30, np.random.default_rng(31))
    baseline = auto_baseline(counts / 300, resolution_s=300) if with_baseline else None
    batch = rate_batch(counts, res=300, baseline=baseline)
    d = ErrorRate().detect(batch)
    assert not d.alert.any()
    check_invariants(d, batch)


# (3) vectorised: a batch gives each series what it gets alone ------------------------------------


def _mixed_ratio_batch() -> SeriesBatch:
    rng = np.random.default_rng(41)
    n, t = 200, 600
    p = np.full((n, t), 0.002) * rng.uniform(0.5, 5, (n, 1))
    p[::3, 450:480] += rng.uniform(0.0, 0.05, (len(range(0, n, 3)), 1))
    requests = rng.choice([2.0, 30.0, 100.0, 1000.0], (n, 1)) * np.ones((1, t))
    return ratio_batch(p, requests, seed=42, window_start=300)


def _mixed_rate_batch() -> SeriesBatch:
    rng = np.random.default_rng(43)
    n, t = 200, 600
    mean = rng.uniform(1, 1e4, (n, 1)) * np.ones((1, t))
    mean[::3, 450:480] *= rng.uniform(0.2, 2.0, (len(range(0, n, 3)), 1))
    counts = nb_counts(mean, 40, rng)
    counts[1::4] *= 1.37e-3  # not whole numbers: the scale-free continuous model
    return rate_batch(counts, window_start=300, baseline=trailing_baseline(counts / 60, window=60))


@pytest.mark.parametrize("make", [_mixed_ratio_batch, _mixed_rate_batch], ids=["error_ratio", "rate"])
def test_batch_equals_series_alone(make: object) -> None:
    assert callable(make)
    batch: SeriesBatch = make()
    det = ErrorRate(slo=0.999)
    d = det.detect(batch)
    check_invariants(d, batch)
    assert d.alert.any(axis=1).sum() >= 20  # the comparison covers alarming series
    for i in range(batch.shape[0]):
        one = det.detect(row(batch, i))
        np.testing.assert_array_equal(one.alert[0], d.alert[i])
        np.testing.assert_allclose(one.score[0], d.score[i], rtol=1e-12, atol=0)
        np.testing.assert_allclose(one.p_value[0], d.p_value[i], rtol=1e-12)
        assert one.change_index[0] == d.change_index[i]
        np.testing.assert_allclose(one.effect[0], d.effect[i], rtol=1e-12)


# (4) gaps ----------------------------------------------------------------------------------------


def test_gaps_neither_alarm_nor_crash() -> None:
    p = np.full((3, 720), 0.002)
    p[2, 600:] = 0.03
    batch = ratio_batch(p, 100, seed=5, window_start=300)
    values, samples, errors = batch.values.copy(), batch.samples.copy(), batch.errors
    assert errors is not None
    values[:, 350:420] = np.nan  # a collector outage on every series
    samples[:, 350:420] = 0.0
    values[1, :] = np.nan  # a series with no data at all
    samples[1, :] = 0.0
    values[2, 610:615] = np.nan  # and a hole inside the incident
    gappy = SeriesBatch(batch.keys, batch.times_ns, values, samples, 60, errors=errors, window_start=300)
    d = ErrorRate(slo=0.999).detect(gappy)
    check_invariants(d, gappy)
    assert not d.alert[:2].any()
    assert not d.alert[:, 350:420].any()
    assert 600 <= d.change_index[2] <= 605

    counts = nb_counts(np.full((2, 720), 600.0), 50, np.random.default_rng(6))
    counts[1, 650:] *= 0.4
    rates = counts / 60
    rates[:, 100:200] = np.nan
    rates[:, 640:645] = np.nan
    keys = [SignalKey("rate", "svc", f"op-{i}") for i in range(2)]
    rd = ErrorRate().detect(SeriesBatch(keys, batch.times_ns, rates, np.full((2, 720), 9.0), 60))
    assert not rd.alert[0].any()
    assert not rd.alert[:, 100:200].any()
    assert 650 <= rd.change_index[1] <= 655


def test_all_gaps_and_empty_batches() -> None:
    nan = np.full((2, 50), np.nan)
    keys = [SignalKey("rate", "svc")] * 2
    d = ErrorRate().detect(SeriesBatch(keys, np.arange(50, dtype=np.int64), nan, np.zeros((2, 50)), 60))
    assert not d.alert.any()
    assert np.all(d.score == 0)
    empty = ErrorRate().detect(SeriesBatch([], np.arange(0, dtype=np.int64), np.zeros((0, 0)), np.zeros((0, 0)), 60))
    assert empty.alert.shape == (0, 0)


# (5) scale invariance ------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_rate_alarms_do_not_depend_on_the_unit(scale: float) -> None:
    """Rates only: an error ratio is bounded in [0, 1], so it has no unit to change.

    Exactly scale-free when the counts are not whole numbers (1e-6); event counts add a
    Poisson share 1 / count to the relative variance, negligible at 6000 a minute.
    """
    mean = np.full((3, 1200), 6000.0)
    mean[0, 1000:1030] = 3000.0
    mean[1, 1000:1030] = 9000.0
    counts = nb_counts(mean, 50, np.random.default_rng(0))
    d = ErrorRate().detect(rate_batch(counts, window_start=900))
    scaled = ErrorRate().detect(rate_batch(counts * scale, window_start=900))
    assert d.alert[:2].any(axis=1).all()
    assert not d.alert[2].any()
    np.testing.assert_array_equal(scaled.alert, d.alert)
    np.testing.assert_allclose(scaled.effect, d.effect, rtol=1e-9)
    np.testing.assert_allclose(scaled.score, d.score, atol=0.02)


# (6) determinism and the API -----------------------------------------------------------------------


def test_deterministic() -> None:
    batch = _mixed_rate_batch()
    a, b = ErrorRate().detect(batch), ErrorRate().detect(batch)
    for field in ("score", "alert", "p_value", "change_index", "effect", "before", "after"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.details["overdispersion"], b.details["overdispersion"])


def test_protocol_and_validation() -> None:
    assert ErrorRate.name == "error_rate"
    assert ErrorRate.kinds == ("error_ratio", "rate")
    with pytest.raises(ValueError, match="slo"):
        ErrorRate(slo=1.0)
    with pytest.raises(ValueError, match="alpha"):
        ErrorRate(alpha=0.0)
    keys = [SignalKey("latency_p99", "svc")]
    with pytest.raises(ValueError, match="one kind"):
        ErrorRate().detect(SeriesBatch(keys, np.arange(3, dtype=np.int64), np.ones((1, 3)), np.ones((1, 3)), 60))


def test_values_alone_give_the_same_error_ratio_answer() -> None:
    """Without ``errors`` the counts are recovered as values * samples."""
    p = np.full(600, 0.002)
    p[500:] = 0.05
    batch = ratio_batch(p, 200, seed=8, window_start=400)
    bare = SeriesBatch(batch.keys, batch.times_ns, batch.values, batch.samples, 60, window_start=400)
    np.testing.assert_array_equal(ErrorRate().detect(bare).alert, ErrorRate().detect(batch).alert)


@settings(deadline=None, max_examples=150)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["error_ratio", "rate"]),
    t=st.integers(1, 120),
    gap_fraction=st.floats(0.0, 0.9),
    scale=st.sampled_from([1e-6, 1.0, 1e3, 1e9]),
    window_start=st.integers(0, 100),
)
def test_random_batches_keep_the_invariants(
    *, seed: int, kind: str, t: int, gap_fraction: float, scale: float, window_start: int
) -> None:
    rng = np.random.default_rng(seed)
    n = 3
    samples = rng.integers(0, 200, (n, t)).astype(np.float64)
    step = np.where(np.arange(t) > t // 2, rng.uniform(1, 20), 1.0)
    if kind == "error_ratio":
        errors = rng.binomial(samples.astype(np.int64), np.clip(0.004 * step, 0, 1)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = errors / samples
        err: FloatArray | None = errors
    else:
        values = scale * rng.gamma(2.0, 1.0 + step, (n, t))
        err = None
    values[rng.random((n, t)) < gap_fraction] = np.nan
    batch = SeriesBatch([SignalKey(kind, "svc")] * n, np.arange(t, dtype=np.int64) * MINUTE_NS, values, samples, 60,
                        errors=err, window_start=min(window_start, t))  # fmt: skip
    d = ErrorRate(slo=0.99).detect(batch)
    check_invariants(d, batch)
    assert not (d.alert & ~(samples > 0)).any()


def test_thin_traffic_error_increase_is_found_by_the_hour_window() -> None:
    """14 requests a minute, 0.3 % -> 3 % errors: a minute holds 0.4 expected errors, so only
    windows pooling many minutes can see it."""
    p = np.full(720, 0.003)
    p[540:] = 0.03
    d = ErrorRate().detect(ratio_batch(p, 14, seed=4, window_start=480))
    assert d.alert[0].any() and d.p_value[0] < 1e-6
    assert 540 <= d.change_index[0] <= 600
    assert not ErrorRate(windows=(1,)).detect(ratio_batch(p, 14, seed=4, window_start=480)).alert.any()
