"""The Investigations dashboard: what the controller dispatched, how investigations ended, what they cost."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metrics as m
from dashboards.common import ENV, Panel, Query, add_sections, graph, new_dashboard, single

UID = "driftscope-investigations"
RATE = "[$__rate_interval]"
RANGE = "[$__range]"


def _dispatch() -> list[Panel]:
    decisions = f"{m.DISPATCH_DECISIONS}{{{ENV}"
    return [
        single(
            "Dispatched",
            "Investigations dispatched in the time range.",
            "short",
            Query(f'sum(increase({decisions}, action="dispatch"}}{RANGE}))'),
        ).no_value("0"),
        single(
            "Skipped",
            "Triggers not dispatched in the time range (cooldown, concurrency, budget, severity, ...).",
            "short",
            Query(f'sum(increase({decisions}, action="skip"}}{RANGE}))'),
        ).no_value("0"),
        single(
            "Running",
            "Investigations running now.",
            "short",
            Query(f"sum({m.INVESTIGATIONS_RUNNING}{{{ENV}}})"),
        ).no_value("0"),
        graph(
            "Dispatch decisions",
            "Decisions per interval by source (finding, alert, manual), action and reason.",
            "short",
            Query(
                f"sum by (source, action, reason) (increase({decisions}}}{RATE}))", "{{source}} {{action}} {{reason}}"
            ),
            width=24,
        ),
    ]


def _outcomes() -> list[Panel]:
    return [
        graph(
            "Outcomes",
            "Finished investigations per interval by policy and outcome.",
            "short",
            Query(f"sum by (policy, outcome) (increase({m.INVESTIGATIONS}{{{ENV}}}{RATE}))", "{{policy}} {{outcome}}"),
        ),
        graph(
            "Duration p90",
            "90th percentile wall time of an investigation.",
            "s",
            Query(
                f"histogram_quantile(0.9, sum by (le, policy) "
                f"(rate({m.INVESTIGATION_DURATION_SECONDS}_bucket{{{ENV}}}{RATE})))",
                "{{policy}}",
            ),
        ),
        single(
            "Verified claims",
            "Share of report claims the controller reproduced, over the time range.",
            "percentunit",
            Query(
                f'sum(increase({m.INVESTIGATION_CLAIMS}{{{ENV}, verified="true"}}{RANGE})) '
                f"/ sum(increase({m.INVESTIGATION_CLAIMS}{{{ENV}}}{RANGE}))"
            ),
            width=8,
        ),
        graph(
            "Verified-claim ratio",
            "Share of claims verified per interval.",
            "percentunit",
            Query(
                f'sum(increase({m.INVESTIGATION_CLAIMS}{{{ENV}, verified="true"}}{RATE})) '
                f"/ sum(increase({m.INVESTIGATION_CLAIMS}{{{ENV}}}{RATE}))",
                "verified",
            ),
            width=16,
        ),
    ]


def _cost() -> list[Panel]:
    return [
        single(
            "Tokens",
            "Model tokens used in the time range.",
            "short",
            Query(f"sum(increase({m.INVESTIGATION_TOKENS}{{{ENV}}}{RANGE}))"),
        ).no_value("0"),
        single(
            "Cost",
            "Model cost in the time range.",
            "currencyUSD",
            Query(f"sum(increase({m.INVESTIGATION_COST}{{{ENV}}}{RANGE}))"),
        ).no_value("0"),
        graph(
            "Tokens / s",
            "Model tokens per second by policy.",
            "short",
            Query(
                f"sum by (policy) (rate({m.INVESTIGATION_TOKENS}{{{ENV}}}{RATE}))",
                "{{policy}}",
            ),
        ),
        graph(
            "Cost per interval",
            "Model cost per interval by policy.",
            "currencyUSD",
            Query(f"sum by (policy) (increase({m.INVESTIGATION_COST}{{{ENV}}}{RATE}))", "{{policy}}"),
        ),
    ]


def build() -> dashboard.Dashboard:
    """The Investigations dashboard: dispatch decisions, outcomes, verified-claim ratio, tokens and cost."""
    dash = new_dashboard(
        UID, "driftscope / Investigations", "Dispatch decisions, outcomes, verified claims, tokens and cost."
    )
    return add_sections(dash, [("Dispatch", _dispatch()), ("Outcomes", _outcomes()), ("Tokens and cost", _cost())])
