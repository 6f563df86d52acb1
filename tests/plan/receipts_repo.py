"""The worked example's service repository, built for real: a git repository and JUnit XML from pytest.

``make_repo`` copies ``examples/plan-receipts/project/base`` into a new git repository
(branch ``main``, "domain-gate 3.4.0"), then, on branch ``receipts``, the ``change``
overlay (the feature's code, its tests in every layer, a bucket in Terraform, the rollback
procedure) as a second commit. ``run_pytest`` runs the project's tests with the same Python
and writes their JUnit XML. Used by tests/plan and benchmarks/plan.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plan-receipts"
SPEC = ROOT / "simulator" / "specs" / "platform.yaml"
_ENV = {
    "GIT_AUTHOR_NAME": "Plan Test",
    "GIT_AUTHOR_EMAIL": "plan@example.invalid",
    "GIT_COMMITTER_NAME": "Plan Test",
    "GIT_COMMITTER_EMAIL": "plan@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` (no global or system configuration); its stdout."""
    env = {**os.environ, **_ENV}
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return proc.stdout


def make_repo(dst: Path, *, change: bool = True) -> Path:
    """The example repository at ``dst``: main with the base, branch receipts with the change (when ``change``)."""
    shutil.copytree(EXAMPLE / "project" / "base", dst)
    git(dst, "init", "-q", "-b", "main")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "domain-gate 3.4.0")
    git(dst, "checkout", "-q", "-b", "receipts")
    if change:
        shutil.copytree(EXAMPLE / "project" / "change", dst, dirs_exist_ok=True)
        git(dst, "add", "-A")
        git(dst, "commit", "-q", "-m", "order receipts")
    return dst


def run_pytest(project: Path, junit: Path) -> int:
    """Run the project's tests (its own pytest.ini) writing JUnit XML to ``junit``; pytest's exit status."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, check=False)
    if not junit.is_file():
        raise RuntimeError(f"pytest wrote no JUnit XML ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    return proc.returncode
