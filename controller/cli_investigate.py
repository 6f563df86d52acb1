"""``driftscope investigate`` and ``driftscope gym``: run an investigation, or score a policy.

``investigate FINDING_ID`` or ``investigate --alert FILE.json`` (an Alertmanager v4 or
Grafana webhook payload) runs the chosen policy over a snapshot of the store and prints
the verified report. ``gym run --scenario S --policy P`` simulates the scenario, runs the
policy and scores it against the ground truth.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import click
import orjson
from prometheus_client import CollectorRegistry

from controller.api_alerts import alert_requests
from controller.cli_support import common_options, settings_for
from controller.dispatch import Dispatcher, Request, WhatIfFactory, dispatch, finding_request
from investigations.config import investigations_config
from investigations.policies import POLICIES, policy_for
from investigations.report import render_markdown
from investigations.snapshot import IncidentWindow
from store import Store, StoreError
from store import findings as store_findings


def _request(con: Any, finding_id: str | None, alert: str | None) -> Request:
    if (finding_id is None) == (alert is None):
        raise click.UsageError("give a FINDING_ID or --alert FILE.json (one of them)")
    if alert is not None:
        body = Path(alert).read_bytes()
        data = orjson.loads(body) if body.strip().startswith(b"{") else {}
        source = "alertmanager" if data.get("version") == "4" else "grafana"  # Grafana's payloads say "1"
        try:
            reqs = [r for r in alert_requests(source, body) if r.firing]
        except ValueError as exc:
            raise click.ClickException(f"{alert}: {exc}") from None
        if not reqs:
            raise click.ClickException(f"{alert}: no firing alert in the payload")
        r = reqs[0]
        return Request("manual", r.fingerprint, r.title, r.start_ns, r.end_ns, r.severity, 1, None, r.service,
                       r.operation, True, r.details)  # fmt: skip
    found = store_findings.finding(con, finding_id) if finding_id is not None else None
    if found is None:
        raise click.ClickException(f"no finding {finding_id!r} (see `driftscope findings`)")
    return finding_request(con, found, source="manual")


def _twin_trials(work_dir: str) -> WhatIfFactory:
    """The ``what_if`` runner of an investigation: its window's twin (the baseline fitted healthy, the incident as
    faults), patches judged by the gym's runner under ``work_dir``."""
    from twin.whatif import trial_runner

    def factory(store: Store, window: IncidentWindow) -> Any:
        baseline_min = max(10, round((window.start_ns - window.baseline_start_ns) / 60e9))
        return trial_runner(store.cursor, window.start_ns, window.end_ns, work_dir, baseline_min=baseline_min)

    return factory


@click.command("investigate")
@common_options
@click.argument("finding_id", required=False)
@click.option("--alert", type=click.Path(exists=True, dir_okay=False), help="Alertmanager or Grafana webhook JSON.")
@click.option("--policy", type=click.Choice(POLICIES), default=None, help="[default: investigations.policy]")
@click.option("--replay", "replay_of", help="Investigation id whose recorded steps --policy replay re-runs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="[default: investigations.out_dir]")
@click.option("--what-if", "what_if", is_flag=True, help="Give the policy a budgeted what_if tool (patches on a twin).")
def investigate(  # noqa: PLR0917  click passes every option as an argument
    config_path: str | None, store_path: str | None, finding_id: str | None, alert: str | None,
    policy: str | None, replay_of: str | None, fmt: str, out_dir: str | None, what_if: bool,
) -> None:  # fmt: skip
    """Investigate FINDING_ID or an alert; print the verified report."""
    settings = settings_for(config_path, store_path)
    config = investigations_config(settings)
    if not Path(settings.store).exists():
        raise click.ClickException(f"store {settings.store} does not exist")
    try:
        store = Store(settings.store)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        con = store.cursor()
        req = _request(con, finding_id, alert)
        try:
            pol = policy_for(policy or config.policy, config, replay_of=replay_of, con=con)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        dispatcher = Dispatcher(config, CollectorRegistry())
        with tempfile.TemporaryDirectory(prefix="driftscope-twin-trials-") as trials:
            factory = _twin_trials(trials) if what_if else None
            out = out_dir or config.out_dir
            [done] = dispatch(store, dispatcher, [req], lambda _: pol, time.time_ns(), out_dir=out, what_if=factory)
        if done.decision.action != "dispatch":
            raise click.ClickException(f"not dispatched: {done.decision.reason}")
        if done.outcome is None:
            raise click.ClickException(str(done.error))
        outcome = done.outcome
    finally:
        store.close()
    if fmt == "json":
        doc: dict[str, Any] = {"id": outcome.id, "status": outcome.status, "report_path": str(outcome.report_path)}
        doc["report"] = outcome.report.model_dump()
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "markdown":
        click.echo(render_markdown(outcome.report, req.title))
    else:
        click.echo(f"investigation {outcome.id} ({outcome.status}): {outcome.report.summary}")
        for i, c in enumerate(outcome.report.candidates, 1):
            click.echo(f"  {i}. {c.service} {c.operation or '-'}  {c.mechanism}  confidence {c.confidence:.2f}")
        verified = sum(1 for c in outcome.report.claims if c.verified)
        click.echo(f"  claims verified {verified}/{len(outcome.report.claims)}; report: {outcome.report_path}")
