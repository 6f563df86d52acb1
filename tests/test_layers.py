"""The layers of DESIGN.md, enforced: each package imports only the stages before it, and no
module imports itself back through any chain, lazy (function-level) imports included.

``store`` is the bottom layer: every table's schema, migrations and queries; every stage that
reads or writes tables goes through it, and it imports no other package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "store", "collector", "analysis", "detectors", "controller", "investigations", "reports", "simulator",
    "dashboards", "adversary", "remediation", "twin",
)  # fmt: skip

FORBIDDEN: dict[str, set[str]] = {
    "store": set(PACKAGES) - {"store"},
    "collector": set(PACKAGES) - {"collector", "store"},
    "analysis": {
        "collector",
        "detectors",
        "controller",
        "investigations",
        "reports",
        "dashboards",
        "simulator",
        "remediation",
    },
    "detectors": {"collector", "controller", "investigations", "reports", "dashboards", "simulator", "remediation"},
    "investigations": {"collector", "controller", "reports", "dashboards", "adversary", "remediation"},
    "reports": {"collector", "detectors", "controller", "dashboards", "adversary", "remediation"},
    "simulator": {
        "analysis",
        "detectors",
        "controller",
        "investigations",
        "reports",
        "dashboards",
        "adversary",
        "remediation",
    },
    "dashboards": {
        "store",
        "collector",
        "analysis",
        "detectors",
        "investigations",
        "reports",
        "simulator",
        "remediation",
    },
    "adversary": {"controller", "collector", "reports", "dashboards", "remediation"},
    "controller": set(),
    # remediation (patch apply, the test runner, the gym's remediation round) sits beside the gym: only the
    # CLI and the benchmarks import it
    "remediation": {"controller", "reports", "dashboards"},
    # the digital twin fits scenarios from the store and runs them in the simulator; only the CLI imports it
    "twin": {"controller", "collector", "investigations", "reports", "dashboards", "adversary"},
}
for _package in PACKAGES:
    if _package not in ("twin", "controller"):
        FORBIDDEN[_package].add("twin")
"""Packages each package must not import (controller wires everything; nothing imports adversary
but the CLI)."""


def _modules() -> dict[str, Path]:
    """Every first-party module by dotted name (packages by their ``__init__``)."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """First-party modules ``name`` imports anywhere in its body (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the module pkg.mod when there is one, else a name of pkg.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for imported in targets:
            target = imported
            while target and target not in MODULES:  # ``import a.b.c`` of a name: its nearest module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_respect_the_layers(package: str) -> None:
    violations = [
        f"{MODULES[name].relative_to(ROOT)} imports {target}"
        for name, targets in GRAPH.items()
        if name.split(".")[0] == package
        for target in sorted(targets)
        if target.split(".")[0] in FORBIDDEN[package]
    ]
    assert violations == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    """No chain of imports (lazy ones included) leads from a module of ``package`` back to itself."""
    cycles = [c for c in _cycles(GRAPH) if any(m.split(".")[0] == package for m in c)]
    assert cycles == []


SQL_CALL = re.compile(r"\.execute\(|fetch_arrow\(|\.sql\(")
SQL_OUTSIDE_STORE = {
    # The analysis SQL that computes the rollups and reads signals from them, and the profiles the
    # invariant checks, the gate's samples and planning's facts aggregate: portable aggregates over
    # the local DuckDB store. They stay DuckDB-only with the ClickHouse plane (issue 22): its
    # rollups run in store/rollups_clickhouse.py and each run mirrors its window into the local
    # store (store/plane_mirror.py), so these read the same tables in both modes.
    "analysis.metric_rollup", "analysis.rollup", "analysis.series",
    "detectors.invariants.attributes", "detectors.invariants.boundaries", "detectors.invariants.conservation",
    "detectors.invariants.contract_laws", "detectors.invariants.logs", "detectors.invariants.physics",
    "detectors.invariants.slo", "detectors.invariants.sqltext", "detectors.invariants.structure",
    "detectors.invariants.telemetry_contract", "detectors.judge.samples", "detectors.planning.facts",
    # The investigation snapshot: the tool belt's user-facing run_sql, on a pinned read-only copy.
    "investigations.snapshot",
}  # fmt: skip
"""Modules outside store/ that run SQL. Exactly these: a module that stops is taken off, and a new
one fails here (the store layer's named functions are where SQL against the tables goes)."""


def test_sql_runs_in_the_store_layer_and_the_listed_modules_only() -> None:
    running = {
        name for name, path in MODULES.items() if name.split(".")[0] != "store" and SQL_CALL.search(path.read_text())
    }
    assert running == SQL_OUTSIDE_STORE
