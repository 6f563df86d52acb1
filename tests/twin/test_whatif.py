"""What-if on the twin: the incident read off a live store as faults, and a patch judged by the gym's runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from remediation.whatif import Timing
from simulator.fork import Run
from simulator.patches import Patch, PatchError
from simulator.run import DEFAULT_START_NS
from simulator.scenario import parse_scenario
from simulator.sinks import StoreSink
from store import Store, open_readonly
from twin.whatif import incident_twin, twin_whatif

NS_PER_MIN = 60_000_000_000
WORLD = """
name = "twin-whatif"
description = "an API over a store; the store's release 3.2.0 makes reads 4x slower"
[arrivals]
rate_per_s = 8
diurnal_amplitude = 0.0
noise_sigma = 0.02
[[entrypoints]]
operation = "api:Get"
[services.api.operations.Get]
service_time = { median_ms = 3.0, sigma = 0.3 }
servers = 2
calls = [{ to = "store:Read", timeout_ms = 500 }]
[services.store]
version = "3.1.0"
[services.store.operations.Read]
kind = "rpc"
service_time = { median_ms = 4.0, sigma = 0.3 }
servers = 2
[[faults]]
kind = "latency_regression"
target = "store:Read"
magnitude = 3.0
deploy_version = "3.2.0"
start_min = 60
end_min = 200
"""
FAULT_MIN, NOW_MIN = 60, 80
TIMING = Timing(history_min=40, baseline_min=30, eval_min=12, eval_min_min=8)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A store holding an hour of the healthy system and the incident's first 20 minutes."""
    sc = parse_scenario(WORLD)
    path = tmp_path_factory.mktemp("twin-whatif") / "live.duckdb"
    store = Store(path)
    start = sc.start_ns(DEFAULT_START_NS)
    try:
        Run(sc, from_minute=0, seed=4, start_ns=start).advance(NOW_MIN, [StoreSink(store)])
    finally:
        store.close()
    return path, start


def test_the_incident_becomes_a_release_borne_fault_on_the_healthy_twin(live: tuple[Path, int]) -> None:
    path, start = live
    with open_readonly(path) as con:
        twin = incident_twin(con, start + FAULT_MIN * NS_PER_MIN, start + NOW_MIN * NS_PER_MIN, baseline_min=60)
    faults = twin.scenario.faults
    assert [(f.kind, f.target, f.deploy_version) for f in faults] == [("latency_regression", "store:Read", "3.2.0")]
    assert twin.scenario.services["store"].version == "3.1.0"  # the healthy twin runs the old release
    assert any("store:Read: own work x" in n for n in twin.changes.notes)


def test_a_rollback_fixes_the_twin_and_a_bad_patch_is_refused(live: tuple[Path, int], tmp_path: Path) -> None:
    path, start = live
    rollback = Patch.model_validate({"version": 1, "actions": [{"kind": "rollback", "service": "store"}]})
    with open_readonly(path) as con:
        out = twin_whatif(con, [rollback], start + FAULT_MIN * NS_PER_MIN, start + NOW_MIN * NS_PER_MIN, tmp_path,
                          timing=TIMING)  # fmt: skip
        assert out.results[0].result.verdict == "fixed", out.results[0].result.reasons
        bad = Patch.model_validate({"version": 1, "actions": [{"kind": "scale", "operation": "nope:X", "factor": 2}]})
        with pytest.raises(PatchError, match="nope:X"):
            twin_whatif(con, [bad], start + FAULT_MIN * NS_PER_MIN, start + NOW_MIN * NS_PER_MIN, tmp_path / "b",
                        timing=TIMING)  # fmt: skip


def test_cli_whatif_needs_one_incident_start(live: tuple[Path, int], tmp_path: Path) -> None:
    path, _ = live
    patch = tmp_path / "p.yaml"
    patch.write_text("version: 1\nactions:\n  - {kind: rollback, service: store}\n")
    result = CliRunner().invoke(main, ["whatif", "--store", str(path), "--patch", str(patch)])
    assert result.exit_code == 2
    assert "--since or --incident-start" in result.output


def test_cli_whatif_on_the_live_store(live: tuple[Path, int], tmp_path: Path) -> None:
    path, _ = live
    patch = tmp_path / "p.yaml"
    patch.write_text("version: 1\nactions:\n  - {kind: rollback, service: store}\n")
    result = CliRunner().invoke(main, ["whatif", "--store", str(path), "--patch", str(patch), "--since", "20m"])
    assert result.exit_code == 0, result.output
    assert "store:Read: own work x" in result.output
    assert "on the twin: " in result.output and "fixed" in result.output
