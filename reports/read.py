"""Reads of other stages' tables for a report: findings, deploy markers, investigations.

Every reader tolerates a table that does not exist yet (a fresh store has no rollups, no
findings, no investigations) and answers "nothing" instead of failing. Times are integer
nanoseconds (UTC). Reports never write these tables.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from reports.model import Category, Counterexamples, DeployMarker, FindingView, InvestigationLink

INVESTIGATION_API = "/api/investigations/{id}"
"""Link used for an investigation that has no report file of its own."""

_EXAMPLES_MAX = 5
"""Counterexamples shown per finding (trace ids, lines): enough to check, short enough to read."""


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """Column names of ``table`` in the main schema (empty when the table does not exist)."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main'", [table]
    ).fetchall()
    return {r[0] for r in rows}


def data_end_ns(con: duckdb.DuckDBPyConnection) -> int | None:
    """End of the newest rolled-up minute (data time), else the newest finding's window end, else None."""
    if table_columns(con, "rollup_spans"):
        row = con.execute("SELECT epoch_ns(max(minute) + INTERVAL 1 MINUTE) FROM rollup_spans").fetchone()
        if row and row[0] is not None:
            return int(row[0])
    if table_columns(con, "findings"):
        row = con.execute("SELECT epoch_ns(max(window_end)) FROM findings").fetchone()
        if row and row[0] is not None:
            return int(row[0])
    return None


def category(detector: str) -> Category:
    """Which section of the report a detector's findings belong to."""
    if detector.startswith("log_template"):
        return "log_template"
    if detector.startswith(("invariant_", "boundary")):
        return "invariant"
    return "performance"


def _texts(value: Any) -> list[str]:
    """Evidence values as display strings: lists flattened, dicts as ``k=v`` pairs."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [", ".join(f"{k}={v}" for k, v in value.items())]
    return [str(value)]


def counterexamples(evidence: dict[str, Any]) -> Counterexamples:
    """The checkable parts of a finding's evidence: trace ids, example lines, the SQL.

    Detectors name these keys freely; the ones recognised are ``trace_ids`` /
    ``example_trace_ids`` / ``trace_id``, ``counterexamples`` / ``examples`` / ``log_lines`` /
    ``lines`` / ``templates`` / ``template``, and ``sql``.
    """
    traces = [t for k in ("trace_ids", "example_trace_ids", "trace_id") for t in _texts(evidence.get(k))]
    lines = [
        t
        for k in ("counterexamples", "examples", "log_lines", "lines", "templates", "template")
        for t in _texts(evidence.get(k))
    ]
    sql = evidence.get("sql")
    return Counterexamples(
        trace_ids=tuple(dict.fromkeys(traces))[:_EXAMPLES_MAX],
        lines=tuple(dict.fromkeys(lines))[:_EXAMPLES_MAX],
        sql=str(sql) if sql else None,
    )


_FINDINGS_SQL = """
SELECT id, fingerprint, detector, kind, service, operation, metric, attributes, severity, status, score,
       effect, effect_text, before, after, p_value, q_value, epoch_ns(change_time), epoch_ns(window_start),
       epoch_ns(window_end), epoch_ns(first_seen), epoch_ns(last_seen), runs, evidence
FROM findings
WHERE epoch_ns(window_end) > $start AND epoch_ns(window_start) < $end
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END,
         score DESC, q_value, id
