"""Static checks of the ClickHouse compose overlay: mounts, loopback ports, the Collector's exporter
pointing at the compose ClickHouse, and driftscope's environment forming a valid configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import load_config

INFRA = Path(__file__).resolve().parent.parent / "infra"


def _yaml(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((INFRA / name).read_text())
    return doc


def test_the_overlay_mounts_existing_files_and_listens_on_loopback() -> None:
    overlay = _yaml("compose.clickhouse.yaml")
    base = _yaml("compose.yaml")
    assert set(overlay["services"]) <= set(base["services"]) | {"clickhouse"}
    for name, service in overlay["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (INFRA / source).resolve().is_file(), f"{name}: {source} does not exist"
            else:
                assert source in overlay["volumes"], f"{name}: volume {source} not declared"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} would listen on every interface"
    for secret in overlay["secrets"].values():
        assert (INFRA / secret["file"]).is_file()


def test_the_collector_exports_to_the_database_driftscope_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = _yaml("compose.clickhouse.yaml")
    exporter = _yaml("otelcol/clickhouse.yaml")["exporters"]["clickhouse"]
    assert exporter["endpoint"].startswith("tcp://clickhouse:9000")
    env = overlay["services"]["driftscope"]["environment"]
    assert env["DRIFTSCOPE_PLANE__CLICKHOUSE__DATABASE"] == exporter["database"]
    assert env["DRIFTSCOPE_PLANE__CLICKHOUSE__URL"] == "http://clickhouse:8123"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DRIFTSCOPE_PLANE__CLICKHOUSE__PASSWORD_FILE", str(INFRA / "secrets" / "clickhouse_password"))
    settings = load_config()
    assert settings.plane.backend == "clickhouse"
    target = settings.plane.target()
    assert target.password == "local-only-clickhouse-password" and target.database == "otel"
    assert set(_yaml("otelcol/clickhouse.yaml")["service"]["pipelines"]) == {"traces", "metrics", "logs"}
