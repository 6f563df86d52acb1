"""``driftscope detect`` and ``driftscope findings``: a detection run on the store, and its findings.

``detect`` rolls up, then runs exactly the scheduled job's detection (``controller.jobs.detect``:
the configured window, history, ``resolve_after_s`` and invariant spec, invariant findings
included), so the CLI and the service agree on the same store. ``--window`` and ``--history``
override the configuration for this run.
"""

from __future__ import annotations

from typing import Any

import click
import orjson

from controller.cli_support import common_options, format_table, parse_duration, settings_for
from controller.jobs import detect as detect_configured
from controller.jobs import plane_for
from detectors.findings import Finding, finding_dict
from detectors.registry import BY_NAME
from store.connection import Store, open_readonly
from store.errors import StoreError
from store.findings import findings_table, severity_rank


@click.command("detect")
@common_options
@click.option("--window", help="Window under test, ending at the newest data [default: detection.window_s].")
@click.option("--history", help="History the baselines learn from [default: detection.history_s].")
@click.option("--detectors", "names", default="", help="Comma-separated detector names (default: all, and invariants).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def detect(  # noqa: PLR0917  click passes every option as an argument
    config_path: str | None, store_path: str | None, window: str | None, history: str | None, names: str, fmt: str
) -> None:
    """Roll up, run every detector over the window, write and print findings."""
    chosen = tuple(n for n in names.split(",") if n)
    unknown = [n for n in chosen if n not in BY_NAME]
    if unknown:
        raise click.BadParameter(f"unknown detectors {unknown}; known: {', '.join(BY_NAME)}", param_hint="--detectors")
    overrides = {
        "window_s": parse_duration(window) if window else None,
        "history_s": parse_duration(history) if history else None,
    }
    detection = {k: v for k, v in overrides.items() if v is not None}
    settings = settings_for(config_path, store_path, **({"detection": detection} if detection else {}))
    store = Store(settings.store)
    plane = plane_for(settings)
    try:
        con = store.cursor()
        plane.rollup(con)
        done = detect_configured(con, settings, chosen, plane=plane)
        units: dict[tuple[str | None, str], str | None] = {}
        effects = {id(f): _effect_in_unit(con, f, units) for f in done.findings} if done is not None else {}
    except StoreError as exc:  # ClickHouse down or not the exporter's schema: the reason, no traceback
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if done is None:
        raise click.ClickException("no spans rolled up: the store holds no span data to detect on")
    for failure in done.failures:
        click.echo(f"detector failed: {failure}", err=True)
    for line in done.withheld:
        click.echo(f"withheld: {line}", err=True)
    found, counts = done.findings, done.counts
    if fmt == "json":
        click.echo(orjson.dumps([finding_dict(f) for f in found], option=orjson.OPT_INDENT_2, default=str).decode())
        return
    for f in sorted(found, key=lambda f: (severity_rank(f.severity), f.q_value)):
        click.echo(f"{f.severity:8s} {f.detector:18s} {f.signal.label():48s} {effects[id(f)]:40s} q={f.q_value:.1e}")
    click.echo(
        f"{len(found)} findings ({counts['new']} new, {counts['updated']} updated, {counts['resolved']} resolved)"
    )


def _effect_in_unit(con: Any, f: Finding, units: dict[tuple[str | None, str], str | None]) -> str:
    """The effect text as users read it: a metric's numbers in its declared unit."""
    from reports.read import effect_in_unit

    k = f.signal
    return effect_in_unit(
        con, f.effect_text, k.kind, service=k.service, metric=k.metric, before=f.before, after=f.after, units=units
    )


@click.command("findings")
@common_options
@click.option("--open", "only_open", is_flag=True, help="Only open and acknowledged findings.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def findings(config_path: str | None, store_path: str | None, only_open: bool, fmt: str) -> None:
    """List findings."""
    with open_readonly(settings_for(config_path, store_path).store) as con:
        table = findings_table(con, only_open=only_open)
    click.echo(format_table(table, fmt), nl=False)
