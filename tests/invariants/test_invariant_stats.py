"""Properties of the support and violation statistics (detectors.invariants.stats)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.invariants import stats


def test_min_support_reveals_a_one_in_a_thousand_exception_with_99_percent_probability() -> None:
    n = stats.MIN_SUPPORT
    assert 1 - (1 - stats.EXCEPTION_RATE) ** n >= stats.POWER
    assert 1 - (1 - stats.EXCEPTION_RATE) ** (n - 1) < stats.POWER  # and is the smallest such n


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**7))
def test_confidence_is_the_rule_of_three_bound(n: int) -> None:
    c = float(stats.confidence(n)[()])
    assert 0.0 <= c < 1.0
    assert math.isclose(c, max(0.0, 1 - 3 / n))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 500), st.integers(1, 10**6), st.integers(stats.MIN_SUPPORT, 10**7))
def test_more_exceptions_are_never_more_plausible(x: int, m: int, support: int) -> None:
    m = max(m, x + 1)
    p = stats.exception_p_value(np.array([x, x + 1]), m, support)
    assert 0.0 <= p[1] <= p[0] <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.integers(stats.MIN_SUPPORT, 10**7), st.floats(0.1, 3.0))
def test_exceptions_at_the_learned_bound_are_not_violations(support: int, scale: float) -> None:
    """Seeing exceptions at the rate the baseline could have hidden (3/n) never reaches ALPHA."""
    m = int(support * scale)
    x = round(3 / support * m)
    assert float(stats.exception_p_value(x, m, support)[()]) > stats.ALPHA


@settings(max_examples=200, deadline=None)
@given(st.floats(50, 1e6))
def test_a_vanished_count_is_significant_and_a_steady_one_is_not(expected: float) -> None:
    assert float(stats.drop_p_value(0, expected)[()]) < stats.ALPHA
    assert float(stats.drop_p_value(round(expected), expected)[()]) > 0.5
    assert float(stats.shift_p_value(round(expected), expected, 3.0)[()]) > 0.5
