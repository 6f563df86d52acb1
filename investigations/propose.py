"""Remediation patches the playbook proposes from its ranked candidates (``simulator.patches`` schema).

One patch per candidate, in the candidates' order, from what the checks measured:

- a deploy of the candidate's service in the window -> ``rollback`` to the previous version
  (whatever the mechanism: a symptom that arrived with a release leaves with it);
- saturation (queueing under a surge, or a resource gauge) -> ``scale`` every operation whose
  queue depth rose, by twice the demand growth measured so far (a target utilisation of
  one half: the surge may still be growing);
- a call edge added without a deploy -> ``disable_edge``;
- an error burst, a retry storm, a latency regression, a new error log template without a
  deploy -> ``drain`` the operation (or the service) to standby instances: not a release,
  so the environment under it (a sick replica, a failing provider endpoint); for a retry
  storm a second patch stops the callers' retries and answers failures with a fallback;
- code-behaviour changes with no deploy to undo (a call edge removed, an attribute contract
  or trace propagation broken) -> nothing: no patch in the catalogue reverses code without
  its release, and the report says so in its open questions.

Each patch names the signals it expects to move (``expected``); the gym's test runner judges
it on telemetry, never on these.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.patches import CallSite, DisableEdge, Drain, Expected, Patch, Rollback, Scale

QUEUE_METRICS = ("queue.depth", "temporal.task_queue.backlog")
QUEUE_RISE = 2.0
"""Times its baseline mean (plus one request) a queue must reach to count as saturated (the playbook's rule)."""


def _signal(mechanism: str) -> tuple[str, str]:
    """(signal, direction) a fix of ``mechanism`` moves."""
    if mechanism.startswith(("error burst", "retry storm")):
        return "error_ratio", "down"
    if mechanism.startswith("call edge added"):
        return "call_edge", "disappear"
    if mechanism.startswith("call edge removed"):
        return "call_edge", "appear"
    if mechanism.startswith("new "):
        return "log_template", "disappear"
    if mechanism.startswith("broken trace"):
        return "trace_roots", "down"
    if mechanism.startswith("attribute"):
        return "attribute_contract", "appear"
    return "latency_p99", "down"


def _demand_growth(compared: list[dict[str, Any]]) -> float:
    """Median request-rate ratio incident / baseline over operations with a baseline (1 when unknown)."""
    ratios = sorted(1.0 + (r["rate_change_rel"] or 0.0) for r in compared if r["n_before"] >= 30)
    return ratios[len(ratios) // 2] if ratios else 1.0


def _saturated(saturation: list[dict[str, Any]]) -> list[str]:
    return [f"{r['service']}:{r['operation']}" for r in saturation
            if r["metric"] in QUEUE_METRICS and r["operation"]
            and (r["mean_after"] or 0) > QUEUE_RISE * (r["mean_before"] or 0) + 1]  # fmt: skip


def patch_for(
    service: str,
    operation: str | None,
    mechanism: str,
    *,
    deployed: bool,
    compared: list[dict[str, Any]],
    saturation: list[dict[str, Any]],
    callers: list[str],
) -> list[Patch]:
    """The patches (best first) for one candidate; empty when the catalogue has nothing that reverses it."""
    ref = f"{service}:{operation}" if operation else service
    signal, direction = _signal(mechanism)
    expect = [Expected(signal=signal, service=service, operation=operation, direction=direction)]  # type: ignore[arg-type]
    if deployed:
        return [Patch(title=f"roll back {service}", rationale=f"{mechanism} arrived with a deploy of {service}",
                      actions=[Rollback(kind="rollback", service=service)], expected=expect)]  # fmt: skip
    if "saturation" in mechanism:
        ops = _saturated(saturation) or ([ref] if operation else [])
        if not ops:
            return []
        factor = max(2.0, math.ceil(2.0 * _demand_growth(compared)))
        actions = [Scale(kind="scale", operation=op, factor=factor) for op in ops]
        return [Patch(title=f"scale out x{factor:g}", rationale=f"{mechanism}; demand x{_demand_growth(compared):.2f}",
                      actions=actions,  # type: ignore[arg-type]
                      expected=[Expected(signal="queue_depth", service=o.partition(":")[0],
                                         operation=o.partition(":")[2], direction="down") for o in ops])]  # fmt: skip
    if mechanism.startswith("call edge added") and operation:
        callee = mechanism.split("-> ", 1)[1].split(" ", 1)
        target = f"{callee[0]}:{callee[1]}" if len(callee) == 2 else ""
        if not target:
            return []
        action = DisableEdge(kind="disable_edge", caller=ref, callee=target)
        return [Patch(title=f"disable {ref} -> {target}", rationale=mechanism, actions=[action], expected=expect)]
    if mechanism.startswith(("error burst", "retry storm", "latency regression", "change found by detection",
                             "new ERROR", "new WARN", "resource saturation")):  # fmt: skip
        out = [Patch(title=f"drain {ref}", rationale=f"{mechanism} with no release of {service} to undo: move it "
                     "to standby instances", actions=[Drain(kind="drain", target=ref)], expected=expect)]  # fmt: skip
        if mechanism.startswith("retry storm") and operation and callers:
            out.append(Patch(title=f"stop retries into {ref}", rationale="retries amplify the failing callee's load",
                             actions=[CallSite(kind="call_site", caller=c, callee=ref, retries=0, fallback=True)
                                      for c in callers],  # type: ignore[arg-type]
                             expected=expect))  # fmt: skip
        return out
    return []


def propose(
    candidates: list[tuple[str, str | None, str]],
    deployed: set[str],
    compared: list[dict[str, Any]],
    saturation: list[dict[str, Any]],
    dependencies: list[dict[str, Any]],
    *,
    limit: int = 3,
) -> list[Patch]:
    """Patches for the ranked ``candidates`` ((service, operation, mechanism)), best first, at most ``limit``."""
    out: list[Patch] = []
    seen: set[str] = set()
    for service, operation, mechanism in candidates:
        callers = sorted({f"{r['caller_service']}:{r['caller_operation']}" for r in dependencies
                          if r["callee_service"] == service and r["callee_operation"] == operation})  # fmt: skip
        for p in patch_for(service, operation, mechanism, deployed=service in deployed, compared=compared,
                           saturation=saturation, callers=callers):  # fmt: skip
            if p.describe() not in seen:
                seen.add(p.describe())
                out.append(p)
    return out[:limit]
