"""The series behind a plot: ``analysis.signals`` over history + window, with its baseline band.

Reports compute no statistics: the points come from ``analysis.signals`` (the same reader,
defaults and resolution the detectors use) and the band from ``analysis.baselines.
auto_baseline``, the baseline the detectors compare with. History before the window feeds
the baseline only; the plot shows the window.
"""

from __future__ import annotations

import datetime as dt
from typing import get_args

import duckdb
import numpy as np
import polars as pl

from analysis import SignalKind, Window, signals
from analysis.baselines import auto_baseline
from reports.model import PlotSeries
from store.timeconv import NS_PER_S, naive_from_ns

PLOTTABLE: frozenset[str] = frozenset(get_args(SignalKind))
"""Signal kinds ``analysis.signals`` can read, hence plot."""

_UNITS: dict[str, tuple[float, str]] = {
    "error_ratio": (100.0, "%"),
    "rate": (1.0, "/s"),
    "counter_rate": (1.0, "/s"),
    "log_rate": (1.0, "/s"),
}


def unit_of(kind: str) -> tuple[float, str]:
    """(scale, unit) to plot a kind in user units: latency ns -> ms, error ratio -> %."""
    if kind.startswith("latency_"):
        return 1e-6, "ms"
    return _UNITS.get(kind, (1.0, ""))


def _naive_utc(ns: int) -> dt.datetime:
    return naive_from_ns(ns - ns % NS_PER_S)


def resolution_for(window_s: float) -> int:
    """Plot resolution in seconds: the rollup minute up to one day, coarser beyond (about 1440 points)."""
    return max(60, int(window_s // 1440) // 60 * 60)


def plot_series(
    con: duckdb.DuckDBPyConnection,
    key: tuple[str, str | None, str | None, str | None, str | None],
    start_ns: int,
    end_ns: int,
    history_s: float,
) -> PlotSeries | None:
    """The signal ``key`` = (kind, service, operation, metric, attributes) on [start_ns, end_ns).

    The baseline is computed over ``history_s`` before the window plus the window and cut
    to the window, so its first points already have their reference set. None when the
    kind is not a signal ``analysis`` reads or the signal has no points in the window.
    """
    kind, service, operation, metric, attributes = key
    if kind not in PLOTTABLE:
        return None
    res_s = resolution_for((end_ns - start_ns) / 1e9)
    step_ns = res_s * 1_000_000_000
    first_ns = (start_ns - int(history_s * 1e9)) // step_ns * step_ns
    full = Window(_naive_utc(first_ns), _naive_utc(end_ns), res_s)
    frame = signals(con, kind, full, service=service, operation=operation, metric=metric)  # type: ignore[arg-type]
    frame = frame.filter(pl.col("attributes").is_null() if attributes is None else pl.col("attributes") == attributes)
    if operation is not None:  # log_rate keys carry the severity here; signals() filters only the service
        frame = frame.filter(pl.col("operation") == operation)
    if frame.height == 0:
        return None
    grid = np.arange(first_ns, end_ns, step_ns, dtype=np.int64)
    idx = (frame["time"].dt.epoch("ns").to_numpy() - first_ns) // step_ns
    keep = (idx >= 0) & (idx < len(grid))
    values = np.full(len(grid), np.nan)
    values[idx[keep]] = frame["value"].to_numpy()[keep]
    base = auto_baseline(values, resolution_s=res_s)
    in_window = grid >= start_ns
    present = np.flatnonzero(in_window & np.isfinite(values))
    if present.size == 0:
        return None
    shown = in_window & (np.arange(len(grid)) >= present[0])  # a window older than the data starts at the data
    return PlotSeries(
        times_ns=grid[shown],
        values=values[shown],
        lower=base.lower[shown],
        upper=base.upper[shown],
        center=base.center[shown],
        baseline_method=base.method,
    )
