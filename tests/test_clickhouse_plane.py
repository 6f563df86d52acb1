"""The ClickHouse telemetry plane on the real engine in-process (chdb): the exporter's schema,
rollups inside ClickHouse, and parity with DuckDB on the same simulated telemetry.

Parity: the same spans and logs go into a DuckDB store and (mapped by ``store.otel_writer``,
as driftscope's receivers would write them) into the exporter's tables. The rollups must agree
row for row (keys, counts, log-bucket histograms exactly; precomputed quantiles to 1e-9
relative, far inside the histogram's stated 1 % bound), and detection and the gate, run on a
state store into which the ClickHouse window was mirrored, must give the same findings and the
same verdicts as on the DuckDB store.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from prometheus_client import CollectorRegistry

from analysis import rollup_all
from analysis.plane import ClickHousePlane
from controller.config import ConfigError, load_config
from controller.gate import GateRequest, SideSpec, run_gate
from controller.jobs import JobRunner, rollup_job_for
from detectors.detection_run import run_detection
from investigations.snapshot import IncidentWindow, Snapshot, SnapshotError
from simulator.run import simulate
from simulator.scenario import Deploy, Fault, load_scenario
from simulator.sinks import StoreSink
from store.clickhouse import ClickHouse, ClickHouseError, ClickHouseTarget
from store.connection import Store, fetch_arrow
from store.otel_writer import ClickHouseWriter, PlaneIngest
from store.plane_mirror import mirror_window
from store.rollups_clickhouse import rollup_end_ns
from store.timeconv import NS_PER_MIN

_DB = itertools.count()


def _target(**extra: object) -> ClickHouseTarget:
    # chdb runs one engine per process: every test takes a database of its own.
    return ClickHouseTarget(url="chdb:", database=f"otel_test_{next(_DB)}", **extra)  # type: ignore[arg-type]


@pytest.fixture
def ch() -> Iterator[ClickHouse]:
    conn = ClickHouse(_target())
    conn.create_exporter_tables()
    yield conn
    conn.command(f"DROP DATABASE IF EXISTS `{conn.database}`")
    conn.close()


def _spans_and_logs(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    return {"spans": fetch_arrow(con, "SELECT * FROM spans"), "logs": fetch_arrow(con, "SELECT * FROM logs")}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A DuckDB store and a ClickHouse plane holding the same 2 h of the mini scenario (api 1.0.0 -> 1.1.0 at
    minute 60, which makes GET /items 40 % slower), and a state store with the plane's window mirrored."""
    d = tmp_path_factory.mktemp("plane")
    scenario = load_scenario("mini").model_copy(
        update={
            "deploys": [Deploy(service="api", version="1.1.0", at_min=60)],
            "faults": [Fault.model_validate({
                "kind": "latency_regression", "target": "api:GET /items", "magnitude": 0.4, "start_min": 60,
                "end_min": 180, "deploy_version": "1.1.0",
            })],
        }
    )  # fmt: skip
    duck = Store(d / "duck.duckdb")
    simulate(scenario, StoreSink(duck), hours=2.0, from_minute=0, seed=11)
    dcon = duck.cursor()
    # The plane holds spans and logs: metric points stay out of both sides.
    for table in ("metric_points", "histogram_points", "exp_histogram_points", "summary_points"):
        dcon.execute(f"DELETE FROM {table}")
    rollup_all(dcon)
    plane = ClickHousePlane(_target())
    ch = ClickHouse(plane.target)
    ch.create_exporter_tables()
    ClickHouseWriter(ch).insert(_spans_and_logs(dcon))  # type: ignore[arg-type]
    state = Store(d / "state.duckdb")
    scon = state.cursor()
    plane.rollup(scon)
    end = rollup_end_ns(plane.connection())
    assert end is not None
    copied = plane.prepare(scon, 3 * 3600, 3 * 3600)
    yield {"duck": dcon, "state": scon, "ch": plane.connection(), "copied": copied, "end": end}
    plane.close()
    ch.close()
    duck.close()
    state.close()


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[object, ...]]:
    return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_rollups_agree_row_for_row(worlds: dict[str, object]) -> None:
    duck, state = worlds["duck"], worlds["state"]
    assert isinstance(duck, duckdb.DuckDBPyConnection) and isinstance(state, duckdb.DuckDBPyConnection)
    left, right = _rows(duck, "rollup_spans"), _rows(state, "rollup_spans")
    assert len(left) == len(right) > 100
    for a, b in zip(left, right, strict=True):
        assert a[:13] == b[:13]  # keys, counts, sums, min/max, zero count and the histogram itself
        for qa, qb in zip(a[13:], b[13:], strict=True):
            assert (qa is None and qb is None) or qa == pytest.approx(qb, rel=1e-9)
    assert _rows(duck, "rollup_logs") == _rows(state, "rollup_logs")
    assert _rows(duck, "deploy_markers") == _rows(state, "deploy_markers")
    assert (
        duck.execute("SELECT count(*) FROM spans").fetchone() == state.execute("SELECT count(*) FROM spans").fetchone()
    )


