"""Rollups and signals on simulated data: conservation, quantile bounds, idempotence,
late data, deploy markers and metric deltas."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from analysis import RollupConfig, Window, distributions, latency_quantiles, rollup_all, signals
from analysis.histogram import ALPHA
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store, fetch_arrow
from store.migrations import migrate_all

ROLLUPS = ("rollup_spans", "rollup_logs", "rollup_sums", "rollup_gauges", "rollup_histograms", "rollup_exp_histograms")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("rollup") / "mini.duckdb"
    st = Store(path)
    simulate(load_scenario("mini"), StoreSink(st), hours=0.5, history_days=0, seed=4)
    yield st
    st.close()


def _digest(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    out = {}
    for table in ROLLUPS:
        rows = sorted(map(repr, con.execute(f"SELECT * FROM {table}").fetchall()))
        out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def _window(con: duckdb.DuckDBPyConnection, resolution_s: int = 60) -> Window:
    lo, hi = con.execute("SELECT min(minute), max(minute) + INTERVAL 1 MINUTE FROM rollup_spans").fetchone()  # type: ignore[misc]
    return Window(lo, hi, resolution_s)


def test_span_rollup_conserves_counts_and_is_idempotent(store: Store) -> None:
    con = store.cursor()
    reports = {r.source: r for r in rollup_all(con)}
    assert reports["spans"].rows_written > 0
    raw = con.execute("SELECT count(*), count(*) FILTER (WHERE status_code = 'ERROR') FROM spans").fetchone()
    rolled = con.execute("SELECT sum(count), sum(error_count) FROM rollup_spans").fetchone()
    assert raw == rolled
    logs_raw = con.execute("SELECT count(*) FROM logs").fetchone()
    assert logs_raw == con.execute("SELECT sum(count) FROM rollup_logs").fetchone()
    before = _digest(con)
    again = rollup_all(con)
    assert _digest(con) == before
    assert all(r.late_rows == 0 for r in again)


def _exact_lower_quantile(values: np.ndarray, q: float) -> float:
    ordered = np.sort(values)
    return float(ordered[int(np.ceil(q * (len(ordered) - 1)))])


@pytest.mark.parametrize("resolution_s", [60, 300])
def test_latency_quantiles_within_the_stated_bound(store: Store, resolution_s: int) -> None:
    con = store.cursor()
    rollup_all(con)
    w = _window(con, resolution_s)
    frame = signals(con, "latency_p99", w, service="api", operation="GET /items")
    assert frame.height >= 3
    for row in frame.iter_rows(named=True):
        t = row["time"].replace(tzinfo=None)
        exact_values = con.execute(
            "SELECT duration_ns FROM spans WHERE service_name = 'api' AND span_name = 'GET /items' AND "
            "span_kind = 'SERVER' AND status_code != 'ERROR' AND start_time >= $t "
            "AND start_time < $t::TIMESTAMP + to_seconds($r)",
            {"t": t, "r": resolution_s},
        ).fetchnumpy()["duration_ns"]
        exact = _exact_lower_quantile(exact_values, 0.99)
        assert row["samples"] == len(exact_values)
        assert abs(row["value"] - exact) <= ALPHA * exact * 1.0001


def test_rate_error_ratio_and_distributions_match_raw(store: Store) -> None:
    con = store.cursor()
    rollup_all(con)
    w = _window(con, 300)
    rate = signals(con, "rate", w, service="api")
    errors = signals(con, "error_ratio", w, service="api", operation="GET /items")
    raw = pl.from_arrow(
        fetch_arrow(
            con,
            "SELECT time_bucket(INTERVAL 5 MINUTE, start_time::TIMESTAMP) AS t, span_name, count(*) AS n, "
            "avg((status_code = 'ERROR')::INT) AS err FROM spans WHERE service_name = 'api' AND "
            "span_kind = 'SERVER' GROUP BY ALL",
        )
    )
    assert isinstance(raw, pl.DataFrame)
    assert rate["samples"].sum() == raw["n"].sum()
    assert np.allclose(sorted(rate["value"].to_list()), sorted((raw["n"] / 300).to_list()))
    get = raw.filter(pl.col("span_name") == "GET /items").sort("t")
    assert np.allclose(errors.sort("time")["value"].to_numpy(), get["err"].to_numpy())
    dists = distributions(con, w, service="api", operation="GET /items", status_class=None)
    assert sum(d.histogram.count for d in dists) == int(get["n"].sum())


def test_counter_and_histogram_metric_deltas_conserve_totals(store: Store) -> None:
    con = store.cursor()
    rollup_all(con)
    first_last = con.execute(
        "SELECT arg_max(value, time) - arg_min(value, time) FROM metric_points WHERE metric_name = 'items.created'"
    ).fetchone()
    total = con.execute("SELECT sum(delta) FROM rollup_sums WHERE metric_name = 'items.created'").fetchone()
    assert first_last is not None and total is not None
    assert total[0] == pytest.approx(first_last[0] + _first_point_value(con, "items.created"))
    hist = con.execute(
        "SELECT sum(count) FROM rollup_histograms WHERE metric_name = 'http.server.request.duration' "
        "AND attributes->>'http.route' = '/items' AND attributes->>'http.request.method' = 'GET'"
    ).fetchone()
    spans = con.execute(
        "SELECT count(*) FROM spans WHERE service_name = 'api' AND span_name = 'GET /items' AND span_kind = 'SERVER'"
    ).fetchone()
    assert hist == spans  # every span counted once: start_time of the series precedes its first point
    w = _window(con, 600)
    p50 = signals(con, "histogram_p50", w, metric="http.server.request.duration", service="api")
    assert p50.height > 0 and p50["value"].is_between(0.0, 10.0).all()
    gauge = signals(con, "gauge", w, metric="queue.depth", service="api")
    raw_mean = con.execute(
        "SELECT avg(value) FROM metric_points WHERE metric_name = 'queue.depth' AND service_name = 'api' "
        "AND time >= $lo AND time < $hi",
        {"lo": w.start, "hi": w.end},
    ).fetchone()
    assert raw_mean is not None
    weighted = float((gauge["value"] * gauge["samples"]).sum() / gauge["samples"].sum())
    assert weighted == pytest.approx(raw_mean[0])


def _first_point_value(con: duckdb.DuckDBPyConnection, metric: str) -> float:
    """A series whose start_time precedes its first point counts that first value too."""
    row = con.execute(f"SELECT arg_min(value, time) FROM metric_points WHERE metric_name = '{metric}'").fetchone()
    return float(row[0]) if row else 0.0


def test_late_rows_are_folded_in_or_counted(tmp_path: Path) -> None:
    st = Store(tmp_path / "late.duckdb")
    simulate(load_scenario("mini"), StoreSink(st), hours=0.5, history_days=0, seed=9)
    con = st.cursor()
    rollup_all(con, RollupConfig(lateness_s=300))
    old = fetch_arrow(con, "SELECT * FROM spans ORDER BY start_time LIMIT 7")
    recent = fetch_arrow(con, "SELECT * FROM spans ORDER BY start_time DESC LIMIT 5")
    fresh_ids = pa.array([f"{i + 1:016x}" for i in range(12)])
    st.insert({"spans": pa.concat_tables([old, recent]).set_column(1, "span_id", fresh_ids)})
    reports = {r.source: r for r in rollup_all(con, RollupConfig(lateness_s=300))}
    assert reports["spans"].late_rows == 7  # closed minutes: counted, reported
    raw = con.execute("SELECT count(*) FROM spans").fetchone()
    rolled = con.execute("SELECT sum(count) FROM rollup_spans").fetchone()
    assert raw is not None and rolled is not None
    assert raw[0] - rolled[0] == 7  # the 5 recent ones were folded in
    assert con.execute("SELECT sum(rows) FROM rollup_late WHERE source = 'spans'").fetchone() == (7,)
    again = {r.source: r for r in rollup_all(con, RollupConfig(lateness_s=300))}
    assert again["spans"].late_rows == 0  # reported once, not again
    assert con.execute("SELECT late_rows FROM rollup_state WHERE source = 'spans'").fetchone() == (7,)
    st.close()


def test_deploy_markers_record_first_sighting(tmp_path: Path) -> None:
    st = Store(tmp_path / "deploy.duckdb")
    simulate(load_scenario("webshop"), StoreSink(st), hours=185 / 60, from_minute=175, seed=2)
    con = st.cursor()
    rollup_all(con)
    first_seen = con.execute(
        "SELECT epoch_ns(first_seen) FROM deploy_markers WHERE service_name = 'payment' AND service_version = '5.2.0'"
    ).fetchone()
    assert first_seen is not None
    deploy_ns = DEFAULT_START_NS + 180 * 60_000_000_000
    assert deploy_ns <= first_seen[0] < deploy_ns + 60_000_000_000
    old = con.execute("SELECT count(*) FROM deploy_markers WHERE service_version = '5.1.2'").fetchone()
    assert old == (1,)
    st.close()


@pytest.mark.parametrize("resolution_s", [60, 300])
def test_wide_latency_quantiles_equal_single_signals(store: Store, resolution_s: int) -> None:
    con = store.cursor()
    rollup_all(con)
    w = _window(con, resolution_s)
    wide = latency_quantiles(con, w, (0.5, 0.95, 0.99), service="api").sort(["operation", "time"])
    assert wide.height > 0
    for q, column in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        single = signals(con, f"latency_p{round(q * 100)}", w, service="api").sort(["operation", "time"])  # type: ignore[arg-type]
        assert wide[column].to_list() == single["value"].to_list()
        assert (single["error_bound"] == ALPHA).all()


def test_histogram_series_with_different_bounds_merge_with_a_stated_error(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    migrate_all(con)
    rows = [
        ([1.0, 2.0, 4.0], [10, 10, 10, 0]),
        ([1.0, 2.0, 4.0], [0, 5, 5, 0]),
        ([1.5, 3.0], [4, 4, 0]),
    ]
    for bounds, counts in rows:
        con.execute(
            "INSERT INTO rollup_histograms VALUES (TIMESTAMP '2026-03-02 00:00', 'm', 'svc', '{}', ?, ?, ?, 0, 0)",
            [bounds, counts, sum(counts)],
        )
    frame = signals(con, "histogram_p50", Window(datetime(2026, 3, 2), datetime(2026, 3, 2, 0, 1), 60), metric="m")
    assert frame.height == 1
    row = frame.row(0, named=True)
    assert row["samples"] == 48  # every count kept
    assert 1.0 <= row["value"] <= 4.0
    assert row["error_bound"] > 0  # bounds differed: the re-bucketing error is stated


def test_a_bucket_of_time_with_one_observation_reports_the_observation(tmp_path: Path) -> None:
    """A batch job's run: its quantiles are its duration (the sum), not the middle of the bucket it fell in."""
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    migrate_all(con)
    bounds = [120.0, 300.0, 600.0]
    rows = [
        ("2026-03-02 00:00", "a", [0, 0, 1, 0], 479.7),  # one run: exact
        ("2026-03-02 00:01", "a", [0, 0, 1, 0], 311.0),
        ("2026-03-02 00:01", "b", [0, 0, 0, 0], 0.0),  # another attribute set, empty: still one observation
        ("2026-03-02 00:02", "a", [0, 1, 1, 0], 700.0),  # two runs: the bucket interpolation as before
    ]
    for minute, attrs, counts, total in rows:
        con.execute(
            "INSERT INTO rollup_histograms VALUES (?::TIMESTAMP, 'job.duration', 'svc', ?, ?, ?, ?, ?, 0)",
            [minute, f'{{"a":"{attrs}"}}', bounds, counts, sum(counts), total],
        )
    w = Window(datetime(2026, 3, 2), datetime(2026, 3, 2, 0, 3), 60)
    for kind in ("histogram_p50", "histogram_p99"):
        frame = signals(con, kind, w, metric="job.duration").sort("time")  # type: ignore[arg-type]
        values = frame["value"].to_list()
        assert values[:2] == [pytest.approx(479.7), pytest.approx(311.0)]
        assert frame["samples"].to_list() == [1, 1, 2]
        assert values[2] != pytest.approx(350.0)  # two runs: never their mean
        assert 120.0 <= values[2] <= 600.0
