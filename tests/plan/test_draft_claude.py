"""Claude as the drafting policy, against a local server speaking the Messages API through the real anthropic SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import BASELINE_END, BASELINE_WINDOW
from invest_helpers import ScriptedMessagesServer, last_tool_results, message, tool_use
from receipts_repo import SPEC

from controller.cli import main
from detectors.judge.contract import Contract, parse_contract
from detectors.planning.draft import Hints
from detectors.planning.facts import SystemFacts
from investigations.config import InvestigationsConfig
from investigations.plan_draft import PolicyError, draft_with_claude

FEATURE = "Order receipts: store a receipt in object storage for every accepted order"
EDGE = {"from": "domain-gate:POST /api/orders", "to": "supabase-storage:PutObject"}


def _data(block: dict[str, Any]) -> dict[str, Any]:
    text = block["content"]
    return json.loads(text[text.index("\n") + 1 :])  # type: ignore[no-any-return]


def _config(server: ScriptedMessagesServer, **kw: Any) -> InvestigationsConfig:
    return InvestigationsConfig(base_url=server.url, model="claude-test", api_max_retries=2, **kw)


def test_tool_loop_checks_design_refuses_invalid_submissions_and_returns_the_contract(facts: SystemFacts) -> None:
    seen: dict[str, Any] = {}

    def look(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["system"], seen["tools"], seen["opening"] = body["system"], body["tools"], body["messages"][0]["content"]
        uses = [tool_use("t1", "system_overview", {}), tool_use("t2", "describe_operation", {"name": EDGE["from"]})]
        return 200, message(uses, "tool_use", inp=2000, out=60, cache_write=4000)

    def template(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["look"] = last_tool_results(body)
        return 200, message([tool_use("t3", "playbook_draft", {"calls": [EDGE]})], "tool_use", cache_read=4000)

    def check(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        draft = _data(last_tool_results(body)[0])
        seen["draft"] = draft
        bad = json.loads(json.dumps(draft))
        bad["calls"]["present"].append({"from": "web-bff:POST /orders", "to": "supabase-postgres:INSERT order"})
        unknown = {**draft, "operations": [{"name": "ghost:Op"}]}
        uses = [
            tool_use("t4", "check_design", {"contract": bad}),
            tool_use("t5", "check_design", {"contract": unknown}),
        ]
        return 200, message(uses, "tool_use")

    def invalid(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["checks"] = last_tool_results(body)
        broken = {**seen["draft"], "operations": [{"name": EDGE["from"], "slo": {"quantile": 2}}]}
        return 200, message([tool_use("t6", "submit_contract", {"contract": broken})], "tool_use")

    def submit(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["refused"] = last_tool_results(body)
        return 200, message([tool_use("t7", "submit_contract", {"contract": seen["draft"]})], "tool_use")

    with ScriptedMessagesServer([look, template, check, invalid, submit]) as server:
        contract = draft_with_claude(FEATURE, facts, Hints(), _config(server), api_key="sk-test-not-a-real-key")
    assert server.errors == []
    assert (
        seen["system"][0]["cache_control"] == {"type": "ephemeral"} and "feature contract" in seen["system"][0]["text"]
    )
    assert seen["tools"][-1]["name"] == "submit_contract" and seen["tools"][-1]["cache_control"] == {
        "type": "ephemeral"
    }
    assert FEATURE in seen["opening"]
    overview, op = (_data(b) for b in seen["look"])
    assert overview["layers"]["bff"] == ["web-bff"] and "forbidden_edges" in overview["boundary_rules"]
    assert "supabase-auth:VerifyJWT" in op["required_calls"] and op["p99_ms"] > 0
    design, unknown = seen["checks"]
    assert not design["is_error"] and {v["rule"] for v in _data(design)["violations"]} >= {
        "bff-never-writes-the-database"
    }
    assert unknown["is_error"] and "ghost:Op" in unknown["content"]
    refused = seen["refused"][0]
    assert refused["is_error"] and "operations.0.slo.quantile" in refused["content"]
    assert contract == Contract.model_validate(seen["draft"])
    assert [c.callee for c in contract.calls.present] == ["supabase-storage:PutObject"]


def test_the_budget_bounds_the_conversation(facts: SystemFacts) -> None:
    def wander(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, message([tool_use("w", "system_overview", {})], "tool_use")

    with ScriptedMessagesServer([wander] * 5) as server, pytest.raises(PolicyError, match="budget exhausted"):
        draft_with_claude(FEATURE, facts, Hints(), _config(server, max_steps=4), api_key="sk-test")
    assert len(server.requests) == 2  # two turns, each a model step and a tool call


def test_plan_draft_with_the_claude_policy(
    platform_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def template(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, message([tool_use("t1", "playbook_draft", {"calls": [EDGE]})], "tool_use")

    def submit(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        draft = _data(last_tool_results(body)[0])
        draft["notes"] = ["drafted by the scripted model"]
        return 200, message([tool_use("t2", "submit_contract", {"contract": draft})], "tool_use")

    out = tmp_path / "draft.yaml"
    args = ["plan", "draft", "--policy", "claude", "--feature", FEATURE, "--store", str(platform_store), "--spec",
            str(SPEC), "--end", BASELINE_END, "--window", BASELINE_WINDOW, "--out", str(out)]  # fmt: skip
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    no_key = CliRunner().invoke(main, args)
    assert no_key.exit_code == 4 and "ANTHROPIC_API_KEY" in no_key.output
    with ScriptedMessagesServer([template, submit]) as server:
        config = tmp_path / "driftscope.toml"
        config.write_text(f'[investigations]\nbase_url = "{server.url}"\nmodel = "claude-test"\n', encoding="utf-8")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")
        result = CliRunner().invoke(main, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    contract = parse_contract(out.read_text(encoding="utf-8"))
    assert contract.notes == ["drafted by the scripted model"]
    assert "sk-test-not-a-real-key" not in out.read_text()
