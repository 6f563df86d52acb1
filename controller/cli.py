"""The ``driftscope`` command line: thin verbs over library functions.

Each command parses its arguments, loads the configuration and calls one function from
``collector``, ``analysis``, ``detectors`` or ``reports``; errors a user can fix are
printed as one clear message with exit status 2.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv

from collector.importer import import_files
from collector.store import Store, StoreError, query_readonly
from controller.config import ConfigError, Settings, load_config

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    func = click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML configuration file.")(
        func
    )
    func = click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False),
        help="DuckDB store file [default: ./driftscope.duckdb].",
    )(func)
    return func


def _settings(config_path: str | None, store_path: str | None, **overrides: Any) -> Settings:
    if store_path:
        overrides["store"] = store_path
    try:
        return load_config(config_path, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


class _Group(click.Group):
    """Turns the library's user-facing errors into clean CLI errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.version_option(package_name="driftscope")
def main() -> None:
    """driftscope: drift analysis over OpenTelemetry traces, metrics and logs."""


@main.command()
@_common
@click.option("--otlp-http", help="OTLP/HTTP listen address [default: 127.0.0.1:4318].")
@click.option("--otlp-grpc", help="OTLP/gRPC listen address [default: 127.0.0.1:4317].")
@click.option("--http", "http_addr", help="API listen address [default: 127.0.0.1:8080].")
def serve(
    config_path: str | None, store_path: str | None, otlp_http: str | None, otlp_grpc: str | None, http_addr: str | None
) -> None:
    """Run the OTLP receivers and the API until interrupted."""
    from controller.service import serve as run_service

    server = {k: v for k, v in {"otlp_http": otlp_http, "otlp_grpc": otlp_grpc, "http": http_addr}.items() if v}
    settings = _settings(config_path, store_path, **({"server": server} if server else {}))
    try:
        run_service(settings)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


def _format_table(table: pa.Table, fmt: str) -> str:
    if fmt == "csv":
        buf = io.BytesIO()
        pa_csv.write_csv(table, buf)
        return buf.getvalue().decode()
    if fmt == "json":
        return orjson.dumps(table.to_pylist(), default=str, option=orjson.OPT_INDENT_2).decode() + "\n"
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    with pl.Config(tbl_rows=200, tbl_cols=50, fmt_str_lengths=80, tbl_hide_dataframe_shape=True):
        return f"{frame}\n({table.num_rows} rows)\n"


@main.command()
@_common
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def sql(config_path: str | None, store_path: str | None, query: str, fmt: str) -> None:
    """Run one read-only SQL query on the store and print the result."""
    settings = _settings(config_path, store_path)
    table = query_readonly(settings.store, query)
    click.echo(_format_table(table, fmt), nl=False)


@main.command(name="import")
@_common
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cmd(config_path: str | None, store_path: str | None, files: tuple[Path, ...]) -> None:
    """Load OTLP JSON-lines files (the Collector's file exporter output)."""
    settings = _settings(config_path, store_path)
    store = Store(settings.store)
    total = sum(p.stat().st_size for p in files)
    started = time.perf_counter()
    try:
        with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
            summary = import_files(store, files, progress=bar.update)
    finally:
        store.close()
    elapsed = time.perf_counter() - started
    for signal in ("traces", "metrics", "logs"):
        click.echo(f"{signal:8s} loaded {summary.loaded[signal]:>10,d}  rejected {summary.rejected[signal]:>8,d}")
    click.echo(f"bad lines {summary.bad_lines:,d}; {elapsed:.1f} s")
    for err in summary.errors:
        click.echo(f"  {err}", err=True)
    if summary.bad_lines or any(summary.rejected.values()):
        sys.exit(1)


@main.command()
@_common
def retention(config_path: str | None, store_path: str | None) -> None:
    """Delete raw rows older than the configured retention, now."""
    settings = _settings(config_path, store_path)
    store = Store(settings.store)
    try:
        deleted = store.enforce_retention(settings.retention.seconds_by_table(), time.time_ns())
    finally:
        store.close()
    for table, n in deleted.items():
        click.echo(f"{table:22s} deleted {n:,d}")


@main.command()
def scenarios() -> None:
    """List the scenario library, one line each."""
    from simulator.scenario import library, load_scenario

    for name in library():
        scenario = load_scenario(name)
        faults = ", ".join(sorted({f.kind for f in scenario.faults})) or "no fault"
        click.echo(f"{name:28s} {len(scenario.services):2d} services  {faults:44s} {scenario.description}")


@main.command()
@_common
@click.option(
    "--scenario", "scenario_ref", required=True, help="Library name (see `driftscope scenarios`) or TOML file."
)
@click.option("--hours", type=float, help="Hours after the history [default: the scenario's].")
@click.option("--history-days", type=float, help="Days of history before the scenario start [default: the scenario's].")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--otlp", "otlp_url", help="Send over OTLP/HTTP to this base URL (e.g. http://127.0.0.1:4318).")
@click.option(
    "--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path), help="Write ground truth JSON here."
)
def simulate(
    config_path: str | None,
    store_path: str | None,
    scenario_ref: str,
    hours: float | None,
    history_days: float | None,
    seed: int,
    otlp_url: str | None,
    labels_path: Path | None,
) -> None:
    """Simulate a scenario into the store (default) or to an OTLP endpoint (--otlp)."""
    from simulator.run import simulate as run_simulation
    from simulator.scenario import ScenarioError, load_scenario
    from simulator.sinks import OtlpSink, StoreSink

    try:
        scenario = load_scenario(scenario_ref)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    hours = scenario.hours if hours is None else hours
    history_days = scenario.history_days if history_days is None else history_days
    minutes = round(hours * 60) + round(history_days * 1440)
    store = None
    if otlp_url:
        sink: OtlpSink | StoreSink = OtlpSink(otlp_url)
    else:
        store = Store(_settings(config_path, store_path).store)
        sink = StoreSink(store)
    started = time.perf_counter()
    try:
        with click.progressbar(length=minutes, label=f"simulating {scenario.name}", file=sys.stderr) as bar:
            summary = run_simulation(
                scenario, sink, hours=hours, history_days=history_days, seed=seed, progress=bar.update
            )
    finally:
        if store is not None:
            store.close()
    elapsed = time.perf_counter() - started
    rows = ", ".join(f"{n:,d} {t}" for t, n in summary.rows.items())
    click.echo(f"{summary.minutes:,d} virtual minutes in {elapsed:.1f} s: {rows}")
    if labels_path:
        labels_path.write_text(orjson.dumps(summary.truth.to_dict(), option=orjson.OPT_INDENT_2).decode())
        click.echo(f"ground truth: {labels_path} ({len(summary.truth.faults)} faults)")


@main.command(name="rollup")
@_common
def rollup_cmd(config_path: str | None, store_path: str | None) -> None:
    """Bring the per-minute rollups up to date (the service schedules this every minute)."""
    from analysis import rollup_all

    store = Store(_settings(config_path, store_path).store)
    try:
        reports = rollup_all(store.cursor())
    finally:
        store.close()
    for r in reports:
        window = f"{r.start} .. {r.end}" if r.start else "no data"
        click.echo(f"{r.source:22s} {window:45s} {r.rows_written:>9,d} rows  late {r.late_rows:,d}  {r.seconds:.2f} s")
