"""Any univariate series through driftscope's detection (``driftscope detect-series``).

Users bring metrics exported from anywhere: irregular sampling, gaps, duplicates, calendar
steps, any scale, any length from 15 points up. The series goes on a regular grid
(``detectors.series.grid``), then one of three modes runs and every input row gets the
score and alert of its grid step:

- ``anomaly``: excursions (spikes, bursts, level shifts at their onset) from the
  multi-scale evidence model (``series.anomaly``) and the event rule (``series.events``);
- ``changepoint``: regime changes. Offline, the penalised segmentation of the whole series
  (``series.changepoint``); causally, the evidence model's shift scales (4 points and up)
  with the same event rule;
- ``auto`` (default): every unusual point is scored (the stronger of the two evidences) and
  regime changes raise the alert: a batch file's alerts are its changes of regime, while
  its spikes and bursts rank high in the score (``anomaly`` alerts on them too).

``causal=True`` never looks ahead (what a stream, and ``driftscope serve``, can do);
otherwise the whole series informs every point (batch files). ``detector=NAME`` instead
runs one of the service's detectors (``detectors.registry``) on the series as a gauge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from detectors.series import seasonality
from detectors.series.anomaly import excursions
from detectors.series.changepoint import Changes, changepoints
from detectors.series.events import HOLD_MAX, Event, alerts, onset_decades, to_score
from detectors.series.grid import Grid, regularise
from detectors.series.robust import FloatArray

BoolArray = NDArray[np.bool_]

Mode = Literal["anomaly", "changepoint", "auto"]
MODES: tuple[Mode, ...] = ("auto", "anomaly", "changepoint")


@dataclass(frozen=True)
class SeriesResult:
    """Per input row: the score in [0, 1] and the alert flag; and what the run found."""

    score: NDArray[np.float64]
    alert: NDArray[np.bool_]
    step_s: float
    axis: str
    period: int
    """Seasonal period in grid steps (0 = none found)."""
    events: int
    """Alert onsets (0 -> 1 edges of the alert column, per grid step)."""
    method: str


def _scored(d: FloatArray, events: list[Event], causal: bool) -> tuple[FloatArray, BoolArray]:
    return to_score(onset_decades(d, events, causal)), alerts(d, events, causal)


def _changes_scored(changes: Changes, n: int) -> tuple[FloatArray, BoolArray]:
    score = np.zeros(n)
    alert = np.zeros(n, dtype=bool)
    bounds = [*changes.indices, n]
    for i, (c, d) in enumerate(zip(changes.indices, changes.decades, strict=True)):
        score[c] = to_score(np.array([d]))[0]
        alert[c : min(bounds[i + 1], c + HOLD_MAX)] = True
    return score, alert


def _per_step(grid: Grid, mode: Mode, causal: bool) -> tuple[FloatArray, BoolArray, int]:
    """Score, alert and seasonal period per grid step."""
    if causal:
        found = excursions(grid, causal=True)
        score, alert = _scored(found.decades, found.events, causal=True)
        shift_score, shift_alert = _scored(found.shifts, found.shift_events, causal=True)
        if mode == "changepoint":
            return shift_score, shift_alert, found.period
        return score, (alert if mode == "anomaly" else shift_alert), found.period
    period = seasonality.detect(grid.values, grid).period
    if mode == "anomaly":
        found = excursions(grid, period=period)
        return (*_scored(found.decades, found.events, causal=False), period)
    change_score, change_alert = _changes_scored(changepoints(grid, period), grid.n)
    if mode == "changepoint":
        return change_score, change_alert, period
    # auto: every unusual point is scored; regime changes raise the alert
    found = excursions(grid, period=period)
    score = np.maximum(_scored(found.decades, found.events, causal=False)[0], change_score)
    return score, change_alert, period


def detect_series(
    times_s: NDArray[np.float64] | None,
    values: NDArray[np.float64],
    mode: Mode = "auto",
    causal: bool = False,
    detector: str | None = None,
) -> SeriesResult:
    """Score and alert per input row for one series (``times_s``: seconds per row, None = row order)."""
    if detector is not None:
        from detectors.registry import BY_NAME  # the service's detectors import scipy.stats: only when asked

        if detector not in BY_NAME:
            raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(BY_NAME)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    grid = regularise(times_s, values)
    if detector is not None:
        score, alert = _registry_detector(grid, detector)
        period, method = 0, detector
    else:
        score, alert, period = _per_step(grid, mode, causal)
        method = f"{mode}{' causal' if causal else ''}"
    edges = int(np.sum(alert & ~np.concatenate([[False], alert[:-1]])))
    return SeriesResult(grid.to_rows(score), grid.to_rows(alert), grid.step_s, grid.axis, period, edges, method)


def _registry_detector(grid: Grid, name: str) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """One of the service's detectors on the series, as if it were a gauge with plenty of samples."""
    from analysis.baselines import auto_baseline
    from detectors.base import SeriesBatch, SignalKey
    from detectors.registry import BY_NAME

    matrix = grid.values[np.newaxis, :]
    resolution_s = max(1, round(grid.step_s))
    batch = SeriesBatch(
        keys=[SignalKey("gauge", None)],
        times_ns=np.arange(grid.n, dtype=np.int64) * resolution_s * 1_000_000_000,
        values=matrix,
        samples=np.where(np.isfinite(matrix), 1000.0, 0.0),
        resolution_s=resolution_s,
        baseline=auto_baseline(matrix, resolution_s=resolution_s),
    )
    found = BY_NAME[name].detect(batch)
    return np.nan_to_num(found.score[0]), found.alert[0]
