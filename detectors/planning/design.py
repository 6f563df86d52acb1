"""A plan checked before any code exists: boundary rules, the call graph, invariants and SLO physics.

``check_design(contract, facts)`` takes the contract's new edges and operations and asks
of the system *after* the change:

- every boundary rule of the spec (``boundaries``): a forbidden edge between layers (the
  BFF writing the database), a required path (a write that skips the domain gate), a
  requirement on a layer's operations (auth verified by a child call, an attribute
  present) for every operation the plan adds, touches or takes a call away from;
- ``every-service-has-a-layer``: a service the plan names but the layer map does not;
- ``call-graph-stays-acyclic``: a new edge closing a cycle;
- ``slo-within-the-dependency-chain``: a latency SLO below the floor its calls put under
  it at their current latencies (``feasibility.latency_floor``);
- ``invariants-kept-or-declared-removed``: a call taken away that a law requires, unless
  the contract declares that law removed (and a held law the plan itself breaks).

Each violation names the rule it breaks and the contract field that carries it. Before
that, ``validate_plan`` refuses a plan that names operations nobody knows (neither the spec
nor the baseline has them, and the contract does not mark them ``added``) or invariants
that do not parse: a :class:`PlanError` naming each field (a usage error, not a verdict).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict

from detectors.invariants.contract_laws import LawError, parse_law
from detectors.judge.contract import Contract, ContractError
from detectors.judge.contract_invariants import contract_law_errors
from detectors.planning.facts import SystemFacts
from detectors.planning.feasibility import Floor, Wait, latency_floor

__all__ = [
    "BUILTIN_RULES",
    "DesignResult",
    "DesignViolation",
    "PlanError",
    "RuleCheck",
    "check_design",
    "validate_plan",
]

ViolationKind = Literal["forbidden_edge", "required_path", "requirement", "layer", "cycle", "slo", "invariant"]
BUILTIN_RULES: dict[str, ViolationKind] = {
    "every-service-has-a-layer": "layer",
    "call-graph-stays-acyclic": "cycle",
    "slo-within-the-dependency-chain": "slo",
    "invariants-kept-or-declared-removed": "invariant",
}


class PlanError(ContractError):
    """A plan that cannot be checked (unknown operations, unparseable invariants); the message names each field."""


class DesignViolation(BaseModel):
    """One rule the plan breaks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    kind: ViolationKind
    subject: str
    """The edge ("a:x -> b:y") or operation concerned."""
    field: str
    """The contract field that carries it, e.g. ``calls.present.0``."""
    text: str


class RuleCheck(BaseModel):
    """A rule that was checked, and how many violations it found (0: kept)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    kind: ViolationKind
    violations: int
    checked: bool = True
    """False when the rule could not be judged (SLO floors without baselines)."""


class DesignResult(BaseModel):
    """The design check's answer: accepted when no rule is broken."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    change: str
    accepted: bool
    violations: list[DesignViolation]
    rules: list[RuleCheck]
    notes: list[str]


def _svc(op: str) -> str:
    return op.partition(":")[0]


def _opname(op: str) -> str:
    return op.partition(":")[2]


def _matches(op: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(_opname(op), p) for p in patterns)


def validate_plan(contract: Contract, facts: SystemFacts) -> None:
    """Raise :class:`PlanError` naming every unknown operation and unresolvable invariant of ``contract``."""
    known = set(facts.operations)
    added = {o.name for o in contract.operations if o.added}
    everything = known | added
    hint = "not in the spec or the baseline window; mark it `added: true` if the change adds it"
    problems = [
        f"operations.{i}.name: unknown operation {o.name!r} ({hint})"
        for i, o in enumerate(contract.operations)
        if o.name not in everything
    ]
    for group, edges in (("present", contract.calls.present), ("removed", contract.calls.removed)):
        pool = everything if group == "present" else known
        for i, e in enumerate(edges):
            for end, op in (("from", e.caller), ("to", e.callee)):
                if op not in pool:
                    problems.append(f"calls.{group}.{i}.{end}: unknown operation {op!r} ({hint})")
    problems += contract_law_errors(contract, facts.laws)
    for group, names in (("held", contract.invariants.held), ("removed", contract.invariants.removed)):
        for i, name in enumerate(names):
            try:
                law = parse_law(name)
            except LawError:
                continue  # reported above
            if law.operation is not None and f"{law.service}:{law.operation}" not in everything:
                problems.append(f"invariants.{group}.{i}: {name!r} names unknown operation {law.entity!r}")
    if problems:
        source = f" {contract.change!r}" if contract.change else ""
        raise PlanError(f"plan{source} names what the system does not have:\n  " + "\n  ".join(problems))


