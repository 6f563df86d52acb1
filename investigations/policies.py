"""The policy factory: a policy by name, the one way the CLI, the scheduler and the webhook API build one."""

from __future__ import annotations

import duckdb

from investigations.config import InvestigationsConfig
from investigations.playbook import PlaybookPolicy
from investigations.policy import Policy
from investigations.replay import ReplayPolicy
from store import investigations as store_investigations

POLICIES = ("playbook", "claude", "replay")


def policy_for(
    name: str,
    config: InvestigationsConfig,
    *,
    replay_of: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Policy:
    """The policy called ``name``: ``playbook``, ``claude`` (with the configured perspectives), or
    ``replay`` of the recorded investigation ``replay_of`` (read through ``con``). ValueError names
    what is missing or unknown."""
    if name == "playbook":
        return PlaybookPolicy()
    if name == "claude":
        from investigations.claude import ClaudePolicy  # the anthropic SDK loads only when Claude is asked for
        from investigations.perspectives import PerspectivesPolicy

        claude = ClaudePolicy(config)
        return PerspectivesPolicy(claude, config.perspectives) if config.perspectives else claude
    if name == "replay":
        if not replay_of or con is None:
            raise ValueError("--policy replay needs --replay INVESTIGATION_ID")
        report = store_investigations.recorded_report(con, replay_of)
        if report is None:
            raise ValueError(f"--replay: no finished investigation {replay_of!r}")
        return ReplayPolicy(store_investigations.steps_of(con, replay_of), report)
    raise ValueError(f"--policy: unknown policy {name!r} (choose from {', '.join(POLICIES)})")


def configured_policy(config: InvestigationsConfig) -> Policy:
    """The policy ``config.policy`` names (what the scheduler and the webhooks run)."""
    return policy_for(config.policy, config)
