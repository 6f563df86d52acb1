"""Boundary rules and SLOs of a hand-written spec on the mini system (hard rules: one counterexample suffices)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from invariant_scenario import FAULT_MIN, at

from detectors.invariants.boundaries import check_boundaries
from detectors.invariants.slo import check_slos
from detectors.invariants.spec import parse_spec

SPEC = """
boundaries:
  layers:
    - {name: edge, services: [api]}
    - {name: core, services: [worker]}
    - {name: data, services: [db]}
  forbidden_edges:
    - {name: edge-never-queries, from: edge, to: data, operations: ["query"]}
    - {name: edge-never-writes-core, from: edge, to: core, operations: ["Write*"]}
  required_paths:
    - {name: reads-via-core, to: data, operations: ["query"], via: [core]}
  requirements:
    - {name: kind-on-creates, layer: edge, operations: ["POST *"], attribute: item.kind}
    - {name: validated-creates, layer: edge, operations: ["POST *"], child: "worker:Validate"}
slos:
  - {service: api, operation: "GET /items", error_ratio_max: 0.0001}
  - {service: api, operation: "POST /items", error_ratio_max: 0.5, latency_p99_ms_max: 100000}
"""


@pytest.fixture(scope="module")
def con(mini_faults_store: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(mini_faults_store), read_only=True)


def test_rules_hold_before_the_faults(con: duckdb.DuckDBPyConnection) -> None:
    assert check_boundaries(con, parse_spec(SPEC), at(60), at(FAULT_MIN)) == []


def test_missing_attribute_and_child_break_their_requirements(con: duckdb.DuckDBPyConnection) -> None:
    found = {v.invariant.subject: v for v in check_boundaries(con, parse_spec(SPEC), at(FAULT_MIN), at(FAULT_MIN + 30))}
    assert set(found) == {"kind-on-creates", "validated-creates"}
    for v in found.values():
        assert v.detector == "boundary" and v.exceptions > 0 and v.evidence["trace_ids"]
        rows = con.execute(v.evidence["sql"]).fetchall()
        assert {r[0] for r in rows} == set(v.evidence["trace_ids"])
        assert v.change_ns is not None and v.change_ns >= at(FAULT_MIN)


def test_slo_over_its_objective_is_reported_and_a_generous_one_is_not(con: duckdb.DuckDBPyConnection) -> None:
    found = check_slos(con, parse_spec(SPEC).slos, at(60), at(FAULT_MIN))
    assert [(v.invariant.operation, v.detector) for v in found] == [("GET /items", "invariant_slo")]
    assert "error ratio" in found[0].text
    assert con.execute(found[0].evidence["sql"]).fetchall()
