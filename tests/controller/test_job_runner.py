"""The job runner on a real store: outcomes persisted, failures isolated and counted, overlaps skipped."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry

from controller.jobs import JobRunner
from store.connection import Store


class _Clock:
    """A settable clock (ns): the runner's decisions and records use it, never the wall clock."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def _count(con: duckdb.DuckDBPyConnection, _now: int) -> dict[str, Any]:
    return {"spans": con.execute("SELECT count(*) FROM spans").fetchone()[0]}  # type: ignore[index]


def test_outcomes_are_recorded_with_the_injected_clock_and_survive_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    calls = {"n": 0}

    def flaky(con: duckdb.DuckDBPyConnection, now: int) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk on fire")
        return {"now": now}

    clock = _Clock(1_000_000_000_000)
    registry = CollectorRegistry()
    runner = JobRunner(store, {"count": _count, "flaky": flaky}, registry, clock=clock)
    failed = runner.run("flaky")
    assert failed.outcome == "failed" and failed.error == "RuntimeError: disk on fire"
    clock.now_ns += 60_000_000_000
    ok = runner.run("flaky")
    assert ok.outcome == "ok" and ok.detail == {"now": clock.now_ns}
    assert runner.run("count").detail == {"spans": 0}
    assert registry.get_sample_value("driftscope_job_failures_total", {"job": "flaky"}) == 1.0
    assert registry.get_sample_value("driftscope_job_runs_total", {"job": "flaky", "outcome": "ok"}) == 1.0
    assert registry.get_sample_value("driftscope_job_last_success_timestamp_seconds", {"job": "flaky"}) == 1060.0
    assert registry.get_sample_value("driftscope_job_duration_seconds_count", {"job": "flaky"}) == 2.0

    # A new runner (a restarted service) knows the last successes from the store.
    again = JobRunner(store, {"flaky": flaky}, CollectorRegistry(), clock=clock)
    assert again.last_successes() == {"flaky": 1_060_000_000_000, "count": 1_060_000_000_000}
    rows = store.cursor().execute("SELECT job, outcome, error FROM job_runs ORDER BY started_at, job").fetchall()
    assert rows == [("flaky", "failed", "RuntimeError: disk on fire"), ("count", "ok", None), ("flaky", "ok", None)]
    store.close()


