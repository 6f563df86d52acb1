"""Numeric laws of the gate's judge: Mann-Whitney/Hodges-Lehmann, proportions, Holm, the verdict rules."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from detectors.judge.mann_whitney import kth_smallest_differences, shift_test
from detectors.judge.metrics import DEFAULT_SPECS, MetricResult, judge_errors, judge_latency
from detectors.judge.proportions import proportion_test, wilson_interval
from detectors.judge.verdict import decide, gate_verdict, holm

values = arrays(
    np.float64, st.integers(2, 40), elements=st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 3))
)


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_kth_smallest_difference_matches_brute_force(x: np.ndarray, y: np.ndarray) -> None:
    diffs = np.sort((y[:, None] - x[None, :]).ravel())
    ks = np.array([1, (diffs.size + 1) // 2, diffs.size], np.int64)
    got = kth_smallest_differences(x, y, ks)
    np.testing.assert_allclose(got, diffs[ks - 1], rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(values, values, st.floats(-500, 500).map(lambda v: round(v, 2)))
def test_shift_is_equivariant_and_ci_brackets_it(x: np.ndarray, y: np.ndarray, c: float) -> None:
    base = shift_test(x, y)
    moved = shift_test(x, y + c)
    both = shift_test(x + c, y + c)
    assert abs(moved.shift - (base.shift + c)) < 1e-6
    assert abs(both.shift - base.shift) < 1e-6
    assert base.ci_low <= base.shift <= base.ci_high


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.integers(300, 600), elements=st.floats(1e5, 1e9)))
def test_identical_sample_passes(x: np.ndarray) -> None:
    result = decide([judge_latency("svc:op", x, x.copy(), DEFAULT_SPECS["latency"])])[0]
    assert result.outcome == "pass"
    assert result.effect == 0.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.3, 0.9))
def test_a_latency_decrease_never_fails(seed: int, factor: float) -> None:
    """A real decrease (10 % or more) never fails; no change at all fails at the test's error rate
    (next test), so factor 1.0 is not "never"."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(np.log(10e6), 0.5, 400)
    cand = rng.lognormal(np.log(10e6), 0.5, 400) * factor
    result = decide([judge_latency("svc:op", base, cand, DEFAULT_SPECS["latency"])])[0]
    assert result.outcome != "fail"


def test_no_change_fails_at_about_the_error_rate() -> None:
    fails = 0
    for seed in range(400):
        rng = np.random.default_rng(seed)
        base, cand = rng.lognormal(np.log(10e6), 0.5, (2, 400))
        fails += decide([judge_latency("svc:op", base, cand, DEFAULT_SPECS["latency"])])[0].outcome == "fail"
    assert fails / 400 <= 0.025  # one-sided alpha 0.01 and the 5 % minimum effect; 0.9 % over 2,000 seeds


def test_interval_covers_the_true_shift_at_its_level() -> None:
    # Known distribution: lognormal latency, true ratio 1.15, 200 seeded repetitions.
    covered = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        base = rng.lognormal(0.0, 0.6, 150)
        cand = rng.lognormal(np.log(1.15), 0.6, 150)
        t = shift_test(np.log(base), np.log(cand))
        covered += int(t.ci_low <= np.log(1.15) <= t.ci_high)
    assert 0.90 <= covered / 200 <= 0.99


def test_a_twenty_percent_regression_fails_with_300_requests() -> None:
    rng = np.random.default_rng(7)
    base = rng.lognormal(np.log(20e6), 0.4, 300)
    cand = rng.lognormal(np.log(24e6), 0.4, 300)
    result = decide([judge_latency("svc:op", base, cand, DEFAULT_SPECS["latency"])])[0]
    assert result.outcome == "fail"
    assert result.ci_low is not None and result.ci_high is not None
    assert result.ci_low < 0.2 < result.ci_high or result.ci_low > 0.05
    assert "typical +" in result.text and "ms ->" in result.text


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500), st.data())
def test_newcombe_interval_contains_the_difference(n1: int, n2: int, data: st.DataObject) -> None:
    k1 = data.draw(st.integers(0, n1))
    k2 = data.draw(st.integers(0, n2))
    t = proportion_test(k1, n1, k2, n2)
    assert -1.0 <= t.ci_low <= t.difference <= t.ci_high <= 1.0
    lo, hi = wilson_interval(k1, n1)
    assert 0.0 <= lo <= k1 / n1 <= hi <= 1.0
    assert 0.0 <= t.p_greater <= 1.0 and 0.0 <= t.p_less <= 1.0


def test_one_point_more_errors_fails_with_enough_requests() -> None:
    result = decide([judge_errors("svc:op", 50, 5000, 100, 5000, spec=DEFAULT_SPECS["error_ratio"])])[0]
    assert result.outcome == "fail"
    assert "+1.00 pp" in result.text
    fewer = decide([judge_errors("svc:op", 100, 5000, 50, 5000, spec=DEFAULT_SPECS["error_ratio"])])[0]
    assert fewer.outcome == "pass"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_is_at_least_p_and_order_preserving(ps: list[float]) -> None:
    q = holm(ps)
    assert all(qi >= pi - 1e-12 and qi <= 1.0 for pi, qi in zip(ps, q, strict=True))
    order = np.argsort(ps, kind="stable")
    assert all(np.diff(np.asarray(q)[order]) >= -1e-12)


def _result(name: str, outcome: str, *, critical: bool) -> MetricResult:
    return MetricResult(name=name, kind="contract", entity=name, rule="check", critical=critical, outcome=outcome)  # type: ignore[arg-type]


def test_verdict_rules() -> None:
    ok = _result("a", "pass", critical=True)
    assert gate_verdict([ok, _result("b", "pass", critical=False)]).verdict == "pass"
    assert gate_verdict([ok, _result("b", "fail", critical=True)]).verdict == "fail"
    assert gate_verdict([ok, _result("b", "fail", critical=False), ok, ok]).verdict == "marginal"
    short = _result("c", "insufficient", critical=True)
    assert gate_verdict([short]).verdict == "insufficient"
    assert gate_verdict([ok, short], required={"c"}).verdict == "insufficient"
    assert gate_verdict([ok, short]).verdict == "pass"  # listed as not judged, but not required
    assert "not judged" in " ".join(gate_verdict([ok, short]).reasons)
