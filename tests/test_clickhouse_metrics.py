"""Metric signals from the exporter's metric tables (chdb): the same points in DuckDB and in
``otel_metrics_gauge`` / ``_sum`` / ``_histogram`` / ``_exponential_histogram`` give the same
metric rollups, the same metric signals (histogram quantiles, gauges, counter rates) and the
same findings.

The ClickHouse side receives the points as driftscope's receivers write them in ClickHouse mode
(``PlaneIngest``: every raw table into the exporter's schema, nothing local), rolls them up
inside ClickHouse (``store.rollups_metrics_clickhouse``) and mirrors the window into a state store.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from analysis import Window, rollup_all, signals
from analysis.plane import ClickHousePlane
from collector.columns import SCHEMAS
from detectors.detection_run import run_detection
from simulator.run import simulate
from simulator.scenario import Fault, load_scenario
from simulator.sinks import StoreSink
from store.clickhouse import ClickHouse, ClickHouseTarget
from store.connection import Store, fetch_arrow
from store.otel_writer import PlaneIngest
from store.plane_mirror import mirror_window
from store.rollups_clickhouse import rollup_end_ns

_DB = itertools.count()
_ENGINES: list[ClickHouse] = []
RAW = ("spans", "logs", "metric_points", "histogram_points", "exp_histogram_points", "summary_points")
METRIC_ROLLUPS = ("rollup_sums", "rollup_gauges", "rollup_histograms", "rollup_exp_histograms")


def _both(
    duck: Store, tmp: Path, window_ns: tuple[int, int] | None = None
) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection, ClickHousePlane]:
    """Roll ``duck`` up in DuckDB; copy its raw rows into a fresh chdb plane, roll up there and mirror (the
    plane's last 6 h of spans, or ``window_ns`` when there are no spans)."""
    dcon = duck.cursor()
    batch = {t: fetch_arrow(dcon, f"SELECT * FROM {t}") for t in RAW}
    rollup_all(dcon)
    target = ClickHouseTarget(url="chdb:", database=f"otel_metrics_{next(_DB)}")
    _ENGINES.append(ClickHouse(target))  # an in-memory chdb engine lives while a session is open: the "server"
    state = Store(tmp / "state.duckdb")
    ingest = PlaneIngest(target, state)
    assert ingest.insert(batch) > 0
    ingest.close()
    scon = state.cursor()
    assert scon.execute("SELECT count(*) FROM metric_points").fetchone() == (0,)  # all of it went to ClickHouse
    plane = ClickHousePlane(target)
    plane.rollup(scon)
    if window_ns is None:
        plane.prepare(scon, 6 * 3600, 6 * 3600)
    else:
        mirror_window(plane.connection(), scon, *window_ns, raw_start_ns=window_ns[0])
    return dcon, scon, plane


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """2 h of the mini scenario, GET /items 60 % slower from minute 60 (its request-duration histogram and
    its active-requests gauge move), in DuckDB and through the ClickHouse plane."""
    d = tmp_path_factory.mktemp("metrics")
    scenario = load_scenario("mini").model_copy(
        update={"faults": [Fault.model_validate(
            {"kind": "latency_regression", "target": "api:GET /items", "magnitude": 0.6, "start_min": 60,
             "end_min": 180},
        )]}
    )  # fmt: skip
    duck = Store(d / "duck.duckdb")
    simulate(scenario, StoreSink(duck), hours=2.0, from_minute=0, seed=13)
    dcon, scon, plane = _both(duck, d)
    end = rollup_end_ns(plane.connection())
    assert end is not None
    yield {"duck": dcon, "state": scon, "end": end}
    plane.close()
    duck.close()


def _rows(con: duckdb.DuckDBPyConnection, table: str, end_ns: int) -> list[tuple[object, ...]]:
    # The mirrored window ends with the last minute of spans; a metric point stamped at that end falls after it.
    return sorted(con.execute(f"SELECT * FROM {table} WHERE epoch_ns(minute) < {end_ns}").fetchall(), key=repr)


@pytest.mark.parametrize("table", METRIC_ROLLUPS)
def test_metric_rollups_agree_row_for_row(worlds: dict[str, object], table: str) -> None:
    duck, state, end = worlds["duck"], worlds["state"], worlds["end"]
    assert isinstance(duck, duckdb.DuckDBPyConnection) and isinstance(state, duckdb.DuckDBPyConnection)
    assert isinstance(end, int)
    left, right = _rows(duck, table, end), _rows(state, table, end)
    assert len(left) == len(right) > 0
    assert left == right


def test_raw_metric_points_are_mirrored_as_the_store_keeps_them(worlds: dict[str, object]) -> None:
    duck, state, end = worlds["duck"], worlds["state"], worlds["end"]
    assert isinstance(duck, duckdb.DuckDBPyConnection) and isinstance(state, duckdb.DuckDBPyConnection)
    # What the exporter's schema has no column for: integer values, exemplars, the zero threshold, and an
    # empty scope attribute map that was absent.
    dropped = {
        "metric_points": "value_int, exemplars, scope_attributes",
        "histogram_points": "exemplars, scope_attributes",
        "exp_histogram_points": "exemplars, scope_attributes, zero_threshold",
    }
    for table, columns in dropped.items():
        sql = f"SELECT * EXCLUDE ({columns}) FROM {table} WHERE epoch_ns(time) < {end}"
        left = sorted(duck.execute(sql).fetchall(), key=repr)
        assert left and left == sorted(state.execute(sql).fetchall(), key=repr), table


def _window(end_ns: int) -> Window:
    end = datetime(1970, 1, 1) + timedelta(microseconds=end_ns // 1000)
    return Window(start=end - timedelta(hours=2), end=end, resolution_s=60)


@pytest.mark.parametrize("kind", ["histogram_p50", "histogram_p99", "gauge", "counter_rate"])
def test_metric_signals_are_the_same(worlds: dict[str, object], kind: str) -> None:
    duck, state, end = worlds["duck"], worlds["state"], worlds["end"]
    assert isinstance(duck, duckdb.DuckDBPyConnection) and isinstance(state, duckdb.DuckDBPyConnection)
    assert isinstance(end, int)
    left = signals(duck, kind, _window(end))  # type: ignore[arg-type]
    right = signals(state, kind, _window(end))  # type: ignore[arg-type]
    order = [c for c in ("time", "service", "metric", "attributes") if c in left.columns]
    assert left.height > 0
    assert_frame_equal(left.sort(order), right.sort(order))


def test_metric_findings_are_the_same(worlds: dict[str, object]) -> None:
    duck, state = worlds["duck"], worlds["state"]
    assert isinstance(duck, duckdb.DuckDBPyConnection) and isinstance(state, duckdb.DuckDBPyConnection)

    def findings(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
        done = run_detection(con, window_s=3600, history_s=3600, resolve_after_s=3600)
        assert done is not None and not done.failures
        return sorted((f.detector, f.signal.label(), f.severity) for f in done.findings)

    on_duck, on_ch = findings(duck), findings(state)
    assert on_duck == on_ch
    assert any(label.endswith(("histogram_p50", "gauge")) for _, label, _ in on_duck), on_duck


def _points(rows: list[dict[str, object]], table: str) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS[table])


def test_counter_and_histogram_resets_are_read_as_the_store_reads_them(tmp_path: Path) -> None:
    """Cumulative series with a restart (new start time), a value that went down, an unknown start time, a
    changed bucket layout and a delta series: every rule of ``analysis.deltas`` on the exporter's columns."""
    t0 = datetime(2026, 3, 2, 0, 0)
    head = {"service_name": "api", "service_version": "1", "resource_attributes": '{"service.name":"api"}',
            "attributes": '{"route":"/a"}', "scope_name": "s"}  # fmt: skip
    sums, hists = [], []
    for i in range(12):
        t = t0 + timedelta(seconds=30 * (i + 1))
        restarted = i >= 6
        start = t0 + timedelta(minutes=3) if restarted else t0
        value = float(i * 5 if not restarted else (i - 6) * 2 + 1)
        sums.append({**head, "metric_name": "c", "time": t, "start_time": start, "value": value, "kind": "sum",
                     "temporality": "cumulative", "is_monotonic": True})  # fmt: skip
        sums.append({**head, "metric_name": "dropping", "time": t, "start_time": None, "value": float(20 - i % 5),
                     "kind": "sum", "temporality": "cumulative", "is_monotonic": False})  # fmt: skip
        sums.append({**head, "metric_name": "d", "time": t, "start_time": t - timedelta(seconds=30), "value": 2.0,
                     "kind": "sum", "temporality": "delta", "is_monotonic": True})  # fmt: skip
        sums.append({**head, "metric_name": "g", "time": t, "value": float(i % 4), "kind": "gauge"})
        bounds = [1.0, 2.0] if i < 8 else [1.0, 2.0, 4.0]
        counts = [i, 2 * i, i] if i < 8 else [1, 1, 1, i - 7]
        hists.append({**head, "metric_name": "h", "time": t, "start_time": start, "count": sum(counts),
                      "sum": float(3 * i), "bounds": bounds, "bucket_counts": counts,
                      "temporality": "cumulative"})  # fmt: skip
    duck = Store(tmp_path / "duck.duckdb")
    duck.insert(
        {"metric_points": _points(sums, "metric_points"), "histogram_points": _points(hists, "histogram_points")}
    )
    end = int((t0 + timedelta(minutes=7) - datetime(1970, 1, 1)).total_seconds()) * 10**9
    dcon, scon, plane = _both(duck, tmp_path, (end - 3600 * 10**9, end))
    try:
        for table in ("rollup_sums", "rollup_gauges", "rollup_histograms"):
            left, right = _rows(dcon, table, end), _rows(scon, table, end)
            assert left and left == right, table
        resets = dcon.execute("SELECT sum(resets) FROM rollup_sums WHERE metric_name = 'c'").fetchone()
        assert resets is not None and resets[0] >= 1
    finally:
        plane.close()
        duck.close()
