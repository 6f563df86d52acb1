"""Service-time distributions fitted to self times: lognormal or gamma body, Pareto tail.

``fit_service_time`` returns the scenario's ``Distribution`` fields and the evidence. The body
is fitted robustly (lognormal: median and the log-space inter-quartile range; gamma: the
closed-form approximation of the maximum-likelihood shape, Minka 2002, on the draws below the
tail threshold), the family with the smaller Kolmogorov-Smirnov distance wins, and a heavy tail
is declared when the draws beyond ``TAIL_SCALE`` x the median exceed what the body predicts
there by more than three binomial standard errors; its index is the Hill estimator (Hill 1975)
of those draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

TAIL_SCALE = 5.0
"""Where the simulator's tails start (x the median): the threshold the tail test looks beyond."""
IQR_Z = 1.3489795003921634
"""Inter-quartile range of the standard normal."""


@dataclass(frozen=True)
class ServiceTimeFit:
    """A fitted service-time distribution (the ``Distribution`` fields) and its evidence."""

    dist: str
    median_ms: float
    sigma: float
    shape: float
    tail_prob: float
    tail_alpha: float
    n: int
    ks: float
    """Kolmogorov-Smirnov distance of the body to the draws below the tail threshold."""
    decile_loss: float = float("nan")
    """Deconvolved fits: squared log-decile mismatch left (lower is a better fit)."""

    def fields(self) -> dict[str, object]:
        """The scenario's ``service_time`` table (only what the family uses)."""
        out: dict[str, object] = {"dist": self.dist, "median_ms": round(self.median_ms, 4)}
        if self.dist == "lognormal":
            out["sigma"] = round(self.sigma, 4)
        else:
            out["shape"] = round(self.shape, 3)
        if self.tail_prob > 0:
            out.update(tail_prob=round(self.tail_prob, 5), tail_scale=TAIL_SCALE, tail_alpha=round(self.tail_alpha, 3))
        return out


def lognormal_body(x: np.ndarray) -> tuple[float, float]:
    """(median, sigma) of a lognormal from the median and the inter-quartile range of ``x`` (> 0)."""
    logs = np.log(x)
    q25, q50, q75 = np.quantile(logs, [0.25, 0.5, 0.75])
    return float(np.exp(q50)), float(max((q75 - q25) / IQR_Z, 1e-3))


def gamma_shape(x: np.ndarray) -> float:
    """Maximum-likelihood gamma shape (Minka's closed-form approximation) of ``x`` (> 0)."""
    s = float(np.log(np.mean(x)) - np.mean(np.log(x)))
    if s <= 1e-9:
        return 1e4
    return float((3 - s + math.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s))


def hill_alpha(exceed: np.ndarray, threshold: float) -> float:
    """Hill estimator of a Pareto index from the draws above ``threshold``."""
    logs = np.log(exceed / threshold)
    mean = float(np.mean(logs)) if len(logs) else 0.0
    return float(np.clip(1.0 / mean, 1.05, 20.0)) if mean > 0 else 20.0


