"""The stored index of written reports (table ``reports``), so the API can list and fetch them.

One row per report id (the window end to the minute); writing the same report again
replaces its row. Times are TIMESTAMP_NS (UTC); answers carry ISO-8601 strings.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from collector.store import migrate
from reports.model import ReportModel

_V1 = """
CREATE TABLE reports (
    id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP_NS NOT NULL,
    window_start TIMESTAMP_NS NOT NULL,
    window_end TIMESTAMP_NS NOT NULL,
    headline VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    n_findings INTEGER NOT NULL,
    n_critical INTEGER NOT NULL,
    n_warning INTEGER NOT NULL,
    n_info INTEGER NOT NULL
);
"""
MIGRATIONS = (_V1,)
VERSION_TABLE = "reports_schema_version"
FILES = {"html": "report.html", "markdown": "report.md", "json": "report.json"}
"""File name of each form inside a report's directory."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create or migrate the ``reports`` table."""
    migrate(con, MIGRATIONS, VERSION_TABLE)


def save_index(con: duckdb.DuckDBPyConnection, model: ReportModel, directory: Path) -> None:
    """Record (or replace) the report's row, pointing at ``directory`` (stored absolute)."""
    ensure_schema(con)
    sev = model.by_severity
    con.execute(
        "INSERT OR REPLACE INTO reports VALUES ($id, make_timestamp_ns($created), make_timestamp_ns($start), "
        "make_timestamp_ns($end), $headline, $path, $n, $critical, $warning, $info)",
        {
            "id": model.id, "created": model.created_at_ns, "start": model.window_start_ns,
            "end": model.window_end_ns, "headline": model.headline, "path": str(directory.resolve()),
            "n": len(model.findings), "critical": sev.get("critical", 0), "warning": sev.get("warning", 0),
            "info": sev.get("info", 0),
        },
    )  # fmt: skip


def _iso(value: dt.datetime) -> str:
    return value.replace(tzinfo=dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_COLUMNS = "id, created_at, window_start, window_end, headline, path, n_findings, n_critical, n_warning, n_info"


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    path = Path(r[5])
    return {
        "id": r[0],
        "created_at": _iso(r[1]),
        "window_start": _iso(r[2]),
        "window_end": _iso(r[3]),
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
    if not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'reports'").fetchone():
        return []
    rows = con.execute(f"SELECT {_COLUMNS} FROM reports ORDER BY window_end DESC, id LIMIT ?", [limit]).fetchall()
    return [_row(r) for r in rows]


def get_report(con: duckdb.DuckDBPyConnection, report_id: str) -> dict[str, Any] | None:
    """One stored report by id (fields as in ``list_reports``), or None when there is none."""
    if not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'reports'").fetchone():
        return None
    row = con.execute(f"SELECT {_COLUMNS} FROM reports WHERE id = ?", [report_id]).fetchone()
    return None if row is None else _row(row)
