"""DistributionShift: two-sample tests on log-bucket latency histograms (window under test vs baseline)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs

from analysis.histogram import LN_GAMMA, LogHistogram, bucket_index, bucket_value
from detectors.base import Detection, FloatArray, SeriesBatch, SignalKey
from detectors.distribution_shift import DistributionShift, compare_histograms

T = 30
WINDOW_START = 20
MEDIAN_NS = 2e7  # 20 ms
DET = DistributionShift()

Sampler = Callable[[np.random.Generator, int], FloatArray]


def _lognormal(rng: np.random.Generator, n: int) -> FloatArray:
    return rng.lognormal(np.log(MEDIAN_NS), 0.5, n)


def _heavy_tailed(rng: np.random.Generator, n: int) -> FloatArray:
    """A 5 ms floor plus a Student-t(2) tail: infinite variance, occasional 100x outliers."""
    return 5e6 + 1e7 * np.abs(rng.standard_t(2, n))


def _bimodal(rng: np.random.Generator, n: int) -> FloatArray:
    """Cache hits (~1 ms) and misses (~50 ms), 30 % misses."""
    miss = rng.random(n) < 0.3
    return np.where(miss, rng.lognormal(np.log(5e7), 0.3, n), rng.lognormal(np.log(1e6), 0.2, n))


def _millisecond_ticks(rng: np.random.Generator, n: int) -> FloatArray:
    """Latencies recorded at 1 ms resolution (3 to ~12 ms): a handful of distinct values, many ties."""
    return 1e6 * np.round(rng.gamma(6.0, 1.0, n) + 1.0)


NOISE_MODELS: dict[str, Sampler] = {
    "lognormal": _lognormal,
    "heavy_tailed": _heavy_tailed,
    "bimodal": _bimodal,
    "ms_ticks": _millisecond_ticks,
}


def _batch(
    current: list[LogHistogram],
    reference: list[LogHistogram],
    *,
    t: int = T,
    window_start: int = WINDOW_START,
    values: FloatArray | None = None,
) -> SeriesBatch:
    n = len(current)
    vals = np.full((n, t), MEDIAN_NS) if values is None else values
    samples = np.where(np.isfinite(vals), 100.0, 0.0)
    return SeriesBatch(
        keys=[SignalKey("latency_p99", "svc", f"op-{i}") for i in range(n)],
        times_ns=np.arange(t, dtype=np.int64) * 60_000_000_000,
        values=vals,
        samples=samples,
        resolution_s=60,
        current=current,
        reference=reference,
        window_start=window_start,
    )


def _hist(values: FloatArray) -> LogHistogram:
    return LogHistogram.from_values(values)


def _check_ranges(d: Detection, n: int, t: int = T) -> None:
    assert d.score.shape == d.alert.shape == (n, t)
    assert np.all((d.score >= 0) & (d.score <= 1))
    assert np.all((d.p_value >= 0) & (d.p_value <= 1))
    assert d.change_index.shape == d.effect.shape == d.before.shape == d.after.shape == (n,)


def test_pinned_alarm_indices_and_zero_delay() -> None:
    """Regression pin: a +30 % and a -20 % shift alarm from the window start; the same distribution does not."""
    rng = np.random.default_rng(42)
    ref = [_hist(_lognormal(rng, 3000)) for _ in range(3)]
    cur = [_hist(1.3 * _lognormal(rng, 3000)), _hist(0.8 * _lognormal(rng, 3000)), _hist(_lognormal(rng, 3000))]
    values = np.full((3, T), MEDIAN_NS)
    values[1, 22:24] = np.nan  # a gap inside the window under test: not an alarm point
    d = DET.detect(_batch(cur, ref, values=values))
    _check_ranges(d, 3)
    assert [np.flatnonzero(row).tolist() for row in d.alert] == [
        list(range(20, 30)),
        [20, 21, *range(24, 30)],
        [],
    ]
    # The change is at the window start: detected there (delay 0 points); nothing flagged before it.
    assert d.change_index.tolist() == [WINDOW_START, WINDOW_START, -1]
    assert not d.alert[:, :WINDOW_START].any()
    assert np.all(d.score[:, :WINDOW_START] == 0)
    assert np.round(d.effect, 3).tolist() == [0.291, -0.208, 0.023]  # true: +0.30, -0.20, 0 (SE ~0.013)
    assert d.p_value[0] < 1e-50 and d.p_value[1] < 1e-50 and d.p_value[2] > 0.01
    assert np.all(d.score[2, WINDOW_START:] == 1 - d.p_value[2])
    assert d.after[0] / d.before[0] == pytest.approx(1.3, abs=0.05)


def test_thirty_percent_shift_detected_with_the_right_effect() -> None:
    rng = np.random.default_rng(0)
    ref, cur = _lognormal(rng, 10_000), 1.3 * _lognormal(rng, 10_000)
    d = DET.detect(_batch([_hist(cur)], [_hist(ref)]))
    assert d.alert[0, WINDOW_START:].all()
    assert d.effect[0] == pytest.approx(0.30, abs=0.03)
    # A pure shift on the log scale: Wasserstein-1 of ln(latency) is the shift itself, ln(1.3) = 0.262.
    assert d.details["wasserstein_log"][0] == pytest.approx(np.log(1.3), abs=0.03)
    assert d.details["shift_log"][0] == pytest.approx(np.log(1.3), abs=0.03)
    assert d.details["ks_statistic"][0] > 0.15
    assert d.details["ks_p_value"][0] < 1e-50
    assert d.p_value[0] < 1e-100


@pytest.mark.parametrize("model", NOISE_MODELS, ids=str)
def test_same_distribution_never_alerts_over_200_seeded_pairs(model: str) -> None:
    """False-positive control: 200 (reference, current) pairs drawn from one distribution, 50 to 20 000 requests."""
    sample = NOISE_MODELS[model]
    rng = np.random.default_rng(11)
    sizes = np.exp(rng.uniform(np.log(50), np.log(20_000), (200, 2))).astype(int)
    ref = [_hist(sample(rng, int(n))) for n, _ in sizes]
    cur = [_hist(sample(rng, int(m))) for _, m in sizes]
    d = DET.detect(_batch(cur, ref))
    _check_ranges(d, 200)
    assert not d.alert.any()
    assert np.all(d.change_index == -1)
    # The p-value is a probability under the null (what Benjamini-Hochberg needs): ~5 % below 0.05.
    below = float(np.mean(d.p_value < 0.05))
    assert 0.01 <= below <= 0.11, below
    # The effect estimate is consistent: below the 5 % gate whenever both windows are large.
    large = sizes.min(axis=1) >= 2000
    assert large.sum() >= 20 and np.max(np.abs(d.effect[large])) < 0.05


@settings(deadline=None, max_examples=60)
@given(
    n=hs.integers(0, 49),
    m=hs.integers(0, 300),
    factor=hs.floats(1e-3, 1e3),
    seed=hs.integers(0, 2**32 - 1),
    swap=hs.booleans(),
)
def test_tiny_samples_never_alert(n: int, m: int, factor: float, seed: int, swap: bool) -> None:
    """Fewer than min_samples (50) requests in either window: no alert, whatever the shift."""
    rng = np.random.default_rng(seed)
    small, large = _hist(_lognormal(rng, n)), _hist(factor * _lognormal(rng, m))
    cur, ref = (large, small) if swap else (small, large)
    d = DET.detect(_batch([cur], [ref]))
    _check_ranges(d, 1)
    assert not d.alert.any()
    assert d.change_index[0] == -1


def test_a_few_slow_requests_against_thousands_never_alert() -> None:
    """3 or 30 requests at 1 s against 5 000 at ~20 ms: a 50x effect, significant with 30, still no alert."""
    rng = np.random.default_rng(5)
    ref = _hist(_lognormal(rng, 5000))
    d = DET.detect(_batch([_hist(np.full(3, 1e9)), _hist(np.full(30, 1e9))], [ref, ref]))
    assert not d.alert.any()
    assert np.all(d.effect > 10)
    assert d.p_value[1] < 1e-10  # significant, but 30 requests are below min_samples


@pytest.mark.parametrize("factor", [1e3, 1e6, 1e-6], ids=str)
def test_scale_invariance(factor: float) -> None:
    """Multiplying every latency by a constant before bucketing changes nothing but bucket jitter."""
    rng = np.random.default_rng(9)
    shifts = [1.0, 1.02, 1.1, 1.3, 0.8, 2.0]
    raw = [(_lognormal(rng, 4000), s * _lognormal(rng, 4000)) for s in shifts]
    base = DET.detect(_batch([_hist(c) for _, c in raw], [_hist(r) for r, _ in raw]))
    scaled = DET.detect(_batch([_hist(factor * c) for _, c in raw], [_hist(factor * r) for r, _ in raw]))
    assert base.alert[:, WINDOW_START].tolist() == [False, False, True, True, True, True]
    np.testing.assert_array_equal(base.alert, scaled.alert)
    np.testing.assert_allclose(scaled.effect, base.effect, atol=0.01)
    np.testing.assert_allclose(scaled.after / base.after, factor, rtol=0.03)
    np.testing.assert_allclose(np.log10(scaled.p_value + 1e-300), np.log10(base.p_value + 1e-300), atol=0.5)


def test_p_values_close_to_scipy_on_the_raw_samples() -> None:
    """Bucketing (1 % wide) turns near values into ties.

    Mann-Whitney: the midrank/tie-corrected p-value from buckets stays within 0.15 decades
    (a factor 1.4) of scipy's on the raw values (observed: 0.07). KS: D is read at bucket
    edges only, so D <= D_raw and the p-value is conservative: within [-0.05, +1.0] decades
    of scipy's (observed -0.01 .. +0.6); and Stephens' approximation replaces kstwo.
    """
    rng = np.random.default_rng(3)
    for shift in np.linspace(0.0, 0.06, 25):
        x, y = _lognormal(rng, 2000), np.exp(shift) * _lognormal(rng, 2000)
        c = compare_histograms([_hist(y)], [_hist(x)])
        mw = st.mannwhitneyu(y, x, method="asymptotic").pvalue
        ks = st.ks_2samp(y, x, method="asymp")
        if mw > 1e-12:
            assert abs(np.log10(c.mw_p_value[0] / mw)) <= 0.15, (shift, c.mw_p_value[0], mw)
        if ks.pvalue > 1e-12:
            assert -0.05 <= np.log10(c.ks_p_value[0] / ks.pvalue) <= 1.0, (shift, c.ks_p_value[0], ks.pvalue)
        assert ks.statistic - 0.02 <= c.ks_statistic[0] <= ks.statistic + 1e-12


@settings(deadline=None, max_examples=40)
@given(n=hs.integers(2, 400), m=hs.integers(2, 400), sigma=hs.floats(0.01, 2.0), seed=hs.integers(0, 2**32 - 1))
def test_statistics_equal_scipy_on_bucket_representatives(n: int, m: int, sigma: float, seed: int) -> None:
    """On the bucket representatives themselves the histogram statistics are exact."""
    rng = np.random.default_rng(seed)
    x, y = rng.lognormal(10, sigma, n), rng.lognormal(10.05, sigma, m)
    bx, by = bucket_value(bucket_index(x)), bucket_value(bucket_index(y))
    c = compare_histograms([_hist(y)], [_hist(x)])
    if np.unique(np.concatenate([bx, by])).size > 1:
        mw = st.mannwhitneyu(by, bx, method="asymptotic").pvalue
        assert c.mw_p_value[0] == pytest.approx(mw, rel=1e-9, abs=1e-300)
    assert c.ks_statistic[0] == pytest.approx(st.ks_2samp(by, bx).statistic, abs=1e-12)
    assert c.wasserstein_log[0] == pytest.approx(st.wasserstein_distance(np.log(by), np.log(bx)), abs=1e-9)
    # Hodges-Lehmann: the median of pairwise bucket differences, interpolated within +-1/2 bucket.
    hl = np.median(bucket_index(y).astype(float)[:, None] - bucket_index(x).astype(float)[None, :])
    assert abs(c.shift_log[0] / LN_GAMMA - hl) <= 0.5 + 1e-9


@settings(deadline=None, max_examples=40)
@given(n=hs.integers(1, 300), m=hs.integers(1, 300), zeros=hs.integers(0, 5), seed=hs.integers(0, 2**32 - 1))
def test_swapping_the_windows_mirrors_the_statistics(n: int, m: int, zeros: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = LogHistogram.from_values(np.concatenate([np.zeros(zeros), rng.lognormal(5, 1, n)]))
    b = LogHistogram.from_values(rng.lognormal(5.2, 1, m))
    ab, ba = compare_histograms([a], [b]), compare_histograms([b], [a])
    assert ab.mw_p_value[0] == pytest.approx(ba.mw_p_value[0], rel=1e-9)
    assert ab.shift_log[0] == pytest.approx(-ba.shift_log[0], abs=1e-9)
    assert ab.ks_statistic[0] == pytest.approx(ba.ks_statistic[0], abs=1e-12)
    assert ab.wasserstein_log[0] == pytest.approx(ba.wasserstein_log[0], abs=1e-9)
    assert 0.0 <= ab.mw_p_value[0] <= 1.0 and 0.0 <= ab.ks_p_value[0] <= 1.0


def test_batch_of_200_equals_each_series_alone() -> None:
    rng = np.random.default_rng(21)
    factors = np.exp(rng.normal(0, 0.15, 200))
    ref = [_hist(_lognormal(rng, int(rng.integers(1, 3000)))) for _ in range(200)]
    cur = [_hist(f * _lognormal(rng, int(rng.integers(1, 3000)))) for f in factors]
    cur[7], ref[8] = LogHistogram.empty(), LogHistogram.empty()
    together = DET.detect(_batch(cur, ref))
    assert together.alert.any() and not together.alert.all()
    for i in range(200):
        alone = DET.detect(_batch([cur[i]], [ref[i]]))
        np.testing.assert_array_equal(alone.alert[0], together.alert[i])
        np.testing.assert_array_equal(alone.score[0], together.score[i])
        for name in ("p_value", "change_index", "effect", "before", "after"):
            np.testing.assert_array_equal(getattr(alone, name)[0], getattr(together, name)[i], err_msg=name)
        for key, arr in together.details.items():
            np.testing.assert_array_equal(alone.details[key][0], arr[i], err_msg=key)


def test_gaps_empty_and_missing_histograms() -> None:
    rng = np.random.default_rng(4)
    shifted = (_hist(1.5 * _lognormal(rng, 2000)), _hist(_lognormal(rng, 2000)))
    values = np.full((6, T), MEDIAN_NS)
    values[0, WINDOW_START:] = np.nan  # the whole window is a gap in the per-point series
    values[1, 10:25] = np.nan  # a NaN run across the window start
    cur = [shifted[0], shifted[0], LogHistogram.empty(), shifted[0], _hist(np.zeros(500)), _hist(np.zeros(500))]
    ref = [shifted[1], shifted[1], shifted[1], LogHistogram.empty(), shifted[1], _hist(np.zeros(400))]
    d = DET.detect(_batch(cur, ref, values=values))
    _check_ranges(d, 6)
    # No per-point data in the window: the histogram is the only evidence, the whole window alerts.
    assert np.flatnonzero(d.alert[0]).tolist() == list(range(WINDOW_START, T))
    assert np.flatnonzero(d.alert[1]).tolist() == list(range(25, T))
    assert d.change_index[:2].tolist() == [WINDOW_START, 25]
    assert not np.any(d.alert[1][np.isnan(values[1])])
    assert not d.alert[2:4].any() and np.all(d.p_value[2:4] == 1.0) and np.all(np.isnan(d.effect[2:4]))
    # Values <= 0 sit one bucket below the lowest positive one: all-zero current against 20 ms is a big drop...
    assert d.alert[4, WINDOW_START] and d.effect[4] < -0.5 and d.after[4] == 0.0
    # ... and all-zero against all-zero is no evidence at all.
    assert not d.alert[5].any() and d.p_value[5] == 1.0 and d.effect[5] == 0.0
    assert np.all(np.isfinite(d.score))


def test_missing_histograms_are_quiet() -> None:
    batch = _batch([LogHistogram.empty()], [LogHistogram.empty()])
    for b in (
        SeriesBatch(batch.keys, batch.times_ns, batch.values, batch.samples, 60, window_start=WINDOW_START),
        SeriesBatch(batch.keys, batch.times_ns, batch.values, batch.samples, 60, current=batch.current),
    ):
        d = DET.detect(b)
        assert not d.alert.any() and np.all(d.p_value == 1.0) and np.all(d.change_index == -1)


def test_window_start_at_the_end_and_mismatched_lengths() -> None:
    rng = np.random.default_rng(6)
    ref, cur = _hist(_lognormal(rng, 1000)), _hist(2 * _lognormal(rng, 1000))
    d = DET.detect(_batch([cur], [ref], window_start=T))
    assert not d.alert.any() and d.change_index[0] == -1 and d.p_value[0] < 1e-10
    with pytest.raises(ValueError, match="histograms"):
        DET.detect(_batch([cur, cur], [ref]))


def test_deterministic() -> None:
    rng = np.random.default_rng(8)
    ref = [_hist(_lognormal(rng, 500)) for _ in range(20)]
    cur = [_hist(1.1 * _lognormal(rng, 500)) for _ in range(20)]
    batch = _batch(cur, ref)
    first, second = DET.detect(batch), DET.detect(batch)
    for name in ("score", "alert", "p_value", "change_index", "effect", "before", "after"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    for key in first.details:
        np.testing.assert_array_equal(first.details[key], second.details[key], err_msg=key)
