"""``driftscope report``: write the drift report of a window (HTML, Markdown, JSON) and index it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from controller.cli_support import common_options, parse_duration, settings_for
from store.connection import Store

_FORMATS = {"all": ("html", "markdown", "json"), "html": ("html",), "markdown": ("markdown",), "json": ("json",)}


def _end_ns(text: str | None) -> int | None:
    """``--end`` as ns since the epoch: ISO-8601 (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO-8601 time like 2026-03-09T02:00Z", param_hint="--end"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


@click.command("report")
@common_options
@click.option("--window", default="24h", show_default=True, help="Length of the window the report covers.")
@click.option("--end", "end", help="Window end (ISO-8601, UTC) [default: the end of the data].")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="driftscope-reports", show_default=True,
    help="Directory the report's own directory is written into.",
)  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(list(_FORMATS)), default="all", show_default=True)
def report(  # noqa: PLR0917  click passes every option as an argument
    config_path: str | None, store_path: str | None, window: str, end: str | None, out_dir: str, fmt: str
) -> None:
    """Write the drift report of the window: findings, plots, deploys; print the paths written."""
    from reports import generate_report

    window_s = parse_duration(window)
    if window_s <= 0:
        raise click.BadParameter(f"{window!r} must be a positive duration", param_hint="--window")
    end_ns = _end_ns(end)
    store = Store(settings_for(config_path, store_path).store)
    try:
        model, paths = generate_report(
            store.cursor(), Path(out_dir), window_end_ns=end_ns, window_s=window_s, formats=_FORMATS[fmt]
        )
    finally:
        store.close()
    click.echo(model.headline)
    for form, path in paths.items():
        click.echo(f"{form:8s} {path}")
