"""RED signals, their baselines and deploys on ``/metrics``, for the Service drift dashboard.

Feeds the Service drift dashboard's "RED against baseline" panels and its "Deploys"
annotation (names in dashboards/metrics.py: SIGNAL_VALUE, SIGNAL_BASELINE, SERVICE_LAST_DEPLOY).
Label cardinality is bounded by ``series_max`` (the busiest operations). Data time, like the
jobs: the value is the newest complete rolled-up minute of each (service, operation)
SERVER signal; the band is analysis.baselines.trailing_baseline over the minutes before it (no
statistics of our own: the same baseline the detectors use).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analysis import data_window, signals
from analysis.baselines import trailing_baseline
from store import rollups as store_rollups
from store.connection import Store
from store.raw import rollup_end

KINDS = {"rate": 1.0, "error_ratio": 1.0, "latency_p99": 1e-9}
"""Signal kind -> factor to the exported unit (requests/s, ratio in [0, 1], seconds)."""


class SignalsCollector(Collector):
    """Prometheus collector: newest RED value, its trailing baseline band, newest deploy per service."""

    def __init__(self, store: Store, history_s: float = 6 * 3600.0, series_max: int = 50, window: int = 60) -> None:
        self.store = store
        self.history_s = history_s
        self.series_max = series_max
        self.window = window

    def collect(self) -> Iterator[Metric]:
        value = GaugeMetricFamily(
            "driftscope_signal_value",
            "Newest rolled-up minute of a RED signal (rate per s, error_ratio 0..1, latency_p99 in s).",
            labels=["service", "operation", "kind"],
        )
        band = GaugeMetricFamily(
            "driftscope_signal_baseline",
            "Trailing robust baseline of that signal at its newest minute (bound: lower, median, upper).",
            labels=["service", "operation", "kind", "bound"],
        )
        deploys = GaugeMetricFamily(
            "driftscope_service_last_deploy_timestamp_seconds",
            "Unix time (s) a service's newest version was first seen in spans (data time).",
            labels=["service", "version"],
        )
        con = self.store.cursor()
        try:
            if rollup_end(con) is not None:
                self._signals(con, value, band)
            for service, version, first_ns in store_rollups.latest_deploys(con):
                deploys.add_metric([service, version], first_ns / 1e9)
        finally:
            con.close()
        yield value
        yield band
        yield deploys

    def _signals(self, con: object, value: GaugeMetricFamily, band: GaugeMetricFamily) -> None:
        window = data_window(con, hours=self.history_s / 3600)  # type: ignore[arg-type]
        busiest = None
        for kind, factor in KINDS.items():
            frame = signals(con, kind, window).select("time", "service", "operation", "value", "samples")  # type: ignore[arg-type]
            if frame.is_empty():
                continue
            if busiest is None:  # bound the label cardinality: the busiest series by requests
                busiest = (
                    frame.group_by("service", "operation")
                    .agg(pl.col("samples").sum())
                    .sort("samples", descending=True)
                    .head(self.series_max)
                    .select("service", "operation")
                )
            wide = (
                frame.join(busiest, on=["service", "operation"])
                .pivot(on="time", index=["service", "operation"], values="value")
                .sort("service", "operation")
            )
            times = sorted(c for c in wide.columns if c not in ("service", "operation"))
            matrix = wide.select(times).to_numpy().astype(np.float64)
            base = trailing_baseline(matrix, window=self.window, min_support=10)
            last = max(matrix.shape[1] - 2, 0)  # the newest *complete* minute: the newest one is still filling
            for i, (service, operation) in enumerate(wide.select("service", "operation").iter_rows()):
                v = matrix[i, last]
                if np.isnan(v):
                    continue
                value.add_metric([service, operation, kind], float(v) * factor)
                for bound, arr in (("lower", base.lower), ("median", base.center), ("upper", base.upper)):
                    if not np.isnan(arr[i, last]):
                        band.add_metric([service, operation, kind, bound], float(arr[i, last]) * factor)
