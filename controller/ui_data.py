"""What each UI page shows, read from the store: plain dicts for the templates (``controller.ui``).

Reads go through the store layer's named functions; the finding page's series and band come
from ``reports.series`` (``analysis.signals`` and the detectors' baseline), drawn by
``controller.ui_svg``. Times are ns since the epoch (UTC); the templates format them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import orjson

from controller.ui_svg import series_svg
from store import findings as store_findings
from store import invariants as store_invariants
from store import investigations as store_investigations
from store import rollups as store_rollups
from store.findings import SEVERITIES, STATUSES, FindingRecord

PAGE_ROWS = 200
"""Findings per page of the list."""
ZOOM_BEFORE_S = 3 * 3600
"""The finding page's plot starts this long before the change..."""
ZOOM_AFTER_S = 3600
"""... and ends at the window end, or this long after the change when that is later."""
PLOT_HISTORY_S = 86_400
"""History the plotted baseline band learns from (before the plotted range)."""
INVARIANT_PREFIXES = ("invariant_", "boundary", "spec_", "contract")
"""Detector names of invariant and spec drift findings."""


def when(ns: int | None) -> str:
    """``2026-03-09 02:00:00 UTC`` (empty for None)."""
    if ns is None:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def findings_page(con: duckdb.DuckDBPyConnection, filters: dict[str, str | None], offset: int) -> dict[str, Any]:
    """The findings list: one page of rows in the API's order, the total, the filter choices."""
    rows = store_findings.list_findings(con, **filters, limit=PAGE_ROWS, offset=offset)
    total = store_findings.count_findings(con, **filters)
    choices = {**store_findings.facets(con), "severity": list(SEVERITIES), "status": list(STATUSES)}
    query = {k: v for k, v in filters.items() if v}
    return {
        "rows": [_row(f) for f in rows], "total": total, "offset": offset, "page_rows": PAGE_ROWS,
        "filters": filters, "choices": choices, "query": query,
    }  # fmt: skip


def _row(f: FindingRecord) -> dict[str, Any]:
    return {
        "id": f.id, "severity": f.severity, "status": f.status, "detector": f.detector, "kind": f.kind,
        "entity": ":".join(p for p in (f.service, f.operation or f.metric) if p), "effect_text": f.effect_text,
        "change": when(f.start_ns), "q_value": f.q_value, "runs": f.runs,
    }  # fmt: skip


def finding_page(con: duckdb.DuckDBPyConnection, finding_id: str) -> dict[str, Any] | None:
    """One finding with its plot, deploys near the change, agreeing detectors, evidence and investigations."""
    from reports.series import PLOTTABLE, plot_series, unit_of
    from reports.units import effect_with_unit, metric_scale

    f = store_findings.finding(con, finding_id)
    if f is None:
        return None
    start = min(f.window_start_ns, f.start_ns - ZOOM_BEFORE_S * 10**9)
    end = max(f.window_end_ns, f.start_ns + ZOOM_AFTER_S * 10**9)
    deploys = store_rollups.deploys_between(con, start, end)
    metric_unit = store_rollups.metric_unit(con, f.service, f.metric) if f.metric else None
    scale, unit = unit_of(f.kind)
    if f.metric and f.kind.startswith(("gauge", "histogram")):
        scale, unit = metric_scale(metric_unit)
    svg = ""
    if f.kind in PLOTTABLE:
        key = (f.kind, f.service, f.operation, f.metric, f.attributes)
        series = plot_series(con, key, start, end, PLOT_HISTORY_S)
        if series is not None:
            svg = series_svg(
                series.times_ns, series.values * scale, series.lower * scale, series.upper * scale, unit=unit,
                change_points_ns=[f.change_ns] if f.change_ns is not None else [],
                deploys=[(f"{s} {v}", ns) for s, v, _prev, ns in deploys], title=f"{f.kind} of {f.service}",
            )  # fmt: skip
    evidence = dict(f.evidence)
    agreeing = evidence.pop("detectors", None)
    sql = evidence.pop("sql", None)
    invs = store_investigations.links_of(con, [f.id])
    return {
        "f": f, "row": _row(f), "svg": svg, "unit": unit,
        "effect": effect_with_unit(f.effect_text, f.kind, f.before, f.after, metric_unit),
        "before": _in_unit(f.before, scale, unit), "after": _in_unit(f.after, scale, unit),
        "deploys": [{"service": s, "version": v, "previous": p, "time": when(ns), "minutes": _minutes(ns, f)}
                    for s, v, p, ns in deploys],
        "agreeing": agreeing if isinstance(agreeing, dict) else {},
        "sql": str(sql) if sql else None, "evidence": evidence,
        "investigations": [{"id": i, "status": st, "title": t} for i, _fid, _path, st, t in invs],
        "times": {"window": f"{when(f.window_start_ns)} → {when(f.window_end_ns)}", "change": when(f.change_ns),
                  "first_seen": when(f.first_seen_ns), "last_seen": when(f.last_seen_ns),
                  "acknowledged": when(f.acknowledged_ns), "resolved": when(f.resolved_ns)},
    }  # fmt: skip


def _in_unit(value: float | None, scale: float, unit: str) -> str:
    if value is None:
        return "?"
    text = f"{value * scale:.4g}"
    return f"{text}{unit}" if unit in ("%", "/s") else f"{text} {unit}".rstrip()


def _minutes(deploy_ns: int, f: FindingRecord) -> str:
    """Where a deploy lies relative to the change: ``12 min before the change`` / ``3 min after``."""
    delta_min = round((deploy_ns - f.start_ns) / 60e9)
    if delta_min == 0:
        return "at the change"
    return f"{abs(delta_min)} min {'after' if delta_min > 0 else 'before'} the change"


def investigation_page(con: duckdb.DuckDBPyConnection, investigation_id: str) -> dict[str, Any] | None:
    """One investigation: its row, report (claims with verified marks, patches) and every step."""
    inv = store_investigations.investigation(con, investigation_id)
    if inv is None:
        return None
    report = inv.get("report") or {}
    steps = []
    for s in store_investigations.steps_of(con, investigation_id):
        payload = s["payload"] if isinstance(s["payload"], dict) else {"value": s["payload"]}
        args = payload.get("args", payload.get("arguments"))
        result = payload.get("result", payload.get("summary", payload.get("text")))
        steps.append({**s, "args": _short(args), "result": _short(result)})
    return {"inv": inv, "report": report, "steps": steps}


def _short(value: Any, chars: int = 600) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= chars else text[:chars] + f"… ({len(text):,d} chars)"


def invariants_page(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Learned and declared invariants, and the findings of invariant and spec checks."""
    drift = store_findings.findings_of_detectors(con, INVARIANT_PREFIXES, limit=PAGE_ROWS)
    return {"invariants": store_invariants.listing(con, 1000), "drift": [_row(f) for f in drift]}
