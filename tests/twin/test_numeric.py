"""The twin's numeric cores: service-time fits recover their parameters, Erlang C fits recover servers."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.plan import sample_ms
from simulator.queueing import erlang_c
from simulator.scenario import Distribution
from twin.arrivals import kept_share
from twin.distfit import fit_convolved, fit_service_time, gamma_shape, hill_alpha, lognormal_body
from twin.servers import fit_servers_from_latency, fit_servers_from_queue, mean_queue


@settings(max_examples=25, deadline=None)
@given(median=st.floats(0.2, 500.0), sigma=st.floats(0.1, 1.2), seed=st.integers(0, 2**31))
def test_lognormal_body_recovers_median_and_sigma(median: float, sigma: float, seed: int) -> None:
    x = median * np.exp(sigma * np.random.default_rng(seed).standard_normal(20_000))
    m, s = lognormal_body(x)
    assert abs(m / median - 1) < 0.05
    assert abs(s / sigma - 1) < 0.06


@settings(max_examples=20, deadline=None)
@given(median=st.floats(0.5, 100.0), sigma=st.floats(0.2, 0.8), seed=st.integers(0, 2**31))
def test_service_time_fit_recovers_the_simulators_lognormal(median: float, sigma: float, seed: int) -> None:
    d = Distribution(median_ms=median, sigma=sigma)
    fit = fit_service_time(sample_ms(np.random.default_rng(seed), d, 20_000))
    assert abs(fit.median_ms / median - 1) < 0.05
    assert fit.tail_prob < 0.01  # no tail invented


@settings(max_examples=15, deadline=None)
@given(shape=st.floats(1.5, 30.0), seed=st.integers(0, 2**31))
def test_gamma_shape_is_the_maximum_likelihood_shape(shape: float, seed: int) -> None:
    x = np.random.default_rng(seed).gamma(shape, 2.0, 50_000)
    assert abs(gamma_shape(x) / shape - 1) < 0.06


def test_heavy_tail_is_found_with_its_share_and_index() -> None:
    d = Distribution(median_ms=10.0, sigma=0.3, tail_prob=0.03, tail_alpha=2.0)
    fit = fit_service_time(sample_ms(np.random.default_rng(4), d, 50_000))
    assert 0.02 < fit.tail_prob < 0.04
    assert 1.6 < fit.tail_alpha < 2.5
    assert abs(fit.median_ms / 10.0 - 1) < 0.05


@settings(max_examples=20, deadline=None)
@given(alpha=st.floats(1.2, 5.0), seed=st.integers(0, 2**31))
def test_hill_estimator_on_pareto_draws(alpha: float, seed: int) -> None:
    x = 3.0 * (1 + np.random.default_rng(seed).pareto(alpha, 20_000))
    assert abs(hill_alpha(x, 3.0) / alpha - 1) < 0.08


def test_deconvolution_removes_a_known_extra() -> None:
    rng = np.random.default_rng(2)
    own = 1.0 * np.exp(0.3 * rng.standard_normal(20_000))
    extra = 0.25 + rng.exponential(0.35, 20_000)
    first = fit_service_time(own + extra)
    fit = fit_convolved(own + extra, rng.permutation(extra), first)
    assert abs(first.median_ms - 1.0) > 0.3  # the naive fit is off by the round trip
    assert abs(fit.median_ms - 1.0) < 0.05
    assert abs(fit.sigma - 0.3) < 0.05


@settings(max_examples=10, deadline=None)
@given(median=st.floats(0.3, 5.0), sigma=st.floats(0.2, 0.6), tail=st.sampled_from([0.0, 0.01, 0.03]),
       seed=st.integers(0, 2**31))  # fmt: skip
def test_deconvolution_keeps_a_tail_apart_from_the_body(median: float, sigma: float, tail: float, seed: int) -> None:
    """A tailed body behind the simulator's round trips: body and tail share both come back (a body fitted to the
    99th percentile would widen sigma and swallow the tail)."""
    rng = np.random.default_rng(seed)
    own = sample_ms(rng, Distribution(median_ms=median, sigma=sigma, tail_prob=tail), 30_000)
    extra = 0.25 + rng.exponential(0.35, 30_000)
    first = fit_service_time(own + extra - float(np.median(extra)))
    fit = fit_convolved(own + extra, rng.permutation(extra), first)
    assert abs(fit.median_ms / median - 1) < 0.04
    assert abs(fit.sigma / sigma - 1) < 0.1
    assert abs(fit.tail_prob - tail) < 0.006


@settings(max_examples=30, deadline=None)
@given(c=st.integers(1, 60), rho=st.floats(0.01, 0.95))
def test_mean_queue_obeys_littles_law_and_erlang_c(c: int, rho: float) -> None:
    """Lq = C(c, a) rho / (1 - rho): never negative, zero-ish far below saturation, below the M/M/1 bound."""
    a = np.array([c * rho])
    lq = float(mean_queue(c, a)[0])
    assert lq >= 0
    assert lq <= rho / (1 - rho) + 1e-9  # c servers queue less than one server at the same utilisation
    assert abs(lq - float(erlang_c(np.array([float(c)]), a)[0]) * rho / (1 - rho)) < 1e-9


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 40), util=st.floats(0.3, 0.9), seed=st.integers(0, 2**31))
def test_servers_recovered_from_an_exact_queue_gauge(c: int, util: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    hold = 10.0
    lam = c * util / hold * (1 + 0.1 * rng.standard_normal(60)).clip(0.5, 1.05)
    queue = mean_queue(c, lam * hold)
    fit = fit_servers_from_queue(lam, np.full(60, hold), queue)
    assert fit.servers == c
    assert fit.identified


def test_servers_are_a_lower_bound_when_no_queue_forms() -> None:
    lam = np.full(30, 0.001)  # 1 req/s at 10 ms: 1 % busy on any count
    fit = fit_servers_from_queue(lam, np.full(30, 10.0), np.zeros(30))
    assert not fit.identified
    assert fit.servers >= 1


def test_servers_from_the_latency_versus_load_curve() -> None:
    c, hold = 4, 20.0
    lam = np.linspace(0.05, 0.18, 40)  # 25 % to 90 % busy
    latency = hold + mean_queue(c, lam * hold) / lam
    fit = fit_servers_from_latency(lam, latency)
    assert fit.servers == c


@settings(max_examples=20, deadline=None)
@given(minutes=st.integers(5, 200), tau=st.floats(2.0, 60.0), daily=st.booleans())
def test_kept_share_of_a_slow_noise_is_the_residual_trace(minutes: int, tau: float, daily: bool) -> None:
    """(T - tr(H R)) / T for the hat matrix H of the profile or trend and R the AR(1) correlation."""
    t = np.arange(minutes, dtype=float)
    x = np.column_stack([np.ones(minutes), np.cos(t / 50), np.sin(t / 50)] if daily else [np.ones(minutes), t])
    r = np.exp(-np.abs(np.subtract.outer(t, t)) / tau)
    hat = x @ np.linalg.solve(x.T @ x, x.T)
    brute = float(np.trace((np.eye(minutes) - hat) @ r)) / minutes
    assert abs(kept_share(x, tau) - max(brute, 0.05)) < 1e-9