"""


def read_findings(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[FindingView]:
    """Findings whose detection window overlaps [start_ns, end_ns), any status, most severe first.

    Ranked by severity, then score (descending), then q-value, then id (deterministic).
    """
    if not table_columns(con, "findings"):
        return []
    rows = con.execute(_FINDINGS_SQL, {"start": start_ns, "end": end_ns}).fetchall()
    links = investigation_links(con, [r[0] for r in rows])
    out: list[FindingView] = []
    for r in rows:
        evidence = orjson.loads(r[23]) if r[23] else {}
        if not isinstance(evidence, dict):
            evidence = {"value": evidence}
        out.append(
            FindingView(
                id=r[0], fingerprint=r[1], detector=r[2], category=category(r[2]), kind=r[3], service=r[4],
                operation=r[5], metric=r[6], attributes=r[7], severity=r[8], status=r[9], score=r[10],
                effect=r[11], effect_text=r[12], before=r[13], after=r[14], p_value=r[15], q_value=r[16],
                change_ns=r[17], window_start_ns=r[18], window_end_ns=r[19], first_seen_ns=r[20],
                last_seen_ns=r[21], runs=r[22], evidence=evidence, counterexamples=counterexamples(evidence),
                investigations=tuple(links.get(r[0], ())),
            )
        )  # fmt: skip
    return out


def investigation_links(con: duckdb.DuckDBPyConnection, finding_ids: list[str]) -> dict[str, list[InvestigationLink]]:
    """Investigation links per finding id: the hook for the investigations stage.

    Reads table ``investigations`` when it exists and has ``id`` and ``finding_id``
    columns; ``report_path`` (the link), ``status`` and ``title`` are used when present.
    Without the table (or without a match) a finding simply has no links.
    """
    cols = table_columns(con, "investigations")
    if not finding_ids or not {"id", "finding_id"} <= cols:
        return {}
    extra = [c if c in cols else f"NULL AS {c}" for c in ("report_path", "status", "title")]
    rows = con.execute(
        f"SELECT id::VARCHAR, finding_id::VARCHAR, {', '.join(extra)} FROM investigations "
        "WHERE finding_id::VARCHAR IN (SELECT unnest($ids)) ORDER BY id",
        {"ids": finding_ids},
    ).fetchall()
    out: dict[str, list[InvestigationLink]] = {}
    for inv_id, fid, path, status, title in rows:
        href = str(path) if path else INVESTIGATION_API.format(id=inv_id)
        out.setdefault(fid, []).append(
            InvestigationLink(inv_id, fid, href, None if status is None else str(status), title and str(title))
        )
    return out


def read_deploys(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[DeployMarker]:
    """New service versions first seen in [start_ns, end_ns), oldest first.

    A service's first version ever seen is where its data begins, not a deploy, so it is
    left out; each marker carries the version it replaced.
    """
    if not table_columns(con, "deploy_markers"):
        return []
    rows = con.execute(
        """
        SELECT service_name, service_version, previous, epoch_ns(first_seen) FROM (
            SELECT *, lag(service_version) OVER (PARTITION BY service_name ORDER BY first_seen) AS previous
            FROM deploy_markers
        ) WHERE previous IS NOT NULL AND epoch_ns(first_seen) >= $start AND epoch_ns(first_seen) < $end
        ORDER BY first_seen, service_name
        """,
        {"start": start_ns, "end": end_ns},
    ).fetchall()
    return [DeployMarker(r[0], r[1], r[2], int(r[3])) for r in rows]


def count_signals(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> int:
    """Distinct series seen in [start_ns, end_ns): server operations, metric series, log streams."""
    parts = {
        "rollup_spans": "SELECT DISTINCT service_name, operation, NULL FROM rollup_spans "
        "WHERE span_kind = 'SERVER' AND {t}",
        "rollup_gauges": "SELECT DISTINCT service_name, metric_name, attributes FROM rollup_gauges WHERE {t}",
        "rollup_sums": "SELECT DISTINCT service_name, metric_name, attributes FROM rollup_sums WHERE {t}",
        "rollup_histograms": "SELECT DISTINCT service_name, metric_name, attributes FROM rollup_histograms WHERE {t}",
        "rollup_logs": "SELECT DISTINCT service_name, severity_text, 'log' FROM rollup_logs WHERE {t}",
    }
    in_window = "minute >= make_timestamp_ns($start)::TIMESTAMP AND minute < make_timestamp_ns($end)::TIMESTAMP"
    selects = [sql.format(t=in_window) for table, sql in parts.items() if table_columns(con, table)]
    if not selects:
        return 0
    row = con.execute(
        f"SELECT count(*) FROM ({' UNION ALL '.join(selects)})", {"start": start_ns, "end": end_ns}
    ).fetchone()
    return int(row[0]) if row else 0
