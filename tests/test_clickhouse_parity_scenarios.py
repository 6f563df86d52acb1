"""Parity on every library scenario (slow): the same telemetry through the DuckDB store and through
the ClickHouse plane (chdb) gives the same findings.

Per scenario: 2 h 40 min around the first fault (2 h before it, 40 min into it; quiet scenarios
their first 2 h 40 min) are simulated into a DuckDB store. The ClickHouse side receives the same
batches as driftscope's receivers would commit them in ClickHouse mode (``PlaneIngest``: spans, logs
and metric points into the exporter's tables, nothing into the local store); it rolls up through
``ClickHousePlane`` (spans, logs and metrics inside ClickHouse) and mirrors the window. One
detection run (the last hour; the hour before as history) on each side must give the same
(detector, signal, severity) findings.

10 s to 4 min a scenario on two shared cores, 14-37 min for all 21: too long for the default suite, so the
sweep runs when asked (``DRIFTSCOPE_PARITY_SCENARIOS=1 pytest -m slow tests/test_clickhouse_parity_scenarios.py``);
the default suite's parity is ``tests/test_clickhouse_plane.py`` and ``tests/test_clickhouse_metrics.py``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from analysis import rollup_all
from analysis.plane import ClickHousePlane
from detectors.detection_run import run_detection
from simulator.run import simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.clickhouse import ClickHouse, ClickHouseTarget
from store.connection import Store, fetch_arrow
from store.otel_writer import PlaneIngest

SCENARIOS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "simulator" / "scenarios").glob("*.toml"))
_DB = itertools.count()


def _findings(con: object) -> list[tuple[str, str, str]]:
    done = run_detection(con, window_s=3600, history_s=3600, resolve_after_s=3600)  # type: ignore[arg-type]
    assert done is not None and not done.failures, done and done.failures
    return sorted((f.detector, f.signal.label(), f.severity) for f in done.findings)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("DRIFTSCOPE_PARITY_SCENARIOS") != "1",
    reason="the scenario sweep runs when DRIFTSCOPE_PARITY_SCENARIOS=1",
)
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("name", SCENARIOS)
def test_same_findings_on_both_backends(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    starts = [f.start_min for f in scenario.faults] + [d.at_min for d in scenario.deploys if d.at_min > 0]
    first = min(starts) if starts else 120
    start = int(max(0, first - 120))
    duck = Store(tmp_path / "duck.duckdb")
    simulate(scenario, StoreSink(duck), hours=(first + 40 - start) / 60, from_minute=start, seed=7)
    dcon = duck.cursor()
    batch = {
        t: fetch_arrow(dcon, f"SELECT * FROM {t}")
        for t in ("spans", "logs", "metric_points", "histogram_points", "exp_histogram_points", "summary_points")
    }
    target = ClickHouseTarget(url="chdb:", database=f"otel_parity_{next(_DB)}")
    server = ClickHouse(target)  # an in-memory chdb engine lives while a session is open: the "server"
    state = Store(tmp_path / "state.duckdb")
    ingest = PlaneIngest(target, state)
    ingest.insert(batch)
    ingest.close()
    scon = state.cursor()
    plane = ClickHousePlane(target)
    try:
        rollup_all(dcon)
        plane.rollup(scon)
        plane.prepare(scon, 4 * 3600, 4 * 3600)
        assert _findings(scon) == _findings(dcon)
    finally:
        plane.close()
        server.command(f"DROP DATABASE IF EXISTS `{target.database}`")
        server.close()
        duck.close()
        state.close()
