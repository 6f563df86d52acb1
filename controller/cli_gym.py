"""``driftscope gym``: ``run`` (score a policy; ``--remediate`` also applies its first patch) and ``whatif``.

``gym whatif --scenario S --patch FILE [--at MIN]`` applies a patch to a scenario at a
scenario minute, re-simulates both futures from there with the same seed and prints the
test runner's verdict table. Exit codes as the gate's: 0 fixed, 1 harmful, 3 not fixed; a
patch that names what the world lacks (or a bad option) exits 2, nothing simulated.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import TypeVar

import click
import orjson

from controller.cli_support import common_options, settings_for
from investigations.config import investigations_config
from investigations.policies import policy_for


def _bad_input(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


T = TypeVar("T")


def _emit(row: Mapping[str, object], fmt: str) -> None:
    click.echo(orjson.dumps(row).decode() if fmt == "json" else "  ".join(f"{k}={v}" for k, v in row.items()))


def _in_gym(  # noqa: PLR0917
    run: Callable[..., T], config_path: str | None, store_path: str | None, scenario: str, policy: str, rate: float
) -> T:
    """``run(scenario, policy, work_dir, config=, rate_per_s=)`` in a temporary directory; bad input exits 1."""
    from simulator.scenario import ScenarioError

    config = investigations_config(settings_for(config_path, store_path))
    try:
        pol = policy_for(policy, config)
        with tempfile.TemporaryDirectory(prefix="driftscope-gym-") as tmp:
            return run(scenario, pol, tmp, config=config, rate_per_s=rate)
    except (ValueError, ScenarioError) as exc:
        raise click.ClickException(str(exc)) from None


def _score_diagnosis(  # noqa: PLR0917
    config_path: str | None, store_path: str | None, scenario: str, policy: str, rate: float, fmt: str
) -> None:
    """Simulate SCENARIO, investigate its fault with POLICY and print the diagnosis score."""
    from investigations.gym import run_gym

    score = _in_gym(run_gym, config_path, store_path, scenario, policy, rate)
    row = {"scenario": score.scenario, "rank": score.rank, "at1": score.at1, "at3": score.at3,
           "steps": score.steps, "tokens": score.tokens, "wall_s": round(score.wall_s, 2),
           "claims_verified": f"{score.verified}/{score.claims}", "top": score.top, "status": score.status}  # fmt: skip
    _emit(row, fmt)


@click.group("gym")
def gym() -> None:
    """Score investigation policies on simulator scenarios, and judge remediation patches."""


@gym.command("run")
@common_options
@click.option("--scenario", required=True, help="Scenario name (see `driftscope scenarios`).")
@click.option("--policy", type=click.Choice(["playbook", "claude"]), default="playbook", show_default=True)
@click.option("--rate", type=float, default=8.0, show_default=True, help="Arrival rate cap (req/s).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--remediate", is_flag=True, help="Apply the report's first patch at the alert + 5 min and judge it.")
def run(  # noqa: PLR0917  click passes every option as an argument
    config_path: str | None, store_path: str | None, scenario: str, policy: str, rate: float, fmt: str,
    remediate: bool,
) -> None:  # fmt: skip
    """Simulate SCENARIO, investigate its fault with POLICY and score the report (and its first patch)."""
    if not remediate:
        _score_diagnosis(config_path, store_path, scenario, policy, rate, fmt)
        return
    from remediation.gym import run_remediation
    from remediation.render import exit_code, table

    score = _in_gym(run_remediation, config_path, store_path, scenario, policy, rate)
    row = {"scenario": score.scenario, "rank": score.rank, "patches": score.patches, "patch": score.patch,
           "verdict": score.verdict, "ttr_min": score.ttr_min, "wall_s": round(score.wall_s, 2),
           "status": score.status}  # fmt: skip
    _emit(row, fmt)
    if fmt != "json" and score.result is not None:
        click.echo(table(score.result, f"patch 1: {score.patch}"))
    sys.exit(exit_code(score.verdict))


@gym.command("whatif")
@click.option("--scenario", required=True, help="Scenario name or TOML file.")
@click.option("--patch", "patch_path", required=True, help="Patch file (YAML or JSON).")
@click.option("--at", "at_min", type=float, help="Scenario minute the patch lands [default: first fault + 20].")
@click.option("--rate", type=float, default=8.0, show_default=True, help="Arrival rate cap (req/s).")
@click.option("--seed", type=int, default=3, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def whatif_cmd(  # noqa: PLR0917
    scenario: str, patch_path: str, at_min: float | None, rate: float, seed: int, fmt: str
) -> None:
    """Apply PATCH to SCENARIO at minute AT, re-simulate with the same seed, print the test runner's verdict."""
    from remediation.render import as_dict, exit_code, table
    from remediation.whatif import Timing, plan_minutes, short, whatif
    from simulator.patches import PatchError, load_patch, resolve
    from simulator.scenario import ScenarioError, load_scenario

    try:
        sc = short(load_scenario(scenario), rate)
        patch = load_patch(patch_path)
        minutes = plan_minutes(sc, at_min, Timing())
        resolve(patch, sc, minutes.patch)
    except (PatchError, ScenarioError, ValueError) as exc:
        _bad_input(str(exc))
        return
    if rate <= 0:
        _bad_input("--rate must be positive")
    with tempfile.TemporaryDirectory(prefix="driftscope-whatif-") as tmp:
        result = whatif(sc, patch, tmp, at_min=minutes.patch, rate_per_s=rate, seed=seed)
    if fmt == "json":
        doc = {"scenario": result.scenario, "patch": patch.model_dump(mode="json"), "at_min": result.minutes.patch,
               "rows": result.rows, "result": as_dict(result.result)}  # fmt: skip
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        m = result.minutes
        click.echo(table(result.result, f"{result.scenario}: {patch.describe()} at minute {m.patch} (fault at "
                         f"{m.fault}; judged over minutes {m.post_start}-{m.end} against {m.baseline_start}-{m.fault}; "
                         f"{sum(result.rows.values()):,} rows a future)"))  # fmt: skip
    sys.exit(exit_code(result.result.verdict))