class _Graph:
    """The call graph after the change: the facts' edges, plus the plan's, minus those it removes."""

    def __init__(self, contract: Contract, facts: SystemFacts) -> None:
        removed = {(e.caller, e.callee) for e in contract.calls.removed}
        self.callees = {op: {c for c in f.callees if (op, c) not in removed} for op, f in facts.operations.items()}
        self.required = {op: {c for c in f.required if (op, c) not in removed} for op, f in facts.operations.items()}
        self.mode: dict[tuple[str, str], Wait] = {}
        for op, f in facts.operations.items():
            for c in self.required[op]:
                self.mode[(op, c)] = Wait(c, "sequential" if f.sequential else "parallel")
        for e in contract.calls.present:
            self.callees.setdefault(e.caller, set()).add(e.callee)
            self.callees.setdefault(e.callee, set())
            if not e.optional and e.mode != "async":
                self.required.setdefault(e.caller, set()).add(e.callee)
                self.mode[(e.caller, e.callee)] = Wait(e.callee, e.mode)

    def path(self, start: str, goal: str) -> list[str] | None:
        """A call path start -> ... -> goal, or None."""
        stack, seen = [[start]], {start}
        while stack:
            trail = stack.pop()
            if trail[-1] == goal:
                return trail
            for nxt in sorted(self.callees.get(trail[-1], ()), reverse=True):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append([*trail, nxt])
        return None

    def waits(self, op: str) -> list[Wait]:
        return [self.mode[(op, c)] for c in sorted(self.required.get(op, ()))]


def _boundary(contract: Contract, facts: SystemFacts, out: list[DesignViolation]) -> None:
    b = facts.spec.boundaries
    for i, e in enumerate(contract.calls.present):
        edge = f"{e.caller} -> {e.callee}"
        caller_layer = facts.layer_of(_svc(e.caller))
        for f in b.forbidden_edges:
            if (
                caller_layer == f.from_layer
                and _svc(e.callee) in b.services(f.to_layer)
                and _matches(e.callee, f.operations)
            ):
                text = f"{f.from_layer} must not call {f.to_layer} ({', '.join(f.operations)}): {edge}"
                out.append(
                    DesignViolation(
                        rule=f.name, kind="forbidden_edge", subject=edge, field=f"calls.present.{i}", text=text
                    )
                )
        for r in b.required_paths:
            allowed = {s for layer in r.via for s in b.services(layer)}
            if (
                _svc(e.callee) in b.services(r.to_layer)
                and _matches(e.callee, r.operations)
                and _svc(e.caller) not in allowed
            ):
                text = (
                    f"{r.to_layer} {', '.join(r.operations)} only via {', '.join(r.via)}; "
                    f"{e.caller} is in {caller_layer or 'no layer'}"
                )
                out.append(
                    DesignViolation(
                        rule=r.name, kind="required_path", subject=edge, field=f"calls.present.{i}", text=text
                    )
                )


def _requirements(contract: Contract, facts: SystemFacts, graph: _Graph, out: list[DesignViolation]) -> None:
    b = facts.spec.boundaries
    fields = {o.name: f"operations.{i}" for i, o in enumerate(contract.operations)}
    for i, e in enumerate(contract.calls.removed):
        fields.setdefault(e.caller, f"calls.removed.{i}")
    declared = {o.name: set(o.span_attributes) for o in contract.operations}
    for op, field in fields.items():
        known = facts.operations.get(op)
        for q in b.requirements:
            if q.span_kind != "SERVER" or _svc(op) not in b.services(q.layer) or not _matches(op, q.operations):
                continue
            if q.child is not None and q.child not in graph.required.get(op, set()):
                text = f"{op} must call {q.child} on every request ({q.layer} {', '.join(q.operations)})"
                out.append(DesignViolation(rule=q.name, kind="requirement", subject=op, field=field, text=text))
            attrs = declared.get(op, set()) | set(known.attributes if known else ())
            if q.attribute is not None and q.attribute not in attrs:
                text = f"{op} must carry {q.attribute} on its spans: list it in the operation's span_attributes"
                out.append(DesignViolation(rule=q.name, kind="requirement", subject=op, field=field, text=text))


def _layers(contract: Contract, facts: SystemFacts, out: list[DesignViolation]) -> None:
    if not facts.spec.boundaries.layers:
        return
    named = [(f"operations.{i}.name", o.name) for i, o in enumerate(contract.operations)]
    named += [
        (f"calls.present.{i}.{end}", op)
        for i, e in enumerate(contract.calls.present)
        for end, op in (("from", e.caller), ("to", e.callee))
    ]
    seen: set[str] = set()
    for field, op in named:
        service = _svc(op)
        if facts.layer_of(service) is None and service not in seen:
            seen.add(service)
            text = f"service {service} is in no layer of the spec: add it to boundaries.layers so the rules apply"
            out.append(
                DesignViolation(rule="every-service-has-a-layer", kind="layer", subject=service, field=field, text=text)
            )


