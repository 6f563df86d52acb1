"""Demand without span history: read from the served-duration histograms' request counts.

Found on held-out worlds 130030 and 130079: tracing switched on at the incident for every service, so no
span had history, no traffic factor existed, and the queue and in-flight gauges, which follow demand, were
judged raw against a history that never saw the evening's peak (11 gauge findings in one calm world).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis import rollup_all
from analysis.series import data_window
from detectors.batches import _read, demand
from simulator.run import simulate
from simulator.scenario import parse_scenario
from simulator.sinks import StoreSink
from store.connection import Store

HISTORY_MIN, WINDOW_MIN = 150, 45


def _demand(tmp: Path, exports: str) -> tuple[np.ndarray | None, int]:
    """(the traffic factor, the index of the window's first point) of the mini world with ``exports``."""
    tmp.mkdir(parents=True, exist_ok=True)
    store = Store(tmp / "s.duckdb")
    try:
        text = 'extends = "mini"\nname = "late-tracing"\n' + "".join(
            f"[services.{s}.export]\n{exports}" for s in ("api", "worker", "db")
        )
        simulate(parse_scenario(text), StoreSink(store), hours=WINDOW_MIN / 60, from_minute=-HISTORY_MIN, seed=3)
        con = store.cursor()
        rollup_all(con)
        window = data_window(con, hours=WINDOW_MIN / 60)
        raw = _read(con, "gauge", window, HISTORY_MIN * 60)
        assert raw is not None
        return demand(con, window, HISTORY_MIN * 60), raw.window_start
    finally:
        store.close()


def test_without_span_history_demand_is_read_from_served_request_histograms(tmp_path: Path) -> None:
    traced, ws = _demand(tmp_path / "traced", "histograms = true\n")
    late, ws_late = _demand(tmp_path / "late", "traces_from_min = 0\n")
    assert traced is not None and late is not None and ws == ws_late
    # the same arrivals, read from the entry point's spans and from the services' histograms
    assert float(np.median(np.abs(late[ws:] - traced[ws:]))) < 0.1
    assert float(np.median(late[:ws])) == 1.0


def test_without_span_history_or_served_histograms_there_is_no_demand(tmp_path: Path) -> None:
    none, _ = _demand(tmp_path, "traces_from_min = 0\nhistograms = false\n")
    assert none is None
