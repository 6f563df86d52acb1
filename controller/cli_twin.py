"""``driftscope twin``: ``fit`` a digital twin (a scenario file) from a store's telemetry, ``check`` it.

``twin fit --window 24h [--end ISO] [--out world.toml]`` fits the window ending at the end
of data (``store.raw.data_end``) and writes the scenario with its evidence as comments (stdout
without ``--out``). ``twin check --twin world.toml --window 24h`` simulates the twin over the
same window and prints the deviation table and the verdict; exit 0 faithful, 3 deviates.
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
