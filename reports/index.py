"""The index of written reports (table ``reports``, ``store.reports``), so the API can list and fetch them.

One row per report id (the window end to the minute); writing the same report again
replaces its row. Times are TIMESTAMP_NS (UTC); answers carry ISO-8601 strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from reports.model import ReportModel
from store import reports as store_reports
from store.timeconv import iso

FILES = {"html": "report.html", "markdown": "report.md", "json": "report.json"}
"""File name of each form inside a report's directory."""


def save_index(con: duckdb.DuckDBPyConnection, model: ReportModel, directory: Path) -> None:
    """Record (or replace) the report's row, pointing at ``directory`` (stored absolute)."""
    store_reports.save_report(
        con, report_id=model.id, created_ns=model.created_at_ns, window_start_ns=model.window_start_ns,
        window_end_ns=model.window_end_ns, headline=model.headline, path=str(directory.resolve()),
        n_findings=len(model.findings), by_severity=model.by_severity,
    )  # fmt: skip


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    path = Path(r[5])
    return {
        "id": r[0],
        "created_at": iso(r[1], "seconds"),
        "window_start": iso(r[2], "seconds"),
        "window_end": iso(r[3], "seconds"),
        "headline": r[4],
        "path": str(path),
        "n_findings": r[6],
        "by_severity": {"critical": r[7], "warning": r[8], "info": r[9]},
        "files": {form: str(path / name) for form, name in FILES.items() if (path / name).is_file()},
    }


def list_reports(con: duckdb.DuckDBPyConnection, limit: int = 100) -> list[dict[str, Any]]:
    """Stored reports, newest window first: id, created_at, window_start, window_end (ISO-8601 UTC),
    headline, path, n_findings, by_severity {critical, warning, info}, files {html, markdown, json}
    (the forms that exist on disk). Empty when no report was ever written."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return [_row(r) for r in store_reports.list_reports(con, limit)]


def get_report(con: duckdb.DuckDBPyConnection, report_id: str) -> dict[str, Any] | None:
    """One stored report by id (fields as in ``list_reports``), or None when there is none."""
    row = store_reports.report_row(con, report_id)
    return None if row is None else _row(row)
