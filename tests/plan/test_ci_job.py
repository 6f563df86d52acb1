"""infra/ci/plan.yml: the checklist job runs before the canary gate, and its shell steps run for real on the example."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from receipts_repo import EXAMPLE, ROOT, SPEC, git, make_repo, run_pytest

WORKFLOW = ROOT / "infra" / "ci" / "plan.yml"


def _workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name") == name)


def test_the_job_runs_after_the_tests_on_every_pull_request() -> None:
    wf = _workflow()
    assert "pull_request" in wf[True]  # YAML 1.1 reads the key `on` as true
    jobs = wf["jobs"]
    check = jobs["plan-check"]
    assert check["needs"] == "tests" and check["if"].startswith("always()")  # a failed test run is evidence too
    assert check["steps"][0]["with"]["fetch-depth"] == 0
    assert "--junitxml=junit.xml" in _step(jobs["tests"], "Run the tests (JUnit XML)")["run"]
    assert check["env"]["CI_STATUS"] == "${{ needs.tests.result }}"
    gate = yaml.safe_load((ROOT / "infra" / "ci" / "gate.yml").read_text(encoding="utf-8"))
    assert gate[True].keys() == {"deployment_status", "workflow_dispatch"}  # the gate comes later, on the canary


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    full = {**os.environ, "PATH": path, **env}
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=full, capture_output=True, text=True, check=False)


def test_the_checklist_step_runs_on_the_worked_example(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")  # as actions/checkout with fetch-depth 0 leaves it
    (repo / "contracts").mkdir()
    shutil.copy(EXAMPLE / "receipts.yaml", repo / "contracts" / "receipts.yaml")
    assert run_pytest(repo, repo / "junit.xml") == 0
    job = _workflow()["jobs"]["plan-check"]
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {"CONTRACT": "contracts/receipts.yaml", "SPEC": str(SPEC), "FAIL_ON": "fail", "BASE_REF": "main",
           "CI_STATUS": "success", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
           "CHECKPOINT_DISABLE": "1"}  # fmt: skip
    ran = _run(_step(job, "Run the checklist")["run"], repo, env)
    assert ran.returncode == 0, ran.stderr
    assert output.read_text().strip() == "status=0", ran.stdout + ran.stderr
    text = summary.read_text()
    assert text.startswith("### driftscope plan check: **PASS**")
    assert "| pass | e2e tests |" in text and "| pass | terraform infra |" in text
    assert "| not_checked | slo-within-the-dependency-chain |" in text  # no store in CI: no baselines
    verdict = _step(job, "Verdict")["run"]
    assert _run(verdict, repo, {"STATUS": "0"}).returncode == 0
    failed = _run(verdict, repo, {"STATUS": "1"})
    assert failed.returncode == 1 and "checklist FAILED" in failed.stdout
    missing = _run(verdict, repo, {"STATUS": "3"})  # e.g. the tests never reported (test_plan_cli: exit 3)
    assert missing.returncode == 3 and "evidence missing" in missing.stdout