class _Blocking:
    """A job that signals ``entered`` and holds its run until ``release``; ``calls`` counts its runs."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def __call__(self, con: duckdb.DuckDBPyConnection, now: int) -> dict[str, Any]:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(timeout=30)
        return {"call": self.calls}


def test_a_run_that_overlaps_its_previous_run_is_skipped(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    slow = _Blocking()
    entered, release = slow.entered, slow.release

    registry = CollectorRegistry()
    runner = JobRunner(store, {"slow": slow}, registry, clock=_Clock(0))
    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(runner.run("slow").outcome))
    first.start()
    assert entered.wait(timeout=30)
    second = runner.run("slow")
    release.set()
    first.join(timeout=30)
    assert second.outcome == "skipped" and results == ["ok"]
    assert registry.get_sample_value("driftscope_job_runs_total", {"job": "slow", "outcome": "skipped"}) == 1.0
    store.close()


def test_run_now_waits_for_the_run_going_on_instead_of_skipping(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    slow = _Blocking()
    entered, release = slow.entered, slow.release

    runner = JobRunner(store, {"slow": slow}, CollectorRegistry(), clock=_Clock(0))
    first = threading.Thread(target=runner.run, args=("slow",))
    first.start()
    assert entered.wait(timeout=30)
    outcomes: list[Any] = []
    second = threading.Thread(target=lambda: outcomes.append(runner.run("slow", wait=True)))
    second.start()  # blocks on the first run's lock (a plain run would be skipped), then runs in full
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert [o.outcome for o in outcomes] == ["ok"] and outcomes[0].detail == {"call": 2} and slow.calls == 2
    store.close()


def test_a_run_in_progress_is_listed_with_its_start_before_it_is_recorded(tmp_path: Path) -> None:
    from store.jobs import job_summaries
    from store.timeconv import naive_from_ns

    store = Store(tmp_path / "s.duckdb")
    slow = _Blocking()
    entered, release = slow.entered, slow.release

    clock = _Clock(1_000_000_000_000)
    runner = JobRunner(store, {"slow": slow, "count": _count}, CollectorRegistry(), clock=clock)
    runner.run("count")
    first = threading.Thread(target=runner.run, args=("slow",))
    first.start()
    assert entered.wait(timeout=30)
    con = store.cursor()
    try:  # its first run is going: listed with no runs, and the finished job is not running
        jobs = {j["job"]: j for j in job_summaries(con, runner.running())}
        assert runner.running() == {"slow": 1_000_000_000_000}
        assert jobs["slow"]["running_since"] == naive_from_ns(1_000_000_000_000)
        assert jobs["slow"]["runs"] == 0 and jobs["slow"]["last_success"] is None
        assert jobs["count"]["running_since"] is None and jobs["count"]["runs"] == 1
        release.set()
        first.join(timeout=30)
        assert runner.running() == {}
        jobs = {j["job"]: j for j in job_summaries(con, runner.running())}
        assert jobs["slow"]["running_since"] is None and jobs["slow"]["last_outcome"] == "ok"
    finally:
        con.close()
        store.close()


def test_retention_counts_from_the_newest_data_not_a_later_wall_clock(tmp_path: Path) -> None:
    from controller.config import load_config
    from controller.jobs import retention_job
    from simulator.run import simulate
    from simulator.scenario import load_scenario
    from simulator.sinks import StoreSink

    store = Store(tmp_path / "s.duckdb")
    simulate(load_scenario("mini"), StoreSink(store), hours=3.0, history_days=0, seed=3)
    settings = load_config(None, retention={"spans_days": 1 / 24})  # keep one hour of spans
    wall = _Clock(4_000_000_000_000_000_000)  # a wall clock far after the simulated data
    runner = JobRunner(store, {"retention": retention_job(store, settings)}, CollectorRegistry(), clock=wall)
    outcome = runner.run("retention")
    assert outcome.outcome == "ok" and outcome.detail["deleted"]["spans"] > 0
    oldest, newest = (
        store.cursor().execute("SELECT epoch_ns(min(start_time)), epoch_ns(max(start_time)) FROM spans").fetchone()
    )  # type: ignore[misc]
    assert outcome.detail["now_ns"] == newest
    assert newest - 3_600_000_000_000 <= oldest
    store.close()


def test_cli_detect_writes_what_the_scheduled_job_writes(tmp_path: Path) -> None:
    """`driftscope detect` and the scheduled detect job are one function: same findings, invariants included."""
    from click.testing import CliRunner

    from analysis import rollup_all
    from controller.cli import main
    from controller.config import load_config
    from controller.jobs import detect_job
    from simulator.run import simulate
    from simulator.scenario import load_scenario
    from simulator.sinks import StoreSink

    first = tmp_path / "job.duckdb"
    store = Store(first)
    simulate(load_scenario("call-edge-added"), StoreSink(store), hours=3.5, history_days=0.125, seed=5)
    rollup_all(store.cursor())
    store.close()
    second = tmp_path / "cli.duckdb"
    second.write_bytes(first.read_bytes())

    settings = load_config(None, store=str(first), detection={"resolve_after_s": 600.0})
    store = Store(first)
    runner = JobRunner(store, {"detect": detect_job(store, settings)}, CollectorRegistry())
    assert runner.run("detect").outcome == "ok"
    job_rows = store.cursor().execute("SELECT id, detector, status, runs FROM findings ORDER BY id").fetchall()
    job_laws = store.cursor().execute("SELECT id, epoch_ns(learned_to) FROM invariants ORDER BY id").fetchall()
    store.close()

    config = tmp_path / "d.toml"
    config.write_text("[detection]\nresolve_after_s = 600.0\n")
    result = CliRunner().invoke(main, ["detect", "--store", str(second), "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(second), read_only=True)
    cli_rows = con.execute("SELECT id, detector, status, runs FROM findings ORDER BY id").fetchall()
    cli_laws = con.execute("SELECT id, epoch_ns(learned_to) FROM invariants ORDER BY id").fetchall()
    con.close()
    assert cli_rows == job_rows and job_rows
    assert cli_laws == job_laws and job_laws  # both ran the invariant checks (and stored the laws they learned)
