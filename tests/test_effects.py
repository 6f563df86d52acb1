"""Effect-size statistics for summarised windows, checked against scipy on raw samples."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.effects import two_proportion_z, two_sided_p, welch_z


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=-3, max_value=3))
def test_welch_z_matches_scipy_welch_t_on_large_samples(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(10, 2, 400), rng.normal(10 + shift, 3, 500)
    z = welch_z((a.mean(), a.std(ddof=1), a.size), (b.mean(), b.std(ddof=1), b.size))
    t = stats.ttest_ind(b, a, equal_var=False).statistic
    assert abs(float(z) - t) < 1e-9


def test_two_proportion_z_is_the_pooled_test_and_zero_without_spread() -> None:
    z = two_proportion_z(0.01, 1000, 0.03, 1000)
    pooled = 0.02
    expected = 0.02 / np.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert abs(float(z) - expected) < 1e-12
    assert two_proportion_z([0.0, 1.0], [50, 50], [0.0, 1.0], [60, 60]).tolist() == [0.0, 0.0]
    assert welch_z((1.0, 0.0, 10), (2.0, 0.0, 10)) == 0.0


def test_two_sided_p() -> None:
    assert abs(float(two_sided_p(1.959963984540054)) - 0.05) < 1e-12
    assert float(two_sided_p(0.0)) == 1.0
