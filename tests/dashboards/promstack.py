"""Test helpers: Debian's Prometheus and Alertmanager started on loopback from the shipped configs.

The shipped files (infra/prometheus, infra/alertmanager) are loaded and only the addresses,
intervals, ``for`` durations and the token path are rewritten for the test, so what the
tests exercise is what ships.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml
from requires import missing

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
PROMETHEUS_YML = INFRA / "prometheus" / "prometheus.yml"
RULES_YML = INFRA / "prometheus" / "rules" / "driftscope.rules.yml"
ALERTMANAGER_YML = INFRA / "alertmanager" / "alertmanager.yml"
ENVIRONMENT = "test"
"""The ``environment`` target label the test's scrape config sets."""

T = TypeVar("T")


def need_binary(name: str) -> str:
    """Path of a Debian binary; skip without it, except under CI=true where it must be there."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        missing(f"{name} is not installed (Debian packages prometheus / prometheus-alertmanager)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except requests.RequestException as exc:
            last_error = exc
        time.sleep(0.2)  # polling interval, not a synchronisation sleep: the deadline decides
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last error: {last_error})")


@dataclass
class Daemon:
    """A started Prometheus or Alertmanager and its base URL."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _start(cmd: list[str], url: str, log: Path, ready_path: str) -> Daemon:
    with open(log, "ab") as out:  # a file, not a pipe: a chatty daemon must never block
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    daemon = Daemon(proc, url, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{cmd[0]} exited with {proc.returncode}: {daemon.tail()}")
        return requests.get(url + ready_path, timeout=2).status_code == 200

    wait_for(ready, f"{cmd[0]} to be ready", 30)
    return daemon


def rules_for_test(tmp_path: Path) -> Path:
    """The shipped rules with every ``for`` set to 0s, so an alert fires on its first evaluation."""
    doc = yaml.safe_load(RULES_YML.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_prometheus(tmp_path: Path, driftscope_port: int, alertmanager_url: str) -> Daemon:
    """Prometheus from the shipped config, scraping driftscope on ``driftscope_port`` every second."""
    binary = need_binary("prometheus")
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules_for_test(tmp_path))]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager_url.split("//")[1]]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "driftscope")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{driftscope_port}"], "labels": {"environment": ENVIRONMENT}}]
    config["scrape_configs"] = [job]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = [
        binary,
        f"--config.file={path}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--rules.alert.resend-delay=1s",
    ]
    return _start(cmd, f"http://127.0.0.1:{port}", tmp_path / "prometheus.log", "/-/ready")


def start_alertmanager(tmp_path: Path, driftscope_port: int, token: str) -> Daemon:
    """Alertmanager from the shipped config, posting to driftscope on ``driftscope_port`` with ``token``."""
    binary = need_binary("prometheus-alertmanager")
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    token_file = tmp_path / "api_token"
    token_file.write_text(token)
    for route in [config["route"], *config["route"].get("routes", [])]:
        route["group_wait"] = "1s"
        route["group_interval"] = "1s"
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = hook["url"].replace("http://driftscope:8080", f"http://127.0.0.1:{driftscope_port}")
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = [
        binary,
        f"--config.file={path}",
        f"--storage.path={tmp_path / 'am'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return _start(cmd, f"http://127.0.0.1:{port}", tmp_path / "alertmanager.log", "/-/ready")


def query(prometheus: Daemon, expr: str, **params: str) -> list[dict[str, Any]]:
    """Run an instant (or, with start/end/step, a range) query; return the result list, failing on errors."""
    path = "/api/v1/query_range" if "step" in params else "/api/v1/query"
    resp = requests.get(prometheus.url + path, params={"query": expr, **params}, timeout=10)
    body = resp.json()
    assert body.get("status") == "success", f"{expr!r}: {body.get('errorType')}: {body.get('error')}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def series_label_values(prometheus: Daemon, match: str, label: str) -> list[str]:
    """What Grafana's ``label_values(match, label)`` lists: the values of ``label`` on series matching ``match``."""
    resp = requests.get(prometheus.url + "/api/v1/series", params={"match[]": match}, timeout=10)
    body = resp.json()
    assert body.get("status") == "success", f"{match!r}: {body.get('error')}"
    return sorted({s[label] for s in body["data"] if label in s})


def metric_names(prometheus: Daemon) -> set[str]:
    """Every metric name Prometheus has scraped."""
    resp = requests.get(prometheus.url + "/api/v1/label/__name__/values", timeout=10)
    return set(resp.json()["data"])


def prometheus_time(prometheus: Daemon) -> float:
    """Prometheus' own clock (Unix seconds): range queries must use it, not the test process' clock."""
    body = requests.get(prometheus.url + "/api/v1/query", params={"query": "time()"}, timeout=10).json()
    return float(body["data"]["result"][0])
