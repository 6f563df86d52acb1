"""Snapshot safety, the tool belt, the playbook, verification, budgets, persistence and replay on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from invest_helpers import build_store, minute_ns

from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.playbook import PlaybookPolicy
from investigations.replay import ReplayPolicy, transcript
from investigations.report import Claim, Report, ToolCall
from investigations.run import investigate
from investigations.snapshot import IncidentWindow, Snapshot, SnapshotError
from investigations.tools import TOOLS, run_tool, tool_definitions
from store import investigations as inv_store
from store.connection import Store

WINDOW = IncidentWindow.around(minute_ns(175), minute_ns(220), 7_200)


@pytest.fixture(scope="module")
def slowdown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    path = tmp_path_factory.mktemp("slowdown") / "store.duckdb"
    summary = build_store(path, "dependency-slowdown", rate=5.0, from_minute=40, until_minute=222)
    return path, summary


@pytest.fixture(scope="module")
def snap(slowdown: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snapshot]:
    s = Snapshot.create(slowdown[0], tmp_path_factory.mktemp("snap"), WINDOW, statement_timeout_s=5.0, row_cap=50)
    yield s
    s.close()


def test_writes_are_refused_by_the_connection_not_a_filter(snap: Snapshot) -> None:
    before = snap.query("SELECT count(*) FROM spans").rows[0][0]
    for sql in (
        "DELETE FROM spans",
        "DROP TABLE spans",
        "CREATE TABLE x (a INT)",
        "INSERT INTO logs (body) VALUES ('x')",
    ):
        with pytest.raises(SnapshotError):
            snap.query(sql)  # query() itself does not filter: the read-only connection refuses
    assert snap.query("SELECT count(*) FROM spans").rows[0][0] == before
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET enable_external_access = true",
        "ATTACH '/tmp/driftscope-x.duckdb' AS x",
        "COPY spans TO '/tmp/driftscope-x.csv'",
    ):
        with pytest.raises(SnapshotError):
            snap.query(sql)
    assert run_tool(snap, "run_sql", {"sql": "DELETE FROM spans"}).error is not None


def test_statement_timeout_and_row_cap(slowdown: tuple[Path, Any], tmp_path: Path) -> None:
    s = Snapshot.create(slowdown[0], tmp_path, WINDOW, statement_timeout_s=0.2, row_cap=7)
    try:
        with pytest.raises(SnapshotError, match="timed out"):
            s.query("SELECT count(*) FROM range(100000000000) a")
        res = s.query("SELECT span_id FROM spans")
        assert len(res.rows) == 7 and res.truncated
        assert not s.query("SELECT 1").truncated
    finally:
        s.close()


def test_every_tool_has_a_schema_and_answers(snap: Snapshot) -> None:
    defs = tool_definitions()
    assert {d["name"] for d in defs} == set(TOOLS)
    assert all(d["input_schema"]["type"] == "object" for d in defs)
    args = {
        "run_sql": {"sql": "SELECT 1 AS one"},
        "get_signal": {"kind": "latency_p50", "service": "inventory"},
        "critical_path": {"trace_id": snap.query("SELECT trace_id FROM spans LIMIT 1").rows[0][0]},
        "propose_patch": {"patch": {"actions": [{"kind": "drain", "target": "inventory"}]}},
        "what_if": {"patch": {"actions": [{"kind": "drain", "target": "inventory"}]}},
    }
    for name in TOOLS:
        res = run_tool(snap, name, args.get(name, {}))
        if name == "what_if":  # the environment answers it with the twin the controller wired; alone it says so
            assert res.error is not None and "not available" in res.error
            continue
        assert res.error is None, (name, res.error)
        assert res.to_dict()["call"] == {"tool": name, "args": args.get(name, {})}
    bad = run_tool(snap, "compare_windows", {"service": 3, "nope": 1})
    assert bad.error is not None and "nope" in bad.error
    assert "unknown tool" in (run_tool(snap, "rm_rf", {}).error or "")


def test_compare_windows_puts_self_time_on_the_slow_dependency(snap: Snapshot) -> None:
    rows = run_tool(snap, "compare_windows", {}).data["rows"]
    top = max(rows, key=lambda r: r["self_z"])
    assert (top["service"], top["operation"]) == ("postgres", "UPDATE stock")
    assert top["self_ms_after"] > 2 * top["self_ms_before"]
    reserve = next(r for r in rows if (r["service"], r["operation"]) == ("inventory", "Reserve"))
    assert reserve["mean_ms_after"] > 1.5 * reserve["mean_ms_before"]  # the caller waits ...
    assert abs(reserve["self_change_rel"]) < 0.2  # ... but spends no more time itself


def _run(path: Path, tmp: Path, policy: Any, **cfg: Any) -> Any:
    store = Store(path)
    try:
        config = InvestigationsConfig(out_dir=str(tmp / "out"), **cfg)
        return investigate(store, Trigger("manual", "slow checkout", fingerprint="fp-1"), WINDOW, policy, config)
    finally:
        store.close()


def test_playbook_ranks_the_root_cause_first_with_verified_claims(slowdown: tuple[Path, Any], tmp_path: Path) -> None:
    path, summary = slowdown
    fault = summary.truth.faults[0]
    outcome = _run(path, tmp_path, PlaybookPolicy())
    top = outcome.report.candidates[0]
    assert (top.service, top.operation) == (fault.root_cause_service, fault.root_cause_operation)
    assert outcome.status == "complete" and outcome.report.claims
    assert all(c.verified for c in outcome.report.claims)
    assert outcome.report_path.exists() and "postgres" in outcome.report_path.read_text()
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            "SELECT status, finding_id, title, report_path, steps FROM investigations WHERE id = ?", [outcome.id]
        ).fetchone()
        steps = inv_store.steps_of(con, outcome.id)
        snapshot_path = con.execute("SELECT snapshot_path FROM investigations WHERE id = ?", [outcome.id]).fetchone()
        store_span_range = con.execute(
            "SELECT min(epoch_ns(start_time)), max(epoch_ns(start_time)) FROM spans"
        ).fetchone()
    finally:
        con.close()
    # the snapshot holds the window's rows only (baseline start to incident end), the store more
    assert snapshot_path is not None and store_span_range is not None
    snap = duckdb.connect(snapshot_path[0], read_only=True)
    try:
        lo, hi = snap.execute("SELECT min(epoch_ns(start_time)), max(epoch_ns(start_time)) FROM spans").fetchone()  # type: ignore[misc]
    finally:
        snap.close()
    assert WINDOW.baseline_start_ns <= lo and hi < WINDOW.end_ns
    assert store_span_range[0] < WINDOW.baseline_start_ns and store_span_range[1] >= WINDOW.end_ns
    assert row == ("complete", None, "slow checkout", str(outcome.report_path), outcome.steps)
    assert len(steps) == outcome.steps and all(s["kind"] == "tool" for s in steps)

    # replay: the recorded calls reproduce, so no disagreement; a tampered recording is reported
    replayed = _run(path, tmp_path, ReplayPolicy.from_transcript(transcript(steps, outcome.report.model_dump())))
    assert replayed.report.disagreements == []
    assert [c.model_dump() for c in replayed.report.candidates] == [c.model_dump() for c in outcome.report.candidates]
    steps[1]["payload"]["data"]["rows"][0]["n_before"] += 1
    tampered = _run(path, tmp_path, ReplayPolicy(steps, outcome.report.model_dump()))
    assert len(tampered.report.disagreements) == 1


class _Liar:
    """A policy that makes one true and one false claim."""

    name = "liar"

    def run(self, env: Any) -> Report:
        res = env.call("compare_windows", {"service": "postgres", "operation": "UPDATE stock"})
        value = res.data["rows"][0]["self_ms_after"]
        call = ToolCall(tool="compare_windows", args={"service": "postgres", "operation": "UPDATE stock"})
        return Report(
            summary="x",
            claims=[
                Claim(text="true", call=call, path="rows.0.self_ms_after", value=value),
                Claim(text="false", call=call, path="rows.0.self_ms_after", value=value * 1.5),
                Claim(text="no such call", call=ToolCall(tool="compare_windows", args={"bogus": 1})),
            ],
        )


def test_claims_that_do_not_reproduce_are_marked_unverified(slowdown: tuple[Path, Any], tmp_path: Path) -> None:
    outcome = _run(slowdown[0], tmp_path, _Liar())
    assert [c.verified for c in outcome.report.claims] == [True, False, False]
    assert "UNVERIFIED" in outcome.report_path.read_text()


def test_budget_exhaustion_gives_a_partial_report(slowdown: tuple[Path, Any], tmp_path: Path) -> None:
    outcome = _run(slowdown[0], tmp_path, PlaybookPolicy(), max_steps=2)
    assert outcome.status == "partial" and outcome.steps == 2
    assert outcome.report.status == "partial" and "steps" in outcome.report.summary
    assert len(outcome.report.established) == 2 and outcome.report.not_established
    assert all(c.verified for c in outcome.report.claims)


def test_a_persistent_finding_dispatches_an_investigation_linked_to_it(
    slowdown: tuple[Path, Any], tmp_path: Path
) -> None:
    from prometheus_client import CollectorRegistry

    from controller.dispatch import Dispatcher, dispatch_findings
    from detectors.base import SignalKey
    from detectors.findings import Finding
    from store.findings import write_findings

    finding = Finding(
        detector="level_shift",
        signal=SignalKey("latency_p50", "inventory", "Reserve"),
        window_start_ns=minute_ns(150),
        window_end_ns=minute_ns(215),
        change_ns=minute_ns(181),
        severity="critical",
        score=9.0,
        effect=1.5,
        effect_text="p50 +150 %",
        before=4e6,
        after=1e7,
        p_value=1e-9,
        q_value=1e-8,
    )
    store = Store(slowdown[0])
    try:
        con = store.cursor()
        write_findings(con, [finding], minute_ns(200), 1_800)
        config = InvestigationsConfig(out_dir=str(tmp_path / "out"), persistence_runs=2)
        dispatcher = Dispatcher(config, CollectorRegistry())
        first = dispatch_findings(store, dispatcher, lambda cfg: PlaybookPolicy(), minute_ns(200))
        assert [d.decision.reason for d in first] == ["not_persistent"]
        write_findings(con, [finding], minute_ns(210), 1_800)
        second = dispatch_findings(store, dispatcher, lambda cfg: PlaybookPolicy(), minute_ns(210))
        assert [d.decision.action for d in second] == ["dispatch"] and second[0].outcome is not None
        row = con.execute(
            "SELECT i.status, i.report->>'$.candidates[0].service', d.investigation_id = i.id FROM investigations i "
            "JOIN dispatch_decisions d ON d.finding_id = i.finding_id AND d.action = 'dispatch' WHERE i.finding_id = ?",
            [finding.id],
        ).fetchone()
        assert row == ("complete", "postgres", True)
        con.execute("DELETE FROM findings")  # leave the module's store as the other tests expect it
    finally:
        store.close()
