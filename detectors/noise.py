"""Noise control across thousands of series: false-discovery rate, effect floors,
persistence and a traffic floor, so a quiet system raises nothing.

- Benjamini & Hochberg (1995), "Controlling the false discovery rate: a practical and
  powerful approach to multiple testing", JRSS B: q-values over every (detector, series)
  tested in a run, alarms or not, kept only when q <= ``fdr``.
- Direction: latencies and durations only count when they grow (``slower_only``).
- Minimum effect sizes: relative for levels (latency, rate, gauges) plus an absolute floor
  for gauges (whose relative changes near zero mean nothing), absolute percentage points for
  error ratios, relative change per day for slow drifts (a leak
  adding 1 %/day is small at any instant and must still pass): a significant but tiny
  change is not a finding.
- Persistence: an alarm must hold for ``persistence`` consecutive points.
- Counts: a rate finding must show in the requests themselves (``counts_agree``).
- Noise floor: a series needs ``min_requests_per_hour`` requests behind it on average in
  the window (a series with 3 requests an hour must not page anyone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import false_discovery_control

from detectors.base import Detection, SeriesBatch
from detectors.error_rate_model import poisson_two_sided


@dataclass(frozen=True)
class NoiseControl:
    """Thresholds applied to every detector's alarms (defaults need no tuning)."""

    fdr: float = 0.01
    """Target false-discovery rate per run (Benjamini-Hochberg)."""
    min_relative_effect: float = 0.2
    """Smallest relative change of a level worth reporting (0.2 = 20 %)."""
    min_error_delta: float = 0.01
    """Smallest change of an error ratio worth reporting (0.01 = 1 percentage point)."""
    min_gauge_delta: float = 0.01
    """Smallest absolute change of a gauge, in its own unit, worth reporting: relative changes of
    values near zero (a queue depth from 0.0001 to 0.0004) are large and meaningless."""
    min_drift_per_day: float = 0.005
    """Smallest sustained trend worth reporting (0.005 = 0.5 % per day), for drift alarms."""
    persistence: int = 3
    """Consecutive alerting points required (points without data neither count nor break a run,
    so a job reporting every 10 minutes can persist)."""
    slower_only: bool = True
    """Latency and duration findings only when things got slower: a faster service is no performance gap (and
    lighter load makes every queue shorter: a holiday's night is fast). Failing fast and missing calls behind a
    faster service are the error-ratio, rate and call-edge detectors' findings."""
    count_alpha: float = 1e-6
    """A rate finding needs its requests to differ from the level before the change at this two-sided Poisson
    p-value (``counts_agree``): the detectors see rates, sometimes at constant traffic; this sees requests."""
    min_requests_per_hour: float = 60.0
    """Average requests per hour behind a request-driven series (rate, errors, latency)."""
    min_points_per_hour: float = 12.0
    """Average observations per hour behind a metric series (gauges, histogram metrics, counters).
    A batch job's duration histogram gets one observation per run, and the quantile of a single
    observation is a bucket interpolation: quantised values that mimic level shifts. A job running
    every 10 minutes is below this floor (the gate judges such jobs on whole windows)."""


def benjamini_hochberg(p_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """q-values (Benjamini-Hochberg adjusted p-values, monotone, capped at 1) in the input order.

    ``scipy.stats.false_discovery_control``; a NaN p-value (no test) counts as 1.
    """
    p = np.clip(np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=1.0), 0.0, 1.0)
    if p.size == 0:
        return p
    return np.asarray(false_discovery_control(p, method="bh"), dtype=np.float64)


def longest_run(alert: NDArray[np.bool_], observed: NDArray[np.bool_] | None = None) -> NDArray[np.int64]:
    """Length of the longest run of True per row (points); unobserved points are skipped."""
    n, t = alert.shape
    seen = np.ones_like(alert) if observed is None else observed
    best = np.zeros(n, dtype=np.int64)
    run = np.zeros(n, dtype=np.int64)
    for j in range(t):  # vectorised over series; t steps
        run = np.where(seen[:, j], np.where(alert[:, j], run + 1, 0), run)
        best = np.maximum(best, run)
    return best


def candidates(batch: SeriesBatch, det: Detection, control: NoiseControl) -> NDArray[np.bool_]:
    """Series whose alarm passes the effect, persistence and traffic floors (before FDR)."""
    ws = batch.window_start
    in_window = det.alert[:, ws:]
    observed = batch.samples[:, ws:] > 0
    persistent = longest_run(in_window, observed) >= control.persistence
    hours = max(in_window.shape[1] * batch.resolution_s / 3600.0, 1e-9)
    kind = batch.keys[0].kind if batch.keys else ""
    request_driven = kind in ("rate", "error_ratio") or kind.startswith("latency_")
    floor = control.min_requests_per_hour if request_driven else control.min_points_per_hour
    traffic = np.nansum(batch.samples[:, ws:], axis=1) / hours >= floor
    if batch.keys and batch.keys[0].kind == "error_ratio":
        delta = det.details.get("delta_pp", det.after - det.before)
        big = np.abs(np.nan_to_num(delta)) >= control.min_error_delta
    else:
        big = np.abs(np.nan_to_num(det.effect)) >= control.min_relative_effect
    if batch.keys and batch.keys[0].kind == "gauge":
        big &= np.abs(np.nan_to_num(det.after - det.before)) >= control.min_gauge_delta
    slower = kind.startswith(("latency_", "histogram_")) and control.slower_only
    if slower:
        big &= np.nan_to_num(det.effect) > 0
    if "alarm_kind" in det.details and "trend_per_day" in det.details:  # drifts are judged on their slope
        drift = det.details["alarm_kind"] == 2.0
        trend = np.nan_to_num(det.details["trend_per_day"])
        steep = (trend if slower else np.abs(trend)) >= control.min_drift_per_day
        big = np.where(drift, steep, big)
    result: NDArray[np.bool_] = persistent & traffic & big & (det.change_index >= ws)
    if kind == "rate" and result.any():
        result &= counts_agree(batch, det, control.count_alpha)
    return result


def counts_agree(batch: SeriesBatch, det: Detection, alpha: float) -> NDArray[np.bool_]:
    """Per series: whether the requests themselves show the rate change (True where nothing is claimed).

    A rate is requests per second, possibly at constant traffic (``values`` = requests /
    factor, ``samples`` = the requests): from the change on, the requests counted are tested
    against the level before it times each point's traffic factor (samples / (values x
    resolution)), exact two-sided Poisson, p < ``alpha``. A rate at a fifth of the usual
    traffic is a few requests a minute: a third fewer of them for a while is no change.
    """
    n = batch.shape[0]
    out = np.ones(n, dtype=bool)
    res = float(batch.resolution_s)
    values = np.asarray(batch.values, dtype=np.float64)
    samples = np.asarray(batch.samples, dtype=np.float64)
    for i in np.flatnonzero((det.change_index >= 0) & np.isfinite(det.before)):  # alarming series only
        c = int(det.change_index[i])
        seen = np.isfinite(values[i, c:]) & (values[i, c:] >= 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            factor = np.where(values[i, c:] > 0, samples[i, c:] / (values[i, c:] * res), np.nan)
        typical = np.nanmedian(factor) if np.isfinite(factor).any() else 1.0
        factor = np.where(np.isfinite(factor), factor, typical)
        observed = float(np.where(seen & (samples[i, c:] >= 1), samples[i, c:], 0.0).sum())
        expected = float(np.where(seen, det.before[i] * res * factor, 0.0).sum())
        if expected > 0:
            p = poisson_two_sided(np.array([observed]), np.array([expected]))[0]
            out[i] = p < alpha
    return out
