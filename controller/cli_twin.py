"""``driftscope twin``: ``fit`` a digital twin (a scenario file) from a store's telemetry, ``check`` it.

``twin fit --window 24h [--end ISO] [--out world.toml]`` fits the window ending at the end
of data (``store.raw.data_end``) and writes the scenario with its evidence as comments (stdout
without ``--out``). ``twin check --twin world.toml --window 24h`` simulates the twin over the
same window and prints the deviation table and the verdict; exit 0 faithful, 3 deviates.

``whatif --patch FILE --since 20m`` tests remediation patches on the twin of the live store:
the healthy system fitted before the incident, the incident written as faults on it
(``twin.whatif``), each patch judged by the gym's test runner.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from controller.cli_support import common_options, parse_duration, settings_for


def _window(store: str, window: str, end: str | None) -> tuple[int, int]:
    import datetime as dt

    from store import open_readonly
    from store.raw import data_end

    seconds = parse_duration(window)
    if end is not None:
        try:
            stamp = dt.datetime.fromisoformat(end)
        except ValueError:
            raise click.BadParameter(f"{end!r} is not an ISO time", param_hint="--end") from None
        end_ns = int((stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp() * 1e9)
    else:
        with open_readonly(store) as con:
            found = data_end(con)
        if found is None:
            raise click.ClickException(f"store {store} holds no spans: nothing to fit a twin from")
        end_ns = found
    return end_ns - int(seconds * 1e9), end_ns


@click.group("twin")
def twin() -> None:
    """Fit a digital twin of the system from its telemetry, and check it against that telemetry."""


@twin.command("fit")
@common_options
@click.option("--window", default="24h", show_default=True, help="How much telemetry to fit (15m, 6h, 24h, 7d).")
@click.option("--end", help="End of the window (ISO time, UTC unless given) [default: end of data].")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write the scenario here [default: stdout].")
@click.option("--name", default="twin", show_default=True, help="Scenario name.")
@click.option("--min-samples", type=int, default=50, show_default=True,
              help="Successful spans an operation needs (fewer: a fixed-latency stub).")  # fmt: skip
def fit_cmd(  # noqa: PLR0917  click passes every option as an argument
    config_path: str | None, store_path: str | None, window: str, end: str | None, out_path: str | None, name: str,
    min_samples: int,
) -> None:  # fmt: skip
    """Fit a scenario in the simulator's format from the store's telemetry."""
    from store import open_readonly
    from twin.fit import TwinError, fit_twin
    from twin.render import render

    store = settings_for(config_path, store_path).store
    start_ns, end_ns = _window(store, window, end)
    try:
        with open_readonly(store) as con:
            fit = fit_twin(con, start_ns, end_ns, name=name, min_samples=min_samples)
    except TwinError as exc:
        raise click.ClickException(str(exc)) from None
    text = render(fit)
    if out_path:
        Path(out_path).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out_path}: {len(fit.ops)} operations, {len(fit.edges)} call edges, "
                   f"{len(fit.stubs)} stubs, from {fit.spans:,} spans", err=True)  # fmt: skip
        for ref, why in fit.stubs.items():
            click.echo(f"  stub {ref}: {why}", err=True)
    else:
        click.echo(text, nl=False)


@twin.command("check")
@common_options
@click.option("--twin", "twin_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The twin's scenario file (from `twin fit`).")  # fmt: skip
@click.option("--window", default="24h", show_default=True, help="The window the twin was fitted on.")
@click.option("--end", help="End of the window (ISO time) [default: end of data].")
def check_cmd(config_path: str | None, store_path: str | None, twin_path: str, window: str, end: str | None) -> None:
    """Simulate the twin over the window and compare it per operation with the store."""
    from simulator.scenario import ScenarioError, load_scenario
    from twin.check import check_twin, table

    store = settings_for(config_path, store_path).store
    start_ns, end_ns = _window(store, window, end)
    try:
        scenario = load_scenario(twin_path)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="driftscope-twin-") as tmp:
        result = check_twin(scenario, store, start_ns, end_ns, tmp)
    click.echo(table(result))
    sys.exit(0 if result.verdict == "faithful" else 3)


@click.command("whatif")
@common_options
@click.option("--patch", "patch_paths", required=True, multiple=True, help="Patch file (YAML or JSON); repeatable.")
@click.option("--since", help="The incident started this long before the end of data (e.g. 20m).")
@click.option("--incident-start", help="The incident's start (ISO time, UTC unless given).")
@click.option("--baseline", default="60m", show_default=True, help="Healthy window fitted before the incident.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def whatif(  # noqa: PLR0917
    config_path: str | None, store_path: str | None, patch_paths: tuple[str, ...], since: str | None,
    incident_start: str | None, baseline: str, fmt: str,
) -> None:  # fmt: skip
    """Test remediation patches on the twin of the live store (fitted before and during the incident).

    Exit codes as `gym whatif`, for the first patch: 0 fixed, 1 harmful, 3 not fixed; 2 bad input.
    """
    import datetime as dt

    import orjson

    from remediation.render import as_dict, exit_code, table
    from simulator.patches import PatchError, load_patch
    from store import open_readonly
    from store.raw import data_end
    from twin.fit import TwinError
    from twin.whatif import twin_whatif

    store = settings_for(config_path, store_path).store
    if (since is None) == (incident_start is None):
        click.echo("Error: give --since or --incident-start (one of them)", err=True)
        sys.exit(2)
    try:
        patches = [load_patch(p) for p in patch_paths]
    except PatchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    with open_readonly(store) as con:
        end_ns = data_end(con)
        if end_ns is None:
            raise click.ClickException(f"store {store} holds no spans: nothing to fit a twin from")
        if since is not None:
            start_ns = end_ns - int(parse_duration(since) * 1e9)
        else:
            assert incident_start is not None
            stamp = dt.datetime.fromisoformat(incident_start)
            start_ns = int((stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp() * 1e9)
        try:
            with tempfile.TemporaryDirectory(prefix="driftscope-twin-whatif-") as tmp:
                out = twin_whatif(con, patches, start_ns, end_ns, tmp,
                                  baseline_min=round(parse_duration(baseline) / 60))  # fmt: skip
        except (TwinError, PatchError, ValueError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
    changes = out.twin.changes
    if fmt == "json":
        doc = {"incident": {"faults": changes.faults, "notes": changes.notes, "minutes_seen": out.twin.minutes_seen},
               "patches": [{"patch": r.patch.model_dump(mode="json"), "at_min": r.minutes.patch,
                            "result": as_dict(r.result)} for r in out.results]}  # fmt: skip
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(f"twin of the incident ({out.twin.minutes_seen} min seen), as faults on the healthy twin:")
        for note in changes.notes:
            click.echo(f"  {note}")
        for r in out.results:
            click.echo(table(r.result, f"on the twin: {r.patch.describe()} at incident minute {r.minutes.patch}"))
    sys.exit(exit_code(out.results[0].result.verdict))
