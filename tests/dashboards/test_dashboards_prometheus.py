"""Dashboards and the alerting loop against real parts.

Debian's Prometheus scrapes a real ``driftscope serve`` whose store the simulator filled
(error-burst, so critical findings open) and which received real OTLP requests; every
panel query of the committed dashboard JSON runs through Prometheus' HTTP API; the
shipped alert rules fire and Debian's Alertmanager posts them to driftscope's webhook.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from otlp_json import EXAMPLES, TRACE_EXAMPLE
from promstack import (
    ENVIRONMENT,
    Daemon,
    metric_names,
    need_binary,
    prometheus_time,
    query,
    series_label_values,
    start_alertmanager,
    start_prometheus,
    wait_for,
)
from serverproc import ServerProc, start_server

from dashboards import metrics
from dashboards.generate import GENERATED_DIR
from simulator.run import simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

TOKEN = "dashboards-test-token"
BUILTINS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}
"""Grafana's built-in variables, as Grafana would expand them for a 1 h range at a 1 s scrape interval."""
METRIC = re.compile(r"driftscope_[a-z0-9_]+")
PROVOKED = {metrics.INGEST_REFUSED, metrics.INGEST_REJECTED}
"""Event-driven counters the fixture makes happen (a malformed export, a rejected span)."""


@dataclass
class Stack:
    server: ServerProc
    prometheus: Daemon
    alertmanager: Daemon
    started_s: float


def _fill_store(path: Path) -> None:
    """Three hours of error-burst at 5 requests/s: the burst (minutes 200-240) opens critical findings."""
    scenario = load_scenario("error-burst")
    scenario = scenario.model_copy(update={"arrivals": scenario.arrivals.model_copy(update={"rate_per_s": 5.0})})
    store = Store(path)
    try:
        simulate(scenario, StoreSink(store), hours=4.0, from_minute=60, seed=5)
    finally:
        store.close()


