"""The Overview dashboard: is driftscope healthy, what has it found, what did investigating cost."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metrics as m
from dashboards.common import ENV, Panel, Query, add_sections, graph, new_dashboard, single

UID = "driftscope-overview"
RATE = "[$__rate_interval]"


def _ingest() -> list[Panel]:
    return [
        single(
            "Items accepted",
            "Spans, data points and log records accepted per second.",
            "cps",
            Query(f"sum(rate({m.INGEST_ACCEPTED}{{{ENV}}}{RATE}))"),
        ),
        single(
            "Requests refused",
            "Whole export requests refused per second (any reason).",
            "reqps",
            Query(f"sum(rate({m.INGEST_REFUSED}{{{ENV}}}{RATE}))"),
        ).no_value("0"),
        single(
            "Queue",
            "Rows decoded but not yet committed; receivers answer 429 when it is full.",
            "short",
            Query(f"max({m.INGEST_QUEUE_ROWS}{{{ENV}}})"),
        ),
        single(
            "Critical findings",
            "Open or acknowledged critical findings.",
            "short",
            Query(f'sum({m.FINDINGS_OPEN}{{{ENV}, severity="critical"}})'),
        ).no_value("0"),
        graph(
            "Ingest items / s",
            "Received, accepted and rejected items per second by signal.",
            "cps",
            Query(f"sum by (signal) (rate({m.INGEST_RECEIVED}{{{ENV}}}{RATE}))", "received {{signal}}"),
            Query(f"sum by (signal) (rate({m.INGEST_ACCEPTED}{{{ENV}}}{RATE}))", "accepted {{signal}}"),
            Query(f"sum by (signal) (rate({m.INGEST_REJECTED}{{{ENV}}}{RATE}))", "rejected {{signal}}"),
        ),
        graph(
            "Refused requests / s",
            "Requests refused as a whole, by signal and reason (queue_full means back-pressure: exporters retry).",
            "reqps",
            Query(f"sum by (signal, reason) (rate({m.INGEST_REFUSED}{{{ENV}}}{RATE}))", "{{signal}} {{reason}}"),
        ),
        graph(
            "Request latency p99",
            "99th percentile of export request handling time.",
            "s",
            Query(
                f"histogram_quantile(0.99, sum by (le, transport, signal) "
                f"(rate({m.INGEST_REQUEST_SECONDS}_bucket{{{ENV}}}{RATE})))",
                "{{transport}} {{signal}}",
            ),
        ),
        graph(
            "Writer",
            "Rows committed per second and p99 time of one group commit.",
            "short",
            Query(f"sum(rate({m.INGEST_WRITTEN_ROWS}{{{ENV}}}{RATE}))", "rows / s"),
            Query(
                f"histogram_quantile(0.99, sum by (le) (rate({m.INGEST_WRITE_BATCH_SECONDS}_bucket{{{ENV}}}{RATE})))",
                "commit p99 (s)",
            ),
        ),
        graph(
            "Queue fill",
            "Rows waiting for the writer against the configured maximum.",
            "short",
            Query(f"max({m.INGEST_QUEUE_ROWS}{{{ENV}}})", "rows queued"),
            Query(f"max({m.INGEST_QUEUE_ROWS_MAX}{{{ENV}}})", "rows max"),
        ),
        graph(
            "Queue bytes",
            "Arrow bytes decoded but not yet committed.",
            "bytes",
            Query(f"max({m.INGEST_QUEUE_BYTES}{{{ENV}}})", "bytes queued"),
        ),
    ]


def _findings() -> list[Panel]:
    return [
        graph(
            "Open findings by severity",
            "Open or acknowledged findings, by severity.",
            "short",
            Query(f"sum by (severity) ({m.FINDINGS_OPEN}{{{ENV}}})", "{{severity}}"),
        ),
        graph(
            "Open findings by detector",
            "Open or acknowledged findings, by detector.",
            "short",
            Query(f"sum by (detector) ({m.FINDINGS_OPEN}{{{ENV}}})", "{{detector}}"),
        ),
        graph(
            "Strongest drift scores",
            "Top 10 drift scores in [0, 1] among open findings.",
            "percentunit",
            Query(f"topk(10, {m.DRIFT_SCORE}{{{ENV}}})", "{{service}} {{operation}} {{kind}} ({{detector}})"),
            width=24,
        ),
    ]


def _jobs() -> list[Panel]:
    return [
        graph(
            "Job runs by outcome",
            "Scheduled job runs per interval, by outcome (ok, failed, skipped).",
            "short",
            Query(f"sum by (job, outcome) (increase({m.JOB_RUNS}{{{ENV}}}{RATE}))", "{{job}} {{outcome}}"),
        ),
        graph(
            "Job failures",
            "Failed runs per interval (0 for jobs that never failed).",
            "short",
            Query(
                f"sum by (job) (increase({m.JOB_FAILURES}{{{ENV}}}{RATE})) "
                f"or sum by (job) (0 * {m.JOB_LAST_SUCCESS}{{{ENV}}})",
                "{{job}}",
            ),
        ),
        graph(
            "Since last success",
            "Seconds since each job last succeeded (stale jobs climb).",
            "s",
            Query(f"time() - max by (job) ({m.JOB_LAST_SUCCESS}{{{ENV}}})", "{{job}}"),
        ),
        graph(
            "Job duration p90",
            "90th percentile wall time of a job run.",
            "s",
            Query(
                f"histogram_quantile(0.9, sum by (le, job) (rate({m.JOB_DURATION_SECONDS}_bucket{{{ENV}}}{RATE})))",
                "{{job}}",
            ),
        ),
    ]


def _investigations() -> list[Panel]:
    return [
        single(
            "Investigations",
            "Investigations finished in the time range.",
            "short",
            Query(f"sum(increase({m.INVESTIGATIONS}{{{ENV}}}[$__range]))"),
        ).no_value("0"),
        single(
            "Investigation cost",
            "Model cost of investigations in the time range.",
            "currencyUSD",
            Query(f"sum(increase({m.INVESTIGATION_COST}{{{ENV}}}[$__range]))"),
        ).no_value("0"),
        graph(
            "Investigations by outcome",
            "Finished investigations per interval by policy and outcome.",
            "short",
            Query(f"sum by (policy, outcome) (increase({m.INVESTIGATIONS}{{{ENV}}}{RATE}))", "{{policy}} {{outcome}}"),
        ),
    ]


def build() -> dashboard.Dashboard:
    """The Overview dashboard: ingest health, findings, job health, investigations and their cost."""
    dash = new_dashboard(UID, "driftscope / Overview", "Ingest health, findings, scheduled jobs and investigations.")
    return add_sections(
        dash,
        [
            ("Ingest", _ingest()),
            ("Findings", _findings()),
            ("Jobs", _jobs()),
            ("Investigations", _investigations()),
        ],
    )
