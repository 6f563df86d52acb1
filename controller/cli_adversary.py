"""``driftscope adversary``: search random worlds for blind spots; show a world; measure detectable effects.

``adversary run --budget N --seed S`` spends N trials (simulate, detect, investigate,
score) on random worlds and around the ones that fail, shrinks failures to minimal
worlds and, with ``--write-regressions DIR``, writes them as scenario files plus a
manifest the test suite runs. ``adversary world SEED`` prints a world as a scenario file.
``adversary mde`` measures the smallest fault each detector path sees, per kind and traffic.
The library code is the ``adversary`` package; this module only parses and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson


def _world_config(max_rate: float, history: str, spans_max: float) -> object:
    from simulator.worlds import WorldConfig

    try:
        low, high = (float(x) for x in history.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected two hours LOW,HIGH (e.g. 6,24), got {history!r}", param_hint="--history-hours"
        ) from None
    if not 0 < low <= high:
        raise click.BadParameter("need 0 < LOW <= HIGH", param_hint="--history-hours")
    if max_rate < 1:
        raise click.BadParameter("must be >= 1 request/s", param_hint="--max-rate")
    return WorldConfig(rate_per_s=(1.0, max_rate), history_h=(low, high), spans_max=spans_max or None)


@click.group()
def adversary() -> None:
    """Random worlds searched for blind spots (missed faults, false alarms, wrong root causes)."""


@adversary.command()
@click.option("--budget", type=click.IntRange(1, 1000), required=True, help="Trials to spend (each a whole world).")
@click.option(
    "--seed",
    type=click.IntRange(0, 999),
    default=0,
    show_default=True,
    help="Search seed: worlds SEED*1000 .. SEED*1000+999 (seed 10 holds the benchmark's held-out worlds).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Trials in parallel.")
@click.option(
    "--write-regressions",
    "regressions",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write shrunk failures as scenario files + manifest into this directory (e.g. tests/regressions).",
)
@click.option(
    "--invariants/--no-invariants",
    default=False,
    show_default=True,
    help="Score recall on the invariant fault kinds too (the invariant checks always run, as in driftscope detect).",
)
@click.option("--max-rate", type=float, default=200.0, show_default=True, help="Largest mean request rate, req/s.")
@click.option("--history-hours", "history", default="6,48", show_default=True, help="History range LOW,HIGH in hours.")
@click.option(
    "--spans-max",
    type=float,
    default=2e6,
    show_default=True,
    help="Span budget per world (the rate is lowered to fit; 0 = none).",
)
@click.option("--shrink-trials", type=click.IntRange(0, 100), default=8, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def run(budget: int, seed: int, workers: int, regressions: Path | None, invariants: bool, max_rate: float,
        history: str, spans_max: float, shrink_trials: int, fmt: str) -> None:  # fmt: skip
    """Search BUDGET random worlds for blind spots and shrink what fails."""
    from adversary.search import HELD_OUT_SEARCH_SEED, SearchConfig, search
    from adversary.trial import FAILURE_KINDS, TrialConfig

    if seed == HELD_OUT_SEARCH_SEED:
        click.echo("warning: seed 10 holds the benchmark's held-out worlds; searching them spoils the figures",
                   err=True)  # fmt: skip
    config = SearchConfig(
        budget=budget, seed=seed, world=_world_config(max_rate, history, spans_max),  # type: ignore[arg-type]
        trial=TrialConfig(invariants=invariants), shrink_trials=shrink_trials, workers=workers,
        regressions=regressions,
    )  # fmt: skip
    report = search(config, progress=(lambda line: click.echo(line, err=True)) if fmt == "table" else None)
    benign = [r for r in report.results if r.category == "benign" and r.abstained is not None]
    counts = {k: sum(1 for f in report.found if f.failure.kind == k) for k in FAILURE_KINDS}
    if fmt == "json":
        out = {
            "trials": report.trials,
            "failures": counts,
            "abstention_rate": sum(1 for r in benign if r.abstained) / len(benign) if benign else None,
            "found": [
                {"world": f.world.seed, "kind": f.failure.kind, "detail": f.failure.detail, "origin": f.origin,
                 "subject": f.result.subject,
                 "regression": f.regression.file if f.regression else None}
                for f in report.found
            ],
        }  # fmt: skip
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    click.echo(f"{report.trials} trials ({len(report.results)} worlds searched, the rest shrinking)")
    click.echo("failures: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if benign:
        rate = sum(1 for r in benign if r.abstained) / len(benign)
        click.echo(f"abstention on benign alerts: {rate:.2f} ({len(benign)} investigations)")
    for f in report.found:
        where = f" -> {f.regression.file}" if f.regression else ""
        click.echo(f"  world {f.world.seed} {f.result.subject}: {f.failure.kind}: {f.failure.detail[:140]}{where}")


@adversary.command()
@click.argument("seed", type=int)
@click.option("--max-rate", type=float, default=200.0, show_default=True)
@click.option("--history-hours", "history", default="6,48", show_default=True)
@click.option("--spans-max", type=float, default=2e6, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the scenario here.")
def world(seed: int, max_rate: float, history: str, spans_max: float, out: Path | None) -> None:
    """Print the world of SEED as a scenario file (simulate it with `driftscope simulate --scenario FILE`)."""
    from simulator.scenario_toml import dump_scenario
    from simulator.worlds import generate_world

    w = generate_world(seed, _world_config(max_rate, history, spans_max))  # type: ignore[arg-type]
    notes = "".join(f"# {n}\n" for n in w.notes)
    text = (
        f"# world {seed}: {w.category} ({w.fault or w.perturbation or 'quiet'}), window [0, {w.window_end_min}) min\n"
    )
    text += notes + dump_scenario(w.scenario)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


@adversary.command()
@click.option("--kinds", default="", help="Fault kinds, comma-separated [default: the performance kinds].")
@click.option("--rates", default="0.2,1,5", show_default=True, help="Requests/s at the faulty operation.")
@click.option("--worlds", type=click.IntRange(1, 20), default=3, show_default=True, help="Worlds per cell.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--history-hours", "history", type=float, default=8.0, show_default=True)
def mde(kinds: str, rates: str, worlds: int, workers: int, history: float) -> None:
    """Measure the minimum detectable effect per fault kind and request rate (a Markdown table)."""
    from adversary.mde import KINDS, MULTIPLES, MdeConfig, describe, measure, stated_unit
    from adversary.search import run_many

    chosen = tuple(k for k in kinds.split(",") if k) or KINDS
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise click.BadParameter(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}", param_hint="--kinds")
    try:
        levels = tuple(float(r) for r in rates.split(","))
    except ValueError:
        raise click.BadParameter(f"expected numbers, got {rates!r}", param_hint="--rates") from None
    config = MdeConfig(kinds=chosen, rates=levels, worlds=worlds, history_h=history)
    cells = measure(config, run=lambda ws: run_many(ws, config.trial, workers),
                    progress=lambda line: click.echo(line, err=True))  # fmt: skip
    click.echo("| fault kind (unit) | stated minimum | " + " | ".join(f"{r:g} req/s" for r in levels) + " |")
    click.echo("|---|---|" + "---|" * len(levels))
    for kind in chosen:
        row = [c for c in cells if c.kind == kind]
        values = [describe(c) for c in row] if len(row) == len(levels) else [describe(row[0])] * len(levels)
        click.echo(f"| {kind} | {stated_unit(kind):g} | " + " | ".join(values) + " |")
    click.echo(f"multiples of the stated minimum tried: {', '.join(f'{m:g}' for m in MULTIPLES)}; "
               f"{worlds} worlds per cell, {history:g} h of history")  # fmt: skip
