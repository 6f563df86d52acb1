"""Planning results as text: an aligned table for terminals, JSON for machines, Markdown for pull requests.

``render_design`` shows a design check (accepted or refused, each violation with the
rule it breaks and the contract field); ``render_checklist`` the checklist's verdict
table, failing rows first within each section. JSON is the models' own dump.
"""

from __future__ import annotations

from typing import Literal

from detectors.planning.checklist import CheckRow, PlanVerdict
from detectors.planning.design import DesignResult

__all__ = ["Format", "render_checklist", "render_design"]

Format = Literal["table", "json", "markdown"]
_ORDER = {"fail": 0, "insufficient": 1, "marginal": 2, "not_checked": 3, "pass": 4}
_SECTIONS = ("design", "behaviour", "physics", "deployment")
_BADGE = {"pass": "PASS", "marginal": "MARGINAL", "fail": "FAIL", "insufficient": "INSUFFICIENT EVIDENCE"}


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]).rstrip() for r in rows]


def render_design(result: DesignResult, fmt: Format) -> str:
    """A design check as a table, JSON or Markdown."""
    if fmt == "json":
        return result.model_dump_json(indent=2) + "\n"
    verdict = "ACCEPTED" if result.accepted else f"REFUSED ({len(result.violations)} violation(s))"
    if fmt == "markdown":
        lines = [f"### driftscope plan check-design: **{verdict}**", "", f"change: {_md(result.change)}", ""]
        if result.violations:
            lines += ["| rule | kind | field | what |", "|---|---|---|---|"]
            lines += [f"| `{v.rule}` | {v.kind} | `{v.field}` | {_md(v.text)} |" for v in result.violations]
        kept = [r.rule for r in result.rules if r.violations == 0 and r.checked]
        lines += ["", f"Rules kept ({len(kept)}): " + ", ".join(f"`{r}`" for r in kept)]
        lines += [f"- note: {_md(n)}" for n in result.notes]
        return "\n".join(lines) + "\n"
    head = [f"design: {verdict}", f"change: {result.change}", ""]
    rows: list[tuple[str, ...]] = [("outcome", "rule", "kind", "detail")]
    for r in result.rules:
        broken = [v for v in result.violations if v.rule == r.rule]
        rows += [("REFUSED", v.rule, v.kind, f"{v.field}: {v.text}") for v in broken]
        if not broken:
            rows.append(("kept" if r.checked else "unchecked", r.rule, r.kind, ""))
    notes = [f"note: {n}" for n in result.notes]
    return "\n".join([*head, *_aligned(rows), *(["", *notes] if notes else [])]) + "\n"


def _sorted(rows: list[CheckRow]) -> list[CheckRow]:
    return sorted(rows, key=lambda r: (_SECTIONS.index(r.section), _ORDER[r.outcome]))


def render_checklist(verdict: PlanVerdict, fmt: Format) -> str:
    """The checklist's verdict as a table, JSON or Markdown (a pull-request comment)."""
    if fmt == "json":
        return verdict.model_dump_json(indent=2) + "\n"
    rows = _sorted(verdict.rows)
    if fmt == "markdown":
        lines = [f"### driftscope plan check: **{_BADGE[verdict.verdict]}**", "", _md(verdict.summary)]
        if verdict.change:
            lines += ["", f"change: {_md(verdict.change)}"]
        for section in _SECTIONS:
            mine = [r for r in rows if r.section == section]
            if not mine:
                continue
            lines += ["", f"**{section.capitalize()}**", "", "| outcome | check | result |", "|---|---|---|"]
            lines += [f"| {r.outcome} | {_md(r.name)} | {_md(r.text)} |" for r in mine]
        return "\n".join(lines) + "\n"
    head = [f"plan check: {verdict.verdict.upper()}  {verdict.summary}"]
    if verdict.change:
        head.append(f"change: {verdict.change}")
    table: list[tuple[str, ...]] = [("section", "outcome", "check", "result")]
    table += [(r.section, r.outcome, r.name, r.text) for r in rows]
    return "\n".join([*head, "", *_aligned(table)]) + "\n"
