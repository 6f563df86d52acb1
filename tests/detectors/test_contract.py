"""Every registered detector through the same checks (in the manner of river's estimator
checks): shapes and ranges, determinism, a quiet signal raises nothing, gaps are safe,
and the level detectors find a step."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.baselines import trailing_baseline
from analysis.histogram import LogHistogram
from detectors.base import Detection, Detector, SeriesBatch, SignalKey
from detectors.registry import DETECTORS

T = 1440
STEP_AT = 1200
LEVEL_DETECTORS = {"level_shift", "bocpd", "state_space", "error_rate", "distribution_shift"}


def _kind(det: Detector) -> str:
    k = det.kinds[0]
    return {"latency_": "latency_p99", "histogram_": "histogram_p50"}.get(k, k)


def _batch(det: Detector, *, step: float, gap: bool = False, seed: int = 0, t: int = T) -> SeriesBatch:
    rng = np.random.default_rng(seed)
    kind = _kind(det)
    n = 4
    samples = np.full((n, t), 200.0)
    errors = None
    if kind == "error_ratio":
        p = np.full((n, t), 0.002)
        p[-1, STEP_AT:] += step * 0.03
        errors = rng.binomial(200, p).astype(float)
        values = errors / samples
    elif kind == "rate":
        lam = np.full((n, t), 50.0)
        lam[-1, STEP_AT:] *= 1 - 0.6 * step
        values = rng.poisson(lam * 60) / 60.0
    else:
        values = 1e8 * np.exp(0.05 * rng.standard_normal((n, t)))
        values[-1, STEP_AT:] *= 1 + step
    if gap:
        values[0, t * 5 // 12 : t * 35 // 72] = np.nan
        samples[0, t * 5 // 12 : t * 35 // 72] = 0
    keys = [SignalKey(kind, "svc", f"op-{i}") for i in range(n)]
    current = reference = None
    if kind.startswith("latency_"):
        ref = [LogHistogram.from_values(1e8 * np.exp(0.3 * rng.standard_normal(5000))) for _ in range(n)]
        cur = [LogHistogram.from_values(1e8 * np.exp(0.3 * rng.standard_normal(5000))) for _ in range(n)]
        cur[-1] = LogHistogram.from_values(1e8 * (1 + step) * np.exp(0.3 * rng.standard_normal(5000)))
        current, reference = cur, ref
    return SeriesBatch(
        keys=keys,
        times_ns=np.arange(t, dtype=np.int64) * 60_000_000_000,
        values=values,
        samples=samples,
        resolution_s=60,
        baseline=trailing_baseline(values, window=60),
        errors=errors,
        current=current,
        reference=reference,
        window_start=min(STEP_AT - 60, t // 2),
    )


def _check_shapes(d: Detection, n: int, t: int = T) -> None:
    assert d.score.shape == d.alert.shape == (n, t)
    assert np.all((d.score >= 0) & (d.score <= 1))
    assert d.p_value.shape == d.change_index.shape == d.effect.shape == (n,)
    assert np.all((d.p_value >= 0) & (d.p_value <= 1))


@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: d.name)
def test_quiet_signal_raises_nothing_and_is_deterministic(det: Detector) -> None:
    batch = _batch(det, step=0.0, gap=True)
    first, second = det.detect(batch), det.detect(batch)
    _check_shapes(first, 4)
    assert not first.alert[:, batch.window_start :].any()
    np.testing.assert_array_equal(first.score, second.score)
    np.testing.assert_array_equal(first.p_value, second.p_value)


@pytest.mark.parametrize("det", [d for d in DETECTORS if d.name in LEVEL_DETECTORS], ids=lambda d: d.name)
def test_level_detectors_find_a_step_in_the_right_series(det: Detector) -> None:
    batch = _batch(det, step=1.0, seed=3)
    d = det.detect(batch)
    _check_shapes(d, 4)
    assert d.alert[-1, STEP_AT:].any()
    assert not d.alert[:3, batch.window_start :].any()
    assert d.p_value[-1] < 1e-3


@pytest.mark.parametrize("t", [1, 7, 45, 240])
@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: d.name)
def test_series_shorter_than_any_window_are_quiet_not_errors(det: Detector, t: int) -> None:
    """A fresh store (hours of history, not days) must not break a detector's windows."""
    batch = _batch(det, step=0.0, gap=t > 12, t=t)
    d = det.detect(batch)
    _check_shapes(d, 4, t)
    assert not d.alert.any()
