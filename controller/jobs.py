"""The scheduled jobs and the runner that isolates, records and counts every run.

A job is a function ``(cursor, now_ns) -> detail`` doing one thing through the library
(rollups, detection, the report, retention). The runner adds what every job needs and none
should write itself: no two runs of one job at once (a second one is *skipped* and counted),
different jobs take turns (they rewrite derived tables; DuckDB would refuse conflicting writers),
a failure is logged with its traceback and counted and the next tick simply tries again,
each run is persisted in table ``job_runs`` (so "last success" survives restarts), and
Prometheus metrics (duration histogram, last success time, failures, runs by outcome).

``now_ns`` comes from the injected clock; the jobs themselves work in data time (windows
end at the newest data), so a replay of the same store gives the same findings.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import orjson
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from analysis import Window
from collector.store import Store, migrate
from controller.config import Settings
from detectors.findings import Finding

log = logging.getLogger("driftscope.jobs")

JobFn = Callable[[duckdb.DuckDBPyConnection, int], dict[str, Any]]
"""One job: (a cursor of its own, the clock's now in ns) -> a JSON-ready summary."""
Clock = Callable[[], int]
"""Returns now in ns since the epoch (``time.time_ns`` in production, injected in tests)."""
Outcome = Literal["ok", "failed", "skipped"]

_V1 = """
CREATE TABLE job_runs (
    job VARCHAR NOT NULL,
    started_at TIMESTAMP_NS NOT NULL,
    finished_at TIMESTAMP_NS NOT NULL,
    outcome VARCHAR NOT NULL,
    detail JSON,
    error VARCHAR
);
"""
MIGRATIONS = (_V1,)
VERSION_TABLE = "job_runs_schema_version"


@dataclass(frozen=True)
class JobOutcome:
    """What one run of one job did."""

    job: str
    outcome: Outcome
    started_ns: int
    finished_ns: int
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class _JobMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "driftscope_job_duration_seconds",
            "Wall time of a scheduled job run, in seconds.",
            ["job"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )
        self.last_success = Gauge(
            "driftscope_job_last_success_timestamp_seconds",
            "Unix time of the last successful run of a job.",
            ["job"],
            registry=registry,
        )
        self.failures = Counter(
            "driftscope_job_failures_total", "Job runs that raised an error.", ["job"], registry=registry
        )
        self.runs = Counter(
            "driftscope_job_runs_total",
            "Job runs by outcome (ok, failed, skipped).",
            ["job", "outcome"],
            registry=registry,
        )


class JobRunner:
    """Runs named jobs on their own cursors, one at a time per job, recording each run."""

    def __init__(
        self,
        store: Store,
        jobs: Mapping[str, JobFn],
        registry: CollectorRegistry,
        clock: Clock = time.time_ns,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.store = store
        self.tracer = tracer or trace.NoOpTracer()
        self.jobs = dict(jobs)
        self.clock = clock
        self.metrics = _JobMetrics(registry)
        self._locks = {name: threading.Lock() for name in self.jobs}
        self._serial = threading.Lock()  # jobs rewrite derived tables: one at a time, in turn
        migrate(store.cursor(), MIGRATIONS, VERSION_TABLE)
        for name in self.jobs:  # every series exists from the start: a first failure is an increase
            self.metrics.failures.labels(name)
            for outcome in ("ok", "failed", "skipped"):
                self.metrics.runs.labels(name, outcome)
        for name, last in self.last_successes().items():
            if name in self.jobs:
                self.metrics.last_success.labels(name).set(last / 1e9)

    def run(self, name: str) -> JobOutcome:
        """Run job ``name`` now, unless a run of it is still going (then it is skipped).

        A run waits its turn behind other jobs; its recorded start is when it really began.
        """
        lock = self._locks[name]
        if not lock.acquire(blocking=False):
            now = self.clock()
            outcome = JobOutcome(name, "skipped", now, now, {"reason": "previous run still going"})
            self.metrics.runs.labels(name, "skipped").inc()
            log.warning("job skipped: previous run still going", extra={"job": name})
            return outcome
        try:
            with self._serial, self.tracer.start_as_current_span(f"job {name}", attributes={"job": name}):
                return self._run_locked(name, self.clock())
        finally:
            lock.release()

    def _run_locked(self, name: str, started: int) -> JobOutcome:
        t0 = time.perf_counter()
        con = self.store.cursor()
        try:
            detail = self.jobs[name](con, started)
            outcome = JobOutcome(name, "ok", started, self.clock(), detail)
        except Exception as exc:
            outcome = JobOutcome(name, "failed", started, self.clock(), error=f"{type(exc).__name__}: {exc}")
            log.error("job failed: %s\n%s", outcome.error, traceback.format_exc(), extra={"job": name})
        finally:
            con.close()
        self.metrics.duration.labels(name).observe(time.perf_counter() - t0)
        self.metrics.runs.labels(name, outcome.outcome).inc()
        if outcome.outcome == "ok":
            self.metrics.last_success.labels(name).set(outcome.finished_ns / 1e9)
            log.info("job done", extra={"job": name, "detail": outcome.detail})
        else:
            self.metrics.failures.labels(name).inc()
        self._record(outcome)
        return outcome

    def _record(self, o: JobOutcome) -> None:
        con = self.store.cursor()
        try:
            con.execute(
                "INSERT INTO job_runs VALUES ($job, make_timestamp_ns($s), make_timestamp_ns($f), $outcome, $detail, "
                "$error)",
                {
                    "job": o.job, "s": o.started_ns, "f": o.finished_ns, "outcome": o.outcome,
                    "detail": orjson.dumps(o.detail, default=str).decode(), "error": o.error,
                },
            )  # fmt: skip
        finally:
            con.close()

    def last_successes(self) -> dict[str, int]:
        """Per job, the finish time (ns) of its last successful run, from the persisted record."""
        con = self.store.cursor()
        try:
            rows = con.execute(
                "SELECT job, epoch_ns(max(finished_at)) FROM job_runs WHERE outcome = 'ok' GROUP BY job"
            ).fetchall()
        finally:
            con.close()
        return {str(job): int(ns) for job, ns in rows}


def rollup_job(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
    """Bring every rollup up to date."""
    from analysis import rollup_all

    reports = rollup_all(con)
    return {"rows": sum(r.rows_written for r in reports), "late_rows": sum(r.late_rows for r in reports)}


def detect_job(settings: Settings) -> JobFn:
    """Detection over the configured window ending at the newest data; findings written."""

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        from analysis import data_window
        from detectors.findings import write_findings
        from detectors.run import DetectionConfig, detect

        cfg = settings.detection
        try:
            window = data_window(con, hours=cfg.window_s / 3600)
        except ValueError:
            return {"skipped": "no rollups yet"}
        failures: list[str] = []
        found = detect(con, window, DetectionConfig(history_s=int(cfg.history_s)), failures)
        found += _invariant_findings(con, window, cfg.spec)
        counts = write_findings(con, found, _naive_ns(window.end), cfg.resolve_after_s)
        if failures:
            log.warning("detectors failed: %s", "; ".join(failures))
        return {**counts, "findings": len(found), "detector_failures": failures}

    return run


def _naive_ns(t: dt.datetime) -> int:
    """ns since the epoch of a naive UTC datetime (a DuckDB TIMESTAMP), exact to the microsecond."""
    delta = t.replace(tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _invariant_findings(con: duckdb.DuckDBPyConnection, window: Window, spec: str) -> list[Finding]:
    """Invariant violations for the window, when the invariants capability is installed."""
    try:
        from detectors.invariants.monitor import detect_invariants  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return []
    return list(detect_invariants(con, window, Path(spec) if spec else None))


def report_job(settings: Settings) -> JobFn:
    """The nightly drift report over the configured window ending at the newest data."""

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        from reports import generate_report

        cfg = settings.reports
        model, paths = generate_report(con, Path(cfg.out_dir), window_s=cfg.window_s, now_ns=now_ns)
        return {"report": model.id, "findings": len(model.findings), "paths": {k: str(v) for k, v in paths.items()}}

    return run


def dispatch_job(store: Store, settings: Settings, dispatcher: Any) -> JobFn:
    """Decide on every open finding (severity, persistence, cooldown, budgets) and run the
    investigations dispatched, with the configured policy; every decision is recorded."""

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        from controller.cli_investigate import policy_for
        from controller.dispatch import dispatch_findings

        out_dir = str(Path(settings.reports.out_dir) / "investigations")
        decisions = dispatch_findings(store, dispatcher, lambda c: policy_for(c.policy, c), now_ns, out_dir=out_dir)
        actions: dict[str, int] = {}
        for d in decisions:
            actions[d.action] = actions.get(d.action, 0) + 1
        return {"decisions": actions}

    return run


def retention_job(store: Store, settings: Settings) -> JobFn:
    """Delete raw rows older than their table's retention.

    "Now" is the earlier of the clock and the newest span: a store restored from a backup
    or replayed from the past is not wiped for being old, and a client sending timestamps
    from the future cannot push the cutoff forward.
    """

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        row = con.execute("SELECT epoch_ns(max(start_time)) FROM spans").fetchone()
        newest = int(row[0]) if row and row[0] is not None else now_ns
        cutoff_now = min(now_ns, newest)
        return {
            "now_ns": cutoff_now,
            "deleted": store.enforce_retention(settings.retention.seconds_by_table(), cutoff_now),
        }

    return run
