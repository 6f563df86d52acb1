"""``twin.sampling``: the standard errors ``twin check`` judges deviations by are those of sampling."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.sampling import minute_bootstrap, slow_noise_var, weighted_quantiles, z_critical, z_score

MINUTES = 60


def _run(rng: np.random.Generator, per_min: float, median: float, sigma: float, err: float) -> dict[str, float]:
    """One run's statistics and bootstrap errors: Poisson arrivals per minute, lognormal latency, Bernoulli errors."""
    counts = rng.poisson(per_min, MINUTES)
    minute = np.repeat(np.arange(MINUTES), counts)
    dur = median * np.exp(sigma * rng.standard_normal(len(minute)))
    failed = rng.random(len(minute)) < err
    ok = dur[~failed]
    stats = {"rate_per_min": len(minute) / MINUTES, "error_ratio": float(failed.mean()),
             "p50_ms": float(np.quantile(ok, 0.5)), "p99_ms": float(np.quantile(ok, 0.99))}  # fmt: skip
    return stats | minute_bootstrap(minute, dur, failed, MINUTES)


def _max_z(a: dict[str, float], b: dict[str, float]) -> float:
    return max(
        z_score(a[s], b[s], a[f"{s}_se"], b[f"{s}_se"]) for s in ("rate_per_min", "error_ratio", "p50_ms", "p99_ms")
    )


@settings(max_examples=25, deadline=None)
@given(
    per_min=st.floats(20.0, 400.0), median=st.floats(0.5, 200.0), sigma=st.floats(0.1, 1.0),
    err=st.floats(0.005, 0.1), seed=st.integers(0, 2**31),
)  # fmt: skip
def test_two_runs_of_one_system_stay_within_sampling_noise(
    per_min: float, median: float, sigma: float, err: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    a, b = _run(rng, per_min, median, sigma, err), _run(rng, per_min, median, sigma, err)
    # four statistics at a family-wise 1e-4: a failure here is a wrong standard error, not bad luck
    assert _max_z(a, b) <= z_critical(4, alpha=1e-4)


@settings(max_examples=25, deadline=None)
@given(per_min=st.floats(50.0, 400.0), median=st.floats(0.5, 200.0), sigma=st.floats(0.1, 0.6),
       seed=st.integers(0, 2**31))  # fmt: skip
def test_a_halved_service_time_is_beyond_sampling_noise(per_min: float, median: float, sigma: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _run(rng, per_min, median, sigma, 0.01), _run(rng, per_min, median / 2, sigma, 0.01)
    assert z_score(a["p50_ms"], b["p50_ms"], a["p50_ms_se"], b["p50_ms_se"]) > z_critical(100)


def test_bootstrap_standard_errors_match_the_textbook_ones() -> None:
    """Binomial for the error ratio, sqrt(p(1-p)/n)/f(q) for the median, sqrt(rate/T) for a Poisson rate."""
    rng = np.random.default_rng(1)
    run = _run(rng, 500.0, 10.0, 0.5, 0.05)
    n = run["rate_per_min"] * MINUTES
    assert abs(run["error_ratio_se"] / math.sqrt(0.05 * 0.95 / n) - 1) < 0.25
    density = 1 / (10.0 * 0.5 * math.sqrt(2 * math.pi))  # lognormal density at its median
    assert abs(run["p50_ms_se"] / (math.sqrt(0.25 / (n * 0.95)) / density) - 1) < 0.25
    assert abs(run["rate_per_min_se"] / math.sqrt(500.0 / MINUTES) - 1) < 0.25


@settings(max_examples=30, deadline=None)
@given(minutes=st.integers(1, 300), sigma=st.floats(0.0, 0.5), tau=st.floats(1.0, 100.0))
def test_slow_noise_variance_is_the_ar1_covariance_sum(minutes: int, sigma: float, tau: float) -> None:
    phi = math.exp(-1 / tau)
    lags = np.abs(np.subtract.outer(np.arange(minutes), np.arange(minutes)))
    brute = sigma**2 * float(np.sum(phi**lags)) / minutes**2
    assert math.isclose(slow_noise_var(minutes, sigma, tau), brute, rel_tol=1e-9, abs_tol=1e-15)
    assert slow_noise_var(minutes, sigma, tau) <= sigma**2 + 1e-15  # never more than one minute's variance


def test_weighted_quantiles_with_unit_weights_are_order_statistics() -> None:
    x = np.sort(np.random.default_rng(2).exponential(1.0, 1001))
    q = weighted_quantiles(x, np.ones((1, len(x))), np.array([0.5, 0.99]))
    assert q[0, 0] == x[500] and x[988] <= q[0, 1] <= x[991]


def test_critical_z_grows_with_the_number_of_comparisons() -> None:
    assert math.isclose(z_critical(1), 1.959964, rel_tol=1e-5)
    assert z_critical(10) < z_critical(100) < z_critical(1000)
    assert z_score(1.0, 1.0, 0.0, 0.0) == 0.0 and z_score(1.0, 2.0, 0.0, 0.0) == math.inf
