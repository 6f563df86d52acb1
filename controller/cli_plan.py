"""``driftscope plan draft|check-design|check``: forward planning of a feature, wired to ``detectors.planning``.

- ``draft``: a feature contract from a description, the spec and today's baselines (the
  offline playbook, or Claude through tools over the same facts); every draft is validated
  and design-checked before it is written.
- ``check-design``: the plan against the spec's boundary rules, the call graph, the
  invariants and the SLO physics of its dependency chain, before any code exists.
- ``check``: the whole Feature Contract Checklist for one change (Behaviour from JUnit,
  Physics from the gate on the candidate's telemetry, Deployment from the repository, CI
  and the rollback plan, and the design rules again), one verdict table.

Exit status like the gate's: 0 pass / accepted, 1 fail / refused, 2 marginal (with
``--fail-on marginal``), 3 insufficient evidence, 4 usage error (bad arguments, a contract
with unknown operations or malformed fields, a file that is not JUnit, a path that is not
a repository: the message names the field or file). The spec comes from ``--spec`` or the
configuration's ``detection.spec``; baselines from the store over ``--window`` ending at
its newest span (or ``--end``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal, cast

import click
import duckdb
from pydantic import ValidationError

from controller.cli_gate import GateUsageError, UsageExit4Command
from controller.cli_support import common_options, parse_duration, settings_for
from controller.config import Settings
from controller.gate import EXIT_CODES, GateError, GateRequest, parse_side, run_gate
from detectors.invariants.contract_laws import known_laws
from detectors.invariants.spec import Spec, load_spec
from detectors.judge.contract import Contract, ContractError, dump_contract, load_contract, parse_contract
from detectors.judge.contract_invariants import invariant_checker
from detectors.planning.checklist import (
    CheckRow,
    PlanVerdict,
    behaviour_rows,
    ci_rows,
    decide,
    design_rows,
    physics_rows,
)
from detectors.planning.design import DesignResult, check_design
from detectors.planning.evidence import EvidenceError, read_check_runs, read_junit, repository_rows
from detectors.planning.facts import SystemFacts, build_facts, read_baselines
from detectors.planning.render import Format, render_checklist, render_design
from store.connection import connect_readonly
from store.errors import StoreError
from store.raw import newest_span_ns, service_versions
from store.timeconv import ns_from_datetime

__all__ = ["plan"]

_NS = 1_000_000_000


class PlanUsageError(GateUsageError):
    """A usage error of ``driftscope plan``: printed as 'Error: ...', exit status 4."""


class _PlanGroup(click.Group):
    command_class = UsageExit4Command


@click.group("plan", cls=_PlanGroup)
def plan() -> None:
    """Forward planning: draft a feature contract, check it at design time, then check the change."""


def _settings(config_path: str | None, store_path: str | None) -> Settings:
    try:
        return settings_for(config_path, store_path)
    except click.ClickException as exc:
        raise PlanUsageError(exc.message) from None


def _system_facts(
    settings: Settings, spec_path: str | None, store_path: str | None, window: str, end: str | None
) -> SystemFacts:
    """The spec (required) with the store's facts over the window ending at ``end``."""
    spec = _spec(spec_path, settings)
    if spec is None:
        raise PlanUsageError("no spec: give --spec FILE (the system's layers and rules) or set detection.spec")
    con = _store(store_path, settings)
    try:
        return _facts(con, spec, window, end)
    finally:
        if con is not None:
            con.close()


def _spec(spec_path: str | None, settings: Settings) -> Spec | None:
    path = spec_path or settings.detection.spec or None
    if path is None:
        return None
    try:
        return load_spec(Path(path))
    except ValueError as exc:
        raise PlanUsageError(str(exc)) from None


def _store(store_path: str | None, settings: Settings) -> duckdb.DuckDBPyConnection | None:
    """The store read-only; None when the default store does not exist (an explicit --store must)."""
    path = Path(settings.store)
    if not path.is_file():
        if store_path:
            raise PlanUsageError(f"store {store_path} does not exist")
        return None
    try:
        return connect_readonly(path)  # no progress bar in the JSON a CI job parses
    except StoreError as exc:
        raise PlanUsageError(str(exc)) from None


def _window(con: duckdb.DuckDBPyConnection, window: str, end: str | None) -> tuple[int, int]:
    try:
        length = int(parse_duration(window) * _NS)
    except click.BadParameter as exc:
        raise PlanUsageError(f"--window: {exc.message}") from None
    if end is not None:
        try:
            t = dt.datetime.fromisoformat(end)
        except ValueError:
            raise PlanUsageError(f"--end {end!r} is not an ISO-8601 time") from None
        stop = ns_from_datetime(t)
        return stop - length, stop
    newest = newest_span_ns(con)
    if newest is None:
        raise PlanUsageError("the store holds no spans: baselines need telemetry (or leave --store out)")
    return newest + 1 - length, newest + 1


