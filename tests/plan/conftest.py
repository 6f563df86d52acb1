"""Shared pieces of the planning tests: one simulated platform store, the example repository and its JUnit XML.

The store holds minutes 200-280 of the ``platform-receipts`` scenario at 6 requests/s:
domain-gate 3.4.0 until minute 240, then 3.5.0, which stores a receipt per order
(supabase-storage:PutObject). Baselines for drafting and design checks come from the
40 minutes before the deploy (``BASELINE_END``); the gate compares the versions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "investigations"))

from receipts_repo import SPEC, make_repo, run_pytest

from detectors.invariants.spec import load_spec
from detectors.planning.facts import SystemFacts, build_facts, read_baselines
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

NS_MIN = 60_000_000_000
FROM_MIN, DEPLOY_MIN, TO_MIN = 200, 240, 280
BASELINE_END = "2026-03-02T04:00:00"
"""Minute 240 (the deploy) as --end: the baseline window of drafting and design checks."""
BASELINE_WINDOW = "40m"


@pytest.fixture(scope="session")
def platform_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated platform-receipts store (see the module docstring)."""
    scenario = load_scenario("platform-receipts")
    scenario = scenario.model_copy(update={"arrivals": scenario.arrivals.model_copy(update={"rate_per_s": 6.0})})
    path = tmp_path_factory.mktemp("plan") / "platform.duckdb"
    store = Store(path)
    simulate(scenario, StoreSink(store), hours=TO_MIN / 60, from_minute=FROM_MIN, seed=5)
    store.close()
    return path


@pytest.fixture(scope="session")
def facts(platform_store: Path) -> SystemFacts:
    """The platform spec joined with the 40 minutes before the deploy."""
    import duckdb

    con = duckdb.connect(str(platform_store), read_only=True)
    try:
        start, end = DEFAULT_START_NS + FROM_MIN * NS_MIN, DEFAULT_START_NS + DEPLOY_MIN * NS_MIN
        return build_facts(load_spec(SPEC), read_baselines(con, start, end), window=(start, end))
    finally:
        con.close()


@pytest.fixture(scope="session")
def receipts_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(repository, JUnit XML of its tests): the example's branch with the feature, tests all passing."""
    root = tmp_path_factory.mktemp("repo")
    repo = make_repo(root / "domain-gate")
    junit = root / "junit.xml"
    assert run_pytest(repo, junit) == 0
    return repo, junit
