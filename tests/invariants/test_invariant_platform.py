"""The layered platform's worked-example spec: boundary faults are found, the quiet platform raises nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analysis import Window
from detectors.findings import Finding
from detectors.invariants.monitor import detect_invariants
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

SPEC = Path(__file__).resolve().parents[2] / "simulator" / "specs" / "platform.yaml"
NS_MIN = 60_000_000_000


def _t(minute: int) -> dt.datetime:
    return dt.datetime.fromtimestamp((DEFAULT_START_NS + minute * NS_MIN) / 1e9, dt.UTC).replace(tzinfo=None)


def _findings(tmp_path: Path, name: str) -> list[Finding]:
    """Twenty minutes of the scenario from its fault start (minute 240), checked against the spec."""
    scenario = load_scenario(name)
    scenario = scenario.model_copy(update={"arrivals": scenario.arrivals.model_copy(update={"rate_per_s": 4.0})})
    store = Store(tmp_path / f"{name}.duckdb")
    simulate(scenario, StoreSink(store), hours=260 / 60, from_minute=240, seed=4)
    try:
        return detect_invariants(store.cursor(), Window(_t(240), _t(260), 60), SPEC)
    finally:
        store.close()


def test_bff_writing_the_database_breaks_the_forbidden_edge_and_the_call_graph(tmp_path: Path) -> None:
    found = _findings(tmp_path, "platform-bff-writes")
    boundary = {f.signal.metric: f for f in found if f.detector == "boundary"}
    assert set(boundary) == {"bff-never-writes-the-database", "writes-pass-the-domain-gate"}
    rule = boundary["bff-never-writes-the-database"]
    assert rule.severity == "critical" and rule.evidence["trace_ids"]
    assert "web-bff" in {e["caller_service"] for e in rule.evidence["examples"]}
    edges = [f for f in found if f.detector == "invariant_call_edge" and f.signal.operation == "POST /orders"]
    assert [f.signal.metric for f in edges] == ["supabase-postgres:INSERT order"]


def test_skipping_auth_on_writes_breaks_the_requirement(tmp_path: Path) -> None:
    found = _findings(tmp_path, "platform-auth-skip")
    rules = {f.signal.metric for f in found if f.detector == "boundary"}
    assert rules == {"auth-verified-on-every-write"}
    edge = [f for f in found if f.detector == "invariant_call_edge" and f.signal.kind == "required_child"]
    assert edge and edge[0].signal.metric == "supabase-auth:VerifyJWT"


@pytest.mark.parametrize("name", ["platform-quiet"])
def test_the_quiet_platform_violates_nothing_in_its_spec(tmp_path: Path, name: str) -> None:
    assert [f"{f.detector} {f.effect_text}" for f in _findings(tmp_path, name)] == []