def _feed(server: ServerProc) -> None:
    """Real OTLP/JSON exports: one of each signal, one with a rejected span, one malformed (refused)."""
    url = server.http_url
    for signal, doc in EXAMPLES.items():
        resp = requests.post(f"{url}/v1/{signal}", data=orjson.dumps(doc), headers={"Content-Type": "application/json"})
        assert resp.status_code == 200, resp.text
    partial = copy.deepcopy(TRACE_EXAMPLE)
    spans = partial["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "0000000000000000"})  # an all-zero span id is rejected alone
    resp = requests.post(f"{url}/v1/traces", data=orjson.dumps(partial), headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json().get("partialSuccess"), resp.text
    resp = requests.post(f"{url}/v1/traces", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_binary("prometheus")
    need_binary("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("promstack")
    _fill_store(tmp / "store.duckdb")
    server = start_server(
        tmp / "store.duckdb",
        ("DRIFTSCOPE_JOBS__ROLLUP_INTERVAL_S", "1"),
        ("DRIFTSCOPE_JOBS__DETECT_INTERVAL_S", "2"),
        ("DRIFTSCOPE_AUTH__API_TOKEN", TOKEN),
    )
    daemons: list[Daemon] = []
    try:
        daemons.append(start_alertmanager(tmp, server.http, TOKEN))
        daemons.append(start_prometheus(tmp, server.http, daemons[0].url))
        prom = daemons[1]
        started = prometheus_time(prom)
        wait_for(lambda: query(prom, 'up{job="driftscope"} == 1'), "Prometheus to scrape driftscope", 30)
        # Twice: the first creates the labelled counters, the second raises them after a scrape
        # saw them (Prometheus does not count a series' first sample as an increase).
        _feed(server)
        wait_for(lambda: query(prom, f"{metrics.INGEST_REFUSED} > 0"), "the first ingest counters in Prometheus")
        _feed(server)
        wait_for(lambda: query(prom, f"rate({metrics.INGEST_ACCEPTED}[1m]) > 0"), "ingest rates in Prometheus")
        wait_for(lambda: query(prom, metrics.FINDINGS_OPEN), "findings metrics (the detect job)", 90)
        wait_for(lambda: query(prom, f"sum(increase({metrics.JOB_RUNS}[1m])) > 0"), "job run increases")
        yield Stack(server, prom, daemons[0], started)
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        if server.proc.poll() is None:
            server.stop()


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(GENERATED_DIR.glob("*.json"))}


def _substitute(expr: str, variables: dict[str, str]) -> str:
    values = {**BUILTINS, **{f"${name}": value for name, value in variables.items()}}
    for key in sorted(values, key=len, reverse=True):  # $__range before a hypothetical $__r
        expr = expr.replace(key, values[key])
    return expr


def _variables(stack: Stack) -> dict[str, str]:
    """A value that exists for each template variable (the first the variable would list)."""
    services = series_label_values(stack.prometheus, f'{metrics.DRIFT_SCORE}{{environment="{ENVIRONMENT}"}}', "service")
    assert services, "no service has a drift score"
    return {"environment": re.escape(ENVIRONMENT), "service": re.escape(services[0])}


def _is_live(name: str, live: set[str]) -> bool:
    return bool({name, f"{name}_bucket", f"{name}_total"} & live)


def test_every_exported_metric_name_is_scraped(stack: Stack) -> None:
    # driftscope's own TYPE lines name a family before its first labelled child exists
    # (job failures appear only after a failure); Prometheus names cover the rest.
    text = requests.get(stack.server.api_url + "/metrics", timeout=5).text
    live = metric_names(stack.prometheus) | set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    missing = sorted(name for name in metrics.EXPORTED if not _is_live(name, live))
    assert missing == [], f"names in dashboards.metrics.EXPORTED that driftscope does not export: {missing}"


def test_every_panel_query_returns_data(stack: Stack) -> None:
    variables = _variables(stack)
    live = metric_names(stack.prometheus)
    checked, failures, pending = 0, [], []
    for stem, dash in _dashboards().items():
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                expr = _substitute(target["expr"], variables)
                checked += 1
                if query(stack.prometheus, expr):
                    continue
                names = {n.removesuffix("_bucket") for n in METRIC.findall(target["expr"])}
                where = f"{stem} / {panel['title']} / {target['refId']}: {expr}"
                # No data is allowed only for metrics not exported yet, and for event-driven counters
                # whose event has not happened (the fixture provokes refusals and rejections, so not those).
                waiting = {n for n in names if n in metrics.PENDING and not _is_live(n, live)}
                waiting |= {n for n in names if n in metrics.EVENT_DRIVEN - PROVOKED}
                if names and names <= waiting:
                    pending.append(f"{where} (awaits {', '.join(sorted(waiting))})")
                else:
                    failures.append(where)
    assert checked >= 40
    assert failures == [], "panel queries without data:\n" + "\n".join(failures)
    print("panel queries awaiting a metric or its first event:\n" + "\n".join(pending))


def test_template_variables_resolve(stack: Stack) -> None:
    variables = _variables(stack)
    for stem, dash in _dashboards().items():
        names = set()
        for var in dash["templating"]["list"]:
            names.add(var["name"])
            found = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"])
            assert found, f"{stem}: variable {var['name']} query {var['query']!r} is not label_values(metric, label)"
            match, label = _substitute(found.group(1), variables), found.group(2)
            values = series_label_values(stack.prometheus, match, label)
            assert values, f"{stem}: variable {var['name']} ({var['query']}) lists nothing"
            if var["name"] == "environment":
                assert ENVIRONMENT in values
        assert names == {"environment", "service"}


def test_annotations_mark_change_points(stack: Stack) -> None:
    variables = _variables(stack)
    dash = _dashboards()["service-drift"]
    annotations = {a["name"]: a for a in dash["annotations"]["list"]}
    assert set(annotations) == {"Change points", "Deploys"}
    for annotation in annotations.values():
        query(stack.prometheus, _substitute(annotation["expr"], variables))  # valid PromQL (fails otherwise)
    # Over the whole test, the minute the findings appeared is a change point (all services selected).
    # The range reaches 10 minutes past Prometheus' now: sandboxed clocks have been seen to step back.
    marks = query(
        stack.prometheus,
        _substitute(annotations["Change points"]["expr"], {**variables, "service": ".*"}),
        start=str(stack.started_s - 60),
        end=str(prometheus_time(stack.prometheus) + 600),
        step="1s",
    )
    assert marks, "no change-point annotation although findings opened during the test"


def test_critical_finding_alert_reaches_driftscope(stack: Stack) -> None:
    prom, am = stack.prometheus, stack.alertmanager

    expected = {"DriftscopeCriticalFinding", "DriftscopeIngestMalformed"}

    def firing() -> list[dict[str, Any]]:
        alerts = requests.get(prom.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        return alerts if names == expected else []

    # Health rules are evaluated too: quiet on a healthy driftscope, except the malformed-input
    # rule, which the fixture's deliberately malformed export trips (its `for` is 0s here).
    alerts = wait_for(firing, f"Prometheus to fire exactly {sorted(expected)}")
    fired = [a for a in alerts if a["labels"]["alertname"] == "DriftscopeCriticalFinding"]
    services = {a["labels"]["service"] for a in fired}
    assert all(a["labels"]["environment"] == ENVIRONMENT and a["labels"]["investigate"] == "true" for a in fired)

    def in_alertmanager() -> list[dict[str, Any]]:
        alerts = requests.get(am.url + "/api/v2/alerts", params={"active": "true"}, timeout=5).json()
        return [a for a in alerts if a["labels"]["alertname"] == "DriftscopeCriticalFinding"]

    received = wait_for(in_alertmanager, "Alertmanager to receive the alert")
    assert all(r["receivers"][0]["name"] == "driftscope-investigate" for r in received), received

    def posted() -> float:
        text = requests.get(am.url + "/metrics", timeout=5).text
        found = re.search(r'^alertmanager_notifications_total\{integration="webhook"\} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    wait_for(posted, "Alertmanager to POST the webhook to driftscope")

    auth = {"Authorization": f"Bearer {TOKEN}"}
    probe = requests.get(stack.server.api_url + "/api/investigations", headers=auth, timeout=5)
    assert probe.status_code == 200, probe.text

    def opened() -> list[dict[str, Any]]:
        body = requests.get(stack.server.api_url + "/api/investigations", headers=auth, timeout=5).json()
        assert body["count"] == len(body["items"])
        return list(body["items"])

    items = wait_for(opened, "driftscope to open an investigation from the webhook")
    text = json.dumps(items)
    assert any(service in text for service in services), f"no investigation mentions {services}: {text[:2000]}"
