"""Shared pieces of the driftscope dashboards: datasource, template variables, panel builders.

Every dashboard reads one Prometheus datasource (provisioned with ``DATASOURCE_UID``) that
scrapes driftscope's ``/metrics``; the scrape config attaches an ``environment`` label to the
target, which is what the ``environment`` variable selects. Panel ids and query refIds are
assigned here, so the dashboard modules only say what to show.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, SortOrder, TooltipDisplayMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    GridPos,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from dashboards import metrics

DATASOURCE_UID = "driftscope-prometheus"
"""uid of the provisioned Prometheus datasource (dashboards/provisioning/datasources.yaml)."""
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
ENV = 'environment=~"$environment"'
"""Label matcher every query carries, so one Grafana can show several deployments."""
SERVICE = 'service=~"$service"'
"""Label matcher for panels about the telemetry of the selected services."""
GRID_COLUMNS = 24
"""Width of Grafana's dashboard grid."""

Panel = timeseries.Panel | stat.Panel


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and the legend of its series (Grafana ``{{label}}`` syntax)."""

    expr: str
    legend: str = ""


def _targets(queries: Sequence[Query]) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    return [
        prometheus.Dataquery().expr(q.expr).legend_format(q.legend or "__auto").ref_id(ref).datasource(DATASOURCE)
        for q, ref in zip(queries, string.ascii_uppercase, strict=False)
    ]


def graph(title: str, description: str, unit: str, *queries: Query, width: int = 12) -> timeseries.Panel:
    """A time-series panel over ``queries``, ``unit`` in Grafana's unit ids (``s``, ``reqps``, ``percentunit``)."""
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
    legend = (
        common_builders.VizLegendOptions()
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    tooltip = common_builders.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)
    panel = panel.legend(legend).tooltip(tooltip)
    return panel.targets(_targets(queries)).span(width).height(8).fill_opacity(10)


def band(title: str, description: str, unit: str, value: Query, *, lower: Query, upper: Query) -> timeseries.Panel:
    """A time-series panel of ``value`` with its baseline ``lower`` and ``upper`` bounds as dashed lines."""
    dashed = [
        DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
        DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]
    return (
        graph(title, description, unit, value, lower, upper)
        .override_by_query("B", dashed)
        .override_by_query("C", dashed)
    )


def single(title: str, description: str, unit: str, query: Query, width: int = 6) -> stat.Panel:
    """A stat panel showing the newest value of ``query``."""
    panel = stat.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
    newest = common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    return panel.reduce_options(newest).targets(_targets([query])).span(width).height(4)


def environment_variable() -> dashboard.QueryVariable:
    """``$environment``: the ``environment`` label the scrape config puts on driftscope's target."""
    return (
        dashboard.QueryVariable("environment")
        .label("Environment")
        .datasource(DATASOURCE)
        .query(f"label_values({metrics.JOB_RUNS}, environment)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def service_variable() -> dashboard.QueryVariable:
    """``$service``: the services driftscope has findings or drift scores for."""
    return (
        dashboard.QueryVariable("service")
        .label("Service")
        .datasource(DATASOURCE)
        .query(f"label_values({metrics.DRIFT_SCORE}{{{ENV}}}, service)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """An empty dashboard with driftscope's tags, time range, refresh and both template variables."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["driftscope"])
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("utc")
        .with_variable(environment_variable())
        .with_variable(service_variable())
    )


def add_sections(dash: dashboard.Dashboard, sections: Sequence[tuple[str, Sequence[Panel]]]) -> dashboard.Dashboard:
    """Lay ``sections`` out as rows of panels, left to right, wrapping at the grid's 24 columns; ids 1, 2, ..."""
    panel_id, y = 0, 0
    for title, panels in sections:
        panel_id += 1
        dash = dash.with_row(dashboard.Row(title).id(panel_id).grid_pos(GridPos(h=1, w=GRID_COLUMNS, x=0, y=y)))
        y += 1
        x, line_height = 0, 0
        for panel in panels:
            size = panel.build().grid_pos or GridPos()
            if x + size.w > GRID_COLUMNS:
                x, y, line_height = 0, y + line_height, 0
            panel_id += 1
            dash = dash.with_panel(panel.id(panel_id).grid_pos(GridPos(h=size.h, w=size.w, x=x, y=y)))
            x += size.w
            line_height = max(line_height, size.h)
        y += line_height
    return dash
