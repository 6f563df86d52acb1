"""``driftscope plan``: the worked example end to end, its variants, and bad input (exit 4, never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import BASELINE_END, BASELINE_WINDOW
from receipts_repo import EXAMPLE, SPEC, make_repo, run_pytest

from controller.cli import main
from detectors.judge.contract import parse_contract
from detectors.planning.checklist import PlanVerdict
from detectors.planning.render import render_checklist

CONTRACT = EXAMPLE / "receipts.yaml"
REFUSED = EXAMPLE / "receipts-refused.yaml"
FEATURE = "Order receipts: when POST /api/orders accepts an order, store a receipt in object storage"
SIDES = ["--baseline", "version=3.4.0", "--candidate", "version=3.5.0", "--service", "domain-gate"]


def _plan(store: Path, *args: str) -> Result:
    base = ["--store", str(store), "--spec", str(SPEC), "--end", BASELINE_END, "--window", BASELINE_WINDOW]
    return CliRunner().invoke(main, ["plan", args[0], *base, *args[1:]])


def _rows(result: Result) -> dict[str, dict[str, str]]:
    return {f"{r['section']}/{r['name']}": r for r in json.loads(result.output)["rows"]}


def test_the_refused_plan_names_the_rules_it_breaks(platform_store: Path) -> None:
    result = _plan(platform_store, "check-design", str(REFUSED), "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["accepted"] is False
    assert {v["rule"] for v in data["violations"]} == {"bff-never-writes-the-database", "writes-pass-the-domain-gate"}
    table = _plan(platform_store, "check-design", str(REFUSED))
    assert table.output.startswith("design: REFUSED (2 violation(s))")
    assert "REFUSED  bff-never-writes-the-database" in table.output


def test_the_accepted_plan_passes_design(platform_store: Path) -> None:
    result = _plan(platform_store, "check-design", str(CONTRACT), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("### driftscope plan check-design: **ACCEPTED**")


def test_the_playbook_drafts_a_valid_accepted_contract(platform_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "draft.yaml"
    call = "domain-gate:POST /api/orders -> supabase-storage:PutObject"
    result = _plan(platform_store, "draft", "--feature", FEATURE, "--call", call, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "design: ACCEPTED" in result.output  # the design check, on stderr (mixed into the runner's output)
    contract = parse_contract(out.read_text(encoding="utf-8"))
    ops = {o.name: o for o in contract.operations}
    assert set(ops) == {"domain-gate:POST /api/orders", "supabase-storage:PutObject"}
    assert ops["supabase-storage:PutObject"].added and not ops["domain-gate:POST /api/orders"].added
    assert {"enduser.id", "order.id"} <= set(ops["domain-gate:POST /api/orders"].span_attributes)
    assert ops["domain-gate:POST /api/orders"].slo.latency_ms and ops["domain-gate:POST /api/orders"].slo.basis
    assert "domain-gate:POST /api/orders calls supabase-auth:VerifyJWT" in contract.invariants.held
    assert contract.tests.match == ["receipt"] and contract.infrastructure.touched
    assert contract.rollback.to_version == "3.4.0" and contract.rollback.steps
    assert "http.server.request.duration" in contract.telemetry.histograms
    assert _plan(platform_store, "check-design", str(out)).exit_code == 0


def test_a_draft_breaking_a_rule_is_written_and_exits_1(platform_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "draft.yaml"
    call = "web-bff:POST /orders -> supabase-postgres:INSERT receipt"
    result = _plan(platform_store, "draft", "--feature", "receipts rows", "--call", call, "--out", str(out))
    assert result.exit_code == 1 and "bff-never-writes-the-database" in result.output
    assert parse_contract(out.read_text()).calls.present[0].callee == "supabase-postgres:INSERT receipt"


def test_the_whole_checklist_passes_on_the_worked_example(
    platform_store: Path, receipts_repo: tuple[Path, Path]
) -> None:
    repo, junit = receipts_repo
    args = ["check", str(CONTRACT), "--repo", str(repo), "--junit", str(junit), "--ci-status", "success", *SIDES]
    result = _plan(platform_store, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["verdict"] == "pass" and data["change"].startswith("order receipts")
    rows = _rows(result)
    assert {r["section"] for r in rows.values()} == {"design", "behaviour", "physics", "deployment"}
    assert all(r["outcome"] == "pass" for r in rows.values()), [r for r in rows.values() if r["outcome"] != "pass"]
    for key in ("behaviour/e2e tests", "physics/observability gate", "physics/invariant domain-gate:POST /api/orders "
                "calls supabase-storage:PutObject", "deployment/terraform infra", "deployment/rollback plan",
                "design/writes-pass-the-domain-gate"):  # fmt: skip
        assert key in rows
    md = render_checklist(PlanVerdict.model_validate(data), "markdown")  # what --format markdown prints
    assert md.startswith("### driftscope plan check: **PASS**") and "**Physics**" in md and "| pass | e2e tests |" in md


def test_a_failing_e2e_test_and_a_missed_slo_fail_the_change(platform_store: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    e2e = repo / "tests" / "e2e" / "test_receipt_flow.py"
    e2e.write_text(e2e.read_text().replace("assert stored ==", "assert stored !="), encoding="utf-8")
    junit = tmp_path / "junit.xml"
    assert run_pytest(repo, junit) == 1
    tight = tmp_path / "tight.yaml"
    tight.write_text(CONTRACT.read_text().replace("latency_ms: 150", "latency_ms: 40"), encoding="utf-8")
    result = _plan(
        platform_store, "check", str(tight), "--repo", str(repo), "--junit", str(junit), *SIDES, "--format", "json"
    )
    assert result.exit_code == 1, result.output
    rows = _rows(result)
    assert (
        rows["behaviour/e2e tests"]["outcome"] == "fail"
        and "test_every_accepted_order" in rows["behaviour/e2e tests"]["text"]
    )
    assert rows["physics/slo latency domain-gate:POST /api/orders"]["outcome"] == "fail"
    assert rows["physics/observability gate"]["outcome"] == "fail"
    assert rows["design/slo-within-the-dependency-chain"]["outcome"] == "pass"  # 40 ms was feasible before the change
    assert rows["deployment/CI"]["outcome"] == "not_checked"


def test_missing_evidence_and_undeclared_infrastructure(platform_store: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "infra" / "receipts.tf").unlink()
    no_infra = _plan(platform_store, "check", str(CONTRACT), "--repo", str(repo), "--format", "json")
    assert no_infra.exit_code == 1  # infrastructure declared touched, nothing under infra/ changed
    rows = _rows(no_infra)
    assert rows["deployment/infrastructure"]["outcome"] == "fail"
    assert rows["behaviour/tests"]["outcome"] == "insufficient"
    assert rows["physics/observability gate"]["outcome"] == "not_checked"
    quiet = tmp_path / "no-infra.yaml"
    quiet.write_text(CONTRACT.read_text().replace("touched: true", "touched: false"), encoding="utf-8")
    insufficient = _plan(platform_store, "check", str(quiet), "--repo", str(repo))
    assert insufficient.exit_code == 3, insufficient.output  # no test results: evidence missing, not a pass


def test_a_real_process_exits_with_the_verdict(platform_store: Path, receipts_repo: tuple[Path, Path]) -> None:
    repo, junit = receipts_repo
    cmd = [sys.executable, "-c", "from controller.cli import main; main()", "plan", "check", str(CONTRACT),
           "--store", str(platform_store), "--spec", str(SPEC), "--end", BASELINE_END, "--window", BASELINE_WINDOW,
           "--repo", str(repo), "--junit", str(junit), "--ci-status", "failure"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "deployment  fail" in proc.stdout and "status failure" in proc.stdout


@pytest.fixture()
def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "unknown.yaml": "operations: [{name: 'domain-gate:POST /api/refunds'}]\n",
        "malformed.yaml": (
            "operations:\n  - name: POST /api/orders\n    slo: {quantile: 2}\ncalls: {present: [{from: 'a:b'}]}\n"
        ),
        "notjunit.xml": "<html><body>coverage</body></html>",
        "checks.json": '{"check_runs": [{"name": 3}]}',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "plain").mkdir()
    return {name.split(".")[0]: tmp_path / name for name in [*files, "plain"]}


def test_bad_input_exits_4_naming_the_field_or_file(platform_store: Path, bad_files: dict[str, Path]) -> None:
    cases: list[tuple[list[str], list[str]]] = [
        (["check-design", str(bad_files["unknown"])], ["operations.0.name", "domain-gate:POST /api/refunds"]),
        (
            ["check-design", str(bad_files["malformed"])],
            ["operations.0.name", "operations.0.slo.quantile", "calls.present.0.to"],
        ),
        (["check", str(CONTRACT), "--junit", str(bad_files["notjunit"])], [str(bad_files["notjunit"]), "not JUnit"]),
        (
            ["check", str(CONTRACT), "--repo", str(bad_files["plain"])],
            [str(bad_files["plain"]), "not a git repository"],
        ),
        (["check", str(CONTRACT), "--ci-checks", str(bad_files["checks"])], ["--ci-checks", "check_runs.0"]),
        (["check", str(CONTRACT), "--baseline", "version=3.4.0", "--candidate", "nonsense"], ["--candidate"]),
        (["draft", "--feature", "x", "--call", "a -> b"], ["--call"]),
        (["draft", "--feature", "something vague"], ["--touch"]),
        (["draft", "--feature", "x", "--touch", "domain-gate:GET /nowhere"], ["--touch", "GET /nowhere", "--add"]),
        (["check", str(CONTRACT), "--baseline", "version=3.4.0"], ["--baseline and --candidate go together"]),
        (["check-design", str(CONTRACT), "--window", "forty"], ["--window"]),
        (["check-design", str(CONTRACT), "--no-such-option"], ["No such option"]),
    ]
    for args, needles in cases:
        result = _plan(platform_store, *args)
        assert result.exit_code == 4, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Traceback" not in result.output
        for needle in needles:
            assert needle in result.output, (args, result.output)


def test_a_missing_spec_or_store_is_a_usage_error(tmp_path: Path) -> None:
    store = str(tmp_path / "x.duckdb")
    no_spec = CliRunner().invoke(main, ["plan", "check-design", str(CONTRACT), "--store", store])
    assert no_spec.exit_code == 4 and "no spec: give --spec" in no_spec.output
    no_store = CliRunner().invoke(main, ["plan", "check-design", str(CONTRACT), "--store", store, "--spec", str(SPEC)])
    assert no_store.exit_code == 4 and "x.duckdb does not exist" in no_store.output
    result = CliRunner().invoke(main, ["plan", "check-design", str(CONTRACT), "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 4, result.output
    bad_spec = tmp_path / "spec.yaml"
    bad_spec.write_text("boundaries: {layers: [{name: x}]}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", "check-design", str(CONTRACT), "--spec", str(bad_spec)])
    assert result.exit_code == 4 and "boundaries.layers.0.services" in result.output
    draft = yaml.safe_load(CONTRACT.read_text())
    assert draft["service"] == "domain-gate"
