"""Table ``job_runs``: every run of every scheduled job, so the last success survives restarts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb
import orjson

from store import dialect_duckdb as sql
from store.timeconv import naive_from_ns


def record_run(
    con: duckdb.DuckDBPyConnection,
    *,
    job: str,
    started_ns: int,
    finished_ns: int,
    outcome: str,
    detail: dict[str, Any],
    error: str | None,
) -> None:
    """Append one run (times in ns since the epoch; ``detail`` stored as JSON)."""
    con.execute(
        f"INSERT INTO job_runs VALUES ($job, {sql.from_ns('$s')}, {sql.from_ns('$f')}, $outcome, $detail, $error)",
        {
            "job": job, "s": started_ns, "f": finished_ns, "outcome": outcome,
            "detail": orjson.dumps(detail, default=str).decode(), "error": error,
        },
    )  # fmt: skip


def last_successes(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Per job, the finish time (ns) of its last successful run."""
    rows = con.execute(
        f"SELECT job, {sql.epoch_ns('max(finished_at)')} FROM job_runs WHERE outcome = 'ok' GROUP BY job"
    ).fetchall()
    return {str(job): int(ns) for job, ns in rows}


def job_summaries(con: duckdb.DuckDBPyConnection, running: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Per job (by name): last_success, last_success_started (naive UTC datetimes), last_outcome,
    last_error, failures, runs, and running_since: the start of the run going now (from ``running``,
    job -> start in ns, which only the process running the jobs knows), else None. A job whose first
    run is still going is listed too, with no runs."""
    cur = con.execute(
        "SELECT job, max(finished_at) FILTER (outcome = 'ok') AS last_success, "
        "max(started_at) FILTER (outcome = 'ok') AS last_success_started, "
        "arg_max(outcome, finished_at) AS last_outcome, arg_max(error, finished_at) AS last_error, "
        "count(*) FILTER (outcome = 'failed') AS failures, count(*) AS runs FROM job_runs GROUP BY job ORDER BY job"
    )
    names = [d[0] for d in cur.description or []]
    by_job = {str(row[0]): dict(zip(names, row, strict=True)) for row in cur.fetchall()}
    running = running or {}
    for job in running.keys() - by_job.keys():
        by_job[job] = dict.fromkeys(names) | {"job": job, "failures": 0, "runs": 0}
    return [by_job[job] | {"running_since": _since(running.get(job))} for job in sorted(by_job)]


def _since(ns: int | None) -> dt.datetime | None:
    return None if ns is None else naive_from_ns(ns)