def _cycles(contract: Contract, graph: _Graph, out: list[DesignViolation]) -> None:
    for i, e in enumerate(contract.calls.present):
        back = graph.path(e.callee, e.caller)
        if back is not None:
            loop = " -> ".join([e.caller, *back])
            text = f"the new edge {e.caller} -> {e.callee} closes a cycle: {loop}"
            out.append(
                DesignViolation(
                    rule="call-graph-stays-acyclic",
                    kind="cycle",
                    subject=f"{e.caller} -> {e.callee}",
                    field=f"calls.present.{i}",
                    text=text,
                )
            )


def _floor(op: str, q: float, facts: SystemFacts, graph: _Graph, stack: tuple[str, ...] = ()) -> Floor:
    """The floor of ``op``'s q-quantile; operations without data get their own calls' floor."""

    def quantile(callee: str, level: float) -> float | None:
        known = facts.operations.get(callee)
        value = known.quantile_ms(level) if known else None
        if value is None and callee not in stack:
            sub = _floor(callee, level, facts, graph, (*stack, op))
            value = sub.value_ms if sub.method != "none" else None
        return value

    return latency_floor(graph.waits(op), q, quantile)


def _slos(contract: Contract, facts: SystemFacts, graph: _Graph, out: list[DesignViolation]) -> None:
    for i, o in enumerate(contract.operations):
        if o.slo.latency_ms is None:
            continue
        floor = _floor(o.name, o.slo.quantile, facts, graph)
        if floor.value_ms > o.slo.latency_ms:
            label = f"p{o.slo.quantile * 100:g}"
            how = "; ".join(f"{c} p{lvl * 100:.3g} {v:.3g} ms" for c, lvl, v in floor.parts)
            what = "its slowest call alone" if floor.method == "max" else f"its {len(floor.parts)} stages in a row"
            text = (
                f"{label} <= {o.slo.latency_ms:g} ms is below what the dependency chain delivers today: "
                f"{what} needs {floor.value_ms:.3g} ms ({how})"
            )
            out.append(
                DesignViolation(
                    rule="slo-within-the-dependency-chain",
                    kind="slo",
                    subject=o.name,
                    field=f"operations.{i}.slo.latency_ms",
                    text=text,
                )
            )


def _invariants(contract: Contract, facts: SystemFacts, out: list[DesignViolation]) -> None:
    removed_laws = set()
    for name in contract.invariants.removed:
        try:
            removed_laws.add(parse_law(name).id)
        except LawError:
            continue
    required = {(law.entity, law.subject): law for law in facts.laws if law.kind == "required_child" and law.operation}
    cut = {(e.caller, e.callee): i for i, e in enumerate(contract.calls.removed)}
    rule = "invariants-kept-or-declared-removed"
    for (caller, callee), i in cut.items():
        law = required.get((caller, callee))
        if law is not None and law.id not in removed_laws:
            text = (
                f"removing {caller} -> {callee} breaks the law '{caller} calls {callee}': "
                "declare it in invariants.removed"
            )
            out.append(
                DesignViolation(
                    rule=rule, kind="invariant", subject=f"{caller} -> {callee}", field=f"calls.removed.{i}", text=text
                )
            )
    for i, name in enumerate(contract.invariants.held):
        try:
            law = parse_law(name)
        except LawError:
            continue
        if law.kind == "required_child" and (law.entity, law.subject) in cut:
            text = f"'{name}' is declared held but the plan removes that call"
            out.append(
                DesignViolation(rule=rule, kind="invariant", subject=name, field=f"invariants.held.{i}", text=text)
            )


def check_design(contract: Contract, facts: SystemFacts) -> DesignResult:
    """Every design rule over the plan (see the module docstring); raises PlanError for an invalid plan."""
    validate_plan(contract, facts)
    graph = _Graph(contract, facts)
    found: list[DesignViolation] = []
    _layers(contract, facts, found)
    _boundary(contract, facts, found)
    _requirements(contract, facts, graph, found)
    _cycles(contract, graph, found)
    _slos(contract, facts, graph, found)
    _invariants(contract, facts, found)
    b = facts.spec.boundaries
    kinds: list[tuple[str, ViolationKind]] = [(r.name, "forbidden_edge") for r in b.forbidden_edges]
    kinds += [(r.name, "required_path") for r in b.required_paths] + [(r.name, "requirement") for r in b.requirements]
    kinds += list(BUILTIN_RULES.items())
    floors = facts.window is not None  # SLO floors need today's latencies
    rules = [
        RuleCheck(rule=r, kind=k, violations=sum(v.rule == r for v in found), checked=floors or k != "slo")
        for r, k in kinds
    ]
    notes = [
        f"spec call_graph: add {e.callee} to the calls of {e.caller} once shipped"
        for e in contract.calls.present
        if e.caller not in facts.operations or e.callee not in facts.operations[e.caller].callees
    ]
    notes += [
        f"{o.name} is marked added but the spec or the baseline already has it"
        for o in contract.operations
        if o.added and o.name in facts.operations
    ]
    if not floors:
        notes.append("no baselines (no store): SLO floors of the dependency chain not checked")
    return DesignResult(change=contract.change, accepted=not found, violations=found, rules=rules, notes=notes)