def _facts(con: duckdb.DuckDBPyConnection | None, spec: Spec, window: str, end: str | None) -> SystemFacts:
    if con is None:
        return build_facts(spec)
    start, stop = _window(con, window, end)
    return build_facts(spec, read_baselines(con, start, stop), laws=tuple(known_laws(con)), window=(start, stop))


def _contract(path: str) -> Contract:
    try:
        return load_contract(path)
    except ContractError as exc:
        raise PlanUsageError(str(exc)) from None


def _design(contract: Contract, facts: SystemFacts) -> DesignResult:
    try:
        return check_design(contract, facts)
    except ContractError as exc:
        raise PlanUsageError(str(exc)) from None


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    click.echo(text, nl=False)


_spec_option = click.option(
    "--spec", "spec_path", type=click.Path(dir_okay=False), help="The system's spec (layers, rules) [detection.spec]."
)
_window_option = click.option("--window", default="6h", show_default=True, help="Baseline window, ending at --end.")
_end_option = click.option("--end", help="End of the baseline window (ISO-8601, UTC) [default: the newest span].")
_format_option = click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
                              show_default=True)  # fmt: skip


def _edge(text: str) -> tuple[str, str]:
    caller, sep, callee = text.partition("->")
    if not sep or ":" not in caller or ":" not in callee:
        raise PlanUsageError(f"--call {text!r} is not 'service:operation -> service:operation'")
    return caller.strip(), callee.strip()


@plan.command("draft")
@common_options
@_spec_option
@_window_option
@_end_option
@click.option("--feature", required=True, help="What the feature does, in words (quote operations it touches).")
@click.option("--policy", type=click.Choice(["playbook", "claude"]), default="playbook", show_default=True)
@click.option("--touch", multiple=True, help="An existing operation the feature changes (service:operation).")
@click.option("--add", "add_ops", multiple=True, help="An operation the feature adds (service:operation).")
@click.option("--call", "calls", multiple=True, help="A call the feature adds: 'service:op -> service:op'.")
@click.option("--tests-match", multiple=True, help="Keyword naming the feature's tests [default: from --feature].")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write the contract here (else stdout).")
def draft(  # noqa: PLR0917  click passes every option as an argument
    config_path: str | None, store_path: str | None, spec_path: str | None, window: str, end: str | None,
    feature: str, policy: str, touch: tuple[str, ...], add_ops: tuple[str, ...], calls: tuple[str, ...],
    tests_match: tuple[str, ...], out_path: str | None,
) -> None:  # fmt: skip
    """Draft a feature contract (YAML), validated and design-checked; exit 1 when the draft breaks a rule."""
    from detectors.planning.draft import DraftError, Hints, draft_contract

    settings = _settings(config_path, store_path)
    facts = _system_facts(settings, spec_path, store_path, window, end)
    hints = Hints(touch=touch, add=add_ops, calls=tuple(_edge(c) for c in calls), tests_match=tests_match)
    try:
        if policy == "claude":
            from investigations.config import investigations_config
            from investigations.plan_draft import PolicyError, draft_with_claude

            try:
                contract = draft_with_claude(feature, facts, hints, investigations_config(settings))
            except PolicyError as exc:  # the model produced no contract: the draft could not run
                raise PlanUsageError(f"claude: {exc}") from None
        else:
            contract = draft_contract(feature, facts, hints)
    except (DraftError, ValueError) as exc:
        raise PlanUsageError(str(exc)) from None
    result = _design(contract, facts)
    text = dump_contract(contract)
    if out_path:
        Path(out_path).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    click.echo(render_design(result, "table"), err=True, nl=False)
    raise SystemExit(0 if result.accepted else EXIT_CODES["fail"])


@plan.command("check-design")
@common_options
@_spec_option
@_window_option
@_end_option
@_format_option
@click.argument("contract_path", metavar="CONTRACT", type=click.Path(dir_okay=False))
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the rendered result to this file.")
def check_design_cmd(  # noqa: PLR0917
    config_path: str | None, store_path: str | None, spec_path: str | None, window: str, end: str | None,
    fmt: str, contract_path: str, output: str | None,
) -> None:  # fmt: skip
    """Check a plan against the boundary rules and invariants before code exists; exit 1 when refused."""
    contract = _contract(contract_path)
    settings = _settings(config_path, store_path)
    facts = _system_facts(settings, spec_path, store_path, window, end)
    result = _design(contract, facts)
    _emit(render_design(result, cast(Format, fmt)), output)
    raise SystemExit(0 if result.accepted else EXIT_CODES["fail"])


