"""The checklist's rows and verdict as pure functions of their evidence."""

from __future__ import annotations

import pytest

from detectors.judge.contract import parse_contract
from detectors.planning.checklist import CheckRow, behaviour_rows, ci_rows, decide, deployment_rows, physics_rows
from detectors.planning.junit import TestCase
from detectors.planning.terraform import TerraformReport

CONTRACT = parse_contract("""
change: receipts
operations: [{name: "domain-gate:POST /api/orders", tests: [receipt_flow]}]
tests: {match: [receipt]}
infrastructure: {touched: true, paths: ["infra/*"]}
rollback: {to_version: "3.4.0", procedure: docs/rollback.md}
""")


def _case(path: str, name: str, outcome: str = "passed", markers: tuple[str, ...] = ()) -> TestCase:
    return TestCase("j.xml", path.replace("/", "."), name, f"{path}.py", outcome, markers)  # type: ignore[arg-type]


SUITE = [
    _case("tests/unit/test_receipt", "test_render"),
    _case("tests/integration/test_receipt_store", "test_put"),
    _case("tests/e2e/test_receipt_flow", "test_flow"),
    _case("tests/unit/test_orders", "test_accept"),
]


def _outcomes(rows: list[CheckRow]) -> dict[str, str]:
    return {r.name: r.outcome for r in rows}


def test_every_required_layer_has_a_passing_test_of_the_change() -> None:
    rows = _outcomes(behaviour_rows(CONTRACT, SUITE))
    assert rows == {
        "unit tests": "pass", "integration tests": "pass", "e2e tests": "pass",
        "tests of domain-gate:POST /api/orders": "fail",  # only the e2e test names receipt_flow
        "rest of the suite": "pass",
    }  # fmt: skip


def test_a_missing_or_failing_layer_fails_and_other_failures_are_marginal() -> None:
    suite = [c for c in SUITE if "integration" not in c.path]
    suite += [
        _case("tests/e2e/test_receipt_more", "test_more", "failed"),
        _case("tests/unit/test_x", "test_y", "error"),
    ]
    rows = {r.name: r for r in behaviour_rows(CONTRACT, suite)}
    assert (
        rows["integration tests"].outcome == "fail"
        and "no integration tests matching receipt" in rows["integration tests"].text
    )
    assert rows["e2e tests"].outcome == "fail" and "test_more" in rows["e2e tests"].text
    assert rows["rest of the suite"].outcome == "marginal"
    skipped = behaviour_rows(CONTRACT, [_case("tests/unit/test_receipt", "t", "skipped")])
    assert skipped[0].outcome == "fail" and "skipped" in skipped[0].text
    assert behaviour_rows(CONTRACT, None)[0].outcome == "insufficient"


@pytest.mark.parametrize(
    ("status", "checks", "expected"),
    [
        ("success", None, ["pass"]),
        ("failure", None, ["fail"]),
        ("in_progress", None, ["insufficient"]),
        (None, [("tests", "completed", "success"), ("lint", "completed", "skipped")], ["pass"]),
        (None, [("tests", "completed", "failure"), ("lint", "in_progress", None)], ["fail"]),
        (None, [("tests", "queued", None)], ["insufficient"]),
        (None, None, ["not_checked"]),
    ],
)
def test_ci_status_and_check_runs(
    status: str | None, checks: list[tuple[str, str, str | None]] | None, expected: list[str]
) -> None:
    assert [r.outcome for r in ci_rows(status, checks)] == expected


def _deployment(
    changed: list[str] | None, procedure: str | None = "Redeploy 3.4.0.", **kw: object
) -> dict[str, CheckRow]:
    contract = kw.pop("contract", CONTRACT)
    rows = deployment_rows(
        contract,  # type: ignore[arg-type]
        changed=changed, terraform=kw.pop("terraform", None), terraform_why_not="no Terraform in the change",
        ci=[], procedure_text=procedure, versions=kw.pop("versions", None),  # type: ignore[arg-type]
    )  # fmt: skip
    return {r.name: r for r in rows}


def test_infrastructure_must_change_exactly_when_declared() -> None:
    assert _deployment(["infra/bucket.tf", "gate/x.py"])["infrastructure"].outcome == "pass"
    assert _deployment(["gate/x.py"])["infrastructure"].outcome == "fail"
    undeclared = parse_contract(
        "infrastructure: {touched: false, paths: ['infra/*']}\nrollback: {to_version: '1', steps: [x]}"
    )
    row = _deployment(["infra/bucket.tf"], contract=undeclared)["infrastructure"]
    assert row.outcome == "fail" and "not declared" in row.text
    assert _deployment(None)["infrastructure"].outcome == "not_checked"


def test_terraform_reports_become_rows() -> None:
    reports = [TerraformReport("infra", (), ()), TerraformReport("old", ("main.tf",), ("x.tf:3: Missing name",))]
    rows = _deployment(["infra/a.tf"], terraform=reports)
    assert rows["terraform infra"].outcome == "pass"
    assert rows["terraform old"].outcome == "fail" and "main.tf" in rows["terraform old"].text
    assert _deployment(["infra/a.tf"])["terraform"].outcome == "not_checked"


def test_rollback_needs_a_version_and_a_documented_procedure() -> None:
    assert _deployment(["infra/a"])["rollback plan"].outcome == "pass"
    assert _deployment(["infra/a"], procedure=None)["rollback plan"].outcome == "fail"  # the document is missing
    assert _deployment(["infra/a"], procedure="  \n")["rollback plan"].outcome == "fail"
    assert _deployment(["infra/a"], procedure="Redeploy the old one.")["rollback plan"].outcome == "marginal"
    assert _deployment(["infra/a"], versions={"3.5.0"})["rollback plan"].outcome == "marginal"
    assert _deployment(None)["rollback plan"].outcome == "not_checked"
    none = parse_contract("rollback: {procedure: docs/r.md}")
    assert _deployment(["x"], contract=none)["rollback plan"].text.startswith("rollback.to_version")
    steps = parse_contract("rollback: {to_version: '2.0', steps: ['redeploy 2.0']}")
    assert _deployment(["x"], procedure=None, contract=steps)["rollback plan"].outcome == "pass"


def test_the_verdict_takes_the_worst_row_and_lists_why() -> None:
    def row(outcome: str) -> CheckRow:
        return CheckRow(section="deployment", name=outcome, outcome=outcome, text=f"{outcome} text")  # type: ignore[arg-type]

    assert decide("c", [row("pass"), row("not_checked")]).verdict == "pass"
    assert decide("c", [row("pass"), row("marginal")]).verdict == "marginal"
    assert decide("c", [row("marginal"), row("insufficient")]).verdict == "insufficient"
    v = decide("c", [row("insufficient"), row("fail"), row("not_checked")])
    assert v.verdict == "fail" and v.reasons[0] == "deployment: fail: fail text" and "1 not checked" in v.summary
    physics = physics_rows(None, "", [], "judged after the deploy")
    assert physics[0].outcome == "not_checked" and decide("c", physics).verdict == "pass"
