"""Render the dashboards to Grafana JSON and write them with their Grafana provisioning files.

The JSON is committed (``dashboards/generated``) so Grafana, reviewers and the compose stack
read it without running Python; ``python -m dashboards --check`` fails when it is stale.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import investigations, overview, service_drift
from dashboards.common import DATASOURCE_UID

PACKAGE_DIR = Path(__file__).resolve().parent
GENERATED_DIR = PACKAGE_DIR / "generated"
PROVISIONING_DIR = PACKAGE_DIR / "provisioning"
PROMETHEUS_URL = "http://prometheus:9090"
"""Where Grafana reaches Prometheus (the compose service name)."""
GRAFANA_DASHBOARDS_PATH = "/var/lib/grafana/dashboards/driftscope"
"""Where the compose stack mounts ``dashboards/generated`` inside the Grafana container."""

DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "overview": overview.build,
    "service-drift": service_drift.build,
    "investigations": investigations.build,
}
"""File stem -> builder of each dashboard."""


def render(dash: dashboard.Dashboard) -> str:
    """Return the dashboard as Grafana JSON (sorted keys, so regenerating gives the same bytes)."""
    return JSONEncoder(sort_keys=True, indent=2).encode(dash.build()) + "\n"


def datasources_yaml(prometheus_url: str = PROMETHEUS_URL) -> str:
    """Return the Grafana datasource provisioning file: the Prometheus that scrapes driftscope."""
    doc = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "driftscope Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": "15s"},
            }
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def dashboards_yaml(path: str = GRAFANA_DASHBOARDS_PATH) -> str:
    """Return the Grafana dashboard provisioning file: load every JSON under ``path`` into a folder."""
    doc = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "driftscope",
                "folder": "driftscope",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def outputs(prometheus_url: str = PROMETHEUS_URL) -> dict[str, str]:
    """Return every generated file's content keyed by its path relative to ``dashboards/``."""
    files = {f"generated/{stem}.json": render(build()) for stem, build in DASHBOARDS.items()}
    files["provisioning/datasources.yaml"] = datasources_yaml(prometheus_url)
    files["provisioning/dashboards.yaml"] = dashboards_yaml()
    return files


def write_all(root: Path = PACKAGE_DIR, prometheus_url: str = PROMETHEUS_URL) -> list[Path]:
    """Write every generated file under ``root``; return the paths written."""
    written = []
    for rel, text in outputs(prometheus_url).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def stale(root: Path = PACKAGE_DIR, prometheus_url: str = PROMETHEUS_URL) -> list[str]:
    """Return the relative paths under ``root`` whose content differs from what the code generates."""
    return [
        rel
        for rel, text in outputs(prometheus_url).items()
        if not (root / rel).is_file() or (root / rel).read_text() != text
    ]
