"""The checklist's evidence read from files: JUnit reports, CI check runs, and the repository of the change.

Each reader turns files into the values ``checklist`` judges, and bad files into errors
that name them (``EvidenceError``; ``JUnitError`` and ``RepoError`` are kinds of it for
the caller): nothing here decides a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from detectors.judge.contract import Contract
from detectors.planning.checklist import CheckRow, deployment_rows
from detectors.planning.junit import JUnitError, TestCase, parse_junit
from detectors.planning.repo import RepoError, changed_files, open_repo, read_text
from detectors.planning.terraform import TerraformReport, check_terraform, terraform_missing

__all__ = ["EvidenceError", "read_check_runs", "read_junit", "repository_rows"]

EvidenceError = (JUnitError, RepoError, ValueError)
"""What the readers raise for bad input (all ValueErrors naming the file or field)."""


def read_junit(paths: Sequence[str | Path]) -> list[TestCase]:
    """Every test case of the JUnit files (JUnitError naming a file that is missing or not JUnit)."""
    out: list[TestCase] = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise JUnitError(f"--junit {p}: no such file")
        out += parse_junit(path.read_bytes(), str(p))
    return out


def read_check_runs(path: str | Path) -> list[tuple[str, str, str | None]]:
    """(name, status, conclusion) per check run of a GitHub ``check-runs`` answer (``gh api .../check-runs``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--ci-checks {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--ci-checks {path} is not JSON: {exc}") from None
    runs = data.get("check_runs") if isinstance(data, dict) else data
    if not isinstance(runs, list):
        raise ValueError(f"--ci-checks {path}: expected GitHub's check-runs answer ({{'check_runs': [...]}})")
    out: list[tuple[str, str, str | None]] = []
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or not isinstance(run.get("name"), str) or not isinstance(run.get("status"), str):
            raise ValueError(f"--ci-checks {path}: check_runs.{i} needs string fields name and status")
        conclusion = run.get("conclusion")
        out.append((run["name"], run["status"], conclusion if isinstance(conclusion, str) else None))
    return out


def _terraform_dirs(repo: Path, contract: Contract, changed: Sequence[str]) -> list[str]:
    listed = contract.infrastructure.terraform
    dirs = listed or sorted({str(Path(p).parent) for p in changed if p.endswith(".tf") and (repo / p).is_file()})
    for i, d in enumerate(dirs):
        target = (repo / d).resolve()
        if not target.is_relative_to(repo.resolve()) or not target.is_dir():
            raise RepoError(f"infrastructure.terraform.{i}: {d!r} is not a directory of the repository")
    return dirs


def repository_rows(
    contract: Contract, repo_path: str | Path | None, base: str | None, ci: list[CheckRow], versions: set[str] | None
) -> list[CheckRow]:
    """The Deployment rows from the repository at ``repo_path`` (None: infrastructure and procedure not checked)."""
    if repo_path is None:
        why = "no repository given (--repo)"
        return deployment_rows(
            contract, changed=None, terraform=None, terraform_why_not=why, ci=ci,
            procedure_text=None, versions=versions,
        )  # fmt: skip
    repo = open_repo(repo_path)
    changed = changed_files(repo, base)
    dirs = _terraform_dirs(repo, contract, changed)
    reports: list[TerraformReport] | None = None
    why_not = "no Terraform in the change"
    if dirs:
        missing = terraform_missing()
        if missing is None:
            reports = [check_terraform(repo / d, d) for d in dirs]
        else:
            why_not = missing
    procedure = None
    if contract.rollback.procedure is not None:
        procedure = read_text(repo, contract.rollback.procedure, "rollback.procedure")
    return deployment_rows(
        contract, changed=changed, terraform=reports, terraform_why_not=why_not, ci=ci, procedure_text=procedure,
        versions=versions,
    )  # fmt: skip
