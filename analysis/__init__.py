"""analysis: raw telemetry -> per-minute rollups -> signals (polars) and baselines.

``analysis.rollup_all(con)`` brings the rollups up to date; ``analysis.signals(con, kind,
window, ...)`` reads a keyed series; ``analysis.distributions`` returns mergeable latency
histograms; ``analysis.baselines`` holds the robust baselines detectors compare with.
"""

from analysis.rollup import RollupConfig, RollupReport, rollup_all
from analysis.series import Distribution, SignalKind, Window, data_window, distributions, latency_quantiles, signals

__all__ = [
    "Distribution",
    "RollupConfig",
    "RollupReport",
    "SignalKind",
    "Window",
    "data_window",
    "distributions",
    "latency_quantiles",
    "rollup_all",
    "signals",
]
