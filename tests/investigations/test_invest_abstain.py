"""The playbook abstains when nothing with a baseline changed: a quiet deploy, tracing that starts in the window."""

from __future__ import annotations

from pathlib import Path

from analysis import rollup_all
from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.playbook import PlaybookPolicy
from investigations.report import Report
from investigations.run import investigate
from investigations.snapshot import IncidentWindow
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import parse_scenario
from simulator.sinks import StoreSink
from store.connection import Store

NS_MIN = 60_000_000_000


def _investigate(tmp: Path, text: str, incident_min: int = 0) -> Report:
    store = Store(tmp / "s.duckdb")
    try:
        simulate(parse_scenario(text), StoreSink(store), hours=0.75, from_minute=-150, seed=9)
        rollup_all(store.cursor())
        start = DEFAULT_START_NS + (incident_min - 5) * NS_MIN
        window = IncidentWindow.around(start, DEFAULT_START_NS + 40 * NS_MIN, 7200)
        outcome = investigate(store, Trigger("test", "alert"), window, PlaybookPolicy(), InvestigationsConfig(),
                              out_dir=tmp / "inv")  # fmt: skip
    finally:
        store.close()
    return outcome.report


def test_a_deploy_that_changes_nothing_is_context_not_a_root_cause(tmp_path: Path) -> None:
    text = 'extends = "mini"\nname = "quiet-deploy"\n[[deploys]]\nservice = "worker"\nversion = "0.3.2"\nat_min = 0\n'
    report = _investigate(tmp_path, text)
    assert report.candidates == []
    assert any("worker" in q and "without a measured symptom" in q for q in report.open_questions)
    assert report.summary.startswith("No root cause named")


def test_tracing_that_starts_in_the_window_is_no_change(tmp_path: Path) -> None:
    text = (
        'extends = "mini"\nname = "late-tracing"\n'
        "[services.api.export]\ntraces_from_min = 0\n"
        "[services.worker.export]\ntraces_from_min = 0\n"
        "[services.db.export]\ntraces_from_min = 0\n"
    )
    report = _investigate(tmp_path, text)
    mechanisms = [c.mechanism for c in report.candidates]
    assert not any("propagation" in m or "call edge" in m for m in mechanisms), mechanisms
    assert any(q.startswith("No baseline for") for q in report.open_questions)


def test_a_saturated_callee_is_ranked_above_the_callers_it_holds_up(tmp_path: Path) -> None:
    """A surge saturates the database query at the bottom of the chain; the worker and the API above it queue
    too (their workers wait on it), and their strengths saturate as the database's does: the order of the
    call path, not the names, decides that the database comes first."""
    text = (
        'extends = "mini"\nname = "deep-saturation"\n'
        '[services.db.operations.query]\nkind = "db"\nservice_time = { median_ms = 120.0, sigma = 0.2 }\n'
        "servers = 1\n"
        '[[faults]]\nkind = "capacity_saturation"\ntarget = "arrivals"\nstart_min = 0\nend_min = 45\n'
        "magnitude = 3.0\nramp_min = 5\n"
    )
    report = _investigate(tmp_path, text, incident_min=10)
    ranked = [(c.service, c.operation) for c in report.candidates]
    assert ranked and ranked[0] == ("db", "query"), [(c.service, c.operation, c.mechanism) for c in report.candidates]
    above = [c for c in report.candidates if c.service in ("api", "worker")]
    assert above and all("explained by an operation it calls" in c.mechanism for c in above), above


def test_one_service_whose_tracing_starts_in_the_window_is_no_change(tmp_path: Path) -> None:
    """Its callers were traced all along, so its operations have CLIENT spans before; its own SERVER spans,
    their calls, attributes and logs start in the window: no edge, attribute or template is claimed new."""
    text = 'extends = "mini"\nname = "late-worker"\n[services.worker.export]\ntraces_from_min = 0\n'
    report = _investigate(tmp_path, text)
    mechanisms = [f"{c.service} {c.operation} {c.mechanism}" for c in report.candidates]
    assert not any(w in m for m in mechanisms for w in ("call edge", "attribute", "log template")), mechanisms


def test_a_new_template_of_a_traced_service_that_never_logged_before_is_a_change(tmp_path: Path) -> None:
    """The worker writes no log line in the baseline, but its own spans show it ran and was observed: a template
    that starts in the window is new (a service with neither logs nor spans before would be switched-on
    telemetry instead)."""
    text = (
        'extends = "mini"\nname = "worker-starts-logging"\n'
        '[[faults]]\nkind = "new_log_template"\ntarget = "worker"\nstart_min = 0\nend_min = 45\nmagnitude = 10\n'
        'template = "stale read detected on shard {n}"\nseverity = "WARN"\n'
    )
    report = _investigate(tmp_path, text)
    assert report.candidates and report.candidates[0].service == "worker", report.candidates
    assert "log template" in report.candidates[0].mechanism
