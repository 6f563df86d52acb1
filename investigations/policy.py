"""The Policy protocol: given the environment, choose tool calls and return a Report.

Policies never enforce budgets or verify claims (the environment and the controller do);
they may raise ``BudgetExhausted`` through ``Environment.call`` at any step.
"""

from __future__ import annotations

from typing import Protocol

from investigations.environment import Environment
from investigations.report import Report


class Policy(Protocol):
    name: str

    def run(self, env: Environment) -> Report: ...
