"""Scoring findings and investigations of one world against its ground truth (pure functions).

The rules are the detection benchmark's (``benchmarks/detection.py``), so library and
world figures mean the same thing:

- a fault is *detected* when a finding names one of its expected signals (same kind
  family, service and operation) with a change time in [start - 5 min, end] (a
  window-level finding: when its window overlaps the fault);
- a finding is *good* when it names a signal the fault affects (expected signals or their
  labelled consequences: callers up the chain, queue and in-flight gauges, the service's
  duration histogram); in a world without faults every finding is a false alarm;
- an investigation's rank is that of the first candidate naming the root cause (service,
  and operation when the truth has one); a benign alert's investigation *abstains* when it
  names no candidate.
"""

from __future__ import annotations

from detectors.findings import Finding
from simulator.labels import ExpectedSignal, FaultLabel
from simulator.world_faults import FAULT_KINDS, INVARIANT_KINDS

NS_MIN = 60_000_000_000
PERFORMANCE_KINDS = (frozenset(FAULT_KINDS) - frozenset(INVARIANT_KINDS)) | {"call_edge"}
"""Fault kinds scored on recall in every trial: the performance detectors' kinds, and call edges (an added or
removed edge moves its callee's request rate, and the invariant checks, which run in every detection as in
``driftscope detect``, see the edge itself on the caller: either finding detects it)."""
INVARIANT_SIGNALS = {"trace_roots", "log_template", "attribute_contract", "call_edge"}
_GAUGE_METRICS = {
    "queue_depth": ("queue.depth", "temporal.task_queue.backlog"),
    "active_requests": ("server.active_requests",),
}
_INVARIANT_DETECTORS = {
    "trace_roots": ("invariant_trace_context",),
    "log_template": ("log_template",),
    "attribute_contract": ("invariant_attribute",),
    "call_edge": ("invariant_call_edge",),
}


def family(signal: str) -> str:
    """The kind family of a labelled signal: latency, gauge, histogram, or the signal itself."""
    if signal.startswith("latency_"):
        return "latency"
    return {"queue_depth": "gauge", "active_requests": "gauge", "histogram_p50": "histogram"}.get(signal, signal)


def finding_family(f: Finding) -> str:
    k = f.signal.kind
    if k.startswith("latency_"):
        return "latency"
    if k.startswith("histogram_"):
        return "histogram"
    return k


def in_time(f: Finding, fault: FaultLabel) -> bool:
    if f.change_ns is None:
        return f.window_start_ns <= fault.end_ns and fault.start_ns < f.window_end_ns
    return fault.start_ns - 5 * NS_MIN <= f.change_ns <= fault.end_ns


def matches(f: Finding, fault: FaultLabel, exp: ExpectedSignal) -> bool:
    """Whether finding ``f`` names signal ``exp`` of ``fault`` in time."""
    if not in_time(f, fault):
        return False
    if exp.signal in INVARIANT_SIGNALS:
        if f.detector not in _INVARIANT_DETECTORS[exp.signal] or f.signal.service != exp.service:
            return False
        return exp.operation is None or f.signal.operation in (exp.operation, None)
    if finding_family(f) != family(exp.signal) or f.signal.service != exp.service:
        return False
    if family(exp.signal) == "gauge":
        metrics = _GAUGE_METRICS.get(exp.signal, ())
        return (
            f.signal.metric in metrics
            and exp.operation is not None
            and f'"operation":"{exp.operation}"' in (f.signal.attributes or "")
        )
    if family(exp.signal) == "histogram":
        return exp.detail is None or f.signal.metric == exp.detail
    return exp.operation is None or f.signal.operation == exp.operation


def scored(fault: FaultLabel, invariants: bool) -> bool:
    """Whether detection recall is scored on ``fault`` (the other invariant kinds only when asked)."""
    return fault.kind in PERFORMANCE_KINDS or invariants


def hits(findings: list[Finding], fault: FaultLabel) -> list[Finding]:
    """Findings that name one of ``fault``'s expected signals in time."""
    return [f for f in findings if any(matches(f, fault, e) for e in fault.expected)]


def good(f: Finding, faults: list[FaultLabel]) -> bool:
    """Whether ``f`` names a signal one of ``faults`` affects."""
    return any(matches(f, fl, e) for fl in faults for e in (fl.affected or fl.expected))


def rank_of(candidates: list[tuple[str, str | None]], faults: list[FaultLabel]) -> int | None:
    """1-based rank of the first (service, operation) candidate naming a root cause; None when none does."""
    for i, (service, operation) in enumerate(candidates, 1):
        for fault in faults:
            if service == fault.root_cause_service and (
                fault.root_cause_operation is None or operation == fault.root_cause_operation
            ):
                return i
    return None
