"""Ground truth of a run: each fault's kind, root cause, window and the signals it moves.

Signals are named as ``analysis`` names them (``latency_p50``, ``latency_p99``,
``error_ratio``, ``rate``, ``queue_depth``, ``histogram_p50`` for histogram metrics) or,
for invariant faults, by the invariant that breaks (``trace_roots``, ``log_template``,
``attribute_contract``, ``call_edge``). Directions: ``up``, ``down``, ``appear``,
``disappear``, ``change``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from simulator.plan import Plan
from simulator.scenario import Fault
from store.timeconv import iso_from_ns

NS_PER_MIN = 60_000_000_000


@dataclass(frozen=True)
class ExpectedSignal:
    signal: str
    service: str
    operation: str | None
    direction: str
    detail: str | None = None


@dataclass(frozen=True)
class FaultLabel:
    kind: str
    root_cause_service: str
    root_cause_operation: str | None
    start_ns: int
    end_ns: int
    start: str
    end: str
    magnitude: float
    expected: list[ExpectedSignal]
    """The signals a detector must find (recall is scored on these)."""
    affected: list[ExpectedSignal] = field(default_factory=list)
    """``expected`` plus the consequences a correct detector may also report: the same symptom
    on synchronous callers up the chain, the operation's queue and in-flight gauges, its
    service's request-duration histogram, the fan-out of callers that retry a failing call,
    the log templates of services whose errors rise (their logs depend on the outcome: error
    lines appear, success lines thin out) (precision is scored on these)."""


@dataclass
class GroundTruth:
    scenario: str
    start_ns: int
    end_ns: int
    faults: list[FaultLabel] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _iso(ns: int) -> str:
    return iso_from_ns(ns)


def visits_per_request(plan: Plan) -> np.ndarray:
    """Expected executions of each operation per root request (calls x prob x fan-out)."""
    weights = np.array([e.weight for e in plan.scenario.entrypoints], dtype=float)
    share = weights / weights.sum()
    site_visits = np.zeros(len(plan.sites))
    for s in plan.sites:
        if s.call is None:
            site_visits[s.index] = share[s.entry]
        else:
            fan = s.call.fanout
            mean_fan = fan if isinstance(fan, int) else (fan[0] + fan[1]) / 2
            site_visits[s.index] = site_visits[s.parent] * s.call.prob * mean_fan
    visits = np.zeros(len(plan.ops))
    np.add.at(visits, [s.op for s in plan.sites], site_visits)
    return visits


def _callers(plan: Plan, op: int) -> set[int]:
    return {
        plan.sites[s.parent].op for s in plan.sites if s.op == op and s.parent >= 0 and s.call and s.call.prob >= 0.5
    }


def _expected(plan: Plan, f: Fault) -> tuple[str, str | None, list[ExpectedSignal]]:
    op = plan.op_index.get(f.target)
    service = f.target.partition(":")[0]
    name = plan.ops[op].name if op is not None else None

    def sig(signal: str, o: int, direction: str, detail: str | None = None) -> ExpectedSignal:
        return ExpectedSignal(signal, plan.ops[o].service, plan.ops[o].name, direction, detail)

    if f.kind in ("latency_regression", "slow_drift") and op is not None:
        return service, name, [sig("latency_p50", op, "up"), sig("latency_p99", op, "up")]
    if f.kind == "dependency_slowdown" and op is not None:
        out = [sig("latency_p50", op, "up")]
        out += [sig("latency_p50", c, "up") for c in sorted(_callers(plan, op))]
        return service, name, out
    if f.kind == "error_burst" and op is not None:
        # failed calls fail their callers (no retries on the edge): symptoms upstream
        callers = {
            plan.sites[s.parent].op
            for s in plan.sites
            if s.op == op and s.parent >= 0 and s.call and s.call.prob >= 0.5 and s.call.retries == 0
        }
        return service, name, [sig("error_ratio", op, "up")] + [sig("error_ratio", c, "up") for c in sorted(callers)]
    if f.kind == "retry_storm" and op is not None:
        return service, name, [sig("error_ratio", op, "up"), sig("rate", op, "up")]
    if f.kind == "capacity_saturation":
        visits = visits_per_request(plan)
        # The engine queues on holding time (own work plus synchronous calls), not own work alone.
        rho = visits * plan.scenario.arrivals.rate_per_s * np.array([o.hold_ms for o in plan.ops]) / 1000.0
        rho /= np.array([o.servers for o in plan.ops])
        bottleneck = int(np.argmax(rho))
        entry = plan.op_index[plan.scenario.entrypoints[0].operation]
        bottleneck_op = plan.ops[bottleneck]
        return (
            bottleneck_op.service,
            bottleneck_op.name,
            [
                sig("rate", entry, "up"),
                sig("latency_p99", bottleneck, "up"),
                sig("queue_depth", bottleneck, "up"),
                sig("error_ratio", bottleneck, "up"),  # a full queue sheds what it cannot hold, as errors
            ],
        )
    if f.kind == "broken_propagation":
        return service, name, [ExpectedSignal("trace_roots", service, None, "up")]
    if f.kind == "new_log_template":
        return service, name, [ExpectedSignal("log_template", service, None, "appear", f.template)]
    if f.kind == "attribute_change" and op is not None:
        direction = "disappear" if f.change == "vanish" else "change"
        return service, name, [sig("attribute_contract", op, direction, f.attribute)]
    if f.kind == "call_edge" and op is not None and f.to:
        callee = plan.op_index[f.to]
        direction = "disappear" if f.change == "remove" else "appear"
        out = [sig("call_edge", op, direction, f.to)]
        other_callers = {plan.sites[s.parent].op for s in plan.sites if s.op == callee and s.parent >= 0} - {op}
        if not other_callers or f.change == "add":
            # the callee's own rate moves visibly only when this caller is (or adds) a large share
            out.append(sig("rate", callee, "down" if f.change == "remove" else "up"))
        return service, name, out
    if f.kind == "batch_shift":
        job = next(j for j in plan.scenario.batch_jobs if j.name == f.target)
        return job.service, None, [ExpectedSignal("histogram_p50", job.service, None, "up", "job.duration")]
    raise ValueError(f"fault {f.kind} on {f.target!r} has no labelled signals")


def _sync_callers(plan: Plan, op: int) -> set[int]:
    """Operations that call ``op`` synchronously, however rarely (a consequence reaches them all)."""
    return {
        plan.sites[s.parent].op
        for s in plan.sites
        if s.op == op and s.parent >= 0 and s.call and s.call.mode != "async" and s.call.prob > 0
    }


def _upstream(plan: Plan, op: int) -> set[int]:
    """Operations that call ``op`` synchronously, transitively."""
    seen: set[int] = set()
    todo = [op]
    while todo:
        for caller in _sync_callers(plan, todo.pop()):
            if caller not in seen and caller != op:
                seen.add(caller)
                todo.append(caller)
    return seen


_LATENCY_SIGNALS = {"latency_p50", "latency_p99", "queue_depth"}


def _affected(plan: Plan, f: Fault, expected: list[ExpectedSignal]) -> list[ExpectedSignal]:
    """``expected`` and its consequences (see ``FaultLabel.affected``)."""
    out = list(expected)
    by_name = {(o.service, o.name): i for i, o in enumerate(plan.ops)}
    roots = {by_name[(e.service, e.operation)] for e in expected if e.operation and (e.service, e.operation) in by_name}
    if f.kind == "capacity_saturation":
        roots = set(range(len(plan.ops)))  # the whole system carries the load
    kinds = {e.signal for e in expected}
    target = plan.op_index.get(f.target)
    retried = f.kind == "error_burst" and any(
        s.op == target and s.call is not None and s.call.retries > 0 for s in plan.sites
    )  # failures retried with back-off slow every caller up the chain
    for root in sorted(roots):
        ops = sorted({root} | _upstream(plan, root))
        for o in ops:
            info = plan.ops[o]
            if kinds & _LATENCY_SIGNALS or f.kind in ("retry_storm", "capacity_saturation") or retried:
                out += [ExpectedSignal(k, info.service, info.name, "up") for k in ("latency_p50", "latency_p99")]
                out += [ExpectedSignal(k, info.service, info.name, "up") for k in ("queue_depth", "active_requests")]
                out.append(ExpectedSignal("histogram_p50", info.service, None, "up"))
            if "error_ratio" in kinds or f.kind == "capacity_saturation":  # an overflowing queue sheds load
                out.append(ExpectedSignal("error_ratio", info.service, info.name, "up"))
            if "rate" in kinds or f.kind == "retry_storm":
                out.append(ExpectedSignal("rate", info.service, info.name, "up"))
    if f.kind == "call_edge" and target is not None and f.to in plan.op_index:
        callee = plan.op_index[f.to]
        out += _added_edge(plan, target, callee) if f.change == "add" else _removed_edge(plan, callee)
    if f.kind in ("retry_storm", "error_burst") and target is not None:
        out += _retried_calls(plan, target, every_caller=f.kind == "retry_storm")
    failing = sorted({e.service for e in out if e.signal == "error_ratio"})
    out += [ExpectedSignal("log_template", service, None, "change") for service in failing]
    return list(dict.fromkeys(out))


def _retried_calls(plan: Plan, callee: int, *, every_caller: bool) -> list[ExpectedSignal]:
    """Callers whose calls to a failing ``callee`` are retried (every caller in a retry storm, those with retries
    configured otherwise): each failed call is made again, so their fan-out to it rises (a call-edge change)."""
    callers = sorted(
        {
            plan.sites[s.parent].op
            for s in plan.sites
            if s.op == callee and s.parent >= 0 and s.call is not None and (every_caller or s.call.retries > 0)
        }
    )
    ref = plan.ops[callee].ref
    return [ExpectedSignal("call_edge", plan.ops[o].service, plan.ops[o].name, "change", ref) for o in callers]


def _below(plan: Plan, op: int) -> set[int]:
    """``op`` and the operations it calls, transitively."""
    below, todo = {op}, [op]
    while todo:
        parent = todo.pop()
        for s in plan.sites:
            if s.parent >= 0 and plan.sites[s.parent].op == parent and s.op not in below:
                below.add(s.op)
                todo.append(s.op)
    return below


def _added_edge(plan: Plan, caller: int, callee: int) -> list[ExpectedSignal]:
    """Consequences of a new synchronous call: the caller and its callers wait for it (slower), and the callee and
    its own calls, transitively, carry the extra traffic (busier, and their queues longer for it)."""
    out: list[ExpectedSignal] = []
    for o in sorted({caller} | _upstream(plan, caller)):
        info = plan.ops[o]
        out += [ExpectedSignal(k, info.service, info.name, "up") for k in ("latency_p50", "latency_p99")]
        out += [ExpectedSignal(k, info.service, info.name, "up") for k in ("queue_depth", "active_requests")]
        out.append(ExpectedSignal("histogram_p50", info.service, None, "up"))
    for o in sorted(_below(plan, callee)):
        info = plan.ops[o]
        out += [ExpectedSignal(k, info.service, info.name, "up") for k in ("rate", "latency_p50", "latency_p99")]
        out += [ExpectedSignal(k, info.service, info.name, "up") for k in ("queue_depth", "active_requests")]
    return out


def _removed_edge(plan: Plan, callee: int) -> list[ExpectedSignal]:
    """Consequences of a synchronous call removed: the callee and its own calls, transitively, lose those calls
    (their rates fall). Nothing is slower for it, so no latency is a consequence."""
    return [ExpectedSignal("rate", plan.ops[o].service, plan.ops[o].name, "down") for o in sorted(_below(plan, callee))]


def ground_truth(plan: Plan, start_ns: int, hours: float) -> GroundTruth:
    """The labels of every fault of the plan's scenario for a run starting at ``start_ns``."""
    truth = GroundTruth(plan.scenario.name, start_ns, start_ns + int(hours * 60) * NS_PER_MIN)
    for f in plan.scenario.faults:
        service, operation, expected = _expected(plan, f)
        s_ns = start_ns + int(f.start_min * NS_PER_MIN)
        e_ns = start_ns + int(f.end_min * NS_PER_MIN)
        affected = _affected(plan, f, expected)
        truth.faults.append(
            FaultLabel(f.kind, service, operation, s_ns, e_ns, _iso(s_ns), _iso(e_ns), f.magnitude, expected, affected)
        )
    return truth
