"""When jobs run: APScheduler 3 triggers from the configuration, and a pure plan of them.

The live scheduler and :func:`plan` share :func:`triggers`, so the decisions tested with
an injected clock are the ones the service makes. Every job has ``max_instances=1`` (the
runner also skips overlaps), missed runs are coalesced into one, and a run later than
``misfire_grace_s`` is dropped rather than run stale.
"""

from __future__ import annotations

import datetime as dt

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from controller.config import JobsConfig
from controller.jobs import JobRunner

JOB_NAMES = ("rollup", "detect", "report", "retention")
"""Dispatch is no job of its own: it continues each detection run (``controller.jobs.detect_job``)."""


def triggers(config: JobsConfig, start: dt.datetime) -> dict[str, BaseTrigger]:
    """The trigger of every job; intervals count from ``start`` (an aware datetime)."""
    tz = config.timezone
    return {
        "rollup": IntervalTrigger(seconds=config.rollup_interval_s, start_date=start, timezone=tz),
        "detect": IntervalTrigger(seconds=config.detect_interval_s, start_date=start, timezone=tz),
        "report": CronTrigger.from_crontab(config.report_cron, timezone=tz),
        "retention": CronTrigger.from_crontab(config.retention_cron, timezone=tz),
    }


def plan(config: JobsConfig, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str]]:
    """Every (fire time, job) in (start, end], in time order then job order: what would run."""
    fires: list[tuple[dt.datetime, str]] = []
    for name, trigger in triggers(config, start).items():
        previous: dt.datetime | None = None
        now = start
        while True:
            at = trigger.get_next_fire_time(previous, now)
            if at is None or at > end:
                break
            if at > start:
                fires.append((at, name))
            previous, now = at, at + dt.timedelta(microseconds=1)
    rank = {name: i for i, name in enumerate(JOB_NAMES)}
    return sorted(fires, key=lambda f: (f[0], rank[f[1]]))


class Scheduler:
    """APScheduler's background scheduler running ``runner``'s jobs on their triggers."""

    def __init__(self, runner: JobRunner, config: JobsConfig, start: dt.datetime | None = None) -> None:
        self.runner = runner
        self._scheduler = BackgroundScheduler(
            timezone=config.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(config.misfire_grace_s)},
        )
        start = start or dt.datetime.now(dt.UTC)
        for name, trigger in triggers(config, start).items():
            if name in runner.jobs:
                self._scheduler.add_job(runner.run, trigger, args=[name], id=name, name=name)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling and wait for a running job to finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def next_runs(self) -> dict[str, dt.datetime | None]:
        """Next fire time per job (for the API and logs)."""
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}
