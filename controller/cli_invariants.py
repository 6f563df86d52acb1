"""``driftscope invariants extract|check`` and ``driftscope contract``: invariant drift on the command line.

Windows end at the newest span in the store (data time, never the wall clock).
Register on the main group with ``main.add_command(invariants)`` and ``main.add_command(contract)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import duckdb
import orjson
import pyarrow as pa

from controller.cli_support import common_options, format_table, parse_duration, settings_for
from store.connection import Store
from store.raw import newest_span_ns
from store.timeconv import iso_from_ns

_NS = 1_000_000_000


def _window(con: duckdb.DuckDBPyConnection, window: str) -> tuple[int, int]:
    """[end - window, end) in ns, where end is just after the newest span."""
    newest = newest_span_ns(con)
    if newest is None:
        raise click.ClickException("the store holds no spans yet: import or simulate telemetry first")
    end = newest + 1
    return end - int(parse_duration(window) * _NS), end


@click.group()
def invariants() -> None:
    """Learn invariants from a baseline and check behaviour against a committed spec."""


@invariants.command()
@common_options
@click.option("--window", default="24h", show_default=True, help="Baseline window, ending at the newest data.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the spec here.")
@click.option("--boundaries-from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Copy layers and boundary rules from this spec into the new one.")  # fmt: skip
def extract(
    config_path: str | None, store_path: str | None, window: str, out_path: Path | None, boundaries_from: Path | None
) -> None:
    """Learn invariants from the window, store them (table invariants) and print a YAML spec."""
    from analysis import rollup_all
    from detectors.invariants.model import save_invariants
    from detectors.invariants.monitor import extract as learn
    from detectors.invariants.slo import propose_slos
    from detectors.invariants.spec import Boundaries, Spec, dump_spec, load_spec

    boundaries = Boundaries()
    if boundaries_from is not None:
        try:
            boundaries = load_spec(boundaries_from).boundaries
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    store = Store(settings_for(config_path, store_path).store)
    try:
        con = store.cursor()
        rollup_all(con)  # counter ratios and Little's law read the per-minute rollups
        start, end = _window(con, window)
        laws = learn(con, start, end)
        slos = propose_slos(con, start, end)
        save_invariants(con, laws, start, end)
    finally:
        store.close()
    spec = Spec.from_invariants(
        laws, description=f"learned from {window} of telemetry", learned_from=iso_from_ns(start),
        learned_to=iso_from_ns(end), boundaries=boundaries, slos=slos,
    )  # fmt: skip
    text = dump_spec(spec)
    if out_path is None:
        sys.stdout.write(text)
    else:
        out_path.write_text(text)
        click.echo(f"{len(laws)} invariants written to {out_path}", err=True)


@invariants.command()
@common_options
@click.option("--spec", "spec_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--window", default="24h", show_default=True, help="Window checked, ending at the newest data.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def check(config_path: str | None, store_path: str | None, spec_path: Path, window: str, fmt: str) -> None:
    """Compare the spec with observed behaviour: violated, undeclared (suggestions) and stale invariants.

    Exit status 1 when a declared invariant or boundary rule is violated.
    """
    from analysis import rollup_all
    from detectors.invariants.spec_check import check_spec

    try:
        from detectors.invariants.spec import load_spec

        spec = load_spec(spec_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    store = Store(settings_for(config_path, store_path).store)
    try:
        con = store.cursor()
        rollup_all(con)
        start, end = _window(con, window)
        result = check_spec(con, spec, start, end)
    finally:
        store.close()
    rows: list[dict[str, Any]] = (
        [{"status": "violated", "invariant": v.invariant.label(), "detail": v.text, "sql": v.evidence.get("sql", "")}
         for v in result.violated]
        + [{"status": "undeclared", "invariant": i.label(), "detail": f"support {i.support:,d}", "sql": ""}
           for i in result.undeclared]
        + [{"status": "stale", "invariant": i.label(), "detail": "never exercised in the window", "sql": ""}
           for i in result.stale]
    )  # fmt: skip
    if fmt == "json":
        click.echo(
            orjson.dumps(
                {"window": [iso_from_ns(start), iso_from_ns(end)], "results": rows}, option=orjson.OPT_INDENT_2
            )
        )
    else:
        table = (
            pa.Table.from_pylist([{k: r[k] for k in ("status", "invariant", "detail")} for r in rows]) if rows else None
        )
        click.echo(format_table(table, "table") if table is not None else "spec holds: nothing to report")
        click.echo(
            f"{len(result.violated)} violated, {len(result.undeclared)} undeclared, {len(result.stale)} stale "
            f"({iso_from_ns(start)} .. {iso_from_ns(end)})"
        )
    if result.violated:
        sys.exit(1)


@click.command()
@common_options
@click.option("--window", default="24h", show_default=True, help="Window judged, ending at the newest data.")
@click.option("--min-score", default=80.0, show_default=True, type=click.FloatRange(0, 100),
              help="Exit 1 when any service scores below this (0-100).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def contract(config_path: str | None, store_path: str | None, window: str, min_score: float, fmt: str) -> None:
    """Telemetry contract per service: propagation, RED coverage, log correlation, resource attributes."""
    from detectors.invariants.telemetry_contract import contract as judge

    store = Store(settings_for(config_path, store_path).store)
    try:
        con = store.cursor()
        start, end = _window(con, window)
        services = judge(con, start, end)
    finally:
        store.close()
    rows = [
        {"service": s.service, "score": s.score, **{k: round(v, 4) for k, v in s.parts.items()},
         "missing": "; ".join(s.missing)}
        for s in services
    ]  # fmt: skip
    if fmt == "json":
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    else:
        click.echo(format_table(pa.Table.from_pylist(rows), "table") if rows else "no services in the window")
    failing = [s.service for s in services if s.score < min_score]
    if failing:
        click.echo(f"below {min_score:g}: {', '.join(failing)}", err=True)
        sys.exit(1)
