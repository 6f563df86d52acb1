"""Parameter recovery: how close a fitted twin came to the scenario that generated its telemetry.

Only benchmarks and tests call this (the fitter never sees the true scenario). Edges are
(caller, callee) pairs of the call graph; an edge of the truth counts as present when its
probability is positive (a latent, fault-only edge is not part of the graph). The service
time is compared by the median, the servers by the count, both as relative errors, and only
for operations the twin fitted (stubs are counted apart).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.scenario import Scenario
from twin.fit import TwinFit


@dataclass(frozen=True)
class Recovery:
    found: int
    missed: list[tuple[str, str]]
    invented: list[tuple[str, str]]
    median_err: dict[str, float]
    """Operation -> |fitted median / true median - 1| (fitted operations only)."""
    servers_err: dict[str, float]
    """Operation -> |fitted / true servers - 1| for operations whose queue identified the count."""
    servers_bound_ok: dict[str, bool]
    """Operation -> whether a lower-bound count (no queue formed) is at most the true count."""

    @property
    def precision(self) -> float:
        return self.found / max(self.found + len(self.invented), 1)

    @property
    def recall(self) -> float:
        return self.found / max(self.found + len(self.missed), 1)


def edges_of(scenario: Scenario) -> set[tuple[str, str]]:
    """The (caller, callee) pairs a scenario's call graph has."""
    return {(ref, c.to) for ref in scenario.operation_refs() for c in scenario.operation(ref).calls if c.prob > 0}


def recovery(truth: Scenario, fit: TwinFit, reachable: set[tuple[str, str]] | None = None) -> Recovery:
    """Compare ``fit`` with ``truth``; ``reachable`` limits the true edges to those the window could show."""
    true_edges = edges_of(truth) if reachable is None else reachable
    got = {(e.caller, e.callee) for e in fit.edges}
    med: dict[str, float] = {}
    srv: dict[str, float] = {}
    bound: dict[str, bool] = {}
    refs = set(truth.operation_refs())
    for ref, op in fit.ops.items():
        if ref not in refs or op.stub is not None:
            continue
        t = truth.operation(ref)
        if op.median_ms is not None:
            med[ref] = abs(op.median_ms / t.service_time.median_ms - 1)
        if op.servers is not None:
            if op.servers.identified:
                srv[ref] = abs(op.servers.servers / t.servers - 1)
            else:
                bound[ref] = op.servers.servers <= t.servers
    return Recovery(len(got & true_edges), sorted(true_edges - got), sorted(got - true_edges), med, srv, bound)
