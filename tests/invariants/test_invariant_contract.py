"""Telemetry contract conformance on real stores: broken propagation, orphans, uncorrelated logs."""

from __future__ import annotations

from pathlib import Path

import duckdb
from invariant_scenario import FAULT_MIN, at

from detectors.invariants.telemetry_contract import contract


def _by_service(con: duckdb.DuckDBPyConnection, start_min: int, end_min: int) -> dict[str, object]:
    return {c.service: c for c in contract(con, at(start_min), at(end_min))}


def test_a_healthy_window_scores_full_marks(mini_faults_store: Path) -> None:
    con = duckdb.connect(str(mini_faults_store), read_only=True)
    scores = {s: c.score for s, c in _by_service(con, 60, FAULT_MIN).items()}  # type: ignore[attr-defined]
    con.close()
    assert scores and all(v == 100.0 for v in scores.values()), scores


def test_orphans_uncorrelated_logs_and_missing_resource_attributes_cost_points(
    mini_faults_store: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "damaged.duckdb"
    copy.write_bytes(mini_faults_store.read_bytes())
    con = duckdb.connect(str(copy))
    window = (60, 90)
    # lose api's server spans in part of the window: their children become orphans
    con.execute(
        "DELETE FROM spans WHERE service_name = 'api' AND span_kind = 'SERVER' AND hash(span_id) % 10 = 0 "
        "AND start_time >= make_timestamp_ns($a) AND start_time < make_timestamp_ns($b)",
        {"a": at(window[0]), "b": at(window[1])},
    )
    con.execute("UPDATE logs SET trace_id = NULL WHERE service_name = 'api' AND hash(body) % 2 = 0")
    con.execute(
        "UPDATE spans SET resource_attributes = json_object('service.name', service_name) WHERE service_name = 'db'"
    )
    got = _by_service(con, *window)
    con.close()
    worker, api, db = got["worker"], got["api"], got["db"]
    assert worker.parts["propagation"] < 1.0 and any("orphan" in m for m in worker.missing)  # type: ignore[attr-defined]
    assert 0.3 < api.parts["logs"] < 0.7  # type: ignore[attr-defined]
    assert db.parts["resource"] < 0.5  # type: ignore[attr-defined]
    assert any("service.version" in m for m in db.missing)  # type: ignore[attr-defined]
    assert all(c.score < 100.0 for c in (worker, api, db))  # type: ignore[attr-defined]
