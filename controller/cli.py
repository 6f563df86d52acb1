"""The ``driftscope`` command line: thin verbs over library functions.

Each command parses its arguments, loads the configuration and calls one function from
``collector``, ``analysis``, ``detectors`` or ``reports``; errors a user can fix are
printed as one clear message with exit status 2.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from controller.cli_examples import epilog
from controller.cli_support import common_options, format_table, settings_for
from store.connection import Store, query_readonly
from store.errors import StoreError, StoreLockedError

LAZY_COMMANDS = {
    "detect": "controller.cli_detect:detect",
    "findings": "controller.cli_detect:findings",
    "report": "controller.cli_report:report",
    "detect-series": "controller.cli_series:detect_series_cmd",
    "gate": "controller.cli_gate:gate",
    "invariants": "controller.cli_invariants:invariants",
    "contract": "controller.cli_invariants:contract",
    "investigate": "controller.cli_investigate:investigate",
    "gym": "controller.cli_gym:gym",
    "plan": "controller.cli_plan:plan",
    "adversary": "controller.cli_adversary:adversary",
    "twin": "controller.cli_twin:twin",
    "whatif": "controller.cli_twin:whatif",
}
"""Commands in their own modules, imported only when run or listed: a command pays only for its own
imports (the gate's statistics alone take over a second to import)."""


COMMON_OPTIONS = ("--store", "--config", "--format")
"""Options a user may give before the command (``driftscope --store X sql ...``) as well as after it."""


def _move_common_options(args: list[str]) -> list[str]:
    """``args`` with leading common options moved after the command path (before a ``--``), where the
    command's own options parse them: ``--store X sql Q`` -> ``sql Q --store X``."""
    moved: list[str] = []
    rest = list(args)
    while rest:
        name = rest[0].split("=", 1)[0]
        if name not in COMMON_OPTIONS:
            break
        if "=" in rest[0]:
            moved.append(rest.pop(0))
        elif len(rest) >= 2:
            moved += [rest.pop(0), rest.pop(0)]
        else:
            break
    if not moved:
        return args
    cut = rest.index("--") if "--" in rest else len(rest)
    return rest[:cut] + moved + rest[cut:]


def _with_examples(command: click.Command, path: str) -> None:
    """Attach the example of ``path`` (and of every subcommand of a group) to its ``--help``."""
    if command.epilog is None:
        command.epilog = epilog(path)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _with_examples(sub, f"{path} {name}")


class _Group(click.Group):
    """Lazily loaded command modules; common options before the command; an example in every ``--help``;
    the library's user-facing errors as clean CLI errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _move_common_options(args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, attr = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _with_examples(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(
    cls=_Group,
    epilog="\b\nCommon options --store FILE, --config FILE and --format F go before or after the command.\n"
    'Example:\n  driftscope --store driftscope.duckdb sql "SELECT count(*) FROM spans"',
)
@click.version_option(package_name="driftscope")
def main() -> None:
    """driftscope: drift analysis over OpenTelemetry traces, metrics and logs."""


@main.command()
@common_options
@click.option("--otlp-http", help="OTLP/HTTP listen address [default: 127.0.0.1:4318].")
@click.option("--otlp-grpc", help="OTLP/gRPC listen address [default: 127.0.0.1:4317].")
@click.option("--http", "http_addr", help="API listen address [default: 127.0.0.1:8080].")
def serve(
    config_path: str | None, store_path: str | None, otlp_http: str | None, otlp_grpc: str | None, http_addr: str | None
) -> None:
    """Run the OTLP receivers and the API until interrupted."""
    from controller.service import serve as run_service

    server = {k: v for k, v in {"otlp_http": otlp_http, "otlp_grpc": otlp_grpc, "http": http_addr}.items() if v}
    settings = settings_for(config_path, store_path, **({"server": server} if server else {}))
    try:
        run_service(settings)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@common_options
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--api", "api_url", help="Query a running `driftscope serve` at this base URL (POST /api/sql).")
@click.option("--token", help="Bearer token for --api [default: auth.api_token of the configuration].")
def sql(
    config_path: str | None, store_path: str | None, query: str, fmt: str, api_url: str | None, token: str | None
) -> None:
    """Run one read-only SQL query on the store (or a running service's, with --api) and print the result."""
    settings = settings_for(config_path, store_path)
    if api_url:
        from controller.cli_sql import query_api

        table = query_api(api_url, query, token if token is not None else settings.auth.api_token)
    else:
        try:
            table = query_readonly(settings.store, query)
        except StoreLockedError as exc:
            raise click.ClickException(
                f"{exc}. `driftscope serve` holds this store: query it through the service with "
                f'`driftscope sql --api http://{settings.server.http} "{query[:60]}"`'
            ) from None
    click.echo(format_table(table, fmt), nl=False)


@main.command(name="import")
@common_options
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cmd(config_path: str | None, store_path: str | None, files: tuple[Path, ...]) -> None:
    """Load OTLP JSON-lines files (the Collector's file exporter output)."""
    from collector.importer import import_files

    settings = settings_for(config_path, store_path)
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
@common_options
def retention(config_path: str | None, store_path: str | None) -> None:
    """Delete raw rows older than the configured retention, now."""
    settings = settings_for(config_path, store_path)
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
@common_options
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
        store = Store(settings_for(config_path, store_path).store)
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
@common_options
def rollup_cmd(config_path: str | None, store_path: str | None) -> None:
    """Bring the per-minute rollups up to date (the service schedules this every minute)."""
    from analysis import rollup_all
    from controller.jobs import plane_for

    settings = settings_for(config_path, store_path)
    store = Store(settings.store)
    try:
        plane = plane_for(settings)
        if plane.name != "duckdb":  # the ClickHouse plane reports totals (its runs are per exporter table)
            done = plane.rollup(store.cursor())
            click.echo(f"{plane.name}: {done['rows']:,d} rows, late {done['late_rows']:,d}")
            return
        reports = rollup_all(store.cursor())
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    for r in reports:
        window = f"{r.start} .. {r.end}" if r.start else "no data"
        click.echo(f"{r.source:22s} {window:45s} {r.rows_written:>9,d} rows  late {r.late_rows:,d}  {r.seconds:.2f} s")


@main.command()
@click.option(
    "--store",
    "store_path",
    default="driftscope-demo.duckdb",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Store file for the demo (recreated).",
)
@click.option(
    "--out",
    "out_dir",
    default="driftscope-reports",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--history-days", default=7.0, show_default=True, type=click.FloatRange(0.1, 28))
@click.option("--rate", default=3.0, show_default=True, type=click.FloatRange(0.5, 50), help="Mean requests/s.")
@click.option("--seed", default=7, show_default=True, type=int)
def demo(store_path: Path, out_dir: Path, history_days: float, rate: float, seed: int) -> None:
    """Simulate a week, stream an incident over OTLP into the service, detect it, write the report."""
    from controller.demo import DemoPlan, run_demo

    started = time.perf_counter()
    plan = DemoPlan(history_days=history_days, rate_per_s=rate, seed=seed)
    result = run_demo(plan, store_path, out_dir, lambda line: click.echo(line, err=True))
    click.echo("")
    click.echo(f"driftscope demo: {time.perf_counter() - started:.0f} s on {store_path}")
    click.echo(
        f"  {result.spans_history:,d} spans of history, {result.spans_streamed:,d} streamed over OTLP; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    )
    click.echo(f"  {len(result.findings)} open findings; the strongest:")
    for f in result.findings[:8]:
        where = f"{f['service']}:{f['operation']}" if f.get("operation") else str(f.get("service") or "")
        click.echo(f"    [{f['severity']:8s}] {where:28s} {f['detector']:18s} {f['effect_text']}")
    for inv in result.investigations[:3]:
        claims = f"{inv.get('claims_verified') or 0}/{inv.get('claims_total') or 0} claims verified"
        click.echo(f"  investigation [{inv['policy']}, {inv['status']}, {claims}]: {inv['title']}")
        if inv.get("report_path"):
            click.echo(f"    {inv['report_path']}")
    for kind, path in result.report_paths.items():
        click.echo(f"  report ({kind}): {path}")
