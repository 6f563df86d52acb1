"""The investigations configuration section (``[investigations]`` in the TOML file).

One validated model; every key documented here once. ``controller.config.Settings`` is
expected to carry it as ``Settings.investigations``; until it does, callers fall back to
the defaults through ``investigations_config(settings)``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class InvestigationsConfig(BaseModel):
    """When to investigate, with which model, within which budgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["playbook", "claude"] = "playbook"
    """Default policy: the offline playbook needs no API key."""
    model: str = "claude-sonnet-4-5"
    """Anthropic model id for the Claude policy."""
    max_tokens: int = Field(4_096, gt=0)
    """Output tokens per model turn."""
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    """Sampling temperature; None leaves it to the API (sent as a body field when set)."""
    base_url: str = ""
    """Messages API base URL; empty uses the SDK default (tests point it at a local server)."""
    api_timeout_s: float = Field(60.0, gt=0)
    """SDK timeout of one Messages API request."""
    api_max_retries: int = Field(3, ge=0)
    """SDK retries (429, 5xx, 529 overloaded) per request."""
    price_input_per_mtok_usd: float = Field(3.0, ge=0)
    """Model price per million input tokens; cache writes cost 1.25x, cache reads 0.1x."""
    price_output_per_mtok_usd: float = Field(15.0, ge=0)
    perspectives: tuple[str, ...] = ()
    """Claude only: specialist passes (latency, errors, change, capacity) before a synthesis pass; empty: one pass."""
    max_steps: int = Field(30, gt=0)
    """Tool calls plus model turns per investigation."""
    max_tokens_total: int = Field(400_000, gt=0)
    """Input + output tokens per investigation."""
    max_cost_usd: float = Field(2.0, gt=0)
    """Money per investigation."""
    max_wall_s: float = Field(300.0, gt=0)
    """Wall time per investigation."""
    daily_tokens: int = Field(4_000_000, gt=0)
    """Tokens all investigations of one UTC day may spend."""
    daily_cost_usd: float = Field(20.0, gt=0)
    """Money all investigations of one UTC day may spend."""
    cooldown_s: float = Field(3_600.0, ge=0)
    """A fingerprint investigated less than this long ago is skipped."""
    concurrency: int = Field(2, gt=0)
    """Investigations running at the same time."""
    min_severity: Literal["info", "warning", "critical"] = "warning"
    """Findings below this severity never dispatch."""
    persistence_runs: int = Field(2, gt=0)
    """A finding dispatches once it was seen by this many detection runs (findings.runs)."""
    redact_keys: tuple[str, ...] = ("user.id", "user.email", "enduser.id", "http.client_ip", "client.address")
    """Attribute keys whose values never leave the process (replaced by "[redacted]")."""
    statement_timeout_s: float = Field(20.0, gt=0)
    """Longest SQL statement a tool may run on the snapshot."""
    row_cap: int = Field(200, gt=0)
    """Rows a tool returns at most (the rest is summarised)."""
    baseline_s: float = Field(7_200.0, gt=0)
    """Baseline length before the incident window, compared with it."""
    out_dir: str = "driftscope-investigations"
    """Where snapshots and rendered reports go (one directory per investigation)."""
    tolerance: float = Field(0.02, ge=0)
    """Relative tolerance when the controller re-runs a claim's tool call."""


def investigations_config(settings: Any) -> InvestigationsConfig:
    """``settings.investigations`` when the Settings carry it, else the defaults."""
    section = getattr(settings, "investigations", None)
    if isinstance(section, InvestigationsConfig):
        return section
    if isinstance(section, BaseModel):
        return InvestigationsConfig.model_validate(section.model_dump())
    return InvestigationsConfig()
