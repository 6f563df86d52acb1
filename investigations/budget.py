"""Budgets the controller enforces on an investigation: steps, tokens, money, wall time.

The policy never checks its own budget; the environment charges every tool call and
model turn here and stops the run with ``BudgetExhausted`` when a limit is reached, so a
misbehaving policy (or model) cannot overspend. Time comes from an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class BudgetExhausted(RuntimeError):
    """A limit was reached; ``what`` names it (steps, tokens, cost_usd, wall_s)."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"budget exhausted: {what} ({detail})")
        self.what = what


@dataclass(frozen=True)
class Limits:
    """Per-investigation limits."""

    steps: int = 30
    tokens: int = 400_000
    cost_usd: float = 2.0
    wall_s: float = 300.0


@dataclass
class Budget:
    """What an investigation has spent against its ``limits``."""

    limits: Limits
    clock: Callable[[], float] = time.monotonic
    steps: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    started_s: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started_s < 0:
            self.started_s = self.clock()

    @property
    def wall_s(self) -> float:
        return self.clock() - self.started_s

    def check(self) -> None:
        """Raise BudgetExhausted when any limit is reached."""
        lim = self.limits
        if self.steps >= lim.steps:
            raise BudgetExhausted("steps", f"{self.steps} of {lim.steps}")
        if self.tokens >= lim.tokens:
            raise BudgetExhausted("tokens", f"{self.tokens} of {lim.tokens}")
        if self.cost_usd >= lim.cost_usd:
            raise BudgetExhausted("cost_usd", f"{self.cost_usd:.4f} of {lim.cost_usd:.4f}")
        if self.wall_s >= lim.wall_s:
            raise BudgetExhausted("wall_s", f"{self.wall_s:.1f} of {lim.wall_s:.1f}")

    def charge_step(self) -> None:
        """Take one step (after checking that one is left)."""
        self.check()
        self.steps += 1

    def charge_usage(self, tokens: int, cost_usd: float) -> None:
        """Account a model turn's tokens and cost (checked at the next step)."""
        self.tokens += tokens
        self.cost_usd += cost_usd

    def to_dict(self) -> dict[str, float]:
        return {"steps": self.steps, "tokens": self.tokens, "cost_usd": round(self.cost_usd, 6),
                "wall_s": round(self.wall_s, 3)}  # fmt: skip