def fit_service_time(samples_ms: np.ndarray, wait_beyond: float = 0.0) -> ServiceTimeFit:
    """The service-time distribution of ``samples_ms`` (self times, ms; at least 2 positive values).

    ``wait_beyond``: the share of the draws the fitted queue puts beyond the tail threshold by
    waiting alone (self times include the wait); the tail test discounts it.
    """
    x = np.asarray(samples_ms, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    n = len(x)
    median, sigma = lognormal_body(x)
    threshold = TAIL_SCALE * median
    body = x[x <= threshold]
    beyond = x[x > threshold]
    # tail test against the lognormal body's own mass beyond the threshold
    p_body = float(stats.norm.sf(math.log(TAIL_SCALE) / sigma))
    excess = len(beyond) / n - p_body - wait_beyond
    se = math.sqrt(max(p_body * (1 - p_body), 1.0 / n) / n)
    tail_prob, tail_alpha = 0.0, 2.5
    if excess > 3 * se and len(beyond) >= 5:
        tail_prob = float(min(excess, 0.5))
        tail_alpha = hill_alpha(beyond, threshold)
    body = body if len(body) >= 2 else x
    ks_log = float(stats.kstest(body, stats.lognorm(s=sigma, scale=median).cdf).statistic)
    shape = gamma_shape(body)
    scale = float(np.mean(body)) / shape
    ks_gamma = float(stats.kstest(body, stats.gamma(shape, scale=scale).cdf).statistic)
    if ks_gamma < ks_log and shape < 1e3:
        g_median = scale * max(shape - 1.0 / 3.0, 1e-9)
        return ServiceTimeFit("gamma", g_median, sigma, shape, tail_prob, tail_alpha, n, ks_gamma)
    return ServiceTimeFit("lognormal", median, sigma, 4.0, tail_prob, tail_alpha, n, ks_log)


def fit_convolved(total_ms: np.ndarray, extra_ms: np.ndarray, first: ServiceTimeFit, seed: int = 7) -> ServiceTimeFit:
    """A lognormal body (and Pareto tail) for work seen only as ``total = work + extra``: a queue's wait, a
    network round trip.

    ``extra_ms`` are draws of the extra (round trips measured on traced pairs, waits drawn from the
    fitted queue); the body's median and sigma are those whose convolution with them matches the
    deciles of ``total_ms`` in log space (Nelder-Mead, common random numbers). The tail is part of
    the convolution: the simulator replaces a ``tail_prob`` share of the draws by Pareto draws
    beyond ``TAIL_SCALE`` x the median, so the deciles are matched with that share in, and the
    share is re-estimated from the totals beyond the threshold that the body and the extra do not
    explain (three binomial standard errors, as in ``fit_service_time``); up to three rounds.
    The extreme percentiles are left to the tail and the extra: fitting the body to them widens
    sigma and hides the tail. ``first`` (fitted to the totals) gives the starting point.
    """
    x = np.asarray(total_ms, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    r = np.asarray(extra_ms, dtype=np.float64)
    r = r[np.isfinite(r) & (r >= 0)]
    if len(x) < 20 or len(r) < 20:
        return first
    rng = np.random.default_rng(seed)
    draws = 20_000
    # stratified body and tail draws (exact quantiles, randomly paired with the extras): plain Monte Carlo
    # noise of the body's deciles would be larger than the sampling error of a busy operation's own
    strata = (np.arange(draws) + 0.5) / draws
    z = stats.norm.ppf(rng.permutation(strata))
    u = rng.permutation(strata)
    pareto_u = rng.permutation(strata)
    rr = r[rng.integers(0, len(r), draws)]
    probs = np.linspace(0.1, 0.9, 9)
    target = np.log(np.quantile(x, probs))
    tail_prob, alpha = first.tail_prob, first.tail_alpha

    def simulate(theta: np.ndarray, tail: float) -> np.ndarray:
        median = np.exp(theta[0])
        body = median * np.exp(np.exp(theta[1]) * z)
        heavy = TAIL_SCALE * median * (pareto_u ** (-1.0 / alpha))
        total: np.ndarray = np.where(u < tail, heavy, body) + rr
        return total

    theta = np.array([math.log(max(first.median_ms, 1e-4)), math.log(max(first.sigma, 1e-3))])
    fun = 0.0
    for _ in range(3):

        def loss(th: np.ndarray, tail: float = tail_prob) -> float:
            return float(np.sum((np.log(np.quantile(simulate(th, tail), probs)) - target) ** 2))

        res = optimize.minimize(loss, theta, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8})
        theta, fun = res.x, float(res.fun)
        median = float(np.exp(theta[0]))
        threshold = TAIL_SCALE * median
        p_body = float(np.mean(simulate(theta, 0.0) > threshold))
        seen = float(np.mean(x > threshold))
        excess = (seen - p_body) / max(1.0 - p_body, 1e-9)
        se = math.sqrt(max(p_body * (1 - p_body), 1.0 / len(x)) / len(x))
        beyond = x[x > threshold + float(np.median(r))]
        new_tail = float(min(excess, 0.5)) if excess > 3 * se and len(beyond) >= 5 else 0.0
        if new_tail > 0:
            alpha = hill_alpha(beyond, threshold + float(np.median(r)))
        if abs(new_tail - tail_prob) < 1e-4:
            tail_prob = new_tail
            break
        tail_prob = new_tail
    median, sigma = float(np.exp(theta[0])), float(np.clip(np.exp(theta[1]), 1e-3, 3.0))
    return ServiceTimeFit("lognormal", median, sigma, 4.0, tail_prob, alpha if tail_prob else 2.5, first.n, first.ks,
                          fun)  # fmt: skip
