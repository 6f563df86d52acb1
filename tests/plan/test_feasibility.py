"""The SLO floor of a dependency chain: a lower bound on the caller's quantile, however the calls depend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.planning.feasibility import Wait, latency_floor


def _q(values: np.ndarray, level: float) -> float:
    return float(np.quantile(values, level, method="inverted_cdf"))


@st.composite
def chains(draw: st.DrawFn) -> tuple[np.ndarray, list[str], np.ndarray, float]:
    """Integer durations of k calls over n requests (shared load makes them dependent), modes, own work, q."""
    n = draw(st.integers(1, 60))
    k = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    load = rng.integers(0, 50, size=(n, 1))  # a common factor: calls are slow together
    coupling = draw(st.sampled_from([0, 1, 3]))
    calls = rng.integers(0, 100, size=(n, k)) + coupling * load
    if draw(st.booleans()):
        calls = np.sort(calls, axis=1)  # comonotone: the strongest positive dependence
    modes = draw(st.lists(st.sampled_from(["sequential", "parallel", "async"]), min_size=k, max_size=k))
    own = rng.integers(0, 20, size=n) * draw(st.integers(0, 1))
    q = draw(st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999]) | st.floats(0.01, 0.99))
    return calls.astype(np.float64), modes, own.astype(np.float64), q


def _total(calls: np.ndarray, modes: list[str], own: np.ndarray) -> np.ndarray:
    seq = [i for i, m in enumerate(modes) if m == "sequential"]
    par = [i for i, m in enumerate(modes) if m == "parallel"]
    total = own + calls[:, seq].sum(axis=1)
    if par:
        total = total + calls[:, par].max(axis=1)
    return total


@settings(max_examples=300, deadline=None)
@given(chains())
def test_the_floor_never_exceeds_the_callers_quantile(chain: tuple[np.ndarray, list[str], np.ndarray, float]) -> None:
    calls, modes, own, q = chain
    names = [f"s:c{i}" for i in range(calls.shape[1])]

    def quantile(callee: str, level: float) -> float | None:
        return _q(calls[:, names.index(callee)], level)

    waits = [Wait(n, m) for n, m in zip(names, modes, strict=True)]  # type: ignore[arg-type]
    floor = latency_floor(waits, q, quantile)
    assert floor.value_ms <= _q(_total(calls, modes, own), q)
    assert floor.value_ms >= 0.0
    sync = [i for i, m in enumerate(modes) if m != "async"]
    if sync:  # never weaker than the slowest synchronous call alone
        assert floor.value_ms >= max(_q(calls[:, i], q) for i in sync)
    else:
        assert floor.method == "none" and floor.value_ms == 0.0


def test_sequential_calls_add_up_beyond_the_slowest_one() -> None:
    """Three sequential calls of a constant 10 ms: the caller needs 30 ms at every quantile; the floor says so."""
    waits = [Wait(f"s:c{i}") for i in range(3)]
    floor = latency_floor(waits, 0.99, lambda callee, level: 10.0)
    assert floor.method == "sum" and floor.value_ms == pytest.approx(30.0)
    assert [p[1] for p in floor.parts] == pytest.approx([0.33, 0.33, 0.33])
    parallel = latency_floor([Wait(w.callee, "parallel") for w in waits], 0.99, lambda callee, level: 10.0)
    assert parallel.method == "max" and parallel.value_ms == pytest.approx(10.0)


def test_calls_without_data_are_left_out_and_named() -> None:
    floor = latency_floor([Wait("a:x"), Wait("b:new")], 0.9, lambda c, level: 5.0 if c == "a:x" else None)
    assert floor.unknown == ("b:new",) and floor.value_ms == pytest.approx(5.0)
    with pytest.raises(ValueError, match="quantile level"):
        latency_floor([Wait("a:x")], 1.0, lambda c, level: 1.0)
