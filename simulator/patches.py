"""Remediation patches: a typed, versioned list of actions on a system, and what each does to a world.

A patch (YAML or JSON, ``version: 1``) is what an investigation proposes and what the gym
applies. Its actions:

- ``rollback {service, version}``: the service runs ``version`` again (``"previous"``: the
  version it ran before its latest deploy). Faults that came with a later release of the
  service stop (a fault with ``deploy_version``, or one starting when a deploy of its
  service lands).
- ``scale {operation, servers | factor}``: the operation's servers (concurrency) become
  ``servers``, or ``factor`` x the current count (rounded up, at least 1).
- ``call_site {caller, callee, timeout_ms?, retries?, backoff_ms?, fallback?}``: the call
  from ``caller`` to ``callee`` gets a new timeout (ms), retry count, back-off (ms);
  ``fallback: true`` answers a failed or timed-out call with a fallback in the caller, which
  then neither fails nor waits past the timeout (a degraded answer).
- ``disable_edge {caller, callee}``: the caller stops making that call.
- ``rate_limit {entrypoint, rate_per_s}``: root requests to that entry point beyond
  ``rate_per_s`` are refused at the edge (they leave no spans).
- ``drain {target, standby_share}``: an operation or a whole service is moved to standby
  instances with ``standby_share`` of its servers. Faults of the environment on the drained
  instances (a slow disk, a sick replica, a failing provider endpoint: every fault not
  shipped by a release, except demand and code-behaviour kinds) stop; release-borne faults
  go along, since the standby runs the same release.

``expected`` lists the signals the proposer expects to move (``latency_p99 down`` ...);
the test runner judges the patch on telemetry, never on these. ``resolve`` checks a patch
against a scenario (every unknown service, operation, call site, entry point and version
named by field) and compiles it into ``Overrides``, which ``simulator.effects`` applies from
``at_min`` on. Times are scenario minutes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.scenario import Scenario

PATCH_VERSION = 1
STANDBY_SHARE = 0.5
"""Default share of an operation's servers its standby instances have (a warm standby is smaller)."""
_CODE_KINDS = frozenset({"call_edge", "attribute_change", "broken_propagation", "capacity_saturation"})
"""Faults a drain cannot leave behind: code behaviour (any instance runs it) and demand."""


class PatchError(ValueError):
    """A patch is malformed or names something the world does not have; the message names each field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rollback(_Model):
    kind: Literal["rollback"]
    service: str
    version: str = Field("previous", min_length=1, description="a version the service ran, or 'previous'")


class Scale(_Model):
    kind: Literal["scale"]
    operation: str = Field(description="service:operation")
    servers: int | None = Field(None, ge=1, le=10_000, description="new server count")
    factor: float | None = Field(None, gt=0, le=100, description="multiply the current servers (rounded up)")

    @model_validator(mode="after")
    def _one(self) -> Scale:
        if (self.servers is None) == (self.factor is None):
            raise ValueError("give servers or factor (one of them)")
        return self


class CallSite(_Model):
    kind: Literal["call_site"]
    caller: str = Field(description="service:operation making the call")
    callee: str = Field(description="service:operation called")
    timeout_ms: float | None = Field(None, gt=0)
    retries: int | None = Field(None, ge=0, le=5)
    backoff_ms: float | None = Field(None, ge=0)
    fallback: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> CallSite:
        if self.timeout_ms is None and self.retries is None and self.backoff_ms is None and self.fallback is None:
            raise ValueError("a call_site action changes timeout_ms, retries, backoff_ms or fallback")
        return self


class DisableEdge(_Model):
    kind: Literal["disable_edge"]
    caller: str
    callee: str


class RateLimit(_Model):
    kind: Literal["rate_limit"]
    entrypoint: str = Field(description="service:operation of an entry point")
    rate_per_s: float = Field(gt=0, description="requests per second admitted")


class Drain(_Model):
    kind: Literal["drain"]
    target: str = Field(description="service:operation, or a service")
    standby_share: float = Field(STANDBY_SHARE, gt=0, le=1, description="standby servers / current servers")


Action = Annotated[Rollback | Scale | CallSite | DisableEdge | RateLimit | Drain, Field(discriminator="kind")]
ACTION_KINDS = ("rollback", "scale", "call_site", "disable_edge", "rate_limit", "drain")


class Expected(_Model):
    """A signal the proposer expects the patch to move."""

    signal: str = Field(description="e.g. latency_p99, error_ratio, rate, queue_depth, call_edge")
    service: str
    operation: str | None = None
    direction: Literal["up", "down", "appear", "disappear"]


class Patch(_Model):
    """A remediation: actions applied together, the expected effect, and why."""

    version: Literal[1] = 1
    title: str = ""
    rationale: str = ""
    actions: Annotated[list[Action], Field(min_length=1)]
    expected: list[Expected] = []

    def describe(self) -> str:
        """One line naming every action, e.g. 'rollback payment to previous; scale checkout:PlaceOrder x2'."""
        return "; ".join(describe_action(a) for a in self.actions)


def describe_action(a: Rollback | Scale | CallSite | DisableEdge | RateLimit | Drain) -> str:
    """One action in words."""
    if isinstance(a, Rollback):
        return f"rollback {a.service} to {a.version}"
    if isinstance(a, Scale):
        return f"scale {a.operation} " + (f"to {a.servers}" if a.servers is not None else f"x{a.factor:g}")
    if isinstance(a, CallSite):
        parts = [f"{k}={v}" for k in ("timeout_ms", "retries", "backoff_ms", "fallback")
                 if (v := getattr(a, k)) is not None]  # fmt: skip
        return f"call {a.caller} -> {a.callee}: {', '.join(parts)}"
    if isinstance(a, DisableEdge):
        return f"disable {a.caller} -> {a.callee}"
    if isinstance(a, RateLimit):
        return f"rate-limit {a.entrypoint} to {a.rate_per_s:g}/s"
    return f"drain {a.target} (standby {a.standby_share:g})"


def _format(exc: ValidationError, source: str) -> str:
    lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(patch)'}: {e['msg']}" for e in exc.errors()]
    return f"invalid patch {source}:\n" + "\n".join(lines)


def parse_patch(text: str, source: str = "<patch>") -> Patch:
    """A patch from YAML or JSON text; ``PatchError`` names every bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PatchError(f"patch {source} is neither YAML nor JSON: {exc}") from None
    return patch_from(data, source)


