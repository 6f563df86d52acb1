"""The running service end to end: scheduled jobs find a simulated fault; the API serves, filters
and transitions findings; bearer tokens guard the API and both ingest transports."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from serverproc import ServerProc, start_server

from analysis import rollup_all
from reports import generate_report
from simulator.run import simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

API_TOKEN = "api-secret"
INGEST_TOKEN = "ingest-secret"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """A store with 6 h of history and an error burst, served with fast job intervals and tokens."""
    path = tmp_path_factory.mktemp("svc") / "store.duckdb"
    scenario = load_scenario("error-burst")
    scenario = scenario.model_copy(update={"arrivals": scenario.arrivals.model_copy(update={"rate_per_s": 20.0})})
    store = Store(path)
    simulate(scenario, StoreSink(store), hours=4.0, from_minute=-360, seed=5)
    rollup_all(store.cursor())
    generate_report(store.cursor(), path.parent / "reports", window_s=3 * 3600.0)  # a report for the API to list
    store.close()
    srv = start_server(
        path,
        ("DRIFTSCOPE_JOBS__ROLLUP_INTERVAL_S", "0.5"),
        ("DRIFTSCOPE_JOBS__DETECT_INTERVAL_S", "1"),
        ("DRIFTSCOPE_DETECTION__WINDOW_S", "5400"),
        ("DRIFTSCOPE_DETECTION__HISTORY_S", "21600"),
        ("DRIFTSCOPE_AUTH__API_TOKEN", API_TOKEN),
        ("DRIFTSCOPE_AUTH__INGEST_TOKEN", INGEST_TOKEN),
        ("DRIFTSCOPE_REPORTS__OUT_DIR", str(path.parent / "reports")),
    )
    yield srv
    if srv.proc.poll() is None:
        srv.kill()


def _get(srv: ServerProc, path: str, token: str | None = API_TOKEN, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{srv.api_url}{path}", headers=headers, params=params, timeout=30)


def _wait_for_detection(srv: ServerProc, deadline_s: float = 180) -> dict[str, Any]:
    """Poll the jobs API until a detection run succeeded (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        jobs = {j["job"]: j for j in _get(srv, "/api/jobs").json()["items"]}
        assert all("running_since" in job for job in jobs.values())  # the runner's view of runs going now
        if jobs.get("detect", {}).get("last_success"):
            return jobs
        assert srv.proc.poll() is None, "the service died"
        time.sleep(0.2)
    raise AssertionError(f"no successful detection run in {deadline_s} s: {srv.store.with_suffix('.serve.log')}")


def test_scheduled_jobs_find_the_error_burst(served: ServerProc) -> None:
    jobs = _wait_for_detection(served)
    assert jobs["rollup"]["last_outcome"] == "ok"
    found = _get(served, "/api/findings").json()
    hits = [f for f in found["items"] if f["kind"] == "error_ratio" and f["operation"] == "Reserve"]
    assert hits, [(f["kind"], f["service"], f["operation"]) for f in found["items"]]
    assert found["count"] == len(found["items"])
    assert all(f["status"] == "open" for f in hits)
    assert "error ratio" in hits[0]["effect_text"] and hits[0]["evidence"]["sql"].startswith("SELECT")


def test_findings_filter_transition_and_refuse_bad_parameters(served: ServerProc) -> None:
    _wait_for_detection(served)
    items = _get(served, "/api/findings").json()["items"]
    target = items[0]
    only = _get(served, "/api/findings", service=target["service"], severity=target["severity"]).json()["items"]
    assert only and all(f["service"] == target["service"] and f["severity"] == target["severity"] for f in only)
    bad = _get(served, "/api/findings", severity="apocalyptic")
    assert bad.status_code == 400 and "severity" in bad.json()["error"]
    assert _get(served, "/api/findings", limit="0").status_code == 400
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    ack = requests.post(f"{served.api_url}/api/findings/{target['id']}/acknowledge", headers=headers, timeout=30)
    assert ack.json() == {"id": target["id"], "status": "acknowledged"}
    assert _get(served, f"/api/findings/{target['id']}").json()["status"] == "acknowledged"
    acked = _get(served, "/api/findings", status="acknowledged").json()["items"]
    assert [f["id"] for f in acked] == [target["id"]]
    missing = requests.post(f"{served.api_url}/api/findings/nope/resolve", headers=headers, timeout=30)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert requests.post(f"{served.api_url}/api/findings/x/explode", headers=headers, timeout=30).status_code == 404


def test_metrics_export_jobs_and_open_findings(served: ServerProc) -> None:
    _wait_for_detection(served)
    text = requests.get(f"{served.api_url}/metrics", timeout=30).text  # open to scrapers
    assert 'driftscope_job_last_success_timestamp_seconds{job="detect"}' in text
    assert 'driftscope_job_runs_total{job="rollup",outcome="ok"}' in text
    assert "driftscope_findings_open{" in text and "driftscope_drift_score{" in text


def test_reports_are_listed_fetched_and_served_with_a_strict_policy(served: ServerProc) -> None:
    listed = _get(served, "/api/reports").json()
    assert listed["count"] == 1
    rid = listed["items"][0]["id"]
    one = _get(served, f"/api/reports/{rid}").json()
    assert one["id"] == rid and one["headline"] and set(one["files"]) == {"html", "markdown", "json"}
    page = _get(served, f"/api/reports/{rid}/html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<svg" in page.text or "No drift" in page.text
    assert _get(served, "/api/reports/drift-report-nope").status_code == 404
    assert _get(served, "/api/reports/drift-report-nope/html").status_code == 404


def test_a_job_runs_now_on_request_and_says_how_it_went(served: ServerProc) -> None:
    url = f"{served.api_url}/api/jobs/rollup/run"
    assert requests.post(url, timeout=30).status_code == 401
    before = _get(served, "/api/jobs").json()["items"]
    runs = {j["job"]: j["runs"] for j in before}.get("rollup", 0)
    done = requests.post(url, headers={"authorization": f"Bearer {API_TOKEN}"}, timeout=300)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["job"] == "rollup" and body["outcome"] == "ok" and body["detail"]["plane"] == "duckdb"
    assert body["started_at"] <= body["finished_at"]
    after = {j["job"]: j for j in _get(served, "/api/jobs").json()["items"]}
    assert after["rollup"]["runs"] > runs  # recorded like a scheduled run
    nope = requests.post(f"{served.api_url}/api/jobs/nope/run", headers={"authorization": f"Bearer {API_TOKEN}"},
                         timeout=30)  # fmt: skip
    assert nope.status_code == 404 and "rollup" in nope.json()["error"] and "detect" in nope.json()["error"]


@pytest.mark.parametrize("token", [None, "wrong", API_TOKEN + "x"])
def test_the_api_refuses_without_the_token_and_says_nothing_more(served: ServerProc, token: str | None) -> None:
    for path in ("/api/findings", "/api/jobs", "/api/invariants", "/api/reports"):
        r = _get(served, path, token=token)
        assert r.status_code == 401 and r.json() == {"error": "unauthorized"}
    assert _get(served, "/healthz", token=None).status_code == 200


def _export(exporter: SpanExporter, name: str) -> bool:
    provider = TracerProvider(resource=Resource.create({"service.name": "auth-probe"}))
    results: list[bool] = []

    class _Recording(SimpleSpanProcessor):
        def on_end(self, span: Any) -> None:
            results.append(exporter.export([span]).name == "SUCCESS")

    provider.add_span_processor(_Recording(exporter))
    with provider.get_tracer("t").start_as_current_span(name):
        pass
    provider.shutdown()
    return results == [True]


def test_ingest_needs_its_own_token_on_http_and_grpc(served: ServerProc) -> None:
    url = f"{served.http_url}/v1/traces"
    grpc_at = f"127.0.0.1:{served.otlp_grpc}"
    auth = {"authorization": f"Bearer {INGEST_TOKEN}"}
    assert not _export(HttpSpanExporter(endpoint=url, timeout=5), "http-no-token")
    assert not _export(HttpSpanExporter(endpoint=url, headers={"authorization": f"Bearer {API_TOKEN}"}), "http-api")
    assert _export(HttpSpanExporter(endpoint=url, headers=auth, timeout=10), "http-ok")
    assert not _export(GrpcSpanExporter(endpoint=grpc_at, insecure=True, timeout=5), "grpc-no-token")
    assert _export(GrpcSpanExporter(endpoint=grpc_at, insecure=True, headers=auth, timeout=10), "grpc-ok")


def test_graceful_stop_keeps_everything(served: ServerProc) -> None:
    _wait_for_detection(served)
    assert served.stop() == 0
    names = {r[0] for r in served.query("SELECT span_name FROM spans WHERE service_name = 'auth-probe'")}
    assert names == {"http-ok", "grpc-ok"}
    runs = served.query("SELECT count(*) FROM job_runs WHERE outcome = 'ok' AND job = 'detect'")
    assert runs[0][0] >= 1  # type: ignore[operator]


def test_driftscope_traces_its_jobs_into_itself(tmp_path: Path) -> None:
    """Self-tracing pointed at its own OTLP receiver: job spans arrive as telemetry like any other."""
    with socket.socket() as probe:  # a free port, so the service can be told its own address
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = tmp_path / "self.toml"
    cfg.write_text(f'[jobs]\nrollup_interval_s = 0.5\n[telemetry]\notlp_endpoint = "http://127.0.0.1:{port}"\n')
    srv = start_server(tmp_path / "self.duckdb", config=cfg, otlp_http=f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        accepted = 0.0
        while time.monotonic() < deadline and accepted < 3:
            metrics = requests.get(f"{srv.api_url}/metrics", timeout=10).text
            prefix = 'driftscope_ingest_accepted_items_total{signal="traces"}'
            line = next((x for x in metrics.splitlines() if x.startswith(prefix)), "")
            accepted = float(line.rsplit(" ", 1)[1]) if line else 0.0
            time.sleep(0.2)
        assert accepted >= 3, "no self-spans arrived"
    finally:
        assert srv.stop() == 0
    rows = srv.query("SELECT DISTINCT span_name FROM spans WHERE service_name = 'driftscope'")
    assert ("job rollup",) in rows
