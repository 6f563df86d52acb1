"""The Feature Contract Checklist for one change: rows per section, and one verdict.

Sections, each a list of :class:`CheckRow` built by a pure function of its evidence:

- **Behaviour** (``behaviour_rows``): for every layer the contract requires (unit,
  integration, E2E), the change's tests (JUnit cases whose id contains a ``tests.match``
  keyword) are present and pass; per operation naming ``tests`` keywords, each required
  layer has a passing test of it; failures elsewhere in the suite make it marginal.
- **Physics** (``physics_rows``): the observability gate on the candidate's telemetry
  (its verdict, and every contract check: SLOs, span attributes, metrics, histograms, logs
  with trace context, propagation, edges, the contract's invariants by the invariant
  checker).
- **Deployment** (``deployment_rows``): infrastructure files changed exactly when the
  contract says infrastructure is touched; Terraform formatted and valid; CI status; a
  rollback plan naming a version, with a documented procedure.
- **Design** (``design_rows``): the design-time rules still hold for the contract as merged.

The verdict (``decide``): fail when any row fails; insufficient when evidence is missing
or too thin (no test results, CI still running, too little telemetry); marginal when a
row is marginal; pass otherwise. "not_checked" rows (evidence not asked for, such as
physics before a canary exists) never pass or fail a change; they are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict

from detectors.judge.contract import Contract
from detectors.judge.metrics import MetricResult, Outcome
from detectors.planning.design import DesignResult
from detectors.planning.junit import TestCase, layer_of, matches
from detectors.planning.terraform import TerraformReport

__all__ = [
    "CheckRow",
    "PlanVerdict",
    "behaviour_rows",
    "ci_rows",
    "decide",
    "deployment_rows",
    "design_rows",
    "physics_rows",
]

Section = Literal["behaviour", "physics", "deployment", "design"]
VerdictName = Literal["pass", "marginal", "fail", "insufficient"]
CI_PASSED = ("success", "neutral", "skipped")
CI_FAILED = ("failure", "cancelled", "timed_out", "action_required", "startup_failure", "stale")


class CheckRow(BaseModel):
    """One line of the checklist."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    section: Section
    name: str
    outcome: Outcome
    text: str


class PlanVerdict(BaseModel):
    """The checklist's answer for one change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    change: str
    verdict: VerdictName
    summary: str
    reasons: list[str]
    rows: list[CheckRow]


def _row(section: Section, name: str, outcome: Outcome, text: str) -> CheckRow:
    return CheckRow(section=section, name=name, outcome=outcome, text=text)


def _layer_text(cases: Sequence[TestCase]) -> tuple[Outcome, str]:
    bad = [c for c in cases if c.outcome in ("failed", "error")]
    ran = [c for c in cases if c.outcome == "passed"]
    if bad:
        names = ", ".join(f"{c.id} ({c.outcome})" for c in bad[:3]) + (" ..." if len(bad) > 3 else "")
        return "fail", f"{len(bad)} of {len(cases)} failed: {names}"
    if not ran:
        return "fail", f"{len(cases)} skipped, none ran" if cases else "no tests"
    skipped = len(cases) - len(ran)
    return "pass", f"{len(ran)} passed" + (f", {skipped} skipped" if skipped else "")


def behaviour_rows(contract: Contract, cases: Sequence[TestCase] | None) -> list[CheckRow]:
    """Tests per required layer, per operation with ``tests`` keywords, and the rest of the suite."""
    t = contract.tests
    if cases is None:
        return [_row("behaviour", "tests", "insufficient", "no test results given (--junit FILE, JUnit XML)")]
    layered = [(c, layer_of(c, t)) for c in cases]
    mine = [(c, layer) for c, layer in layered if matches(c, t.match)]
    which = f"matching {', '.join(t.match)}" if t.match else "of the change"
    out: list[CheckRow] = []
    for layer in t.required:
        of_layer = [c for c, lay in mine if lay == layer]
        outcome, text = _layer_text(of_layer)
        if not of_layer:
            text = f"no {layer} tests {which} among {len(cases)} test cases"
        out.append(_row("behaviour", f"{layer} tests", outcome, text))
    for op in contract.operations:
        if not op.tests:
            continue
        per = {layer: [c for c, lay in mine if lay == layer and matches(c, op.tests)] for layer in t.required}
        missing = [layer for layer, cs in per.items() if not any(c.outcome == "passed" for c in cs)]
        counts = ", ".join(f"{layer} {sum(c.outcome == 'passed' for c in cs)}" for layer, cs in per.items())
        text = f"passing tests: {counts}" + (f"; none passing in {', '.join(missing)}" if missing else "")
        out.append(_row("behaviour", f"tests of {op.name}", "fail" if missing else "pass", text))
    others = [c for c, _ in layered if not matches(c, t.match) and c.outcome in ("failed", "error")]
    text = f"{len(others)} other test(s) failing, e.g. {others[0].id}" if others else f"{len(cases)} test cases read"
    out.append(_row("behaviour", "rest of the suite", "marginal" if others else "pass", text))
    return out


def physics_rows(verdict: str | None, summary: str, metrics: Sequence[MetricResult], why_not: str) -> list[CheckRow]:
    """The gate's verdict and every contract check; ``verdict`` None: not checked, because ``why_not``."""
    if verdict is None:
        return [_row("physics", "observability gate", "not_checked", why_not)]
    outcome: Outcome = verdict  # type: ignore[assignment]  # the gate's verdicts are outcomes
    rows = [_row("physics", "observability gate", outcome, summary)]
    rows += [
        _row("physics", m.name.removeprefix("contract "), m.outcome, m.text) for m in metrics if m.kind == "contract"
    ]
    return rows


