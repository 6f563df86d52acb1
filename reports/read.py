"""Reads of other stages' tables for a report (through the store layer) as the report's values.

Times are integer nanoseconds (UTC). Reports never write these tables.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import duckdb

from reports.model import Category, Counterexamples, DeployMarker, FindingView, InvestigationLink
from reports.units import effect_with_unit
from store import findings as store_findings
from store import investigations as store_investigations
from store import rollups as store_rollups

_EXAMPLES_MAX = 5
"""Counterexamples shown per finding (trace ids, lines): enough to check, short enough to read."""


def category(detector: str) -> Category:
    """Which section of the report a detector's findings belong to."""
    if detector.startswith("log_template"):
        return "log_template"
    if detector.startswith(("invariant_", "boundary")):
        return "invariant"
    return "performance"


def _texts(value: Any) -> list[str]:
    """Evidence values as display strings: lists flattened, dicts as ``k=v`` pairs."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [", ".join(f"{k}={v}" for k, v in value.items())]
    return [str(value)]


def counterexamples(evidence: dict[str, Any]) -> Counterexamples:
    """The checkable parts of a finding's evidence: trace ids, example lines, the SQL.

    Detectors name these keys freely; the ones recognised are ``trace_ids`` /
    ``example_trace_ids`` / ``trace_id``, ``counterexamples`` / ``examples`` / ``log_lines`` /
    ``lines`` / ``templates`` / ``template``, and ``sql``.
    """
    traces = [t for k in ("trace_ids", "example_trace_ids", "trace_id") for t in _texts(evidence.get(k))]
    lines = [
        t
        for k in ("counterexamples", "examples", "log_lines", "lines", "templates", "template")
        for t in _texts(evidence.get(k))
    ]
    sql = evidence.get("sql")
    return Counterexamples(
        trace_ids=tuple(dict.fromkeys(traces))[:_EXAMPLES_MAX],
        lines=tuple(dict.fromkeys(lines))[:_EXAMPLES_MAX],
        sql=str(sql) if sql else None,
    )


def effect_in_unit(
    con: duckdb.DuckDBPyConnection,
    effect_text: str,
    kind: str,
    *,
    service: str | None,
    metric: str | None,
    before: float | None,
    after: float | None,
    units: dict[tuple[str | None, str], str | None] | None = None,
) -> str:
    """A finding's effect text with a metric's numbers in the unit its points declare (``units`` caches
    the lookups by (service, metric) across findings); span kinds already carry theirs."""
    if not metric or not kind.startswith(("gauge", "histogram")):
        return effect_text
    cache = {} if units is None else units
    if (service, metric) not in cache:
        cache[(service, metric)] = store_rollups.metric_unit(con, service, metric)
    return effect_with_unit(effect_text, kind, before, after, cache[(service, metric)])


def read_findings(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[FindingView]:
    """Findings whose detection window overlaps [start_ns, end_ns), any status, most severe first; a
    metric's effect text in the unit its points declare (``reports.units``).

    Ranked by severity, then score (descending), then q-value, then id (deterministic).
    """
    records = store_findings.findings_in_window(con, start_ns, end_ns)
    links = investigation_links(con, [r.id for r in records])
    units: dict[tuple[str | None, str], str | None] = {}
    return [
        FindingView(
            **{f.name: getattr(r, f.name) for f in fields(r) if f.name != "effect_text"},
            effect_text=effect_in_unit(
                con,
                r.effect_text,
                r.kind,
                service=r.service,
                metric=r.metric,
                before=r.before,
                after=r.after,
                units=units,
            ),
            category=category(r.detector),
            counterexamples=counterexamples(r.evidence),
            investigations=tuple(links.get(r.id, ())),
        )
        for r in records
    ]


def investigation_links(con: duckdb.DuckDBPyConnection, finding_ids: list[str]) -> dict[str, list[InvestigationLink]]:
    """Investigation links per finding id: the absolute path of the investigation's report file, or None
    without one (a relative path stored by an older version is taken from the current directory)."""
    out: dict[str, list[InvestigationLink]] = {}
    for inv_id, fid, path, status, title in store_investigations.links_of(con, finding_ids):
        href = str(Path(path).resolve()) if path else None
        out.setdefault(fid, []).append(InvestigationLink(inv_id, fid, href, status, title))
    return out


def read_deploys(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[DeployMarker]:
    """New service versions first seen in [start_ns, end_ns), oldest first, each with the version it replaced."""
    return [DeployMarker(*row) for row in store_rollups.deploys_between(con, start_ns, end_ns)]
