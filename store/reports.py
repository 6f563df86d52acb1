"""Table ``reports``: the index of written drift reports (one row per report id)."""

from __future__ import annotations

from typing import Any

import duckdb

from store import dialect_duckdb as sql

COLUMNS = ("id", "created_at", "window_start", "window_end", "headline", "path", "n_findings", "n_critical",
           "n_warning", "n_info")  # fmt: skip
"""Columns of an index row; the time columns come back as naive UTC datetimes."""


def save_report(
    con: duckdb.DuckDBPyConnection,
    *,
    report_id: str,
    created_ns: int,
    window_start_ns: int,
    window_end_ns: int,
    headline: str,
    path: str,
    n_findings: int,
    by_severity: dict[str, int],
) -> None:
    """Record (or replace) one report's row."""
    ts = sql.from_ns
    con.execute(
        f"INSERT OR REPLACE INTO reports VALUES ($id, {ts('$created')}, {ts('$start')}, {ts('$end')}, $headline, "
        "$path, $n, $critical, $warning, $info)",
        {
            "id": report_id, "created": created_ns, "start": window_start_ns, "end": window_end_ns,
            "headline": headline, "path": path, "n": n_findings,
            "critical": by_severity.get("critical", 0), "warning": by_severity.get("warning", 0),
            "info": by_severity.get("info", 0),
        },
    )  # fmt: skip


def list_reports(con: duckdb.DuckDBPyConnection, limit: int) -> list[tuple[Any, ...]]:
    """Index rows (``COLUMNS``), newest window first."""
    return con.execute(
        f"SELECT {', '.join(COLUMNS)} FROM reports ORDER BY window_end DESC, id LIMIT ?", [limit]
    ).fetchall()


def report_row(con: duckdb.DuckDBPyConnection, report_id: str) -> tuple[Any, ...] | None:
    """The index row (``COLUMNS``) of ``report_id``, or None."""
    return con.execute(f"SELECT {', '.join(COLUMNS)} FROM reports WHERE id = ?", [report_id]).fetchone()
