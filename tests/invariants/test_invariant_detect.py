"""Learn on a quiet baseline, then: nothing on quiet data, every structural fault found with evidence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from invariant_scenario import FAULT_MIN, at

from analysis import Window, rollup_all
from detectors.detection_run import run_detection
from detectors.invariants.model import Invariant, load_invariants, save_invariants
from detectors.invariants.monitor import check, current_laws, detect_invariants, extract
from store.connection import Store
from store.findings import write_findings
from store.timeconv import ns_from_datetime


@pytest.fixture(scope="module")
def con(mini_faults_store: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(mini_faults_store), read_only=True)


@pytest.fixture(scope="module")
def laws(con: duckdb.DuckDBPyConnection) -> list[Invariant]:
    return extract(con, at(0), at(90))


def _window(start_min: int, end_min: int) -> Window:
    def t(m: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(at(m) / 1e9, dt.UTC).replace(tzinfo=None)

    return Window(t(start_min), t(end_min), 60)


def _find(laws: list[Invariant], kind: str, entity: str, subject: str | None = None) -> Invariant:
    hits = [i for i in laws if i.kind == kind and i.entity == entity and (subject is None or i.subject == subject)]
    assert hits, f"no {kind} law on {entity} {subject}: {sorted({i.label() for i in laws})[:40]}"
    return hits[0]


def test_extraction_learns_contracts_structure_and_templates(laws: list[Invariant]) -> None:
    kinds = _find(laws, "attribute_values", "api:POST /items", "item.kind")
    assert kinds.params["values"] == ["book", "food", "toy"]
    assert _find(laws, "attribute_type", "api:GET /items", "item.id").params["type"] == "integer"
    assert _find(laws, "resource_attribute", "api", "service.version").support > 0
    callees = _find(laws, "callees", "api:POST /items").params["callees"]
    assert set(callees) == {"worker:Validate", "db:insert"}
    fan = _find(laws, "fanout", "api:POST /items", "db:insert").params
    assert 1 <= fan["min"] <= fan["max"] <= 3
    _find(laws, "client_server", "worker:List", "worker:List")
    _find(laws, "never_root", "worker:List")
    templates = {i.subject for i in laws if i.kind == "log_template" and i.service == "api"}
    assert "listed <*> items for <*> in <*> ms" in templates
    for law in laws:  # statistical care: nothing proposed on thin support, confidence from the rule of three
        assert law.kind in ("log_template", "log_templates") or law.support >= 4603, law.label()
        assert 0.0 <= law.confidence <= 1.0


def test_quiet_window_violates_nothing(con: duckdb.DuckDBPyConnection, laws: list[Invariant]) -> None:
    assert [v.text for v in check(con, laws, at(90), at(FAULT_MIN))] == []


def test_every_structural_fault_is_a_violation_with_counterexamples(
    con: duckdb.DuckDBPyConnection, laws: list[Invariant]
) -> None:
    found = check(con, laws, at(FAULT_MIN), at(FAULT_MIN + 30))
    by = {(v.detector, v.invariant.kind, v.invariant.entity, v.invariant.subject): v for v in found}
    vanished = by[("invariant_attribute", "attribute_present", "api:POST /items", "item.kind")]
    assert vanished.exceptions == vanished.trials > 0
    required = by[("invariant_call_edge", "required_child", "api:POST /items", "worker:Validate")]
    assert required.exceptions == required.trials
    roots = by[("invariant_trace_context", "never_root", "worker:List", None)]
    assert 0.3 < roots.exceptions / roots.trials < 0.7  # half the requests lose their context
    new = [v for v in found if v.detector == "log_template" and v.evidence["change"] == "new"]
    assert new and new[0].invariant.service == "worker"
    assert any("fraud check timed out" in line for line in new[0].evidence["log_lines"])
    for v in found:
        assert v.p_value < 1e-6
        assert at(FAULT_MIN) <= (v.change_ns or at(FAULT_MIN)) < at(FAULT_MIN + 30)
        rows = con.execute(v.evidence["sql"]).fetchall()  # the evidence SQL reproduces the counterexamples
        assert rows, v.text
        if v.evidence.get("trace_ids"):
            assert {r[0] for r in rows} >= set(v.evidence["trace_ids"]) or v.detector == "log_template"


def test_detect_invariants_uses_stored_laws_and_findings_dedupe(mini_faults_store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(mini_faults_store.read_bytes())
    con = duckdb.connect(str(copy))
    laws = extract(con, at(0), at(90))
    save_invariants(con, laws, at(0), at(90))
    stored, learned_to = load_invariants(con)
    assert learned_to == at(90)
    assert {i.id for i in stored} == {i.id for i in laws}
    assert detect_invariants(con, _window(90, FAULT_MIN)) == []
    found = detect_invariants(con, _window(FAULT_MIN, FAULT_MIN + 30))
    detectors = {f.detector for f in found}
    assert {"invariant_attribute", "invariant_call_edge", "invariant_trace_context", "log_template"} <= detectors
    for f in found:
        assert f.evidence["sql"] and f.evidence["invariant_id"]
    counts = write_findings(con, found, now_ns=at(FAULT_MIN + 30), resolve_after_s=1800)
    assert counts["new"] == len({f.fingerprint for f in found})
    again = write_findings(con, found, now_ns=at(FAULT_MIN + 30), resolve_after_s=1800)
    assert again["new"] == 0
    con.close()


def test_lost_server_spans_break_conservation_at_the_right_minute(mini_faults_store: Path, tmp_path: Path) -> None:
    """An exporter that drops half of worker's server spans for ten minutes breaks flow conservation."""
    copy = tmp_path / "lossy.duckdb"
    copy.write_bytes(mini_faults_store.read_bytes())
    con = duckdb.connect(str(copy))
    laws = [i for i in extract(con, at(0), at(60)) if i.kind == "conservation"]
    assert any(i.entity == "worker:List" for i in laws)
    con.execute(
        "DELETE FROM spans WHERE service_name = 'worker' AND span_name = 'List' AND span_kind = 'SERVER' "
        "AND start_time >= make_timestamp_ns($a) AND start_time < make_timestamp_ns($b) AND hash(span_id) % 2 = 0",
        {"a": at(75), "b": at(85)},
    )
    found = [v for v in check(con, laws, at(60), at(90)) if v.invariant.entity == "worker:List"]
    assert len(found) == 1
    v = found[0]
    assert v.detector == "invariant_conservation"
    assert v.change_ns == at(75)
    assert 3 <= v.exceptions <= 10
    assert v.evidence["minutes"][0]["server_spans"] < v.evidence["minutes"][0]["client_spans"]
    assert len(con.execute(v.evidence["sql"]).fetchall()) == 30  # one row per minute of the window
    con.close()


def test_a_detection_run_persists_the_laws_it_learns_and_reuses_them(mini_faults_store: Path, tmp_path: Path) -> None:
    """The laws are learned once (from the history before the window) and stored; the next run reads them."""
    copy = tmp_path / "run.duckdb"
    copy.write_bytes(mini_faults_store.read_bytes())
    store = Store(copy)
    try:
        con = store.cursor()
        rollup_all(con)
        assert load_invariants(con) == ([], None)
        first = run_detection(con, window_s=1800, history_s=7200, resolve_after_s=1800)
        assert first is not None and ns_from_datetime(first.window.start) == at(FAULT_MIN)
        stored, learned_to = load_invariants(con)
        assert stored and learned_to == at(FAULT_MIN)
        assert {f.detector for f in first.findings} >= {"invariant_attribute", "invariant_call_edge"}
        assert current_laws(con, at(FAULT_MIN))[1] is False  # no second learning
        again = run_detection(con, window_s=1800, history_s=7200, resolve_after_s=1800)
        assert again is not None and again.counts["new"] == 0
        assert {f.fingerprint for f in again.findings} == {f.fingerprint for f in first.findings}
    finally:
        store.close()
