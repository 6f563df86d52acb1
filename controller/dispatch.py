"""Dispatch: decide deterministically whether a trigger becomes an investigation.

Triggers are findings (at or above ``min_severity``, seen by at least ``persistence_runs``
detection runs), alert webhooks (Alertmanager, Grafana) and manual requests. A trigger is
skipped when its fingerprint was dispatched less than ``cooldown_s`` ago, when
``concurrency`` investigations are already running, or when today's (UTC) tokens or
money reached the daily budget. Every decision, dispatched or skipped and why, is written
to ``dispatch_decisions`` and counted in ``driftscope_investigation_decisions_total``; finished
investigations are counted by policy and outcome, with their wall time, claims, tokens and cost.
No statistics, no prompts: the same table state and clock give the same decisions.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.policy import Policy
from investigations.run import Outcome, investigate
from investigations.snapshot import IncidentWindow
from reports.read import effect_in_unit
from simulator.patches import Patch
from store import dispatch as store_dispatch
from store import findings as store_findings
from store import investigations as store_investigations
from store import timeconv
from store.connection import Store
from store.findings import FindingRecord
from store.raw import data_end

WhatIfFactory = Callable[[Store, IncidentWindow], Callable[[Patch], dict[str, Any]]]
"""Builds an investigation's ``what_if`` runner (the store's twin around the window; see ``cli_investigate``)."""

NS_PER_S = timeconv.NS_PER_S


@dataclass(frozen=True)
class Request:
    """A trigger asking for an investigation. Times in ns since the epoch (data time)."""

    source: str  # finding | alertmanager | grafana | manual
    fingerprint: str
    title: str
    start_ns: int
    end_ns: int
    severity: str = "warning"
    runs: int = 1
    finding_id: str | None = None
    service: str | None = None
    operation: str | None = None
    firing: bool = True
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: str  # dispatch | skip
    reason: str
    request: Request


class Dispatcher:
    """Decides and records; ``running`` slots are held between ``decide`` and ``release``."""

    def __init__(self, config: InvestigationsConfig, registry: CollectorRegistry) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._running = 0
        self.decisions = Counter(
            "driftscope_investigation_decisions", "Investigation dispatch decisions by source, action and reason.",
            ["source", "action", "reason"], registry=registry,
        )  # fmt: skip
        self.running = Gauge("driftscope_investigations_running", "Investigations running now.", registry=registry)
        self.finished = Counter(
            "driftscope_investigations",
            "Finished investigations by policy and outcome (completed, budget_exhausted, failed).",
            ["policy", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "driftscope_investigation_duration_seconds",
            "Wall time of one investigation (s).",
            ["policy"],
            registry=registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
        )
        self.claims = Counter(
            "driftscope_investigation_claims",
            "Report claims re-run by the controller.",
            ["verified"],
            registry=registry,
        )
        self.tokens = Counter(
            "driftscope_investigation_tokens", "Model tokens (input plus output).", ["policy"], registry=registry
        )
        self.cost = Counter("driftscope_investigation_cost_usd", "Model cost in US dollars.", ["policy"],
                            registry=registry)  # fmt: skip

    def record(self, policy: str, outcome: Outcome) -> None:
        """Count a finished investigation."""
        label = {"complete": "completed", "partial": "budget_exhausted"}.get(outcome.status, "failed")
        self.finished.labels(policy, label).inc()
        self.duration.labels(policy).observe(outcome.wall_s)
        verified = sum(1 for c in outcome.report.claims if c.verified)
        self.claims.labels("true").inc(verified)
        self.claims.labels("false").inc(len(outcome.report.claims) - verified)
        self.tokens.labels(policy).inc(outcome.tokens)
        self.cost.labels(policy).inc(outcome.cost_usd)

    def _why_not(self, con: duckdb.DuckDBPyConnection, req: Request, now_ns: int) -> str | None:
        cfg = self.config
        manual = req.source == "manual"
        if not req.firing:
            return "resolved"
        if not manual and not store_findings.at_least(req.severity, cfg.min_severity):
            return "below_min_severity"
        if req.source == "finding" and req.runs < cfg.persistence_runs:
            return "not_persistent"
        if not manual:
            last = store_dispatch.last_dispatch_ns(con, req.fingerprint)
            if last is not None and now_ns - last < cfg.cooldown_s * NS_PER_S:
                return "cooldown"
        if self._running >= cfg.concurrency:
            return "concurrency"
        tokens, cost = store_investigations.spend_since(con, now_ns - now_ns % timeconv.NS_PER_DAY)
        if tokens >= cfg.daily_tokens or cost >= cfg.daily_cost_usd:
            return "daily_budget"
        return None

    def decide(self, con: duckdb.DuckDBPyConnection, req: Request, now_ns: int) -> Decision:
        """Decide, record and count; a dispatch takes a running slot (``release`` it when done)."""
        with self._lock:
            reason = self._why_not(con, req, now_ns)
            action = "skip" if reason else "dispatch"
            if action == "dispatch":
                self._running += 1
                self.running.set(self._running)
            store_dispatch.record_decision(
                con, decided_ns=now_ns, source=req.source, fingerprint=req.fingerprint, action=action,
                reason=reason or "ok", finding_id=req.finding_id, title=req.title,
            )  # fmt: skip
        self.decisions.labels(req.source, action, reason or "ok").inc()
        return Decision(action, reason or "ok", req)

    def release(self, con: duckdb.DuckDBPyConnection, req: Request, now_ns: int, investigation_id: str | None) -> None:
        """Free the running slot of a dispatched request and link its investigation."""
        with self._lock:
            self._running = max(0, self._running - 1)
            self.running.set(self._running)
        if investigation_id:
            store_dispatch.link_investigation(con, req.fingerprint, investigation_id)


def finding_requests(con: duckdb.DuckDBPyConnection, lookback_s: float = 600.0) -> list[Request]:
    """A request for every open finding (the dispatcher then applies severity, persistence, cooldown)."""
    units: dict[tuple[str | None, str], str | None] = {}
    return [finding_request(con, f, lookback_s, units=units) for f in store_findings.open_findings(con)]


def finding_request(
    con: duckdb.DuckDBPyConnection,
    f: FindingRecord,
    lookback_s: float = 600.0,
    source: str = "finding",
    units: dict[tuple[str | None, str], str | None] | None = None,
) -> Request:
    """A request to investigate finding ``f``: from ``lookback_s`` before its change to its window end
    (at least 15 minutes), titled with its effect in units (``units`` caches metric unit lookups)."""
    start = f.start_ns - int(lookback_s * NS_PER_S)
    end = max(f.window_end_ns, start + 15 * 60 * NS_PER_S)
    effect = effect_in_unit(con, f.effect_text, f.kind, service=f.service, metric=f.metric, before=f.before,
                            after=f.after, units=units)  # fmt: skip
    title = f"{f.service or '?'} {f.operation or ''}: {effect} ({f.detector})".replace("  ", " ")
    return Request(source, f.fingerprint, title, start, end, f.severity, f.runs, f.id, f.service, f.operation)


def alert_fingerprint(source: str, labels: dict[str, Any], given: str | None) -> str:
    """The alert's own fingerprint, or a hash of its sorted labels."""
    if given:
        return f"{source}:{given}"
    raw = "|".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{source}:" + hashlib.sha256(raw.encode()).hexdigest()[:16]


