"""The scheduled jobs and the runner that isolates, records and counts every run.

A job is a function ``(cursor, now_ns) -> detail`` doing one thing through the library
(rollups, detection and the dispatch that continues it, the report, retention). The runner
adds what every job needs and none should write itself: no two runs of one job at once (a
second one is *skipped* and counted), different jobs take turns (they rewrite derived
tables; DuckDB would refuse conflicting writers), a failure is logged with its traceback and
counted and the next tick simply tries again, each run is persisted in table ``job_runs``
(so "last success" survives restarts), and Prometheus metrics (duration histogram, last
success time, failures, runs by outcome).

``now_ns`` comes from the injected clock; the jobs themselves work in data time (windows
end at the newest data), so a replay of the same store gives the same findings.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from analysis.plane import ClickHousePlane, LocalPlane, Plane
from controller.config import Settings
from controller.dispatch import Dispatcher, dispatch_findings
from detectors.detection_run import DetectionRun, run_detection
from investigations.policies import configured_policy
from store import jobs as store_jobs
from store.connection import Store
from store.otel_writer import PlaneIngest, RawSink
from store.raw import newest_span_ns

log = logging.getLogger("driftscope.jobs")

JobFn = Callable[[duckdb.DuckDBPyConnection, int], dict[str, Any]]
"""One job: (a cursor of its own, the clock's now in ns) -> a JSON-ready summary."""
Clock = Callable[[], int]
"""Returns now in ns since the epoch (``time.time_ns`` in production, injected in tests)."""
Outcome = Literal["ok", "failed", "skipped"]


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
        self._running: dict[str, int] = {}
        for name in self.jobs:  # every series exists from the start: a first failure is an increase
            self.metrics.failures.labels(name)
            for outcome in ("ok", "failed", "skipped"):
                self.metrics.runs.labels(name, outcome)
        for name, last in self.last_successes().items():
            if name in self.jobs:
                self.metrics.last_success.labels(name).set(last / 1e9)

    def run(self, name: str, *, wait: bool = False) -> JobOutcome:
        """Run job ``name`` now, unless a run of it is still going: then it is skipped, or with ``wait``
        (an operator's "run now") it runs once that run has ended.

        A run waits its turn behind other jobs; its recorded start is when it really began.
        """
        lock = self._locks[name]
        if not lock.acquire(blocking=wait):
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
        self._running[name] = started
        try:
            detail = self.jobs[name](con, started)
            outcome = JobOutcome(name, "ok", started, self.clock(), detail)
        except Exception as exc:
            outcome = JobOutcome(name, "failed", started, self.clock(), error=f"{type(exc).__name__}: {exc}")
            log.error("job failed: %s\n%s", outcome.error, traceback.format_exc(), extra={"job": name})
        finally:
            self._running.pop(name, None)
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
            store_jobs.record_run(
                con, job=o.job, started_ns=o.started_ns, finished_ns=o.finished_ns, outcome=o.outcome,
                detail=o.detail, error=o.error,
            )  # fmt: skip
        finally:
            con.close()

    def running(self) -> dict[str, int]:
        """Jobs running now -> start time (ns): a run is recorded in ``job_runs`` only once it ends."""
        return dict(self._running)

    def last_successes(self) -> dict[str, int]:
        """Per job, the finish time (ns) of its last successful run, from the persisted record."""
        con = self.store.cursor()
        try:
            return store_jobs.last_successes(con)
        finally:
            con.close()


def plane_for(settings: Settings) -> Plane:
    """The telemetry plane the configuration names (``plane.backend``): the one place the backend is chosen."""
    if settings.plane.backend == "clickhouse":
        return ClickHousePlane(settings.plane.target())
    return LocalPlane()


def ingest_sink_for(settings: Settings, store: Store) -> RawSink:
    """Where the receivers commit: the store, or (``plane.clickhouse.ingest``) the exporter's tables for
    spans, logs and metric points."""
    if settings.plane.backend == "clickhouse" and settings.plane.clickhouse.ingest:
        return PlaneIngest(settings.plane.target(), store)
    return store


def rollup_job_for(plane: Plane) -> JobFn:
    """Bring every rollup of ``plane`` up to date (a ClickHouse failure fails the run with its reason)."""

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        return {"plane": plane.name, **plane.rollup(con)}

    return run


RAW_MIRROR_S = 86_400.0
"""Raw rows a ClickHouse-plane detection copies locally: the invariant monitor's learning history
(``detectors.invariants.monitor.DEFAULT_HISTORY_S``), which covers the window under test."""


def detect(
    con: duckdb.DuckDBPyConnection, settings: Settings, detectors: tuple[str, ...] = (), plane: Plane | None = None
) -> DetectionRun | None:
    """One detection run with the configured window, history, resolve_after_s and invariant spec: what
    ``driftscope detect`` and the scheduled job both run (None before the first rollup). With a
    ClickHouse ``plane`` the run's window is mirrored into the store first."""
    cfg = settings.detection
    if plane is not None:
        plane.prepare(con, cfg.history_s + cfg.window_s, max(RAW_MIRROR_S, cfg.window_s))
    return run_detection(
        con, window_s=cfg.window_s, history_s=cfg.history_s, resolve_after_s=cfg.resolve_after_s, spec=cfg.spec,
        detectors=detectors,
    )  # fmt: skip


def detect_job(
    store: Store, settings: Settings, dispatcher: Dispatcher | None = None, plane: Plane | None = None
) -> JobFn:
    """Detection over the configured window ending at the newest data, findings written; then, as its
    continuation, dispatch: decide on every open finding (severity, persistence, cooldown, budgets) and
    run the investigations dispatched with the configured policy (every decision is recorded)."""

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        done = detect(con, settings, plane=plane)
        if done is None:
            return {"skipped": "no rollups yet"}
        if done.failures:
            log.warning("detectors failed: %s", "; ".join(done.failures))
        detail: dict[str, Any] = done.summary()
        if dispatcher is not None:
            out_dir = str(Path(settings.reports.out_dir) / "investigations")
            done_dispatch = dispatch_findings(store, dispatcher, configured_policy, now_ns, out_dir=out_dir)
            actions: dict[str, int] = {}
            for d in done_dispatch:
                actions[d.decision.action] = actions.get(d.decision.action, 0) + 1
            detail["decisions"] = actions
            detail["dispatch_errors"] = [d.error for d in done_dispatch if d.error]
        return detail

    return run


def report_job(settings: Settings) -> JobFn:
    """The nightly drift report over the configured window ending at the newest data."""

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        from reports import generate_report  # matplotlib loads when the first report is drawn, not at start

        cfg = settings.reports
        model, paths = generate_report(con, Path(cfg.out_dir), window_s=cfg.window_s, now_ns=now_ns)
        return {"report": model.id, "findings": len(model.findings), "paths": {k: str(v) for k, v in paths.items()}}

    return run


def retention_job(store: Store, settings: Settings) -> JobFn:
    """Delete raw rows older than their table's retention.

    "Now" is the earlier of the clock and the newest span: a store restored from a backup
    or replayed from the past is not wiped for being old, and a client sending timestamps
    from the future cannot push the cutoff forward.
    """

    def run(con: duckdb.DuckDBPyConnection, now_ns: int) -> dict[str, Any]:
        newest = newest_span_ns(con)
        cutoff_now = now_ns if newest is None else min(now_ns, newest)
        return {
            "now_ns": cutoff_now,
            "deleted": store.enforce_retention(settings.retention.seconds_by_table(), cutoff_now),
        }

    return run