def test_a_second_run_changes_nothing_and_the_watermark_follows_the_data(worlds: dict[str, object]) -> None:
    ch, state = worlds["ch"], worlds["state"]
    assert isinstance(ch, ClickHouse) and isinstance(state, duckdb.DuckDBPyConnection)
    before = ch.query_arrow(f"SELECT * FROM `{ch.database}`.rollup_spans ORDER BY ALL").to_pylist()
    ClickHousePlane(ch.target).rollup(state)
    assert ch.query_arrow(f"SELECT * FROM `{ch.database}`.rollup_spans ORDER BY ALL").to_pylist() == before
    row = state.execute("SELECT epoch_ns(watermark), runs FROM rollup_state WHERE source = 'clickhouse:otel_traces'")
    watermark, runs = row.fetchone()  # type: ignore[misc]
    assert watermark == worlds["end"] - NS_PER_MIN and runs == 2


def _findings(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    done = run_detection(con, window_s=3600, history_s=3600, resolve_after_s=3600)
    assert done is not None
    return sorted((f.detector, f.signal.label(), f.severity) for f in done.findings)


def test_detection_finds_the_same_on_both_backends(worlds: dict[str, object]) -> None:
    duck, state = worlds["duck"], worlds["state"]
    assert isinstance(duck, duckdb.DuckDBPyConnection) and isinstance(state, duckdb.DuckDBPyConnection)
    on_duck, on_ch = _findings(duck), _findings(state)
    assert on_duck == on_ch
    assert any("GET /items" in label for _, label, _ in on_duck), on_duck


def test_the_gate_gives_the_same_verdicts(worlds: dict[str, object]) -> None:
    duck, state = worlds["duck"], worlds["state"]
    assert isinstance(duck, duckdb.DuckDBPyConnection) and isinstance(state, duckdb.DuckDBPyConnection)
    req = GateRequest(baseline=SideSpec(version="1.0.0"), candidate=SideSpec(version="1.1.0"), service="api")
    a, b = run_gate(duck, req), run_gate(state, req)
    assert a.verdict == b.verdict == "fail"
    assert [(m.name, m.outcome) for m in a.metrics] == [(m.name, m.outcome) for m in b.metrics]


def test_a_database_that_is_not_the_exporters_is_named(ch: ClickHouse) -> None:
    ch.check_exporter_schema()
    ch.command(f"ALTER TABLE `{ch.database}`.otel_traces DROP COLUMN Duration")
    with pytest.raises(ClickHouseError, match=r"otel_traces lacks column\(s\) Duration"):
        ch.check_exporter_schema()
    ch.command(f"DROP TABLE `{ch.database}`.otel_logs")
    with pytest.raises(ClickHouseError, match=r"table otel_logs .* does not exist"):
        ch.check_exporter_schema()


def test_clickhouse_down_fails_with_the_reason() -> None:
    with pytest.raises(ClickHouseError, match=r"127\.0\.0\.1:9 is unavailable"):
        ClickHouse(ClickHouseTarget(url="http://127.0.0.1:9", connect_timeout_s=2))
    plane = ClickHousePlane(ClickHouseTarget(url="http://127.0.0.1:9", connect_timeout_s=2))
    state = duckdb.connect()
    with pytest.raises(ClickHouseError, match=r"unavailable"):
        plane.rollup(state)


def test_chdb_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """chdb is an optional extra (534 MB): a ``chdb:`` url without it names the extra, not an import error."""
    monkeypatch.setitem(sys.modules, "chdb", None)  # what `import chdb` sees when it is not installed
    with pytest.raises(ClickHouseError, match=r"driftscope\[chdb\]"):
        ClickHouse(ClickHouseTarget(url="chdb:"))


def test_a_failed_rollup_leaves_the_watermark_and_the_next_run_completes(ch: ClickHouse, tmp_path: Path) -> None:
    duck = Store(tmp_path / "src.duckdb")
    simulate(load_scenario("mini"), StoreSink(duck), hours=0.25, history_days=0, seed=2)
    ClickHouseWriter(ch).insert(_spans_and_logs(duck.cursor()))  # type: ignore[arg-type]
    duck.close()
    state = Store(tmp_path / "state.duckdb")
    scon = state.cursor()
    # A rollup table that cannot take the rows: the INSERT fails mid-job, after the DELETE.
    ch.command(
        f"CREATE TABLE `{ch.database}`.rollup_spans (minute DateTime('UTC'), x UInt8) "
        "ENGINE = MergeTree ORDER BY minute"
    )
    plane = ClickHousePlane(ch.target)
    with pytest.raises(ClickHouseError, match=r"statement failed: .*columns"):
        plane.rollup(scon)
    assert scon.execute("SELECT count(*) FROM rollup_state").fetchone() == (0,)
    ch.command(f"DROP TABLE `{ch.database}`.rollup_spans")
    done = plane.rollup(scon)
    assert done["rows"] > 0
    total = ch.scalar(f"SELECT sum(count) FROM `{ch.database}`.rollup_spans")
    assert total == ch.scalar(f"SELECT count() FROM `{ch.database}`.otel_traces")
    plane.close()
    state.close()


def test_a_window_mirrored_twice_is_the_same(worlds: dict[str, object], tmp_path: Path) -> None:
    ch = worlds["ch"]
    assert isinstance(ch, ClickHouse)
    end = worlds["end"]
    assert isinstance(end, int)
    local = Store(tmp_path / "m.duckdb")
    con = local.cursor()
    first = mirror_window(ch, con, end - 3600 * 10**9, end, raw_start_ns=end - 600 * 10**9)
    again = mirror_window(ch, con, end - 3600 * 10**9, end, raw_start_ns=end - 600 * 10**9)
    assert first == again and first["rollup_spans"] > 0 and first["spans"] > 0
    assert con.execute("SELECT count(*) FROM rollup_spans").fetchone() == (first["rollup_spans"],)
    local.close()


def test_receivers_write_spans_logs_and_metric_points_into_the_plane(tmp_path: Path) -> None:
    src = Store(tmp_path / "src.duckdb")
    simulate(load_scenario("mini"), StoreSink(src), hours=0.1, history_days=0, seed=5)
    scon = src.cursor()
    tables = ("spans", "logs", "metric_points", "histogram_points", "exp_histogram_points")
    batch = {t: fetch_arrow(scon, f"SELECT * FROM {t}") for t in tables}
    kinds = dict(scon.execute("SELECT kind, count(*) FROM metric_points GROUP BY ALL").fetchall())
    src.close()
    assert all(t.num_rows for t in batch.values())
    local = Store(tmp_path / "local.duckdb")
    target = _target()
    sink = PlaneIngest(target, local)
    assert sink.insert(batch) == sum(t.num_rows for t in batch.values())
    sink.close()
    ch = ClickHouse(target)
    ch.check_exporter_schema()  # created as the Collector would have
    db, names = ch.database, ch.tables
    expected = {
        names.traces: batch["spans"].num_rows, names.logs: batch["logs"].num_rows, names.gauge: kinds["gauge"],
        names.sum: kinds["sum"], names.histogram: batch["histogram_points"].num_rows,
        names.exponential_histogram: batch["exp_histogram_points"].num_rows,
    }  # fmt: skip
    for table, rows in expected.items():
        assert ch.scalar(f"SELECT count() FROM `{db}`.`{table}`") == rows, table
    con = local.cursor()
    for table in tables:
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    ch.command(f"DROP DATABASE `{ch.database}`")
    ch.close()
    local.close()


def test_the_investigation_snapshot_of_a_mirrored_window_is_read_only(
    worlds: dict[str, object], tmp_path: Path
) -> None:
    state, end = worlds["state"], worlds["end"]
    assert isinstance(state, duckdb.DuckDBPyConnection) and isinstance(end, int)
    window = IncidentWindow.around(end - 1800 * 10**9, end, 3600)
    snap = Snapshot.extract(state, tmp_path / "snap", window)
    try:
        spans = snap.query("SELECT count(*) AS n FROM spans").rows[0][0]
        assert spans > 0
        with pytest.raises(SnapshotError):
            snap.query("DELETE FROM spans")
    finally:
        snap.close()


def test_unknown_exporter_table_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown exporter table keys"):
        load_config(plane={"backend": "clickhouse", "clickhouse": {"tables": {"trace": "x"}}})


def test_detection_mirrors_incrementally_after_the_first_run(worlds: dict[str, object], tmp_path: Path) -> None:
    ch = worlds["ch"]
    assert isinstance(ch, ClickHouse)
    local = Store(tmp_path / "inc.duckdb")
    con = local.cursor()
    plane = ClickHousePlane(ch.target)
    first = plane.prepare(con, 3 * 3600, 3 * 3600)
    again = plane.prepare(con, 3 * 3600, 3 * 3600)
    # The second run copies only the rollup's lateness (5 minutes), and the store holds the same rows.
    assert 0 < again["spans"] < first["spans"] / 10
    assert con.execute("SELECT count(*) FROM spans").fetchone() == (first["spans"],)
    assert con.execute("SELECT count(*) FROM rollup_spans").fetchone() == (first["rollup_spans"],)
    plane.close()
    local.close()


def test_the_scheduled_rollup_fails_cleanly_while_clickhouse_is_down_and_runs_when_it_is_back(
    ch: ClickHouse, tmp_path: Path
) -> None:
    state = Store(tmp_path / "state.duckdb")
    down = ClickHousePlane(ClickHouseTarget(url="http://127.0.0.1:9", connect_timeout_s=2))
    runner = JobRunner(state, {"rollup": rollup_job_for(down)}, CollectorRegistry())
    failed = runner.run("rollup")
    assert failed.outcome == "failed" and "127.0.0.1:9 is unavailable" in (failed.error or "")
    assert state.cursor().execute("SELECT count(*) FROM rollup_state").fetchone() == (0,)
    # ClickHouse back (here: the chdb engine): the next tick rolls up.
    src = Store(tmp_path / "src.duckdb")
    simulate(load_scenario("mini"), StoreSink(src), hours=0.1, history_days=0, seed=3)
    ClickHouseWriter(ch).insert(_spans_and_logs(src.cursor()))  # type: ignore[arg-type]
    src.close()
    up = ClickHousePlane(ch.target)
    runner = JobRunner(state, {"rollup": rollup_job_for(up)}, CollectorRegistry())
    done = runner.run("rollup")
    assert done.outcome == "ok" and done.detail["plane"] == "clickhouse" and done.detail["rows"] > 0
    up.close()
    state.close()