def run_request(
    store: Store, dispatcher: Dispatcher, decision: Decision, policy: Policy, *, now_ns: int,
    out_dir: str | None = None, what_if: WhatIfFactory | None = None,
) -> Outcome:  # fmt: skip
    """Run a dispatched request's investigation, then release its slot; return the ``Outcome``.

    The incident window is the request's, clipped to the data; the baseline is
    ``baseline_s`` before it.
    """
    req = decision.request
    con = store.cursor()
    inv_id = None
    try:
        end = data_end(con)
        if end is None:
            raise ValueError("the store holds no spans to investigate")
        stop = min(req.end_ns, end)
        if stop <= req.start_ns:
            raise ValueError(f"request window starts after the data ends ({req.title[:80]})")
        window = IncidentWindow.around(req.start_ns, stop, dispatcher.config.baseline_s)
        trigger = Trigger(req.source, req.title, req.service, req.operation, req.finding_id, req.fingerprint,
                          req.details)  # fmt: skip
        runner = what_if(store, window) if what_if is not None else None
        outcome = investigate(store, trigger, window, policy, dispatcher.config, out_dir=out_dir, what_if=runner)
        inv_id = outcome.id
        dispatcher.record(policy.name, outcome)
        return outcome
    finally:
        dispatcher.release(con, req, now_ns, inv_id)
        con.close()


@dataclass(frozen=True)
class Dispatched:
    """A decision and, when it dispatched, the investigation's outcome or why it could not run."""

    decision: Decision
    outcome: Outcome | None = None
    error: str | None = None


def dispatch(
    store: Store,
    dispatcher: Dispatcher,
    requests: list[Request],
    policy_factory: Callable[[InvestigationsConfig], Policy],
    now_ns: int,
    *,
    out_dir: str | None = None,
    what_if: WhatIfFactory | None = None,
) -> list[Dispatched]:
    """Decide on every request, then run the dispatched investigations: the one path of the scheduler
    (after each detection run), the alert webhooks and ``driftscope investigate``.

    ``policy_factory(config)`` builds a policy per investigation. A request that cannot run
    (its window is past the data) is reported with its error; the others still run.
    ``what_if(store, window)``, when given, builds the runner of each investigation's ``what_if`` tool.
    """
    con = store.cursor()
    try:
        decisions = [dispatcher.decide(con, r, now_ns) for r in requests]
    finally:
        con.close()
    out: list[Dispatched] = []
    for d in decisions:
        if d.action != "dispatch":
            out.append(Dispatched(d))
            continue
        policy = policy_factory(dispatcher.config)
        try:
            out.append(Dispatched(d, run_request(store, dispatcher, d, policy, now_ns=now_ns, out_dir=out_dir,
                                                 what_if=what_if)))  # fmt: skip
        except ValueError as exc:
            out.append(Dispatched(d, error=str(exc)))
    return out


def dispatch_findings(
    store: Store,
    dispatcher: Dispatcher,
    policy_factory: Callable[[InvestigationsConfig], Policy],
    now_ns: int,
    out_dir: str | None = None,
) -> list[Dispatched]:
    """Decide on every open finding and run the dispatched investigations (the continuation of a detection run)."""
    con = store.cursor()
    try:
        requests = finding_requests(con)
    finally:
        con.close()
    return dispatch(store, dispatcher, requests, policy_factory, now_ns, out_dir=out_dir)
