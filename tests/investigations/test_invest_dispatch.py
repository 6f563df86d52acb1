"""Dispatch decisions (severity, persistence, cooldown, concurrency, daily budget) and alert payloads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest
from prometheus_client import CollectorRegistry

from controller.api_alerts import alert_requests
from controller.dispatch import Dispatcher, Request, finding_requests
from detectors.base import SignalKey
from detectors.findings import Finding
from investigations.config import InvestigationsConfig
from store.findings import Severity, write_findings
from store.migrations import migrate_all

NOW = 1_772_409_600_000_000_000


def _finding(op: str, severity: Severity) -> Finding:
    return Finding(
        detector="level_shift",
        signal=SignalKey("latency_p99", "checkout", op),
        window_start_ns=NOW - 3_600 * 10**9,
        window_end_ns=NOW,
        change_ns=NOW - 600 * 10**9,
        severity=severity,
        score=5.0,
        effect=0.4,
        effect_text="p99 +40 %",
        before=100.0,
        after=140.0,
        p_value=1e-6,
        q_value=1e-5,
    )


def _req(fp: str, *, source: str = "alertmanager", severity: str = "critical", firing: bool = True) -> Request:
    return Request(source, fp, f"alert {fp}", NOW - 900 * 10**9, NOW, severity, firing=firing)


def _count(reg: CollectorRegistry, source: str, action: str, reason: str) -> float:
    labels = {"source": source, "action": action, "reason": reason}
    return reg.get_sample_value("driftscope_investigation_decisions_total", labels) or 0.0


def test_findings_dispatch_only_when_severe_and_persistent_then_cool_down(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "d.duckdb"))
    migrate_all(con)
    reg = CollectorRegistry()
    d = Dispatcher(InvestigationsConfig(persistence_runs=2, min_severity="warning", cooldown_s=3_600), reg)
    found = [_finding("PlaceOrder", "warning"), _finding("Quote", "info")]
    write_findings(con, found, NOW, 1_800)
    first = {r.operation: d.decide(con, r, NOW).reason for r in finding_requests(con)}
    assert first == {"PlaceOrder": "not_persistent", "Quote": "below_min_severity"}
    write_findings(con, found, NOW + 60 * 10**9, 1_800)  # seen by a second detection run
    second = {r.operation: d.decide(con, r, NOW + 60 * 10**9) for r in finding_requests(con)}
    assert second["PlaceOrder"].action == "dispatch" and second["Quote"].reason == "below_min_severity"
    d.release(con, second["PlaceOrder"].request, NOW, "inv-1")
    again = next(r for r in finding_requests(con) if r.operation == "PlaceOrder")
    assert d.decide(con, again, NOW + 120 * 10**9).reason == "cooldown"
    assert d.decide(con, again, NOW + 3_700 * 10**9).action == "dispatch"  # cooldown over
    assert _count(reg, "finding", "skip", "cooldown") == 1 and _count(reg, "finding", "dispatch", "ok") == 2
    assert _count(reg, "finding", "skip", "below_min_severity") == 2
    rows = con.execute(
        "SELECT action, reason, investigation_id FROM dispatch_decisions ORDER BY decided_at, reason"
    ).fetchall()
    assert len(rows) == 6 and ("dispatch", "ok", "inv-1") in rows
    con.close()


def test_concurrency_daily_budget_and_resolved_alerts(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "d.duckdb"))
    migrate_all(con)
    reg = CollectorRegistry()
    d = Dispatcher(InvestigationsConfig(concurrency=1, daily_tokens=1_000), reg)
    a = d.decide(con, _req("a"), NOW)
    assert a.action == "dispatch" and reg.get_sample_value("driftscope_investigations_running") == 1
    assert d.decide(con, _req("b"), NOW).reason == "concurrency"
    assert d.decide(con, _req("c", firing=False), NOW).reason == "resolved"
    assert d.decide(con, _req("e", severity="info"), NOW).reason == "below_min_severity"
    assert d.decide(con, _req("m", source="manual", severity="info"), NOW).reason == "concurrency"
    d.release(con, a.request, NOW, None)
    assert reg.get_sample_value("driftscope_investigations_running") == 0
    con.execute(
        "INSERT INTO investigations (id, fingerprint, trigger, policy, status, title, window_start, window_end, "
        "baseline_start, started_at, tokens) VALUES ('x', 'f', 'manual', 'claude', 'complete', 't', "
        "make_timestamp_ns(?), make_timestamp_ns(?), make_timestamp_ns(?), make_timestamp_ns(?), 5000)",
        [NOW, NOW, NOW, NOW],
    )
    assert d.decide(con, _req("b"), NOW + 10**9).reason == "daily_budget"
    assert d.decide(con, _req("b"), NOW + 86_400 * 10**9).action == "dispatch"  # a new UTC day
    con.close()


def test_same_state_and_clock_give_the_same_decisions(tmp_path: Path) -> None:
    outcomes = []
    for run in range(2):
        con = duckdb.connect(str(tmp_path / f"r{run}.duckdb"))
        migrate_all(con)
        d = Dispatcher(InvestigationsConfig(concurrency=2), CollectorRegistry())
        outcomes.append([d.decide(con, _req(fp), NOW + i).reason for i, fp in enumerate("abacdb")])
        con.close()
    assert outcomes[0] == outcomes[1] == ["ok", "ok", "cooldown", "concurrency", "concurrency", "cooldown"]


ALERTMANAGER = {
    "version": "4",
    "groupKey": '{}:{alertname="HighLatency"}',
    "status": "firing",
    "receiver": "driftscope",
    "groupLabels": {},
    "commonLabels": {},
    "commonAnnotations": {},
    "externalURL": "http://am",
    "truncatedAlerts": 0,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighLatency", "service": "checkout", "severity": "critical"},
            "annotations": {"summary": "checkout p99 high"},
            "startsAt": "2026-03-02T03:10:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom",
            "fingerprint": "abc123",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "Old"},
            "annotations": {},
            "startsAt": "2026-03-02T01:00:00Z",
            "endsAt": "2026-03-02T01:30:00Z",
            "fingerprint": "def",
        },
    ],
}


def test_alert_payloads_parse_and_bad_ones_name_the_field() -> None:
    reqs = alert_requests("alertmanager", orjson.dumps(ALERTMANAGER))
    assert [(r.fingerprint, r.service, r.severity, r.firing) for r in reqs] == [
        ("alertmanager:abc123", "checkout", "critical", True),
        ("alertmanager:def", None, "warning", False),
    ]
    assert reqs[0].start_ns == NOW + 3 * 3_600 * 10**9 + 600 * 10**9 - 900 * 10**9
    grafana = {
        "status": "firing",
        "title": "[FIRING:1]",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Errors", "service_name": "payment", "operation": "Charge"},
                "annotations": {},
                "startsAt": "2026-03-02T03:00:00Z",
                "fingerprint": "g1",
                "values": {"B": 3.0},
            }
        ],
    }
    (g,) = alert_requests("grafana", orjson.dumps(grafana))
    assert (g.service, g.operation, g.fingerprint) == ("payment", "Charge", "grafana:g1")
    bad = [
        ("alertmanager", b"not json", "not JSON"),
        ("alertmanager", orjson.dumps({**ALERTMANAGER, "version": "3"}), "version"),
        ("alertmanager", orjson.dumps({k: v for k, v in ALERTMANAGER.items() if k != "alerts"}), "field alerts"),
        ("grafana", orjson.dumps({"status": "firing", "alerts": [{"labels": {}}]}), "alerts.0.startsAt"),
    ]
    for source, body, field in bad:
        with pytest.raises(ValueError, match=field):
            alert_requests(source, body)
