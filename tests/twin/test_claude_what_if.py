"""The Claude policy's budgeted ``what_if`` tool on the twin, against the local Messages API server (the real
anthropic SDK over 127.0.0.1), and the report's record of what was tried."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from test_whatif import FAULT_MIN, NOW_MIN, NS_PER_MIN, TIMING, live  # noqa: F401  (the fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "investigations"))
from invest_helpers import ScriptedMessagesServer, last_tool_results, message, tool_use

from investigations.claude import ClaudePolicy
from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.run import investigate
from investigations.snapshot import IncidentWindow
from store import Store
from twin.whatif import trial_runner

ROLLBACK = {"patch": {"version": 1, "title": "roll back the store",
                      "actions": [{"kind": "rollback", "service": "store"}]}}  # fmt: skip
DRAIN = {"patch": {"version": 1, "actions": [{"kind": "drain", "target": "store:Read"}]}}


def test_claude_tries_patches_on_the_twin_within_its_budget(live: tuple[Path, int], tmp_path: Path) -> None:  # noqa: F811
    path, start = live
    seen: dict[str, Any] = {}

    def step1(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["tools"] = [t["name"] for t in body["tools"]]
        return 200, message([tool_use("w1", "what_if", ROLLBACK), tool_use("w2", "what_if", DRAIN),
                             tool_use("w3", "what_if", ROLLBACK)], "tool_use")  # fmt: skip

    def step2(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen["results"] = last_tool_results(body)
        report = {"summary": "store 3.2.0 made reads slow; a rollback fixes it on the twin",
                  "candidates": [{"service": "store", "operation": "Read", "mechanism": "latency regression",
                                  "confidence": 0.8}], "patches": [ROLLBACK["patch"]]}  # fmt: skip
        return 200, message([tool_use("s1", "submit_report", report)], "tool_use")

    incident, now = start + FAULT_MIN * NS_PER_MIN, start + NOW_MIN * NS_PER_MIN
    with ScriptedMessagesServer([step1, step2]) as server:
        config = InvestigationsConfig(base_url=server.url, out_dir=str(tmp_path / "out"), model="claude-test")
        store = Store(path)
        try:
            runner = trial_runner(store.cursor, incident, now, tmp_path / "trials", timing=TIMING)
            policy = ClaudePolicy(config, api_key="sk-test-not-a-real-key")
            window = IncidentWindow.around(incident, now, 1_200)
            trigger = Trigger("manual", "store reads slow", fingerprint="fp")
            outcome = investigate(store, trigger, window, policy, config, what_if=runner)
        finally:
            store.close()
    assert server.errors == []
    assert "what_if" in seen["tools"]
    first, second, third = seen["results"]
    assert not first["is_error"] and '"verdict":"fixed"' in first["content"]
    assert not second["is_error"] and '"verdict"' in second["content"]
    assert third["is_error"] and "what_if budget spent" in third["content"]  # two trials per investigation
    trials = outcome.report.twin_trials
    assert len(trials) == 3
    assert trials[0].startswith("rollback store to previous: fixed")
    assert "not judged (what_if budget spent" in trials[2]
    assert "## Tried on the digital twin" in outcome.report_path.read_text(encoding="utf-8")
