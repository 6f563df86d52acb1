"""The alert webhooks and investigations API on a real HTTP server, and the investigate / gym commands."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from invest_helpers import build_store, minute_ns
from prometheus_client import CollectorRegistry

from controller.api import api_app
from controller.api_alerts import alert_routes
from controller.cli_gym import gym
from controller.cli_investigate import investigate
from controller.config import load_config
from investigations.config import InvestigationsConfig
from investigations.playbook import PlaybookPolicy
from investigations.snapshot import iso
from store.connection import Store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("svc") / "store.duckdb"
    build_store(path, "error-burst", rate=5.0, from_minute=80, until_minute=236)
    return path


def _payload(fp: str) -> dict[str, Any]:
    # Alertmanager fires 10 minutes into the error burst (scenario minute 200)
    return {
        "version": "4",
        "groupKey": "g",
        "status": "firing",
        "receiver": "driftscope",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"},
                "annotations": {"summary": "checkout errors"},
                "startsAt": iso(minute_ns(210)),
                "fingerprint": fp,
            }
        ],
    }


@pytest.fixture
def api(store_path: Path, tmp_path: Path) -> Iterator[tuple[str, CollectorRegistry]]:
    store = Store(store_path)
    registry = CollectorRegistry()
    settings = load_config(None, store=str(store_path))
    config = InvestigationsConfig(out_dir=str(tmp_path / "investigations"))
    routes = alert_routes(store, registry, settings, policy_factory=lambda cfg: PlaybookPolicy(), config=config)
    app = api_app(registry, lambda: (True, "ok"), store, extra_routes=routes)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    poll = threading.Event()
    while not server.started:  # uvicorn sets ``started`` once it listens
        assert thread.is_alive(), "uvicorn did not start"
        poll.wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", registry
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def _http(url: str, body: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_alertmanager_webhook_investigates_then_cools_down(api: tuple[str, CollectorRegistry], tmp_path: Path) -> None:
    base, registry = api
    status, out = _http(f"{base}/api/alerts/alertmanager?wait=true", json.dumps(_payload("fp-api")).encode())
    assert status == 200 and out["items"][0]["action"] == "dispatch", out
    iid = out["items"][0]["investigation_id"]
    status, inv = _http(f"{base}/api/investigations/{iid}")
    assert status == 200 and inv["status"] == "complete" and inv["finding_id"] is None
    top = inv["report"]["candidates"][0]
    assert (top["service"], top["operation"]) == ("inventory", "Reserve")
    assert inv["claims_verified"] == inv["claims_total"] > 0 and Path(inv["report_path"]).exists()
    assert str(tmp_path) in inv["report_path"]
    status, listing = _http(f"{base}/api/investigations")
    assert status == 200 and iid in [i["id"] for i in listing["items"]]
    status, again = _http(f"{base}/api/alerts/alertmanager?wait=true", json.dumps(_payload("fp-api")).encode())
    assert again["items"][0]["reason"] == "cooldown"
    labels = {"source": "alertmanager", "action": "skip", "reason": "cooldown"}
    assert registry.get_sample_value("driftscope_investigation_decisions_total", labels) == 1
    finished = {"policy": "playbook", "outcome": "completed"}
    assert registry.get_sample_value("driftscope_investigations_total", finished) == 1
    verified = registry.get_sample_value("driftscope_investigation_claims_total", {"verified": "true"})
    assert verified == inv["claims_verified"]
    assert registry.get_sample_value("driftscope_investigation_duration_seconds_count", {"policy": "playbook"}) == 1


def test_bad_payloads_get_400_naming_the_field(api: tuple[str, CollectorRegistry]) -> None:
    base, _ = api
    status, out = _http(f"{base}/api/alerts/grafana", json.dumps({"status": "firing"}).encode())
    assert status == 400 and "alerts" in out["error"]
    status, out = _http(f"{base}/api/alerts/alertmanager", b"{")
    assert status == 400 and "JSON" in out["error"]
    status, out = _http(f"{base}/api/investigations/nope")
    assert status == 404 and "nope" in out["error"]


def test_investigate_command_with_an_alert_file(store_path: Path, tmp_path: Path) -> None:
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(_payload("fp-cli")))
    runner = CliRunner()
    args = ["--store", str(store_path), "--alert", str(alert), "--policy", "playbook", "--out", str(tmp_path / "o")]
    result = runner.invoke(investigate, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] == "complete" and doc["report"]["candidates"][0]["service"] == "inventory"
    replay = runner.invoke(investigate, [*args, "--policy", "replay", "--replay", doc["id"], "--format", "markdown"])
    assert replay.exit_code == 0 and "inventory" in replay.output and "UNVERIFIED" not in replay.output
    for bad, message in (
        ([], "FINDING_ID or --alert"),
        (["nope"], "no finding 'nope'"),
        (["--alert", str(alert), "--policy", "replay"], "--replay"),
    ):
        out = runner.invoke(investigate, ["--store", str(store_path), *bad])
        assert out.exit_code != 0 and message in out.output and "Traceback" not in out.output


def test_gym_run_scores_the_playbook(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(gym, ["run", "--scenario", "error-burst", "--rate", "4", "--format", "json"])
    assert result.exit_code == 0, result.output
    score = json.loads(result.output)
    assert score["rank"] == 1 and score["at1"] and score["steps"] > 0
    for name, message in (("mini", "no fault"), ("slow-drift", "not in the gym"), ("nope", "nope")):
        out = runner.invoke(gym, ["run", "--scenario", name])
        assert out.exit_code != 0 and message in out.output and "Traceback" not in out.output