def patch_from(data: object, source: str = "<patch>") -> Patch:
    """A patch from parsed data (a dict); ``PatchError`` names every bad field."""
    if not isinstance(data, dict):
        raise PatchError(f"patch {source}: expected a mapping with 'actions', got {type(data).__name__}")
    try:
        return Patch.model_validate(data)
    except ValidationError as exc:
        raise PatchError(_format(exc, source)) from None


def load_patch(path: str | Path) -> Patch:
    """A patch from a YAML or JSON file."""
    p = Path(path)
    if not p.is_file():
        raise PatchError(f"patch file {p} does not exist")
    return parse_patch(p.read_text(encoding="utf-8"), str(p))


def dump_patch(patch: Patch) -> str:
    """The patch as JSON text (what ``parse_patch`` reads back)."""
    return json.dumps(patch.model_dump(exclude_defaults=True, mode="json"), indent=2) + "\n"


@dataclass(frozen=True)
class Overrides:
    """A patch compiled against one scenario: what changes from ``at_min`` on (indices into the plan's
    fault list, operations ``service:operation``, and call edges ``(caller, callee)``)."""

    at_min: float
    cleared_faults: frozenset[int] = frozenset()
    versions: dict[str, str] = field(default_factory=dict)
    servers: dict[str, int] = field(default_factory=dict)
    edges: dict[tuple[str, str], dict[str, float | int | bool]] = field(default_factory=dict)
    """Per call edge: timeout_ms, retries, backoff_ms, fallback, prob (0 = disabled)."""
    entry_caps_per_s: dict[str, float] = field(default_factory=dict)


def _release_minutes(scenario: Scenario, service: str) -> list[tuple[float, str]]:
    """(minute, version) of every release of ``service``, initial version at -inf, sorted."""
    events = [(-math.inf, scenario.services[service].version)]
    events += [(d.at_min, d.version) for d in scenario.deploys if d.service == service]
    events += [(f.start_min, f.deploy_version) for f in scenario.faults
               if f.deploy_version and f.target.partition(":")[0] == service]  # fmt: skip
    return sorted(events, key=lambda e: e[0])


def release_borne(scenario: Scenario, index: int) -> bool:
    """Whether fault ``index`` came with a release of its service (its own deploy, or one landing as it starts)."""
    f = scenario.faults[index]
    if f.deploy_version:
        return True
    service = f.target.partition(":")[0]
    if service not in scenario.services:
        return False
    return any(at == f.start_min for at, _ in _release_minutes(scenario, service)[1:])


def _fault_service(scenario: Scenario, target: str) -> str | None:
    if target in scenario.services:
        return target
    if ":" in target and target.partition(":")[0] in scenario.services:
        return target.partition(":")[0]
    jobs = {j.name: j.service for j in scenario.batch_jobs}
    return jobs.get(target)


