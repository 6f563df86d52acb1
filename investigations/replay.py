"""ReplayPolicy: re-run a recorded investigation's tool calls against its snapshot.

For regression tests and audits: the recorded steps (from ``investigation_steps`` or a
transcript file) are re-executed in order; any result that differs from the recording
is listed under ``disagreements``; the recorded report is returned (and then verified
by the controller as usual).
"""

from __future__ import annotations

from typing import Any

import orjson

from investigations.environment import Environment
from investigations.report import Report


class ReplayPolicy:
    """Replay ``steps`` (dicts with kind, name, payload) and return ``report``."""

    name = "replay"

    def __init__(self, steps: list[dict[str, Any]], report: dict[str, Any]) -> None:
        self.steps = [s for s in steps if s["kind"] == "tool"]
        self.report = Report.model_validate(report)

    @classmethod
    def from_transcript(cls, text: str | bytes) -> ReplayPolicy:
        """From a transcript JSON ``{"steps": [...], "report": {...}}`` (what ``transcript`` writes)."""
        data = orjson.loads(text)
        if not isinstance(data, dict) or "steps" not in data or "report" not in data:
            raise ValueError("transcript: expected a JSON object with 'steps' and 'report'")
        return cls(data["steps"], data["report"])

    def run(self, env: Environment) -> Report:
        diverged: list[str] = []
        for step in self.steps:
            call = step["payload"]["call"]
            result = env.call(call["tool"], call["args"])
            if orjson.dumps(result.to_dict(), default=str) != orjson.dumps(step["payload"], default=str):
                diverged.append(f"step {step.get('step', '?')} {call['tool']}: result differs from the recording")
        return self.report.model_copy(update={"disagreements": self.report.disagreements + diverged})


def transcript(steps: list[dict[str, Any]], report: dict[str, Any]) -> bytes:
    """A transcript file's bytes for ``ReplayPolicy.from_transcript``."""
    return orjson.dumps({"steps": steps, "report": report}, default=str, option=orjson.OPT_INDENT_2)