def ci_rows(status: str | None, checks: Sequence[tuple[str, str, str | None]] | None) -> list[CheckRow]:
    """CI: one ``status`` (e.g. a job's result) and/or check runs as (name, status, conclusion)."""
    if status is None and checks is None:
        return [_row("deployment", "CI", "not_checked", "no CI status given (--ci-status or --ci-checks)")]
    out: list[CheckRow] = []
    if status is not None:
        s = status.lower()
        outcome: Outcome = "pass" if s in CI_PASSED else "fail" if s in CI_FAILED else "insufficient"
        out.append(_row("deployment", "CI", outcome, f"status {status}"))
    if checks is not None:
        failed = [n for n, _, c in checks if c in CI_FAILED]
        running = [n for n, st, c in checks if st != "completed" or c is None]
        if failed:
            out.append(_row("deployment", "CI checks", "fail", f"failed: {', '.join(failed)}"))
        elif running:
            out.append(_row("deployment", "CI checks", "insufficient", f"still running: {', '.join(running)}"))
        else:
            out.append(
                _row("deployment", "CI checks", "pass" if checks else "insufficient", f"{len(checks)} checks passed")
            )
    return out


def _infra_row(contract: Contract, changed: Sequence[str] | None) -> CheckRow:
    infra = contract.infrastructure
    if changed is None:
        return _row("deployment", "infrastructure", "not_checked", "no repository given (--repo)")
    touched = [p for p in changed if any(fnmatchcase(p, g) for g in infra.paths)]
    shown = ", ".join(touched[:5]) + (" ..." if len(touched) > 5 else "")
    if infra.touched and not touched:
        return _row(
            "deployment",
            "infrastructure",
            "fail",
            f"declared touched, but no file under {', '.join(infra.paths)} changed",
        )
    if not infra.touched and touched:
        return _row(
            "deployment", "infrastructure", "fail", f"changed but not declared (infrastructure.touched: false): {shown}"
        )
    return _row(
        "deployment",
        "infrastructure",
        "pass",
        f"changed: {shown}" if touched else "no infrastructure change, none declared",
    )


def _terraform_rows(reports: Sequence[TerraformReport] | None, why_not: str) -> list[CheckRow]:
    if reports is None:
        return [_row("deployment", "terraform", "not_checked", why_not)]
    out = []
    for r in reports:
        problems = [f"not formatted: {', '.join(r.unformatted)}"] if r.unformatted else []
        problems += list(r.errors[:5])
        text = "; ".join(problems) if problems else "formatted, configuration valid"
        out.append(_row("deployment", f"terraform {r.directory}", "fail" if problems else "pass", text))
    return out


