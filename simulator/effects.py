"""What the faults and deploys of a scenario do at one moment (pure function of time).

``effects_at(plan, minute)`` returns the multipliers and switches the engine applies in
that minute: latency multipliers and added error probability per operation, call
probabilities and retries per call site, broken trace propagation per service, the
arrival multiplier, extra log templates, attribute changes, batch-job shifts and the
version each service runs. ``minute`` counts from the scenario start (negative in the
history). A remediation patch (``simulator.patches.Overrides``) changes them from its
``at_min`` on: faults it clears stop, versions, servers, call sites and entry caps change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.patches import Overrides
from simulator.plan import Plan
from simulator.scenario import Fault

MINUTES_PER_DAY = 1440.0


@dataclass
class Effects:
    latency_mult: np.ndarray
    error_add: np.ndarray
    site_prob: np.ndarray
    site_retries: np.ndarray
    broken_fraction: dict[str, float]
    arrival_mult: float
    versions: dict[str, str]
    new_templates: list[Fault] = field(default_factory=list)
    attribute_changes: list[tuple[int, str, str]] = field(default_factory=list)
    """(operation index, attribute, 'vanish' | 'type')."""
    batch_mult: dict[str, float] = field(default_factory=dict)
    servers: np.ndarray | None = None
    """Servers per operation when a patch changed them (None: the scenario's)."""
    site_timeout_ms: np.ndarray | None = None
    """Per call site timeout, ms (None: each call's own)."""
    site_backoff_ms: np.ndarray | None = None
    site_fallback: np.ndarray | None = None
    """Per call site: a failed or timed-out call is answered by a fallback (the caller does not fail)."""
    entry_cap_per_s: dict[int, float] = field(default_factory=dict)
    """Root requests per second admitted per entry point index (rate limits)."""


def _active(f: Fault, minute: float) -> bool:
    return f.start_min <= minute < f.end_min


def versions_at(plan: Plan, minute: float) -> dict[str, str]:
    """The version each service runs at ``minute`` (deploys and fault deploys applied)."""
    scenario = plan.scenario
    versions = {s: svc.version for s, svc in scenario.services.items()}
    events: list[tuple[float, str, str]] = [(d.at_min, d.service, d.version) for d in scenario.deploys]
    for f in scenario.faults:
        if f.deploy_version:
            service = f.target.partition(":")[0]
            events.append((f.start_min, service, f.deploy_version))
    for at, service, version in sorted(events):
        if at <= minute:
            versions[service] = version
    return versions


def effects_at(plan: Plan, minute: float, patch: Overrides | None = None) -> Effects:
    """The effects in force during the minute starting at ``minute`` (``patch`` applied from its ``at_min``)."""
    if patch is not None and minute < patch.at_min:
        patch = None
    n_ops = len(plan.ops)
    eff = Effects(
        latency_mult=np.ones(n_ops),
        error_add=np.zeros(n_ops),
        site_prob=np.array([s.call.prob if s.call else 1.0 for s in plan.sites]),
        site_retries=np.array([s.call.retries if s.call else 0 for s in plan.sites]),
        broken_fraction={},
        arrival_mult=1.0,
        versions=versions_at(plan, minute),
    )
    mid = minute + 0.5
    # A latency fault of magnitude m makes the whole operation (own work + calls) about
    # m x slower, so its own work grows by m x hold / own.
    own_scale = np.array([op.hold_ms / op.mean_ms for op in plan.ops])
    for i, f in enumerate(plan.scenario.faults):
        if not _active(f, mid) or (patch is not None and i in patch.cleared_faults):
            continue
        op = plan.op_index.get(f.target)
        progress = (mid - f.start_min) / (f.end_min - f.start_min)
        reach = min(1.0, (mid - f.start_min) / f.ramp_min) if f.ramp_min > 0 else 1.0
        if f.kind in ("latency_regression", "dependency_slowdown") and op is not None:
            eff.latency_mult[op] += f.magnitude * reach * own_scale[op]
        elif f.kind == "slow_drift" and op is not None:
            eff.latency_mult[op] += f.magnitude * (mid - f.start_min) / MINUTES_PER_DAY * own_scale[op]
        elif f.kind == "error_burst" and op is not None:
            eff.error_add[op] += f.magnitude * reach
        elif f.kind == "retry_storm" and op is not None:
            eff.error_add[op] += f.magnitude * reach
            for s in plan.sites:
                if s.op == op and s.call is not None:
                    eff.site_retries[s.index] = max(int(eff.site_retries[s.index]), 3)
        elif f.kind == "capacity_saturation":
            # a ramp of half the fault by default (the library's saturation); ramp_min overrides it
            growth = min(1.0, (mid - f.start_min) / f.ramp_min) if f.ramp_min > 0 else min(1.0, 2 * progress)
            eff.arrival_mult *= 1 + f.magnitude * growth
        elif f.kind == "broken_propagation":
            service = f.target.partition(":")[0]
            eff.broken_fraction[service] = max(eff.broken_fraction.get(service, 0.0), min(f.magnitude, 1.0))
        elif f.kind == "new_log_template":
            eff.new_templates.append(f)
        elif f.kind == "attribute_change" and op is not None and f.attribute and f.change:
            eff.attribute_changes.append((op, f.attribute, f.change))
        elif f.kind == "call_edge" and op is not None and f.to:
            callee = plan.op_index[f.to]
            for s in plan.sites:
                if s.parent >= 0 and plan.sites[s.parent].op == op and s.op == callee:
                    if f.change == "remove" and not s.latent:
                        eff.site_prob[s.index] = 0.0
                    elif f.change == "add" and s.latent:
                        eff.site_prob[s.index] = min(f.magnitude, 1.0)
        elif f.kind == "batch_shift":
            eff.batch_mult[f.target] = eff.batch_mult.get(f.target, 1.0) * (1 + f.magnitude * reach)
    if patch is not None:
        _apply(plan, eff, patch)
    return eff


def _apply(plan: Plan, eff: Effects, patch: Overrides) -> None:
    """A patch's overrides on top of the faults' effects (a patch's retry count beats a storm's)."""
    eff.versions.update(patch.versions)
    if patch.servers:
        eff.servers = np.array([op.servers for op in plan.ops], dtype=float)
        for ref, n in patch.servers.items():
            eff.servers[plan.op_index[ref]] = n
    if patch.edges:
        n_sites = len(plan.sites)
        eff.site_timeout_ms = np.array([s.call.timeout_ms if s.call else 0.0 for s in plan.sites])
        eff.site_backoff_ms = np.array([s.call.backoff_ms if s.call else 0.0 for s in plan.sites])
        eff.site_fallback = np.zeros(n_sites, dtype=bool)
        for s in plan.sites:
            if s.parent < 0:
                continue
            change = patch.edges.get((plan.ops[plan.sites[s.parent].op].ref, plan.ops[s.op].ref))
            if not change:
                continue
            if "prob" in change:
                eff.site_prob[s.index] = float(change["prob"])
            if "retries" in change:
                eff.site_retries[s.index] = int(change["retries"])
            if "timeout_ms" in change:
                eff.site_timeout_ms[s.index] = float(change["timeout_ms"])
            if "backoff_ms" in change:
                eff.site_backoff_ms[s.index] = float(change["backoff_ms"])
            if "fallback" in change:
                eff.site_fallback[s.index] = bool(change["fallback"])
    for e, ep in enumerate(plan.scenario.entrypoints):
        if ep.operation in patch.entry_caps_per_s:
            eff.entry_cap_per_s[e] = patch.entry_caps_per_s[ep.operation]
