"""A low-traffic caller's call graph is learned and checked: too few parents for the span-level
laws (``stats.MIN_SUPPORT``), enough for the call-graph laws (``stats.EDGE_MIN_SUPPORT``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from invariant_scenario import NS_MIN, at

from detectors.invariants.model import Invariant, Violation
from detectors.invariants.monitor import check, extract
from detectors.invariants.stats import EDGE_MIN_SUPPORT, MIN_SUPPORT
from simulator.run import simulate
from simulator.scenario import parse_scenario
from simulator.sinks import StoreSink
from store.connection import Store

CHANGE_MIN = 120
END_MIN = 150
# mini at 0.4 req/s, flat: POST /items sees ~0.1/s (about 540 parents in the 90-minute baseline),
# GET /items ~0.3/s; at minute 120 POST /items stops calling worker:Validate and GET /items
# starts calling db:insert on half its requests.
LOW_TRAFFIC = f"""
extends = "mini"
name = "mini-low-traffic"
description = "mini at 0.4 req/s; a call edge removed and one added at {CHANGE_MIN} min"

[arrivals]
rate_per_s = 0.4
diurnal_amplitude = 0.0
noise_sigma = 0.05

[[faults]]
kind = "call_edge"
target = "api:POST /items"
to = "worker:Validate"
change = "remove"
start_min = {CHANGE_MIN}
end_min = {END_MIN}

[[faults]]
kind = "call_edge"
target = "api:GET /items"
to = "db:insert"
change = "add"
magnitude = 0.5
start_min = {CHANGE_MIN}
end_min = {END_MIN}
"""


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path: Path = tmp_path_factory.mktemp("low") / "low-traffic.duckdb"
    store = Store(path)
    simulate(parse_scenario(LOW_TRAFFIC), StoreSink(store), hours=END_MIN / 60, from_minute=0, seed=5)
    store.close()
    connection = duckdb.connect(str(path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def laws(con: duckdb.DuckDBPyConnection) -> list[Invariant]:
    return extract(con, at(0), at(90))


def _edge_violations(found: list[Violation]) -> dict[tuple[str, str], Violation]:
    return {(v.invariant.kind, v.invariant.entity): v for v in found if v.detector == "invariant_call_edge"}


def test_call_graph_laws_are_learned_from_few_parents(laws: list[Invariant]) -> None:
    post = [i for i in laws if i.entity == "api:POST /items" and i.kind in ("callees", "call_edge")]
    assert {i.kind for i in post} == {"callees", "call_edge"}
    assert all(EDGE_MIN_SUPPORT <= i.support < MIN_SUPPORT for i in post)
    for law in laws:  # the span-level laws still wait for their full support
        floor = EDGE_MIN_SUPPORT if law.kind in ("callees", "call_edge") else MIN_SUPPORT
        assert law.kind in ("log_template", "log_templates") or law.support >= floor, law.label()


def test_quiet_low_traffic_window_breaks_no_call_graph_law(
    con: duckdb.DuckDBPyConnection, laws: list[Invariant]
) -> None:
    assert _edge_violations(check(con, laws, at(90), at(CHANGE_MIN))) == {}


def test_an_edge_removed_midway_is_seen_by_its_silence(con: duckdb.DuckDBPyConnection, laws: list[Invariant]) -> None:
    # half the window still has the calls: the window's count alone is not below half its law
    found = _edge_violations(check(con, laws, at(90), at(END_MIN)))
    vanished = found[("call_edge", "api:POST /items")]
    assert vanished.invariant.subject == "worker:Validate"
    assert "no call on the last" in vanished.text
    assert vanished.change_ns is not None
    assert abs(vanished.change_ns - at(CHANGE_MIN)) < 3 * NS_MIN  # the first parent without the call
    assert vanished.p_value < 1e-6


def test_a_new_edge_of_a_low_traffic_caller_is_found(con: duckdb.DuckDBPyConnection, laws: list[Invariant]) -> None:
    found = _edge_violations(check(con, laws, at(90), at(END_MIN)))
    new = found[("callees", "api:GET /items")]
    assert new.evidence["new_callee"] == "db:insert"
    assert 0.1 < new.exceptions / new.trials < 0.4  # half the requests of the last half window