def _rollback_row(contract: Contract, procedure_text: str | None, versions: set[str] | None, read: bool) -> CheckRow:
    """The rollback plan; ``read``: whether the repository was read (else a named procedure is not checked)."""
    rb = contract.rollback
    if rb.to_version is None:
        return _row("deployment", "rollback plan", "fail", "rollback.to_version: no version to roll back to")
    if rb.procedure is None and not rb.steps:
        return _row(
            "deployment", "rollback plan", "fail", "no documented procedure (rollback.procedure or rollback.steps)"
        )
    if rb.procedure is not None and not read:
        return _row(
            "deployment", "rollback plan", "not_checked", f"to {rb.to_version}; {rb.procedure} not read (no --repo)"
        )
    if rb.procedure is not None and not (procedure_text or "").strip():
        what = "is empty" if procedure_text is not None else "does not exist in the repository"
        return _row("deployment", "rollback plan", "fail", f"rollback.procedure {rb.procedure} {what}")
    if versions is not None and rb.to_version not in versions:
        seen = ", ".join(sorted(versions)) or "none"
        return _row(
            "deployment", "rollback plan", "marginal", f"to {rb.to_version}, never seen serving (versions: {seen})"
        )
    if procedure_text is not None and rb.to_version not in procedure_text:
        return _row("deployment", "rollback plan", "marginal", f"{rb.procedure} does not name {rb.to_version}")
    how = rb.procedure or f"{len(rb.steps)} steps"
    return _row("deployment", "rollback plan", "pass", f"to {rb.to_version}, procedure: {how}")


def deployment_rows(
    contract: Contract,
    *,
    changed: Sequence[str] | None,
    terraform: Sequence[TerraformReport] | None,
    terraform_why_not: str,
    ci: list[CheckRow],
    procedure_text: str | None,
    versions: set[str] | None,
) -> list[CheckRow]:
    """Infrastructure, Terraform, CI and the rollback plan (evidence gathered by the caller)."""
    return [
        _infra_row(contract, changed),
        *_terraform_rows(terraform, terraform_why_not),
        *ci,
        _rollback_row(contract, procedure_text, versions, read=changed is not None),
    ]


def design_rows(result: DesignResult | None, why_not: str) -> list[CheckRow]:
    """Each design rule as a row (violations named), or one not-checked row."""
    if result is None:
        return [_row("design", "design rules", "not_checked", why_not)]
    out = []
    for rule in result.rules:
        broken = [v.text for v in result.violations if v.rule == rule.rule]
        if not rule.checked:
            out.append(_row("design", rule.rule, "not_checked", "no baselines (no store)"))
            continue
        out.append(_row("design", rule.rule, "fail" if broken else "pass", "; ".join(broken) or "kept"))
    return out


def decide(change: str, rows: Sequence[CheckRow]) -> PlanVerdict:
    """The verdict over every row (see the module docstring)."""
    by = {o: [r for r in rows if r.outcome == o] for o in ("fail", "insufficient", "marginal", "not_checked", "pass")}
    name: VerdictName
    if by["fail"]:
        name, head = "fail", f"{len(by['fail'])} check(s) failed"
    elif by["insufficient"]:
        name, head = "insufficient", f"{len(by['insufficient'])} check(s) lack evidence"
    elif by["marginal"]:
        name, head = "marginal", f"{len(by['marginal'])} check(s) marginal"
    else:
        name, head = "pass", f"{len(by['pass'])} checks passed"
    tail = f", {len(by['not_checked'])} not checked" if by["not_checked"] else ""
    reasons = [f"{r.section}: {r.name}: {r.text}" for o in ("fail", "insufficient", "marginal") for r in by[o]]
    return PlanVerdict(change=change, verdict=name, summary=f"{name}: {head}{tail}", reasons=reasons, rows=list(rows))
