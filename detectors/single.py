"""Any univariate series through any detector (``driftscope detect-series``).

Users bring metrics exported from elsewhere: irregular sampling, gaps, any scale. The
series is put on a regular grid (the median sampling interval; points in one bin are
averaged, empty bins stay gaps), its baseline is chosen automatically (seasonal when
seasonality is detected), the detector runs, and each input row gets the score and alert
of its bin. ``auto`` runs the level-shift and state-space detectors and takes the
stronger evidence: together they cover steps, spikes and slow drift without tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis.baselines import auto_baseline
from detectors.base import Detection, SeriesBatch, SignalKey
from detectors.registry import BY_NAME

AUTO = ("level_shift", "state_space")


@dataclass(frozen=True)
class SeriesResult:
    """Per input row: the anomaly score in [0, 1] and the alert flag."""

    score: NDArray[np.float64]
    alert: NDArray[np.bool_]
    resolution_s: int
    detectors: tuple[str, ...]


def regularise(
    times_ns: NDArray[np.int64], values: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], int]:
    """(grid, binned values, bin of each input row, resolution in s) for sorted or unsorted input."""
    order = np.argsort(times_ns, kind="stable")
    t = times_ns[order]
    steps = np.diff(t)
    steps = steps[steps > 0]
    resolution_s = max(1, round(float(np.median(steps)) / 1e9)) if len(steps) else 60
    step = resolution_s * 1_000_000_000
    bins = (times_ns - t[0]) // step
    n_bins = int(bins.max()) + 1 if len(bins) else 0
    sums = np.bincount(bins, weights=np.nan_to_num(values), minlength=n_bins)
    counts = np.bincount(bins, weights=np.isfinite(values).astype(float), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        binned = np.where(counts > 0, sums / counts, np.nan)
    grid = t[0] + np.arange(n_bins, dtype=np.int64) * step
    return grid, binned, bins.astype(np.int64), resolution_s


def detect_series(times_ns: NDArray[np.int64], values: NDArray[np.float64], detector: str = "auto") -> SeriesResult:
    """Score and alert per input row for one series."""
    if detector != "auto" and detector not in BY_NAME:
        raise ValueError(f"unknown detector {detector!r}; choose auto or one of {', '.join(BY_NAME)}")
    grid, binned, bins, resolution_s = regularise(times_ns, values)
    matrix = binned[np.newaxis, :]
    batch = SeriesBatch(
        keys=[SignalKey("gauge", None)],
        times_ns=grid,
        values=matrix,
        samples=np.where(np.isfinite(matrix), 1000.0, 0.0),
        resolution_s=resolution_s,
        baseline=auto_baseline(matrix, resolution_s=resolution_s),
    )
    names = AUTO if detector == "auto" else (detector,)
    detections: list[Detection] = [BY_NAME[name].detect(batch) for name in names]
    score = np.max([d.score[0] for d in detections], axis=0)
    alert = np.any([d.alert[0] for d in detections], axis=0)
    return SeriesResult(np.nan_to_num(score[bins]), alert[bins], resolution_s, names)
