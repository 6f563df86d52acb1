"""The traffic factor: demand moves every series together and goes; one series moving on its own stays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.traffic import (
    SMOOTH,
    UNSEEN_ELASTICITY,
    WIDTHS,
    at_constant_traffic,
    at_seen_traffic,
    beyond_history,
    elasticity,
    gauges_at_seen_demand,
    pooled,
    traffic_factor,
)


def _traffic(t: int, rng: np.random.Generator) -> np.ndarray:
    """A demand curve: a daily-like swing, a step (a holiday) and a surge."""
    x = np.arange(t)
    g = 1.0 + 0.6 * np.sin(2 * np.pi * x / 600.0)
    g[t // 2 :] *= 0.6
    g[int(t * 0.8) : int(t * 0.9)] *= 2.0
    return g * np.exp(0.02 * rng.standard_normal(t))


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 40), st.integers(0, 2**32 - 1))
def test_common_demand_is_recovered_up_to_noise(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = 900
    g = _traffic(t, rng)
    levels = np.exp(rng.uniform(np.log(5), np.log(500), n))
    values = rng.poisson(levels[:, None] * g[None, :] * 60) / 60.0
    f = traffic_factor(values, history_end=300)
    assert f is not None
    expected = g / np.median(g[:300])
    assert np.median(np.abs(f / expected - 1)) < 0.1
    adjusted = at_constant_traffic(values, f)
    # at constant traffic, each series keeps its level through the holiday and the surge
    ratio = np.median(adjusted[:, 700:], axis=1) / np.median(adjusted[:, :300], axis=1)
    assert np.all(np.abs(ratio - 1) < 0.25)


@settings(max_examples=30, deadline=None)
@given(st.integers(5, 30), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.3, 3.0]))
def test_one_series_moving_alone_does_not_move_the_factor(n: int, seed: int, jump: float) -> None:
    rng = np.random.default_rng(seed)
    t = 600
    g = _traffic(t, rng)
    values = np.outer(np.full(n, 50.0), g) * np.exp(0.02 * rng.standard_normal((n, t)))
    values[0, 400:] *= jump  # an outage (0), a drop, a retry storm
    f = traffic_factor(values, history_end=300)
    assert f is not None
    assert np.median(np.abs(f / (g / np.median(g[:300])) - 1)) < 0.05
    typical = 50.0 * np.median(g[:300])  # the level at the history's typical traffic
    moved = at_constant_traffic(values, f)[0, 450:]
    assert np.median(moved) == pytest.approx(typical * jump, rel=0.1, abs=1.0)


def test_too_few_series_have_no_common_part() -> None:
    assert traffic_factor(np.ones((2, 50)), history_end=20) is None
    assert traffic_factor(np.zeros((5, 50)), history_end=20) is None
    with pytest.raises(ValueError, match="2-D"):
        traffic_factor(np.ones(10), history_end=5)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_elasticity_is_learned_from_the_history(beta: float) -> None:
    rng = np.random.default_rng(7)
    t = 800
    f = np.exp(0.4 * np.sin(np.arange(t) / 50.0))
    x = 3.0 * f[None, :] ** beta * np.exp(0.01 * rng.standard_normal((1, t)))
    b = elasticity(x, f, history_end=400)
    assert b[0] == pytest.approx(beta, abs=0.1)


def test_a_flat_history_teaches_no_elasticity() -> None:
    f = np.ones(500)
    f[400:] = 2.0  # the surge comes after the history: nothing to learn from
    x = np.vstack([f * 10, np.full(500, 4.0)])
    assert np.all(np.isnan(elasticity(x, f, history_end=400)))
    assert not beyond_history(f, 400)[:400].any() and beyond_history(f, 400)[400:].all()


def test_demand_beyond_the_history_gets_an_allowance_upwards_only() -> None:
    f = np.concatenate([np.linspace(0.8, 1.2, 300), np.full(50, 4.0), np.full(50, 0.3)])
    x = np.ones((1, f.size)) * 10.0
    beta = np.array([0.0])
    seen = at_seen_traffic(x, f, beta, history_end=300)
    assert np.allclose(seen[0, :300], 10.0)
    top = 1.2 * 1.1
    assert np.allclose(seen[0, 300:350], 10.0 / (4.0 / top) ** UNSEEN_ELASTICITY)  # a surge may slow things
    assert np.allclose(seen[0, 350:], 10.0)  # a quiet night explains no slowdown
    learned = at_seen_traffic(x, f, np.array([1.0]), history_end=300)
    assert np.allclose(learned[0, :300], 10.0 / np.maximum(f[:300], 1.0))  # busier than usual: explained
    assert np.allclose(learned[0, 350:], 10.0)  # a quieter hour than usual makes nothing slower


@settings(max_examples=50, deadline=None)
@given(
    st.floats(0.0, 3.0),
    st.lists(st.floats(0.05, 20.0), min_size=10, max_size=60),
    st.floats(0.05, 20.0),
)
def test_taking_demand_out_never_makes_a_latency_larger(beta: float, history: list[float], now: float) -> None:
    f = np.array([*history, now])
    x = np.full((1, f.size), 7.0)
    seen = at_seen_traffic(x, f, np.array([beta]), history_end=len(history))
    assert np.all(seen <= 7.0 + 1e-9)
    busier = f > max(max(history) * 1.1, 1.0)  # beyond anything seen: the allowance for unseen demand applies
    assert np.all(seen[0, busier] < 7.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.2, 0.6), st.floats(1.6, 4.0))
def test_a_gauge_says_nothing_where_demand_leaves_what_the_history_saw(seed: int, trough: float, surge: float) -> None:
    """In-flight requests whose elasticity changes with load (Little's law with a queue: steep when busy, shallow
    when quiet): the busy hours of the history teach a steep one, which a holiday's trough would turn into a rise.
    Beyond the history's demand the gauge has gaps; within it, the demand is taken out; a memory gauge (elasticity
    0) keeps every point."""
    rng = np.random.default_rng(seed)
    f = np.concatenate([np.exp(0.3 * np.sin(np.arange(400) / 40.0)), np.full(60, trough), np.full(60, surge),
                        np.full(60, 1.1)])  # fmt: skip
    in_flight = 0.5 * f / np.maximum(1.0 - 0.4 * f / f.max(), 0.05) * np.exp(0.01 * rng.standard_normal(f.size))
    memory = np.full(f.size, 512.0) * np.exp(0.01 * rng.standard_normal(f.size))
    memory[::7] *= 1.02  # not a constant: its elasticity to demand is learned as 0, not unknown
    out = gauges_at_seen_demand(np.vstack([in_flight, memory]), f, history_end=400)
    beyond = beyond_history(f, 400)
    assert beyond[400:520].all() and not beyond[520:].any()
    assert np.isnan(out[0, 400:520]).all()
    typical = np.median(out[0, :400])
    assert np.all(np.abs(out[0, 520:] / typical - 1) < 0.2)  # within the range: demand taken out
    assert np.isfinite(out[1]).all()


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_thin_traffic_is_pooled_until_the_factor_is_steady(seed: int) -> None:
    # found on held-out world 120075 (0.26 req/s over 8 entry points): pooled over 5 minutes, a factor read from a
    # handful of requests dipped to 0.05 at constant demand, and every rate divided by it rose twenty-fold
    rng = np.random.default_rng(seed)
    levels = rng.dirichlet(np.ones(8)) * 6.0 / 60.0  # 6 requests a minute over all eight series
    values = rng.poisson(np.outer(levels, np.ones(1200)) * 60) / 60.0
    assert pooled(values, SMOOTH, 60.0)[1].min() >= 15
    f = traffic_factor(values, history_end=600, min_series=1)
    assert f is not None
    assert f.min() > 0.55 and f.max() < 1.8
    assert np.percentile(np.abs(f - 1.0), 90) < 0.3


def test_busy_traffic_keeps_the_narrowest_pooling_and_a_surge_in_thin_traffic_its_edges() -> None:
    values = np.full((4, 300), 10.0)  # 2,400 requests a minute
    assert set(pooled(values, SMOOTH, 60.0)[1]) == {SMOOTH}
    thin = np.full((4, 600), 0.01)  # 2.4 requests a minute: pooled over the widest width
    thin[:, 300:400] = 1.0  # a surge to 240 a minute: read at full height from its third minute
    widths = pooled(thin, SMOOTH, 60.0)[1]
    assert widths[100] == WIDTHS[-1] and widths[350] == SMOOTH
    f = traffic_factor(thin, history_end=250)
    assert f is not None
    np.testing.assert_allclose(f[303:398], 100.0, rtol=0.01)
    assert np.all(f[: 300 - WIDTHS[-1] // 2] == pytest.approx(1.0))  # it leaks no further than half a width


def test_a_series_without_history_lends_it_nothing_from_the_window() -> None:
    values = np.full((4, 300), np.nan)
    values[:, 250:] = 2.0  # traffic only from the window on: nothing to compare it with
    assert traffic_factor(values, history_end=250, min_series=1) is None
