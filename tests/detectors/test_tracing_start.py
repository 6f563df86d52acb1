"""Tracing switched on late changes the composition of the series it feeds into; detection says less.

The worker ran all along (its metrics go back further) but its spans start at minute 0. The database
query it calls is also called by the API, traced throughout: from minute 0 the query's client spans
gain the worker's, and its request rate doubles while the system did nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from analysis import rollup_all
from controller.cli import main
from detectors.detection_run import DetectionRun, run_detection
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import parse_scenario
from simulator.sinks import StoreSink
from store.connection import Store
from store.raw import tracing_starts

NS_MIN = 60_000_000_000
SHARED_QUERY = (
    '[services.api.operations."GET /items"]\nservice_time = { median_ms = 4.0, sigma = 0.4 }\nservers = 4\n'
    'calls = [{ to = "worker:List", timeout_ms = 500 }, { to = "db:query", timeout_ms = 200 }]\n'
)


def _detect(tmp: Path, text: str) -> tuple[DetectionRun, list[tuple[str, str, str, int]]]:
    store = Store(tmp / "s.duckdb")
    try:
        simulate(parse_scenario(text), StoreSink(store), hours=0.75, from_minute=-150, seed=9)
        con = store.cursor()
        rollup_all(con)
        con.execute("CHECKPOINT")
        shutil.copy(tmp / "s.duckdb", tmp / "cli.duckdb")  # for `driftscope detect`, before findings are written
        run = run_detection(con, window_s=45 * 60, history_s=150 * 60, resolve_after_s=1800)
        joined = tracing_starts(con, DEFAULT_START_NS - 150 * NS_MIN, DEFAULT_START_NS - 5 * NS_MIN,
                                DEFAULT_START_NS + 45 * NS_MIN)  # fmt: skip
    finally:
        store.close()
    assert run is not None
    return run, joined


def _on_query(run: DetectionRun) -> list[str]:
    return [f.signal.label() for f in run.findings if (f.signal.service, f.signal.operation) == ("db", "query")]


def test_a_caller_whose_tracing_starts_in_the_window_fakes_no_change_in_its_callees(tmp_path: Path) -> None:
    text = 'extends = "mini"\nname = "late-worker"\n' + SHARED_QUERY + "[services.worker.export]\ntraces_from_min = 0\n"
    run, joined = _detect(tmp_path, text)
    assert ("db", "query", "worker", DEFAULT_START_NS) in joined, joined
    assert _on_query(run) == [], _on_query(run)
    assert any("db:query rate" in w and "worker" in w for w in run.withheld), run.withheld
    cli = CliRunner().invoke(main, ["detect", "--store", str(tmp_path / "cli.duckdb"), "--window", "45m",
                                    "--history", "150m"])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert "withheld: " in cli.stderr and "db:query rate" in cli.stderr, cli.stderr
    assert "db:query" not in cli.stdout


def test_a_new_service_without_earlier_metrics_or_logs_is_a_real_change(tmp_path: Path) -> None:
    """The same spans from a worker that exported nothing before them: a new caller, whose load is real."""
    text = (
        'extends = "mini"\nname = "new-worker"\n' + SHARED_QUERY + "[services.worker.export]\ntraces_from_min = 0\n"
        "histograms = false\ngauges = false\nlogs = false\n"
    )
    run, joined = _detect(tmp_path, text)
    assert joined == []
    assert "db:query rate" in _on_query(run), [f.signal.label() for f in run.findings]
    assert run.withheld == []
