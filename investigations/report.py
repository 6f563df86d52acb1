"""The structured investigation report: its documented JSON schema and renderings.

``Report.model_json_schema()`` is the contract (``driftscope investigate --format json``
prints instances of it; the Claude policy fills it through its ``submit_report`` tool).
Every evidence claim carries the tool call that reproduces it (``tool`` + ``args``) and
the number it asserts (``path`` into the tool result's ``data``, ``value``); the
controller re-runs the call and sets ``verified``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from investigations.tools import WHAT_IF, ToolResult
from simulator.patches import Patch


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCall(_Model):
    """A tool call that can be re-run on the snapshot."""

    tool: str = Field(description="tool name, e.g. compare_windows")
    args: dict[str, Any] = Field(default_factory=dict, description="the tool's arguments")


class Claim(_Model):
    """One piece of evidence: a statement, the call that reproduces it and the number it asserts."""

    text: str = Field(description="the claim in one sentence, e.g. 'postgres UPDATE stock self time 2.1 -> 8.4 ms'")
    call: ToolCall
    path: str = Field(
        "", description="dot path into the tool result's data, e.g. 'rows.0.self_ms_after'; empty: no number"
    )
    value: float | None = Field(None, description="the number the claim asserts at ``path``")
    verified: bool | None = Field(None, description="set by the controller after re-running ``call``")
    observed: float | None = Field(None, description="set by the controller: the value the re-run returned")


class Candidate(_Model):
    """A root-cause candidate."""

    service: str
    operation: str | None = None
    mechanism: str = Field(description="e.g. 'latency regression', 'dependency slowdown', 'error burst'")
    confidence: float = Field(ge=0.0, le=1.0)
    claims: list[int] = Field(default_factory=list, description="indices into ``claims`` supporting it")


class Report(_Model):
    """An investigation's findings."""

    summary: str
    candidates: list[Candidate] = Field(default_factory=list, description="ranked, most likely first")
    claims: list[Claim] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list, description="recommended actions")
    patches: list[Patch] = Field(
        default_factory=list, description="proposed remediation patches, best first (see simulator.patches)"
    )
    open_questions: list[str] = Field(default_factory=list)
    twin_trials: list[str] = Field(
        default_factory=list, description="set by the controller: patches tried on the digital twin and the verdicts"
    )
    disagreements: list[str] = Field(default_factory=list, description="where perspectives or checks disagree")
    status: Literal["complete", "partial"] = "complete"
    established: list[str] = Field(default_factory=list, description="partial reports: what was established")
    not_established: list[str] = Field(default_factory=list, description="partial reports: what was not")


def report_schema() -> dict[str, Any]:
    """The JSON schema of ``Report`` (what the model's ``submit_report`` tool takes)."""
    return Report.model_json_schema()


def partial_report(reason: str, claims: list[Claim], candidates: list[Candidate]) -> Report:
    """A report for a run stopped by its budget or an error: what was and was not established."""
    return Report(
        summary=f"Investigation stopped before completion: {reason}.",
        candidates=candidates,
        claims=claims,
        status="partial",
        established=[c.text for c in claims],
        not_established=["a ranked root cause reconciled across all checks"] if not candidates else
        ["checks not run before the stop"],
    )  # fmt: skip


def twin_trials(results: list[ToolResult]) -> list[str]:
    """One line per patch the policy tried on the digital twin (``what_if``): the patch, the verdict, why."""
    out = []
    for r in results:
        if r.tool != WHAT_IF:
            continue
        patch = r.data.get("describe") or str(r.args.get("patch", {}))[:200]
        if r.error is not None:
            out.append(f"{patch}: not judged ({r.error[:200]})")
        else:
            reasons = "; ".join(str(x) for x in r.data.get("reasons", [])[:3])
            out.append(f"{patch}: {r.data.get('verdict')}" + (f" ({reasons})" if reasons else ""))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, title: str) -> str:
    """The report as Markdown (claims marked verified / unverified)."""
    out = [
        f"# {_cell(title)}",
        "",
        f"**Status:** {report.status}",
        "",
        _cell(report.summary),
        "",
        "## Root-cause candidates",
        "",
    ]
    out += ["| rank | service | operation | mechanism | confidence |", "|---|---|---|---|---|"]
    for i, c in enumerate(report.candidates, 1):
        out.append(
            f"| {i} | {_cell(c.service)} | {_cell(c.operation or '-')} | {_cell(c.mechanism)} | {c.confidence:.2f} |"
        )
    out += ["", "## Evidence", ""]
    for i, cl in enumerate(report.claims):
        mark = {True: "verified", False: "UNVERIFIED", None: "not checked"}[cl.verified]
        out.append(f"{i}. [{mark}] {_cell(cl.text)} — `{cl.call.tool}({_cell(str(cl.call.args))})`")
    patches = [f"{p.title or p.describe()}: `{_cell(p.describe())}`" for p in report.patches]
    for head, items in (("Recommended actions", report.actions), ("Proposed patches", patches),
                        ("Tried on the digital twin", report.twin_trials),
                        ("Open questions", report.open_questions),
                        ("Disagreements", report.disagreements), ("Established", report.established),
                        ("Not established", report.not_established)):  # fmt: skip
        if items:
            out += ["", f"## {head}", ""] + [f"- {_cell(x)}" for x in items]
    return "\n".join(out) + "\n"
