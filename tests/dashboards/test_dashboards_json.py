"""The committed dashboard JSON: up to date with the code, unique ids, datasources and variables that resolve."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from dashboards import metrics
from dashboards.__main__ import main
from dashboards.common import DATASOURCE_UID
from dashboards.generate import DASHBOARDS, GENERATED_DIR, GRAFANA_DASHBOARDS_PATH, PACKAGE_DIR, outputs, stale

BUILTINS = {"__rate_interval", "__range", "__interval"}
OURS = {"collector", "analysis", "detectors", "investigations", "reports", "simulator", "controller"}


def _load() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(GENERATED_DIR.glob("*.json"))}


def _targets(dash: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in dash["panels"] for target in panel.get("targets", [])]


def test_committed_files_are_what_the_code_generates() -> None:
    assert {p.stem for p in GENERATED_DIR.glob("*.json")} == set(DASHBOARDS)
    assert stale() == [], "run `python -m dashboards` and commit the result"


def test_cli_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["--out", str(tmp_path), "--check"]).exit_code == 1  # nothing written yet
    result = runner.invoke(main, ["--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == sorted(outputs())
    checked = runner.invoke(main, ["--out", str(tmp_path), "--check"])
    assert checked.exit_code == 0 and "up to date" in checked.output
    (tmp_path / "generated" / "overview.json").write_text("{}")
    stale_run = runner.invoke(main, ["--out", str(tmp_path), "--check"])
    assert stale_run.exit_code == 1 and "generated/overview.json" in stale_run.output


def test_uids_and_panel_ids_are_unique() -> None:
    dashboards = _load()
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) == 3
    for stem, dash in dashboards.items():
        ids = [p["id"] for p in dash["panels"]]
        assert len(set(ids)) == len(ids), f"{stem}: duplicate panel ids {ids}"
        for panel, _ in _targets(dash):
            refs = [t["refId"] for t in panel["targets"]]
            assert len(set(refs)) == len(refs) and all(refs), f"{stem} / {panel['title']}: refIds {refs}"
        assert all(p["options"] for p in dash["panels"] if p["type"] != "row"), f"{stem}: a panel without options"
        titles = [p["title"] for p in dash["panels"] if p["type"] != "row"]
        assert len(set(titles)) == len(titles), f"{stem}: duplicate panel titles"


def test_datasource_references_are_the_provisioned_prometheus() -> None:
    provisioned = yaml.safe_load((PACKAGE_DIR / "provisioning" / "datasources.yaml").read_text())
    sources = {(d["type"], d["uid"]) for d in provisioned["datasources"]}
    assert sources == {("prometheus", DATASOURCE_UID)}
    for stem, dash in _load().items():
        refs = [p["datasource"] for p in dash["panels"] if p["type"] != "row"]
        refs += [t["datasource"] for _, t in _targets(dash)]
        refs += [v["datasource"] for v in dash["templating"]["list"]]
        refs += [a["datasource"] for a in dash.get("annotations", {}).get("list", [])]
        bad = [r for r in refs if (r.get("type"), r.get("uid")) not in sources]
        assert refs and bad == [], f"{stem}: datasource references not provisioned: {bad}"


def test_every_variable_used_is_defined_and_every_metric_is_known() -> None:
    for stem, dash in _load().items():
        defined = {v["name"] for v in dash["templating"]["list"]} | BUILTINS
        exprs = [t["expr"] for _, t in _targets(dash)]
        exprs += [v["query"] for v in dash["templating"]["list"]]
        exprs += [a["expr"] for a in dash.get("annotations", {}).get("list", [])]
        exprs += [p["repeat"] for p in dash["panels"] if p.get("repeat")]
        titles = [p["title"] for p in dash["panels"]]
        used = {m for text in exprs + titles for m in re.findall(r"\$(\w+)", text)}
        used |= {p["repeat"] for p in dash["panels"] if p.get("repeat")}
        assert used <= defined, f"{stem}: undefined variables {used - defined}"
        names = {n.removesuffix("_bucket") for text in exprs for n in re.findall(r"driftscope_[a-z0-9_]+", text)}
        assert names <= metrics.EXPORTED | metrics.PENDING, f"{stem}: unknown metrics {names - metrics.EXPORTED}"
        assert all('environment=~"$environment"' in t["expr"] for _, t in _targets(dash)), stem


def test_exported_and_pending_names_are_disjoint() -> None:
    assert not metrics.EXPORTED & metrics.PENDING
    assert all(n.startswith("driftscope_") for n in metrics.EXPORTED | metrics.PENDING)


def test_provisioning_loads_the_generated_directory() -> None:
    provider = yaml.safe_load((PACKAGE_DIR / "provisioning" / "dashboards.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == GRAFANA_DASHBOARDS_PATH


def test_dashboards_package_imports_none_of_ours() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        roots = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        roots |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not roots & OURS, f"{path.name} imports {roots & OURS}"


def test_panels_fit_the_grid_without_overlapping() -> None:
    for stem, dash in _load().items():
        cells: dict[tuple[int, int], int] = {}
        for panel in dash["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{stem} / {panel['title']}: {pos}"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{stem}: panel {panel['id']} overlaps panel {cells[(x, y)]}"
                    cells[(x, y)] = panel["id"]
