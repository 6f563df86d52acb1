"""Demand is read where it enters: a removed call edge that empties part of the system is not quieter traffic.

Found on development worlds (21600, 21623): a removed call edge emptied a subtree of a third of the
operations, the traffic factor pooled over every operation fell to about 0.8, and every operation
the change did not touch read +20 % busier "at constant traffic".
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from analysis import Window, rollup_all
from analysis.traffic import traffic_factor
from detectors.batches import _read, demand, entry_points
from store.migrations import migrate_all

NS_S = 1_000_000_000
START = datetime(2026, 1, 5, 0, 0)
HISTORY_H, WINDOW_H = 3, 1
CHANGE_H = HISTORY_H + 0.25
STEP_NS = NS_S // 2
"""A request every half second at the one entry point."""


def _spans() -> pl.DataFrame:
    """api:GET / (a root) calls a, b and c; b and c each call d. From CHANGE_H on, only every other request calls b
    (the removed edge of half the calls): b and d fall to half, c keeps its rate; 2 of 5 operations move."""
    n = int((HISTORY_H + WINDOW_H) * 3600 * NS_S // STEP_NS)
    t0 = int(np.datetime64(START, "ns").astype(np.int64))
    rows: dict[str, list[object]] = {k: [] for k in ("trace_id", "span_id", "parent_span_id", "service_name",
                                                     "span_name", "span_kind", "start_ns")}  # fmt: skip

    def add(*span: object) -> None:  # trace, span, parent, service, operation, kind, start (ns)
        for key, value in zip(rows, span, strict=True):
            rows[key].append(value)

    change = int(CHANGE_H * 3600 * NS_S)
    for i in range(n):
        at, trace = t0 + i * STEP_NS, f"{i:032x}"
        add(trace, f"r{i:015x}", None, "api", "GET /", "SERVER", at)
        add(trace, f"a{i:015x}", f"r{i:015x}", "svc-a", "Get", "SERVER", at + 1_000)
        add(trace, f"c{i:015x}", f"r{i:015x}", "svc-c", "Put", "SERVER", at + 2_000)
        add(trace, f"d{i:015x}", f"c{i:015x}", "svc-d", "Read", "SERVER", at + 3_000)
        if i * STEP_NS < change or i % 2 == 0:
            add(trace, f"b{i:015x}", f"r{i:015x}", "svc-b", "List", "SERVER", at + 4_000)
            add(trace, f"e{i:015x}", f"b{i:015x}", "svc-d", "Scan", "SERVER", at + 5_000)
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate_all(con)
    con.register("batch", _spans().to_arrow())
    con.execute(
        "INSERT INTO spans (trace_id, span_id, parent_span_id, service_name, span_name, span_kind, status_code, "
        "start_time, end_time, duration_ns) SELECT trace_id, span_id, parent_span_id, service_name, span_name, "
        "span_kind, 'UNSET', make_timestamp_ns(start_ns), make_timestamp_ns(start_ns + 1000000), 1000000 FROM batch"
    )
    con.unregister("batch")
    rollup_all(con)
    return con


WINDOW = Window(START + timedelta(hours=HISTORY_H), START + timedelta(hours=HISTORY_H + WINDOW_H))


def test_the_entry_point_is_where_demand_enters(con: duckdb.DuckDBPyConnection) -> None:
    assert entry_points(con, START, WINDOW.start) == {("api", "GET /")}


def test_a_removed_call_edge_leaves_demand_where_it_was(con: duckdb.DuckDBPyConnection) -> None:
    factor = demand(con, WINDOW, HISTORY_H * 3600)
    assert factor is not None
    raw = _read(con, "rate", WINDOW, HISTORY_H * 3600)
    assert raw is not None
    after = slice(raw.window_start + 30, -5)  # from 15 minutes past the change, clear of smoothing at the edges
    assert np.allclose(factor[after], 1.0, atol=0.03)
    # pooled over every operation, the two that lost half their calls drag the factor down
    pooled = traffic_factor(raw.values, raw.window_start)
    assert pooled is not None and float(np.median(pooled[after])) < 0.9
