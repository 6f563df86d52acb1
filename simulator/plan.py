"""The static plan of a scenario: operation tables and the unrolled call-site tree.

A *call site* is one edge of the call graph reached from one entrypoint along one path:
the same operation called from two places is two call sites sharing one queue. The tree
is listed in pre-order, so every parent precedes its children and siblings keep their
declared (sequential) order; the engine walks it forwards for start times and backwards
for durations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from simulator.scenario import Call, Distribution, Scenario

MAX_CALL_SITES = 2_000


@dataclass(frozen=True)
class CallSite:
    """One node of the unrolled call tree."""

    index: int
    op: int
    parent: int
    """Index of the parent call site, -1 for an entrypoint."""
    entry: int
    call: Call | None
    """The edge that leads here (None for an entrypoint)."""
    latent: bool = False
    """An edge that exists only while a call_edge 'add' fault is active."""


@dataclass(frozen=True)
class OpInfo:
    """Per-operation constants, indexed like ``Plan.ops``."""

    ref: str
    service: str
    name: str
    kind: str
    method: str
    servers: int
    error_rate: float
    service_time: Distribution
    mean_ms: float
    hold_ms: float
    """Expected slot holding time (own work + calls), ms; the engine then measures it."""
    const_attrs_json: str
    """The constant attributes as a JSON object body without braces (may be empty)."""


def mean_ms(d: Distribution) -> float:
    """Mean of a service-time distribution, tail included, in ms."""
    if d.dist == "lognormal":
        body = d.median_ms * float(np.exp(d.sigma**2 / 2))
    else:
        body = d.median_ms * d.shape / max(d.shape - 1.0 / 3.0, 1e-9)  # median ~ mean (k - 1/3)/k
    tail = d.tail_scale * d.median_ms * d.tail_alpha / (d.tail_alpha - 1)
    return (1 - d.tail_prob) * body + d.tail_prob * tail


def sample_ms(rng: np.random.Generator, d: Distribution, n: int) -> np.ndarray:
    """``n`` draws of a service-time distribution, in ms (float64)."""
    if d.dist == "lognormal":
        out = d.median_ms * np.exp(d.sigma * rng.standard_normal(n))
    else:
        scale = d.median_ms / max(d.shape - 1.0 / 3.0, 1e-9)
        out = rng.gamma(d.shape, scale, n)
    if d.tail_prob > 0:
        tail = rng.random(n) < d.tail_prob
        pareto = d.tail_scale * d.median_ms * (1 + rng.pareto(d.tail_alpha, int(tail.sum())))
        out[tail] = pareto
    return out


def _json_body(attrs: dict[str, str | int | bool]) -> str:
    return orjson.dumps(attrs).decode()[1:-1]


def expected_hold_ms(scenario: Scenario, refs: list[str]) -> dict[str, float]:
    """Mean time an invocation holds its server slot, ms: own work plus its calls.

    A synchronous server keeps the worker busy while it waits for its callees, so the
    queue in front of an operation sees this holding time, not only the own work.
    """
    memo: dict[str, float] = {}

    def hold(ref: str) -> float:
        if ref not in memo:
            op = scenario.operation(ref)
            total = mean_ms(op.service_time)
            for call in op.calls:
                fan = call.fanout if isinstance(call.fanout, int) else (call.fanout[0] + call.fanout[1]) / 2
                per_call = 0.6 if call.mode == "async" else min(hold(call.to) + 0.6, call.timeout_ms)
                total += call.prob * (per_call * fan if call.mode == "sequential" else per_call)
            memo[ref] = total
        return memo[ref]

    return {ref: hold(ref) for ref in refs}


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    ops: list[OpInfo]
    op_index: dict[str, int]
    sites: list[CallSite]
    services: list[str]

    @classmethod
    def compile(cls, scenario: Scenario) -> Plan:
        refs = scenario.operation_refs()
        op_index = {r: i for i, r in enumerate(refs)}
        ops = []
        holds = expected_hold_ms(scenario, refs)
        for ref in refs:
            service, _, name = ref.partition(":")
            op = scenario.operation(ref)
            ops.append(
                OpInfo(
                    ref=ref,
                    service=service,
                    name=name,
                    kind=op.kind,
                    method=op.method,
                    servers=op.servers,
                    error_rate=op.error_rate,
                    service_time=op.service_time,
                    mean_ms=mean_ms(op.service_time),
                    hold_ms=holds[ref],
                    const_attrs_json=_json_body(dict(op.attributes)),
                )
            )
        latent: dict[str, list[Call]] = {}
        for fault in scenario.faults:
            if fault.kind == "call_edge" and fault.change == "add" and fault.to:
                latent.setdefault(fault.target, []).append(Call(to=fault.to, prob=0.0))
        sites: list[CallSite] = []

        def unroll(ref: str, parent: int, entry: int, call: Call | None, is_latent: bool) -> None:
            if len(sites) >= MAX_CALL_SITES:
                raise ValueError(f"the call graph unrolls to more than {MAX_CALL_SITES} call sites")
            index = len(sites)
            sites.append(CallSite(index, op_index[ref], parent, entry, call, is_latent))
            for child in scenario.operation(ref).calls:
                unroll(child.to, index, entry, child, False)
            for child in latent.get(ref, []):
                unroll(child.to, index, entry, child, True)

        for e, ep in enumerate(scenario.entrypoints):
            unroll(ep.operation, -1, e, None, False)
        return cls(scenario, ops, op_index, sites, list(scenario.services))
