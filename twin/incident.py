"""The incident as faults on the twin: what changed between a twin of the healthy window and one of the incident.

``incident_faults`` compares two fits of the same system (before the incident, and from its
start to now) and writes each change it can name as a scenario fault starting at minute 0:

- own work slower (median self time x ``LATENCY_RATIO`` or more) -> ``latency_regression``
  (the simulator's magnitude is the whole operation's slowdown, so the own-work ratio is scaled
  by own / holding time);
- own errors up by at least ``ERROR_ADD`` (and three binomial standard errors) -> ``error_burst``,
  or ``retry_storm`` when the callers of the operation now retry more;
- more root arrivals in the incident's last minutes (x ``DEMAND_RATIO``) -> ``capacity_saturation``
  reaching that multiplier over the incident minutes seen, and holding it (the twin cannot know
  whether a surge keeps growing);
- a call edge that appeared (or vanished) -> ``call_edge`` add (remove).

A service whose version changed during the incident carries that version as the faults'
``deploy_version`` (so a rollback on the twin undoes them, as it would on the system). What is
not named (a broken propagation, an attribute contract) is listed in the notes: the twin does
not reproduce it and a what-if on it says nothing about it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.plan import Plan
from twin.fit import TwinFit

LATENCY_RATIO = 1.25
ERROR_ADD = 0.01
DEMAND_RATIO = 1.3


@dataclass
class Incident:
    faults: list[dict[str, object]]
    notes: list[str] = field(default_factory=list)


def _own_error(fit: TwinFit, ref: str) -> float:
    return fit.scenario.operation(ref).error_rate


def incident_faults(base: TwinFit, inc: TwinFit, *, minutes_seen: float, end_min: float) -> Incident:
    """The changes from ``base`` to ``inc`` as faults active from minute 0 to ``end_min``."""
    faults: list[dict[str, object]] = []
    notes: list[str] = []
    plan = Plan.compile(base.scenario)
    hold = {op.ref: op.hold_ms / max(op.mean_ms, 1e-9) for op in plan.ops}
    base_refs = set(base.scenario.operation_refs())
    versions_before = {s: svc.version for s, svc in base.scenario.services.items()}
    deployed = {
        s: svc.version
        for s, svc in inc.scenario.services.items()
        if s in versions_before and svc.version != versions_before[s]
    }
    base_retries = {(e.caller, e.callee): e.retries for e in base.edges}
    for ref, after in inc.ops.items():
        before = base.ops.get(ref)
        if before is None or ref not in base_refs:
            continue
        service = ref.partition(":")[0]
        extra: dict[str, object] = {"deploy_version": deployed[service]} if service in deployed else {}
        if before.stub is None and after.stub is None and before.median_ms and after.median_ms:
            ratio = after.median_ms / before.median_ms
            if ratio >= LATENCY_RATIO:
                magnitude = (ratio - 1.0) / hold.get(ref, 1.0)
                faults.append({"kind": "latency_regression", "target": ref, "magnitude": round(magnitude, 4), **extra})
                medians = f"median {before.median_ms:.3g} -> {after.median_ms:.3g} ms"
                notes.append(f"{ref}: own work x{ratio:.2f} ({medians})")
        e0, e1 = _own_error(base, ref), _own_error(inc, ref)
        se = math.sqrt(max(e0 * (1 - e0), 1e-6) / max(after.spans, 1))
        if e1 - e0 >= max(ERROR_ADD, 3 * se):
            storm = any(e.callee == ref and e.retries > base_retries.get((e.caller, e.callee), 0) for e in inc.edges)
            kind = "retry_storm" if storm else "error_burst"
            faults.append({"kind": kind, "target": ref, "magnitude": round(e1 - e0, 4), **extra})
            notes.append(f"{ref}: own errors {e0:.2%} -> {e1:.2%}" + (" with callers retrying more" if storm else ""))
    # where demand stands now (the incident's last minutes): a surge is still ramping when the patch lands
    ratio = inc.arrivals.end_rate_per_s / max(base.arrivals.rate_per_s, 1e-9)
    if ratio >= DEMAND_RATIO:
        faults.append({"kind": "capacity_saturation", "target": "arrivals", "magnitude": round(ratio - 1.0, 4),
                       "ramp_min": round(max(minutes_seen, 1.0), 1)})  # fmt: skip
        now = inc.arrivals.end_rate_per_s
        notes.append(f"demand x{ratio:.2f} ({base.arrivals.rate_per_s:.3g} -> {now:.3g} req/s in the last minutes)")
    before_edges = {(e.caller, e.callee): e for e in base.edges}
    after_edges = {(e.caller, e.callee): e for e in inc.edges}
    for key, e in after_edges.items():
        if key not in before_edges and e.caller in base_refs and e.callee in base_refs:
            service = e.caller.partition(":")[0]
            extra = {"deploy_version": deployed[service]} if service in deployed else {}
            faults.append({"kind": "call_edge", "target": e.caller, "to": e.callee, "change": "add",
                           "magnitude": round(e.prob, 4), **extra})  # fmt: skip
            notes.append(f"new call edge {e.caller} -> {e.callee} (prob {e.prob:.2f})")
    for key in before_edges.keys() - after_edges.keys():
        if key[0] in inc.ops and inc.ops[key[0]].spans >= 50:
            service = key[0].partition(":")[0]
            extra = {"deploy_version": deployed[service]} if service in deployed else {}
            faults.append({"kind": "call_edge", "target": key[0], "to": key[1], "change": "remove", **extra})
            notes.append(f"call edge {key[0]} -> {key[1]} vanished")
    for service, version in deployed.items():
        if not any(str(f["target"]).partition(":")[0] == service for f in faults):
            notes.append(f"{service} deployed {version} in the incident, with no change the twin can name")
    for f in faults:
        f.update(start_min=0.0, end_min=float(end_min))
    if not faults:
        notes.append("no change between the healthy window and the incident that the twin can reproduce")
    return Incident(faults, notes)