class _Resolver:
    """Checks one patch against a scenario and accumulates the overrides (errors name the field)."""

    def __init__(self, scenario: Scenario, at_min: float) -> None:
        self.sc = scenario
        self.at = at_min
        self.ops = set(scenario.operation_refs())
        self.problems: list[str] = []
        self.cleared: set[int] = set()
        self.versions: dict[str, str] = {}
        self.servers: dict[str, int] = {}
        self.edges: dict[tuple[str, str], dict[str, float | int | bool]] = {}
        self.caps: dict[str, float] = {}

    def op(self, key: str, ref: str) -> bool:
        if ref in self.ops:
            return True
        service = ref.partition(":")[0]
        hint = "unknown service" if service not in self.sc.services else "unknown operation"
        self.problems.append(f"{key}: {hint} {ref!r} (operations are 'service:operation')")
        return False

    def edge(self, key: str, caller: str, callee: str) -> bool:
        if not (self.op(f"{key}.caller", caller) & self.op(f"{key}.callee", callee)):
            return False
        calls = [c.to for c in self.sc.operation(caller).calls]
        added = [f.to for f in self.sc.faults if f.kind == "call_edge" and f.change == "add" and f.target == caller]
        if callee not in calls and callee not in added:
            self.problems.append(f"{key}: unknown call site {caller!r} -> {callee!r} ({caller} calls "
                                 f"{', '.join(calls) or 'nothing'})")  # fmt: skip
            return False
        return True

    def rollback(self, key: str, a: Rollback) -> None:
        if a.service not in self.sc.services:
            self.problems.append(f"{key}.service: unknown service {a.service!r}")
            return
        ran = [(at, v) for at, v in _release_minutes(self.sc, a.service) if at <= self.at]
        if a.version == "previous":
            if len(ran) < 2:
                self.problems.append(f"{key}.version: {a.service} has run only {ran[-1][1]}: no previous version")
                return
            target_at, version = ran[-2]
        else:
            known = [i for i, (_, v) in enumerate(ran) if v == a.version]
            if not known:
                self.problems.append(f"{key}.version: unknown version {a.version!r} of {a.service} (it has run "
                                     f"{', '.join(v for _, v in ran)})")  # fmt: skip
                return
            target_at, version = ran[known[-1]]
        self.versions[a.service] = version
        for i, f in enumerate(self.sc.faults):
            mine = _fault_service(self.sc, f.target) == a.service
            if mine and target_at < f.start_min <= self.at and release_borne(self.sc, i):
                self.cleared.add(i)

    def scale(self, key: str, a: Scale) -> None:
        if self.op(f"{key}.operation", a.operation):
            now = self.servers.get(a.operation, self.sc.operation(a.operation).servers)
            self.servers[a.operation] = a.servers if a.servers is not None else max(1, math.ceil(now * (a.factor or 1)))

    def drain(self, key: str, a: Drain) -> None:
        if a.target in self.sc.services:
            refs = [r for r in self.sc.operation_refs() if r.partition(":")[0] == a.target]
        elif self.op(f"{key}.target", a.target):
            refs = [a.target]
        else:
            return
        for ref in refs:
            now = self.servers.get(ref, self.sc.operation(ref).servers)
            self.servers[ref] = max(1, math.ceil(now * a.standby_share))
        jobs = {j.name for j in self.sc.batch_jobs if j.service == a.target}
        for i, f in enumerate(self.sc.faults):
            if f.kind in _CODE_KINDS or release_borne(self.sc, i):
                continue
            if f.target in refs or f.target == a.target or f.target in jobs:
                self.cleared.add(i)


def resolve(patch: Patch, scenario: Scenario, at_min: float) -> Overrides:
    """``patch`` checked against ``scenario`` and compiled for application at ``at_min``.

    Raises ``PatchError`` naming every unknown service, operation, call site, entry point or
    version (``actions.N.field``); nothing is applied then.
    """
    r = _Resolver(scenario, at_min)
    entries = {e.operation for e in scenario.entrypoints}
    for n, a in enumerate(patch.actions):
        key = f"actions.{n}"
        if isinstance(a, Rollback):
            r.rollback(key, a)
        elif isinstance(a, Scale):
            r.scale(key, a)
        elif isinstance(a, Drain):
            r.drain(key, a)
        elif isinstance(a, CallSite | DisableEdge):
            if r.edge(key, a.caller, a.callee):
                change = r.edges.setdefault((a.caller, a.callee), {})
                if isinstance(a, DisableEdge):
                    change["prob"] = 0.0
                else:
                    change.update({k: v for k in ("timeout_ms", "retries", "backoff_ms", "fallback")
                                   if (v := getattr(a, k)) is not None})  # fmt: skip
        elif r.op(f"{key}.entrypoint", a.entrypoint):
            if a.entrypoint not in entries:
                r.problems.append(f"{key}.entrypoint: {a.entrypoint!r} is not an entry point "
                                  f"({', '.join(sorted(entries))})")  # fmt: skip
            else:
                r.caps[a.entrypoint] = min(a.rate_per_s, r.caps.get(a.entrypoint, math.inf))
    if r.problems:
        raise PatchError(f"patch does not fit scenario {scenario.name!r}:\n" + "\n".join(f"  {p}" for p in r.problems))
    return Overrides(at_min, frozenset(r.cleared), r.versions, r.servers, r.edges, r.caps)
