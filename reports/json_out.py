"""The JSON form of a report: a documented, versioned schema for machines.

Top level (``schema_version`` 1)::

    schema_version   int      1; bumped on incompatible change
    id               str      "drift-report-2026-03-09T0200Z"
    created_at       str      ISO-8601 UTC, wall clock of generation
    window           {start, end: ISO-8601 UTC; start_ns, end_ns: int ns since epoch; hours: float}
    headline         str      the one-line summary
    quiet            bool     true when there are no findings
    n_signals        int      distinct series watched in the window
    by_severity      {critical, warning, info: int}
    findings         [finding]  most severe first, then by score
    plots            [{label, kind, service, operation, metric, attributes, unit, finding_ids,
                       change_points_ns, points, baseline_method}]   (the series is in the HTML)
    plots_omitted    int      affected signals beyond the plot cap
    deploys          [{service, version, previous_version, time_ns, time}]
    investigations_available  bool

finding: ``id, fingerprint, detector, category ("performance" | "invariant" |
"log_template"), kind, service, operation, metric, attributes, severity, status, score,
effect, effect_text, before, after, p_value, q_value, change_ns, change_time (ISO or
null), window_start_ns, window_end_ns, first_seen_ns, last_seen_ns, runs, evidence (the
detector's object, as stored), counterexamples {trace_ids, lines, sql}, investigations
[{id, finding_id, href, status, title}]``. Values are in the signal's unit (latency ns,
error ratio 0..1, rates per second).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson

from reports.model import SCHEMA_VERSION, FindingView, ReportModel, SignalPlot
from store.timeconv import iso_from_ns


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return iso_from_ns(ns, "seconds")


def _finding(f: FindingView) -> dict[str, Any]:
    out = asdict(f)
    out["change_time"] = _iso(f.change_ns)
    return out


def _plot(p: SignalPlot) -> dict[str, Any]:
    return {
        "label": p.label, "kind": p.kind, "service": p.service, "operation": p.operation, "metric": p.metric,
        "attributes": p.attributes, "unit": p.unit, "finding_ids": list(p.finding_ids),
        "change_points_ns": list(p.change_points_ns),
        "points": 0 if p.series is None else len(p.series.times_ns),
        "baseline_method": None if p.series is None else p.series.baseline_method,
    }  # fmt: skip


def report_dict(model: ReportModel) -> dict[str, Any]:
    """The report as plain JSON-ready data (schema in the module docstring)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "id": model.id,
        "created_at": _iso(model.created_at_ns),
        "window": {
            "start": _iso(model.window_start_ns),
            "end": _iso(model.window_end_ns),
            "start_ns": model.window_start_ns,
            "end_ns": model.window_end_ns,
            "hours": model.window_hours,
        },
        "headline": model.headline,
        "quiet": model.quiet,
        "n_signals": model.n_signals,
        "by_severity": dict(model.by_severity),
        "findings": [_finding(f) for f in model.findings],
        "plots": [_plot(p) for p in model.plots],
        "plots_omitted": model.plots_omitted,
        "deploys": [{**asdict(d), "time": _iso(d.time_ns)} for d in model.deploys],
        "investigations_available": model.investigations_available,
    }


def render_json(model: ReportModel) -> str:
    """The JSON form as text (indented, keys in schema order, non-finite numbers as null)."""
    return orjson.dumps(report_dict(model), option=orjson.OPT_INDENT_2, default=str).decode() + "\n"