def _physics(
    con: duckdb.DuckDBPyConnection | None, contract_path: str, sides: tuple[str | None, str | None, str | None],
    facts: SystemFacts | None, alpha: float,
) -> list[CheckRow]:  # fmt: skip
    baseline, candidate, service = sides
    if (baseline is None) != (candidate is None):
        raise PlanUsageError("--baseline and --candidate go together (the Physics checks compare the two)")
    if baseline is None or candidate is None:
        why = "no --baseline/--candidate: the canary gate judges the candidate's telemetry after the deploy"
        return physics_rows(None, "", [], why)
    if con is None:
        raise PlanUsageError("--baseline/--candidate need a store with the candidate's telemetry (--store)")
    try:
        request = GateRequest(
            baseline=parse_side(baseline, "--baseline"), candidate=parse_side(candidate, "--candidate"),
            service=service, contract=Path(contract_path).read_text(encoding="utf-8"), alpha=alpha,
        )  # fmt: skip
        known = list(facts.laws) if facts is not None else known_laws(con)
        contract = parse_contract(request.contract or "", contract_path)
        names = [*contract.invariants.held, *contract.invariants.removed]
        result = run_gate(con, request, invariant_checker(con, known, names))
    except (GateError, ContractError, ValidationError, OSError) as exc:
        raise PlanUsageError(str(exc)) from None
    return physics_rows(result.verdict, result.summary, result.metrics, "")


def _versions(con: duckdb.DuckDBPyConnection | None, service: str | None) -> set[str] | None:
    if con is None or service is None:
        return None
    return service_versions(con, service) or None


@plan.command("check")
@common_options
@_spec_option
@_window_option
@_end_option
@_format_option
@click.argument("contract_path", metavar="CONTRACT", type=click.Path(dir_okay=False))
@click.option(
    "--repo", "repo_path", help="The change's git repository (infrastructure, Terraform, rollback procedure)."
)
@click.option("--base", help="Commit the change is measured from [default: merge base with the default branch].")
@click.option("--junit", "junit_paths", multiple=True, help="JUnit XML test results (repeatable).")
@click.option("--baseline", help="Gate baseline side (version=V and/or window=START/END) for the Physics checks.")
@click.option("--candidate", help="Gate candidate side, same syntax.")
@click.option("--service", help="The service under change (default: the contract's).")
@click.option("--ci-status", help="Result of the CI run (success, failure, cancelled, pending...).")
@click.option("--ci-checks", "ci_checks_path", type=click.Path(dir_okay=False),
              help="GitHub check-runs JSON of the commit (gh api repos/O/R/commits/SHA/check-runs).")  # fmt: skip
@click.option("--fail-on", type=click.Choice(["marginal", "fail"]), default="fail", show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True, max_open=True), default=0.01, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the rendered result to this file.")
def check_cmd(  # noqa: PLR0917
    config_path: str | None, store_path: str | None, spec_path: str | None, window: str, end: str | None,
    fmt: str, contract_path: str, repo_path: str | None, base: str | None, junit_paths: tuple[str, ...],
    baseline: str | None, candidate: str | None, service: str | None, ci_status: str | None,
    ci_checks_path: str | None, fail_on: str, alpha: float, output: str | None,
) -> None:  # fmt: skip
    """The Feature Contract Checklist for one change: Behaviour, Physics, Deployment, Design; one verdict."""
    contract = _contract(contract_path)
    settings = _settings(config_path, store_path)
    spec = _spec(spec_path, settings)
    con = _store(store_path, settings)
    try:
        facts = _facts(con, spec, window, end) if spec is not None else None
        design = _design(contract, facts) if facts is not None else None
        rows = design_rows(design, "no spec (--spec): design rules not checked")
        try:
            rows += behaviour_rows(contract, read_junit(junit_paths) if junit_paths else None)
            rows += _physics(con, contract_path, (baseline, candidate, service or contract.service), facts, alpha)
            checks = read_check_runs(ci_checks_path) if ci_checks_path else None
            ci = ci_rows(ci_status, checks)
            rows += repository_rows(contract, repo_path, base, ci, _versions(con, service or contract.service))
        except EvidenceError as exc:
            raise PlanUsageError(str(exc)) from None
    finally:
        if con is not None:
            con.close()
    verdict: PlanVerdict = decide(contract.change, rows)
    _emit(render_checklist(verdict, cast(Format, fmt)), output)
    code = EXIT_CODES[verdict.verdict]
    if verdict.verdict == "marginal" and cast(Literal["marginal", "fail"], fail_on) != "marginal":
        code = EXIT_CODES["pass"]
    raise SystemExit(code)
