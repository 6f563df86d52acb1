"""Build the report model from the store: findings, ranking, headline, plots, deploys.

``build_report`` reads; it writes nothing. The headline and the ranking are arrangements of
what detectors already wrote (severity, score, effect text, change time); no statistic is
estimated here.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter

import duckdb

from reports.model import DeployMarker, FindingView, ReportModel, SignalPlot
from reports.read import read_deploys, read_findings
from reports.series import PLOTTABLE, plot_series, unit_of
from store import investigations as store_investigations
from store import rollups as store_rollups
from store.findings import SEVERITIES
from store.raw import data_end
from store.timeconv import datetime_from_ns

DAY_S = 86_400
PLOTS_MAX = 12
"""Affected signals plotted per report; the rest are counted and listed in the table."""
HISTORY_S = 7 * DAY_S
"""History before the window the plotted baseline learns from (the detectors' default)."""
DEPLOY_LOOKBACK_S = 3600
"""A deploy this long before a change (or up to 15 min after) is named in the headline."""
_DEPLOY_LOOKAHEAD_S = 900


def report_id(window_end_ns: int) -> str:
    """``drift-report-2026-03-09T0200Z``: the window end in UTC, to the minute."""
    return "drift-report-" + _utc(window_end_ns).strftime("%Y-%m-%dT%H%MZ")


def _utc(ns: int) -> dt.datetime:
    return datetime_from_ns(ns)


def _when(ns: int, end_ns: int) -> str:
    """``14:05 UTC`` within a day of the window end, else ``2026-03-08 14:05 UTC``."""
    fmt = "%H:%M UTC" if end_ns - ns < DAY_S * 1_000_000_000 else "%Y-%m-%d %H:%M UTC"
    return _utc(ns).strftime(fmt)


def _deploy_near(f: FindingView, deploys: list[DeployMarker]) -> DeployMarker | None:
    """The deploy shortly before (or just after) the finding's change: same service first, then the latest."""
    if f.change_ns is None:
        return None
    lo = f.change_ns - DEPLOY_LOOKBACK_S * 1_000_000_000
    hi = f.change_ns + _DEPLOY_LOOKAHEAD_S * 1_000_000_000
    near = [d for d in deploys if lo <= d.time_ns <= hi]
    same = [d for d in near if d.service == f.service]
    pick = same or near
    return max(pick, key=lambda d: d.time_ns) if pick else None


def deploy_relation(change_ns: int | None, deploy: DeployMarker, end_ns: int) -> str:
    """How a change relates to a deploy, honestly: ``after deploy payment 5.2.0 (03:00 UTC)`` when the
    change follows it, ``within 5 min of deploy payment 5.2.0 (03:00 UTC)`` when the change point (a
    minute-resolution estimate) lies a minute or more before it (within the minute: after)."""
    name = f"deploy {deploy.service} {deploy.version} ({_when(deploy.time_ns, end_ns)})"
    if change_ns is None or deploy.time_ns - change_ns < 60 * 1_000_000_000:
        return f"after {name}"
    minutes = math.ceil((deploy.time_ns - change_ns) / 60e9)
    return f"within {minutes} min of {name}"


def headline(
    findings: list[FindingView], deploys: list[DeployMarker], n_signals: int, window_s: float, end_ns: int
) -> str:
    """One line: what changed, how much, since when (and after which deploy); or that nothing did."""
    span = f"{window_s / 3600:g} h"
    if not findings:
        return f"No drift: 0 findings across {n_signals} signals in the last {span}."
    # "since when" needs a located change: prefer the best finding of the top severity whose
    # change point lies inside its window (window-vs-history tests report the window start).
    top = next(
        (f for f in findings if f.severity == findings[0].severity and (f.change_ns or 0) > f.window_start_ns),
        findings[0],
    )
    text = f"{top.entity} {top.effect_text}" if top.entity else top.effect_text
    if top.change_ns is not None:
        text += f" since {_when(top.change_ns, end_ns)}"
    deploy = _deploy_near(top, deploys)
    if deploy is not None:
        text += " " + deploy_relation(top.change_ns, deploy, end_ns)
    affected = len({f.signal_key for f in findings})
    counts = Counter(f.severity for f in findings)
    sev = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    plural = "s" if len(findings) != 1 else ""
    of = f"{affected} of {n_signals}" if n_signals >= affected else str(affected)  # no rollups: nothing to count
    return f"{text} — {len(findings)} finding{plural} on {of} signals ({sev}) in the last {span}."


def _plots(
    con: duckdb.DuckDBPyConnection,
    *,
    findings: list[FindingView],
    deploys: list[DeployMarker],
    start_ns: int,
    end_ns: int,
    history_s: float,
    plots_max: int,
) -> tuple[list[SignalPlot], int]:
    """One plot per affected performance signal in rank order, at most ``plots_max``; and how many were left out."""
    groups: dict[tuple[str, str | None, str | None, str | None, str | None], list[FindingView]] = {}
    for f in findings:  # already ranked: a group's position is its best finding's
        if f.category == "performance" and f.kind in PLOTTABLE:
            groups.setdefault(f.signal_key, []).append(f)
    plots: list[SignalPlot] = []
    for key, group in list(groups.items())[:plots_max]:
        kind, service, operation, metric, attributes = key
        scale, unit = unit_of(kind)
        other = companion_kind(kind)
        companion = plot_series(con, (other, *key[1:]), start_ns, end_ns, history_s) if other else None
        plots.append(
            SignalPlot(
                label=group[0].label, kind=kind, service=service, operation=operation, metric=metric,
                attributes=attributes, unit=unit, scale=scale, finding_ids=tuple(f.id for f in group),
                change_points_ns=tuple(sorted({f.change_ns for f in group if f.change_ns is not None})),
                deploys=tuple(deploys), series=plot_series(con, key, start_ns, end_ns, history_s),
                companion=companion, companion_kind=other or "",
            )
        )  # fmt: skip
    return plots, max(0, len(groups) - plots_max)


def companion_kind(kind: str) -> str | None:
    """The quantile plotted beside ``kind``: p99 beside a p50, p50 beside a p90/p95/p99; None for the rest."""
    family, _, quantile = kind.rpartition("_")
    if family not in ("latency", "histogram") or not quantile.startswith("p"):
        return None
    other = f"{family}_p99" if quantile == "p50" else f"{family}_p50"
    return other if other in PLOTTABLE else None


def build_report(
    con: duckdb.DuckDBPyConnection,
    window_end_ns: int | None = None,
    window_s: float = DAY_S,
    *,
    now_ns: int | None = None,
    history_s: float = HISTORY_S,
    plots_max: int = PLOTS_MAX,
) -> ReportModel:
    """The report of the ``window_s`` seconds ending at ``window_end_ns`` (data time, ns).

    ``window_end_ns`` None means the end of the data (``store.raw.data_end``, else ``now_ns``).
    ``now_ns`` stamps ``created_at`` (default: the wall clock, read here at the edge only).
    Plots (without their SVG; see ``reports.plots``) cover the ``plots_max`` most severe
    affected signals.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0 seconds, got {window_s}")
    if plots_max < 0:
        raise ValueError(f"plots_max must be >= 0, got {plots_max}")
    created = time.time_ns() if now_ns is None else now_ns
    end_ns = window_end_ns if window_end_ns is not None else (data_end(con) or created)
    start_ns = end_ns - int(window_s * 1e9)
    findings = read_findings(con, start_ns, end_ns)
    deploys = read_deploys(con, start_ns - int(history_s * 1e9), end_ns)
    in_window = [d for d in deploys if d.time_ns >= start_ns]
    n_signals = store_rollups.count_series(con, start_ns, end_ns)
    plots, omitted = _plots(
        con,
        findings=findings,
        deploys=deploys,
        start_ns=start_ns,
        end_ns=end_ns,
        history_s=history_s,
        plots_max=plots_max,
    )
    counts = Counter(f.severity for f in findings)
    return ReportModel(
        id=report_id(end_ns),
        created_at_ns=created,
        window_start_ns=start_ns,
        window_end_ns=end_ns,
        headline=headline(findings, deploys, n_signals, window_s, end_ns),
        quiet=not findings,
        n_signals=n_signals,
        findings=tuple(findings),
        by_severity={s: counts.get(s, 0) for s in SEVERITIES},
        plots=tuple(plots),
        plots_omitted=omitted,
        deploys=tuple(in_window),
        investigations_available=store_investigations.any_investigation(con),
    )
