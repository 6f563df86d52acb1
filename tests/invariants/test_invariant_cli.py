"""The command line: invariants extract / check and contract, on a real store (click's runner)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import yaml
from click.testing import CliRunner
from invariant_scenario import FAULT_MIN, at

from controller.cli_invariants import contract, invariants
from detectors.invariants.spec import parse_spec


def test_extract_writes_a_spec_and_check_reports_the_faults(mini_faults_store: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.duckdb"
    full.write_bytes(mini_faults_store.read_bytes())
    quiet = tmp_path / "quiet.duckdb"  # the same telemetry up to the faults (minute 120)
    quiet.write_bytes(mini_faults_store.read_bytes())
    con = duckdb.connect(str(quiet))
    con.execute("DELETE FROM spans WHERE start_time >= make_timestamp_ns($t)", {"t": at(FAULT_MIN)})
    con.execute("DELETE FROM logs WHERE time >= make_timestamp_ns($t)", {"t": at(FAULT_MIN)})
    con.close()
    runner = CliRunner()
    learned = runner.invoke(invariants, ["extract", "--store", str(quiet), "--window", "90m"])
    assert learned.exit_code == 0, learned.output
    spec = parse_spec(learned.stdout)  # stdout is a valid spec
    assert spec.call_graph and spec.invariants and spec.slos
    assert yaml.safe_load(learned.stdout)["version"] == 1
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(learned.stdout)
    # the last 30 minutes of the full store hold the faults: declared laws are violated, exit 1
    args = ["check", "--spec", str(spec_path), "--window", "30m"]
    checked = runner.invoke(invariants, [*args, "--store", str(full), "--format", "json"])
    assert checked.exit_code == 1, checked.output
    results = orjson.loads(checked.stdout)["results"]
    violated = [r for r in results if r["status"] == "violated"]
    assert any("item.kind" in r["invariant"] for r in violated)
    assert all(r["sql"].startswith("SELECT") for r in violated)
    # the quiet store's last 30 minutes keep the spec: exit 0
    holds = runner.invoke(invariants, [*args, "--store", str(quiet)])
    assert holds.exit_code == 0, holds.output
    assert "0 violated" in holds.output


def test_check_refuses_a_bad_spec_naming_the_field(mini_faults_store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("invariants:\n  - {kind: nonsense, service: api}\n")
    result = CliRunner().invoke(invariants, ["check", "--store", str(mini_faults_store), "--spec", str(bad)])
    assert result.exit_code == 1
    assert "invariants.0.kind" in result.output and "Traceback" not in result.output


def test_contract_scores_services_and_fails_under_the_threshold(mini_faults_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    store.write_bytes(mini_faults_store.read_bytes())
    runner = CliRunner()
    result = runner.invoke(contract, ["--store", str(store), "--window", "30m", "--format", "json", "--min-score", "0"])
    assert result.exit_code == 0, result.output
    rows = {r["service"]: r for r in orjson.loads(result.stdout)}
    assert rows["api"]["score"] == 100.0
    assert rows["worker"]["score"] < 90.0  # broken propagation from minute 120
    assert "started a new trace" in rows["worker"]["missing"]
    strict = runner.invoke(contract, ["--store", str(store), "--window", "30m", "--min-score", "95"])
    assert strict.exit_code == 1
    assert "worker" in strict.output
