"""The Prometheus metric names the dashboards and alert rules query, in one place.

Only names: dashboards/ must not import the packages that define the metrics (layer rule),
so a rename there shows up here as a panel without data in the dashboard tests.

``EXPORTED`` are on ``/metrics`` today. ``PENDING`` are proposed names, not yet exported;
their panels ship anyway (the tests check that a panel without data only ever queries a
pending metric that is absent from ``/metrics``, so a panel starts being checked the moment
its metric appears).
"""

from __future__ import annotations

from typing import Final

# Ingest (collector/metrics.py).
INGEST_RECEIVED: Final = "driftscope_ingest_received_items_total"
"""Counter {signal}: spans, data points or log records received."""
INGEST_ACCEPTED: Final = "driftscope_ingest_accepted_items_total"
"""Counter {signal}: items accepted (queued for the writer)."""
INGEST_REJECTED: Final = "driftscope_ingest_rejected_items_total"
"""Counter {signal}: items rejected inside an otherwise accepted request (partial success)."""
INGEST_REFUSED: Final = "driftscope_ingest_refused_requests_total"
"""Counter {signal, reason}: whole requests refused (queue_full, malformed, too_large, unsupported, error)."""
INGEST_REQUEST_SECONDS: Final = "driftscope_ingest_request_duration_seconds"
"""Histogram {transport, signal}: request handling time in seconds."""
INGEST_WRITE_BATCH_SECONDS: Final = "driftscope_ingest_write_batch_seconds"
"""Histogram: one group commit, in seconds."""
INGEST_WRITTEN_ROWS: Final = "driftscope_ingest_written_rows_total"
"""Counter: rows committed to the store."""
INGEST_QUEUE_ROWS: Final = "driftscope_ingest_queue_rows"
"""Gauge: rows decoded but not yet committed."""
INGEST_QUEUE_BYTES: Final = "driftscope_ingest_queue_bytes"
"""Gauge: Arrow bytes decoded but not yet committed."""

# Scheduled jobs (controller/jobs.py).
JOB_DURATION_SECONDS: Final = "driftscope_job_duration_seconds"
"""Histogram {job}: wall time of one run, in seconds."""
JOB_LAST_SUCCESS: Final = "driftscope_job_last_success_timestamp_seconds"
"""Gauge {job}: Unix time (s) of the last successful run."""
JOB_FAILURES: Final = "driftscope_job_failures_total"
"""Counter {job}: runs that raised."""
JOB_RUNS: Final = "driftscope_job_runs_total"
"""Counter {job, outcome}: runs by outcome (ok, failed, skipped)."""

# Findings (controller/telemetry.py, read from the store at scrape time).
FINDINGS_OPEN: Final = "driftscope_findings_open"
"""Gauge {severity, detector, service}: open or acknowledged findings."""
DRIFT_SCORE: Final = "driftscope_drift_score"
"""Gauge {service, operation, kind, detector}: score in [0, 1] of the strongest open findings."""

# Proposed: not exported yet (see the dashboards section of the README).
INGEST_QUEUE_ROWS_MAX: Final = "driftscope_ingest_queue_rows_max"
"""Gauge: configured ``ingest.queue_rows_max`` (rows), so rules compute fullness as a ratio."""
SIGNAL_VALUE: Final = "driftscope_signal_value"
"""Gauge {service, operation, kind}: newest rollup minute of a RED signal (kind: rate per second,
error_ratio in [0, 1], latency_p99 in seconds)."""
SIGNAL_BASELINE: Final = "driftscope_signal_baseline"
"""Gauge {service, operation, kind, bound}: the robust baseline of that signal (bound: lower, median, upper)."""
SERVICE_LAST_DEPLOY: Final = "driftscope_service_last_deploy_timestamp_seconds"
"""Gauge {service, version}: Unix time (s) of the newest deploy marker analysis found for a service."""
DISPATCH_DECISIONS: Final = "driftscope_investigation_decisions_total"
"""Counter {source, action, reason}: dispatch decisions (source: finding, alert, manual; action: dispatch,
skip; reason: ok, cooldown, concurrency, budget, below_min_severity, ...). Defined in controller/dispatch.py,
on ``/metrics`` once the dispatcher is wired into ``serve``."""
INVESTIGATIONS_RUNNING: Final = "driftscope_investigations_running"
"""Gauge: investigations running now (controller/dispatch.py, as above)."""
INVESTIGATIONS: Final = "driftscope_investigations_total"
"""Counter {policy, outcome}: finished investigations (policy: playbook, claude, claude-perspectives, replay; outcome:
completed, failed, budget_exhausted)."""
INVESTIGATION_DURATION_SECONDS: Final = "driftscope_investigation_duration_seconds"
"""Histogram {policy}: wall time of one investigation, in seconds."""
INVESTIGATION_CLAIMS: Final = "driftscope_investigation_claims_total"
"""Counter {verified}: report claims re-run by the controller (verified: true, false)."""
INVESTIGATION_TOKENS: Final = "driftscope_investigation_tokens_total"
"""Counter {policy}: model tokens (input plus output)."""
INVESTIGATION_COST: Final = "driftscope_investigation_cost_usd_total"
"""Counter {policy}: model cost in US dollars."""

EXPORTED: Final = frozenset(
    {
        INGEST_RECEIVED,
        INGEST_ACCEPTED,
        INGEST_REJECTED,
        INGEST_REFUSED,
        INGEST_REQUEST_SECONDS,
        INGEST_WRITE_BATCH_SECONDS,
        INGEST_WRITTEN_ROWS,
        INGEST_QUEUE_ROWS,
        INGEST_QUEUE_BYTES,
        JOB_DURATION_SECONDS,
        JOB_LAST_SUCCESS,
        JOB_FAILURES,
        JOB_RUNS,
        FINDINGS_OPEN,
        DRIFT_SCORE,
    }
)
"""Names on ``/metrics`` today (counters with their ``_total``, histograms by base name)."""
PENDING: Final = frozenset(
    {
        INGEST_QUEUE_ROWS_MAX,
        SIGNAL_VALUE,
        SIGNAL_BASELINE,
        SERVICE_LAST_DEPLOY,
        DISPATCH_DECISIONS,
        INVESTIGATIONS_RUNNING,
        INVESTIGATIONS,
        INVESTIGATION_DURATION_SECONDS,
        INVESTIGATION_CLAIMS,
        INVESTIGATION_TOKENS,
        INVESTIGATION_COST,
    }
)
"""Proposed names a panel may query before driftscope exports them."""
EVENT_DRIVEN: Final = frozenset(
    {
        INGEST_REFUSED,
        INGEST_REJECTED,
        JOB_FAILURES,
        DISPATCH_DECISIONS,
        INVESTIGATIONS,
        INVESTIGATION_DURATION_SECONDS,
        INVESTIGATION_CLAIMS,
        INVESTIGATION_TOKENS,
        INVESTIGATION_COST,
    }
)
"""Labelled counters whose series appear only with their first event (a refusal, a failure, a decision):
their panels show "0" (``no_value``) until then."""
