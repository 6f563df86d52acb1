"""The simulator: validated scenarios, determinism, and OTLP == direct-to-store rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from serverproc import start_server

from simulator.run import simulate
from simulator.scenario import ScenarioError, library, load_scenario, parse_scenario
from simulator.sinks import OtlpSink, StoreSink
from store.connection import Store
from store.schema_raw import RAW_TABLES

MINI = "mini"


def _digest(path: Path) -> dict[str, str]:
    """A content hash per raw table, independent of row order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for table in RAW_TABLES:
            rows = sorted(map(repr, con.execute(f"SELECT * FROM {table}").fetchall()))
            out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest() + f":{len(rows)}"
        return out
    finally:
        con.close()


def _simulate_to_store(path: Path, scenario: str, minutes: int, seed: int) -> None:
    store = Store(path)
    try:
        simulate(load_scenario(scenario), StoreSink(store), hours=minutes / 60, history_days=0, seed=seed)
    finally:
        store.close()


def test_every_library_scenario_validates_and_labels_its_faults() -> None:
    names = list(library())
    assert len(names) >= 12
    kinds: set[str] = set()
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        kinds |= {f.kind for f in scenario.faults}
    assert kinds == {
        "latency_regression", "error_burst", "slow_drift", "dependency_slowdown", "retry_storm",
        "capacity_saturation", "broken_propagation", "new_log_template", "attribute_change", "call_edge",
        "batch_shift",
    }  # fmt: skip
    assert any(not load_scenario(n).faults for n in names), "a quiet scenario is needed"
    assert sum(len(load_scenario(n).faults) >= 2 for n in names) >= 3, "three combinations are needed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 1", "name: Input should be a valid string"),
        ("[oops", "not valid TOML"),
        ('extends = "nope"', "not in the library"),
        (
            'extends = "mini"\n[[faults]]\nkind = "error_burst"\ntarget = "api:Nope"\nstart_min = 1\nend_min = 2',
            "faults[0].target: unknown 'api:Nope'",
        ),
        ('extends = "mini"\n[[faults]]\nkind = "error_burst"\ntarget = "api:GET /items"\nstart_min = 5\nend_min = 2',
         "end_min must be after start_min"),
        ('extends = "mini"\n[services.db.operations.query]\ncalls = [{ to = "api:GET /items" }]',
         "the call graph has a cycle"),
        ('extends = "mini"\n[arrivals]\nrate_per_s = -1', "arrivals.rate_per_s: Input should be greater than 0"),
    ],
)  # fmt: skip
def test_invalid_scenarios_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    assert message in str(err.value)


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        _simulate_to_store(tmp_path / f"{name}.duckdb", MINI, 20, seed)
    a, b, c = (_digest(tmp_path / f"{n}.duckdb") for n in "abc")
    assert a == b
    assert a["spans"] != c["spans"]


def test_otlp_path_stores_the_same_rows_as_the_direct_path(tmp_path: Path) -> None:
    _simulate_to_store(tmp_path / "direct.duckdb", MINI, 12, 3)
    srv = start_server(tmp_path / "otlp.duckdb")
    try:
        simulate(load_scenario(MINI), OtlpSink(srv.http_url), hours=12 / 60, history_days=0, seed=3)
        assert srv.stop() == 0
    finally:
        if srv.proc.poll() is None:
            srv.kill()
    direct, otlp = _digest(tmp_path / "direct.duckdb"), _digest(tmp_path / "otlp.duckdb")
    assert direct["spans"].endswith(tuple(f":{n}" for n in range(1000, 10**7)))  # a real amount of data
    assert otlp == direct
