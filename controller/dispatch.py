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
from dataclasses import dataclass, field
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.store import migrate
from investigations import store as inv_store
from investigations.config import InvestigationsConfig

_V1 = """
CREATE TABLE dispatch_decisions (
    decided_at TIMESTAMP_NS NOT NULL,
    source VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    finding_id VARCHAR,
    investigation_id VARCHAR,
    title VARCHAR NOT NULL
);
"""
MIGRATIONS = (_V1,)
VERSION_TABLE = "dispatch_schema_version"
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S


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


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    migrate(con, MIGRATIONS, VERSION_TABLE)
    inv_store.ensure_schema(con)


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

    def record(self, policy: str, outcome: Any) -> None:
        """Count a finished investigation (an ``investigations.run.Outcome``)."""
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
        if not manual and SEVERITY_RANK.get(req.severity, 0) < SEVERITY_RANK[cfg.min_severity]:
            return "below_min_severity"
        if req.source == "finding" and req.runs < cfg.persistence_runs:
            return "not_persistent"
        if not manual:
            last = con.execute(
                "SELECT max(epoch_ns(decided_at)) FROM dispatch_decisions "
                "WHERE fingerprint = ? AND action = 'dispatch'",
                [req.fingerprint],
            ).fetchone()
            if last and last[0] is not None and now_ns - int(last[0]) < cfg.cooldown_s * NS_PER_S:
                return "cooldown"
        if self._running >= cfg.concurrency:
            return "concurrency"
        day = now_ns - now_ns % NS_PER_DAY
        spent = con.execute(
            "SELECT coalesce(sum(tokens), 0), coalesce(sum(cost_usd), 0) FROM investigations "
            "WHERE started_at >= make_timestamp_ns(?)",
            [day],
        ).fetchone()
        assert spent is not None
        if spent[0] >= cfg.daily_tokens or spent[1] >= cfg.daily_cost_usd:
            return "daily_budget"
        return None

    def decide(self, con: duckdb.DuckDBPyConnection, req: Request, now_ns: int) -> Decision:
        """Decide, record and count; a dispatch takes a running slot (``release`` it when done)."""
        ensure_schema(con)
        with self._lock:
            reason = self._why_not(con, req, now_ns)
            action = "skip" if reason else "dispatch"
            if action == "dispatch":
                self._running += 1
                self.running.set(self._running)
            con.execute(
                "INSERT INTO dispatch_decisions VALUES (make_timestamp_ns(?), ?, ?, ?, ?, ?, NULL, ?)",
                [now_ns, req.source, req.fingerprint, action, reason or "ok", req.finding_id, req.title[:300]],
            )
        self.decisions.labels(req.source, action, reason or "ok").inc()
        return Decision(action, reason or "ok", req)

    def release(self, con: duckdb.DuckDBPyConnection, req: Request, now_ns: int, investigation_id: str | None) -> None:
        """Free the running slot of a dispatched request and link its investigation."""
        with self._lock:
            self._running = max(0, self._running - 1)
            self.running.set(self._running)
        if investigation_id:
            con.execute(
                "UPDATE dispatch_decisions SET investigation_id = ? WHERE fingerprint = ? AND action = 'dispatch' "
                "AND investigation_id IS NULL",
                [investigation_id, req.fingerprint],
            )


def finding_requests(con: duckdb.DuckDBPyConnection, lookback_s: float = 600.0) -> list[Request]:
    """A request for every open finding (the dispatcher then applies severity, persistence, cooldown)."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'findings'").fetchone()[0]:  # type: ignore[index]
        return []
    rows = con.execute(
        "SELECT id, fingerprint, severity, runs, service, operation, effect_text, detector, "
        "epoch_ns(coalesce(change_time, window_start)), epoch_ns(window_end) FROM findings "
        "WHERE status = 'open' ORDER BY id"
    ).fetchall()
    return [finding_request(r, lookback_s) for r in rows]


def finding_request(row: tuple[Any, ...], lookback_s: float = 600.0) -> Request:
    """A request from a findings row (id, fingerprint, severity, runs, service, operation, effect_text,
    detector, change_ns, window_end_ns)."""
    fid, fp, severity, runs, service, operation, effect, detector, change_ns, end_ns = row
    start = int(change_ns) - int(lookback_s * NS_PER_S)
    end = max(int(end_ns), start + 15 * 60 * NS_PER_S)
    title = f"{service or '?'} {operation or ''}: {effect} ({detector})".replace("  ", " ")
    return Request("finding", fp, title, start, end, severity, int(runs), fid, service, operation)


def alert_fingerprint(source: str, labels: dict[str, Any], given: str | None) -> str:
    """The alert's own fingerprint, or a hash of its sorted labels."""
    if given:
        return f"{source}:{given}"
    raw = "|".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{source}:" + hashlib.sha256(raw.encode()).hexdigest()[:16]


def data_end_ns(con: duckdb.DuckDBPyConnection) -> int | None:
    """The latest span start in the store (data time), None when there are no spans."""
    row = con.execute("SELECT epoch_ns(max(start_time)) FROM spans").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def run_request(
    store: Any, dispatcher: Dispatcher, decision: Decision, policy: Any, *, now_ns: int, out_dir: str | None = None
) -> Any:
    """Run a dispatched request's investigation, then release its slot; return the ``Outcome``.

    The incident window is the request's, clipped to the data; the baseline is
    ``baseline_s`` before it.
    """
    from investigations.environment import Trigger
    from investigations.run import investigate
    from investigations.snapshot import IncidentWindow

    req = decision.request
    con = store.cursor()
    inv_id = None
    try:
        end = data_end_ns(con)
        if end is None:
            raise ValueError("the store holds no spans to investigate")
        stop = min(req.end_ns, end + 1)
        if stop <= req.start_ns:
            raise ValueError(f"request window starts after the data ends ({req.title[:80]})")
        window = IncidentWindow.around(req.start_ns, stop, dispatcher.config.baseline_s)
        trigger = Trigger(req.source, req.title, req.service, req.operation, req.finding_id, req.fingerprint,
                          req.details)  # fmt: skip
        outcome = investigate(store, trigger, window, policy, dispatcher.config, out_dir=out_dir)
        inv_id = outcome.id
        dispatcher.record(policy.name, outcome)
        return outcome
    finally:
        dispatcher.release(con, req, now_ns, inv_id)
        con.close()


def dispatch_findings(
    store: Any,
    dispatcher: Dispatcher,
    policy_factory: Any,
    now_ns: int,
    out_dir: str | None = None,
) -> list[Decision]:
    """Decide on every open finding and run the dispatched investigations (the scheduler's job after detection).

    ``policy_factory(config)`` builds a policy per investigation. Returns every decision.
    """
    con = store.cursor()
    try:
        ensure_schema(con)
        decisions = [dispatcher.decide(con, r, now_ns) for r in finding_requests(con)]
    finally:
        con.close()
    for d in decisions:
        if d.action == "dispatch":
            run_request(store, dispatcher, d, policy_factory(dispatcher.config), now_ns=now_ns, out_dir=out_dir)
    return decisions
