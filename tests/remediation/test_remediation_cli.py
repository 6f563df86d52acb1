"""``driftscope gym whatif`` and ``gym run --remediate``, and the Claude policy's ``propose_patch`` tool
against the local Messages API server (the real anthropic SDK over 127.0.0.1)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tiny import TIMING, TINY, WORLDS, tiny

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "investigations"))
from invest_helpers import ScriptedMessagesServer, build_store, last_tool_results, message, minute_ns, tool_use

from controller.cli import main
from investigations.claude import ClaudePolicy
from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.playbook import PlaybookPolicy
from investigations.run import investigate
from investigations.snapshot import IncidentWindow
from remediation.gym import run_remediation
from store import Store

RELEASE = (
    TINY
    + """
[[faults]]
kind = "latency_regression"
target = "api:Get"
magnitude = 1.0
deploy_version = "1.1.0"
start_min = 60
end_min = 120
"""
)


def _files(tmp: Path, patch: str) -> tuple[str, str]:
    (tmp / "tiny.toml").write_text(RELEASE, encoding="utf-8")
    (tmp / "patch.yaml").write_text(patch, encoding="utf-8")
    return str(tmp / "tiny.toml"), str(tmp / "patch.yaml")


@pytest.mark.parametrize(
    ("patch", "at", "message_part"),
    [
        ("actions: [{kind: rollback, service: apii}]", "66", "actions.0.service: unknown service 'apii'"),
        ("actions: [{kind: scale, operation: 'api:Get', servers: -1}]", "66", "actions.0.scale.servers"),
        ("actions: [{kind: rollback, service: api, version: 0.9.0}]", "66", "actions.0.version: unknown version"),
        ("actions: [{kind: disable_edge, caller: 'api:Put', callee: 'store:Read'}]", "66", "unknown call site"),
        ("actions: [{kind: rollback, service: api}]", "30", "at: minute 30 is not after"),
        ("actions: [{kind: rollback, service: api}]", "118", "at: minute 118 leaves under"),
        ("[1, 2", "66", "neither YAML nor JSON"),
    ],
)
def test_whatif_refuses_bad_input_with_status_2_naming_the_field(
    tmp_path: Path, patch: str, at: str, message_part: str
) -> None:
    scenario, patch_file = _files(tmp_path, patch)
    out = CliRunner().invoke(main, ["gym", "whatif", "--scenario", scenario, "--patch", patch_file, "--at", at])
    assert out.exit_code == 2, out.output
    assert message_part in out.output and "Traceback" not in out.output
    assert not list(tmp_path.glob("*.duckdb"))  # nothing simulated


@pytest.mark.slow
def test_whatif_prints_the_verdict_table_and_exits_like_the_gate(tmp_path: Path) -> None:
    scenario, patch_file = _files(tmp_path, "actions: [{kind: rollback, service: api}]")
    out = CliRunner().invoke(main, ["gym", "whatif", "--scenario", scenario, "--patch", patch_file, "--at", "66"])
    assert out.exit_code == 0, out.output
    assert "verdict: fixed" in out.output and "api:Get" in out.output and "rollback api to previous" in out.output
    (tmp_path / "wrong.yaml").write_text("actions: [{kind: rate_limit, entrypoint: 'api:Get', rate_per_s: 2}]")
    args = ["gym", "whatif", "--scenario", scenario, "--patch", str(tmp_path / "wrong.yaml"), "--format", "json"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 1, out.output
    doc = json.loads(out.output)
    assert doc["result"]["verdict"] == "harmful" and any("refuses users" in r for r in doc["result"]["reasons"])


@pytest.mark.slow
def test_the_playbook_proposes_the_rollback_and_the_gym_scores_it(tmp_path: Path) -> None:
    score = run_remediation(tiny(**WORLDS["release"]), PlaybookPolicy(), tmp_path, rate_per_s=100, timing=TIMING)
    assert score.rank == 1 and score.patch == "rollback api to previous", score
    assert score.verdict == "fixed" and score.broken_before and score.ttr_min is not None


def test_claude_proposes_patches_through_the_tool(tmp_path: Path) -> None:
    path = tmp_path / "mini.duckdb"
    build_store(path, "mini", rate=4.0, from_minute=0, until_minute=40)
    seen: dict[str, Any] = {}
    bad = {"patch": {"actions": [{"kind": "rollback", "service": "no-such-service"}]}}
    good = {"patch": {"title": "drain the api", "actions": [{"kind": "drain", "target": "api"}],
                      "expected": [{"signal": "latency_p99", "service": "api", "direction": "down"}]}}  # fmt: skip

    def step1(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["tools"] = [t["name"] for t in body["tools"]]
        seen["schema"] = body["tools"][-1]["input_schema"]
        return 200, message([tool_use("p1", "propose_patch", bad), tool_use("p2", "propose_patch", good)], "tool_use")

    def step2(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["results"] = last_tool_results(body)
        report = {"summary": "api is slow", "candidates": [{"service": "api", "mechanism": "latency regression",
                                                            "confidence": 0.5}]}  # fmt: skip
        return 200, message([tool_use("s1", "submit_report", report)], "tool_use")

    with ScriptedMessagesServer([step1, step2]) as server:
        config = InvestigationsConfig(base_url=server.url, out_dir=str(tmp_path / "out"), model="claude-test")
        store = Store(path)
        try:
            policy = ClaudePolicy(config, api_key="sk-test-not-a-real-key")
            window = IncidentWindow.around(minute_ns(25), minute_ns(40), 1_200)
            outcome = investigate(store, Trigger("manual", "api slow", fingerprint="fp"), window, policy, config)
        finally:
            store.close()
    assert server.errors == []
    assert "propose_patch" in seen["tools"] and "patches" in seen["schema"]["properties"]
    first, second = seen["results"]
    assert first["is_error"] and "patch.actions.0.service: 'no-such-service'" in first["content"]
    assert not second["is_error"]
    assert [p.describe() for p in outcome.report.patches] == ["drain api (standby 0.5)"]
    assert "## Proposed patches" in outcome.report_path.read_text(encoding="utf-8")
