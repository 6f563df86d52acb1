"""The layers of DESIGN.md, enforced: each package imports only the stages before it.

``collector.store`` is the one store-access layer (connections, migrations, Arrow reads) that every
stage owning tables may use; the rest of ``collector`` is ingest and stays private to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "collector", "analysis", "detectors", "controller", "investigations", "reports", "simulator", "dashboards",
    "remediation",
)  # fmt: skip

STORE_LAYER = "collector.store"
FORBIDDEN: dict[str, set[str]] = {
    "collector": set(PACKAGES) - {"collector"},
    "analysis": {"detectors", "controller", "investigations", "reports", "dashboards", "simulator", "remediation"},
    "detectors": {"collector", "controller", "investigations", "reports", "dashboards", "simulator", "remediation"},
    "investigations": {"controller", "reports", "dashboards", "remediation"},
    "reports": {"detectors", "controller", "dashboards", "remediation"},
    "simulator": {"analysis", "detectors", "controller", "investigations", "reports", "dashboards", "remediation"},
    "dashboards": {"collector", "analysis", "detectors", "investigations", "reports", "simulator", "remediation"},
    "controller": set(),
    # remediation (patch apply, the test runner, the gym's remediation round) sits beside the gym: only the
    # CLI and the benchmarks import it
    "remediation": {"controller", "reports", "dashboards"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names if alias.name != STORE_LAYER)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != STORE_LAYER:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_respect_the_layers(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    violations = [
        f"{path.relative_to(ROOT)} imports {bad}"
        for path in files
        for bad in sorted(_imported_packages(path) & FORBIDDEN[package])
    ]
    assert violations == []
