"""Run one investigation end to end: snapshot -> policy -> verification -> persisted report.

``investigate`` is what the CLI, the alert webhooks and the gym call. The budget is
enforced here (through the environment), not by the policy; when it runs out, or the
policy fails, a partial report says what was and was not established. Every step is
persisted in ``investigation_steps`` as it happens.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from investigations.budget import Budget, BudgetExhausted, Limits
from investigations.config import InvestigationsConfig
from investigations.environment import Environment, Step, Trigger
from investigations.policy import Policy
from investigations.redact import Redactor, sensitive_values_sql
from investigations.report import Claim, Report, ToolCall, partial_report, render_markdown, twin_trials
from investigations.snapshot import IncidentWindow, Snapshot, SnapshotError
from investigations.verify import verify_report
from simulator.patches import Patch
from store import investigations as inv_store
from store.connection import Store


@dataclass(frozen=True)
class Outcome:
    """What an investigation produced."""

    id: str
    status: str
    report: Report
    report_path: Path
    steps: int
    tokens: int
    cost_usd: float
    wall_s: float


def limits_of(config: InvestigationsConfig) -> Limits:
    return Limits(config.max_steps, config.max_tokens_total, config.max_cost_usd, config.max_wall_s)


def redactor_for(snapshot: Snapshot, keys: tuple[str, ...]) -> Redactor:
    """A redactor knowing every value the configured keys carry in the snapshot window."""
    values: list[str] = []
    if keys and snapshot.has("spans") and snapshot.has("logs"):
        sql = sensitive_values_sql(keys)
        values = [str(r[0]) for r in snapshot.query(sql, _used(sql, snapshot.window.params()), row_cap=20_000).rows]
    return Redactor(keys, values)


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _partial(env: Environment, reason: str) -> Report:
    claims = [Claim(text=f"{r.tool}: {r.summary}", call=ToolCall(tool=r.tool, args=r.args))
              for r in env.results if r.error is None]  # fmt: skip
    return partial_report(reason, claims, [])


def investigate(
    store: Store,
    trigger: Trigger,
    window: IncidentWindow,
    policy: Policy,
    config: InvestigationsConfig,
    *,
    out_dir: str | Path | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
    monotonic: Callable[[], float] = time.monotonic,
    what_if: Callable[[Patch], dict[str, Any]] | None = None,
) -> Outcome:
    """Investigate ``trigger`` over ``window`` of ``store`` with ``policy``; persist and return the outcome."""
    started_ns = clock_ns()
    raw = f"{trigger.fingerprint}|{window.start_ns}|{policy.name}|{started_ns}"
    inv_id = hashlib.sha256(raw.encode()).hexdigest()[:20]
    work = Path(out_dir or config.out_dir) / inv_id
    con = store.cursor()
    try:
        snapshot = Snapshot.extract(con, work, window, statement_timeout_s=config.statement_timeout_s,
                                    row_cap=config.row_cap)  # fmt: skip
    except Exception:
        con.close()
        raise
    try:
        inv_store.start(con, {
            "id": inv_id, "finding_id": trigger.finding_id, "fingerprint": trigger.fingerprint,
            "trigger": trigger.kind, "policy": policy.name, "title": trigger.title[:300],
            "window_start": window.start_ns, "window_end": window.end_ns, "baseline_start": window.baseline_start_ns,
            "snapshot_path": str(snapshot.path), "started_at": started_ns,
        })  # fmt: skip

        def persist(step: Step) -> None:
            inv_store.add_step(con, inv_id, asdict(step))

        budget = Budget(limits_of(config), clock=monotonic)
        env = Environment(snapshot, budget, redactor_for(snapshot, config.redact_keys), trigger, persist, monotonic,
                          what_if=what_if)  # fmt: skip
        status = "complete"
        try:
            report = policy.run(env)
        except BudgetExhausted as exc:
            status, report = "partial", _partial(env, str(exc))
        except (SnapshotError, RuntimeError, ValueError) as exc:  # a policy or API failure: say so, keep the steps
            status, report = "failed", _partial(env, f"{type(exc).__name__}: {str(exc)[:300]}")
        if report.status == "partial" and status == "complete":
            status = "partial"
        report = verify_report(report, env.rerun, config.tolerance)
        report = report.model_copy(update={"twin_trials": twin_trials(env.results)})
        work.mkdir(parents=True, exist_ok=True)
        md = work / "report.md"
        md.write_text(render_markdown(report, trigger.title), encoding="utf-8")
        (work / "report.json").write_bytes(orjson.dumps(report.model_dump(), option=orjson.OPT_INDENT_2))
        verified = sum(1 for c in report.claims if c.verified)
        inv_store.finish(con, inv_id, {
            "status": status, "report": report.model_dump(), "report_path": str(md.resolve()),
            "claims_total": len(report.claims), "claims_verified": verified, "steps": budget.steps,
            "tokens": budget.tokens, "cost_usd": budget.cost_usd, "wall_s": budget.wall_s, "finished_at": clock_ns(),
        })  # fmt: skip
        return Outcome(inv_id, status, report, md, budget.steps, budget.tokens, budget.cost_usd, budget.wall_s)
    finally:
        con.close()
        snapshot.close()
