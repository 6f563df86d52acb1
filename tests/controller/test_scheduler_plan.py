"""The scheduler's decisions with an injected clock: what runs when, deterministically."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import ConfigError, JobsConfig, load_config
from controller.scheduler import plan

START = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)


def test_a_night_in_utc_runs_each_job_as_configured() -> None:
    fires = plan(JobsConfig(), START, START + dt.timedelta(hours=4))
    counts = Counter(name for _, name in fires)
    assert counts == {"rollup": 240, "detect": 48, "report": 1, "retention": 1}
    at = {name: t for t, name in fires if name in ("report", "retention")}
    assert at["report"] == dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    assert at["retention"] == dt.datetime(2026, 3, 2, 3, 30, tzinfo=dt.UTC)
    assert [t for t, _ in fires] == sorted(t for t, _ in fires)


def test_the_nightly_report_follows_the_configured_time_zone() -> None:
    fires = plan(JobsConfig(timezone="America/New_York"), START, START + dt.timedelta(days=1))
    (report,) = [t for t, name in fires if name == "report"]
    assert report.astimezone(dt.UTC) == dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)  # 02:00 EST


def test_same_config_and_clock_give_the_same_plan() -> None:
    cfg = JobsConfig(rollup_interval_s=7, detect_interval_s=31, report_cron="15 */6 * * *")
    end = START + dt.timedelta(hours=13)
    assert plan(cfg, START, end) == plan(cfg, START, end)


@settings(max_examples=30, deadline=None)
@given(
    rollup=st.integers(min_value=1, max_value=600),
    detect=st.integers(min_value=1, max_value=3600),
    hours=st.integers(min_value=1, max_value=48),
)
def test_interval_jobs_fire_once_per_interval(rollup: int, detect: int, hours: int) -> None:
    cfg = JobsConfig(rollup_interval_s=rollup, detect_interval_s=detect)
    fires = plan(cfg, START, START + dt.timedelta(hours=hours))
    counts = Counter(name for _, name in fires)
    assert counts["rollup"] == hours * 3600 // rollup
    assert counts["detect"] == hours * 3600 // detect and "dispatch" not in counts  # dispatch continues detection
    assert counts["report"] == sum(1 for d in range(3) if dt.timedelta(days=d, hours=2) <= dt.timedelta(hours=hours))


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DRIFTSCOPE_JOBS__REPORT_CRON": "every night"}, "jobs.report_cron"),
        ({"DRIFTSCOPE_JOBS__TIMEZONE": "Mars/Olympus"}, "jobs.timezone"),
        ({"DRIFTSCOPE_JOBS__DETECT_INTERVAL_S": "-5"}, "jobs.detect_interval_s"),
    ],
)
def test_bad_schedules_are_refused_naming_the_key(
    env: dict[str, str], names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        load_config()
