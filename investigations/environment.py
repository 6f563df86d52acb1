"""The environment a policy acts in: the snapshot, the tool belt, the budget, the step log.

The controller side of the loop. A policy asks ``call`` for a tool and gets a
``ToolResult``; a model-backed policy reports each turn with ``record_turn``. Both charge
the budget (which raises ``BudgetExhausted``), and every step is appended to ``steps``
and handed to ``on_step`` (which persists it). ``observe`` is the only way a result
becomes text for a model: redacted, size-capped, and framed as data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from investigations.budget import Budget
from investigations.redact import Redactor
from investigations.snapshot import Snapshot
from investigations.tools import WHAT_IF, PatchArgs, ToolResult, run_tool
from simulator.patches import Patch

OBSERVATION_CHARS_MAX = 12_000
"""Characters of one tool result a model sees; longer results are cut with a note."""


@dataclass(frozen=True)
class Trigger:
    """Why the investigation runs: a finding, an alert, a manual request or a gym scenario."""

    kind: str
    title: str
    service: str | None = None
    operation: str | None = None
    finding_id: str | None = None
    fingerprint: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One persisted step: a tool call with its result, or a model turn with its usage."""

    index: int
    kind: str  # "tool" | "model" | "note"
    name: str
    payload: dict[str, Any]
    wall_s: float


@dataclass
class Environment:
    """Snapshot + tools + budget + redaction + the step log of one investigation."""

    snapshot: Snapshot
    budget: Budget
    redactor: Redactor
    trigger: Trigger
    on_step: Callable[[Step], None] | None = None
    clock: Callable[[], float] = time.monotonic
    steps: list[Step] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    what_if: Callable[[Patch], dict[str, Any]] | None = None
    """Judges a patch on a digital twin of the system (wired by the controller; None: the tool says so)."""
    what_if_max: int = 2
    """``what_if`` calls allowed (each simulates hours of the twin): a budget of its own, on top of the steps."""

    def _log(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        step = Step(len(self.steps), kind, name, payload, round(self.budget.wall_s, 4))
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def call(self, tool: str, args: dict[str, Any] | None = None) -> ToolResult:
        """Run a tool (one step of the budget) and log it."""
        self.budget.charge_step()
        if tool == WHAT_IF and self.what_if is not None:
            result = self._what_if(dict(args or {}))
        else:
            result = run_tool(self.snapshot, tool, dict(args or {}))
        self.results.append(result)
        self._log("tool", tool, result.to_dict())
        return result

    def _what_if(self, args: dict[str, Any]) -> ToolResult:
        tried = sum(1 for r in self.results if r.tool == WHAT_IF and r.error is None)
        if tried >= self.what_if_max:
            return ToolResult(WHAT_IF, args, error=f"what_if budget spent ({self.what_if_max} patches tried)")
        try:
            patch = PatchArgs.model_validate(args).patch
        except ValidationError as exc:
            return ToolResult(WHAT_IF, args, error=f"bad arguments: {exc.errors()[0]['msg']}")
        assert self.what_if is not None
        try:
            data = self.what_if(patch)
        except ValueError as exc:  # a patch naming what the twin lacks, or no incident the twin can reproduce
            return ToolResult(WHAT_IF, args, error=str(exc)[:500])
        return ToolResult(WHAT_IF, args, data, f"on the twin: {patch.describe()} -> {data.get('verdict')}")

    def rerun(self, tool: str, args: dict[str, Any]) -> ToolResult:
        """Run a tool for verification: not charged, not logged as a policy step (a what-if is not re-simulated:
        its recorded result, seeded and deterministic, is the answer)."""
        if tool == WHAT_IF:
            done = [r for r in self.results if r.tool == WHAT_IF and r.args == args and r.error is None]
            return done[-1] if done else ToolResult(WHAT_IF, args, error="no such what_if in this investigation")
        return run_tool(self.snapshot, tool, dict(args))

    def record_turn(self, payload: dict[str, Any], tokens: int, cost_usd: float) -> None:
        """Log a model turn and charge its usage and one step."""
        self.budget.charge_step()
        self.budget.charge_usage(tokens, cost_usd)
        self._log("model", "turn", payload)

    def note(self, name: str, payload: dict[str, Any]) -> None:
        self._log("note", name, payload)

    def observe(self, result: ToolResult) -> str:
        """The text a model sees for ``result``: redacted JSON, capped, marked as untrusted data."""
        text = orjson.dumps(self.redactor.value(result.to_dict()), default=str).decode()
        if len(text) > OBSERVATION_CHARS_MAX:
            text = text[:OBSERVATION_CHARS_MAX] + f"... [cut: {len(text)} characters in all; narrow the call]"
        return text

    def outgoing(self, value: Any) -> Any:
        """Any other value about to leave the process (trigger text, prompts), redacted."""
        return self.redactor.value(value)
