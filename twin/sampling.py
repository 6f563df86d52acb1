"""Sampling error of the statistics ``twin check`` compares, and the deviation sampling noise cannot explain.

Two runs of one system differ by chance: a p99 of a few hundred requests moves by tens of
percent, an error ratio of 2 % over 4000 requests by 0.3 points, and a 60-minute mean rate by
several percent when the arrival rate wanders slowly. Each statistic's standard error comes from
a bootstrap over whole minutes (``minute_bootstrap``: resampling minutes keeps what shares a
minute together: a load peak, a parent's fan-out, a burst of errors), except the slow part of
the rate's: the simulator's arrival noise is an AR(1) process on the log rate with a 30-minute
correlation time, which a one-hour window cannot resample, so its variance in the window mean
is added from the model (``slow_noise_var``). A twin statistic deviates when its difference
from the observed one exceeds ``z_critical`` combined standard errors, the critical value
being Bonferroni-corrected over every comparison of the table, so that a faithful twin is
called faithful with probability >= 1 - ``FAMILY_ALPHA`` whatever the number of operations.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

BOOT = 200
"""Bootstrap replicates per operation."""
FAMILY_ALPHA = 0.05
"""Chance that a twin that reproduces the system exactly is still called ``deviates`` (whole table)."""
NOISE_TAU_MIN = 30.0
"""Correlation time of the simulator's arrival-rate noise (``simulator.engine``), minutes."""
PROBS = (0.5, 0.95, 0.99)


def z_critical(tests: int, alpha: float = FAMILY_ALPHA) -> float:
    """Two-sided critical z for ``tests`` comparisons at family-wise error ``alpha`` (Bonferroni)."""
    return float(stats.norm.isf(alpha / (2 * max(tests, 1))))


def slow_noise_var(minutes: int, sigma: float, tau_min: float = NOISE_TAU_MIN) -> float:
    """Variance of the mean of exp(noise) over ``minutes`` consecutive minutes (relative to the mean rate)
    for an AR(1) log noise of stationary deviation ``sigma`` and correlation time ``tau_min``.

    Var(mean) = sigma^2 / T^2 * sum_ij phi^|i-j| = sigma^2 / T^2 * (T (1+phi)/(1-phi) - 2 phi (1-phi^T)/(1-phi)^2),
    phi = exp(-1/tau) (small sigma: exp(noise) ~ 1 + noise).
    """
    t = max(int(minutes), 1)
    phi = math.exp(-1.0 / tau_min)
    total = t * (1 + phi) / (1 - phi) - 2 * phi * (1 - phi**t) / (1 - phi) ** 2
    return sigma**2 * total / t**2


def weighted_quantiles(sorted_x: np.ndarray, weights: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles ``probs`` of ``sorted_x`` (ascending) under non-negative ``weights`` (one row per replicate)."""
    cw = np.cumsum(weights, axis=-1)
    targets = probs[None, :] * cw[:, -1:]
    idx = np.array([np.searchsorted(row, tgt, side="left") for row, tgt in zip(cw, targets, strict=True)])
    result: np.ndarray = sorted_x[np.minimum(idx, len(sorted_x) - 1)]
    return result


def minute_bootstrap(
    minute: np.ndarray, dur_ms: np.ndarray, is_error: np.ndarray, minutes: int, *, boot: int = BOOT, seed: int = 17
) -> dict[str, float]:
    """Bootstrap standard errors (resampling whole minutes) of one operation's statistics.

    ``minute``: each span's minute in [0, minutes); returns ``rate_per_min_se``, ``error_ratio_se``
    and ``p50_ms_se`` / ``p95_ms_se`` / ``p99_ms_se`` (quantiles of the successful spans).
    """
    t = max(int(minutes), 1)
    m = np.clip(np.asarray(minute, dtype=np.int64), 0, t - 1)
    rng = np.random.default_rng(seed)
    w = rng.multinomial(t, np.full(t, 1.0 / t), size=boot).astype(np.float64)  # boot x minutes
    counts = np.bincount(m, minlength=t).astype(np.float64)
    errors = np.bincount(m, weights=is_error.astype(np.float64), minlength=t)
    n_b = w @ counts
    out = {
        "rate_per_min_se": float(np.std(n_b / t, ddof=1)),
        "error_ratio_se": float(np.std((w @ errors) / np.maximum(n_b, 1.0), ddof=1)),
    }
    ok = ~is_error.astype(bool)
    x, mo = np.asarray(dur_ms, dtype=np.float64)[ok], m[ok]
    names = [f"p{round(p * 100)}_ms_se" for p in PROBS]
    if len(x) < 2:
        return out | dict.fromkeys(names, float("nan"))
    order = np.argsort(x, kind="stable")
    q = weighted_quantiles(x[order], w[:, mo[order]], np.asarray(PROBS))
    return out | {name: float(np.std(q[:, i], ddof=1)) for i, name in enumerate(names)}


def z_score(observed: float, twin: float, se_observed: float, se_twin: float, floor: float = 0.0) -> float:
    """|twin - observed| in combined standard errors (``floor``: the least standard error to assume)."""
    if not (math.isfinite(observed) and math.isfinite(twin)):
        return math.inf if math.isfinite(observed) != math.isfinite(twin) else 0.0
    se = math.sqrt(np.nan_to_num(se_observed) ** 2 + np.nan_to_num(se_twin) ** 2)
    se = max(se, floor)
    diff = abs(twin - observed)
    if se <= 0:
        return 0.0 if diff == 0 else math.inf
    return diff / se
