"""Spec drift: a committed spec against observed behaviour.

Three answers: declared invariants (and boundary rules) that the window violates;
invariants the window supports that the spec does not declare (suggestions to add);
declared invariants the window never exercised (their operation or service was absent:
the spec may be stale).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from detectors.invariants.boundaries import check_boundaries
from detectors.invariants.model import Invariant, Violation
from detectors.invariants.monitor import check, exercised, extract
from detectors.invariants.slo import check_slos
from detectors.invariants.spec import Spec


@dataclass(frozen=True)
class SpecCheck:
    violated: list[Violation]
    undeclared: list[Invariant]
    stale: list[Invariant]


def check_spec(con: duckdb.DuckDBPyConnection, spec: Spec, start_ns: int, end_ns: int) -> SpecCheck:
    """Violated, undeclared and stale invariants of ``spec`` over [start, end)."""
    declared = spec.to_invariants()
    violated = check(con, declared, start_ns, end_ns) + check_boundaries(con, spec, start_ns, end_ns)
    violated += check_slos(con, spec.slos, start_ns, end_ns)
    ids = {i.id for i in declared}
    undeclared = [i for i in extract(con, start_ns, end_ns) if i.id not in ids]
    stale = [i for i, seen in zip(declared, exercised(con, declared, start_ns, end_ns), strict=True) if not seen]
    return SpecCheck(violated, undeclared, stale)
