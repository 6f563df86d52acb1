"""Shared simulated stores for the invariant tests (session scope: simulated once per run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from invariant_scenario import END_MIN, MINI_FAULTS

from simulator.run import simulate
from simulator.scenario import parse_scenario
from simulator.sinks import StoreSink
from store.connection import Store


@pytest.fixture(scope="session")
def mini_faults_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store with 0-150 minutes of mini-faults (faults from minute 120); yields its path."""
    path = tmp_path_factory.mktemp("inv") / "mini-faults.duckdb"
    store = Store(path)
    simulate(parse_scenario(MINI_FAULTS), StoreSink(store), hours=END_MIN / 60, from_minute=0, seed=11)
    store.close()
    yield path
