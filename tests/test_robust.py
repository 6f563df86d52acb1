"""The shared robust statistics (analysis.robust) against their textbook definitions."""

from __future__ import annotations

import math
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from analysis.robust import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA, nanmedian_last, robust_sigma, trailing_sum

VALUES = st.one_of(st.just(math.nan), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
MATRICES = arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 12)), elements=VALUES)


def _reference_median(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=-1)


@settings(max_examples=300, deadline=None)
@given(MATRICES)
def test_nanmedian_is_numpys_without_warnings(x: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nanmedian_last(x)
    np.testing.assert_allclose(got, _reference_median(x), rtol=1e-12, atol=1e-9, equal_nan=True)


def test_nanmedian_min_count_and_inf_as_missing() -> None:
    x = np.array([[1.0, np.inf, 3.0, np.nan], [np.nan, np.nan, np.nan, 2.0]])
    np.testing.assert_array_equal(nanmedian_last(x, min_count=2), [2.0, np.nan])
    assert np.isnan(nanmedian_last(np.empty((3, 0)))).all() and nanmedian_last(np.empty((3, 0))).shape == (3,)


@settings(max_examples=300, deadline=None)
@given(MATRICES)
def test_robust_sigma_is_the_mad_else_the_mean_deviation(x: np.ndarray) -> None:
    center, sigma = robust_sigma(x)
    for i, row in enumerate(x):
        vals = row[np.isfinite(row)]
        if vals.size == 0:
            assert math.isnan(center[i]) and math.isnan(sigma[i])
            continue
        med = float(np.median(vals))
        mad = MAD_TO_SIGMA * float(np.median(np.abs(vals - med)))
        want = mad if mad > 0 else MEAN_AD_TO_SIGMA * float(np.mean(np.abs(vals - med)))
        assert math.isclose(center[i], med, rel_tol=1e-12, abs_tol=1e-9)
        assert math.isclose(sigma[i], want, rel_tol=1e-9, abs_tol=1e-6)
        assert sigma[i] >= 0


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 15)), elements=st.integers(-1000, 1000)),
    st.integers(1, 20),
)
def test_trailing_sum_adds_the_last_window_points(x: np.ndarray, window: int) -> None:
    got = trailing_sum(x, window)
    for t in range(x.shape[1]):
        np.testing.assert_allclose(got[:, t], x[:, max(0, t - window + 1) : t + 1].sum(axis=1), atol=1e-6)
