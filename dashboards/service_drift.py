"""The Service drift dashboard: per-service RED against its baseline band, drift scores, change points."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metrics as m
from dashboards.common import DATASOURCE, ENV, SERVICE, Panel, Query, add_sections, band, graph, new_dashboard

UID = "driftscope-service-drift"
SEL = f"{ENV}, {SERVICE}"

_RED = (
    ("rate", "Request rate", "Requests per second per operation, newest rollup minute.", "reqps"),
    ("error_ratio", "Error ratio", "Share of requests with status ERROR, in [0, 1].", "percentunit"),
    ("latency_p99", "Latency p99", "99th percentile span duration, in seconds.", "s"),
)


def _red() -> list[Panel]:
    panels: list[Panel] = []
    for kind, title, description, unit in _RED:
        where = f'{SEL}, kind="{kind}"'
        panel = band(
            f"{title} ($service)",
            f"{description} Dashed lines: the robust baseline band (lower, upper).",
            unit,
            Query(f"{m.SIGNAL_VALUE}{{{where}}}", "{{operation}}"),
            lower=Query(f'{m.SIGNAL_BASELINE}{{{where}, bound="lower"}}', "{{operation}} lower"),
            upper=Query(f'{m.SIGNAL_BASELINE}{{{where}, bound="upper"}}', "{{operation}} upper"),
        )
        panels.append(panel.span(8).repeat("service").repeat_direction("v"))
    return panels


def _drift() -> list[Panel]:
    return [
        graph(
            "Drift scores",
            "Score in [0, 1] of each open finding's signal (the strongest detector per signal).",
            "percentunit",
            Query(f"{m.DRIFT_SCORE}{{{SEL}}}", "{{service}} {{operation}} {{kind}} ({{detector}})"),
        ),
        graph(
            "Open findings",
            "Open or acknowledged findings by service, detector and severity.",
            "short",
            Query(
                f"sum by (service, detector, severity) ({m.FINDINGS_OPEN}{{{SEL}}})",
                "{{service}} {{detector}} {{severity}}",
            ),
        ),
    ]


def _findings_opened(selector: str) -> str:
    """PromQL that is non-empty in the minute a (service, detector) gains open findings: the change points."""
    now = f"sum by (service, detector) ({m.FINDINGS_OPEN}{{{selector}}})"
    before = f"sum by (service, detector) ({m.FINDINGS_OPEN}{{{selector}}} offset 1m)"
    return f"({now} > {before}) or ({now} unless {before})"


def annotation_queries() -> list[dashboard.AnnotationQuery]:
    """Change points (findings opened) and deploys, drawn on every panel."""
    return [
        dashboard.AnnotationQuery()
        .name("Change points")
        .datasource(DATASOURCE)
        .expr(_findings_opened(SEL))
        .enable(True)
        .icon_color("red"),
        dashboard.AnnotationQuery()
        .name("Deploys")
        .datasource(DATASOURCE)
        .expr(f"changes({m.SERVICE_LAST_DEPLOY}{{{SEL}}}[2m]) > 0")
        .enable(True)
        .icon_color("blue"),
    ]


def build() -> dashboard.Dashboard:
    """The Service drift dashboard, repeated per selected service where a panel is about one service."""
    dash = new_dashboard(
        UID,
        "driftscope / Service drift",
        "Per-service RED signals against their baseline, drift scores, change points.",
    )
    for annotation in annotation_queries():
        dash = dash.annotation(annotation)
    return add_sections(dash, [("Drift", _drift()), ("RED against baseline", _red())])
